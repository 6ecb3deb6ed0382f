//! Screens every signed-in account has.

pub mod profile;
