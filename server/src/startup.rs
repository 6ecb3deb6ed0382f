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

/// Serves until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Responses leave in several writes (streamed SSR): without TCP_NODELAY, Nagle's algorithm
    // and the client's delayed ACK hold the last segment back for 40 ms.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
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
