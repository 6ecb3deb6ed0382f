//! One module per screen, grouped by who uses it.

pub mod account;
pub mod admin;
pub mod buyer;
pub mod cva;
pub mod home;
pub mod money;
pub mod orders;
pub mod owner;
pub mod public;
pub mod reports;
pub mod wallet;
