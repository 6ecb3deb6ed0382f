//! The marketplace search page as anonymous visitors see it, kept rendered in memory.
//!
//! `/market` is the busiest public page and is the same for every visitor who is not signed
//! in, except for its per-response script nonce. A rendered page is kept per query string and
//! served again, with a fresh nonce, for as long as no listing changed: a trigger announces
//! every committed change to listings on the live channel (migration 0010) and each instance's
//! hub counts them (`Hub::market_generation`). A page rendered before a change is never served
//! after this instance heard of it; while the instance is not listening nothing is served from
//! the cache. Seller names and expiry times that pass without a change to the listing make a
//! page at most `MAX_AGE` old. Signed-in visitors (their header differs) always get a fresh
//! render, and so does a request with `Cache-Control: no-cache`.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The page this cache keeps.
const PATH: &str = "/market";
/// The oldest page served (for what no listing change announces).
const MAX_AGE: Duration = Duration::from_secs(5);
/// Different searches kept at most; the whole cache is dropped when it is full.
const MAX_ENTRIES: usize = 512;
/// Pages larger than this are not kept.
const MAX_BODY: usize = 2 << 20;
/// More than any page can be (the search shows 50 listings); reading stops there.
const READ_LIMIT: usize = 64 << 20;
/// Stands for the nonce in a kept page (not something a page can contain otherwise).
const PLACEHOLDER: &str = "\u{0}evcx-nonce\u{0}";
/// Tells whether a response came from the cache (`hit`) or was rendered (`miss`).
pub const CACHE_HEADER: &str = "x-evcx-cache";
/// The session cookie's name (see `startup::router`).
pub const SESSION_COOKIE: &str = "evcx_session";

#[derive(Clone)]
struct Entry {
    generation: u64,
    rendered_at: Instant,
    status: StatusCode,
    headers: HeaderMap,
    /// The page with every occurrence of its nonce replaced by `PLACEHOLDER`.
    body: String,
}

/// Rendered marketplace pages by query string. Cloning shares them.
#[derive(Clone, Default)]
pub struct PageCache {
    pages: Arc<Mutex<HashMap<String, Entry>>>,
}

#[derive(Clone)]
pub struct CacheState {
    pub cache: PageCache,
    pub hub: app::server::live::Hub,
}

/// Serves `/market` to anonymous visitors from the cache when it is still current; otherwise
/// renders it and keeps it.
pub async fn serve(State(s): State<CacheState>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET || req.uri().path() != PATH || signed_in(req.headers()) {
        return next.run(req).await;
    }
    // Read before rendering: a change that commits meanwhile moves it on, so the page is not
    // kept as current.
    let Some(generation) = s.hub.market_generation() else {
        return next.run(req).await;
    };
    let key = req.uri().query().unwrap_or("").to_owned();
    // `Cache-Control: no-cache` asks for a fresh render (which is then kept).
    let kept = if wants_fresh(req.headers()) {
        None
    } else {
        s.cache.pages.lock().expect("page cache").get(&key).cloned()
    };
    if let Some(entry) = kept {
        if entry.generation == generation && entry.rendered_at.elapsed() < MAX_AGE {
            return entry.serve();
        }
    }
    let mut res = next.run(req).await;
    res.headers_mut()
        .insert(CACHE_HEADER, HeaderValue::from_static("miss"));
    let Some(nonce) = keepable(&res) else {
        return res;
    };
    let (parts, body) = res.into_parts();
    let bytes = match axum::body::to_bytes(body, READ_LIMIT).await {
        Ok(b) => b,
        // The render failed half way (its error is logged where it happened).
        Err(e) => {
            tracing::warn!(error = %e, "market page: could not read the rendered page");
            return Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(Body::from(
                    "The marketplace page could not be rendered. Please reload.",
                ))
                .expect("a plain response");
        }
    };
    if let Some(text) = std::str::from_utf8(&bytes)
        .ok()
        .filter(|t| t.len() <= MAX_BODY)
    {
        let entry = Entry {
            generation,
            rendered_at: Instant::now(),
            status: parts.status,
            headers: without_nonce(&parts.headers, &nonce),
            body: text.replace(&nonce, PLACEHOLDER),
        };
        let mut pages = s.cache.pages.lock().expect("page cache");
        if pages.len() >= MAX_ENTRIES && !pages.contains_key(&key) {
            pages.clear();
        }
        pages.insert(key, entry);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Whether the request carries a session cookie (a signed-in visitor, or one signing in).
fn signed_in(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|c| c.trim_start().starts_with(SESSION_COOKIE))
}

fn wants_fresh(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("no-cache"))
}

