//! The authorisation matrix: every server function, who may call it, and proof that everyone
//! else (and a visitor) is refused. A server function added without a row here fails the test.

use super::support::{json, TestApp, PASSWORD};
use app::domain::user::Role;
use sqlx::PgPool;
use std::collections::BTreeSet;

enum Access {
    /// Anyone, signed in or not.
    Public,
    Roles(&'static [Role]),
}
use Access::{Public, Roles};

const ALL: &[Role] = &Role::ALL;
const ADMIN: &[Role] = &[Role::Admin];
const OWNER: &[Role] = &[Role::EvOwner];
const NIL: &str = "00000000-0000-0000-0000-000000000000";
/// Marks an endpoint that takes multipart form data (the test sends a small upload).
const MULTIPART: &[(&str, &str)] = &[("multipart", "")];

/// (endpoint, who may call it, a well-formed sample input)
const MATRIX: &[(&str, Access, &[(&str, &str)])] = &[
    ("/api/users/me", Public, &[]),
    (
        "/api/users/register",
        Public,
        &[
            ("email", ""),
            ("full_name", ""),
            ("phone", ""),
            ("role", ""),
        ],
    ),
    ("/api/users/register/link", Public, &[("token", "t")]),
    (
        "/api/users/register/confirm",
        Public,
        &[("token", "t"), ("password", ""), ("password_confirm", "")],
    ),
    (
        "/api/users/login",
        Public,
        &[("email", "x@example.com"), ("password", "wrong password")],
    ),
    ("/api/users/logout", Public, &[]),
    (
        "/api/users/password-reset/request",
        Public,
        &[("email", "x@example.com")],
    ),
    (
        "/api/users/password-reset/confirm",
        Public,
        &[
            ("token", "t"),
            ("new_password", ""),
            ("new_password_confirm", ""),
        ],
    ),
    ("/api/users/demo-accounts", Public, &[]),
    ("/api/users/profile", Roles(ALL), &[]),
    (
        "/api/users/profile/update",
        Roles(ALL),
        &[("full_name", ""), ("phone", "")],
    ),
    (
        "/api/users/password",
        Roles(ALL),
        &[
            ("current_password", ""),
            ("new_password", ""),
            ("new_password_confirm", ""),
        ],
    ),
    ("/api/admin/users", Roles(ADMIN), &[]),
    (
        "/api/admin/users/create",
        Roles(ADMIN),
        &[
            ("email", ""),
            ("full_name", ""),
            ("phone", ""),
            ("role", "cva"),
        ],
    ),
    (
        "/api/admin/users/role",
        Roles(ADMIN),
        &[
            ("user_id", "00000000-0000-0000-0000-000000000000"),
            ("role", "buyer"),
        ],
    ),
    (
        "/api/admin/users/status",
        Roles(ADMIN),
        &[
            ("user_id", "00000000-0000-0000-0000-000000000000"),
            ("status", "active"),
        ],
    ),
    ("/api/admin/overview", Roles(ADMIN), &[]),
    ("/api/vehicles", Roles(OWNER), &[]),
    ("/api/vehicles/get", Roles(OWNER), &[("vehicle_id", NIL)]),
    ("/api/vehicles/options", Roles(OWNER), &[]),
    (
        "/api/vehicles/register",
        Roles(OWNER),
        &[
            ("make", ""),
            ("model", ""),
            ("year", ""),
            ("vin", ""),
            ("plate", ""),
            ("battery_kwh", ""),
            ("efficiency_kwh_per_100km", ""),
            ("grid_region", ""),
            ("time_zone", ""),
        ],
    ),
    (
        "/api/vehicles/update",
        Roles(OWNER),
        &[
            ("vehicle_id", NIL),
            ("make", ""),
            ("model", ""),
            ("year", ""),
            ("vin", ""),
            ("plate", ""),
            ("battery_kwh", ""),
            ("efficiency_kwh_per_100km", ""),
            ("grid_region", ""),
            ("time_zone", ""),
        ],
    ),
    (
        "/api/vehicles/archive",
        Roles(OWNER),
        &[("vehicle_id", NIL), ("archived", "true")],
    ),
    ("/api/imports/upload", Roles(OWNER), MULTIPART),
    ("/api/imports/report", Roles(OWNER), &[("import_id", NIL)]),
    ("/api/dashboard", Roles(OWNER), &[("by", "month")]),
    ("/api/trips", Roles(OWNER), &[]),
    ("/api/trips/export", Roles(OWNER), &[]),
    ("/api/dashboard/export", Roles(OWNER), &[("by", "year")]),
    ("/api/admin/methodologies", Roles(ADMIN), &[]),
    ("/api/admin/audit", Roles(ADMIN), &[]),
    (
        "/api/admin/methodologies/add",
        Roles(ADMIN),
        &[("code", "SEED-2025"), ("buffer_share", ""), ("note", "")],
    ),
    (
        "/api/admin/methodologies/activate",
        Roles(ADMIN),
        &[("version_id", NIL)],
    ),
    (
        "/api/trips/update",
        Roles(OWNER),
        &[
            ("trip_id", "0"),
            ("start_time", ""),
            ("end_time", ""),
            ("distance_km", ""),
            ("energy_kwh", ""),
            ("notes", ""),
        ],
    ),
    ("/api/trips/delete", Roles(OWNER), &[("trip_id", "0")]),
    (
        "/api/trips/period-checks",
        Roles(OWNER),
        &[("vehicle_id", NIL)],
    ),
    ("/api/charging", Roles(OWNER), &[]),
    (
        "/api/credits/preview",
        Roles(OWNER),
        &[
            ("vehicle_id", ""),
            ("from", "2026-01-01"),
            ("to", "2026-01-31"),
        ],
    ),
    (
        "/api/credits/submit",
        Roles(OWNER),
        &[
            ("vehicle_id", ""),
            ("from", "2026-01-01"),
            ("to", "2026-01-31"),
        ],
    ),
    ("/api/credits/requests", Roles(OWNER), &[]),
    (
        "/api/credits/request",
        Roles(&[Role::EvOwner, Role::Cva, Role::Admin]),
        &[("request_id", NIL)],
    ),
    ("/api/credits/cancel", Roles(OWNER), &[("request_id", NIL)]),
    (
        "/api/credits/request-trips",
        Roles(&[Role::EvOwner, Role::Cva, Role::Admin]),
        &[("request_id", NIL)],
    ),
    ("/api/cva/queue", Roles(&[Role::Cva, Role::Admin]), &[]),
    ("/api/wallet", Roles(&[Role::EvOwner, Role::Buyer]), &[]),
    (
        "/api/reports/issuance",
        Roles(&[Role::Cva, Role::Admin]),
        &[],
    ),
    (
        "/api/reports/issuance/csv",
        Roles(&[Role::Cva, Role::Admin]),
        &[],
    ),
    (
        "/api/reports/issuance/pdf",
        Roles(&[Role::Cva, Role::Admin]),
        &[],
    ),
    (
        "/api/wallet/retire",
        Roles(&[Role::EvOwner, Role::Buyer]),
        &[
            ("quantity_kg", ""),
            ("beneficiary", ""),
            ("reason", ""),
            ("idempotency_key", ""),
        ],
    ),
    (
        "/api/certificates/get",
        Public,
        &[("number", "CERT-0000-000000")],
    ),
    (
        "/api/cva/decide",
        Roles(&[Role::Cva]),
        &[("request_id", NIL), ("decision", "approve")],
    ),
    ("/api/market/listings", Public, &[]),
    ("/api/market/listing", Public, &[("number", "LST-000000")]),
    (
        "/api/market/buy",
        Roles(&[Role::Buyer]),
        &[
            ("listing", "LST-000000"),
            ("quantity", "1"),
            ("idempotency_key", "matrix-key-0001"),
        ],
    ),
    ("/api/auctions/list", Public, &[]),
    ("/api/auctions/get", Public, &[("number", "LST-000000")]),
    (
        "/api/auctions/create",
        Roles(OWNER),
        &[
            ("class", ""),
            ("quantity", ""),
            ("starting_price", ""),
            ("duration_minutes", ""),
        ],
    ),
    (
        "/api/auctions/bid",
        Roles(&[Role::Buyer]),
        &[("auction", "LST-000000"), ("max", "1")],
    ),
    (
        "/api/auctions/buy-now",
        Roles(&[Role::Buyer]),
        &[("auction", "LST-000000")],
    ),
    (
        "/api/auctions/watch",
        Roles(ALL),
        &[("auction", "LST-000000"), ("watch", "on")],
    ),
    ("/api/listings/mine", Roles(OWNER), &[]),
    (
        "/api/listings/create",
        Roles(OWNER),
        &[("class", ""), ("quantity", ""), ("price", "")],
    ),
    (
        "/api/listings/price",
        Roles(OWNER),
        &[("listing", "LST-000000"), ("price", "1")],
    ),
    (
        "/api/listings/quantity",
        Roles(OWNER),
        &[("listing", "LST-000000"), ("quantity", "1")],
    ),
    (
        "/api/listings/cancel",
        Roles(OWNER),
        &[("listing", "LST-000000")],
    ),
    ("/api/orders/mine", Roles(&[Role::Buyer]), &[]),
    (
        "/api/orders/get",
        Roles(&[Role::Buyer, Role::EvOwner, Role::Admin]),
        &[("number", "ORD-000000")],
    ),
    (
        "/api/money/wallet",
        Roles(&[Role::EvOwner, Role::Buyer]),
        &[],
    ),
    (
        "/api/money/top-up",
        Roles(&[Role::EvOwner, Role::Buyer]),
        &[("amount", "")],
    ),
    (
        "/api/payments/get",
        Roles(&[Role::EvOwner, Role::Buyer]),
        &[("number", "PAY-000000")],
    ),
    (
        "/api/money/withdraw",
        Roles(&[Role::EvOwner, Role::Buyer]),
        &[
            ("amount", ""),
            ("bank_name", ""),
            ("account_holder", ""),
            ("account_number", ""),
            ("idempotency_key", ""),
        ],
    ),
    ("/api/notifications/list", Roles(ALL), &[]),
    ("/api/notifications/bell", Roles(ALL), &[]),
    ("/api/notifications/open", Roles(ALL), &[("id", NIL)]),
    ("/api/notifications/read-all", Roles(ALL), &[]),
    ("/api/notifications/settings", Roles(ALL), &[]),
    (
        "/api/notifications/settings/email",
        Roles(ALL),
        &[("kind", "dispute_resolved"), ("email", "off")],
    ),
    (
        "/api/orders/dispute",
        Roles(&[Role::Buyer]),
        &[
            ("order", "ORD-000000"),
            ("reason", "The credits never arrived."),
        ],
    ),
    ("/api/admin/disputes", Roles(ADMIN), &[]),
    (
        "/api/admin/disputes/decide",
        Roles(ADMIN),
        &[("dispute", "DSP-000000"), ("decision", "refund")],
    ),
    ("/api/admin/orders", Roles(ADMIN), &[]),
    (
        "/api/admin/orders/resolve",
        Roles(ADMIN),
        &[("order", "ORD-000000"), ("action", "cancel")],
    ),
    ("/api/admin/listings", Roles(ADMIN), &[]),
    (
        "/api/admin/listings/suspend",
        Roles(ADMIN),
        &[("listing", "LST-000000"), ("reason", "Check")],
    ),
    (
        "/api/admin/listings/reinstate",
        Roles(ADMIN),
        &[("listing", "LST-000000")],
    ),
    (
        "/api/admin/users/kyc",
        Roles(ADMIN),
        &[("user_id", NIL), ("verified", "on")],
    ),
    ("/api/admin/cash-flow", Roles(ADMIN), &[]),
    (
        "/api/reports/mine",
        Roles(&[Role::EvOwner, Role::Buyer, Role::Admin]),
        &[],
    ),
    (
        "/api/reports/mine/csv",
        Roles(&[Role::EvOwner, Role::Buyer, Role::Admin]),
        &[],
    ),
    (
        "/api/reports/mine/pdf",
        Roles(&[Role::EvOwner, Role::Buyer, Role::Admin]),
        &[],
    ),
    (
        "/api/market/price-suggestion",
        Public,
        &[("region", "VN"), ("vintage", "2026")],
    ),
    ("/api/market/trends", Public, &[]),
    ("/api/admin/withdrawals", Roles(ADMIN), &[]),
    (
        "/api/admin/withdrawals/decide",
        Roles(ADMIN),
        &[("withdrawal", "WDR-000000"), ("decision", "approve")],
    ),
    ("/api/admin/settings", Roles(ADMIN), &[]),
    (
        "/api/admin/settings/update",
        Roles(ADMIN),
        &[
            ("buyer_fee_percent", ""),
            ("seller_fee_percent", ""),
            ("withdrawal_min", ""),
            ("withdrawal_max", ""),
            ("withdrawal_daily_max", ""),
            ("withdrawal_fee", ""),
        ],
    ),
];

async fn call(api: &super::support::Api, path: &str, sample: &[(&str, &str)]) -> reqwest::Response {
    if sample == MULTIPART {
        let form = reqwest::multipart::Form::new()
            .text("vehicle_id", NIL)
            .text("kind", "trips")
            .part(
                "file",
                reqwest::multipart::Part::bytes(b"start_time,end_time,distance_km\n".to_vec())
                    .file_name("t.csv"),
            );
        api.http
            .post(format!("{}{path}", api.base))
            .multipart(form)
            .send()
            .await
            .unwrap()
    } else if is_get(path) {
        let query: Vec<(&str, &str)> = sample.to_vec();
        api.http
            .get(format!("{}{path}", api.base))
            .query(&query)
            .send()
            .await
            .unwrap()
    } else {
        api.post(path, sample).await
    }
}

/// Downloads are GET endpoints (they change nothing).
fn is_get(path: &str) -> bool {
    leptos::server_fn::axum::server_fn_paths()
        .any(|(p, method)| p == path && method == http::Method::GET)
}

#[test]
fn every_server_function_has_a_row() {
    let registered: BTreeSet<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_owned())
        .collect();
    let listed: BTreeSet<String> = MATRIX.iter().map(|(path, ..)| (*path).to_owned()).collect();
    let missing: Vec<_> = registered.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&registered).collect();
    assert!(
        missing.is_empty(),
        "server functions without an authorisation row: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "rows for server functions that do not exist: {stale:?}"
    );
    assert_eq!(listed.len(), MATRIX.len(), "a path is listed twice");
    // Every endpoint is documented too.
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/API.md")).unwrap();
    for path in &registered {
        let method = if is_get(path) { "GET" } else { "POST" };
        assert!(
            doc.contains(&format!("`{method} {path}`")),
            "{method} {path} is not in docs/API.md"
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn everyone_not_allowed_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let visitor = app.client();
    let mut signed_in = Vec::new();
    for role in Role::ALL {
        let email = format!("matrix-{}@example.com", role.as_str());
        app.user(role, &email).await;
        signed_in.push((role, email, app.client()));
    }
    for (path, access, sample) in MATRIX {
        let (status, body) = json(call(&visitor, path, sample).await).await;
        match access {
            Public => assert!(
                !matches!(body["kind"].as_str(), Some("unauthenticated" | "forbidden")),
                "{path}: a visitor may call it, got {status} {body}"
            ),
            Roles(_) => assert_eq!(
                (status, body["kind"].as_str()),
                (401, Some("unauthenticated")),
                "{path}: a visitor must be refused"
            ),
        }
        for (role, email, api) in &signed_in {
            // Rows such as logout end the session; every row starts signed in.
            if api.me().await.is_none() {
                assert_eq!(api.login(email, PASSWORD).await.status(), 200);
            }
            let (status, body) = json(call(api, path, sample).await).await;
            let allowed = match access {
                Public => true,
                Roles(roles) => roles.contains(role),
            };
            if allowed {
                assert!(
                    !matches!(body["kind"].as_str(), Some("unauthenticated" | "forbidden")),
                    "{path}: {role:?} may call it, got {status} {body}"
                );
            } else {
                assert_eq!(
                    (status, body["kind"].as_str()),
                    (403, Some("forbidden")),
                    "{path}: {role:?} must be refused"
                );
            }
        }
    }
}
