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

/// How long the jobs get to end by themselves once asked to stop. A job waiting for a database
/// that is gone waits up to the pool's acquire timeout (5 s) for each statement it tries, and
/// some try several in a row: the server must still exit promptly after SIGTERM.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Once `stop` turns true, waits for the jobs to end (at most [`STOP_GRACE`]).
pub async fn stop_when_asked(mut jobs: JoinSet<()>, mut stop: watch::Receiver<bool>) {
    // An error: the sender is gone, which also means stop.
    stop.wait_for(|stop| *stop).await.ok();
    wait_or_abort(&mut jobs, STOP_GRACE).await;
}

/// Waits for the jobs (already asked to stop) to end, at most `grace`; then aborts the rest
/// (a job is cut at an `.await`: its open transaction rolls back, so nothing half-done stays).
/// Answers how many had to be aborted.
pub async fn wait_or_abort(jobs: &mut JoinSet<()>, grace: std::time::Duration) -> usize {
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = jobs.join_next() => {
                if next.is_none() {
                    return 0;
                }
            }
            _ = &mut deadline => {
                let left = jobs.len();
                tracing::warn!(jobs = left, "background jobs did not stop in time; aborting them");
                jobs.shutdown().await;
                return left;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A job stuck on a database that is gone (here: one that ignores the stop signal for a
    /// minute) no longer holds the server's exit: before, the server waited for every job.
    #[tokio::test]
    async fn a_job_that_does_not_stop_is_aborted_after_the_grace() {
        let (stop_tx, stop) = watch::channel(false);
        let mut jobs = JoinSet::new();
        let mut polite = stop.clone();
        jobs.spawn(async move { while tick(&mut polite, Duration::from_millis(10)).await {} });
        jobs.spawn(async move {
            let _stop = stop;
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        stop_tx.send(true).unwrap();
        let started = Instant::now();
        assert_eq!(
            wait_or_abort(&mut jobs, Duration::from_millis(300)).await,
            1
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(jobs.is_empty());
    }

    #[tokio::test]
    async fn jobs_that_stop_are_waited_for() {
        let (stop_tx, stop) = watch::channel(false);
        let mut jobs = JoinSet::new();
        for _ in 0..3 {
            let mut stop = stop.clone();
            jobs.spawn(async move { while tick(&mut stop, Duration::from_secs(1)).await {} });
        }
        stop_tx.send(true).unwrap();
        assert_eq!(wait_or_abort(&mut jobs, Duration::from_secs(30)).await, 0);
    }
}

/// Waits `period`, or returns false at once when asked to stop.
pub async fn tick(stop: &mut watch::Receiver<bool>, period: std::time::Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(period) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}
