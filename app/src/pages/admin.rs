//! The admin's screens.

pub mod audit;
pub mod methodology;
pub mod users;
