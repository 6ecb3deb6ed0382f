//! Use cases. Each public function is one unit of work; multi-step writes are one transaction.

pub mod accounts;
pub mod rate_limit;
pub mod user_admin;
