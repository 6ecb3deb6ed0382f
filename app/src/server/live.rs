//! Live updates (ARCHITECTURE §4): a change commits with `pg_notify('live', {topic, id,
//! version})`; every instance LISTENs on one connection and fans the event out in-process with a
//! `tokio::sync::broadcast` hub. Subscribers re-read what changed (a snapshot carries its
//! version, so an event they already have is skipped). When the listening connection drops,
//! notifications may have been missed: the hub then sends `Resync` and every subscriber
//! re-reads.

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
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

/// The topic a listings trigger announces on every change to listings (migration 0010): the
/// marketplace's search pages are no longer what a cache holds.
pub const MARKET_TOPIC: &str = "market";

/// The in-process fan-out. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<Event>,
    /// Turns true when the instance shuts down: open streams end so it can.
    closing: Arc<watch::Sender<bool>>,
    /// Moves forward with every change to listings on any instance, and whenever announcements
    /// may have been missed. Not broadcast: nobody watches it, caches compare it.
    market: Arc<AtomicU64>,
    /// True while this instance's listening connection is up (announcements arrive).
    listening: Arc<AtomicBool>,
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
            closing: Arc::new(watch::channel(false).0),
            market: Arc::new(AtomicU64::new(0)),
            listening: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The marketplace's generation: equal readings before and after reading listings mean
    /// no change to listings committed in between — as far as this instance has been told.
    /// `None` while announcements are not arriving (nothing can be trusted to stay fresh).
    pub fn market_generation(&self) -> Option<u64> {
        // Read the generation before the flag: a drop bumps it after clearing the flag.
        let generation = self.market.load(Ordering::Acquire);
        self.listening.load(Ordering::Acquire).then_some(generation)
    }

    fn market_changed(&self) {
        self.market.fetch_add(1, Ordering::AcqRel);
    }

    fn set_listening(&self, up: bool) {
        self.listening.store(up, Ordering::Release);
        self.market_changed();
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
        hub.set_listening(true);
        hub.send(Event::Resync);
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    hub.set_listening(false);
                    return;
                }
                message = listener.try_recv() => match message {
                    Ok(Some(n)) => match serde_json::from_str::<Change>(n.payload()) {
                        Ok(change) if change.topic == MARKET_TOPIC => hub.market_changed(),
                        Ok(change) => hub.send(Event::Changed(change)),
                        Err(e) => tracing::warn!(error = %e, payload = n.payload(), "live: unreadable announcement"),
                    },
                    // The connection dropped: connect and listen again (then resync).
                    Ok(None) => {
                        tracing::warn!("live: the listening connection dropped, reconnecting");
                        hub.set_listening(false);
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "live: listening failed, reconnecting");
                        hub.set_listening(false);
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
