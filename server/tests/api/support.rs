//! A running server for one test, and a client with its own cookie jar.

use app::domain::user::Role;
use app::server::services::accounts::{self, NewAccount};
use app::server::state::{PaymentsConfig, RateLimits};
use app::server::{AppConfig, AppState};
use leptos::config::LeptosOptions;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT};
use reqwest::{redirect, Client, Response};
use serde_json::Value;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;

pub struct TestApp {
    pub addr: SocketAddr,
    pub pool: PgPool,
    /// The server's state, for tests that call services directly.
    pub state: AppState,
}

pub const PASSWORD: &str = "a long test password";
/// The sandbox gateway's webhook secret in tests (tests sign deliveries with it).
pub const SANDBOX_SECRET: &str = "test sandbox webhook secret";

impl TestApp {
    pub async fn spawn(pool: PgPool) -> TestApp {
        Self::spawn_with(pool, true).await
    }

    pub async fn spawn_with(pool: PgPool, dev_mode: bool) -> TestApp {
        Self::spawn_configured(pool, |config| config.dev_mode = dev_mode).await
    }

    /// An instance whose settings `configure` changes from the tests' defaults (development
    /// mode, the sandbox gateway on, the default limits).
    pub async fn spawn_configured(pool: PgPool, configure: impl FnOnce(&mut AppConfig)) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = AppConfig {
            dev_mode: true,
            public_url: format!("http://{addr}"),
            limits: RateLimits::default(),
            trust_proxy: false,
            payments: PaymentsConfig::new("VND", SANDBOX_SECRET.as_bytes().to_vec()),
            imports: Default::default(),
            metrics_token: None,
        };
        configure(&mut config);
        let state = AppState {
            pool: pool.clone(),
            config: Arc::new(config),
            leptos_options: LeptosOptions::builder()
                .output_name("evcx")
                .site_addr(addr)
                .build(),
            live: Default::default(),
            bids: Default::default(),
            purchases: Default::default(),
        };
        let router = server::startup::router(state.clone());
        tokio::spawn(server::startup::serve(
            listener,
            router,
            std::future::pending(),
            server::startup::DRAIN_GRACE,
        ));
        TestApp { addr, pool, state }
    }

    /// An instance that also listens for live announcements (as a served instance does), so
    /// its live streams follow changes made on any instance.
    pub async fn spawn_live(pool: PgPool) -> TestApp {
        let app = Self::spawn(pool).await;
        let mut events = app.state.live.subscribe();
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            // Keep the sender alive for as long as the runtime (the test) runs.
            let _stop_tx = stop_tx;
            std::future::pending::<()>().await
        });
        tokio::spawn(app::server::live::listen(
            app.pool.clone(),
            app.state.live.clone(),
            stop,
        ));
        // Listening has begun once it says to re-read.
        while events.recv().await.unwrap() != app::server::live::Event::Resync {}
        app
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A browser-like client: its own cookies, JSON answers, redirects not followed.
    pub fn client(&self) -> Api {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let http = Client::builder()
            .cookie_store(true)
            .redirect(redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap();
        Api {
            http,
            base: format!("http://{}", self.addr),
        }
    }

    /// Creates an account directly (fast path for tests that are not about sign-up).
    pub async fn user(&self, role: Role, email: &str) -> uuid::Uuid {
        let input = NewAccount {
            email: email.into(),
            full_name: format!("Test {}", role.label()),
            phone: "+84900000000".into(),
            role,
            password: Some(PASSWORD.into()),
        };
        accounts::create_account(&self.pool, "http://test", None, input)
            .await
            .unwrap()
            .id
    }

    /// A signed-in client for a fresh account of `role`.
    pub async fn signed_in(&self, role: Role) -> (Api, uuid::Uuid) {
        let email = format!(
            "{}-{}@example.com",
            role.as_str(),
            uuid::Uuid::new_v4().simple()
        );
        let id = self.user(role, &email).await;
        let api = self.client();
        let res = api.login(&email, PASSWORD).await;
        assert_eq!(res.status(), 200, "login of a fresh {role:?}");
        (api, id)
    }

    /// A signed-in client that sends its session cookie itself: a production instance's cookie
    /// is `Secure`, which a client's cookie store keeps from plain-http requests.
    pub async fn signed_in_over_http(&self, role: Role) -> (Api, uuid::Uuid) {
        let email = format!(
            "{}-{}@example.com",
            role.as_str(),
            uuid::Uuid::new_v4().simple()
        );
        let id = self.user(role, &email).await;
        let res = self.client().login(&email, PASSWORD).await;
        assert_eq!(res.status(), 200, "login of a fresh {role:?}");
        let cookie = res.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            reqwest::header::COOKIE,
            HeaderValue::from_str(&cookie).unwrap(),
        );
        let http = Client::builder()
            .redirect(redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap();
        let api = Api {
            http,
            base: format!("http://{}", self.addr),
        };
        (api, id)
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    /// Handles the queued sign-up and reset requests, as the server's mail job does.
    pub async fn handle_account_requests(&self) -> usize {
        accounts::handle_requests(&self.pool, &self.state.config.public_url, 1000)
            .await
            .unwrap()
    }

    /// The last message queued for `to` (after the queued requests are handled): subject and
    /// text, or None.
    pub async fn last_mail(&self, to: &str) -> Option<(String, String)> {
        self.handle_account_requests().await;
        sqlx::query_as(
            "SELECT subject, body_text FROM email_outbox WHERE to_address = $1
             ORDER BY created_at DESC, id LIMIT 1",
        )
        .bind(to)
        .fetch_optional(&self.pool)
        .await
        .unwrap()
    }

    /// The token of the link in the last message to `to`.
    pub async fn mailed_token(&self, to: &str) -> String {
        let (subject, body) = self
            .last_mail(to)
            .await
            .unwrap_or_else(|| panic!("no mail to {to}"));
        body.split("token=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no link in the mail {subject:?} to {to}: {body}"))
            .to_owned()
    }
}

