//! Ends what ran out of time: listings past their expiry release their unsold credits, and
//! payments nobody completed expire (cancelling their checkout orders).

use app::server::services::{listings, payments};
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(pool: PgPool, mut stop: watch::Receiver<bool>) {
    loop {
        match listings::expire_due(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(listings = n, "expired listings"),
            Err(e) => tracing::warn!(error = %e, "listing expiry failed"),
        }
        match listings::warn_expiring(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(listings = n, "warned sellers of listings about to expire"),
            Err(e) => tracing::warn!(error = %e, "listing expiry warnings failed"),
        }
        match payments::expire_due(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(payments = n, "expired payments"),
            Err(e) => tracing::warn!(error = %e, "payment expiry failed"),
        }
        if !super::tick(&mut stop, Duration::from_secs(15)).await {
            return;
        }
    }
}
