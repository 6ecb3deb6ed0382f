//! Screens every signed-in account has.

pub mod notifications;
pub mod profile;
