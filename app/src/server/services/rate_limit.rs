//! Sliding-window rate limiting backed by PostgreSQL, so all instances share the counts.

use crate::error::AppError;
use crate::server::state::Limit;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    LoginIp,
    LoginAccount,
    SignupIp,
    ResetIp,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::LoginIp => "login_ip",
            Kind::LoginAccount => "login_account",
            Kind::SignupIp => "signup_ip",
            Kind::ResetIp => "reset_ip",
        }
    }
}

/// Refuses with `RateLimited` (and how long to wait) when `key` already used its allowance.
pub async fn check(pool: &PgPool, kind: Kind, key: &str, limit: Limit) -> Result<(), AppError> {
    let (count, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT count(*), min(at) FROM rate_limit_events
         WHERE kind = $1 AND key = $2 AND at > now() - make_interval(secs => $3)",
    )
    .bind(kind.as_str())
    .bind(key)
    .bind(limit.window_secs as f64)
    .fetch_one(pool)
    .await?;
    if count < limit.max {
        return Ok(());
    }
    let reopens = oldest.unwrap_or_else(Utc::now) + chrono::Duration::seconds(limit.window_secs);
    let retry_after_secs = (reopens - Utc::now()).num_seconds().max(1) as u64;
    Err(AppError::RateLimited { retry_after_secs })
}

pub async fn record(pool: &PgPool, kind: Kind, key: &str) -> Result<(), AppError> {
    sqlx::query("INSERT INTO rate_limit_events (kind, key) VALUES ($1, $2)")
        .bind(kind.as_str())
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn clear(pool: &PgPool, kind: Kind, key: &str) -> Result<(), AppError> {
    sqlx::query("DELETE FROM rate_limit_events WHERE kind = $1 AND key = $2")
        .bind(kind.as_str())
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}

/// Drops events older than any window (run by a background job).
pub async fn prune(pool: &PgPool) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM rate_limit_events WHERE at < now() - interval '1 day'")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}
