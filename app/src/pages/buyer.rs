//! Screens for buyers (and visitors browsing): the marketplace, a listing's page, auctions.

pub mod auctions;
pub mod listing;
pub mod market;
pub mod trends;
