//! Health, metrics, security headers, cross-site refusal, error pages.

use super::support::{csp_nonce, json, TestApp};
use app::domain::user::Role;
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn health_reports_the_database_and_migrations(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, body) = json(reqwest::get(app.url("/health")).await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["database"], "ok");
    assert_eq!(body["migrations_current"], true);
    assert_eq!(
        body["migration_version"],
        server::database::latest_migration()
    );
    assert!(body["uptime_seconds"].is_u64());

    app.pool.close().await;
    let (status, body) = json(reqwest::get(app.url("/health")).await.unwrap()).await;
    assert_eq!(status, 503);
    assert_eq!(body["database"], "unreachable");
}

#[sqlx::test(migrations = "../migrations")]
async fn metrics_count_requests_by_route_and_status(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = app.client();
    for _ in 0..3 {
        api.login("x@example.com", "wrong password").await;
    }
    api.get("/login").await;
    let text = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"evcx_http_requests_total{route="/api/users/login",method="POST",status="401"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"evcx_http_requests_total{route="/login",method="GET",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"evcx_http_request_duration_seconds_count{route="/api/users/login"} 3"#)
    );
    assert!(text.contains("evcx_db_pool_connections "));
    assert!(text.contains("evcx_db_pool_idle "));
}

#[sqlx::test(migrations = "../migrations")]
async fn cross_site_posts_to_every_endpoint_are_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (api, _) = app.signed_in(Role::Admin).await;
    let paths: Vec<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(p, _)| p.to_owned())
        .collect();
    assert!(paths.len() > 10);
    for path in &paths {
        let res = api
            .http
            .post(app.url(path))
            .header("origin", "http://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{path} with a foreign Origin");
        let res = api
            .http
            .post(app.url(path))
            .header("sec-fetch-site", "cross-site")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{path} with Sec-Fetch-Site: cross-site");
    }
    // The same request from our own origin goes through.
    let res = api
        .http
        .post(app.url("/api/users/me"))
        .header("origin", format!("http://{}", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A cross-site WebSocket upgrade is refused too.
    let res = api
        .http
        .get(app.url("/api/users/me"))
        .header("origin", "http://evil.example")
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[sqlx::test(migrations = "../migrations")]
async fn pages_carry_security_headers_and_a_nonce_policy(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let res = reqwest::get(app.url("/login")).await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
    assert!(h.contains_key("x-request-id"));
    let csp = h["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let nonce = csp_nonce(&h);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "inline scripts carry the nonce"
    );
    assert!(html.contains("Sign in"));

    let api = reqwest::Client::new()
        .post(app.url("/api/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
    assert!(api.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
}

#[sqlx::test(migrations = "../migrations")]
async fn session_cookies_are_secure_outside_development(pool: PgPool) {
    let app = TestApp::spawn_with(pool, false).await;
    app.user(Role::Buyer, "prod@example.com").await;
    let res = app
        .client()
        .login("prod@example.com", super::support::PASSWORD)
        .await;
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_pages_answer_404_and_role_pages_answer_403(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let res = reqwest::get(app.url("/nothing/here")).await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("Page not found"));

    let (buyer, _) = app.signed_in(Role::Buyer).await;
    let res = buyer
        .http
        .get(app.url("/admin/users"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let html = res.text().await.unwrap();
    assert!(html.contains("403 — No access"));
    assert!(!html.contains("Create a CVA or admin account"));

    // A visitor is sent to sign in, and back afterwards.
    let res = app
        .client()
        .http
        .get(app.url("/admin/users"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], "/login?next=/admin/users");
}
