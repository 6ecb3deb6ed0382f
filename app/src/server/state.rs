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
    /// How large an import file and each of its records may be (EVCX_MAX_IMPORT_MB).
    pub imports: crate::server::services::import::read::ReadLimits,
    /// Production's `/metrics` answers only with this bearer token (EVCX_METRICS_TOKEN).
    pub metrics_token: Option<String>,
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
    /// The sandbox gateway takes payments (EVCX_SANDBOX_PAYMENTS): on in development; in
    /// production only when switched on, and then every page says no real money moves. Off,
    /// payments through a gateway are refused and its pages are not served.
    pub sandbox: bool,
    /// The most one top-up may be for (EVCX_MAX_TOP_UP), in the platform currency.
    pub max_top_up: rust_decimal::Decimal,
}

impl PaymentsConfig {
    /// The default largest top-up: 100,000,000 in the platform currency.
    pub const DEFAULT_MAX_TOP_UP: i64 = 100_000_000;

    /// Settings for development and tests: the sandbox on, the default limits.
    pub fn new(currency: &str, sandbox_secret: Vec<u8>) -> PaymentsConfig {
        PaymentsConfig {
            currency: currency.to_owned(),
            sandbox_secret,
            timeout_secs: 15 * 60,
            sandbox: true,
            max_top_up: rust_decimal::Decimal::from(Self::DEFAULT_MAX_TOP_UP),
        }
    }
}

/// How many events of a kind are allowed in a sliding window.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max: i64,
    pub window_secs: i64,
}

/// Sign-ins, sign-ups and reset requests allowed, counted before the work (see `rate_limit`).
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// Failed sign-ins from one address.
    pub login_per_ip: Limit,
    /// Failed sign-ins on one account from one address.
    pub login_per_pair: Limit,
    /// Failed sign-ins on one account from every address: past this the account's sign-ins
    /// pause until the window moves on or the owner resets the password (which clears it), so
    /// no single address can lock anyone out.
    pub login_per_account: Limit,
    /// Before that, each failure on the account past `after` makes the next attempt wait
    /// `step_ms` longer, up to `max_ms`.
    pub login_slowdown: Slowdown,
    pub signup_per_ip: Limit,
    pub reset_per_ip: Limit,
}

#[derive(Debug, Clone, Copy)]
pub struct Slowdown {
    pub after: i64,
    pub step_ms: u64,
    pub max_ms: u64,
}

impl Slowdown {
    /// How long an attempt waits after `failures` earlier ones in the window.
    pub fn delay(self, failures: i64) -> std::time::Duration {
        let over = u64::try_from(failures - self.after).unwrap_or(0);
        std::time::Duration::from_millis((over * self.step_ms).min(self.max_ms))
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        let quarter_hour = 15 * 60;
        RateLimits {
            login_per_ip: Limit {
                max: 20,
                window_secs: quarter_hour,
            },
            login_per_pair: Limit {
                max: 10,
                window_secs: quarter_hour,
            },
            login_per_account: Limit {
                max: 100,
                window_secs: quarter_hour,
            },
            login_slowdown: Slowdown {
                after: 5,
                step_ms: 250,
                max_ms: 4_000,
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
