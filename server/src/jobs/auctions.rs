//! Closes auctions at their (possibly extended) end: the winner pays from their hold, or the
//! lot returns to the seller. Every second, so an auction ends within about a second of its
//! time; any number of instances may run it (each auction is claimed with SKIP LOCKED and a
//! closed auction can never change again).

use app::server::services::auctions;
use app::server::AppState;
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        match auctions::close_due(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(auctions = n, "closed auctions"),
            Err(e) => tracing::warn!(error = %e, "closing auctions failed"),
        }
        if !super::tick(&mut stop, Duration::from_secs(1)).await {
            return;
        }
    }
}
