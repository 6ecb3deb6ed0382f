//! Reusable view pieces.

pub mod auth;
pub mod errors;
pub mod form;
pub mod live;
pub mod nav;
pub mod paging;
pub mod request;
