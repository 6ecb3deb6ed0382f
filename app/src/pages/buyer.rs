//! Screens for buyers (and visitors browsing): the marketplace and a listing's page.

pub mod listing;
pub mod market;
