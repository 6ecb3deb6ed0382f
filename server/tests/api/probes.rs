//! The attacks an outside probe of the running platform found to work, replayed so they stay
//! fixed: each test is the probe's request sequence and asserts it no longer succeeds.

use super::support::{json, sandbox_delivery, TestApp, PASSWORD};
use app::domain::user::Role;
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

async fn available_money(app: &TestApp, user: Uuid) -> Decimal {
    sqlx::query_scalar(
        "SELECT coalesce(sum(balance), 0) FROM ledger_accounts
         WHERE owner_id = $1 AND asset = 'money' AND kind = 'available'",
    )
    .bind(user)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn payment_status(app: &TestApp, pay_url: &str) -> String {
    let id: Uuid = pay_url.trim_start_matches("/sandbox/pay/").parse().unwrap();
    sqlx::query_scalar("SELECT status FROM payments WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Probe: the payment UUID was the only key to the sandbox page, so a visitor without a cookie
/// could complete anyone's top-up and another user could decline it.
#[sqlx::test(migrations = "../migrations")]
async fn only_the_payer_signed_in_can_answer_a_sandbox_payment(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (payer, payer_id) = app.signed_in(Role::Buyer).await;
    let (other, _) = app.signed_in(Role::Buyer).await;
    let (status, body) = json(
        payer
            .post("/api/money/top-up", &[("amount", "250000")])
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let pay_url = body["pay_url"].as_str().unwrap().to_owned();

    // A visitor is sent to sign in first, and nothing is paid.
    let visitor = app.client();
    for res in [
        visitor.get(&pay_url).await,
        visitor.post(&pay_url, &[("choice", "succeed")]).await,
    ] {
        assert_eq!(res.status(), 303);
        let to = res.headers()["location"].to_str().unwrap();
        assert!(to.starts_with("/login?next=%2Fsandbox%2Fpay%2F"), "{to}");
    }
    // Another account is told there is no such payment, and cannot decline it.
    assert_eq!(other.get(&pay_url).await.status(), 404);
    assert_eq!(
        other.post(&pay_url, &[("choice", "fail")]).await.status(),
        404
    );
    assert_eq!(payment_status(&app, &pay_url).await, "pending");
    assert_eq!(available_money(&app, payer_id).await, Decimal::ZERO);

    // The payer can.
    let page = payer.get(&pay_url).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Pay 250.000 ₫"));
    let res = payer.post(&pay_url, &[("choice", "succeed")]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(payment_status(&app, &pay_url).await, "succeeded");
    assert_eq!(
        available_money(&app, payer_id).await,
        Decimal::from(250_000)
    );
}

/// Probe: with `LEPTOS_ENV=PROD` a top-up of 10,000,000,000 returned a sandbox page whose
/// "succeed" credited the wallet. In production the sandbox is off unless switched on.
#[sqlx::test(migrations = "../migrations")]
async fn production_takes_no_sandbox_payments_unless_switched_on(pool: PgPool) {
    let app = TestApp::spawn_configured(pool, |c| {
        c.dev_mode = false;
        c.payments.sandbox = false;
    })
    .await;
    let (buyer, buyer_id) = app.signed_in_over_http(Role::Buyer).await;
    for amount in ["10000000000", "250000"] {
        let (status, body) =
            json(buyer.post("/api/money/top-up", &[("amount", amount)]).await).await;
        assert_eq!(status, 409, "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("not available on this server"),
            "{body}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);

    // The sandbox's pages are not served, and its webhooks are refused even when signed.
    let page = format!("/sandbox/pay/{}", Uuid::new_v4());
    assert_eq!(buyer.get(&page).await.status(), 404);
    assert_eq!(
        buyer.post(&page, &[("choice", "succeed")]).await.status(),
        404
    );
    let (body, signature) = sandbox_delivery(&Uuid::new_v4().to_string(), "succeeded", "evt_1");
    let res = buyer
        .http
        .post(app.url("/webhooks/payments/sandbox"))
        .header("x-sandbox-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(available_money(&app, buyer_id).await, Decimal::ZERO);

    // No page says anything about test payments.
    let html = reqwest::get(app.url("/market"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("No real money moves"));
}

/// Switched on in production, the sandbox works, every page says no real money moves, and a
/// top-up is bounded by the configured maximum.
#[sqlx::test(migrations = "../migrations")]
async fn a_production_sandbox_says_so_on_every_page_and_caps_top_ups(pool: PgPool) {
    let app = TestApp::spawn_configured(pool, |c| {
        c.dev_mode = false;
        c.payments.sandbox = true;
        c.payments.max_top_up = Decimal::from(5_000_000);
    })
    .await;
    for path in ["/market", "/login", "/auctions"] {
        let html = reqwest::get(app.url(path))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("No real money moves"), "{path}");
    }
    let (buyer, buyer_id) = app.signed_in_over_http(Role::Buyer).await;
    let (status, body) = json(
        buyer
            .post("/api/money/top-up", &[("amount", "10000000000")])
            .await,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        super::support::field_error(&body, "amount").as_deref(),
        Some("One top-up can be at most 5.000.000 ₫.")
    );
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);

    let (status, body) = json(
        buyer
            .post("/api/money/top-up", &[("amount", "5000000")])
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let pay_url = body["pay_url"].as_str().unwrap();
    assert_eq!(
        buyer.post(pay_url, &[("choice", "succeed")]).await.status(),
        303
    );
    assert_eq!(
        available_money(&app, buyer_id).await,
        Decimal::from(5_000_000)
    );

    // In development the sandbox is expected: no notice.
    let dev = TestApp::spawn(app.pool.clone()).await;
    let html = reqwest::get(dev.url("/market"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("No real money moves"));
}

/// A sign-in from `address` (the tests' instances trust `X-Forwarded-For` when told to).
async fn login_from(app: &TestApp, address: &str, email: &str, password: &str) -> (u16, Value) {
    let res = app
        .client()
        .http
        .post(app.url("/api/users/login"))
        .header("x-forwarded-for", address)
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    json(res).await
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// Probe: 100 parallel sign-ins on one account from one address (99 wrong, the right one at
/// #77) gave 99 × 401 and 1 × 200: each was checked against the limit before any was counted.
#[sqlx::test(migrations = "../migrations")]
async fn parallel_sign_ins_cannot_pass_the_limits_together(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.user(Role::Buyer, "target@example.com").await;
    let attempts = (0..100).map(|i| {
        let api = app.client();
        async move {
            let password = if i == 77 { PASSWORD } else { "wrong password" };
            api.login("target@example.com", password)
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    // 10 per account and address: the rest are refused before their password is looked at.
    assert_eq!(count(&statuses, 429), 90, "{statuses:?}");
    assert_eq!(
        count(&statuses, 401) + count(&statuses, 200),
        10,
        "{statuses:?}"
    );
}

/// Probe: 30 parallel sign-ups from one address all passed a limit of 20; refused sign-ups
/// were never counted.
#[sqlx::test(migrations = "../migrations")]
async fn parallel_sign_ups_and_resets_cannot_pass_the_limits_together(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let signups = (0..30).map(|i| {
        let api = app.client();
        async move {
            let email = format!("parallel{i}@example.com");
            let form = [
                ("email", email.as_str()),
                ("full_name", "Parallel Person"),
                ("phone", "+84901234567"),
                ("role", "buyer"),
            ];
            api.post("/api/users/register", &form)
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(signups).await;
    assert_eq!(count(&statuses, 429), 10, "{statuses:?}");
    assert_eq!(count(&statuses, 200), 20, "{statuses:?}");
    assert_eq!(app.handle_account_requests().await, 20);

    // Refused sign-ups count too: this address has used its allowance.
    let refused = [
        ("email", "not an address"),
        ("full_name", "Parallel Person"),
        ("phone", "+84901234567"),
        ("role", "buyer"),
    ];
    let (status, body) = json(app.client().post("/api/users/register", &refused).await).await;
    assert_eq!(status, 429, "{body}");

    let resets = (0..20).map(|i| {
        let api = app.client();
        async move {
            let email = format!("parallel{i}@example.com");
            api.post("/api/users/password-reset/request", &[("email", &email)])
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(resets).await;
    assert_eq!(count(&statuses, 429), 10, "{statuses:?}");
    assert_eq!(count(&statuses, 200), 10, "{statuses:?}");
}

/// Rows in every table an account request could touch.
async fn account_rows(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "users",
        "email_outbox",
        "password_reset_tokens",
        "sign_up_links",
        "account_requests",
    ] {
        counts.push(app.count(&format!("SELECT count(*) FROM {table}")).await);
    }
    counts
}

/// Probe: sign-up answered "an account with this e-mail address already exists", and a reset
/// request for an address with an account took twice as long (8.0 ms vs 3.9 ms median). Now
/// both are answered alike for every address, after the same work: one queued request and
/// nothing else; the job then mails the address's owner.
#[sqlx::test(migrations = "../migrations")]
async fn sign_up_and_reset_answers_do_not_tell_which_addresses_have_accounts(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.user(Role::Buyer, "known@example.com").await;
    let api = app.client();
    for path in ["/api/users/register", "/api/users/password-reset/request"] {
        let mut answers = Vec::new();
        for email in ["known@example.com", "unknown@example.com"] {
            let form = [
                ("email", email),
                ("full_name", "Curious Person"),
                ("phone", "+84901234567"),
                ("role", "buyer"),
            ];
            let form = if path.ends_with("register") {
                &form[..]
            } else {
                &form[..1]
            };
            let before = account_rows(&app).await;
            let res = api.post(path, form).await;
            let status = res.status();
            let location = res.headers().get("location").cloned();
            let body = res.text().await.unwrap();
            let mut after = account_rows(&app).await;
            assert_eq!(
                after.pop(),
                Some(before[4] + 1),
                "{path} {email}: one request"
            );
            assert_eq!(after[..], before[..4], "{path} {email}: nothing else yet");
            answers.push((status, location, body));
        }
        assert_eq!(answers[0], answers[1], "{path}");
        assert_eq!(answers[0].0, 200, "{path}");
    }
    assert_eq!(app.handle_account_requests().await, 4);
    let subjects: Vec<(String, String)> = sqlx::query_as(
        "SELECT to_address, subject FROM email_outbox ORDER BY created_at, to_address",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        subjects,
        [
            (
                "known@example.com",
                "You already have an EV Carbon Exchange account"
            ),
            (
                "unknown@example.com",
                "Finish creating your EV Carbon Exchange account"
            ),
            (
                "known@example.com",
                "Reset your EV Carbon Exchange password"
            ),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
}

/// Probe: ten wrong passwords from one address locked the account for everyone, its owner and
/// admins included, for 15 minutes.
#[sqlx::test(migrations = "../migrations")]
async fn one_address_cannot_lock_anyone_out(pool: PgPool) {
    let app = TestApp::spawn_configured(pool, |c| c.trust_proxy = true).await;
    app.user(Role::Admin, "boss@example.com").await;
    for _ in 0..10 {
        let (status, _) = login_from(&app, "203.0.113.1", "boss@example.com", "guess").await;
        assert_eq!(status, 401);
    }
    let (status, body) = login_from(&app, "203.0.113.1", "boss@example.com", PASSWORD).await;
    assert_eq!((status, body["kind"].as_str()), (429, Some("rate_limited")));
    // The owner, elsewhere, signs in.
    let (status, body) = login_from(&app, "198.51.100.7", "boss@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
}

/// Many addresses together can pause an account's sign-ins, never lock its owner out: a
/// password reset lifts the pause at once.
#[sqlx::test(migrations = "../migrations")]
async fn a_paused_account_lets_its_owner_in_through_a_reset(pool: PgPool) {
    let app = TestApp::spawn_configured(pool, |c| {
        c.trust_proxy = true;
        c.limits.login_per_account.max = 12;
        c.limits.login_slowdown.step_ms = 1;
    })
    .await;
    app.user(Role::Buyer, "popular@example.com").await;
    for address in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        for _ in 0..4 {
            let (status, _) = login_from(&app, address, "popular@example.com", "guess").await;
            assert_eq!(status, 401);
        }
    }
    let (status, body) = login_from(&app, "198.51.100.7", "popular@example.com", PASSWORD).await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (429, Some("sign_in_paused"))
    );
    assert!(body["retry_after_secs"].as_u64().unwrap() > 0, "{body}");

    let api = app.client();
    let res = api
        .post(
            "/api/users/password-reset/request",
            &[("email", "popular@example.com")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let token = app.mailed_token("popular@example.com").await;
    let token = token.as_str();
    let form = [
        ("token", token),
        ("new_password", "a brand new password"),
        ("new_password_confirm", "a brand new password"),
    ];
    assert_eq!(
        api.post("/api/users/password-reset/confirm", &form)
            .await
            .status(),
        200
    );
    let (status, body) = login_from(
        &app,
        "198.51.100.7",
        "popular@example.com",
        "a brand new password",
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// The peak resident memory of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Probe: 100 parallel anonymous sign-ins took the server from 190 MB to 1.74 GB: an argon2
/// hash takes 19 MiB, and each ran at once. Hashes now queue, one per core.
#[sqlx::test(migrations = "../migrations")]
async fn a_flood_of_sign_ins_hashes_one_password_per_core_at_a_time(pool: PgPool) {
    let app = TestApp::spawn_configured(pool, |c| {
        c.limits.login_per_ip.max = 1_000;
    })
    .await;
    let attempts = (0..100).map(|i| {
        let api = app.client();
        async move {
            let email = format!("nobody{i}@example.com");
            let res = api.login(&email, "wrong password").await;
            let status = res.status().as_u16();
            // On a machine too busy to hash them all within the queue's wait, the rest are
            // told to come back: busy, never a 500, never an unbounded pile of hashes.
            if status == 503 {
                assert!(res.headers().contains_key("retry-after"));
            }
            status
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert!(count(&statuses, 401) > 0, "{statuses:?}");
    assert_eq!(
        count(&statuses, 401) + count(&statuses, 503),
        100,
        "{statuses:?}"
    );
    let cores = std::thread::available_parallelism().unwrap().get();
    let peak = app::server::password::peak_hashes_at_once();
    assert!(
        peak >= 1 && peak <= cores,
        "{peak} hashes at once on {cores} cores"
    );
}

/// Probe: `next=%2F%09%2Fevil.example` sent the browser to evil.example after sign-in, and a
/// CR/LF in `next` answered 500.
#[sqlx::test(migrations = "../migrations")]
async fn sign_in_never_redirects_off_site(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.user(Role::Buyer, "wanderer@example.com").await;
    for next in [
        "/\t/evil.example",
        "/\r\n/evil.example",
        "/\\evil.example",
        "//evil.example",
    ] {
        let res = app
            .client()
            .http
            .post(app.url("/api/users/login"))
            .header("accept", "text/html")
            .form(&[
                ("email", "wanderer@example.com"),
                ("password", PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert!(res.status().is_redirection(), "{next:?}: {}", res.status());
        assert_eq!(res.headers()["location"], "/", "{next:?}");
    }
}

/// Probe: an owner named `=HYPERLINK(…)` landed as a live formula in the verifier's issuance
/// CSV. Every CSV now keeps such cells as text.
#[sqlx::test(migrations = "../migrations")]
async fn csv_downloads_keep_formulas_as_text(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner_api, owner) = app.signed_in(Role::EvOwner).await;
    let name = r#"=HYPERLINK("http://evil.example","Invoice")"#;
    let res = owner_api
        .post(
            "/api/users/profile/update",
            &[("full_name", name), ("phone", "+84901234567")],
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    super::support::grant_credits(&app, owner, 1_000, "VN", 2026).await;
    let (cva, _) = app.signed_in(Role::Cva).await;
    let today = chrono::Utc::now().date_naive();
    let res = cva
        .get(&format!(
            "/api/reports/issuance/csv?from={}&to={today}",
            today - chrono::Duration::days(30)
        ))
        .await;
    assert_eq!(res.status(), 200);
    let csv = res.text().await.unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let owners: Vec<String> = rows.records().map(|r| r.unwrap()[1].to_owned()).collect();
    assert_eq!(owners, vec![format!("'{name}")], "{csv}");
}

/// An owner with 1,000,000 ₫ in the wallet whose identity an admin has checked.
async fn owner_who_may_withdraw(pool: PgPool) -> (TestApp, super::support::Api, Uuid) {
    let app = TestApp::spawn(pool).await;
    let (owner, owner_id) = app.signed_in(Role::EvOwner).await;
    owner.top_up("1000000").await;
    sqlx::query("UPDATE users SET kyc_verified_at = now() WHERE id = $1")
        .bind(owner_id)
        .execute(&app.pool)
        .await
        .unwrap();
    (app, owner, owner_id)
}

/// A withdrawal of 400,000 ₫ with `key`.
fn withdrawal_form(key: &str) -> [(&'static str, &str); 5] {
    [
        ("amount", "400000"),
        ("bank_name", "Vietcombank"),
        ("account_holder", "Nguyen Van A"),
        ("account_number", "0123456789"),
        ("idempotency_key", key),
    ]
}

/// Probe: 20 parallel withdrawals with one key answered 18 × the same number and 2 × 500 (the
/// key was looked up before the lock). Every repeat now answers the first one's number.
#[sqlx::test(migrations = "../migrations")]
async fn parallel_repeats_of_one_withdrawal_all_answer_it(pool: PgPool) {
    let (app, owner, owner_id) = owner_who_may_withdraw(pool).await;
    let repeats = (0..20).map(|_| {
        let owner = owner.clone();
        async move {
            let form = withdrawal_form("one-withdrawal-key");
            json(owner.post("/api/money/withdraw", &form).await).await
        }
    });
    let answers = futures::future::join_all(repeats).await;
    let first = answers[0].1.clone();
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(*body, first);
    }
    assert_eq!(app.count("SELECT count(*) FROM withdrawals").await, 1);
}

/// Crash run: a withdrawal in flight at SIGTERM answered 500. It had locked its user
/// `FOR UPDATE`, which also waits for any transaction holding the foreign-key lock a row
/// pointing at the user takes (an order, a bid): that purchase then waited for the wallet
/// the withdrawal locks next, and PostgreSQL broke the deadlock. The withdrawal now takes the
/// lock that serializes one user's withdrawals without conflicting with such rows.
#[sqlx::test(migrations = "../migrations")]
async fn a_withdrawal_does_not_wait_for_rows_that_point_at_its_user(pool: PgPool) {
    let (app, owner, owner_id) = owner_who_may_withdraw(pool).await;
    // What an insert of a row referencing the user holds until it commits.
    let mut purchase = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE")
        .bind(owner_id)
        .execute(&mut *purchase)
        .await
        .unwrap();
    let form = withdrawal_form("withdrawal-beside-a-purchase");
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        owner.post("/api/money/withdraw", &form),
    )
    .await
    .expect("the withdrawal waited for the other transaction");
    let (status, body) = json(answer).await;
    assert_eq!(status, 200, "{body}");
    purchase.rollback().await.unwrap();
    let held: Decimal = sqlx::query_scalar(
        "SELECT balance FROM ledger_accounts WHERE owner_id = $1 AND asset = 'money' AND kind = 'held'",
    )
    .bind(owner_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(held, Decimal::new(411_000, 0), "400,000 and the fee held");
}

async fn owners_vehicle(api: &super::support::Api) -> String {
    let form = [
        ("make", "VinFast"),
        ("model", "VF 8"),
        ("year", "2024"),
        ("vin", "1M8GDM9AXKP042788"),
        ("plate", "51K-123.45"),
        ("battery_kwh", "87.7"),
        ("efficiency_kwh_per_100km", "18.5"),
        ("grid_region", "VN"),
        ("time_zone", "Asia/Ho_Chi_Minh"),
    ];
    let (status, body) = json(api.post("/api/vehicles/register", &form).await).await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Probe: a 200 MB CSV without a newline took the server to 1.5 GB before it was refused, and
/// a JSON file with one 100 MB string added 330 MB. Records are bounded (1 MiB) and files
/// have a configured maximum; both are refused early, naming the limit, with memory flat.
#[sqlx::test(migrations = "../migrations")]
async fn oversized_imports_are_refused_early_with_memory_flat(pool: PgPool) {
    let app = TestApp::spawn_configured(pool, |c| c.imports.max_file_bytes = 8 * 1024 * 1024).await;
    let (owner, _) = app.signed_in(Role::EvOwner).await;
    let vehicle = owners_vehicle(&owner).await;
    let header = "start_time,end_time,distance_km\n";
    let row = "2026-01-01T08:00:00Z,2026-01-01T08:30:00Z,12.5\n";

    let before = peak_rss_kib();
    let no_newline = vec![b'x'; 6 * 1024 * 1024];
    let mut long_row = format!("{header}{row}{row}").into_bytes();
    long_row.extend(std::iter::repeat_n(b'9', 3 * 1024 * 1024));
    let mut json_string = br#"[{"start_time": "2026-01-01T08:00:00Z", "end_time": "2026-01-01T08:30:00Z", "distance_km": 3, "notes": ""#.to_vec();
    json_string.extend(std::iter::repeat_n(b'a', 6 * 1024 * 1024));
    json_string.extend(br#""}]"#);
    let too_big = format!("{header}{}", row.repeat(9 * 1024 * 1024 / row.len())).into_bytes();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "one-line.csv",
            no_newline,
            "The first record is longer than 1 MiB",
        ),
        (
            "long-row.csv",
            long_row,
            "The record after line 3 is longer than 1 MiB",
        ),
        (
            "long-string.json",
            json_string,
            "The first record is longer than 1 MiB",
        ),
        ("too-big.csv", too_big, "The file is larger than 8 MiB"),
    ];
    for (name, bytes, expected) in cases {
        let (status, body) = owner.upload(&vehicle, "trips", name, bytes).await;
        assert_eq!(status, 422, "{name}: {body}");
        let message = super::support::field_error(&body, "file").unwrap();
        assert!(message.contains(expected), "{name}: {message}");
    }
    assert_eq!(app.count("SELECT count(*) FROM data_imports").await, 0);
    let grown_mib = (peak_rss_kib() - before) / 1024;
    assert!(grown_mib < 100, "peak memory grew by {grown_mib} MiB");

    // A file within the limits still imports.
    let fine = format!("{header}{row}").into_bytes();
    let (status, body) = owner.upload(&vehicle, "trips", "fine.csv", fine).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.count("SELECT count(*) FROM trips").await, 1);
}

/// Probe: `/metrics` was public. In production it needs its bearer token, and is not there at
/// all without one configured.
#[sqlx::test(migrations = "../migrations")]
async fn production_metrics_need_their_token(pool: PgPool) {
    let closed = TestApp::spawn_configured(pool.clone(), |c| c.dev_mode = false).await;
    let res = reqwest::get(closed.url("/metrics")).await.unwrap();
    assert_eq!(res.status(), 404);

    let app = TestApp::spawn_configured(pool, |c| {
        c.dev_mode = false;
        c.metrics_token = Some("a long metrics token".into());
    })
    .await;
    let get = |auth: Option<&'static str>| {
        let mut req = reqwest::Client::new().get(app.url("/metrics"));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        async move { req.send().await.unwrap() }
    };
    assert_eq!(get(None).await.status(), 404);
    assert_eq!(get(Some("Bearer wrong token")).await.status(), 404);
    assert_eq!(get(Some("a long metrics token")).await.status(), 404);
    let res = get(Some("Bearer a long metrics token")).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("http_requests_total"));
}

/// Probe: retirement had no idempotency key, so a retried request retired twice. Parallel
/// repeats of one key now make one certificate; the public certificate names the holder only
/// when they chose so.
#[sqlx::test(migrations = "../migrations")]
async fn a_retirement_happens_once_per_key_and_names_the_holder_only_if_asked(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, owner_id) = app.signed_in(Role::EvOwner).await;
    super::support::grant_credits(&app, owner_id, 100, "VN", 2026).await;
    let repeats = (0..8).map(|_| {
        let owner = owner.clone();
        async move {
            let form = [
                ("quantity_kg", "10"),
                ("beneficiary", "Công ty Xanh"),
                ("reason", "Q4 deliveries"),
                ("idempotency_key", "one-retirement-key"),
            ];
            json(owner.post("/api/wallet/retire", &form).await).await
        }
    });
    let answers = futures::future::join_all(repeats).await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["number"], answers[0].1["number"]);
    }
    assert_eq!(app.count("SELECT count(*) FROM retirements").await, 1);
    let (_, wallet) = json(owner.post("/api/wallet", &[]).await).await;
    assert_eq!(wallet["balances"]["retired_kg"], 10);
    assert_eq!(
        answers[0].1["owner_name"],
        Value::Null,
        "not named unless asked"
    );

    let form = [
        ("quantity_kg", "5"),
        ("beneficiary", "Công ty Xanh"),
        ("reason", "Q4 deliveries"),
        ("idempotency_key", "another-retirement-key"),
        ("show_holder", "on"),
    ];
    let (status, named) = json(owner.post("/api/wallet/retire", &form).await).await;
    assert_eq!(status, 200, "{named}");
    let (_, public) = json(
        app.client()
            .post(
                "/api/certificates/get",
                &[("number", named["number"].as_str().unwrap())],
            )
            .await,
    )
    .await;
    assert_eq!(public["owner_name"], "Test EV owner");
    assert_eq!(public["beneficiary"], "Công ty Xanh");

    // A key missing or malformed is refused, and nothing is retired.
    let form = [
        ("quantity_kg", "5"),
        ("beneficiary", "Công ty Xanh"),
        ("reason", "Q4 deliveries"),
        ("idempotency_key", "short"),
    ];
    let (status, body) = json(owner.post("/api/wallet/retire", &form).await).await;
    assert_eq!(status, 422, "{body}");
    assert!(super::support::field_error(&body, "idempotency_key").is_some());
    assert_eq!(app.count("SELECT count(*) FROM retirements").await, 2);
}

/// Probe: a NUL byte in any text field (even anonymous `/market?q=%00`), missing or repeated
/// fields, JSON bodies, bodies over 2 MB and a non-multipart upload were all answered 500.
#[sqlx::test(migrations = "../migrations")]
async fn client_mistakes_are_answered_as_client_errors(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let res = reqwest::get(app.url("/market?q=%00")).await.unwrap();
    assert_eq!(res.status(), 400);
    let visitor = app.client();
    let raw = |path: &'static str, content_type: &'static str, body: Vec<u8>| {
        let visitor = visitor.clone();
        async move {
            let res = visitor
                .http
                .post(format!("{}{path}", visitor.base))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            json(res).await
        }
    };
    let form = "application/x-www-form-urlencoded";
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        ("/api/market/listings", form, b"q=%00".to_vec(), 400),
        (
            "/api/users/login",
            form,
            b"email=a%40example.com".to_vec(),
            400,
        ),
        (
            "/api/users/login",
            form,
            b"email=a%40example.com&email=b%40example.com&password=x".to_vec(),
            400,
        ),
        (
            "/api/users/login",
            "application/json",
            br#"{"email":"a@example.com","password":"x"}"#.to_vec(),
            400,
        ),
        ("/api/users/login", form, vec![b'a'; 3 * 1024 * 1024], 413),
    ];
    for (path, content_type, body, status) in cases {
        let (got, answer) = raw(path, content_type, body).await;
        assert_eq!(got, status, "{path}: {answer}");
        assert_eq!(answer["kind"], "bad_request", "{path}: {answer}");
    }

    let (owner, _) = app.signed_in(Role::EvOwner).await;
    let res = owner
        .http
        .post(app.url("/api/imports/upload"))
        .header("content-type", form)
        .body("vehicle_id=x&kind=trips&file=abc")
        .send()
        .await
        .unwrap();
    let (status, answer) = json(res).await;
    assert_eq!(
        (status, answer["kind"].as_str()),
        (400, Some("bad_request")),
        "{answer}"
    );
    let res = owner
        .post(
            "/api/users/profile/update",
            &[("full_name", "An\0"), ("phone", "+84901234567")],
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE full_name LIKE 'An%'")
            .await,
        0
    );
}
