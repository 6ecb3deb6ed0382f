//! Settings, read once at start: `Leptos.toml` (site options; `LEPTOS_*` variables override it)
//! and `EVCX_*` / `DATABASE_URL` environment variables.

use anyhow::Context;
use app::server::services::import::read::ReadLimits;
use app::server::services::payments::MAX_PAYMENT;
use app::server::state::{PaymentsConfig, RateLimits};
use leptos::config::{get_configuration, Env, LeptosOptions};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Config {
    pub leptos: LeptosOptions,
    pub dev_mode: bool,
    /// Use this database instead of the embedded one.
    pub database_url: Option<String>,
    /// Where the embedded PostgreSQL and the development mail outbox live.
    pub data_dir: PathBuf,
    pub public_url: String,
    pub smtp_url: Option<String>,
    pub seed_demo: bool,
    pub trust_proxy: bool,
    pub currency: String,
    pub sandbox_secret: Vec<u8>,
    pub payment_timeout_secs: i64,
    /// The sandbox gateway takes payments: on in development, off in production unless set.
    pub sandbox_payments: bool,
    pub max_top_up: rust_decimal::Decimal,
    pub imports: ReadLimits,
    pub metrics_token: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn flag(name: &str) -> anyhow::Result<Option<bool>> {
    match var(name).as_deref() {
        None => Ok(None),
        Some("1" | "true" | "yes") => Ok(Some(true)),
        Some("0" | "false" | "no") => Ok(Some(false)),
        Some(other) => anyhow::bail!("{name} must be true or false, not {other:?}"),
    }
}

impl Config {
    pub fn load() -> anyhow::Result<Config> {
        let file = var("EVCX_LEPTOS_TOML").unwrap_or_else(|| "Leptos.toml".to_owned());
        let leptos = if Path::new(&file).exists() {
            get_configuration(Some(&file)).with_context(|| format!("reading {file}"))?
        } else {
            // Started by cargo-leptos, which passes the site options as LEPTOS_* variables.
            get_configuration(None).context("reading LEPTOS_* variables")?
        }
        .leptos_options;
        let dev_mode = matches!(leptos.env, Env::DEV);
        let public_url =
            var("EVCX_PUBLIC_URL").unwrap_or_else(|| format!("http://{}", leptos.site_addr));
        let seed_demo = flag("EVCX_SEED_DEMO")?.unwrap_or(dev_mode);
        let trust_proxy = flag("EVCX_TRUST_PROXY")?.unwrap_or(false);
        let currency = var("EVCX_CURRENCY").unwrap_or_else(|| "VND".to_owned());
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            anyhow::bail!(
                "EVCX_CURRENCY must be a 3-letter ISO 4217 code like VND, not {currency:?}"
            );
        }
        let sandbox_secret = match var("EVCX_SANDBOX_WEBHOOK_SECRET") {
            Some(s) => s.into_bytes(),
            None => {
                use rand::RngCore;
                let mut key = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut key);
                key
            }
        };
        let payment_timeout_secs = match var("EVCX_PAYMENT_TIMEOUT_SECS") {
            None => 15 * 60,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|s| (10..=86_400).contains(s))
                .with_context(|| {
                    format!("EVCX_PAYMENT_TIMEOUT_SECS must be 10 to 86400 seconds, not {v:?}")
                })?,
        };
        let sandbox_payments = flag("EVCX_SANDBOX_PAYMENTS")?.unwrap_or(dev_mode);
        let max_top_up = match var("EVCX_MAX_TOP_UP") {
            None => rust_decimal::Decimal::from(PaymentsConfig::DEFAULT_MAX_TOP_UP),
            Some(v) => app::domain::market::parse_money(&v, &currency)
                .ok()
                .filter(|m| *m <= rust_decimal::Decimal::from(MAX_PAYMENT))
                .with_context(|| {
                    format!(
                        "EVCX_MAX_TOP_UP must be an amount from 0.01 to {MAX_PAYMENT}, not {v:?}"
                    )
                })?,
        };
        let mut imports = ReadLimits::default();
        if let Some(v) = var("EVCX_MAX_IMPORT_MB") {
            let mib = v
                .parse::<u64>()
                .ok()
                .filter(|m| (1..=65_536).contains(m))
                .with_context(|| {
                    format!("EVCX_MAX_IMPORT_MB must be 1 to 65536 (MiB), not {v:?}")
                })?;
            imports.max_file_bytes = mib * 1024 * 1024;
        }
        Ok(Config {
            metrics_token: var("EVCX_METRICS_TOKEN"),
            imports,
            currency,
            sandbox_payments,
            max_top_up,
            sandbox_secret,
            payment_timeout_secs,
            leptos,
            dev_mode,
            database_url: var("DATABASE_URL"),
            data_dir: PathBuf::from(var("EVCX_DATA_DIR").unwrap_or_else(|| ".data".to_owned())),
            public_url,
            smtp_url: var("EVCX_SMTP_URL"),
            seed_demo,
            trust_proxy,
        })
    }

    pub fn app_config(&self) -> app::server::AppConfig {
        app::server::AppConfig {
            dev_mode: self.dev_mode,
            public_url: self.public_url.clone(),
            limits: RateLimits::default(),
            trust_proxy: self.trust_proxy,
            imports: self.imports,
            metrics_token: self.metrics_token.clone(),
            payments: app::server::state::PaymentsConfig {
                currency: self.currency.clone(),
                sandbox_secret: self.sandbox_secret.clone(),
                timeout_secs: self.payment_timeout_secs,
                sandbox: self.sandbox_payments,
                max_top_up: self.max_top_up,
            },
        }
    }
}
