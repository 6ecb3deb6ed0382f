//! Handles queued sign-up and reset requests (which queue e-mail), then delivers queued e-mail.

use app::server::mail::{self, Mailer};
use app::server::services::accounts;
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(
    pool: PgPool,
    mailer: Mailer,
    public_url: String,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match accounts::handle_requests(&pool, &public_url, 50).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(handled = n, "account requests handled"),
            Err(e) => tracing::warn!(error = %e, "account requests run failed"),
        }
        match mail::deliver_due(&pool, &mailer, &public_url, 50).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sent = n, "e-mail delivered"),
            Err(e) => tracing::warn!(error = %e, "e-mail outbox run failed"),
        }
        if !super::tick(&mut stop, Duration::from_secs(1)).await {
            return;
        }
    }
}
