//! Sliding-window rate limiting backed by PostgreSQL, so all instances share the counts.
//!
//! An attempt is counted *before* the work it guards, in one transaction that holds an advisory
//! lock on each key: parallel attempts on one key queue there, so no more than a limit's `max`
//! ever pass in a window (checking and recording in separate statements let 100 parallel
//! sign-ins through a limit of 10). An attempt that turns out fine can be forgiven afterwards.

use crate::error::AppError;
use crate::server::state::Limit;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sign-ins from one address.
    LoginIp,
    /// Sign-ins on one account from every address: slows down, then pauses (never by one
    /// address alone, see `LoginPair`).
    LoginAccount,
    /// Sign-ins on one account from one address.
    LoginPair,
    SignupIp,
    ResetIp,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::LoginIp => "login_ip",
            Kind::LoginAccount => "login_account",
            Kind::LoginPair => "login_pair",
            Kind::SignupIp => "signup_ip",
            Kind::ResetIp => "reset_ip",
        }
    }
}

/// One key's allowance to check an attempt against.
#[derive(Debug, Clone)]
pub struct Rule {
    pub kind: Kind,
    pub key: String,
    pub limit: Limit,
}

impl Rule {
    pub fn new(kind: Kind, key: impl Into<String>, limit: Limit) -> Rule {
        Rule {
            kind,
            key: key.into(),
            limit,
        }
    }
}

/// An attempt that passed every rule and was counted against each.
#[derive(Debug)]
#[must_use = "an attempt is forgiven, or kept by dropping it"]
pub struct Attempt {
    /// The counted events, one per rule, in the rules' order.
    ids: Vec<i64>,
    /// Each rule's kind, and how many earlier attempts its key had in its window.
    earlier: Vec<(Kind, i64)>,
}

impl Attempt {
    /// How many attempts the key of the rule of `kind` had in its window before this one.
    pub fn earlier(&self, kind: Kind) -> i64 {
        self.earlier
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }
}

/// The first rule an attempt broke, and how long until its window lets one more through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    pub kind: Kind,
    pub retry_after_secs: u64,
}

impl From<Exceeded> for AppError {
    fn from(e: Exceeded) -> AppError {
        AppError::RateLimited {
            retry_after_secs: e.retry_after_secs,
        }
    }
}

/// Counts one attempt against every rule, or against none when any rule's key has used its
/// allowance (then the first such rule is answered). Atomic across instances.
pub async fn take(pool: &PgPool, rules: &[Rule]) -> Result<Result<Attempt, Exceeded>, AppError> {
    let mut tx = pool.begin().await?;
    // Locks in one order, so two attempts sharing keys never wait on each other in a circle.
    let mut locks: Vec<String> = rules
        .iter()
        .map(|r| format!("{}:{}", r.kind.as_str(), r.key))
        .collect();
    locks.sort();
    locks.dedup();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended(k, 7)) FROM unnest($1::text[]) k")
        .bind(&locks)
        .execute(&mut *tx)
        .await?;
    let mut earlier = Vec::with_capacity(rules.len());
    for rule in rules {
        let (count, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
            "SELECT count(*), min(at) FROM rate_limit_events
             WHERE kind = $1 AND key = $2 AND at > now() - make_interval(secs => $3)",
        )
        .bind(rule.kind.as_str())
        .bind(&rule.key)
        .bind(rule.limit.window_secs as f64)
        .fetch_one(&mut *tx)
        .await?;
        if count >= rule.limit.max {
            let reopens =
                oldest.unwrap_or_else(Utc::now) + chrono::Duration::seconds(rule.limit.window_secs);
            return Ok(Err(Exceeded {
                kind: rule.kind,
                retry_after_secs: (reopens - Utc::now()).num_seconds().max(1) as u64,
            }));
        }
        earlier.push((rule.kind, count));
    }
    let kinds: Vec<&str> = rules.iter().map(|r| r.kind.as_str()).collect();
    let keys: Vec<&str> = rules.iter().map(|r| r.key.as_str()).collect();
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO rate_limit_events (kind, key)
         SELECT * FROM unnest($1::text[], $2::text[]) RETURNING id",
    )
    .bind(&kinds)
    .bind(&keys)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Ok(Attempt { ids, earlier }))
}

/// Takes back an attempt's count: it turned out to be no abuse (a successful sign-in).
pub async fn forgive(pool: &PgPool, attempt: Attempt) -> Result<(), AppError> {
    sqlx::query("DELETE FROM rate_limit_events WHERE id = ANY($1)")
        .bind(&attempt.ids)
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

/// Forgets every key of `kind` that starts with `prefix` (an account's pairs with addresses).
pub async fn clear_prefix(pool: &PgPool, kind: Kind, prefix: &str) -> Result<(), AppError> {
    sqlx::query("DELETE FROM rate_limit_events WHERE kind = $1 AND starts_with(key, $2)")
        .bind(kind.as_str())
        .bind(prefix)
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
