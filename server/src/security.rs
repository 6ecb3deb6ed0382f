//! Request hygiene for every response: cross-site request refusal (CSRF), client errors
//! answered as client errors, and security headers.

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

/// The largest server-function body (a form); uploads stream and are bounded by their own
/// limits.
pub const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

/// The server function that takes a multipart upload.
const UPLOAD: &str = "/api/imports/upload";

fn client_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "kind": "bad_request", "message": message });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Requests a client got wrong are answered as such (400/413) and never reach code that would
/// fail on them with a 500: a NUL character in the address or a form (no text column holds
/// one), a form over `MAX_FORM_BYTES`, an upload that is not multipart. A server function's
/// own refusal to read its arguments (a missing field, a repeated field, a JSON body) is a
/// `bad_request`, answered 400 instead of the 500 the framework gives every error it meets
/// before the function runs.
pub async fn client_errors(req: Request, next: Next) -> Response {
    let nul = |s: &str| s.contains('\0') || s.to_ascii_lowercase().contains("%00");
    if nul(req.uri().path()) || req.uri().query().is_some_and(nul) {
        return client_error(
            StatusCode::BAD_REQUEST,
            "The address contains a NUL character, which no field accepts.",
        );
    }
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if req.uri().path() == UPLOAD && req.method() == Method::POST {
        if !(content_type.starts_with("multipart/form-data") && content_type.contains("boundary="))
        {
            return client_error(
                StatusCode::BAD_REQUEST,
                "Send the file as multipart/form-data (fields vehicle_id, kind, file).",
            );
        }
        return answer_as_client_error(next.run(req).await).await;
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_FORM_BYTES) {
        return too_large();
    }
    let req = if content_type.starts_with("application/x-www-form-urlencoded") {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return too_large();
        };
        let text = String::from_utf8_lossy(&bytes);
        if nul(&text) {
            return client_error(
                StatusCode::BAD_REQUEST,
                "A field contains a NUL character, which no field accepts.",
            );
        }
        Request::from_parts(parts, axum::body::Body::from(bytes))
    } else {
        req
    };
    answer_as_client_error(next.run(req).await).await
}

fn too_large() -> Response {
    client_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "The request is larger than 2 MiB, the most a form takes.",
    )
}

/// A 500 whose body is a `bad_request` (the framework could not read the arguments) is a 400.
async fn answer_as_client_error(res: Response) -> Response {
    if res.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let kind = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned));
    if kind.as_deref() == Some("bad_request") {
        parts.status = StatusCode::BAD_REQUEST;
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
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
