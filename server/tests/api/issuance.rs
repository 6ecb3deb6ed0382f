//! Credit requests and their verification (SPEC §4): preview, submit, claims, cancel, the
//! CVA's decision (once), issuance with serials and the buffer pool.

use super::support::{field_error, json, reconciled, Api, TestApp};
use app::domain::user::Role;
use app::server::ledger::{self, AccountKind, Asset};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;
use std::str::FromStr;

const VIN: &str = "1M8GDM9AXKP042788";

/// An owner with one vehicle (VN grid, 16 kWh/100 km) and ten 100 km trips in March 2026, and
/// two charging sessions in the same month; ENERGY-2025 v1 is the active methodology.
async fn owner_with_trips(app: &TestApp) -> (Api, uuid::Uuid, String) {
    let (owner, owner_id) = app.signed_in(Role::EvOwner).await;
    let form = [
        ("make", "VinFast"),
        ("model", "VF 8"),
        ("year", "2024"),
        ("vin", VIN),
        ("plate", "51K-123.45"),
        ("battery_kwh", "87.7"),
        ("efficiency_kwh_per_100km", "16"),
        ("grid_region", "VN"),
        ("time_zone", "Asia/Ho_Chi_Minh"),
    ];
    let (status, vehicle) = json(owner.post("/api/vehicles/register", &form).await).await;
    assert_eq!(status, 200, "{vehicle}");
    let vehicle_id = vehicle["id"].as_str().unwrap().to_owned();
    let mut csv = String::from("start_time,end_time,distance_km,energy_kwh\n");
    for day in 1..=10 {
        csv.push_str(&format!(
            "2026-03-{day:02}T08:00:00+07:00,2026-03-{day:02}T10:00:00+07:00,100,{}\n",
            if day % 2 == 0 { "15" } else { "" }
        ));
    }
    upload(&owner, &vehicle_id, "trips", csv).await;
    let sessions = "session_id,charger_id,start,end,kwh\n\
        CS-1,CH-1,2026-03-05T20:00:00+07:00,2026-03-05T22:00:00+07:00,60\n\
        CS-2,CH-1,2026-03-09T20:00:00+07:00,2026-03-09T22:00:00+07:00,70\n";
    upload(&owner, &vehicle_id, "charging", sessions.into()).await;
    // The energy-based methodology (the fresh default is SEED-2025).
    sqlx::query(
        "UPDATE methodology_active SET version_id =
             (SELECT id FROM methodology_versions WHERE code = 'ENERGY-2025' ORDER BY version DESC LIMIT 1)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    (owner, owner_id, vehicle_id)
}

async fn upload(api: &Api, vehicle_id: &str, kind: &str, text: String) {
    let (status, body) = api
        .upload(vehicle_id, kind, "f.csv", text.into_bytes())
        .await;
    assert_eq!(status, 200, "{body}");
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap_or_else(|| panic!("not a decimal: {v}"))).unwrap()
}

const MARCH: [(&str, &str); 2] = [("from", "2026-03-01"), ("to", "2026-03-31")];

