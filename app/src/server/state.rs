//! The state every request handler and server function reaches through context.

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;
use std::sync::Arc;

/// Runtime settings the application layer needs (the server crate builds it from its config).
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Development mode: demo hints on the login page, readable logs, non-Secure cookies.
    pub dev_mode: bool,
    /// Base URL used in links sent by e-mail, e.g. `http://127.0.0.1:3000`.
    pub public_url: String,
    pub limits: RateLimits,
    /// Behind a reverse proxy: take the client address from the last `X-Forwarded-For` entry
    /// (the one the proxy appended) instead of the TCP peer.
    pub trust_proxy: bool,
}

/// How many events of a kind are allowed in a sliding window.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max: i64,
    pub window_secs: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    pub login_per_ip: Limit,
    pub login_per_account: Limit,
    pub signup_per_ip: Limit,
    pub reset_per_ip: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            login_per_ip: Limit {
                max: 20,
                window_secs: 15 * 60,
            },
            login_per_account: Limit {
                max: 10,
                window_secs: 15 * 60,
            },
            signup_per_ip: Limit {
                max: 20,
                window_secs: 60 * 60,
            },
            reset_per_ip: Limit {
                max: 10,
                window_secs: 60 * 60,
            },
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<AppConfig>,
    pub leptos_options: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
