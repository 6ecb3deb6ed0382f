//! Auctions through the services on a real database: proxy bids hold only the leader's money,
//! refusals change nothing, the close sells the lot once (or returns it), and concurrent bids
//! end in the state a serial replay of the accepted bids gives.

use super::support::{grant_credits, reconciled, TestApp};
use app::domain::auction::{self, Increment, State, Terms};
use app::domain::user::Role;
use app::error::AppError;
use app::server::services::auctions::{self, NewAuction};
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
async fn buyer(app: &TestApp, amount: &str) -> Uuid {
    let (api, id) = app.signed_in(Role::Buyer).await;
    api.top_up(amount).await;
    id
}

/// An owner with 1 t of VN 2026 credits auctioned: start 100,000 per t, the default increments.
async fn auction(app: &TestApp, reserve: &str) -> (Uuid, String) {
    let (_, seller) = app.signed_in(Role::EvOwner).await;
    grant_credits(app, seller, 1_000, "VN", 2026).await;
    let number = auctions::create(
        &app.pool,
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
async fn time_up(app: &TestApp, number: &str) {
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

    let r = auctions::bid(st, a, &number, "150000", false)
        .await
        .unwrap();
    assert!(r.leading);
    assert_eq!(r.price, Decimal::from(100_000));
    // The whole lot at A's maximum plus the 2.5 % buyer fee is held.
    assert_eq!(money(&app, a, "held").await, "153750.00");
    assert_eq!(money(&app, a, "available").await, "46250.00");

    // B offers less: A's proxy answers one increment above; B holds nothing.
    let r = auctions::bid(st, b, &number, "120000", false)
        .await
        .unwrap();
    assert!(!r.leading);
    assert_eq!(r.price, Decimal::from(125_000));
    assert_eq!(money(&app, b, "held").await, "0.00");

    // C goes above A: C leads at 155,000 and A's money is released at once.
    let r = auctions::bid(st, c, &number, "300000", false)
        .await
        .unwrap();
    assert!(r.leading);
    assert_eq!(r.price, Decimal::from(155_000));
    assert_eq!(money(&app, a, "held").await, "0.00");
    assert_eq!(money(&app, a, "available").await, "200000.00");
    assert_eq!(money(&app, c, "held").await, "307500.00");
    assert!(notified(&app, a).await.contains(&"outbid".to_owned()));

    // Refusals say why and change nothing.
    let own = auctions::bid(st, seller, &number, "500000", false)
        .await
        .unwrap_err();
    assert!(message(own).contains("your own lot"));
    let low = auctions::bid(st, a, &number, "159000", false)
        .await
        .unwrap_err();
    assert!(
        message(low).contains("160.000"),
        "the next minimum is 155,000 + 5,000"
    );
    let poor = auctions::bid(st, b, &number, "250000", false)
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
        .contains(&"auction_sold".to_owned()));
    assert!(notified(&app, a).await.contains(&"auction_lost".to_owned()));
    assert!(notified(&app, b).await.contains(&"auction_lost".to_owned()));
    let late = auctions::bid(st, b, &number, "190000", false)
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
    let r = auctions::bid(&app.state, a, &reserved, "150000", false)
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
        .contains(&"auction_unsold".to_owned()));

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
    auctions::bid(&app.state, a, &number, "120000", false)
        .await
        .unwrap();
    auctions::bid(&app.state, b, &number, "", true)
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
                auctions::bid(&state, bidder, &number, &max.to_string(), false).await
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

    // Replay the accepted bids, in the order they were accepted, through the rules.
    type Row = (Uuid, Decimal, DateTime<Utc>);
    let bids: Vec<Row> =
        sqlx::query_as("SELECT bidder_id, max_price, created_at FROM bids ORDER BY version")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(bids.len(), accepted);
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
    auctions::bid(&app.state, a, &number, "150000", false)
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
    auctions::bid(&app.state, a, &number, "150000", false)
        .await
        .unwrap();
    // A refused bid announces nothing.
    assert!(auctions::bid(&app.state, a, &number, "100", false)
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
