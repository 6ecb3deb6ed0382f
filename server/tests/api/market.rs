//! The marketplace end to end over HTTP: listings reserve credits, purchases move money against
//! credits with fees on both sides, keys make retries safe, concurrent buyers never buy more than
//! a listing holds, checkouts through the sandbox gateway, signed webhooks, withdrawals, fees.

use super::support::{
    csp_nonce, field_error, grant_credits, json, reconciled, sandbox_delivery, Api, TestApp,
};
use app::api::market::Purchase;
use app::domain::user::Role;
use app::error::AppError;
use app::server::ledger::{self, Asset};
use app::server::services::orders::{self, BuyInput};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// The user's money of that kind, always written with 2 decimals.
async fn money(app: &TestApp, user: Uuid, kind: &str) -> String {
    let mut d = sqlx::query_scalar::<_, rust_decimal::Decimal>(
        "SELECT coalesce(sum(balance), 0) FROM ledger_accounts WHERE owner_id = $1 AND asset = 'money' AND kind = $2",
    )
    .bind(user)
    .bind(kind)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    d.rescale(2);
    d.to_string()
}

async fn credits(app: &TestApp, user: Uuid, kind: &str) -> i64 {
    sqlx::query_scalar::<_, rust_decimal::Decimal>(
        "SELECT coalesce(sum(balance), 0) FROM ledger_accounts WHERE owner_id = $1 AND asset = 'credit' AND kind = $2",
    )
    .bind(user)
    .bind(kind)
    .fetch_one(&app.pool)
    .await
    .unwrap()
    .try_into()
    .unwrap()
}

