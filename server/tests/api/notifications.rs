//! Notifications (SPEC §8): each event tells the people concerned, in the transaction that
//! causes it; e-mail follows the person's settings; repeated events merge while unread; the
//! inbox API and the live bell.

use super::auctions::{auction, next_event};
use super::market::{buy, seller_with_listing};
use super::support::{field_error, json, TestApp};
use app::domain::notification::Kind;
use app::domain::user::Role;
use app::server::mail::{self, Mailer};
use app::server::notify;
use app::server::services::{auctions, listings};
use sqlx::PgPool;
use uuid::Uuid;

/// (kind, title, link, repeats, read) of the user's notifications, oldest first.
async fn notices(app: &TestApp, user: Uuid) -> Vec<(String, String, String, i32, bool)> {
    sqlx::query_as(
        "SELECT kind, title, link, repeats, read_at IS NOT NULL FROM notifications
         WHERE user_id = $1 ORDER BY created_at, kind",
    )
    .bind(user)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

fn has(
    list: &[(String, String, String, i32, bool)],
    kind: Kind,
) -> &(String, String, String, i32, bool) {
    list.iter()
        .find(|n| n.0 == kind.as_str())
        .unwrap_or_else(|| panic!("no {} notification in {list:?}", kind.as_str()))
}

/// (subject, link) of e-mails queued for the user.
async fn mails(app: &TestApp, user: Uuid) -> Vec<(String, Option<String>)> {
    sqlx::query_as(
        "SELECT subject, link FROM email_outbox
         WHERE to_address = (SELECT email FROM users WHERE id = $1) ORDER BY created_at",
    )
    .bind(user)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn send(app: &TestApp, user: Uuid, kind: Kind, title: &str, link: &str) {
    let mut tx = app.pool.begin().await.unwrap();
    notify::send(&mut tx, user, kind, title, "Body.", link)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn every_kind_is_kept_merged_while_unread_and_emailed_as_chosen(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, id) = app.signed_in(Role::EvOwner).await;
    for (i, kind) in Kind::ALL.into_iter().enumerate() {
        send(&app, id, kind, &format!("Event {i}"), &format!("/p/{i}")).await;
    }
    assert_eq!(notices(&app, id).await.len(), Kind::ALL.len());
    assert_eq!(mails(&app, id).await.len(), Kind::ALL.len());

    // Five new bids on one auction while unread: one notice saying the latest, one e-mail.
    for n in 1..=5 {
        send(
            &app,
            id,
            Kind::NewBid,
            &format!("New bid {n}"),
            "/auctions/LST-000001",
        )
        .await;
    }
    let bids: Vec<_> = notices(&app, id)
        .await
        .into_iter()
        .filter(|n| n.2 == "/auctions/LST-000001")
        .collect();
    assert_eq!(bids.len(), 1);
    assert_eq!((bids[0].1.as_str(), bids[0].3), ("New bid 5", 5));
    assert_eq!(mails(&app, id).await.len(), Kind::ALL.len() + 1);

    // E-mail for new bids turned off: the notice still comes, the e-mail does not.
    let (status, body) = json(
        owner
            .post(
                "/api/notifications/settings/email",
                &[("kind", "new_bid"), ("email", "off")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let off: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["email"] == false)
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(off, ["new_bid"]);
    send(
        &app,
        id,
        Kind::NewBid,
        "New bid elsewhere",
        "/auctions/LST-000002",
    )
    .await;
    assert_eq!(mails(&app, id).await.len(), Kind::ALL.len() + 1);
    assert_eq!(notices(&app, id).await.len(), Kind::ALL.len() + 2);

    // Refusals: an unknown event, a bad choice, an event a buyer never receives.
    let (status, body) = json(
        owner
            .post(
                "/api/notifications/settings/email",
                &[("kind", "weather"), ("email", "off")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "kind")
        .unwrap()
        .contains("not a notification type"));
    let (status, body) = json(
        owner
            .post(
                "/api/notifications/settings/email",
                &[("kind", "outbid"), ("email", "maybe")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "email").as_deref(),
        Some("Choose on or off.")
    );
    let (buyer, _) = app.signed_in(Role::Buyer).await;
    let (status, body) = json(
        buyer
            .post(
                "/api/notifications/settings/email",
                &[("kind", "new_bid"), ("email", "off")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "kind")
        .unwrap()
        .contains("not an event your account receives"));

    // A notice of a suspended account is kept, but no e-mail is sent.
    sqlx::query("UPDATE users SET status = 'suspended' WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    send(
        &app,
        id,
        Kind::ListingSold,
        "Sold while away",
        "/orders/ORD-000009",
    )
    .await;
    assert_eq!(mails(&app, id).await.len(), Kind::ALL.len() + 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn payments_sales_bids_and_expiry_tell_the_people_concerned(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_, seller, listing) = seller_with_listing(&app, 2_000, "200000", "0.1").await;
    let (buyer, buyer_id) = app.signed_in(Role::Buyer).await;

    // Payment received.
    buyer.top_up("1000000").await;
    let n = notices(&app, buyer_id).await;
    let paid = has(&n, Kind::PaymentReceived);
    assert!(
        paid.1.starts_with("Payment PAY-") && paid.1.ends_with(" received"),
        "{paid:?}"
    );
    assert_eq!(paid.2, "/money");

    // A declined card.
    let (status, body) = json(
        buyer
            .post("/api/money/top-up", &[("amount", "50000")])
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let res = buyer
        .post(body["pay_url"].as_str().unwrap(), &[("choice", "fail")])
        .await;
    assert_eq!(res.status(), 303);
    let n = notices(&app, buyer_id).await;
    assert!(has(&n, Kind::PaymentFailed)
        .1
        .ends_with("did not go through"));

    // Credits sold: the seller hears of the order.
    let (status, body) = buy(&buyer, &listing, "0.5", "notify-sale-0001").await;
    assert_eq!(status, 200, "{body}");
    let order = body["order"].as_str().unwrap().to_owned();
    let n = notices(&app, seller).await;
    let sold = has(&n, Kind::ListingSold);
    assert_eq!(sold.1, format!("Sold 0.500 t from {listing}"));
    assert_eq!(sold.2, format!("/orders/{order}"));
    let body: String =
        sqlx::query_scalar("SELECT body FROM notifications WHERE kind = 'listing_sold'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    // 0.5 t at 200,000: 100,000 less the 2.5 % seller fee.
    assert!(body.contains("97.500 ₫") && body.contains(&order), "{body}");

    // About to expire: warned once, a day ahead; then ended.
    sqlx::query("UPDATE listings SET expires_at = now() + interval '3 hours' WHERE number = $1")
        .bind(&listing)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(listings::warn_expiring(&app.pool).await.unwrap(), 1);
    assert_eq!(listings::warn_expiring(&app.pool).await.unwrap(), 0);
    sqlx::query("UPDATE listings SET expires_at = now() - interval '1 second' WHERE number = $1")
        .bind(&listing)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(listings::expire_due(&app.pool).await.unwrap(), 1);
    let n = notices(&app, seller).await;
    assert_eq!(
        has(&n, Kind::ListingExpiring).1,
        format!("{listing} expires soon")
    );
    assert_eq!(
        has(&n, Kind::ListingEnded).1,
        format!("{listing} has expired")
    );
    let body: String =
        sqlx::query_scalar("SELECT body FROM notifications WHERE kind = 'listing_ended'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(body.starts_with("1.500 t did not sell"), "{body}");

    // Bids: the seller gets one notice that keeps count; the outbid bidder is told.
    let (auction_seller, number) = auction(&app, "").await;
    let (rival_api, rival) = app.signed_in(Role::Buyer).await;
    rival_api.top_up("1000000").await;
    auctions::bid(&app.state, buyer_id, &number, "120000", false, None)
        .await
        .unwrap();
    auctions::bid(&app.state, rival, &number, "150000", false, None)
        .await
        .unwrap();
    let n = notices(&app, auction_seller).await;
    let bids = has(&n, Kind::NewBid);
    assert_eq!(
        (bids.1.as_str(), bids.3),
        (format!("New bid on {number}").as_str(), 2)
    );
    let n = notices(&app, buyer_id).await;
    assert_eq!(
        has(&n, Kind::Outbid).1,
        format!("You were outbid on {number}")
    );

    // The e-mails: the buyer's payment, with a link to the platform and to the settings.
    let outbox = std::env::temp_dir().join(format!("evcx-notify-{}", Uuid::new_v4()));
    let sent = mail::deliver_due(
        &app.pool,
        &Mailer::folder(&outbox).unwrap(),
        "http://evcx.test",
        100,
    )
    .await
    .unwrap();
    assert!(sent >= 6, "sent {sent}");
    let sale_mail = std::fs::read_dir(&outbox)
        .unwrap()
        // Quoted-printable: join the soft line breaks.
        .map(|f| {
            std::fs::read_to_string(f.unwrap().path())
                .unwrap()
                .replace("=\r\n", "")
                .replace("=\n", "")
        })
        .find(|m| m.contains(&format!("Sold 0.500 t from {listing}")))
        .expect("the sale's e-mail");
    assert!(
        sale_mail.contains(&format!("http://evcx.test/orders/{order}")),
        "{sale_mail}"
    );
    assert!(
        sale_mail.contains("http://evcx.test/notifications/settings"),
        "{sale_mail}"
    );
    std::fs::remove_dir_all(&outbox).ok();
}

#[sqlx::test(migrations = "../migrations")]
async fn the_inbox_and_the_live_bell(pool: PgPool) {
    let app = TestApp::spawn_live(pool).await;
    let (api, me) = app.signed_in(Role::Buyer).await;
    let (_, other) = app.signed_in(Role::Buyer).await;

    let visitor = reqwest::get(app.url("/live/inbox")).await.unwrap();
    assert_eq!(visitor.status(), 401);

    let mut stream = api.http.get(app.url("/live/inbox")).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let mut buf = String::new();
    let first = next_event(&mut stream, &mut buf).await;
    assert_eq!(first["unread"], 0);
    assert!(first["latest"].is_null());

    send(
        &app,
        me,
        Kind::Outbid,
        "You were outbid on LST-000007",
        "/auctions/LST-000007",
    )
    .await;
    // Someone else's news is not on this bell.
    send(
        &app,
        other,
        Kind::Outbid,
        "Not yours",
        "/auctions/LST-000007",
    )
    .await;
    let live = next_event(&mut stream, &mut buf).await;
    assert_eq!(live["unread"], 1);
    assert_eq!(live["latest"]["title"], "You were outbid on LST-000007");
    send(
        &app,
        me,
        Kind::AuctionWon,
        "You won LST-000008",
        "/orders/ORD-000001",
    )
    .await;
    let live = next_event(&mut stream, &mut buf).await;
    assert_eq!(live["unread"], 2);

    let (status, inbox) = json(api.post("/api/notifications/list", &[]).await).await;
    assert_eq!(status, 200);
    assert_eq!(inbox["unread"], 2);
    let titles: Vec<&str> = inbox["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["You won LST-000008", "You were outbid on LST-000007"]
    );
    let newest = inbox["notices"][0]["id"].as_str().unwrap().to_owned();

    // Opening one marks it read and leads to its page; the bell follows.
    let res = api
        .post("/api/notifications/open", &[("id", &newest)])
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["location"], "/orders/ORD-000001");
    let live = next_event(&mut stream, &mut buf).await;
    assert_eq!(live["unread"], 1);
    let (_, unread) = json(
        api.post("/api/notifications/list", &[("unread", "yes")])
            .await,
    )
    .await;
    assert_eq!(unread["notices"].as_array().unwrap().len(), 1);

    // Nobody opens another person's notification.
    let theirs: Uuid = sqlx::query_scalar("SELECT id FROM notifications WHERE user_id = $1")
        .bind(other)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let res = api
        .post("/api/notifications/open", &[("id", &theirs.to_string())])
        .await;
    assert_eq!(res.status(), 404);
    let (status, body) = json(api.post("/api/notifications/open", &[("id", "nope")]).await).await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "id").as_deref(),
        Some("This is not a valid id.")
    );

    let (status, n) = json(api.post("/api/notifications/read-all", &[]).await).await;
    assert_eq!((status, n.as_u64()), (200, Some(1)));
    let live = next_event(&mut stream, &mut buf).await;
    assert_eq!(live["unread"], 0);
    let (_, bell) = json(api.post("/api/notifications/bell", &[]).await).await;
    assert_eq!(bell["unread"], 0);
    assert_eq!(bell["latest"]["title"], "You won LST-000008");
    // The other person's stays unread.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE user_id = '{other}' AND read_at IS NULL"
        ))
        .await,
        1
    );
}