#[derive(Clone)]
pub struct Api {
    pub http: Client,
    pub base: String,
}

impl Api {
    /// Uploads an import file (multipart `vehicle_id`, `kind`, `file`) and answers the report.
    pub async fn upload(
        &self,
        vehicle_id: &str,
        kind: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> (u16, Value) {
        let form = reqwest::multipart::Form::new()
            .text("vehicle_id", vehicle_id.to_owned())
            .text("kind", kind.to_owned())
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
            );
        let res = self
            .http
            .post(format!("{}/api/imports/upload", self.base))
            .multipart(form)
            .send()
            .await
            .unwrap();
        json(res).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/users/login",
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// The signed-in account's e-mail, or None.
    pub async fn me(&self) -> Option<String> {
        let v: Value = self.post("/api/users/me", &[]).await.json().await.unwrap();
        v.get("email").and_then(Value::as_str).map(str::to_owned)
    }
}

/// Status and JSON body.
pub async fn json(res: Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// The script nonce of a response's Content-Security-Policy.
pub fn csp_nonce(headers: &reqwest::header::HeaderMap) -> String {
    let csp = headers["content-security-policy"].to_str().unwrap();
    let (_, rest) = csp.split_once("'nonce-").expect("a nonce in the policy");
    rest.split('\'').next().unwrap().to_owned()
}

/// The message for `field` in a validation error body.
pub fn field_error(body: &Value, field: &str) -> Option<String> {
    body["fields"]
        .as_array()?
        .iter()
        .find(|f| f["field"] == field)
        .and_then(|f| f["message"].as_str())
        .map(str::to_owned)
}

/// A bare pending credit request of `owner`, for tests of what a claim does to trips.
pub async fn pending_request(pool: &sqlx::PgPool, owner: uuid::Uuid) -> uuid::Uuid {
    let id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO credit_requests (id, number, owner_id, period_from, period_to, region, vintage,
             methodology_version_id, trips, distance_km, energy_kwh, baseline_kg, project_kg, avoided_kg,
             gross_kg, buffer_kg, net_kg, risk_score, calculation, status)
         VALUES ($1, 'TEST-' || $1::text, $2, '2026-01-01', '2026-12-31', 'VN', 2026,
             (SELECT version_id FROM methodology_active), 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, '{}', 'pending')",
    )
    .bind(id)
    .bind(owner)
    .execute(pool)
    .await
    .unwrap();
    id
}

/// Asserts that the ledger reconciles (every invariant of `ledger::reconcile`).
pub async fn reconciled(pool: &sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let r = app::server::ledger::reconcile(&mut conn).await.unwrap();
    assert!(r.ok(), "reconciliation failed: {:#?}", r.problems);
}

/// Issues credits of `region` and `vintage` so that `owner` receives exactly `net_kg`, through
/// the verifier's real approval (a bare request approved by a fresh CVA; the default
/// methodology's 5 % buffer, rounded up, goes to the pool), so tests of the market start with
/// credits and serials exactly as an issuance makes them.
pub async fn grant_credits(
    app: &TestApp,
    owner: uuid::Uuid,
    net_kg: i64,
    region: &str,
    vintage: i32,
) {
    let net = |gross: i64| gross - (gross * 5 + 99) / 100;
    let mut gross_kg = net_kg;
    while net(gross_kg) < net_kg {
        gross_kg += 1;
    }
    use app::server::services::issuance::{self, Decision};
    app::server::services::methodology::ensure_defaults(&app.pool)
        .await
        .unwrap();
    let cva = app
        .user(
            Role::Cva,
            &format!("cva-{}@example.com", uuid::Uuid::new_v4().simple()),
        )
        .await;
    let id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO credit_requests (id, number, owner_id, period_from, period_to, region, vintage,
             methodology_version_id, trips, distance_km, energy_kwh, baseline_kg, project_kg, avoided_kg,
             gross_kg, buffer_kg, net_kg, risk_score, calculation, status)
         VALUES ($1, 'TEST-' || $1::text, $2, make_date($4, 1, 1), make_date($4, 12, 31), $3, $4,
             (SELECT version_id FROM methodology_active), 1, 100, 15, $5, 0, $5, $5, 0, $5, 0, '{}', 'pending')",
    )
    .bind(id)
    .bind(owner)
    .bind(region)
    .bind(vintage)
    .bind(gross_kg)
    .execute(&app.pool)
    .await
    .unwrap();
    issuance::decide(&app.pool, cva, id, Decision::Approve)
        .await
        .unwrap();
    let credited: rust_decimal::Decimal = sqlx::query_scalar(
        "SELECT e.amount FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
         JOIN credit_issuances i ON i.transfer_id = e.transfer_id
         WHERE i.request_id = $1 AND a.owner_id = $2",
    )
    .bind(id)
    .bind(owner)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        credited,
        rust_decimal::Decimal::from(net_kg),
        "the buffer rule changed"
    );
}

/// Signs a sandbox gateway delivery with the tests' secret: (body, signature header).
pub fn sandbox_delivery(payment_id: &str, status: &str, event_id: &str) -> (Vec<u8>, String) {
    use app::server::payments::sandbox::{Delivery, Sandbox};
    Sandbox::new(SANDBOX_SECRET.as_bytes().to_vec()).delivery(
        &Delivery {
            event_id: event_id.into(),
            payment_id: payment_id.parse().unwrap(),
            status: status.into(),
            reason: String::new(),
        },
        chrono::Utc::now().timestamp(),
    )
}

impl Api {
    /// Tops the wallet up by `amount` through the sandbox gateway (the payer chooses success).
    pub async fn top_up(&self, amount: &str) {
        let (status, body) =
            json(self.post("/api/money/top-up", &[("amount", amount)]).await).await;
        assert_eq!(status, 200, "top-up: {body}");
        let page = body["pay_url"].as_str().unwrap().to_owned();
        let res = self.post(&page, &[("choice", "succeed")]).await;
        assert_eq!(res.status(), 303, "the sandbox sends the payer back");
    }
}
