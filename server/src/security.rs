//! Request hygiene for every response: cross-site request refusal (CSRF) and security headers.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Refuses any state-changing request, and any WebSocket upgrade, that a foreign site sent:
/// `Sec-Fetch-Site` says cross-site/same-site, or `Origin` names another origin. Requests
/// without either header (scripts, integrations) pass; the session cookie is `SameSite=Lax`.
pub async fn refuse_cross_site(req: Request, next: Next) -> Response {
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let upgrade = req.headers().contains_key(header::UPGRADE);
    if (changes_state || upgrade) && is_foreign(req.headers()) {
        tracing::warn!(method = %req.method(), path = %req.uri().path(), "refused a cross-site request");
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"kind":"forbidden","message":"Cross-site requests are refused."}"#,
        )
            .into_response();
    }
    next.run(req).await
}

fn is_foreign(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        if site == "cross-site" || site == "same-site" {
            return true;
        }
    }
    match text("origin") {
        None => false,
        Some(origin) => {
            let authority = origin
                .split_once("://")
                .map(|(_, rest)| rest.trim_end_matches('/'));
            match (authority, text("host")) {
                (Some(a), Some(host)) => !a.eq_ignore_ascii_case(host),
                _ => true, // "null" or unparsable origins are foreign
            }
        }
    }
}

/// Headers on every response. HTML pages carry their own CSP with a per-response script
/// nonce (set by the app shell); everything else gets a strict default.
pub async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'",
            ),
        );
    }
    res
}

/// A handler that panicked answers with a friendly page and a reference; the panic message
/// goes to the log under that reference.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    let reference = uuid::Uuid::new_v4().simple().to_string()[..10].to_uppercase();
    tracing::error!(%reference, panic = message, "request handler panicked");
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Something went wrong</title>\
         <link rel=\"stylesheet\" href=\"/pkg/evcx.css\"></head><body><main><section class=\"error-page\">\
         <h1>Something went wrong</h1><p>This is our fault, not yours. Please try again in a moment.</p>\
         <p class=\"muted\">If it keeps happening, tell support the reference <code>{reference}</code>.</p>\
         <p><a href=\"/\">Go to your home page</a></p></section></main></body></html>"
    );
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn foreign_origins_are_detected() {
        assert!(!is_foreign(&headers(&[])));
        assert!(!is_foreign(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000")
        ])));
        assert!(!is_foreign(&headers(&[
            ("sec-fetch-site", "same-origin"),
            ("host", "a.test")
        ])));
        assert!(is_foreign(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://evil.test")
        ])));
        assert!(is_foreign(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3001")
        ])));
        assert!(is_foreign(&headers(&[
            ("host", "a.test"),
            ("origin", "null")
        ])));
        assert!(is_foreign(&headers(&[("sec-fetch-site", "cross-site")])));
    }
}
