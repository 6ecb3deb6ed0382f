//! Live pieces for the browser: an auction's state and the notification bell followed over
//! Server-Sent Events, and a clock that ticks every second on the server's time (for
//! countdowns). Server-rendered pages show the state they were rendered with; once hydrated
//! they follow the stream.

use crate::api::auctions::AuctionLive;
use crate::api::notifications::InboxLive;
use chrono::{DateTime, Duration, Utc};
use leptos::prelude::*;

/// The newest state of one auction: `initial` (the page's), then every newer version the
/// stream brings. `connected` is true while the stream is open; the browser reconnects by
/// itself and the server starts each connection with the current state.
pub fn follow_auction(initial: AuctionLive) -> (ReadSignal<AuctionLive>, ReadSignal<bool>) {
    let (live, set_live) = signal(initial);
    let (connected, set_connected) = signal(false);
    #[cfg(not(feature = "hydrate"))]
    let _ = (set_live, set_connected);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use wasm_bindgen::closure::Closure;
        use wasm_bindgen::JsCast;
        let number = live.with_untracked(|l| l.number.clone());
        let Ok(source) = web_sys::EventSource::new(&format!("/live/auctions/{number}")) else {
            return;
        };
        let on_auction =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                let Some(text) = e.data().as_string() else {
                    return;
                };
                if let Ok(next) = serde_json::from_str::<AuctionLive>(&text) {
                    set_connected.set(true);
                    // Versions only move forward; an equal one refreshes the clock.
                    if next.version >= live.with_untracked(|l| l.version) {
                        set_live.set(next);
                    }
                }
            });
        let _ =
            source.add_event_listener_with_callback("auction", on_auction.as_ref().unchecked_ref());
        on_auction.forget();
        let on_error = Closure::<dyn FnMut()>::new(move || set_connected.set(false));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
        let source = send_wrapper::SendWrapper::new(source);
        on_cleanup(move || source.close());
    });
    (live, connected)
}

/// Now, on the server's clock: starts at `server_now` (what the page was rendered with, so
/// hydration matches) and, in the browser, ticks every second. `sync` gives the server's
/// time whenever a fresher reading arrives.
pub fn server_clock(
    server_now: DateTime<Utc>,
    sync: Signal<DateTime<Utc>>,
) -> ReadSignal<DateTime<Utc>> {
    let (now, set_now) = signal(server_now);
    #[cfg(feature = "hydrate")]
    {
        // How far the server's clock is ahead of this browser's.
        let offset = StoredValue::new(server_now - Utc::now());
        Effect::new(move |_| {
            let at = sync.get();
            offset.set_value(at - Utc::now());
            set_now.set(at);
        });
        Effect::new(move |_| {
            if let Ok(handle) = set_interval_with_handle(
                move || set_now.set(Utc::now() + offset.get_value()),
                std::time::Duration::from_secs(1),
            ) {
                on_cleanup(move || handle.clear());
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (sync, set_now);
    now
}

/// Seconds until `ends_at` on `now`, for a countdown's attributes.
pub fn seconds_left(ends_at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (ends_at - now).num_seconds().max(0)
}

/// A small window is "ending soon" (the countdown turns urgent).
pub fn ending_soon(ends_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    ends_at - now <= Duration::minutes(5)
}

/// The signed-in person's bell as the live stream last told it (`None` until it has): pages
/// showing notifications re-read when it changes. Provided once for the whole app.
#[derive(Clone, Copy)]
pub struct InboxFeed(pub RwSignal<Option<InboxLive>>);

impl InboxFeed {
    pub fn provide() {
        provide_context(InboxFeed(RwSignal::new(None)));
    }

    pub fn get() -> InboxFeed {
        use_context::<InboxFeed>().unwrap_or_else(|| InboxFeed(RwSignal::new(None)))
    }

    /// Changes whenever a notification arrives or is read — in the browser. On the server it
    /// is constant: the bell fills the feed while the page is being rendered, and a page that
    /// followed it there would fetch its data twice and re-run its sources after the response
    /// has finished (and its route parameters are gone).
    pub fn stamp(&self) -> Option<(i64, Option<(uuid::Uuid, DateTime<Utc>, i32)>)> {
        if !cfg!(feature = "hydrate") {
            return None;
        }
        self.0.with(|i| {
            i.as_ref().map(|i| {
                (
                    i.unread,
                    i.latest.as_ref().map(|n| (n.id, n.created_at, n.repeats)),
                )
            })
        })
    }
}

/// Follows `GET /live/inbox` into the app's `InboxFeed`, starting from `initial`. The browser
/// reconnects by itself; the server starts every connection with the current state.
pub fn follow_inbox(initial: InboxLive) {
    let feed = InboxFeed::get();
    feed.0.set(Some(initial));
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use wasm_bindgen::closure::Closure;
        use wasm_bindgen::JsCast;
        let Ok(source) = web_sys::EventSource::new("/live/inbox") else {
            return;
        };
        let on_inbox =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                if let Some(next) = e
                    .data()
                    .as_string()
                    .and_then(|t| serde_json::from_str::<InboxLive>(&t).ok())
                {
                    if feed.0.with_untracked(|now| now.as_ref() != Some(&next)) {
                        feed.0.set(Some(next));
                    }
                }
            });
        let _ = source.add_event_listener_with_callback("inbox", on_inbox.as_ref().unchecked_ref());
        on_inbox.forget();
        let source = send_wrapper::SendWrapper::new(source);
        on_cleanup(move || source.close());
    });
}
