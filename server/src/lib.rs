//! The server binary's library: configuration, telemetry, the embedded PostgreSQL, the HTTP
//! router and its middleware, background jobs and the command line.

pub mod cli;
pub mod config;
pub mod database;
pub mod demo;
pub mod documents;
pub mod gateway;
pub mod health;
pub mod jobs;
pub mod live_sse;
pub mod local_pg;
pub mod market_seed;
pub mod metrics;
pub mod page_cache;
pub mod security;
pub mod sessions;
pub mod startup;
pub mod telemetry;
