//! The admin's screens.

pub mod users;
