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
    pub payments: PaymentsConfig,
}

/// The platform currency and the payment gateway's settings.
#[derive(Debug, Clone)]
pub struct PaymentsConfig {
    /// ISO 4217 code of the platform currency (default VND).
    pub currency: String,
    /// Signs the sandbox gateway's webhooks (EVCX_SANDBOX_WEBHOOK_SECRET; random per start when
    /// unset, which is enough for the built-in page that delivers in-process).
    pub sandbox_secret: Vec<u8>,
    /// A payment nobody answered for this long expires (its checkout order is cancelled).
    pub timeout_secs: i64,
}

impl PaymentsConfig {
    pub fn new(currency: &str, sandbox_secret: Vec<u8>) -> PaymentsConfig {
        PaymentsConfig {
            currency: currency.to_owned(),
            sandbox_secret,
            timeout_secs: 15 * 60,
        }
    }
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
    /// Live updates of this instance (see `server::live`).
    pub live: crate::server::live::Hub,
    /// Bids waiting for their auction on this instance.
    pub bids: crate::server::services::auctions::BidQueues,
    /// Wallet-paid purchases waiting for this instance's settlement workers.
    pub purchases: crate::server::services::orders::PurchaseQueue,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
