//! The verifier's screens.

pub mod queue;
pub mod review;
