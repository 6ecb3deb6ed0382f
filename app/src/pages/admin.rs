//! The admin's screens.

pub mod audit;
pub mod methodology;
pub mod settings;
pub mod users;
pub mod withdrawals;
