//! Sign-up, sign-in, sessions, profile, password change and reset.

use super::support::{field_error, json, TestApp, PASSWORD};
use app::domain::user::Role;
use app::server::mail::{self, Mailer};
use sqlx::PgPool;
use uuid::Uuid;

fn sign_up_form<'a>(email: &'a str, role: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("email", email),
        ("full_name", "  Lê   Minh "),
        ("phone", "+84 90 555 1234"),
        ("role", role),
    ]
}

#[sqlx::test(migrations = "../migrations")]
async fn sign_up_mails_a_link_that_creates_the_account_with_the_chosen_password(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = app.client();
    let res = api
        .post(
            "/api/users/register",
            &sign_up_form("Le.Minh@Example.com", "ev_owner"),
        )
        .await;
    assert_eq!(res.status(), 200);
    // Nothing exists until the link is followed, and nobody is signed in.
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
    assert_eq!(api.me().await, None);

    let (subject, mail) = app.last_mail("le.minh@example.com").await.unwrap();
    assert_eq!(subject, "Finish creating your EV Carbon Exchange account");
    assert!(mail.contains(&app.url("/signup/confirm?token=")), "{mail}");
    let token = app.mailed_token("le.minh@example.com").await;

    let (status, link) = json(
        app.client()
            .post("/api/users/register/link", &[("token", &token)])
            .await,
    )
    .await;
    assert_eq!(status, 200, "{link}");
    assert_eq!(link["email"], "le.minh@example.com");
    assert_eq!(link["full_name"], "Lê Minh");
    assert_eq!(link["role"], "ev_owner");

    let mismatch = [
        ("token", token.as_str()),
        ("password", "charging at night"),
        ("password_confirm", "charging at noon"),
    ];
    let (status, body) = json(api.post("/api/users/register/confirm", &mismatch).await).await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "password_confirm").unwrap(),
        "The two passwords do not match."
    );
    let form = [
        ("token", token.as_str()),
        ("password", "charging at night"),
        ("password_confirm", "charging at night"),
    ];
    let (status, body) = json(api.post("/api/users/register/confirm", &form).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], "le.minh@example.com");
    assert_eq!(body["full_name"], "Lê Minh");
    assert_eq!(body["phone"], "+84905551234");
    assert_eq!(body["role"], "ev_owner");
    assert!(body.get("password_hash").is_none());
    assert_eq!(api.me().await.as_deref(), Some("le.minh@example.com"));
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'le.minh@example.com'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );

    // The link works once.
    let (status, body) = json(
        app.client()
            .post("/api/users/register/confirm", &form)
            .await,
    )
    .await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("invalid_token"))
    );
    let (status, _) = json(
        app.client()
            .post("/api/users/register/link", &[("token", &token)])
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    let fresh = app.client();
    assert_eq!(
        fresh
            .login("le.minh@example.com", "charging at night")
            .await
            .status(),
        200
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn sign_up_names_every_bad_field_and_creates_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let form = [
        ("email", "not-an-email"),
        ("full_name", "   "),
        ("phone", "12ab"),
        ("role", "ev_owner"),
    ];
    let (status, body) = json(app.client().post("/api/users/register", &form).await).await;
    assert_eq!(status, 422);
    assert_eq!(body["kind"], "invalid");
    assert_eq!(
        field_error(&body, "email").unwrap(),
        "An e-mail address needs an @, like name@example.com."
    );
    assert_eq!(
        field_error(&body, "full_name").unwrap(),
        "Enter your full name."
    );
    assert!(field_error(&body, "phone").unwrap().contains("“a”"));
    assert_eq!(app.handle_account_requests().await, 0);
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM email_outbox").await, 0);
}

/// Probe: sign-up said which addresses have accounts. Now a taken address gets the same answer
/// as a new one, and its owner a note by e-mail.
#[sqlx::test(migrations = "../migrations")]
async fn sign_up_answers_a_taken_address_like_a_new_one_and_tells_its_owner(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.user(Role::Buyer, "taken@example.com").await;
    let api = app.client();

    let taken = api
        .post(
            "/api/users/register",
            &sign_up_form("TAKEN@example.com", "buyer"),
        )
        .await;
    let new = api
        .post(
            "/api/users/register",
            &sign_up_form("new@example.com", "buyer"),
        )
        .await;
    assert_eq!((taken.status().as_u16(), new.status().as_u16()), (200, 200));
    let answer = |res: reqwest::Response| async move {
        let location = res.headers().get("location").cloned();
        (location, res.text().await.unwrap())
    };
    assert_eq!(answer(taken).await, answer(new).await);

    let (subject, mail) = app.last_mail("taken@example.com").await.unwrap();
    assert_eq!(subject, "You already have an EV Carbon Exchange account");
    assert!(mail.contains(&app.url("/forgot-password")), "{mail}");
    assert!(
        !mail.contains("token="),
        "no way to make a second account: {mail}"
    );
    let (subject, _) = app.last_mail("new@example.com").await.unwrap();
    assert_eq!(subject, "Finish creating your EV Carbon Exchange account");

    // Both links of two sign-ups for one new address work, the second finds the account made.
    api.post(
        "/api/users/register",
        &sign_up_form("new@example.com", "buyer"),
    )
    .await;
    let second = app.mailed_token("new@example.com").await;
    let form = [
        ("token", second.as_str()),
        ("password", "charging at night"),
        ("password_confirm", "charging at night"),
    ];
    assert_eq!(
        api.post("/api/users/register/confirm", &form)
            .await
            .status(),
        200
    );
    let first: String = sqlx::query_scalar(
        "SELECT body_text FROM email_outbox WHERE to_address = 'new@example.com'
         ORDER BY created_at LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let first = first
        .split("token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let form = [
        ("token", first),
        ("password", "charging at night"),
        ("password_confirm", "charging at night"),
    ];
    let (status, body) = json(
        app.client()
            .post("/api/users/register/confirm", &form)
            .await,
    )
    .await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    assert_eq!(app.count("SELECT count(*) FROM users").await, 2);

    for role in ["admin", "cva", "superuser"] {
        let (status, body) = json(
            api.post(
                "/api/users/register",
                &sign_up_form("other@example.com", role),
            )
            .await,
        )
        .await;
        assert_eq!(status, 422, "role {role}");
        assert!(field_error(&body, "role").is_some(), "role {role}: {body}");
    }
}

/// One address receives at most five links or notes an hour, however often the forms are sent.
#[sqlx::test(migrations = "../migrations")]
async fn an_address_is_not_flooded_with_mail(pool: PgPool) {
    let app = TestApp::spawn_configured(pool, |c| {
        c.limits.signup_per_ip.max = 100;
        c.limits.reset_per_ip.max = 100;
    })
    .await;
    app.user(Role::Buyer, "victim@example.com").await;
    let api = app.client();
    for _ in 0..4 {
        let form = sign_up_form("victim@example.com", "buyer");
        assert_eq!(api.post("/api/users/register", &form).await.status(), 200);
        let form = [("email", "victim@example.com")];
        assert_eq!(
            api.post("/api/users/password-reset/request", &form)
                .await
                .status(),
            200
        );
    }
    assert_eq!(app.handle_account_requests().await, 8);
    assert_eq!(
        app.count("SELECT count(*) FROM email_outbox WHERE to_address = 'victim@example.com'")
            .await,
        5
    );
    assert_eq!(
        app.count("SELECT count(*) FROM account_requests WHERE outcome = 'too_many'")
            .await,
        3
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn sign_in_with_wrong_credentials_says_the_same_for_unknown_accounts(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.user(Role::Buyer, "buyer@example.com").await;
    let api = app.client();
    let (s1, b1) = json(api.login("buyer@example.com", "wrong password").await).await;
    let (s2, b2) = json(api.login("nobody@example.com", "wrong password").await).await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(b1, b2);
    assert_eq!(b1["kind"], "bad_credentials");
    assert_eq!(api.me().await, None);
    assert_eq!(api.login("Buyer@Example.com", PASSWORD).await.status(), 200);
    assert_eq!(api.me().await.as_deref(), Some("buyer@example.com"));
}

#[sqlx::test(migrations = "../migrations")]
async fn sign_in_issues_a_new_session_id_and_sign_out_ends_it(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.user(Role::Buyer, "a@example.com").await;
    app.user(Role::EvOwner, "b@example.com").await;
    let api = app.client();
    let cookie = |res: &reqwest::Response| {
        let c = res
            .headers()
            .get("set-cookie")
            .expect("a session cookie")
            .to_str()
            .unwrap()
            .to_owned();
        assert!(c.contains("HttpOnly"), "{c}");
        assert!(c.contains("SameSite=Lax"), "{c}");
        c.split(';').next().unwrap().to_owned()
    };
    let first = cookie(&api.login("a@example.com", PASSWORD).await);
    let second = cookie(&api.login("b@example.com", PASSWORD).await);
    assert_ne!(first, second, "the session id changes at sign-in");

    let res = api.post("/api/users/logout", &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(api.me().await, None);

    // Replaying the old cookie does not bring the session back.
    let raw = reqwest::Client::new();
    let res = raw
        .post(app.url("/api/users/me"))
        .header("cookie", second)
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "null");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_session_names_its_account_and_one_saved_before_that_still_works(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let id = app.user(Role::Buyer, "kept@example.com").await;
    let api = app.client();
    api.login("kept@example.com", PASSWORD).await;
    let named: Vec<(Option<Uuid>, Option<i32>)> =
        sqlx::query_as("SELECT user_id, session_version FROM tower_sessions.session")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        named,
        [(Some(id), Some(1))],
        "the session names its account"
    );

    // A session saved before the columns existed is read from its data.
    sqlx::query("UPDATE tower_sessions.session SET user_id = NULL, session_version = NULL")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(api.me().await.as_deref(), Some("kept@example.com"));

    // An expired session signs no one in, and its cookie is removed.
    sqlx::query("UPDATE tower_sessions.session SET expiry_date = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    let res = api.post("/api/users/me", &[]).await;
    let removed = res
        .headers()
        .get("set-cookie")
        .map(|c| c.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        removed.contains("Max-Age=0"),
        "the cookie is removed: {removed}"
    );
    assert_eq!(res.text().await.unwrap(), "null");
}

#[sqlx::test(migrations = "../migrations")]
async fn profile_edit_is_checked_stored_and_audited(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (api, id) = app.signed_in(Role::EvOwner).await;

    let (status, body) = json(
        api.post(
            "/api/users/profile/update",
            &[("full_name", ""), ("phone", "123")],
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "full_name").is_some() && field_error(&body, "phone").is_some());

    let (status, body) = json(
        api.post(
            "/api/users/profile/update",
            &[("full_name", "Trần Văn Nam"), ("phone", "0912 345 678")],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, profile) = json(api.post("/api/users/profile", &[]).await).await;
    assert_eq!(profile["full_name"], "Trần Văn Nam");
    assert_eq!(profile["phone"], "0912345678");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE entity_id = $1 AND action = 'user.update_profile'
           AND before->>'phone' = '+84900000000' AND after->>'phone' = '0912345678'",
    )
    .bind(id.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn changing_the_password_ends_the_other_sessions_only(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.user(Role::Buyer, "two@example.com").await;
    let (here, elsewhere) = (app.client(), app.client());
    here.login("two@example.com", PASSWORD).await;
    elsewhere.login("two@example.com", PASSWORD).await;

    let wrong = [
        ("current_password", "not it at all"),
        ("new_password", "brand new secret"),
        ("new_password_confirm", "brand new secret"),
    ];
    let (status, body) = json(here.post("/api/users/password", &wrong).await).await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "current_password").unwrap(),
        "This is not your current password."
    );
    assert_eq!(
        elsewhere.me().await.as_deref(),
        Some("two@example.com"),
        "a refused change ends nothing"
    );

    let good = [
        ("current_password", PASSWORD),
        ("new_password", "brand new secret"),
        ("new_password_confirm", "brand new secret"),
    ];
    assert_eq!(here.post("/api/users/password", &good).await.status(), 200);
    assert_eq!(here.me().await.as_deref(), Some("two@example.com"));
    assert_eq!(elsewhere.me().await, None);
    assert_eq!(
        app.client()
            .login("two@example.com", PASSWORD)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.client()
            .login("two@example.com", "brand new secret")
            .await
            .status(),
        200
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn password_reset_by_mailed_one_time_link(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.user(Role::EvOwner, "forgetful@example.com").await;
    let old_session = app.client();
    old_session.login("forgetful@example.com", PASSWORD).await;
    let api = app.client();

    // Unknown addresses get the same answer and no mail.
    assert_eq!(
        api.post(
            "/api/users/password-reset/request",
            &[("email", "ghost@example.com")]
        )
        .await
        .status(),
        200
    );
    assert_eq!(app.handle_account_requests().await, 1);
    assert_eq!(app.count("SELECT count(*) FROM email_outbox").await, 0);

    assert_eq!(
        api.post(
            "/api/users/password-reset/request",
            &[("email", "Forgetful@example.com")]
        )
        .await
        .status(),
        200
    );
    let (_, body) = app.last_mail("forgetful@example.com").await.unwrap();
    let link = body
        .lines()
        .find(|l| l.contains("/reset-password?token="))
        .expect("a link in the mail");
    assert!(
        link.starts_with(&app.url("/reset-password?token=")),
        "{link}"
    );
    let token = link.split("token=").nth(1).unwrap().trim();

    // Delivery in development writes an .eml file.
    let outbox = std::env::temp_dir().join(format!("evcx-outbox-{}", uuid::Uuid::new_v4()));
    let sent = mail::deliver_due(
        &app.pool,
        &Mailer::folder(&outbox).unwrap(),
        "http://localhost",
        10,
    )
    .await
    .unwrap();
    assert_eq!(sent, 1);
    let eml = std::fs::read_dir(&outbox)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(eml.extension().unwrap(), "eml");
    assert!(std::fs::read_to_string(&eml)
        .unwrap()
        .contains("Reset your EV Carbon Exchange password"));
    std::fs::remove_dir_all(&outbox).ok();

    let mismatch = [
        ("token", token),
        ("new_password", "remembered now"),
        ("new_password_confirm", "remembered later"),
    ];
    assert_eq!(
        api.post("/api/users/password-reset/confirm", &mismatch)
            .await
            .status(),
        422
    );
    let form = [
        ("token", token),
        ("new_password", "remembered now"),
        ("new_password_confirm", "remembered now"),
    ];
    assert_eq!(
        api.post("/api/users/password-reset/confirm", &form)
            .await
            .status(),
        200
    );
    let (status, body) = json(api.post("/api/users/password-reset/confirm", &form).await).await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("invalid_token")),
        "the link works once"
    );

    assert_eq!(old_session.me().await, None, "a reset ends every session");
    assert_eq!(
        api.login("forgetful@example.com", "remembered now")
            .await
            .status(),
        200
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn failed_logins_are_limited_per_address_with_retry_after(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.user(Role::Buyer, "target@example.com").await;
    let api = app.client();
    let mut statuses = Vec::new();
    for i in 0..30 {
        let res = api
            .login(&format!("guess{i}@example.com"), "wrong password")
            .await;
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            let wait: u64 = res.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(wait > 0 && wait <= 15 * 60, "retry-after {wait}");
        }
    }
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    // Even the right password is refused from that address until the window passes.
    assert_eq!(
        api.login("target@example.com", PASSWORD).await.status(),
        429
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn failed_logins_are_limited_per_account(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.user(Role::Buyer, "victim@example.com").await;
    let api = app.client();
    for _ in 0..10 {
        assert_eq!(
            api.login("victim@example.com", "wrong password")
                .await
                .status(),
            401
        );
    }
    let (status, body) = json(api.login("VICTIM@example.com", "wrong password").await).await;
    assert_eq!((status, body["kind"].as_str()), (429, Some("rate_limited")));
}
