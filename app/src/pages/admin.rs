//! The admin's screens.

pub mod audit;
pub mod disputes;
pub mod methodology;
pub mod money;
pub mod settings;
pub mod transactions;
pub mod users;
pub mod withdrawals;
