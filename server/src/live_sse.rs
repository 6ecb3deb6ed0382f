//! `GET /live/auctions/{number}`: an auction's live state as Server-Sent Events. The first event
//! is the current snapshot; then one event per change, each the whole `AuctionLive` with its
//! version (also the event id), so a client that reconnects, or lags, simply takes the newest.
//! On each change an instance reads the auction once, however many watch it (`Snapshots`).

use crate::startup::ServerState;
use app::api::auctions::AuctionLive;
use app::api::notifications::InboxLive;
use app::server::live::Event as LiveEvent;
use app::server::services::{auctions, notifications};
use app::server::session;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream};
use sqlx::PgPool;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tower_sessions::Session;

/// The newest snapshot of each watched auction on this instance.
#[derive(Default)]
pub struct Snapshots {
    entries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Arc<AuctionLive>>>>>>,
}

impl Snapshots {
    /// The auction's state at `at_least` its version or newer: from the cache when it has one,
    /// else read (once: concurrent callers wait for that read). `fresh` always reads.
    async fn get(
        &self,
        pool: &PgPool,
        number: &str,
        at_least: i64,
        fresh: bool,
    ) -> Result<Option<Arc<AuctionLive>>, sqlx::Error> {
        let entry = self
            .entries
            .lock()
            .expect("snapshot map")
            .entry(number.to_owned())
            .or_default()
            .clone();
        let mut cached = entry.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| !fresh && c.version >= at_least) {
            return Ok(Some(c.clone()));
        }
        let mut conn = pool.acquire().await?;
        let Some(read) = auctions::live_view(&mut conn, number).await? else {
            return Ok(None);
        };
        let read = Arc::new(read);
        if cached.as_ref().is_none_or(|c| c.version <= read.version) {
            *cached = Some(read.clone());
        }
        Ok(Some(read))
    }
}

struct Watch {
    state: ServerState,
    number: String,
    changes: tokio::sync::broadcast::Receiver<LiveEvent>,
    closing: tokio::sync::watch::Receiver<bool>,
    /// The version last sent.
    sent: i64,
    first: Option<Arc<AuctionLive>>,
}

fn event(live: &AuctionLive) -> Event {
    // The clock is the server's now, for the browser's countdown.
    let mut live = live.clone();
    live.server_now = chrono::Utc::now();
    Event::default()
        .event("auction")
        .id(live.version.to_string())
        .json_data(&live)
        .expect("a snapshot serialises")
}

pub async fn auction(State(s): State<ServerState>, Path(number): Path<String>) -> Response {
    let number = number.trim().to_uppercase();
    // Subscribe first: a change committed while the snapshot is read is not missed.
    let changes = s.app.live.subscribe();
    let closing = s.app.live.closing();
    let first = match s.snapshots.get(&s.app.pool, &number, 0, true).await {
        Ok(Some(first)) => first,
        Ok(None) => return (StatusCode::NOT_FOUND, "No such auction.").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "live: reading an auction");
            return (StatusCode::SERVICE_UNAVAILABLE, "Try again in a moment.").into_response();
        }
    };
    let watch = Watch {
        state: s,
        number,
        changes,
        closing,
        sent: first.version,
        first: Some(first),
    };
    sse(stream(watch))
}

/// The stream as a response: a comment every 15 s keeps the connection alive, and a proxy is
/// asked never to buffer it.
fn sse(events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", "no".parse().expect("header value"));
    response
}

fn stream(watch: Watch) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(watch, |mut w| async move {
        if let Some(first) = w.first.take() {
            return Some((Ok(event(&first)), w));
        }
        loop {
            let (at_least, fresh) = tokio::select! {
                _ = w.closing.wait_for(|c| *c) => return None,
                change = w.changes.recv() => match change {
                    Ok(LiveEvent::Changed(c)) => {
                        if c.topic != "auction" || c.id != w.number || c.version <= w.sent {
                            continue;
                        }
                        (c.version, false)
                    }
                    // Announcements may have been missed: read what is there now.
                    Ok(LiveEvent::Resync) | Err(RecvError::Lagged(_)) => (0, true),
                    Err(RecvError::Closed) => return None,
                },
            };
            match w
                .state
                .snapshots
                .get(&w.state.app.pool, &w.number, at_least, fresh)
                .await
            {
                Ok(Some(live)) if live.version > w.sent => {
                    w.sent = live.version;
                    return Some((Ok(event(&live)), w));
                }
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "live: reading an auction");
                    continue;
                }
            }
        }
    })
}

struct Inbox {
    state: ServerState,
    user: String,
    changes: tokio::sync::broadcast::Receiver<LiveEvent>,
    closing: tokio::sync::watch::Receiver<bool>,
    first: Option<InboxLive>,
}

fn inbox_event(live: &InboxLive) -> Event {
    Event::default()
        .event("inbox")
        .json_data(live)
        .expect("an inbox serialises")
}

/// `GET /live/inbox`: the signed-in person's bell — the unread count and the newest
/// notification — first as it is, then again whenever it changes (a notification arrives or is
/// read in another tab).
pub async fn inbox(State(s): State<ServerState>, session: Session) -> Response {
    let user = match session::current(&s.app, &session).await {
        Ok(Some(user)) => user.id,
        Ok(None) => return (StatusCode::UNAUTHORIZED, "Sign in first.").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "live: reading the session");
            return (StatusCode::SERVICE_UNAVAILABLE, "Try again in a moment.").into_response();
        }
    };
    let changes = s.app.live.subscribe();
    let closing = s.app.live.closing();
    let first = match read_inbox(&s, user).await {
        Ok(first) => first,
        Err(e) => {
            tracing::error!(error = %e, "live: reading an inbox");
            return (StatusCode::SERVICE_UNAVAILABLE, "Try again in a moment.").into_response();
        }
    };
    let inbox = Inbox {
        state: s,
        user: user.to_string(),
        changes,
        closing,
        first: Some(first),
    };
    let stream = stream::unfold(inbox, |mut w| async move {
        if let Some(first) = w.first.take() {
            return Some((Ok::<_, Infallible>(inbox_event(&first)), w));
        }
        loop {
            tokio::select! {
                _ = w.closing.wait_for(|c| *c) => return None,
                change = w.changes.recv() => match change {
                    Ok(LiveEvent::Changed(c)) if c.topic != "inbox" || c.id != w.user => continue,
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                },
            }
            let user = w.user.parse().expect("a user id");
            match read_inbox(&w.state, user).await {
                Ok(live) => return Some((Ok(inbox_event(&live)), w)),
                Err(e) => tracing::warn!(error = %e, "live: reading an inbox"),
            }
        }
    });
    sse(stream)
}

async fn read_inbox(s: &ServerState, user: uuid::Uuid) -> Result<InboxLive, sqlx::Error> {
    let mut conn = s.app.pool.acquire().await?;
    notifications::live(&mut conn, user).await
}
