//! Pure types and rules: no I/O, no `cfg`. The same code runs in the browser (instant
//! feedback) and on the server (the final word).

pub mod amount;
pub mod anomaly;
pub mod auction;
pub mod market;
pub mod methodology;
pub mod notification;
pub mod period;
pub mod pricing;
pub mod report;
pub mod serial;
pub mod spreadsheet;
pub mod trade;
pub mod trip;
pub mod user;
pub mod vehicle;
