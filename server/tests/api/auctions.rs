//! Auctions through the services on a real database: proxy bids hold only the leader's money,
//! refusals change nothing, the close sells the lot once (or returns it), and concurrent bids
//! end in the state a serial replay of the accepted bids gives.

use super::support::{grant_credits, reconciled, TestApp};
use app::domain::auction::{self, Increment, State, Terms};
use app::domain::user::Role;
use app::error::AppError;
use app::server::services::auctions::{self, BidInput, NewAuction};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

async fn money(app: &TestApp, user: Uuid, kind: &str) -> String {
    let mut d = sqlx::query_scalar::<_, Decimal>(
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

async fn credits(app: &TestApp, user: Uuid) -> i64 {
    sqlx::query_scalar::<_, Decimal>(
        "SELECT coalesce(sum(balance), 0) FROM ledger_accounts WHERE owner_id = $1 AND asset = 'credit' AND kind = 'available'",
    )
    .bind(user)
    .fetch_one(&app.pool)
    .await
    .unwrap()
    .try_into()
    .unwrap()
}

/// A funded buyer.
pub(super) async fn buyer(app: &TestApp, amount: &str) -> Uuid {
    let (api, id) = app.signed_in(Role::Buyer).await;
    api.top_up(amount).await;
    id
}

/// An owner with 1 t of VN 2026 credits auctioned: start 100,000 per t, the default increments.
pub(super) async fn auction(app: &TestApp, reserve: &str) -> (Uuid, String) {
    let (_, seller) = app.signed_in(Role::EvOwner).await;
    grant_credits(app, seller, 1_000, "VN", 2026).await;
    let number = auctions::create(
        &app.pool,
        "VND",
        seller,
        NewAuction {
            class: "VN:2026",
            quantity: "1",
            starting_price: "100000",
            reserve,
            increment: "",
            buy_now: "",
            duration_minutes: "60",
            description: "",
        },
    )
    .await
    .unwrap();
    (seller, number)
}

/// Ends the auction now (as if its time were up).
pub(super) async fn time_up(app: &TestApp, number: &str) {
    sqlx::query(
        "UPDATE auctions SET ends_at = now() - interval '1 second', version = version + 1
         WHERE listing_id = (SELECT id FROM listings WHERE number = $1)",
    )
    .bind(number)
    .execute(&app.pool)
    .await
    .unwrap();
}

fn message(e: AppError) -> String {
    serde_json::to_string(&e).unwrap()
}

async fn notified(app: &TestApp, user: Uuid) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT kind FROM notifications WHERE user_id = $1 ORDER BY created_at, kind",
    )
    .bind(user)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn proxy_bids_hold_the_leaders_money_and_the_close_sells_the_lot_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (seller, number) = auction(&app, "").await;
    let (a, b, c) = (
        buyer(&app, "200000").await,
        buyer(&app, "200000").await,
        buyer(&app, "400000").await,
    );
    let st = &app.state;

    let r = auctions::bid(st, a, &number, "150000", false, None)
        .await
        .unwrap();
    assert!(r.leading);
    assert_eq!(r.price, Decimal::from(100_000));
    // The whole lot at A's maximum plus the 2.5 % buyer fee is held.
    assert_eq!(money(&app, a, "held").await, "153750.00");
    assert_eq!(money(&app, a, "available").await, "46250.00");

    // B offers less: A's proxy answers one increment above; B holds nothing.
    let r = auctions::bid(st, b, &number, "120000", false, None)
        .await
        .unwrap();
    assert!(!r.leading);
    assert_eq!(r.price, Decimal::from(125_000));
    assert_eq!(money(&app, b, "held").await, "0.00");

    // C goes above A: C leads at 155,000 and A's money is released at once.
    let r = auctions::bid(st, c, &number, "300000", false, None)
        .await
        .unwrap();
    assert!(r.leading);
    assert_eq!(r.price, Decimal::from(155_000));
    assert_eq!(money(&app, a, "held").await, "0.00");
    assert_eq!(money(&app, a, "available").await, "200000.00");
    assert_eq!(money(&app, c, "held").await, "307500.00");
    assert!(notified(&app, a).await.contains(&"outbid".to_owned()));

    // Refusals say why and change nothing.
    let own = auctions::bid(st, seller, &number, "500000", false, None)
        .await
        .unwrap_err();
    assert!(message(own).contains("your own lot"));
    let low = auctions::bid(st, a, &number, "159000", false, None)
        .await
        .unwrap_err();
    assert!(
        message(low).contains("160.000"),
        "the next minimum is 155,000 + 5,000"
    );
    let poor = auctions::bid(st, b, &number, "250000", false, None)
        .await
        .unwrap_err();
    assert!(
        message(poor).contains("wallet has"),
        "B cannot cover 256,250"
    );
    let version: i64 = sqlx::query_scalar("SELECT version FROM auctions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(version, 3, "three accepted bids, nothing else");

    // The close: C pays 155,000 + 3,875 from the hold; the seller gets 155,000 − 3,875.
    assert_eq!(auctions::close_due(st).await.unwrap(), 0, "not over yet");
    time_up(&app, &number).await;
    assert_eq!(auctions::close_due(st).await.unwrap(), 1);
    assert_eq!(auctions::close_due(st).await.unwrap(), 0, "closed once");
    assert_eq!(money(&app, c, "held").await, "0.00");
    assert_eq!(money(&app, c, "available").await, "241125.00");
    assert_eq!(credits(&app, c).await, 1_000);
    assert_eq!(money(&app, seller, "available").await, "151125.00");
    let (status, outcome): (String, String) = sqlx::query_as(
        "SELECT l.status, a.outcome FROM auctions a JOIN listings l ON l.id = a.listing_id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), outcome.as_str()), ("sold", "sold"));
    let order: (String, Decimal, String) =
        sqlx::query_as("SELECT status, buyer_pays, invoice_number FROM orders WHERE buyer_id = $1")
            .bind(c)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(order.0, "completed");
    assert_eq!(order.1, Decimal::new(15_887_500, 2));
    assert!(order.2.starts_with("INV-"));
    assert!(notified(&app, c).await.contains(&"auction_won".to_owned()));
    assert!(notified(&app, seller)
        .await
        .contains(&"listing_sold".to_owned()));
    assert!(notified(&app, a).await.contains(&"auction_lost".to_owned()));
    assert!(notified(&app, b).await.contains(&"auction_lost".to_owned()));
    let late = auctions::bid(st, b, &number, "190000", false, None)
        .await
        .unwrap_err();
    assert!(message(late).contains("ended"));
    let changed = sqlx::query("UPDATE auctions SET version = version + 1")
        .execute(&app.pool)
        .await;
    assert!(changed.is_err(), "a closed auction never changes");
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn below_the_reserve_or_without_bids_the_credits_go_back(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (seller, reserved) = auction(&app, "200000").await;
    let a = buyer(&app, "300000").await;
    let r = auctions::bid(&app.state, a, &reserved, "150000", false, None)
        .await
        .unwrap();
    assert!(r.leading);
    time_up(&app, &reserved).await;
    assert_eq!(auctions::close_due(&app.state).await.unwrap(), 1);
    assert_eq!(money(&app, a, "available").await, "300000.00");
    assert_eq!(money(&app, a, "held").await, "0.00");
    assert_eq!(credits(&app, seller).await, 1_000);
    let outcome: String = sqlx::query_scalar("SELECT outcome FROM auctions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(outcome, "below_reserve");
    assert!(notified(&app, seller)
        .await
        .contains(&"listing_ended".to_owned()));

    let (other_seller, quiet) = auction(&app, "").await;
    time_up(&app, &quiet).await;
    assert_eq!(auctions::close_due(&app.state).await.unwrap(), 1);
    assert_eq!(credits(&app, other_seller).await, 1_000);
    assert_eq!(
        app.count("SELECT count(*) FROM auctions WHERE outcome = 'no_bids'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn buy_now_ends_the_auction_with_an_order(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_, seller) = app.signed_in(Role::EvOwner).await;
    grant_credits(&app, seller, 2_000, "VN", 2026).await;
    let number = auctions::create(
        &app.pool,
        "VND",
        seller,
        NewAuction {
            class: "VN:2026",
            quantity: "2",
            starting_price: "100000",
            reserve: "",
            increment: "1000",
            buy_now: "180000",
            duration_minutes: "60",
            description: "",
        },
    )
    .await
    .unwrap();
    let (a, b) = (buyer(&app, "500000").await, buyer(&app, "500000").await);
    auctions::bid(&app.state, a, &number, "120000", false, None)
        .await
        .unwrap();
    // Buy-now at the price shown.
    auctions::bid(&app.state, b, &number, "180000.00", true, None)
        .await
        .unwrap();
    // 2 t at 180,000 = 360,000 + 9,000 fee.
    assert_eq!(money(&app, b, "available").await, "131000.00");
    assert_eq!(credits(&app, b).await, 2_000);
    assert_eq!(money(&app, a, "available").await, "500000.00");
    let outcome: String = sqlx::query_scalar("SELECT outcome FROM auctions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(outcome, "sold");
    assert_eq!(auctions::close_due(&app.state).await.unwrap(), 0);
    reconciled(&app.pool).await;
}

/// The auction (of `auction`'s terms) as its stored bids, replayed in the order they were
/// accepted through the rules, leave it; and how many bids that was.
async fn replayed(app: &TestApp, seller: Uuid) -> (State, usize) {
    type Row = (Uuid, Decimal, DateTime<Utc>);
    let bids: Vec<Row> =
        sqlx::query_as("SELECT bidder_id, max_price, created_at FROM bids ORDER BY version")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let terms = Terms {
        seller,
        starting_price: Decimal::from(100_000),
        reserve: None,
        increment: Increment::Table,
        buy_now: None,
        soft_close_secs: 120,
    };
    let (ends_at,): (DateTime<Utc>,) = sqlx::query_as("SELECT expires_at FROM listings")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let mut state = State::opening(&terms, ends_at);
    for (bidder, max, at) in &bids {
        // The stored maximum of a bid that did not lead is the one the bidder offered.
        state = auction::place(&terms, &state, *bidder, *max, *at)
            .expect("every accepted bid is accepted again on replay")
            .state;
    }
    (state, bids.len())
}

/// Holds the auction's row (as a close or another instance's batch would) until committed.
async fn hold_the_auction(app: &TestApp) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut busy = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM auctions FOR UPDATE")
        .execute(&mut *busy)
        .await
        .unwrap();
    busy
}

#[sqlx::test(migrations = "../migrations")]
async fn concurrent_bids_end_as_a_serial_replay_of_the_accepted_ones(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (seller, number) = auction(&app, "").await;
    let mut bidders = Vec::new();
    for _ in 0..10 {
        bidders.push(buyer(&app, "1000000").await);
    }
    let mut tasks = Vec::new();
    for (i, bidder) in bidders.iter().copied().enumerate() {
        for round in 0..4u64 {
            let state = app.state.clone();
            let number = number.clone();
            // Maxima spread over 100,000 … 600,000 with ties.
            let max = 100_000 + ((i as u64 * 7 + round * 13) % 26) * 20_000;
            tasks.push(tokio::spawn(async move {
                auctions::bid(&state, bidder, &number, &max.to_string(), false, None).await
            }));
        }
    }
    let mut accepted = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            accepted += 1;
        }
    }
    assert!(accepted > 1);

    let (state, bids) = replayed(&app, seller).await;
    assert_eq!(bids, accepted);
    let (price, leader, leader_max, count): (Decimal, Uuid, Decimal, i32) =
        sqlx::query_as("SELECT price, leader_id, leader_max, bid_count FROM auctions")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(state.price, price);
    assert_eq!(state.leader, Some((leader, leader_max)));
    assert_eq!(state.bids, i64::from(count));

    // Only the leader holds money, exactly their commitment; nobody's money went anywhere.
    let holds: Vec<(Uuid, Decimal)> = sqlx::query_as(
        "SELECT a.owner_id, h.remaining FROM ledger_holds h JOIN ledger_accounts a ON a.id = h.held_id
         WHERE h.status = 'pending' AND a.asset = 'money'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].0, leader);
    let mut commitment = leader_max * Decimal::new(1025, 3);
    commitment.rescale(2);
    assert_eq!(holds[0].1, commitment);
    for b in &bidders {
        let total: Decimal = sqlx::query_scalar(
            "SELECT sum(balance) FROM ledger_accounts WHERE owner_id = $1 AND asset = 'money'",
        )
        .bind(b)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(total, Decimal::from(1_000_000));
    }
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn two_instances_closing_at_the_same_instant_close_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_, number) = auction(&app, "").await;
    let a = buyer(&app, "300000").await;
    auctions::bid(&app.state, a, &number, "150000", false, None)
        .await
        .unwrap();
    time_up(&app, &number).await;
    let (one, two) = tokio::join!(
        auctions::close_due(&app.state),
        auctions::close_due(&app.state)
    );
    assert_eq!(one.unwrap() + two.unwrap(), 1);
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1);
    // The winner paid once: 100,000 + 2,500.
    assert_eq!(money(&app, a, "available").await, "197500.00");
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn every_accepted_bid_and_the_close_are_announced_live_after_commit(pool: PgPool) {
    use app::server::live::{self, Event};
    let app = TestApp::spawn(pool).await;
    let (_, number) = auction(&app, "").await;
    let a = buyer(&app, "300000").await;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut events = app.state.live.subscribe();
    tokio::spawn(live::listen(app.pool.clone(), app.state.live.clone(), stop));
    assert_eq!(
        events.recv().await.unwrap(),
        Event::Resync,
        "listening starts with a re-read"
    );
    auctions::bid(&app.state, a, &number, "150000", false, None)
        .await
        .unwrap();
    // A refused bid announces nothing.
    assert!(auctions::bid(&app.state, a, &number, "100", false, None)
        .await
        .is_err());
    time_up(&app, &number).await;
    auctions::close_due(&app.state).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let e = tokio::time::timeout(std::time::Duration::from_secs(10), events.recv())
            .await
            .expect("an announcement within 10 s")
            .unwrap();
        if let Event::Changed(c) = e {
            if c.topic == "inbox" {
                continue; // the seller's and the bidders' bells
            }
            assert_eq!(
                (c.topic.as_str(), c.id.as_str()),
                ("auction", number.as_str())
            );
            seen.push(c.version);
        }
    }
    // The bid (version 1) and the close (version 3: the test's time_up moved it to 2).
    assert_eq!(seen, vec![1, 3]);
    stop_tx.send(true).unwrap();
}

/// A decimal of a JSON answer, as whole currency units.
fn dec(v: &serde_json::Value) -> i64 {
    let d: Decimal = v
        .as_str()
        .unwrap_or_else(|| panic!("a decimal string: {v}"))
        .parse()
        .unwrap();
    assert_eq!(d.fract(), Decimal::ZERO, "{d}");
    d.try_into().unwrap()
}

/// The next event of a live stream, as JSON.
pub(super) async fn next_event(res: &mut reqwest::Response, buf: &mut String) -> serde_json::Value {
    loop {
        if let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            if !data.is_empty() {
                return serde_json::from_str(&data).unwrap();
            }
            continue; // a keep-alive comment
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), res.chunk())
            .await
            .expect("a live event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn bidding_through_the_api_with_retries_watching_and_the_auctions_page(pool: PgPool) {
    use super::support::{field_error, json};
    let app = TestApp::spawn(pool).await;
    let (owner, seller) = app.signed_in(Role::EvOwner).await;
    grant_credits(&app, seller, 2_000, "VN", 2026).await;
    let (status, body) = json(
        owner
            .post(
                "/api/auctions/create",
                &[
                    ("class", "VN:2026"),
                    ("quantity", "3"),
                    ("starting_price", "0"),
                    ("reserve", "50"),
                    ("buy_now", "x"),
                    ("duration_minutes", "0"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    for field in ["starting_price", "buy_now", "duration_minutes"] {
        assert!(field_error(&body, field).is_some(), "{field}: {body}");
    }
    assert_eq!(
        credits(&app, seller).await,
        2_000,
        "a refused auction holds nothing"
    );
    let (status, number) = json(
        owner
            .post(
                "/api/auctions/create",
                &[
                    ("class", "VN:2026"),
                    ("quantity", "1.5"),
                    ("starting_price", "100000"),
                    ("reserve", "150000"),
                    ("buy_now", "400000"),
                    ("duration_minutes", "90"),
                    ("description", "Delivery scooters, Đà Nẵng"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{number}");
    let number = number.as_str().unwrap().to_owned();
    assert_eq!(credits(&app, seller).await, 500, "the lot is reserved");

    let (alice, a) = app.signed_in(Role::Buyer).await;
    alice.top_up("1000000").await;
    let (bob, _) = app.signed_in(Role::Buyer).await;
    bob.top_up("1000000").await;
    let bid = |api: &super::support::Api, max: &str, key: &str| {
        let (api, max, key, number) = (api.clone(), max.to_owned(), key.to_owned(), number.clone());
        async move {
            json(
                api.post(
                    "/api/auctions/bid",
                    &[
                        ("auction", number.as_str()),
                        ("max", &max),
                        ("idempotency_key", &key),
                    ],
                )
                .await,
            )
            .await
        }
    };
    // The seller cannot bid; a buyer's first bid leads at the starting price.
    let (status, body) = json(
        owner
            .post(
                "/api/auctions/bid",
                &[("auction", number.as_str()), ("max", "200000")],
            )
            .await,
    )
    .await;
    assert_eq!((status, body["kind"].as_str()), (403, Some("forbidden")));
    let (status, first) = bid(&alice, "120000", "k1").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["leading"], true);
    assert_eq!(dec(&first["price"]), 100_000);
    // A retried submit answers the same bid and places nothing new.
    let (status, again) = bid(&alice, "120000", "k1").await;
    assert_eq!((status, &again), (200, &first));
    assert_eq!(app.count("SELECT count(*) FROM bids").await, 1);
    // Holding the whole lot at the maximum plus the 2.5 % buyer fee: 1.5 × 120,000 × 1.025.
    assert_eq!(money(&app, a, "held").await, "184500.00");

    let (status, body) = bid(&bob, "104000", "k2").await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "max").unwrap(),
        "Bid at least 105.000 ₫ per tonne."
    );
    let (status, body) = bid(&bob, "133000", "k3").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["leading"].as_bool(), dec(&body["price"])),
        (Some(true), 125_000)
    );
    assert_eq!(
        money(&app, a, "held").await,
        "0.00",
        "the outbid hold is voided"
    );

    // What everyone sees: aliases, never names or maximums; the reserve not yet met.
    let (status, seen) = json(
        app.client()
            .post("/api/auctions/get", &[("number", number.as_str())])
            .await,
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    let live = &seen["live"];
    assert_eq!(dec(&live["price"]), 125_000);
    assert_eq!(live["leader_alias"], 2);
    assert_eq!(live["bid_count"], 2);
    assert_eq!(live["reserve_met"], false);
    assert_eq!(dec(&live["minimum_bid"]), 130_000);
    assert_eq!(dec(&live["buy_now_price"]), 400_000);
    assert_eq!(live["recent"].as_array().unwrap().len(), 2);
    assert!(
        !seen.to_string().contains("133000"),
        "the leader's maximum stays secret: {seen}"
    );
    assert!(
        !seen.to_string().contains("150000"),
        "the reserve stays secret: {seen}"
    );
    // Alice sees her own part.
    let (_, mine) = json(
        alice
            .post("/api/auctions/get", &[("number", number.as_str())])
            .await,
    )
    .await;
    assert_eq!(
        (mine["my_alias"].as_i64(), dec(&mine["my_max"])),
        (Some(1), 120_000)
    );

    // Watching, and the filters of the auctions page.
    let (status, _) = json(
        alice
            .post(
                "/api/auctions/watch",
                &[("auction", number.as_str()), ("watch", "on")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let list = |api: super::support::Api, filter: &'static str| async move {
        json(api.post("/api/auctions/list", &[("filter", filter)]).await).await
    };
    let (_, watching) = list(alice.clone(), "watching").await;
    assert_eq!(watching["auctions"][0]["number"], number.as_str());
    assert_eq!(watching["auctions"][0]["mine"], "outbid");
    let (_, mine) = list(bob.clone(), "my_bids").await;
    assert_eq!(mine["auctions"][0]["mine"], "leading");
    let (_, none) = list(bob.clone(), "watching").await;
    assert_eq!(none["auctions"].as_array().unwrap().len(), 0);
    let (_, lots) = list(owner.clone(), "my_lots").await;
    assert_eq!(lots["auctions"][0]["number"], number.as_str());
    let (status, body) = list(app.client(), "my_bids").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, body) = list(app.client(), "cheapest").await;
    assert_eq!(status, 422, "{body}");
    let (_, open) = list(app.client(), "open").await;
    assert_eq!(dec(&open["auctions"][0]["price"]), 125_000);
    assert_eq!(open["auctions"][0]["reserve_met"], false);

    // Buy-now carries the price the buyer saw: without it, or having seen less than the
    // buy-now price, nothing is bought.
    let buy_now = |seen: &'static str| {
        let (alice, number) = (alice.clone(), number.clone());
        async move {
            json(
                alice
                    .post(
                        "/api/auctions/buy-now",
                        &[
                            ("auction", number.as_str()),
                            ("expected_price", seen),
                            ("idempotency_key", "k4"),
                        ],
                    )
                    .await,
            )
            .await
        }
    };
    let before = money(&app, a, "available").await;
    let (status, body) = buy_now("").await;
    assert_eq!(status, 422, "{body}");
    assert!(field_error(&body, "expected_price").is_some(), "{body}");
    let (status, body) = buy_now("300000.00").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (409, Some("price_changed")),
        "{body}"
    );
    assert_eq!(body["price_per_t"], "400000.00");
    assert_eq!(
        body["message"],
        "The price changed from 300.000 ₫ to 400.000 ₫ per tonne since you opened the page; nothing was bought. Check the new price and buy again if it suits you."
    );
    assert_eq!(money(&app, a, "available").await, before);
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);

    // Buy-now ends it at once: Alice pays 1.5 × 400,000 + 2.5 %, Bob's hold is released.
    let (status, body) = buy_now("400000.00").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(money(&app, a, "available").await, "385000.00");
    let (_, seen) = json(
        alice
            .post("/api/auctions/get", &[("number", number.as_str())])
            .await,
    )
    .await;
    assert_eq!(seen["live"]["open"], false);
    assert_eq!(seen["live"]["outcome"], "sold");
    assert!(
        seen["order"].as_str().unwrap().starts_with("ORD-"),
        "{seen}"
    );
    let (_, stranger) = json(
        bob.post("/api/auctions/get", &[("number", number.as_str())])
            .await,
    )
    .await;
    assert_eq!(
        stranger["order"],
        serde_json::Value::Null,
        "only the parties see the order"
    );
    let (status, body) = bid(&bob, "500000", "k5").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn two_instances_a_bid_on_one_is_live_on_the_other_and_the_close_happens_once(pool: PgPool) {
    let one = TestApp::spawn_live(pool.clone()).await;
    let two = TestApp::spawn_live(pool).await;
    let (_, number) = auction(&one, "").await;
    let (alice, _) = one.signed_in(Role::Buyer).await;
    alice.top_up("1000000").await;

    // A visitor watches on instance two.
    let mut stream = reqwest::get(two.url(&format!("/live/auctions/{number}")))
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(
        stream.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut buf = String::new();
    let first = next_event(&mut stream, &mut buf).await;
    assert_eq!(
        (first["version"].as_i64(), first["bid_count"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(first["open"], true);

    // A bid placed on instance one.
    let (status, body) = super::support::json(
        alice
            .post(
                "/api/auctions/bid",
                &[("auction", number.as_str()), ("max", "150000")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen = next_event(&mut stream, &mut buf).await;
    assert_eq!(seen["version"], 1);
    assert_eq!(dec(&seen["price"]), 100_000);
    assert_eq!(seen["leader_alias"], 1);
    assert_eq!(seen["bid_count"], 1);
    assert_eq!(seen["recent"][0]["alias"], 1);

    // Time is up: both instances' closers run at once; one closes, both streams see it once.
    time_up(&one, &number).await;
    let (a, b) = tokio::join!(
        auctions::close_due(&one.state),
        auctions::close_due(&two.state)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(one.count("SELECT count(*) FROM orders").await, 1);
    let closed = next_event(&mut stream, &mut buf).await;
    assert_eq!(closed["version"], 3, "{closed}");
    assert_eq!(closed["outcome"], "sold");
    assert_eq!(closed["open"], false);

    // A client that reconnects starts from the snapshot.
    let mut again = reqwest::get(one.url(&format!("/live/auctions/{number}")))
        .await
        .unwrap();
    let mut buf = String::new();
    let snapshot = next_event(&mut again, &mut buf).await;
    assert_eq!(snapshot, {
        let mut s = closed.clone();
        s["server_now"] = snapshot["server_now"].clone();
        s
    });
    let missing = reqwest::get(one.url("/live/auctions/LST-999999"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    reconciled(&one.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_soft_close_window_is_the_admins_and_holds_for_auctions_listed_after(pool: PgPool) {
    use super::support::{field_error, json};
    let app = TestApp::spawn(pool).await;
    let (admin, _) = app.signed_in(Role::Admin).await;
    let update = |secs: &'static str| {
        let admin = admin.clone();
        async move {
            json(
                admin
                    .post(
                        "/api/admin/settings/update",
                        &[
                            ("buyer_fee_percent", "2.5"),
                            ("seller_fee_percent", "2.5"),
                            ("withdrawal_min", "50000"),
                            ("withdrawal_max", "100000000"),
                            ("withdrawal_daily_max", "200000000"),
                            ("withdrawal_fee", "0"),
                            ("soft_close_secs", secs),
                        ],
                    )
                    .await,
            )
            .await
        }
    };
    let (_, before) = auction(&app, "").await;
    let (status, body) = update("4000").await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "soft_close_secs").is_some(), "{body}");
    let (status, body) = update("30").await;
    assert_eq!(
        (status, body["soft_close_secs"].as_i64()),
        (200, Some(30)),
        "{body}"
    );
    let (_, after) = auction(&app, "").await;
    let window = |number: String| {
        let client = app.client();
        async move {
            json(
                client
                    .post("/api/auctions/get", &[("number", number.as_str())])
                    .await,
            )
            .await
            .1["soft_close_secs"]
                .as_i64()
        }
    };
    assert_eq!(
        window(before).await,
        Some(120),
        "an auction keeps the window it was listed with"
    );
    assert_eq!(window(after).await, Some(30));
    // Leaving it out keeps it.
    let (status, body) = json(
        admin
            .post(
                "/api/admin/settings/update",
                &[
                    ("buyer_fee_percent", "2.5"),
                    ("seller_fee_percent", "2.5"),
                    ("withdrawal_min", "50000"),
                    ("withdrawal_max", "100000000"),
                    ("withdrawal_daily_max", "200000000"),
                    ("withdrawal_fee", "0"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, body["soft_close_secs"].as_i64()),
        (200, Some(30)),
        "{body}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_same_bid_sent_twice_at_once_is_placed_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_, number) = auction(&app, "").await;
    let a = buyer(&app, "1000000").await;
    for (max, key) in [("150000", "double-1"), ("250000", "double-2")] {
        let (one, two) = tokio::join!(
            auctions::bid(&app.state, a, &number, max, false, Some(key)),
            auctions::bid(&app.state, a, &number, max, false, Some(key))
        );
        assert_eq!(
            one.unwrap(),
            two.unwrap(),
            "both answers are the first bid's"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM bids").await, 2);
    // One hold: the raise replaced the first; the whole lot at 250,000 + 2.5 %.
    assert_eq!(money(&app, a, "held").await, "256250.00");
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_winner_who_asked_to_retire_gets_the_lot_retired_with_a_certificate(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_, number) = auction(&app, "").await;
    let a = buyer(&app, "1000000").await;
    let b = buyer(&app, "1000000").await;
    // A bad beneficiary is refused and places nothing.
    let refused = auctions::place(
        &app.state,
        a,
        BidInput {
            auction: &number,
            price: "150000",
            key: None,
            retire: Some(("", "Offsetting our delivery fleet")),
            ..BidInput::default()
        },
    )
    .await
    .unwrap_err();
    assert!(message(refused).contains("beneficiary"));
    assert_eq!(app.count("SELECT count(*) FROM bids").await, 0);
    auctions::place(
        &app.state,
        a,
        BidInput {
            auction: &number,
            price: "150000",
            key: None,
            retire: Some(("Trường Tiểu học Xanh", "Offsetting the school run")),
            ..BidInput::default()
        },
    )
    .await
    .unwrap();
    auctions::bid(&app.state, b, &number, "120000", false, None)
        .await
        .unwrap();
    time_up(&app, &number).await;
    assert_eq!(auctions::close_due(&app.state).await.unwrap(), 1);
    let (beneficiary, retired): (Option<String>, bool) =
        sqlx::query_as("SELECT retire_beneficiary, retirement_id IS NOT NULL FROM orders")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (beneficiary.as_deref(), retired),
        (Some("Trường Tiểu học Xanh"), true)
    );
    assert_eq!(
        credits(&app, a).await,
        0,
        "nothing to the available credits"
    );
    let retired_kg: Decimal = sqlx::query_scalar(
        "SELECT coalesce(sum(balance), 0) FROM ledger_accounts WHERE owner_id = $1 AND asset = 'credit' AND kind = 'retired'",
    )
    .bind(a)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(retired_kg, Decimal::from(1_000));
    reconciled(&app.pool).await;
}

/// Waits (30 s at most) until some statement of this test's database waits for a lock.
async fn someone_waits_for_a_lock(app: &TestApp) {
    let waiting = async {
        while app
            .count(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .await
            == 0
        {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), waiting)
        .await
        .expect("a statement waits for a lock");
}

/// Waits (30 s at most) until `n` bids wait for their turn on the auction.
async fn bids_wait(app: &TestApp, number: &str, n: usize) {
    let waiting = async {
        while app.state.bids.waiting(number) < n {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), waiting)
        .await
        .expect("the bids wait for their turn");
}

#[sqlx::test(migrations = "../migrations")]
async fn bids_that_wait_for_a_locked_auction_are_decided_together_in_turn(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (seller, number) = auction(&app, "").await;
    let (a, b, c) = (
        buyer(&app, "1000000").await,
        buyer(&app, "1000000").await,
        buyer(&app, "1000000").await,
    );
    let poor = buyer(&app, "50000").await;
    let first = auctions::bid(&app.state, a, &number, "150000", false, None)
        .await
        .unwrap();
    assert!(first.leading);

    // Something else holds the auction (a close, another instance's bids): b's bid takes
    // this instance's turn and waits for the row; the bids after it wait for their turn.
    let blocker = hold_the_auction(&app).await;
    let spawn = |bidder: Uuid, max: &'static str, key: &'static str| {
        let (state, number) = (app.state.clone(), number.clone());
        tokio::spawn(
            async move { auctions::bid(&state, bidder, &number, max, false, Some(key)).await },
        )
    };
    let b_first = spawn(b, "200000", "b-1");
    someone_waits_for_a_lock(&app).await;
    let waiting = [
        spawn(b, "200000", "b-1"),
        spawn(poor, "300000", "poor-1"),
        spawn(a, "400000", "a-2"),
        spawn(c, "250000", "c-1"),
    ];
    bids_wait(&app, &number, waiting.len()).await;
    blocker.commit().await.unwrap();

    let b_first = b_first.await.unwrap().unwrap();
    assert!(b_first.leading);
    assert_eq!(b_first.version, 2);
    let [twin, poor_bid, a_raise, c_bid] = waiting;
    assert_eq!(
        twin.await.unwrap().unwrap(),
        b_first,
        "the retry answers the first bid's result"
    );
    let refused = message(poor_bid.await.unwrap().unwrap_err());
    assert!(refused.contains("insufficient_funds"), "{refused}");
    let (a_raise, c_bid) = (
        a_raise.await.unwrap().unwrap(),
        c_bid.await.unwrap().unwrap(),
    );
    let mut versions = [a_raise.version, c_bid.version];
    versions.sort();
    assert_eq!(versions, [3, 4], "one version per accepted bid, no gaps");

    // The two accepted bids were decided in one transaction, at one instant, in their turn:
    // the stored bids replay to the stored auction.
    assert_eq!(
        app.count("SELECT count(DISTINCT created_at) FROM bids WHERE version IN (3, 4)")
            .await,
        1
    );
    let (state, bids) = replayed(&app, seller).await;
    assert_eq!(bids, 4);
    let (price, leader, leader_max): (Decimal, Uuid, Decimal) =
        sqlx::query_as("SELECT price, leader_id, leader_max FROM auctions")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(state.leader, Some((leader, leader_max)));
    assert_eq!(state.price, price);
    assert_eq!((leader, leader_max), (a, Decimal::from(400_000)));
    assert!(price > Decimal::from(250_000) && price < Decimal::from(400_000));

    // Only the leader holds money: the whole lot at 400,000 + 2.5 %; b, displaced, has all of
    // theirs back and was told; the refused bidder's wallet is untouched.
    assert_eq!(money(&app, a, "held").await, "410000.00");
    assert_eq!(money(&app, a, "available").await, "590000.00");
    for x in [b, c] {
        assert_eq!(money(&app, x, "held").await, "0.00");
        assert_eq!(money(&app, x, "available").await, "1000000.00");
    }
    assert_eq!(money(&app, poor, "available").await, "50000.00");
    assert!(notified(&app, b).await.contains(&"outbid".to_owned()));
    assert!(notified(&app, seller).await.contains(&"new_bid".to_owned()));
    let (pending,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM ledger_holds h JOIN ledger_accounts x ON x.id = h.held_id
         WHERE h.status = 'pending' AND x.asset = 'money'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(pending, 1);
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_batch_whose_leader_can_no_longer_pay_refuses_that_bid_and_decides_the_rest(
    pool: PgPool,
) {
    use app::server::ledger::{self, Asset};
    let app = TestApp::spawn(pool).await;
    let (_, number) = auction(&app, "").await;
    let (c, d, e) = (
        buyer(&app, "1000000").await,
        buyer(&app, "1000000").await,
        buyer(&app, "1000000").await,
    );
    let spawn = |bidder: Uuid, max: &'static str| {
        let (state, number) = (app.state.clone(), number.clone());
        tokio::spawn(async move { auctions::bid(&state, bidder, &number, max, false, None).await })
    };
    // d is about to commit 900,000 elsewhere (not yet visible); the auction is busy.
    let mut elsewhere = app.pool.begin().await.unwrap();
    ledger::hold(
        &mut elsewhere,
        d,
        Asset::Money,
        Decimal::from(900_000),
        "elsewhere",
        Some(d),
    )
    .await
    .unwrap();
    let busy = hold_the_auction(&app).await;
    let c_bid = spawn(c, "160000");
    someone_waits_for_a_lock(&app).await;
    let d_bid = spawn(d, "500000");
    bids_wait(&app, &number, 1).await;
    let e_bid = spawn(e, "180000");
    bids_wait(&app, &number, 2).await;
    // c's bid goes alone; d's and e's are decided together: d would lead and must hold
    // 512,500, and waits for d's wallet…
    busy.commit().await.unwrap();
    assert!(c_bid.await.unwrap().unwrap().leading);
    someone_waits_for_a_lock(&app).await;
    // … which, once the other hold commits, has 100,000.
    elsewhere.commit().await.unwrap();
    let refused = message(d_bid.await.unwrap().unwrap_err());
    assert!(refused.contains("insufficient_funds"), "{refused}");
    assert!(refused.contains("100.000"), "{refused}");
    let e_bid = e_bid.await.unwrap().unwrap();
    assert!(e_bid.leading);
    assert_eq!(e_bid.version, 2, "d's bid left no version behind");

    let (leader, leader_max, count): (Uuid, Decimal, i32) =
        sqlx::query_as("SELECT leader_id, leader_max, bid_count FROM auctions")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((leader, leader_max, count), (e, Decimal::from(180_000), 2));
    assert_eq!(app.count("SELECT count(*) FROM bids").await, 2);
    assert_eq!(money(&app, e, "held").await, "184500.00");
    assert_eq!(money(&app, c, "held").await, "0.00");
    assert_eq!(money(&app, c, "available").await, "1000000.00");
    assert_eq!(money(&app, d, "available").await, "100000.00");
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_leader_outbid_earlier_in_the_same_batch_bids_with_the_money_that_was_held(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (seller, number) = auction(&app, "").await;
    let (a, b) = (buyer(&app, "200000").await, buyer(&app, "1000000").await);
    auctions::bid(&app.state, a, &number, "150000", false, None)
        .await
        .unwrap();
    // 153,750 held for a, 46,250 available.
    assert_eq!(money(&app, a, "available").await, "46250.00");

    let busy = hold_the_auction(&app).await;
    let spawn = |bidder: Uuid, max: &'static str| {
        let (state, number) = (app.state.clone(), number.clone());
        tokio::spawn(async move { auctions::bid(&state, bidder, &number, max, false, None).await })
    };
    // The seller's own bid goes first and alone (refused: it changes nothing); b's and then
    // a's wait and are decided together.
    let own = spawn(seller, "500000");
    someone_waits_for_a_lock(&app).await;
    let b_bid = spawn(b, "300000");
    bids_wait(&app, &number, 1).await;
    let a_bid = spawn(a, "170000");
    bids_wait(&app, &number, 2).await;
    busy.commit().await.unwrap();

    assert!(message(own.await.unwrap().unwrap_err()).contains("conflict"));
    assert!(b_bid.await.unwrap().unwrap().leading);
    // Outbid by b a moment before, a's money is no longer held: 170,000 + 2.5 % = 174,250 is
    // within a's 200,000.
    let a_bid = a_bid.await.unwrap().unwrap();
    assert!(!a_bid.leading);
    assert_eq!(a_bid.version, 3);
    assert_eq!(money(&app, a, "available").await, "200000.00");
    assert_eq!(money(&app, a, "held").await, "0.00");
    assert_eq!(money(&app, b, "held").await, "307500.00");
    assert!(notified(&app, a).await.contains(&"outbid".to_owned()));
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn control_characters_in_a_bid_are_refused_before_it_joins_the_queue(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_, number) = auction(&app, "").await;
    let a = buyer(&app, "1000000").await;
    let key = auctions::bid(&app.state, a, &number, "150000", false, Some("key\0one"))
        .await
        .unwrap_err();
    assert!(message(key).contains("idempotency_key"));
    let named = auctions::place(
        &app.state,
        a,
        BidInput {
            auction: &number,
            price: "150000",
            key: Some("key-one"),
            retire: Some(("Acme\0 Ltd", "Offsetting 2026")),
            ..BidInput::default()
        },
    )
    .await
    .unwrap_err();
    assert!(message(named).contains("beneficiary"));
    assert_eq!(app.count("SELECT count(*) FROM bids").await, 0);
    // The same bid, well formed, is placed.
    auctions::place(
        &app.state,
        a,
        BidInput {
            auction: &number,
            price: "150000",
            key: Some("key-one"),
            retire: Some(("Acme Ltd", "Offsetting 2026\nfor the fleet")),
            ..BidInput::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(app.count("SELECT count(*) FROM bids").await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn bids_read_as_the_site_writes_them_and_a_far_maximum_is_confirmed_first(pool: PgPool) {
    use super::support::{field_error, json};
    let app = TestApp::spawn(pool).await;
    let (_, number) = auction(&app, "").await;
    let (alice, a) = app.signed_in(Role::Buyer).await;
    alice.top_up("5000000").await;
    let (bob, b) = app.signed_in(Role::Buyer).await;
    bob.top_up("5000000").await;
    let bid = |api: &super::support::Api, max: &'static str, key: &'static str| {
        let (api, number) = (api.clone(), number.clone());
        async move {
            json(
                api.post(
                    "/api/auctions/bid",
                    &[
                        ("auction", number.as_str()),
                        ("max", max),
                        ("idempotency_key", key),
                    ],
                )
                .await,
            )
            .await
        }
    };

    // "300.000" as the site shows it is a maximum of 300,000 ₫ a tonne: the whole lot at it,
    // with the 2.5 % fee, is held.
    let (status, placed) = bid(&alice, "300.000", "dots-1").await;
    assert_eq!(status, 200, "{placed}");
    assert_eq!(placed["leading"], true);
    assert_eq!(money(&app, a, "held").await, "307500.00");
    let max: Decimal = sqlx::query_scalar("SELECT max_price FROM bids")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(max, Decimal::from(300_000));
    // What could be two amounts is refused, naming both.
    let (status, body) = bid(&bob, "150.5", "dots-2").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        field_error(&body, "max").as_deref(),
        Some("“150.5” is not a whole amount of đồng: did you mean 150.500 ₫ or 150 ₫?")
    );

    // Far above both the suggestion and where the auction stands: asked to confirm, nothing
    // placed or held.
    let (status, body) = bid(&bob, "3.000.000", "far-1").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (409, Some("confirm_price")),
        "{body}"
    );
    assert_eq!(
        body["message"],
        "A maximum of 3.000.000 ₫ per tonne is more than double the suggested price of 200.000 ₫ for VN 2026 credits and the 105.000 ₫ this auction takes now; leading, you may pay up to it. Check the amount before bidding it."
    );
    assert_eq!(app.count("SELECT count(*) FROM bids").await, 1);
    assert_eq!(money(&app, b, "held").await, "0.00");
    // "Bid 3.000.000 ₫ anyway" posts back what the server read, confirmed.
    let resubmit: Vec<(String, String)> = serde_json::from_value(body["resubmit"].clone()).unwrap();
    assert!(resubmit.contains(&("max".into(), "3.000.000".into())));
    assert!(resubmit.contains(&("confirm_price".into(), "true".into())));
    let (status, placed) = json(
        bob.http
            .post(app.url("/api/auctions/bid"))
            .form(&resubmit)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{placed}");
    assert_eq!(placed["leading"], true);
    assert_eq!(money(&app, b, "held").await, "3075000.00");
    assert_eq!(money(&app, a, "held").await, "0.00");
    reconciled(&app.pool).await;
}
