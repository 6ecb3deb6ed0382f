//! The HTTP application: leptos pages and server functions, `/health`, `/metrics`, and the
//! middleware around them; and running it until a shutdown signal.

use crate::metrics::{self, Metrics};
use crate::{health, security};
use app::server::AppState;
use app::{shell, App};
use axum::body::Body;
use axum::extract::{FromRef, Request, State};
use axum::http::{HeaderName, Request as HttpRequest};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{middleware, Router};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, handle_server_fns_with_context, LeptosRoutes};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

/// The router's state: the application state plus what only the HTTP layer needs.
#[derive(Clone)]
pub struct ServerState {
    pub app: AppState,
    pub metrics: Arc<Metrics>,
    /// Paths of every server function (metrics label them by path; anything else is one label).
    pub api_paths: Arc<HashSet<String>>,
    /// The newest state of each auction watched live on this instance.
    pub snapshots: Arc<crate::live_sse::Snapshots>,
}

impl FromRef<ServerState> for LeptosOptions {
    fn from_ref(s: &ServerState) -> Self {
        s.app.leptos_options.clone()
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(app: AppState) -> Router {
    let api_paths = leptos::server_fn::axum::server_fn_paths()
        .map(|(p, _)| p.to_owned())
        .collect();
    let state = ServerState {
        app: app.clone(),
        metrics: Arc::new(Metrics::default()),
        api_paths: Arc::new(api_paths),
        snapshots: Default::default(),
    };
    let options = app.leptos_options.clone();
    let routes = generate_route_list(App);
    let context = {
        let app = app.clone();
        move || provide_context(app.clone())
    };

    let sessions = SessionManagerLayer::new(crate::sessions::Sessions::new(app.pool.clone()))
        .with_name(crate::page_cache::SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(!app.config.dev_mode)
        .with_expiry(Expiry::OnInactivity(time::Duration::days(7)));

    let mut router = Router::new();
    if app.config.payments.sandbox {
        router = router.route(
            "/sandbox/pay/{payment}",
            get(crate::gateway::payment_page).post(crate::gateway::choose),
        );
    }
    router
        .route("/api/{*fn_name}", post(server_fn).get(server_fn))
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let options = options.clone();
            move || shell(options.clone())
        })
        // Files of the site (`/pkg/…`, the favicon), and the 404 page for anything else. Not
        // `file_and_error_handler`: it serves a file under `Owner::new()`, a child of whatever
        // owner a page render left current on this worker thread, and applies *that page's*
        // ResponseOptions to the file, taking its CSP header with it; the page then arrived
        // without its script nonce, its scripts were blocked and it never hydrated.
        .fallback_service(
            leptos_axum::site_pkg_dir_service(&options)
                .call_fallback_on_method_not_allowed(true)
                .fallback(leptos_axum::ErrorHandler::new_with_context(context, shell, options)),
        )
        .route("/certificates/{file}", get(crate::documents::certificate_pdf))
        .route("/invoices/{file}", get(crate::documents::invoice_pdf))
        .route("/webhooks/payments/{gateway}", post(crate::gateway::webhook))
        .route("/live/auctions/{number}", get(crate::live_sse::auction))
        .route("/live/inbox", get(crate::live_sse::inbox))
        .route("/health", get(health::health))
        .route("/metrics", get(metrics::endpoint))
        .layer(middleware::from_fn_with_state(
            crate::page_cache::CacheState {
                cache: Default::default(),
                hub: app.live.clone(),
            },
            crate::page_cache::serve,
        ))
        .layer(sessions)
        .layer(CatchPanicLayer::custom(security::panic_response))
        .layer(middleware::from_fn(security::client_errors))
        .layer(middleware::from_fn(security::refuse_cross_site))
        .layer(middleware::from_fn(security::headers))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &HttpRequest<Body>| {
                    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                }))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
        .with_state(state)
}

async fn server_fn(State(s): State<ServerState>, req: Request) -> impl IntoResponse {
    handle_server_fns_with_context(move || provide_context(s.app.clone()), req).await
}

/// How long requests in flight get to finish after the shutdown signal. Longer than the pool's
/// acquire timeout (5 s), so a request waiting for a connection still gets its answer (503
/// when the database is gone); bounded, so a database that is gone cannot hold the exit (some
/// requests wait on the pool several times in a row, or queue behind one that does).
pub const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(6);

/// Serves until `shutdown` resolves, then lets requests in flight finish, for at most
/// `drain`; the ones still running then are dropped (their transactions roll back).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    drain: std::time::Duration,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    use std::future::IntoFuture;
    // Responses leave in several writes (streamed SSR): without TCP_NODELAY, Nagle's algorithm
    // and the client's delayed ACK hold the last segment back for 40 ms.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
    });
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        signalled.send(()).ok();
    };
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .into_future();
    let drained = async move {
        match on_signal.await {
            Ok(()) => tokio::time::sleep(drain).await,
            // The server ended before any signal: `served` has finished.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        result = served => result,
        () = drained => {
            tracing::warn!(
                grace_s = drain.as_secs_f64(),
                "requests still in flight after the shutdown grace; closing them"
            );
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Starts `serve` with one route that takes `work`, sends one request, then the shutdown
    /// signal; answers the client's reading (to the connection's end) and how long `serve`
    /// took to return after the signal.
    async fn request_then_shutdown(
        work: Duration,
        drain: Duration,
    ) -> (tokio::task::JoinHandle<String>, Duration) {
        let router = Router::new().route(
            "/slow",
            get(move || async move {
                tokio::time::sleep(work).await;
                "done"
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            router,
            async move {
                stopped.await.ok();
            },
            drain,
        ));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /slow HTTP/1.1\r\nhost: test\r\n\r\n")
            .await
            .unwrap();
        let reading = tokio::spawn(async move {
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).await.ok();
            String::from_utf8_lossy(&answer).into_owned()
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        let signalled = Instant::now();
        server.await.unwrap().unwrap();
        (reading, signalled.elapsed())
    }

    #[tokio::test]
    async fn a_request_in_flight_at_the_signal_gets_its_answer() {
        let (reading, _) =
            request_then_shutdown(Duration::from_millis(500), Duration::from_secs(30)).await;
        let answer = reading.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
    }

    /// Crash run: with its PostgreSQL killed, the server took 10–30 s to exit after SIGTERM
    /// (requests queued on the pool, 5 s per try). The drain is bounded.
    #[tokio::test]
    async fn a_request_that_does_not_end_does_not_hold_the_exit() {
        let (reading, took) =
            request_then_shutdown(Duration::from_secs(120), Duration::from_millis(300)).await;
        // The connection's task outlives `serve`: the process exit ends it.
        assert!(
            took < Duration::from_secs(10),
            "serve returned after {took:?}"
        );
        reading.abort();
    }
}
