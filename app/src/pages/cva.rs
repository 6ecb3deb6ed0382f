//! The verifier's screens.

pub mod queue;
pub mod report;
pub mod review;
