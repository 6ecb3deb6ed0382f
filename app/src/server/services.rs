//! Use cases. Each public function is one unit of work; multi-step writes are one transaction.

pub mod accounts;
pub mod auctions;
pub mod audit_log;
pub mod charging;
pub mod dashboard;
pub mod disputes;
pub mod figures;
pub mod import;
pub mod issuance;
pub mod listings;
pub mod market;
pub mod methodology;
pub mod notifications;
pub mod operations;
pub mod orders;
pub mod payments;
pub mod pricing;
pub mod rate_limit;
pub mod reports;
pub mod requests;
pub mod settings;
pub mod trips;
pub mod user_admin;
pub mod vehicles;
pub mod wallet;
pub mod withdrawals;
