//! One module per screen, grouped by who uses it.

pub mod account;
pub mod admin;
pub mod cva;
pub mod home;
pub mod owner;
pub mod public;
pub mod wallet;
