//! API tests: the real router on port 0, one fresh migrated database per test
//! (`#[sqlx::test]`, on the throwaway PostgreSQL that `make test` starts).

mod api {
    pub mod accounts;
    pub mod admin_users;
    pub mod auctions;
    pub mod authz_matrix;
    pub mod disputes;
    pub mod ev_data;
    pub mod issuance;
    pub mod ledger;
    pub mod market;
    pub mod notifications;
    pub mod operations;
    pub mod probes;
    pub mod reports;
    pub mod soak;
    pub mod support;
}
