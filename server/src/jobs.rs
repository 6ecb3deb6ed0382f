//! Background work inside the server process. Each job claims its work in the database
//! (`FOR UPDATE SKIP LOCKED` or idempotent statements), so any number of instances can run it.

pub mod auctions;
pub mod housekeeping;
pub mod market;
pub mod outbox;

use app::server::mail::Mailer;
use app::server::AppState;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Starts every job; they stop when `stop` turns true.
pub fn spawn_all(
    state: AppState,
    pool: PgPool,
    mailer: Mailer,
    stop: watch::Receiver<bool>,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    set.spawn(app::server::live::listen(
        pool.clone(),
        state.live.clone(),
        stop.clone(),
    ));
    let public_url = state.config.public_url.clone();
    set.spawn(auctions::run(state, stop.clone()));
    set.spawn(outbox::run(pool.clone(), mailer, public_url, stop.clone()));
    set.spawn(market::run(pool.clone(), stop.clone()));
    set.spawn(housekeeping::run(pool, stop));
    set
}

/// Waits `period`, or returns false at once when asked to stop.
pub async fn tick(stop: &mut watch::Receiver<bool>, period: std::time::Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(period) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}
