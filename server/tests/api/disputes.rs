//! Disputes and the admin's operations over HTTP: a refund reverses a sale through the ledger
//! (money to the cent, the order's own serials back, retired ones untouched, reconciliation
//! green, both parties told); refusals change nothing; stuck orders, suspended listings, the
//! KYC flag and the platform's money.

use super::market::{buy, seller_with_listing};
use super::support::{field_error, grant_credits, json, reconciled, Api, TestApp};
use app::domain::user::Role;
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

async fn money(app: &TestApp, user: Uuid) -> Decimal {
    sqlx::query_scalar(
        "SELECT coalesce(sum(balance), 0) FROM ledger_accounts WHERE owner_id = $1 AND asset = 'money' AND kind = 'available'",
    )
    .bind(user)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn fee_income(app: &TestApp) -> Decimal {
    sqlx::query_scalar(
        "SELECT sum(balance) FROM ledger_accounts WHERE owner_id IS NULL AND asset = 'money' AND kind = 'platform_fees'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// The serial ranges in the user's account of `kind`, as [start, end).
async fn serials(app: &TestApp, user: Uuid, kind: &str) -> Vec<(i64, i64)> {
    sqlx::query_as(
        "SELECT lower(b.serials), upper(b.serials) FROM serial_blocks b JOIN ledger_accounts a ON a.id = b.account_id
         WHERE a.owner_id = $1 AND a.kind = $2 ORDER BY 1",
    )
    .bind(user)
    .bind(kind)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

fn kg(ranges: &[(i64, i64)]) -> i64 {
    ranges.iter().map(|(a, b)| b - a).sum()
}

async fn kinds(app: &TestApp, user: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT kind FROM notifications WHERE user_id = $1 ORDER BY created_at")
        .bind(user)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

async fn open_dispute(api: &Api, order: &str, reason: &str) -> (u16, Value) {
    json(
        api.post(
            "/api/orders/dispute",
            &[("order", order), ("reason", reason)],
        )
        .await,
    )
    .await
}

async fn decide(admin: &Api, dispute: &str, decision: &str, note: &str) -> (u16, Value) {
    json(
        admin
            .post(
                "/api/admin/disputes/decide",
                &[("dispute", dispute), ("decision", decision), ("note", note)],
            )
            .await,
    )
    .await
}

#[sqlx::test(migrations = "../migrations")]
async fn a_refund_reverses_the_sale_and_returns_the_orders_own_serials(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (buyer, buyer_id) = app.signed_in(Role::Buyer).await;
    // The buyer already holds 500 kg of the same class, with lower serials than the order's.
    grant_credits(&app, buyer_id, 500, "VN", 2026).await;
    let own = serials(&app, buyer_id, "available").await;
    let (_, seller, listing) = seller_with_listing(&app, 2_000, "200000", "0.1").await;
    buyer.top_up("1000000").await;
    let (status, body) = buy(&buyer, &listing, "0.8", "dispute-order-01").await;
    assert_eq!(status, 200, "{body}");
    let order = body["order"].as_str().unwrap().to_owned();
    let delivered: Vec<(i64, i64)> = serials(&app, buyer_id, "available")
        .await
        .into_iter()
        .filter(|r| !own.contains(r))
        .collect();
    assert_eq!(kg(&delivered), 800);
    // 600 kg retired: the buyer's own 500 first, then 100 of the order's.
    let res = buyer
        .post(
            "/api/wallet/retire",
            &[
                ("quantity_kg", "600"),
                ("beneficiary", "Xanh Co"),
                ("reason", "2026 travel"),
                ("idempotency_key", "retire-key-0002"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let retired = serials(&app, buyer_id, "retired").await;
    assert_eq!(kg(&retired), 600);

    let (admin, admin_id) = app.signed_in(Role::Admin).await;
    let (status, dispute) =
        open_dispute(&buyer, &order, "The seller's vehicle data looks copied.").await;
    assert_eq!(status, 200, "{dispute}");
    let dispute = dispute.as_str().unwrap().to_owned();
    assert!(dispute.starts_with("DSP-"));
    assert!(kinds(&app, seller)
        .await
        .contains(&"dispute_opened".to_owned()));
    assert!(kinds(&app, admin_id)
        .await
        .contains(&"dispute_opened".to_owned()));
    let (_, o) = json(buyer.post("/api/orders/get", &[("number", &order)]).await).await;
    assert_eq!(o["dispute"]["status"], "open");
    assert!(o["dispute_until"].is_null(), "no second dispute is offered");
    // Before deciding, the admin sees what a refund would return: 700 of the 800 kg.
    let (_, queue) = json(admin.post("/api/admin/disputes", &[]).await).await;
    assert_eq!(queue["disputes"][0]["returnable_kg"], 700);

    let (buyer_before, seller_before, fees_before) = (
        money(&app, buyer_id).await,
        money(&app, seller).await,
        fee_income(&app).await,
    );
    let seller_credits_before = serials(&app, seller, "available").await;
    let (status, decided) = decide(&admin, &dispute, "refund", "Evidence confirmed.").await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["status"], "refunded");
    assert_eq!(decided["returned_kg"], 700);
    // 0.8 t at 200,000 = 160,000; the buyer paid 164,000 and gets all of it back; the seller
    // gives back the 156,000 they received; the fee income the 8,000 of fees.
    assert_eq!(decided["refunded_amount"], "164000.00");
    assert_eq!(
        money(&app, buyer_id).await - buyer_before,
        Decimal::from(164_000)
    );
    assert_eq!(
        seller_before - money(&app, seller).await,
        Decimal::from(156_000)
    );
    assert_eq!(fees_before - fee_income(&app).await, Decimal::from(8_000));

    // Serials intact: the seller got back exactly the order's serials that were not retired;
    // the retired ones are where they were; the buyer's own are untouched.
    let returned: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT lower(m.serials), upper(m.serials) FROM serial_movements m
         JOIN ledger_transfers t ON t.id = m.transfer_id WHERE t.kind = 'refund_credits' ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(kg(&returned), 700);
    for (a, b) in &returned {
        assert!(
            delivered.iter().any(|(s, e)| s <= a && b <= e),
            "{a}..{b} was the order's"
        );
        assert!(
            !retired.iter().any(|(s, e)| a < e && s < b),
            "{a}..{b} was retired"
        );
    }
    assert_eq!(serials(&app, buyer_id, "retired").await, retired);
    assert_eq!(kg(&serials(&app, buyer_id, "available").await), 0);
    assert_eq!(
        kg(&serials(&app, seller, "available").await) - kg(&seller_credits_before),
        700
    );
    let (_, o) = json(buyer.post("/api/orders/get", &[("number", &order)]).await).await;
    assert_eq!(o["status"], "refunded");
    assert_eq!(o["dispute"]["status"], "refunded");
    assert!(kinds(&app, buyer_id)
        .await
        .contains(&"dispute_resolved".to_owned()));
    assert!(kinds(&app, seller)
        .await
        .contains(&"dispute_resolved".to_owned()));
    let body: String = sqlx::query_scalar(
        "SELECT body FROM notifications WHERE user_id = $1 AND kind = 'dispute_resolved'",
    )
    .bind(buyer_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        body.starts_with("164.000 ₫ is back in your wallet"),
        "{body}"
    );

    // Decided once.
    let (status, again) = decide(&admin, &dispute, "reject", "Changed my mind.").await;
    assert_eq!(status, 409);
    assert!(again["message"]
        .as_str()
        .unwrap()
        .contains("already decided (refunded)"));
    reconciled(&app.pool).await;
    let (_, cash) = json(admin.post("/api/admin/cash-flow", &[]).await).await;
    assert_eq!(cash["reconciled"], true, "{cash}");
    assert!(cash["moves"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["kind"] == "refund" && m["reference"] == order.as_str()));
}

#[sqlx::test(migrations = "../migrations")]
async fn disputes_are_refused_or_rejected_and_change_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, seller, listing) = seller_with_listing(&app, 1_000, "200000", "0.1").await;
    let (buyer, buyer_id) = app.signed_in(Role::Buyer).await;
    buyer.top_up("1000000").await;
    let (_, first) = buy(&buyer, &listing, "0.2", "dispute-order-02").await;
    let (_, second) = buy(&buyer, &listing, "0.2", "dispute-order-03").await;
    let (first, second) = (
        first["order"].as_str().unwrap().to_owned(),
        second["order"].as_str().unwrap().to_owned(),
    );
    let (admin, _) = app.signed_in(Role::Admin).await;
    let (other, _) = app.signed_in(Role::Buyer).await;

    let (status, body) = open_dispute(&buyer, &first, "bad").await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "reason").as_deref(),
        Some("Say what went wrong in 10 to 2,000 characters.")
    );
    let (status, _) = open_dispute(&other, &first, "Not even my order, honestly.").await;
    assert_eq!(status, 404);
    let res = owner
        .post(
            "/api/orders/dispute",
            &[("order", &first), ("reason", "Sellers cannot dispute.")],
        )
        .await;
    assert_eq!(res.status(), 403);

    // Past the window (14 days by default).
    sqlx::query("UPDATE orders SET completed_at = now() - interval '15 days' WHERE number = $1")
        .bind(&second)
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, body) = open_dispute(&buyer, &second, "Found out too late, sadly.").await;
    assert_eq!(status, 409);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Orders can be disputed for 14 days"),
        "{body}"
    );
    // The admin widens the window: now it can.
    let settings = |extra: &'static [(&'static str, &'static str)]| {
        let mut form = vec![
            ("buyer_fee_percent", "2.5"),
            ("seller_fee_percent", "2.5"),
            ("withdrawal_min", "50000"),
            ("withdrawal_max", "200000000"),
            ("withdrawal_daily_max", "500000000"),
            ("withdrawal_fee", "11000"),
        ];
        form.extend_from_slice(extra);
        form
    };
    let form = settings(&[
        ("dispute_window_days", "30"),
        ("auction_default_hours", "abc"),
    ]);
    let (status, body) = json(admin.post("/api/admin/settings/update", &form).await).await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "auction_default_hours").as_deref(),
        Some("Enter 1 to 720 hours (30 days).")
    );
    let form = settings(&[("dispute_window_days", "30")]);
    let res = admin.post("/api/admin/settings/update", &form).await;
    assert_eq!(res.status(), 200);
    let (status, _) = open_dispute(&buyer, &second, "Found out too late, sadly.").await;
    assert_eq!(status, 200);

    let (status, dispute) = open_dispute(&buyer, &first, "The credits are double counted.").await;
    assert_eq!(status, 200);
    let dispute = dispute.as_str().unwrap().to_owned();
    let (status, body) = open_dispute(&buyer, &first, "Trying a second time around.").await;
    assert_eq!(status, 409);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains(&format!("already has dispute {dispute}")));

    // A rejection needs a note, then stands; the order is untouched.
    let (status, body) = decide(&admin, &dispute, "reject", " ").await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "note").is_some());
    let (status, body) = decide(&admin, &dispute, "maybe", "").await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "decision").as_deref(),
        Some("Choose refund or reject.")
    );
    let before = (money(&app, buyer_id).await, money(&app, seller).await);
    let (status, body) = decide(&admin, &dispute, "reject", "The issuance was verified.").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "rejected");
    assert_eq!(
        before,
        (money(&app, buyer_id).await, money(&app, seller).await)
    );
    let (_, o) = json(buyer.post("/api/orders/get", &[("number", &first)]).await).await;
    assert_eq!(o["status"], "completed");
    assert_eq!(o["dispute"]["decision_note"], "The issuance was verified.");

    // A seller whose proceeds have left their wallet cannot be charged back: refused, nothing moves.
    let (_, open) = json(admin.post("/api/admin/disputes", &[]).await).await;
    let late = open["disputes"][0]["number"].as_str().unwrap().to_owned();
    let drained = money(&app, seller).await;
    let mut tx = app.pool.begin().await.unwrap();
    let hold = app::server::ledger::hold(
        &mut tx,
        seller,
        app::server::ledger::Asset::Money,
        drained,
        "test: the seller's money is on its way out",
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (status, body) = decide(&admin, &late, "refund", "").await;
    assert_eq!(status, 409);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("The seller's wallet holds"),
        "{body}"
    );
    assert_eq!(money(&app, buyer_id).await, before.0);
    let (_, still) = json(admin.post("/api/admin/disputes", &[]).await).await;
    assert_eq!(still["disputes"][0]["status"], "open");
    let _ = hold;
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn stuck_orders_suspended_listings_and_kyc(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, seller, listing) = seller_with_listing(&app, 1_000, "200000", "0.1").await;
    let (buyer, buyer_id) = app.signed_in(Role::Buyer).await;
    let (admin, _) = app.signed_in(Role::Admin).await;
    let checkout = |key: &'static str| {
        let buyer = buyer.clone();
        let listing = listing.clone();
        async move {
            let (status, body) = json(
                buyer
                    .post(
                        "/api/market/buy",
                        &[
                            ("listing", listing.as_str()),
                            ("quantity", "0.1"),
                            ("expected_price", "200000.00"),
                            ("idempotency_key", key),
                            ("pay_with", "gateway"),
                        ],
                    )
                    .await,
            )
            .await;
            assert_eq!(status, 200, "{body}");
            body["order"].as_str().unwrap().to_owned()
        }
    };
    let paid = checkout("stuck-order-0001").await;
    let given_up = checkout("stuck-order-0002").await;
    let (_, pending) = json(
        admin
            .post("/api/admin/orders", &[("status", "pending")])
            .await,
    )
    .await;
    assert_eq!(pending["total"], 2);

    // Confirmed: completes as on the gateway's success.
    let (status, s) = json(
        admin
            .post(
                "/api/admin/orders/resolve",
                &[("order", &paid), ("action", "confirm")],
            )
            .await,
    )
    .await;
    assert_eq!((status, s.as_str()), (200, Some("completed")));
    let (_, o) = json(buyer.post("/api/orders/get", &[("number", &paid)]).await).await;
    assert_eq!(o["status"], "completed");
    // Cancelled: released; the quantity is on sale again.
    let (status, s) = json(
        admin
            .post(
                "/api/admin/orders/resolve",
                &[("order", &given_up), ("action", "cancel")],
            )
            .await,
    )
    .await;
    assert_eq!((status, s.as_str()), (200, Some("cancelled")));
    let (status, body) = json(
        admin
            .post(
                "/api/admin/orders/resolve",
                &[("order", &given_up), ("action", "confirm")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 409);
    assert!(body["message"].as_str().unwrap().contains("is cancelled"));
    let notes: Vec<String> = sqlx::query_scalar(
        "SELECT title FROM notifications WHERE user_id = $1 AND kind = 'order_updated' ORDER BY created_at",
    )
    .bind(buyer_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        notes,
        [
            format!("Order {paid} confirmed"),
            format!("Order {given_up} cancelled")
        ]
    );
    let (_, detail) = json(
        app.client()
            .post("/api/market/listing", &[("number", &listing)])
            .await,
    )
    .await;
    assert_eq!(detail["listing"]["available_kg"], 900);
    assert_eq!(detail["listing"]["pending_kg"], 0);

    // Suspended: gone from the market, cannot be bought; the seller is told; reinstated.
    let (status, body) = json(
        admin
            .post(
                "/api/admin/listings/suspend",
                &[("listing", &listing), ("reason", "")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let res = admin
        .post(
            "/api/admin/listings/suspend",
            &[
                ("listing", &listing),
                ("reason", "Checking the issuance evidence"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let (_, found) = json(
        app.client()
            .post("/api/market/listings", &[("q", &listing)])
            .await,
    )
    .await;
    assert_eq!(found["total"], 0, "{found}");
    buyer.top_up("1000000").await;
    let (status, body) = buy(&buyer, &listing, "0.1", "suspended-buy-01").await;
    assert_eq!(status, 409);
    assert_eq!(
        body["message"],
        "This listing is suspended and no longer for sale."
    );
    let (_, suspended) = json(
        admin
            .post("/api/admin/listings", &[("status", "suspended")])
            .await,
    )
    .await;
    assert_eq!(
        suspended["listings"][0]["suspended_reason"],
        "Checking the issuance evidence"
    );
    // The seller cannot change a suspended listing (but may withdraw it, below).
    let res = owner
        .post(
            "/api/listings/price",
            &[("listing", &listing), ("price", "1000")],
        )
        .await;
    assert_eq!(res.status(), 409);
    let res = admin
        .post("/api/admin/listings/reinstate", &[("listing", &listing)])
        .await;
    assert_eq!(res.status(), 200);
    let res = admin
        .post("/api/admin/listings/reinstate", &[("listing", &listing)])
        .await;
    assert_eq!(res.status(), 409);
    let (status, body) = buy(&buyer, &listing, "0.1", "reinstated-buy-1").await;
    assert_eq!(status, 200, "{body}");
    // Both about one listing, unread: one notice with the latest news.
    let told: Vec<(String, i32, String)> = sqlx::query_as(
        "SELECT title, repeats, link FROM notifications WHERE user_id = $1 AND kind = 'listing_suspended'",
    )
    .bind(seller)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        told,
        [(
            format!("{listing} is back on the market"),
            2,
            format!("/sell#{listing}")
        )]
    );
    let audited = app
        .count("SELECT count(*) FROM audit_log WHERE action IN ('listing.suspend', 'listing.reinstate', 'order.confirm', 'order.cancel')")
        .await;
    assert_eq!(audited, 4);
    let res = admin
        .post(
            "/api/admin/listings/suspend",
            &[("listing", &listing), ("reason", "Once more")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = owner
        .post("/api/listings/cancel", &[("listing", &listing)])
        .await;
    assert_eq!(res.status(), 200, "a suspended listing can be withdrawn");
    let (_, detail) = json(
        app.client()
            .post("/api/market/listing", &[("number", &listing)])
            .await,
    )
    .await;
    assert_eq!(detail["listing"]["status"], "cancelled");

    // The monitor's search and filters.
    let (_, by_number) = json(admin.post("/api/admin/orders", &[("q", &paid)]).await).await;
    assert_eq!(by_number["total"], 1);
    let (status, body) = json(admin.post("/api/admin/orders", &[("status", "lost")]).await).await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "status").is_some());

    // KYC: an unknown user, a bad choice.
    let res = admin
        .post(
            "/api/admin/users/kyc",
            &[("user_id", &Uuid::new_v4().to_string()), ("verified", "on")],
        )
        .await;
    assert_eq!(res.status(), 404);
    let (status, body) = json(
        admin
            .post(
                "/api/admin/users/kyc",
                &[("user_id", &buyer_id.to_string()), ("verified", "yes")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "verified").as_deref(),
        Some("Choose on or off.")
    );
    let (_, users) = json(admin.post("/api/admin/users", &[("q", "buyer-")]).await).await;
    assert!(users["users"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["kyc_verified"] == false));
    reconciled(&app.pool).await;
}
