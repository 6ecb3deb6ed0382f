//! One module per screen, grouped by who uses it.

pub mod account;
pub mod admin;
pub mod home;
pub mod owner;
pub mod public;
