//! The EV owner's screens.

pub mod import;
pub mod vehicles;
