//! The EV owner's screens.

pub mod charging;
pub mod credits;
pub mod dashboard;
pub mod import;
pub mod listings;
pub mod trips;
pub mod vehicles;