/// The response's script nonce, when the response may be kept: a complete HTML page that
/// sets no cookie and carries a nonce in its CSP.
fn keepable(res: &Response) -> Option<String> {
    let h = res.headers();
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if res.status() != StatusCode::OK || !html || h.contains_key(header::SET_COOKIE) {
        return None;
    }
    let csp = h.get(header::CONTENT_SECURITY_POLICY)?.to_str().ok()?;
    let start = csp.find("'nonce-")? + "'nonce-".len();
    let nonce = &csp[start..start + csp[start..].find('\'')?];
    (nonce.len() >= 16).then(|| nonce.to_owned())
}

fn without_nonce(headers: &HeaderMap, nonce: &str) -> HeaderMap {
    let mut kept = HeaderMap::new();
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == CACHE_HEADER {
            continue;
        }
        let value = match value.to_str() {
            Ok(v) if v.contains(nonce) => {
                HeaderValue::from_str(&v.replace(nonce, "evcx-nonce")).expect("a header value")
            }
            _ => value.clone(),
        };
        kept.append(name.clone(), value);
    }
    kept
}

impl Entry {
    /// The kept page with a nonce of its own.
    fn serve(&self) -> Response {
        let nonce = fresh_nonce();
        let mut res = Response::new(Body::from(Bytes::from(
            self.body.replace(PLACEHOLDER, &nonce),
        )));
        *res.status_mut() = self.status;
        let h = res.headers_mut();
        for (name, value) in &self.headers {
            let value = match value.to_str() {
                Ok(v) if v.contains("evcx-nonce") => {
                    HeaderValue::from_str(&v.replace("evcx-nonce", &nonce)).expect("a header value")
                }
                _ => value.clone(),
            };
            h.append(name.clone(), value);
        }
        h.insert(CACHE_HEADER, HeaderValue::from_static("hit"));
        res
    }
}

/// 128 random bits, hex (a valid CSP nonce).
fn fresh_nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(csp: &str, cookie: bool) -> Response {
        let mut res = Response::new(Body::from(
            "<script nonce=\"abcdefghijklmnop12\">x</script>",
        ));
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(csp).unwrap(),
        );
        if cookie {
            h.insert(header::SET_COOKIE, HeaderValue::from_static("a=b"));
        }
        res
    }

    #[test]
    fn only_pages_with_a_nonce_and_no_cookie_are_kept() {
        let csp = "script-src 'self' 'nonce-abcdefghijklmnop12' 'wasm-unsafe-eval'";
        assert_eq!(
            keepable(&page(csp, false)).as_deref(),
            Some("abcdefghijklmnop12")
        );
        assert_eq!(keepable(&page(csp, true)), None);
        assert_eq!(keepable(&page("default-src 'self'", false)), None);
    }

    #[test]
    fn a_kept_page_is_served_with_a_new_nonce_in_body_and_policy() {
        let nonce = "abcdefghijklmnop12";
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&format!("script-src 'nonce-{nonce}'")).unwrap(),
        );
        let entry = Entry {
            generation: 0,
            rendered_at: Instant::now(),
            status: StatusCode::OK,
            headers: without_nonce(&headers, nonce),
            body: format!("<script nonce=\"{nonce}\"></script><p>{nonce}</p>")
                .replace(nonce, PLACEHOLDER),
        };
        let res = entry.serve();
        let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        let fresh = csp
            .trim_start_matches("script-src 'nonce-")
            .trim_end_matches('\'');
        assert_eq!(fresh.len(), 32);
        assert_ne!(fresh, nonce);
        assert_eq!(res.headers()[CACHE_HEADER], "hit");
        let body =
            futures::executor::block_on(axum::body::to_bytes(res.into_body(), 1 << 20)).unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            format!("<script nonce=\"{fresh}\"></script><p>{fresh}</p>")
        );
    }

    #[test]
    fn the_session_cookie_means_signed_in() {
        let mut h = HeaderMap::new();
        assert!(!signed_in(&h));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; evcx_session=abc"),
        );
        assert!(signed_in(&h));
    }
}