async fn fee_income(app: &TestApp) -> String {
    sqlx::query_scalar::<_, rust_decimal::Decimal>(
        "SELECT sum(balance) FROM ledger_accounts WHERE owner_id IS NULL AND asset = 'money' AND kind = 'platform_fees'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
    .to_string()
}

/// An owner with `kg` of VN 2026 credits and one listing of all of them at `price` per tonne.
pub(super) async fn seller_with_listing(
    app: &TestApp,
    kg: i64,
    price: &str,
    min_lot: &str,
) -> (Api, Uuid, String) {
    let (owner, owner_id) = app.signed_in(Role::EvOwner).await;
    grant_credits(app, owner_id, kg, "VN", 2026).await;
    let quantity = format!(
        "{}",
        rust_decimal::Decimal::from(kg) / rust_decimal::Decimal::from(1000)
    );
    let (status, body) = json(
        owner
            .post(
                "/api/listings/create",
                &[
                    ("class", "VN:2026"),
                    ("quantity", &quantity),
                    ("price", price),
                    ("min_lot", min_lot),
                    ("description", "Scooter fleet in Hà Nội"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "create listing: {body}");
    (owner, owner_id, body.as_str().unwrap().to_owned())
}

/// The price per tonne a listing's page shows now ("1.00" for a listing that is not there).
pub(super) async fn shown_price(api: &Api, listing: &str) -> String {
    let (_, detail) = json(
        api.post("/api/market/listing", &[("number", listing)])
            .await,
    )
    .await;
    detail["listing"]["price_per_t"]
        .as_str()
        .unwrap_or("1.00")
        .to_owned()
}

/// Buys as the listing's page does: at the price it shows.
pub(super) async fn buy(api: &Api, listing: &str, quantity: &str, key: &str) -> (u16, Value) {
    let price = shown_price(api, listing).await;
    buy_at(api, listing, quantity, &price, key).await
}

/// Buys having seen `expected_price` per tonne.
pub(super) async fn buy_at(
    api: &Api,
    listing: &str,
    quantity: &str,
    expected_price: &str,
    key: &str,
) -> (u16, Value) {
    json(
        api.post(
            "/api/market/buy",
            &[
                ("listing", listing),
                ("quantity", quantity),
                ("expected_price", expected_price),
                ("idempotency_key", key),
            ],
        )
        .await,
    )
    .await
}

#[sqlx::test(migrations = "../migrations")]
async fn a_listing_reserves_exactly_what_the_seller_has(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, owner_id) = app.signed_in(Role::EvOwner).await;
    grant_credits(&app, owner_id, 500, "VN", 2026).await;
    grant_credits(&app, owner_id, 300, "VN", 2025).await;

    // More than that vintage holds is refused with what is there, even though the wallet holds 800 kg.
    let (status, body) = json(
        owner
            .post(
                "/api/listings/create",
                &[
                    ("class", "VN:2026"),
                    ("quantity", "0.6"),
                    ("price", "200000"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "quantity").as_deref(),
        Some("You have 0.500 t of VN 2026 credits available to list.")
    );
    let (status, body) = json(
        owner
            .post(
                "/api/listings/create",
                &[
                    ("class", ""),
                    ("quantity", "1.0005"),
                    ("price", "-3"),
                    ("min_lot", "9"),
                    ("expires_on", "2001-01-01"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422);
    for field in ["class", "quantity", "price", "expires_on"] {
        assert!(field_error(&body, field).is_some(), "{field}: {body}");
    }

    let (status, number) = json(
        owner
            .post(
                "/api/listings/create",
                &[
                    ("class", "VN:2025"),
                    ("quantity", "0.25"),
                    ("price", "180,000"),
                    ("min_lot", "0.05"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{number}");
    assert_eq!(credits(&app, owner_id, "available").await, 550);
    assert_eq!(credits(&app, owner_id, "held").await, 250);
    // The listing's account holds 250 kg of 2025 serials, nothing of 2026.
    let vintages: Vec<i32> = sqlx::query_scalar(
        "SELECT DISTINCT i.vintage FROM serial_blocks b JOIN credit_issuances i ON i.id = b.issuance_id
         JOIN listings l ON l.account_id = b.account_id WHERE l.number = $1",
    )
    .bind(number.as_str().unwrap())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(vintages, [2025]);
    let (_, wallet) = json(owner.post("/api/wallet", &[]).await).await;
    assert_eq!(wallet["balances"]["reserved_kg"], 250);
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_purchase_moves_money_against_credits_with_both_fees(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_owner, owner_id, listing) = seller_with_listing(&app, 1000, "200000", "0.1").await;
    let (buyer, buyer_id) = app.signed_in(Role::Buyer).await;
    buyer.top_up("500000").await;
    assert_eq!(money(&app, buyer_id, "available").await, "500000.00");

    // 0.25 t at 200,000 per t = 50,000; 2.5 % each side = 1,250.
    let (status, purchase) = buy(&buyer, &listing, "0.25", "key-first-purchase").await;
    assert_eq!(status, 200, "{purchase}");
    let order = purchase["order"].as_str().unwrap().to_owned();
    assert_eq!(purchase["next"], format!("/orders/{order}"));
    assert_eq!(money(&app, buyer_id, "available").await, "448750.00");
    assert_eq!(money(&app, owner_id, "available").await, "48750.00");
    assert_eq!(fee_income(&app).await, "2500.00");
    assert_eq!(credits(&app, buyer_id, "available").await, 250);
    assert_eq!(credits(&app, owner_id, "held").await, 750);

    let (status, o) = json(buyer.post("/api/orders/get", &[("number", &order)]).await).await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["status"], "completed");
    assert_eq!(o["buyer_pays"], "51250.00");
    assert_eq!(o["seller_receives"], "48750.00");
    assert_eq!(o["serials"][0], "EVCX-VN-2026-000000001-000000250");
    let invoice = o["invoice_number"].as_str().unwrap().to_owned();
    assert!(invoice.starts_with("INV-"));
    let res = buyer.get(&format!("/invoices/{order}.pdf")).await;
    assert_eq!(res.status(), 200);
    assert!(res.bytes().await.unwrap().starts_with(b"%PDF"));
    // Nobody else sees the order or its invoice.
    let (stranger, _) = app.signed_in(Role::Buyer).await;
    assert_eq!(
        stranger
            .post("/api/orders/get", &[("number", &order)])
            .await
            .status(),
        404
    );
    assert_eq!(
        stranger
            .get(&format!("/invoices/{order}.pdf"))
            .await
            .status(),
        404
    );

    // The listing shows what is left; the search finds it.
    let (_, detail) = json(
        app.client()
            .post("/api/market/listing", &[("number", &listing)])
            .await,
    )
    .await;
    assert_eq!(detail["listing"]["available_kg"], 750);
    assert_eq!(detail["evidence"][0]["kg"], 1000);
    assert_eq!(detail["history"][0]["trades"], 1);
    let (_, found) = json(
        app.client()
            .post("/api/market/listings", &[("q", "Hà")])
            .await,
    )
    .await;
    assert_eq!(found["total"], 1, "{found}");
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn every_bad_purchase_is_refused_and_changes_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_owner, _, listing) = seller_with_listing(&app, 100, "300000", "0.02").await;
    let (buyer, buyer_id) = app.signed_in(Role::Buyer).await;
    buyer.top_up("10000").await;

    let (status, body) = buy(&buyer, &listing, "0.01", "key-below-lot").await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "quantity").as_deref(),
        Some("The smallest lot of this listing is 20 kg.")
    );
    let (status, body) = buy(&buyer, &listing, "0.2", "key-too-much").await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "quantity").as_deref(),
        Some("Only 100 kg are left in this listing.")
    );
    let (status, body) = buy(&buyer, &listing, "0.05", "").await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "idempotency_key").is_some());
    // 50 kg costs 15,000 + 375: more than the wallet's 10,000.
    let (status, body) = buy(&buyer, &listing, "0.05", "key-too-poor").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (409, Some("insufficient_funds")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("15.375 ₫"),
        "{body}"
    );
    let (status, _) = buy(&buyer, "LST-999999", "0.05", "key-no-listing").await;
    assert_eq!(status, 404);

    assert_eq!(money(&app, buyer_id, "available").await, "10000.00");
    assert_eq!(credits(&app, buyer_id, "available").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
    let (_, detail) = json(
        app.client()
            .post("/api/market/listing", &[("number", &listing)])
            .await,
    )
    .await;
    assert_eq!(detail["listing"]["available_kg"], 100);
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_retried_purchase_returns_the_same_order(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_owner, _, listing) = seller_with_listing(&app, 100, "100000", "0.001").await;
    let (buyer, buyer_id) = app.signed_in(Role::Buyer).await;
    buyer.top_up("100000").await;
    // Two submits of the same form at the same instant, then a late retry.
    let (a, b) = tokio::join!(
        buy(&buyer, &listing, "0.01", "same-key-twice"),
        buy(&buyer, &listing, "0.01", "same-key-twice")
    );
    assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
    assert_eq!(a.1["order"], b.1["order"]);
    let (status, c) = buy(&buyer, &listing, "0.01", "same-key-twice").await;
    assert_eq!(status, 200);
    assert_eq!(c["order"], a.1["order"]);
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1);
    // 10 kg at 100,000 = 1,000 + 25 fee, charged once.
    assert_eq!(money(&app, buyer_id, "available").await, "98975.00");
    assert_eq!(credits(&app, buyer_id, "available").await, 10);
    // The same key for another purchase is refused.
    let (status, body) = buy(&buyer, &listing, "0.02", "same-key-twice").await;
    assert_eq!(status, 409, "{body}");
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn concurrent_buyers_never_buy_more_than_the_listing_holds(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_owner, owner_id, listing) = seller_with_listing(&app, 100, "100000", "0.001").await;
    let mut buyers = Vec::new();
    for _ in 0..24 {
        let (api, id) = app.signed_in(Role::Buyer).await;
        api.top_up("10000").await;
        buyers.push((api, id));
    }
    // 24 buyers × 7 kg = 168 kg asked of a 100 kg listing, all at once.
    let results = futures::future::join_all(buyers.iter().enumerate().map(|(i, (api, _))| {
        let listing = listing.clone();
        async move { buy(api, &listing, "0.007", &format!("race-key-{i:04}")).await }
    }))
    .await;
    let ok = results.iter().filter(|r| r.0 == 200).count();
    for (status, body) in &results {
        assert!(
            *status == 200
                || (*status == 409 && body["message"].as_str().unwrap().starts_with("Sold out"))
                || (*status == 422
                    && field_error(body, "quantity")
                        .unwrap()
                        .starts_with("Only 2 kg")),
            "{status} {body}"
        );
    }
    assert_eq!(ok, 14, "14 × 7 kg = 98 kg fit");
    let mut bought = 0;
    for (_, id) in &buyers {
        bought += credits(&app, *id, "available").await;
    }
    assert_eq!(bought, 98);
    assert_eq!(credits(&app, owner_id, "held").await, 2);
    let sold: i64 = app.count("SELECT sold_kg FROM listings").await;
    assert_eq!(sold, 98);
    // The last 2 kg are less than a lot of 7 but may be bought whole.
    let (status, _) = buy(&buyers[0].0, &listing, "0.002", "race-key-last").await;
    assert_eq!(status, 200);
    let status: String = sqlx::query_scalar("SELECT status FROM listings")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "sold");
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn concurrent_spending_never_overdraws(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let mut listings = Vec::new();
    for _ in 0..6 {
        let (_, _, listing) = seller_with_listing(&app, 50, "100000", "0.001").await;
        listings.push(listing);
    }
    let (buyer, buyer_id) = app.signed_in(Role::Buyer).await;
    // Each purchase of 10 kg costs 1,025: the wallet covers three.
    buyer.top_up("3100").await;
    let results = futures::future::join_all(listings.iter().enumerate().map(|(i, l)| {
        let buyer = buyer.clone();
        let l = l.clone();
        async move { buy(&buyer, &l, "0.01", &format!("spend-key-{i:04}")).await }
    }))
    .await;
    let ok = results.iter().filter(|r| r.0 == 200).count();
    assert_eq!(ok, 3, "{results:?}");
    assert!(results
        .iter()
        .all(|r| r.0 == 200 || r.1["kind"] == "insufficient_funds"));
    assert_eq!(money(&app, buyer_id, "available").await, "25.00");
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn webhooks_are_signed_and_settle_a_payment_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (buyer, buyer_id) = app.signed_in(Role::Buyer).await;
    let (status, body) = json(
        buyer
            .post("/api/money/top-up", &[("amount", "250000")])
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let page = body["pay_url"].as_str().unwrap().to_owned();
    let payment_id = page.rsplit('/').next().unwrap().to_owned();
    let hook = format!("{}/webhooks/payments/sandbox", buyer.base);
    let http = reqwest::Client::new();

    // A forged delivery: signed with another secret.
    let forged = app::server::payments::sandbox::Sandbox::new(b"not the secret".to_vec()).delivery(
        &app::server::payments::sandbox::Delivery {
            event_id: "evt_forged".into(),
            payment_id: payment_id.parse().unwrap(),
            status: "succeeded".into(),
            reason: String::new(),
        },
        chrono::Utc::now().timestamp(),
    );
    let res = http
        .post(&hook)
        .header("x-sandbox-signature", forged.1)
        .body(forged.0)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let (body, signature) = sandbox_delivery(&payment_id, "succeeded", "evt_1");
    let res = http.post(&hook).body(body.clone()).send().await.unwrap();
    assert_eq!(res.status(), 400, "no signature");
    assert_eq!(money(&app, buyer_id, "available").await, "0.00");
    assert_eq!(
        app.count("SELECT count(*) FROM payment_events WHERE NOT verified")
            .await,
        2
    );

    let res = http
        .post(&hook)
        .header("x-sandbox-signature", &signature)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["outcome"], "applied");
    assert_eq!(money(&app, buyer_id, "available").await, "250000.00");
    // The same delivery again, and a late "failed" for the same payment: nothing changes.
    let res = http
        .post(&hook)
        .header("x-sandbox-signature", &signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap()["outcome"],
        "already_settled"
    );
    let (late, late_sig) = sandbox_delivery(&payment_id, "failed", "evt_2");
    let res = http
        .post(&hook)
        .header("x-sandbox-signature", late_sig)
        .body(late)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap()["outcome"],
        "already_settled"
    );
    assert_eq!(money(&app, buyer_id, "available").await, "250000.00");
    let (_, wallet) = json(buyer.post("/api/money/wallet", &[]).await).await;
    assert_eq!(wallet["payments"][0]["status"], "succeeded");
    assert_eq!(wallet["movements"][0]["kind"], "top_up");
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_checkout_reserves_then_completes_or_gives_everything_back(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_owner, owner_id, listing) = seller_with_listing(&app, 100, "200000", "0.001").await;
    let (buyer, buyer_id) = app.signed_in(Role::Buyer).await;
    buyer.top_up("5000").await;
    // 50 kg = 10,000 + 250: the wallet's 5,000 is held, the gateway collects 5,250.
    let checkout = |key: &'static str, retire: bool| {
        let buyer = buyer.clone();
        let listing = listing.clone();
        async move {
            let mut form = vec![
                ("listing", listing.as_str()),
                ("quantity", "0.05"),
                ("expected_price", "200000.00"),
                ("idempotency_key", key),
                ("pay_with", "gateway"),
            ];
            if retire {
                form.extend([
                    ("retire", "on"),
                    ("beneficiary", "Xanh Co"),
                    ("reason", "Q4 offsets"),
                ]);
            }
            json(buyer.post("/api/market/buy", &form).await).await
        }
    };
    let (status, first) = checkout("checkout-key-fail", false).await;
    assert_eq!(status, 200, "{first}");
    let page = first["next"].as_str().unwrap().to_owned();
    assert!(page.starts_with("/sandbox/pay/"));
    assert_eq!(money(&app, buyer_id, "held").await, "5000.00");
    let (_, detail) = json(
        app.client()
            .post("/api/market/listing", &[("number", &listing)])
            .await,
    )
    .await;
    assert_eq!(detail["listing"]["available_kg"], 50);
    assert_eq!(detail["listing"]["pending_kg"], 50);
    // The payer's card is declined: the order is cancelled and everything returns.
    assert_eq!(buyer.post(&page, &[("choice", "fail")]).await.status(), 303);
    let (_, o) = json(
        buyer
            .post(
                "/api/orders/get",
                &[("number", first["order"].as_str().unwrap())],
            )
            .await,
    )
    .await;
    assert_eq!(o["status"], "cancelled");
    assert_eq!(money(&app, buyer_id, "held").await, "0.00");
    assert_eq!(money(&app, buyer_id, "available").await, "5000.00");
    let (_, detail) = json(
        app.client()
            .post("/api/market/listing", &[("number", &listing)])
            .await,
    )
    .await;
    assert_eq!(detail["listing"]["available_kg"], 100);

    // Again, retiring on purchase, and this time the payment succeeds.
    let (status, second) = checkout("checkout-key-pays", true).await;
    assert_eq!(status, 200, "{second}");
    let page = second["next"].as_str().unwrap().to_owned();
    let res = buyer.post(&page, &[("choice", "succeed")]).await;
    assert_eq!(res.status(), 303);
    let order = second["order"].as_str().unwrap();
    assert_eq!(res.headers()["location"], format!("/orders/{order}"));
    let (_, o) = json(buyer.post("/api/orders/get", &[("number", order)]).await).await;
    assert_eq!(o["status"], "completed", "{o}");
    assert_eq!(money(&app, buyer_id, "available").await, "0.00");
    assert_eq!(money(&app, buyer_id, "held").await, "0.00");
    assert_eq!(money(&app, owner_id, "available").await, "9750.00");
    assert_eq!(credits(&app, buyer_id, "retired").await, 50);
    let certificate = o["certificate"].as_str().unwrap().to_owned();
    let (_, cert) = json(
        app.client()
            .post("/api/certificates/get", &[("number", &certificate)])
            .await,
    )
    .await;
    assert_eq!(cert["beneficiary"], "Xanh Co");
    assert_eq!(
        cert["blocks"][0]["serials"],
        "EVCX-VN-2026-000000001-000000050"
    );

    // A third checkout nobody pays expires, and the listing is whole again.
    let (_, third) = checkout("checkout-key-late", false).await;
    sqlx::query(
        "UPDATE payments SET expires_at = now() - interval '1 second' WHERE status = 'pending'",
    )
    .execute(&app.pool)
    .await
    .unwrap_err(); // a payment's terms are fixed once written
    sqlx::query("ALTER TABLE payments DISABLE TRIGGER payments_settled_once")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE payments SET expires_at = now() - interval '1 second' WHERE status = 'pending'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("ALTER TABLE payments ENABLE TRIGGER payments_settled_once")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        app::server::services::payments::expire_due(&app.pool)
            .await
            .unwrap(),
        1
    );
    let (_, o) = json(
        buyer
            .post(
                "/api/orders/get",
                &[("number", third["order"].as_str().unwrap())],
            )
            .await,
    )
    .await;
    assert_eq!(o["status"], "cancelled");
    let (_, detail) = json(
        app.client()
            .post("/api/market/listing", &[("number", &listing)])
            .await,
    )
    .await;
    assert_eq!(detail["listing"]["available_kg"], 50);
    // The gateway collected the money after all: it lands in the wallet, the order stays cancelled.
    let late = third["next"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let (body, signature) = sandbox_delivery(&late, "succeeded", "evt_late");
    let res = reqwest::Client::new()
        .post(format!("{}/webhooks/payments/sandbox", buyer.base))
        .header("x-sandbox-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["outcome"], "applied");
    assert_eq!(money(&app, buyer_id, "available").await, "10250.00");
    let (_, o) = json(
        buyer
            .post(
                "/api/orders/get",
                &[("number", third["order"].as_str().unwrap())],
            )
            .await,
    )
    .await;
    assert_eq!(o["status"], "cancelled");
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_seller_reprices_shrinks_and_withdraws(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, owner_id, listing) = seller_with_listing(&app, 100, "100000", "0.001").await;
    let (buyer, _) = app.signed_in(Role::Buyer).await;
    buyer.top_up("100000").await;
    assert_eq!(buy(&buyer, &listing, "0.03", "seller-test-1").await.0, 200);

    assert_eq!(
        owner
            .post(
                "/api/listings/price",
                &[("listing", &listing), ("price", "150000")]
            )
            .await
            .status(),
        200
    );
    let (status, body) = json(
        owner
            .post(
                "/api/listings/quantity",
                &[("listing", &listing), ("quantity", "0.02")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "quantity").as_deref(),
        Some("0.030 t are already sold or being paid for.")
    );
    assert_eq!(
        owner
            .post(
                "/api/listings/quantity",
                &[("listing", &listing), ("quantity", "0.06")]
            )
            .await
            .status(),
        200
    );
    assert_eq!(credits(&app, owner_id, "available").await, 40);
    // Someone else's listing cannot be touched.
    let (other, _) = app.signed_in(Role::EvOwner).await;
    assert_eq!(
        other
            .post("/api/listings/cancel", &[("listing", &listing)])
            .await
            .status(),
        404
    );

    assert_eq!(
        owner
            .post("/api/listings/cancel", &[("listing", &listing)])
            .await
            .status(),
        200
    );
    assert_eq!(credits(&app, owner_id, "available").await, 70);
    assert_eq!(credits(&app, owner_id, "held").await, 0);
    let (status, body) = buy(&buyer, &listing, "0.001", "seller-test-2").await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = json(
        owner
            .post("/api/listings/cancel", &[("listing", &listing)])
            .await,
    )
    .await;
    assert_eq!(status, 409);
    let (_, mine) = json(owner.post("/api/listings/mine", &[]).await).await;
    assert_eq!(mine["listings"][0]["status"], "cancelled");
    assert_eq!(mine["orders"][0]["total"], "2925.00");
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn an_expired_listing_gives_its_unsold_credits_back(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_owner, owner_id, listing) = seller_with_listing(&app, 100, "100000", "0.001").await;
    sqlx::query("UPDATE listings SET expires_at = now() - interval '1 minute'")
        .execute(&app.pool)
        .await
        .unwrap();
    let (buyer, _) = app.signed_in(Role::Buyer).await;
    buyer.top_up("100000").await;
    let (status, body) = buy(&buyer, &listing, "0.01", "expired-key-1").await;
    assert_eq!(status, 409);
    assert!(
        body["message"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    assert_eq!(
        app::server::services::listings::expire_due(&app.pool)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        app::server::services::listings::expire_due(&app.pool)
            .await
            .unwrap(),
        0
    );
    assert_eq!(credits(&app, owner_id, "available").await, 100);
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_search_filters_sorts_and_pages(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, owner_id) = app.signed_in(Role::EvOwner).await;
    grant_credits(&app, owner_id, 5000, "VN", 2026).await;
    grant_credits(&app, owner_id, 5000, "TH", 2025).await;
    for (class, qty, price) in [
        ("VN:2026", "1", "100000"),
        ("VN:2026", "0.5", "300000"),
        ("TH:2025", "2", "200000"),
        ("TH:2025", "0.1", "150000"),
    ] {
        let (status, body) = json(
            owner
                .post(
                    "/api/listings/create",
                    &[("class", class), ("quantity", qty), ("price", price)],
                )
                .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let visitor = app.client();
    let search = |form: Vec<(&'static str, &'static str)>| {
        let visitor = visitor.clone();
        async move {
            json(visitor.post("/api/market/listings", &form).await)
                .await
                .1
        }
    };
    let prices = |r: &Value| -> Vec<String> {
        r["listings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["price_per_t"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = search(vec![]).await;
    assert_eq!(all["total"], 4);
    assert_eq!(
        prices(&all),
        ["100000.00", "150000.00", "200000.00", "300000.00"]
    );
    assert_eq!(all["regions"], serde_json::json!(["TH", "VN"]));
    let r = search(vec![("region", "TH"), ("sort", "price_desc")]).await;
    assert_eq!(prices(&r), ["200000.00", "150000.00"]);
    let r = search(vec![
        ("min_qty", "0.5"),
        ("max_price", "250000"),
        ("sort", "quantity"),
    ])
    .await;
    assert_eq!(prices(&r), ["200000.00", "100000.00"]);
    let r = search(vec![("vintage", "2026"), ("min_price", "200000")]).await;
    assert_eq!(prices(&r), ["300000.00"]);
    let r = search(vec![("seller", "Test EV"), ("listing_type", "fixed")]).await;
    assert_eq!(r["total"], 4);
    let r = search(vec![("listing_type", "auction")]).await;
    assert_eq!(r["total"], 0);
    let r = search(vec![("page", "2")]).await;
    assert_eq!(r["listings"].as_array().unwrap().len(), 0);
    assert_eq!(r["has_next"], false);
    let (status, body) = json(
        visitor
            .post(
                "/api/market/listings",
                &[
                    ("vintage", "soon"),
                    ("sort", "random"),
                    ("listing_type", "swap"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422);
    for field in ["vintage", "sort", "listing_type"] {
        assert!(field_error(&body, field).is_some(), "{field}: {body}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn withdrawals_hold_then_are_paid_or_released_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, owner_id) = app.signed_in(Role::EvOwner).await;
    owner.top_up("1000000").await;
    let withdraw = |amount: &'static str, key: &'static str| {
        let owner = owner.clone();
        async move {
            json(
                owner
                    .post(
                        "/api/money/withdraw",
                        &[
                            ("amount", amount),
                            ("bank_name", "Vietcombank"),
                            ("account_holder", "Nguyen Van A"),
                            ("account_number", "0123 456 789"),
                            ("idempotency_key", key),
                        ],
                    )
                    .await,
            )
            .await
        }
    };
    // Identity not checked yet: refused, nothing held; an admin checks it.
    let (status, body) = withdraw("400000", "withdraw-key-kyc").await;
    assert_eq!(status, 409);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("Withdrawals need your identity checked first"));
    assert_eq!(money(&app, owner_id, "held").await, "0.00");
    let (admin, _) = app.signed_in(Role::Admin).await;
    let res = admin
        .post(
            "/api/admin/users/kyc",
            &[("user_id", &owner_id.to_string()), ("verified", "on")],
        )
        .await;
    assert_eq!(res.status(), 200);

    let (status, body) = withdraw("1000", "withdraw-key-small").await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "amount").as_deref(),
        Some("A withdrawal is between 50.000 ₫ and 200.000.000 ₫.")
    );
    let (status, first) = withdraw("400000", "withdraw-key-first").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        withdraw("400000", "withdraw-key-first").await.1,
        first,
        "a double submit makes one"
    );
    // 400,000 + 11,000 fee held.
    assert_eq!(money(&app, owner_id, "held").await, "411000.00");
    assert_eq!(money(&app, owner_id, "available").await, "589000.00");
    let (status, body) = withdraw("580000", "withdraw-key-poor").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (409, Some("insufficient_funds"))
    );
    let (_, second) = withdraw("100000", "withdraw-key-second").await;

    let (_, queue) = json(admin.post("/api/admin/withdrawals", &[]).await).await;
    assert_eq!(queue["withdrawals"].as_array().unwrap().len(), 2);
    assert_eq!(queue["withdrawals"][0]["account_number"], "0123456789");
    let first = first.as_str().unwrap();
    let decide = |number: String, decision: &'static str, note: &'static str| {
        let admin = admin.clone();
        async move {
            json(
                admin
                    .post(
                        "/api/admin/withdrawals/decide",
                        &[
                            ("withdrawal", &number),
                            ("decision", decision),
                            ("note", note),
                        ],
                    )
                    .await,
            )
            .await
        }
    };
    let (a, b) = tokio::join!(
        decide(first.into(), "approve", ""),
        decide(first.into(), "approve", "")
    );
    assert_eq!(
        [a.0, b.0].iter().filter(|s| **s == 200).count(),
        1,
        "{a:?} {b:?}"
    );
    assert!([a.1, b.1].iter().any(|x| x["message"]
        .as_str()
        .is_some_and(|m| m.contains("already paid"))));
    let second = second.as_str().unwrap().to_owned();
    assert_eq!(decide(second.clone(), "reject", "").await.0, 422);
    assert_eq!(
        decide(second.clone(), "reject", "The account name does not match.")
            .await
            .0,
        200
    );
    assert_eq!(money(&app, owner_id, "held").await, "0.00");
    assert_eq!(money(&app, owner_id, "available").await, "589000.00");
    assert_eq!(fee_income(&app).await, "11000.00");
    let (_, wallet) = json(owner.post("/api/money/wallet", &[]).await).await;
    assert_eq!(wallet["withdrawals"][0]["status"], "rejected");
    assert_eq!(
        wallet["withdrawals"][0]["decision_note"],
        "The account name does not match."
    );
    assert_eq!(wallet["withdrawals"][0]["account_number"], "••••6789");
    assert_eq!(
        app.count("SELECT count(*) FROM notifications WHERE kind = 'withdrawal_decided'")
            .await,
        2
    );
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_admin_changes_fees_and_the_next_sale_uses_them(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (admin, _) = app.signed_in(Role::Admin).await;
    let update = |buyer: &'static str, min: &'static str| {
        let admin = admin.clone();
        async move {
            json(
                admin
                    .post(
                        "/api/admin/settings/update",
                        &[
                            ("buyer_fee_percent", buyer),
                            ("seller_fee_percent", "1"),
                            ("withdrawal_min", min),
                            ("withdrawal_max", "100000000"),
                            ("withdrawal_daily_max", "200000000"),
                            ("withdrawal_fee", "0"),
                        ],
                    )
                    .await,
            )
            .await
        }
    };
    let (status, body) = update("25", "50000").await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "buyer_fee_percent").is_some());
    let (status, body) = update("4", "50000").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["buyer_fee_rate"], "0.04");
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'settings.update'")
            .await,
        1
    );

    let (_owner, owner_id, listing) = seller_with_listing(&app, 100, "100000", "0.001").await;
    let (buyer, buyer_id) = app.signed_in(Role::Buyer).await;
    buyer.top_up("10400").await;
    assert_eq!(buy(&buyer, &listing, "0.1", "fees-key-1").await.0, 200);
    // 10,000 + 4 % = 10,400 from the buyer; 10,000 − 1 % = 9,900 to the seller.
    assert_eq!(money(&app, buyer_id, "available").await, "0.00");
    assert_eq!(money(&app, owner_id, "available").await, "9900.00");
    assert_eq!(fee_income(&app).await, "500.00");
    reconciled(&app.pool).await;
}

/// The anonymous marketplace page as one instance served it: (cache header, CSP nonce, body).
async fn market_page(app: &TestApp, path: &str) -> (Option<String>, String, String) {
    let res = app.client().get(path).await;
    assert_eq!(res.status(), 200);
    let cache = res
        .headers()
        .get("x-evcx-cache")
        .map(|v| v.to_str().unwrap().to_owned());
    let nonce = csp_nonce(res.headers());
    (cache, nonce, res.text().await.unwrap())
}

#[sqlx::test(migrations = "../migrations")]
async fn anonymous_market_pages_are_kept_until_a_listing_changes_on_any_instance(pool: PgPool) {
    let one = TestApp::spawn_live(pool.clone()).await;
    let two = TestApp::spawn_live(pool.clone()).await;
    let before = two.state.live.market_generation();
    let (owner, _, listing) = seller_with_listing(&one, 2_000, "150000", "0.1").await;
    let path = "/market?sort=price";
    // The second instance hears of the new listing before its first visit (on a busy machine
    // the announcement may come after that visit began, and the page kept would be stale).
    let heard = async {
        while two.state.live.market_generation() <= before {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), heard)
        .await
        .expect("the second instance hears of the listing");

    // The first visit renders, the next ones are served from the page kept — each with a
    // nonce of its own, in the policy and on every script of the page.
    let (cache, _, first) = market_page(&two, path).await;
    assert_eq!(cache.as_deref(), Some("miss"));
    assert!(first.contains(&listing), "the new listing is on the page");
    let (cache, nonce_a, body_a) = market_page(&two, path).await;
    let (_, nonce_b, body_b) = market_page(&two, path).await;
    assert_eq!(cache.as_deref(), Some("hit"));
    assert_ne!(nonce_a, nonce_b);
    assert!(body_a.contains(&format!("nonce=\"{nonce_a}\"")));
    assert!(!body_a.contains(&nonce_b) && body_b.contains(&format!("nonce=\"{nonce_b}\"")));
    assert_eq!(body_a.replace(&nonce_a, ""), body_b.replace(&nonce_b, ""));

    // A reload that asks for a fresh page gets one.
    let res = two
        .client()
        .http
        .get(two.url(path))
        .header("cache-control", "no-cache")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-evcx-cache"], "miss");

    // Another search is kept apart.
    let (cache, _, other) = market_page(&two, "/market?region=TH").await;
    assert_eq!(cache.as_deref(), Some("miss"));
    assert!(!other.contains(&listing));

    // The seller cancels on the other instance: once this one hears of it, the kept page is
    // not served again.
    let heard = two.state.live.market_generation();
    let (status, body) = json(
        owner
            .post("/api/listings/cancel", &[("listing", &listing)])
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while two.state.live.market_generation() == heard {
        assert!(
            std::time::Instant::now() < deadline,
            "the change was never announced"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (cache, _, after) = market_page(&two, path).await;
    assert_eq!(cache.as_deref(), Some("miss"));
    assert!(
        !after.contains(&listing),
        "a cancelled listing is gone from the page"
    );

    // Signed-in visitors always get their own render (their header names them).
    let (buyer, _) = two.signed_in(Role::Buyer).await;
    let res = buyer.get(path).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("x-evcx-cache").is_none());

    // An instance that does not hear announcements renders every time and keeps nothing.
    let deaf = TestApp::spawn(pool).await;
    for _ in 0..2 {
        let (cache, _, body) = market_page(&deaf, path).await;
        assert_eq!(cache, None);
        assert!(body.contains("Marketplace"));
    }
}

/// Buys through the service (as the purchase form's handler does), in its own task.
fn buying(
    app: &TestApp,
    buyer: Uuid,
    listing: &str,
    quantity: &'static str,
    key: &'static str,
) -> tokio::task::JoinHandle<Result<Purchase, AppError>> {
    let (state, listing) = (app.state.clone(), listing.to_owned());
    tokio::spawn(async move {
        // Every listing of these tests sells at 100,000 per tonne.
        let input = BuyInput {
            listing: &listing,
            quantity,
            expected_price: "100000.00",
            idempotency_key: key,
            ..BuyInput::default()
        };
        orders::buy(&state, buyer, input).await
    })
}

/// What a purchase came to, in words: the order's number or the message shown.
async fn said(purchase: tokio::task::JoinHandle<Result<Purchase, AppError>>) -> String {
    match purchase.await.unwrap() {
        Ok(p) => p.order,
        Err(AppError::Invalid { fields }) => fields[0].message.clone(),
        Err(e) => e.to_string(),
    }
}

/// Waits (30 s at most) until `settling` workers are settling a batch and `waiting` purchases
/// wait for one.
async fn purchases_wait(app: &TestApp, settling: usize, waiting: usize) {
    let queue = &app.state.purchases;
    let wait = async {
        while queue.settling() != settling || queue.waiting() != waiting {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), wait)
        .await
        .expect("the purchases wait for their turn");
}

/// Holds every listing's row (as another instance's batch would) until committed.
async fn hold_the_listings(app: &TestApp) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut busy = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM listings FOR UPDATE")
        .execute(&mut *busy)
        .await
        .unwrap();
    busy
}

#[sqlx::test(migrations = "../migrations")]
async fn purchases_that_wait_together_are_settled_together_in_arrival_order(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_, big_seller, big) = seller_with_listing(&app, 100, "100000", "0.001").await;
    let (_, small_seller, small) = seller_with_listing(&app, 10, "100000", "0.001").await;
    let (ann, ann_id) = app.signed_in(Role::Buyer).await;
    ann.top_up("100000").await;
    let (bob, bob_id) = app.signed_in(Role::Buyer).await;
    bob.top_up("100000").await;
    let (poor, poor_id) = app.signed_in(Role::Buyer).await;
    poor.top_up("100").await;

    // Something else holds the listings: the first purchase takes this instance's worker and
    // waits for the rows; the ones after it wait for the worker, which then takes them all as
    // one batch.
    let blocker = hold_the_listings(&app).await;
    let first = buying(&app, ann_id, &big, "0.001", "ann-first-1");
    purchases_wait(&app, 1, 0).await;
    let second = buying(&app, bob_id, &big, "0.001", "bob-first-1");
    purchases_wait(&app, 1, 1).await;
    let twin = buying(&app, ann_id, &small, "0.005", "ann-twin-key");
    let retry = buying(&app, ann_id, &small, "0.005", "ann-twin-key");
    let too_many = buying(&app, bob_id, &small, "0.006", "bob-later-1");
    let the_rest = buying(&app, bob_id, &small, "0.005", "bob-later-2");
    let sold_out = buying(&app, poor_id, &small, "0.001", "poor-try-1");
    let unpaid = buying(&app, poor_id, &big, "0.001", "poor-try-2");
    let reused = buying(&app, ann_id, &big, "0.001", "ann-twin-key");
    purchases_wait(&app, 1, 8).await;
    blocker.commit().await.unwrap();

    assert!(said(first).await.starts_with("ORD-"));
    assert!(said(second).await.starts_with("ORD-"));
    let order = said(twin).await;
    assert!(order.starts_with("ORD-"), "{order}");
    // The same key again in the same batch is its retry: the same order, bought once.
    assert_eq!(said(retry).await, order);
    // Ann's 5 kg left 5 when Bob's 6 kg came.
    assert_eq!(said(too_many).await, "Only 5 kg are left in this listing.");
    assert!(said(the_rest).await.starts_with("ORD-"));
    assert!(said(sold_out).await.starts_with("Sold out"));
    assert!(said(unpaid).await.contains("your wallet does not cover it"));
    assert_eq!(
        said(reused).await,
        format!(
            "This purchase key was already used for order {order}. Reload the page to buy again."
        )
    );

    assert_eq!(app.count("SELECT count(*) FROM orders").await, 4);
    // Each of them: 1 kg (100 + 2.50 fee) and 5 kg (500 + 12.50).
    for buyer in [ann_id, bob_id] {
        assert_eq!(money(&app, buyer, "available").await, "99385.00");
        assert_eq!(credits(&app, buyer, "available").await, 6);
    }
    assert_eq!(money(&app, poor_id, "available").await, "100.00");
    // The sellers: 10 kg and 2 kg, less the 2.5 % fee.
    assert_eq!(money(&app, small_seller, "available").await, "975.00");
    assert_eq!(money(&app, big_seller, "available").await, "195.00");
    let (status, sold): (String, i64) =
        sqlx::query_as("SELECT status, sold_kg FROM listings WHERE number = $1")
            .bind(&small)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), sold), ("sold", 10));
    // Every sale told its seller.
    assert_eq!(
        app.count("SELECT count(*) FROM notifications WHERE kind = 'listing_sold'")
            .await,
        4
    );
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_wallet_emptied_while_its_batch_waits_is_refused_and_the_rest_settle(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_, seller_id, listing) = seller_with_listing(&app, 100, "100000", "0.001").await;
    let (ann, ann_id) = app.signed_in(Role::Buyer).await;
    ann.top_up("1000").await;
    let (bob, bob_id) = app.signed_in(Role::Buyer).await;
    bob.top_up("1000").await;

    let blocker = hold_the_listings(&app).await;
    let early = buying(&app, bob_id, &listing, "0.001", "bob-early-1");
    purchases_wait(&app, 1, 0).await;
    // The next batch: Ann's 5 kg (512.50 of her 1,000) and Bob's 2 kg.
    let spends = buying(&app, ann_id, &listing, "0.005", "ann-spends-1");
    let other = buying(&app, bob_id, &listing, "0.002", "bob-other-1");
    purchases_wait(&app, 1, 2).await;
    // Meanwhile Ann's wallet is busy: another transaction is about to hold 800 of it.
    let mut wallet = app.pool.begin().await.unwrap();
    sqlx::query(
        "SELECT 1 FROM ledger_accounts WHERE owner_id = $1 AND asset = 'money' AND kind = 'available' FOR UPDATE",
    )
    .bind(ann_id)
    .execute(&mut *wallet)
    .await
    .unwrap();
    let wallet_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *wallet)
        .await
        .unwrap();
    blocker.commit().await.unwrap();
    // Bob's early purchase settles; the next batch reads Ann's 1,000 as available and then
    // waits for her wallet's row.
    let waits = async {
        while sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
        )
        .bind(wallet_pid)
        .fetch_one(&app.pool)
        .await
        .unwrap()
            == 0
        {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), waits)
        .await
        .expect("the batch waits for Ann's wallet");
    ledger::hold(
        &mut wallet,
        ann_id,
        Asset::Money,
        Decimal::from(800),
        "withdrawal",
        Some(ann_id),
    )
    .await
    .unwrap();
    wallet.commit().await.unwrap();

    assert!(said(early).await.starts_with("ORD-"));
    // Her purchase is refused (200 left), Bob's in the same batch goes through.
    assert!(said(spends).await.contains("your wallet does not cover it"));
    assert!(said(other).await.starts_with("ORD-"));
    assert_eq!(money(&app, ann_id, "available").await, "200.00");
    assert_eq!(money(&app, ann_id, "held").await, "800.00");
    assert_eq!(credits(&app, ann_id, "available").await, 0);
    assert_eq!(credits(&app, bob_id, "available").await, 3);
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 2);
    // 3 kg at 100 a tonne, less the 2.5 % fee.
    assert_eq!(money(&app, seller_id, "available").await, "292.50");
    reconciled(&app.pool).await;
}

/// The listing as everyone sees it.
async fn listing_detail(app: &TestApp, listing: &str) -> Value {
    json(
        app.client()
            .post("/api/market/listing", &[("number", listing)])
            .await,
    )
    .await
    .1
}

/// Posts a refusal's `resubmit` form back, as the page's "… anyway" button does.
async fn resubmit(app: &TestApp, api: &Api, path: &str, refusal: &Value) -> (u16, Value) {
    let form: Vec<(String, String)> = serde_json::from_value(refusal["resubmit"].clone()).unwrap();
    assert!(
        form.contains(&("confirm_price".into(), "true".into())),
        "{refusal}"
    );
    json(
        api.http
            .post(app.url(path))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[sqlx::test(migrations = "../migrations")]
async fn prices_and_quantities_read_as_the_site_writes_them(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, owner_id) = app.signed_in(Role::EvOwner).await;
    grant_credits(&app, owner_id, 1_000, "VN", 2026).await;
    let create = |quantity: &'static str, price: &'static str| {
        let owner = owner.clone();
        async move {
            json(
                owner
                    .post(
                        "/api/listings/create",
                        &[
                            ("class", "VN:2026"),
                            ("quantity", quantity),
                            ("price", price),
                            ("min_lot", "0,01"),
                        ],
                    )
                    .await,
            )
            .await
        }
    };
    // What could be two values is refused, naming both, and nothing is reserved.
    let (status, body) = create("1,250", "215.5").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        field_error(&body, "price").as_deref(),
        Some("“215.5” is not a whole amount of đồng: did you mean 215.500 ₫ or 215 ₫?")
    );
    assert_eq!(
        field_error(&body, "quantity").as_deref(),
        Some(
            "“1,250” could be 1250 t or 1.25 t: write 1250 or 1.25 (the decimal mark is a point)."
        )
    );
    assert_eq!(credits(&app, owner_id, "held").await, 0);

    // "215.000" as the site shows it is 215,000 ₫ a tonne; "0,5" t is 500 kg, "0,01" 10 kg.
    let (status, number) = create("0,5", "215.000").await;
    assert_eq!(status, 200, "{number}");
    let listing = number.as_str().unwrap().to_owned();
    let detail = listing_detail(&app, &listing).await;
    assert_eq!(detail["listing"]["price_per_t"], "215000.00");
    assert_eq!(detail["listing"]["listed_kg"], 500);
    assert_eq!(detail["listing"]["min_lot_kg"], 10);
    assert_eq!(credits(&app, owner_id, "held").await, 500);

    // A buyer tops up "100.000 ₫" (100,000 ₫) and buys "0,01" t: 10 kg at 215,000 ₫ a tonne is
    // 2,150 ₫ plus the 53,75 ₫ fee.
    let (buyer, buyer_id) = app.signed_in(Role::Buyer).await;
    buyer.top_up("100.000 ₫").await;
    assert_eq!(money(&app, buyer_id, "available").await, "100000.00");
    let (status, body) = buy(&buyer, &listing, "0,01", "comma-quantity-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(credits(&app, buyer_id, "available").await, 10);
    assert_eq!(money(&app, buyer_id, "available").await, "97796.25");
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_price_far_from_the_suggestion_is_listed_only_once_confirmed(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, owner_id) = app.signed_in(Role::EvOwner).await;
    grant_credits(&app, owner_id, 1_000, "VN", 2026).await;
    // 215 ₫ a tonne next to a suggested 200.000 ₫ (no trades yet: the rule-based default).
    let (status, body) = json(
        owner
            .post(
                "/api/listings/create",
                &[
                    ("class", "VN:2026"),
                    ("quantity", "0.5"),
                    ("price", "215"),
                    ("description", "Xe máy điện"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (409, Some("confirm_price")),
        "{body}"
    );
    assert_eq!(
        body["message"],
        "215 ₫ per tonne is less than half the suggested price of 200.000 ₫ for VN 2026 credits: check the amount before listing at it."
    );
    assert_eq!(body["price_per_t"], "215.00");
    assert_eq!(body["suggested_per_t"], "200000");
    assert_eq!(app.count("SELECT count(*) FROM listings").await, 0);
    assert_eq!(credits(&app, owner_id, "held").await, 0);

    // "List at 215 ₫ anyway": the same form, confirmed.
    let (status, number) = resubmit(&app, &owner, "/api/listings/create", &body).await;
    assert_eq!(status, 200, "{number}");
    let listing = number.as_str().unwrap().to_owned();
    let detail = listing_detail(&app, &listing).await;
    assert_eq!(detail["listing"]["price_per_t"], "215.00");
    assert_eq!(detail["listing"]["listed_kg"], 500);
    assert_eq!(detail["listing"]["description"], "Xe máy điện");
    assert_eq!(credits(&app, owner_id, "held").await, 500);

    // Repricing far from the suggestion asks the same; a price near it does not.
    let reprice = |price: &'static str| {
        let (owner, listing) = (owner.clone(), listing.clone());
        async move {
            json(
                owner
                    .post(
                        "/api/listings/price",
                        &[("listing", listing.as_str()), ("price", price)],
                    )
                    .await,
            )
            .await
        }
    };
    let (status, body) = reprice("2.000.000").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (409, Some("confirm_price")),
        "{body}"
    );
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("2.000.000 ₫ per tonne is more than double the suggested price of 200.000 ₫"));
    assert_eq!(
        listing_detail(&app, &listing).await["listing"]["price_per_t"],
        "215.00"
    );
    let (status, body) = resubmit(&app, &owner, "/api/listings/price", &body).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        listing_detail(&app, &listing).await["listing"]["price_per_t"],
        "2000000.00"
    );
    let (status, body) = reprice("215.000").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        listing_detail(&app, &listing).await["listing"]["price_per_t"],
        "215000.00"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_price_raised_after_the_buyer_looked_is_refused_with_the_new_price(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, owner_id, listing) = seller_with_listing(&app, 1_000, "100000", "0.001").await;
    let (buyer, buyer_id) = app.signed_in(Role::Buyer).await;
    buyer.top_up("1000000").await;
    let seen = shown_price(&buyer, &listing).await;
    assert_eq!(seen, "100000.00");

    // The seller raises the price a hundredfold before the buyer clicks.
    let (status, body) = json(
        owner
            .post(
                "/api/listings/price",
                &[
                    ("listing", listing.as_str()),
                    ("price", "10000000"),
                    ("confirm_price", "true"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let changed = "The price changed from 100.000 ₫ to 10.000.000 ₫ per tonne since you opened the page; nothing was bought. Check the new price and buy again if it suits you.";
    let (status, body) = buy_at(&buyer, &listing, "0.01", &seen, "front-run-1").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (409, Some("price_changed")),
        "{body}"
    );
    assert_eq!(body["message"], changed);
    assert_eq!(body["price_per_t"], "10000000.00");
    // At checkout just the same.
    let (status, body) = json(
        buyer
            .post(
                "/api/market/buy",
                &[
                    ("listing", listing.as_str()),
                    ("quantity", "0.01"),
                    ("expected_price", seen.as_str()),
                    ("idempotency_key", "front-run-2"),
                    ("pay_with", "gateway"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (409, Some(changed)),
        "{body}"
    );
    // Without the price seen, nothing is bought either.
    let (status, body) = buy_at(&buyer, &listing, "0.01", "", "front-run-3").await;
    assert_eq!(status, 422, "{body}");
    assert!(field_error(&body, "expected_price").is_some(), "{body}");
    // Nothing was written: no order, no money moved, nothing reserved.
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
    assert_eq!(money(&app, buyer_id, "available").await, "1000000.00");
    assert_eq!(money(&app, buyer_id, "held").await, "0.00");
    assert_eq!(money(&app, owner_id, "available").await, "0.00");
    let detail = listing_detail(&app, &listing).await;
    assert_eq!(
        (
            &detail["listing"]["available_kg"],
            &detail["listing"]["pending_kg"]
        ),
        (&Value::from(1000), &Value::from(0))
    );

    // Having seen the new price, the buyer buys at it: 10 kg for 100,000 ₫ + 2,500 ₫ fee.
    let (status, body) = buy(&buyer, &listing, "0.01", "front-run-4").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(money(&app, buyer_id, "available").await, "897500.00");
    // A price lowered since the buyer looked is their gain: bought at the lower price.
    let (status, body) = json(
        owner
            .post(
                "/api/listings/price",
                &[
                    ("listing", listing.as_str()),
                    ("price", "90000"),
                    ("confirm_price", "true"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = buy_at(&buyer, &listing, "0.01", "10000000.00", "front-run-5").await;
    assert_eq!(status, 200, "{body}");
    let (_, order) = json(
        buyer
            .post(
                "/api/orders/get",
                &[("number", body["order"].as_str().unwrap())],
            )
            .await,
    )
    .await;
    assert_eq!(order["price_per_t"], "90000.00");
    assert_eq!(money(&app, buyer_id, "available").await, "896577.50");
    reconciled(&app.pool).await;
}