/// An owner whose trips' credits a verifier has approved and issued.
async fn owner_with_issued_credits(app: &TestApp) -> (Api, uuid::Uuid) {
    let (owner, owner_id, vehicle_id) = owner_with_trips(app).await;
    let (_, line) = submit(&owner, &vehicle_id).await;
    let id = line["id"].as_str().unwrap().to_owned();
    let (cva, _) = app.signed_in(Role::Cva).await;
    let (status, _) = json(
        cva.post(
            "/api/cva/decide",
            &[("request_id", &id), ("decision", "approve")],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    (owner, owner_id)
}

async fn submit(owner: &Api, vehicle_id: &str) -> (u16, Value) {
    json(
        owner
            .post(
                "/api/credits/submit",
                &[("vehicle_id", vehicle_id), MARCH[0], MARCH[1]],
            )
            .await,
    )
    .await
}

#[sqlx::test(migrations = "../migrations")]
async fn an_approved_request_issues_serials_to_the_owner_and_the_buffer(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, owner_id, vehicle_id) = owner_with_trips(&app).await;

    // Preview: 1,000 km; trips: 5 × 15 kWh metered + 5 × 16 kWh estimated = 155 kWh; charging
    // metered 130 kWh, less, so 155 kWh is used. ENERGY-2025 v1: baseline 1,000 × 7 ÷ 100 ×
    // 2.348 = 164.36 kg; project 155 × 0.6592 × 1.08 = 110.35008 kg; avoided 54.00992 kg →
    // 54 kg gross, buffer ceil(54 × 5 %) = 3 kg, 51 kg to the owner.
    let (status, preview) = json(
        owner
            .post(
                "/api/credits/preview",
                &[("vehicle_id", &vehicle_id), MARCH[0], MARCH[1]],
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["trips"], 10);
    assert_eq!(preview["charging_sessions"], 2);
    assert_eq!(dec(&preview["energy_kwh"]), Decimal::from(155));
    assert_eq!(
        dec(&preview["avoided_kg"]),
        Decimal::from_str("54.010").unwrap()
    );
    assert_eq!(
        (
            preview["gross_kg"].as_i64(),
            preview["buffer_kg"].as_i64(),
            preview["net_kg"].as_i64()
        ),
        (Some(54), Some(3), Some(51))
    );
    assert_eq!(preview["vintage"], 2026);
    let steps = preview["steps"].as_array().unwrap();
    assert!(
        steps.iter().any(|s| s["formula"]
            .as_str()
            .unwrap()
            .contains("trip figures 155.000 kWh > metered charging 130.000 kWh")),
        "{steps:?}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM credit_requests").await,
        0,
        "a preview stores nothing"
    );

    let (status, line) = submit(&owner, &vehicle_id).await;
    assert_eq!(status, 200, "{line}");
    assert_eq!(line["number"], "REQ-000001");
    assert_eq!(line["status"], "pending");
    let request_id = line["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.count("SELECT count(*) FROM trips WHERE claim_id IS NOT NULL")
            .await,
        10
    );
    assert_eq!(
        app.count("SELECT count(*) FROM charging_sessions WHERE claim_id IS NOT NULL")
            .await,
        2
    );
    // Claimed trips cannot be edited or claimed again.
    let (status, again) = submit(&owner, &vehicle_id).await;
    assert_eq!(status, 422, "{again}");
    assert!(field_error(&again, "from")
        .unwrap()
        .contains("No unclaimed trips"));

    // The CVA sees it in the queue and approves it.
    let (cva, _) = app.signed_in(Role::Cva).await;
    let (_, queue) = json(cva.post("/api/cva/queue", &[]).await).await;
    assert_eq!(queue["total"], 1);
    assert_eq!(queue["requests"][0]["number"], "REQ-000001");
    let (status, decided) = json(
        cva.post(
            "/api/cva/decide",
            &[("request_id", &request_id), ("decision", "approve")],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["serials"], "EVCX-VN-2026-000000001-000000054");

    // The owner's wallet: 51 kg with serials 1–51; the pool: 3 kg, serials 52–54.
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(
        ledger::balance(&mut conn, owner_id, Asset::Credit, AccountKind::Available)
            .await
            .unwrap(),
        Decimal::from(51)
    );
    let blocks: Vec<(Option<uuid::Uuid>, String, i64, i64)> = sqlx::query_as(
        "SELECT a.owner_id, a.kind, lower(b.serials), upper(b.serials) FROM serial_blocks b
         JOIN ledger_accounts a ON a.id = b.account_id ORDER BY lower(b.serials)",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(
        blocks,
        vec![
            (Some(owner_id), "available".to_owned(), 1, 52),
            (None, "buffer_pool".to_owned(), 52, 55)
        ]
    );
    drop(conn);
    // The owner sees the decision, and a notification.
    let (_, mine) = json(
        owner
            .post("/api/credits/request", &[("request_id", &request_id)])
            .await,
    )
    .await;
    assert_eq!(mine["status"], "approved");
    let labels: Vec<&str> = mine["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Submitted", "Approved", "Credits issued"]);
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM notifications WHERE user_id = '{owner_id}' AND kind = 'request_approved'")).await,
        1
    );
    // It cannot be decided again, nor cancelled.
    let (status, body) = json(
        cva.post(
            "/api/cva/decide",
            &[
                ("request_id", &request_id),
                ("decision", "reject"),
                ("notes", "late"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = json(
        owner
            .post("/api/credits/cancel", &[("request_id", &request_id)])
            .await,
    )
    .await;
    assert_eq!(status, 409);
    // Another owner cannot read it.
    let (other, _) = app.signed_in(Role::EvOwner).await;
    let (status, _) = json(
        other
            .post("/api/credits/request", &[("request_id", &request_id)])
            .await,
    )
    .await;
    assert_eq!(status, 404);
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn reduced_rejected_and_cancelled_requests(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, owner_id, vehicle_id) = owner_with_trips(&app).await;
    let (cva, _) = app.signed_in(Role::Cva).await;

    // Cancel: the trips are free again.
    let (_, line) = submit(&owner, &vehicle_id).await;
    let id = line["id"].as_str().unwrap().to_owned();
    let (status, _) = json(
        owner
            .post("/api/credits/cancel", &[("request_id", &id)])
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.count("SELECT count(*) FROM trips WHERE claim_id IS NOT NULL")
            .await,
        0
    );

    // Reject needs notes; then the trips are free again.
    let (_, line) = submit(&owner, &vehicle_id).await;
    let id = line["id"].as_str().unwrap().to_owned();
    let (status, body) = json(
        cva.post(
            "/api/cva/decide",
            &[("request_id", &id), ("decision", "reject")],
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "notes").is_some());
    let (status, body) = json(
        cva.post(
            "/api/cva/decide",
            &[
                ("request_id", &id),
                ("decision", "reject"),
                ("notes", "Odometer photos missing"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verification"]["notes"], "Odometer photos missing");
    assert_eq!(
        app.count("SELECT count(*) FROM trips WHERE claim_id IS NOT NULL")
            .await,
        0
    );
    // The owner is told, with the verifier's notes.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE user_id = '{owner_id}' AND kind = 'request_rejected'
               AND body = 'Odometer photos missing' AND link = '/credits/{id}'"
        ))
        .await,
        1
    );

    // Reduced: between 1 and requested − 1, with a reason. 40 kg gross → buffer 2, net 38.
    let (_, line) = submit(&owner, &vehicle_id).await;
    let id = line["id"].as_str().unwrap().to_owned();
    for (kg, notes, field) in [
        ("54", "too much", "approved_kg"),
        ("0", "x", "approved_kg"),
        ("40", "", "notes"),
    ] {
        let (status, body) = json(
            cva.post(
                "/api/cva/decide",
                &[
                    ("request_id", &id),
                    ("decision", "reduce"),
                    ("approved_kg", kg),
                    ("notes", notes),
                ],
            )
            .await,
        )
        .await;
        assert_eq!(status, 422, "{kg}: {body}");
        assert!(field_error(&body, field).is_some(), "{kg}: {body}");
    }
    let (status, body) = json(
        cva.post(
            "/api/cva/decide",
            &[
                ("request_id", &id),
                ("decision", "reduce"),
                ("approved_kg", "40"),
                ("notes", "Two trips look duplicated"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verification"]["decision"], "approved_reduced");
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(
        ledger::balance(&mut conn, owner_id, Asset::Credit, AccountKind::Available)
            .await
            .unwrap(),
        Decimal::from(38)
    );
    drop(conn);
    // A CVA cannot submit, an owner cannot decide.
    let (status, _) = json(
        owner
            .post(
                "/api/cva/decide",
                &[("request_id", &id), ("decision", "approve")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 403);
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn two_requests_at_the_same_instant_one_wins(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, _, vehicle_id) = owner_with_trips(&app).await;
    let second = owner.clone();
    let (a, b) = tokio::join!(submit(&owner, &vehicle_id), submit(&second, &vehicle_id));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 422], "{a:?} {b:?}");
    assert_eq!(app.count("SELECT count(*) FROM credit_requests").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM trips WHERE claim_id IS NOT NULL")
            .await,
        10
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn two_verifiers_at_the_same_instant_decide_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, owner_id, vehicle_id) = owner_with_trips(&app).await;
    let (_, line) = submit(&owner, &vehicle_id).await;
    let id = line["id"].as_str().unwrap().to_owned();
    let (first, _) = app.signed_in(Role::Cva).await;
    let (second, _) = app.signed_in(Role::Cva).await;
    let (a, b) = tokio::join!(
        json(
            first
                .post(
                    "/api/cva/decide",
                    &[("request_id", &id), ("decision", "approve")]
                )
                .await
        ),
        json(
            second
                .post(
                    "/api/cva/decide",
                    &[("request_id", &id), ("decision", "approve")]
                )
                .await
        ),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    assert_eq!(app.count("SELECT count(*) FROM verifications").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM credit_issuances").await, 1);
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(
        ledger::balance(&mut conn, owner_id, Asset::Credit, AccountKind::Available)
            .await
            .unwrap(),
        Decimal::from(51)
    );
    drop(conn);
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn retiring_part_of_a_block_gives_a_verifiable_certificate(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, owner_id) = owner_with_issued_credits(&app).await;

    // Every field is checked; more than available says how much there is.
    let (status, body) = json(
        owner
            .post(
                "/api/wallet/retire",
                &[
                    ("quantity_kg", "1.5"),
                    ("beneficiary", ""),
                    ("reason", ""),
                    ("idempotency_key", "retire-key-0003"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422);
    for field in ["quantity_kg", "beneficiary", "reason"] {
        assert!(field_error(&body, field).is_some(), "{field}: {body}");
    }
    let (status, body) = json(
        owner
            .post(
                "/api/wallet/retire",
                &[
                    ("quantity_kg", "52"),
                    ("beneficiary", "Green Co"),
                    ("reason", "2026 travel"),
                    ("idempotency_key", "retire-key-0004"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "quantity_kg").as_deref(),
        Some("You have 51 kg available to retire.")
    );

    let (status, cert) = json(
        owner
            .post(
                "/api/wallet/retire",
                &[
                    ("quantity_kg", "20"),
                    ("beneficiary", "Công ty Xanh"),
                    ("reason", "Offsetting 2026 deliveries"),
                    ("idempotency_key", "retire-key-0005"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{cert}");
    let number = cert["number"].as_str().unwrap().to_owned();
    assert!(
        number.starts_with("CERT-") && number.ends_with("-000001"),
        "{number}"
    );
    assert_eq!(cert["quantity_kg"], 20);
    assert_eq!(
        cert["blocks"][0]["serials"],
        "EVCX-VN-2026-000000001-000000020"
    );
    assert_eq!(cert["blocks"][0]["status"], "retired");
    assert_eq!(cert["blocks"][0]["methodology"], "ENERGY-2025 v1");

    // The wallet: 31 kg available (serials 21–51), 20 kg retired; the movement shows its serials.
    let (_, wallet) = json(owner.post("/api/wallet", &[]).await).await;
    assert_eq!(
        wallet["balances"],
        serde_json::json!({"available_kg": 31, "reserved_kg": 0, "retired_kg": 20})
    );
    let holdings: Vec<(String, String)> = wallet["holdings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["account"].as_str().unwrap().to_owned(),
                h["serials"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        holdings,
        vec![
            (
                "available".to_owned(),
                "EVCX-VN-2026-000000021-000000051".to_owned()
            ),
            (
                "retired".to_owned(),
                "EVCX-VN-2026-000000001-000000020".to_owned()
            ),
        ]
    );
    let latest = &wallet["movements"][0];
    assert_eq!(latest["kind"], "retirement");
    assert_eq!(latest["serials"][0], "EVCX-VN-2026-000000001-000000020");

    // Anyone can verify it, without signing in; the PDF is a PDF.
    let visitor = app.client();
    let (status, public) = json(
        visitor
            .post("/api/certificates/get", &[("number", &number)])
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(public["beneficiary"], "Công ty Xanh");
    let page = visitor.get(&format!("/verify/{number}")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Công ty Xanh") && html.contains("EVCX-VN-2026-000000001-000000020"));
    let pdf = visitor.get(&format!("/certificates/{number}.pdf")).await;
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));
    assert_eq!(
        visitor
            .get("/certificates/CERT-1999-000001.pdf")
            .await
            .status(),
        404
    );

    // Retired serials never move again: not through the ledger, not in the table.
    let mut conn = app.pool.acquire().await.unwrap();
    let retired = ledger::user_account(&mut conn, owner_id, Asset::Credit, AccountKind::Retired)
        .await
        .unwrap();
    let available =
        ledger::user_account(&mut conn, owner_id, Asset::Credit, AccountKind::Available)
            .await
            .unwrap();
    let moved = ledger::transfer(
        &mut conn,
        ledger::Transfer {
            kind: "unretire",
            legs: vec![
                ledger::Leg::new(retired, Decimal::from(-5)),
                ledger::Leg::new(available, Decimal::from(5)),
            ],
            ..ledger::Transfer::default()
        },
    )
    .await;
    assert_eq!(moved, Err(ledger::LedgerError::RetiredIsFinal));
    let edit =
        sqlx::query("UPDATE serial_blocks SET account_id = $1 WHERE retirement_id IS NOT NULL")
            .bind(available)
            .execute(&mut *conn)
            .await;
    assert!(edit.is_err(), "a retired block cannot move");
    drop(conn);
    reconciled(&app.pool).await;
}

/// A retirement's answer is read in the transaction that writes it: when the certificate
/// cannot be read (here a column it needs is gone; in life, the database lost between the
/// write and the read) the caller gets an error and nothing was retired — never an error for a
/// retirement that happened, nor an answer for one that did not. The same key then retires once.
#[sqlx::test(migrations = "../migrations")]
async fn a_retirement_whose_certificate_cannot_be_read_retires_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, owner_id) = owner_with_issued_credits(&app).await;
    let form = [
        ("quantity_kg", "20"),
        ("beneficiary", "Green Co"),
        ("reason", "2026 travel"),
        ("idempotency_key", "retire-unreadable-1"),
    ];

    // Only the certificate's read needs this column.
    sqlx::query("ALTER TABLE methodology_versions RENAME COLUMN methodology TO methodology_away")
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, body) = json(owner.post("/api/wallet/retire", &form).await).await;
    assert_eq!(status, 500, "{body}");
    let retirements: i64 = sqlx::query_scalar("SELECT count(*) FROM retirements")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(retirements, 0, "an error answer left a retirement behind");
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(
        ledger::balance(&mut conn, owner_id, Asset::Credit, AccountKind::Available)
            .await
            .unwrap(),
        Decimal::from(51)
    );
    drop(conn);

    sqlx::query("ALTER TABLE methodology_versions RENAME COLUMN methodology_away TO methodology")
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, cert) = json(owner.post("/api/wallet/retire", &form).await).await;
    assert_eq!(status, 200, "{cert}");
    assert_eq!(cert["quantity_kg"], 20);
    assert_eq!(cert["blocks"][0]["status"], "retired");
    // A repeat answers the same certificate, read the same way.
    let (status, again) = json(owner.post("/api/wallet/retire", &form).await).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["number"], cert["number"]);
    assert_eq!(again["blocks"], cert["blocks"]);
    let retirements: i64 = sqlx::query_scalar("SELECT count(*) FROM retirements")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(retirements, 1);
    reconciled(&app.pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_issuance_report_and_the_audit_trail_show_every_decision(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, _, vehicle_id) = owner_with_trips(&app).await;
    let (cva, _) = app.signed_in(Role::Cva).await;
    let (_, first) = submit(&owner, &vehicle_id).await;
    let first = first["id"].as_str().unwrap().to_owned();
    json(
        cva.post(
            "/api/cva/decide",
            &[
                ("request_id", &first),
                ("decision", "reject"),
                ("notes", "Missing data"),
            ],
        )
        .await,
    )
    .await;
    let (_, second) = submit(&owner, &vehicle_id).await;
    let second = second["id"].as_str().unwrap().to_owned();
    json(
        cva.post(
            "/api/cva/decide",
            &[("request_id", &second), ("decision", "approve")],
        )
        .await,
    )
    .await;

    let (status, view) = json(cva.post("/api/reports/issuance", &[]).await).await;
    assert_eq!(status, 200, "{view}");
    let r = &view["report"];
    assert_eq!(
        (r["approved"].as_i64(), r["rejected"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (
            r["issued_kg"].as_i64(),
            r["net_kg"].as_i64(),
            r["buffer_kg"].as_i64()
        ),
        (Some(54), Some(51), Some(3))
    );
    assert_eq!(r["approval_rate"], "50.0");
    assert!(view["chart_svg"].as_str().unwrap().starts_with("<svg"));

    let csv = cva.get(view["csv_url"].as_str().unwrap()).await;
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][0], "REQ-000001");
    assert_eq!(&rows[0][6], "rejected");
    assert_eq!(&rows[1][12], "EVCX-VN-2026-000000001-000000054");
    let pdf = cva.get(view["pdf_url"].as_str().unwrap()).await;
    assert_eq!(pdf.status(), 200);
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));
    // Owners do not see it.
    assert_eq!(owner.post("/api/reports/issuance", &[]).await.status(), 403);

    // The admin finds both decisions in the audit trail, before and after.
    let (admin, _) = app.signed_in(Role::Admin).await;
    let (status, trail) = json(
        admin
            .post("/api/admin/audit", &[("action", "credit_request.decide")])
            .await,
    )
    .await;
    assert_eq!(status, 200, "{trail}");
    assert_eq!(trail["total"], 2);
    let (_, one) = json(
        admin
            .post("/api/admin/audit", &[("entity", "REQ-000002")])
            .await,
    )
    .await;
    let actions: Vec<&str> = one["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["credit_request.decide", "credit_request.submit"]);
    assert!(one["entries"][0]["before"]
        .as_str()
        .unwrap()
        .contains("\"status\":\"pending\""));
    assert!(one["entries"][0]["after"]
        .as_str()
        .unwrap()
        .contains("\"status\":\"approved\""));
    let (status, body) = json(
        admin
            .post("/api/admin/audit", &[("from", "yesterday")])
            .await,
    )
    .await;
    assert_eq!(status, 422, "{body}");
}
