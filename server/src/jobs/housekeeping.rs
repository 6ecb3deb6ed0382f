//! Removes what has expired: sessions, rate-limit events, spent password links, handled account requests.

use app::server::services::rate_limit;
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(pool: PgPool, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = sweep(&pool).await {
            tracing::warn!(error = %e, "housekeeping failed");
        }
        if !super::tick(&mut stop, Duration::from_secs(600)).await {
            return;
        }
    }
}

async fn sweep(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM tower_sessions.session WHERE expiry_date < now()")
        .execute(pool)
        .await?;
    rate_limit::prune(pool).await?;
    sqlx::query("DELETE FROM password_reset_tokens WHERE expires_at < now() - interval '7 days'")
        .execute(pool)
        .await?;
    // A request keeps what someone typed (name, phone): kept a week for support, then gone.
    // A finished sign-up's link goes with its request; the account keeps its own copy.
    sqlx::query("DELETE FROM account_requests WHERE handled_at < now() - interval '7 days'")
        .execute(pool)
        .await?;
    Ok(())
}
