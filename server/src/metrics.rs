//! `/metrics` in Prometheus text format: requests by route and status, a latency histogram
//! per route, database pool size and idle connections, uptime.

use crate::startup::ServerState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Counters {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

pub struct Metrics {
    started: Instant,
    counters: Mutex<Counters>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            counters: Mutex::default(),
        }
    }
}

impl Metrics {
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    fn observe(&self, route: String, method: String, status: u16, seconds: f64) {
        let mut c = self.counters.lock().expect("metrics lock");
        *c.requests
            .entry((route.clone(), method, status))
            .or_default() += 1;
        let h = c.latency.entry(route).or_default();
        h.count += 1;
        h.sum += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
    }

    pub fn render(&self, pool_size: u32, pool_idle: usize) -> String {
        let c = self.counters.lock().expect("metrics lock");
        let mut out = String::new();
        out.push_str(
            "# HELP evcx_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE evcx_http_requests_total counter\n");
        for ((route, method, status), n) in &c.requests {
            let _ = writeln!(out, "evcx_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}", escape(route));
        }
        out.push_str("# HELP evcx_http_request_duration_seconds Time to answer, by route.\n");
        out.push_str("# TYPE evcx_http_request_duration_seconds histogram\n");
        for (route, h) in &c.latency {
            let route = escape(route);
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "evcx_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(
                out,
                "evcx_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "evcx_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "evcx_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(out, "# HELP evcx_db_pool_connections Open database connections.\n# TYPE evcx_db_pool_connections gauge\nevcx_db_pool_connections {pool_size}");
        let _ = writeln!(out, "# HELP evcx_db_pool_idle Idle database connections.\n# TYPE evcx_db_pool_idle gauge\nevcx_db_pool_idle {pool_idle}");
        let _ = writeln!(out, "# HELP evcx_uptime_seconds Seconds since start.\n# TYPE evcx_uptime_seconds gauge\nevcx_uptime_seconds {}", self.uptime_secs());
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Counts every request under the route it matched. Server functions are labelled with their
/// own path (there is a fixed set of them); anything unmatched shares one label.
pub async fn track(
    State(s): State<ServerState>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let route = if s.api_paths.contains(path) {
        path.to_owned()
    } else if path.starts_with("/pkg/") {
        "/pkg/*".to_owned()
    } else {
        matched
            .map(|m| m.as_str().to_owned())
            .unwrap_or_else(|| "unmatched".to_owned())
    };
    let method = req.method().to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    s.metrics.observe(
        route,
        method,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`: open in development; in production only with `Authorization: Bearer
/// <EVCX_METRICS_TOKEN>`, and not there at all (404) without a token configured, so request
/// counts and pool sizes are not public.
pub async fn endpoint(
    State(s): State<ServerState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    if !s.app.config.dev_mode && !bearer_matches(&headers, s.app.config.metrics_token.as_deref()) {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    let body = s.metrics.render(s.app.pool.size(), s.app.pool.num_idle());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
        .into_response()
}

/// The request carries `Bearer <token>` (compared in constant time); never without a token.
fn bearer_matches(headers: &axum::http::HeaderMap, token: Option<&str>) -> bool {
    let Some(token) = token else {
        return false;
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let key = b"evcx metrics token";
    app::server::payments::signature_matches(
        key,
        given.as_bytes(),
        &app::server::payments::hmac_sha256_hex(key, token.as_bytes()),
    )
}
