//! The admin's screens.

pub mod methodology;
pub mod users;
