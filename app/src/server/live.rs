//! Live updates (ARCHITECTURE §4): a change commits with `pg_notify('live', {topic, id,
//! version})`; every instance LISTENs on one connection and fans the event out in-process with a
//! `tokio::sync::broadcast` hub. Subscribers re-read what changed (a snapshot carries its
//! version, so an event they already have is skipped). When the listening connection drops,
//! notifications may have been missed: the hub then sends `Resync` and every subscriber
//! re-reads.

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{broadcast, watch};

/// The channel every live change is announced on.
pub const CHANNEL: &str = "live";

/// What changed: e.g. `{topic: "auction", id: "LST-000042", version: 7}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub topic: String,
    pub id: String,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Changed(Change),
    /// Announcements may have been missed: re-read everything watched.
    Resync,
}

/// The in-process fan-out. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<Event>,
    /// Turns true when the instance shuts down: open streams end so it can.
    closing: std::sync::Arc<watch::Sender<bool>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    pub fn new() -> Hub {
        // A subscriber that falls this far behind is told `Lagged` and re-reads.
        let (tx, _) = broadcast::channel(4096);
        Hub {
            tx,
            closing: std::sync::Arc::new(watch::channel(false).0),
        }
    }

    /// Ends every subscriber's stream (the instance is shutting down).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Turns true when the instance shuts down.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    fn send(&self, event: Event) {
        // Nobody listening is fine.
        let _ = self.tx.send(event);
    }
}

/// The announcement's payload, for a statement that sends it itself with
/// `pg_notify('live', payload)`.
pub fn payload(topic: &str, id: &str, version: i64) -> String {
    serde_json::to_string(&Change {
        topic: topic.to_owned(),
        id: id.to_owned(),
        version,
    })
    .expect("a change serialises")
}

/// Announces a change; delivered to every instance when the transaction commits (and not at
/// all if it rolls back).
pub async fn announce(
    conn: &mut PgConnection,
    topic: &str,
    id: &str,
    version: i64,
) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_string(&Change {
        topic: topic.to_owned(),
        id: id.to_owned(),
        version,
    })
    .expect("a change serialises");
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// Listens for announcements and fans them out until `stop` turns true. Reconnects by itself
/// (sending `Resync`, since what was announced meanwhile is lost).
pub async fn listen(pool: PgPool, hub: Hub, mut stop: watch::Receiver<bool>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "live: cannot connect, retrying");
                if wait_or_stop(&mut stop).await {
                    return;
                }
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "live: cannot LISTEN, retrying");
            if wait_or_stop(&mut stop).await {
                return;
            }
            continue;
        }
        // Whatever happened before this connection listened is re-read.
        hub.send(Event::Resync);
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                message = listener.try_recv() => match message {
                    Ok(Some(n)) => match serde_json::from_str::<Change>(n.payload()) {
                        Ok(change) => hub.send(Event::Changed(change)),
                        Err(e) => tracing::warn!(error = %e, payload = n.payload(), "live: unreadable announcement"),
                    },
                    // The connection dropped; `try_recv` reconnects on the next call.
                    Ok(None) => hub.send(Event::Resync),
                    Err(e) => {
                        tracing::warn!(error = %e, "live: listening failed, reconnecting");
                        break;
                    }
                },
            }
        }
    }
}

/// Waits a second; true when asked to stop meanwhile.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}
