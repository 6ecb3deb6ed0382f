//! Vehicles and trip / charging-session imports (SPEC §3.1).

use super::support::{field_error, json, Api, TestApp};
use app::domain::user::Role;
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;
use std::str::FromStr;

const VIN_A: &str = "1M8GDM9AXKP042788";
const VIN_B: &str = "11111111111111111";

async fn register(api: &Api, vin: &str) -> (u16, Value) {
    let form = [
        ("make", "VinFast"),
        ("model", "VF 8"),
        ("year", "2024"),
        ("vin", vin),
        ("plate", "51K-123.45"),
        ("battery_kwh", "87.7"),
        ("efficiency_kwh_per_100km", "18,5"),
        ("grid_region", "VN"),
        ("time_zone", "Asia/Ho_Chi_Minh"),
    ];
    json(api.post("/api/vehicles/register", &form).await).await
}

async fn vehicle(api: &Api, vin: &str) -> String {
    let (status, body) = register(api, vin).await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

fn reasons(report: &Value) -> Vec<(i64, String)> {
    report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_i64().unwrap(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn vehicles_are_checked_unique_and_private(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, _) = app.signed_in(Role::EvOwner).await;
    let (other, _) = app.signed_in(Role::EvOwner).await;

    let bad = [
        ("make", ""),
        ("model", "VF 8"),
        ("year", "1950"),
        ("vin", "1M8GDM9A1KP042788"),
        ("plate", "51K/1"),
        ("battery_kwh", "-3"),
        ("efficiency_kwh_per_100km", "abc"),
        ("grid_region", "ZZ"),
        ("time_zone", "Mars/Olympus"),
    ];
    let (status, body) = json(owner.post("/api/vehicles/register", &bad).await).await;
    assert_eq!(status, 422);
    for field in [
        "make",
        "year",
        "vin",
        "plate",
        "battery_kwh",
        "efficiency_kwh_per_100km",
        "grid_region",
        "time_zone",
    ] {
        assert!(field_error(&body, field).is_some(), "{field}: {body}");
    }
    assert!(field_error(&body, "vin").unwrap().contains("should be X"));

    let id = vehicle(&owner, VIN_A).await;
    let (status, body) = register(&other, &VIN_A.to_lowercase()).await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "vin").unwrap(),
        "A vehicle with this VIN is already registered on the platform."
    );

    let (_, mine) = json(owner.post("/api/vehicles", &[]).await).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["efficiency_kwh_per_100km"], "18.5");
    let (_, theirs) = json(other.post("/api/vehicles", &[]).await).await;
    assert_eq!(theirs.as_array().unwrap().len(), 0);
    let (status, _) = json(
        other
            .post("/api/vehicles/get", &[("vehicle_id", &id)])
            .await,
    )
    .await;
    assert_eq!(
        status, 404,
        "another owner's vehicle does not exist for them"
    );

    let (status, body) = json(
        owner
            .post(
                "/api/vehicles/archive",
                &[("vehicle_id", &id), ("archived", "true")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["archived_at"].is_string());
    let (_, active) = json(owner.post("/api/vehicles", &[]).await).await;
    assert_eq!(active.as_array().unwrap().len(), 0);
    let (_, all) = json(owner.post("/api/vehicles", &[("archived", "true")]).await).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_csv_with_bad_rows_imports_the_good_ones_and_reports_each_bad_one(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, _) = app.signed_in(Role::EvOwner).await;
    let id = vehicle(&owner, VIN_A).await;
    let csv = "start_time,end_time,distance_km,energy_kwh,notes\n\
        2026-03-01T08:00:00+07:00,2026-03-01T08:30:00+07:00,12.5,2.1,to work\n\
        2026-03-01T17:00:00+07:00,2026-03-01T17:40:00+07:00,1000,,too fast\n\
        2026-03-02T08:00:00+07:00,2026-03-02T07:00:00+07:00,10,,backwards\n\
        2026-03-03T08:00:00+07:00,2026-03-03T08:30:00+07:00,0,,zero\n\
        2099-03-03T08:00:00+07:00,2099-03-03T08:30:00+07:00,5,,future\n\
        2026-03-04T08:00:00+07:00,,5,,no end\n\
        2026-03-05T08:00:00+07:00,2026-03-05T08:30:00+07:00,ten,,garbled\n\
        2026-03-01T08:10:00+07:00,2026-03-01T08:20:00+07:00,3,,inside line 2\n\
        2026-03-01T08:00:00+07:00,2026-03-01T08:30:00+07:00,12.5,2.1,same as line 2\n\
        2026-03-06T08:00:00+07:00,2026-03-06T12:00:00+07:00,987.5,,\n";
    let (status, report) = owner
        .upload(&id, "trips", "march.csv", csv.as_bytes().to_vec())
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rows_total"], 10);
    assert_eq!(report["rows_imported"], 2);
    assert_eq!(report["rows_rejected"], 8);
    assert_eq!(report["rows_duplicate"], 1);
    assert_eq!(
        report["rows_flagged"], 1,
        "247 km/h on average is above the 150 km/h anomaly line"
    );
    assert_eq!(
        reasons(&report),
        vec![
            (
                3,
                "average speed 1500 km/h is above 250 km/h; distance or times are wrong".to_owned()
            ),
            (4, "end_time is not after start_time".to_owned()),
            (5, "distance_km must be more than 0".to_owned()),
            (6, "end_time is in the future".to_owned()),
            (7, "end_time is missing".to_owned()),
            (8, "distance_km “ten” is not a number".to_owned()),
            (9, "overlaps the trip on line 2".to_owned()),
            (10, "duplicate of the trip on line 2".to_owned()),
        ]
    );
    // SEED-2025: 100 g/km avoided → (12.5 + 987.5) km → 100 kg.
    assert_eq!(dec(&report["avoided_kg"]), Decimal::from(100));
    let stored: (i64, Decimal, String) = sqlx::query_as(
        "SELECT count(*), sum(avoided_kg), min(start_time)::text FROM trips WHERE vehicle_id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((stored.0, stored.1), (2, Decimal::from(100)));
    assert_eq!(stored.2, "2026-03-01 01:00:00+00");
    let day: (i32, Decimal) =
        sqlx::query_as("SELECT trips, distance_km FROM trip_days WHERE vehicle_id = $1::uuid AND day = '2026-03-01'")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(day, (1, Decimal::new(125, 1)));

    // Re-importing the same file imports nothing and says so.
    let (status, again) = owner
        .upload(&id, "trips", "march.csv", csv.as_bytes().to_vec())
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["rows_imported"], 0);
    assert!(again["earlier_same_file"].is_string());
    assert_eq!(
        reasons(&again)[0],
        (2, "duplicate of a trip already imported".to_owned())
    );
    assert_eq!(app.count("SELECT count(*) FROM trips").await, 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn bom_semicolons_decimal_commas_camel_case_and_local_times(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, _) = app.signed_in(Role::EvOwner).await;
    let id = vehicle(&owner, VIN_A).await;
    let mut file = vec![0xEF, 0xBB, 0xBF];
    file.extend_from_slice(
        "startTime;endTime;distanceKm;energyConsumed;start_long;startLat\r\n\
         2026-03-01 08:00:00;2026-03-01 08:30:00;12,5;2,25;106,7;10,8\r\n"
            .as_bytes(),
    );
    let (status, report) = owner.upload(&id, "trips", "export.csv", file).await;
    assert_eq!(status, 200, "{report}");
    let plain = "startTime;endTime;distanceKm\n2026-03-02 08:00:00;2026-03-02 08:30:00;7,5\n";
    let (status, second) = owner
        .upload(&id, "trips", "plain.csv", plain.as_bytes().to_vec())
        .await;
    assert_eq!(
        (status, second["rows_imported"].as_i64()),
        (200, Some(1)),
        "semicolons without a BOM: {second}"
    );
    assert_eq!(
        (report["rows_imported"].as_i64(), report["format"].as_str()),
        (Some(1), Some("csv;"))
    );
    let row: (String, Decimal, Decimal, Decimal) = sqlx::query_as(
        "SELECT start_time::text, distance_km, energy_kwh, start_lng FROM trips WHERE vehicle_id = $1::uuid AND distance_km = 12.5",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let lines: Vec<Option<i32>> = sqlx::query_scalar(
        "SELECT line FROM trips WHERE vehicle_id = $1::uuid ORDER BY start_time",
    )
    .bind(&id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        lines,
        vec![Some(2), Some(2)],
        "the first data row is line 2 (after the header), CRLF or not"
    );
    // 08:00 in Ho Chi Minh City (UTC+7) is 01:00 UTC.
    assert_eq!(
        row,
        (
            "2026-03-01 01:00:00+00".to_owned(),
            Decimal::new(12500, 3),
            Decimal::new(2250, 3),
            Decimal::new(106700000, 6)
        )
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn utf16_and_json_files(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, _) = app.signed_in(Role::EvOwner).await;
    let id = vehicle(&owner, VIN_A).await;

    let text = "start_time,end_time,distance_km\n2026-02-01T08:00:00Z,2026-02-01T09:00:00Z,40\n";
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let (status, report) = owner.upload(&id, "trips", "utf16.csv", utf16).await;
    assert_eq!(
        (status, report["rows_imported"].as_i64()),
        (200, Some(1)),
        "{report}"
    );

    let array = r#"[{"startTime":"2026-02-02T08:00:00Z","endTime":"2026-02-02T09:00:00Z","distanceKm":30.5,"energy_kwh":"5.1"},
                    {"startTime":"2026-02-03T08:00:00Z","endTime":"2026-02-03T09:00:00Z"}]"#;
    let (status, report) = owner
        .upload(&id, "trips", "a.json", array.as_bytes().to_vec())
        .await;
    assert_eq!(
        (
            status,
            report["rows_imported"].as_i64(),
            report["format"].as_str()
        ),
        (200, Some(1), Some("json")),
        "{report}"
    );
    assert_eq!(
        reasons(&report),
        vec![(2, "distance_km is missing".to_owned())]
    );

    let wrapped = r#"{"vehicle":"mine","trips":[{"start_time":"2026-02-04T08:00:00","end_time":"2026-02-04T09:00:00","distance_km":"20"}]}"#;
    let (status, report) = owner
        .upload(&id, "trips", "b.json", wrapped.as_bytes().to_vec())
        .await;
    assert_eq!(
        (status, report["rows_imported"].as_i64()),
        (200, Some(1)),
        "{report}"
    );
    let stored: Decimal =
        sqlx::query_scalar("SELECT distance_km FROM trips WHERE line = 1 AND distance_km = 30.5")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, Decimal::new(30500, 3));
}

#[sqlx::test(migrations = "../migrations")]
async fn files_that_are_not_trip_data_are_refused_and_leave_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, _) = app.signed_in(Role::EvOwner).await;
    let id = vehicle(&owner, VIN_A).await;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.csv", Vec::new(), "The file is empty."),
        (
            "photo.png",
            vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13],
            "not a CSV or JSON text file",
        ),
        (
            "people.csv",
            b"name,email\nAn,an@example.com\n".to_vec(),
            "start_time, end_time, distance_km are required",
        ),
        (
            "config.json",
            br#"{"debug": true}"#.to_vec(),
            "no \"trips\" array",
        ),
        (
            "broken.json",
            br#"[{"start_time": "2026-01-01T00:00:00Z", "#.to_vec(),
            "The JSON cannot be read",
        ),
    ];
    for (name, bytes, expected) in cases {
        let (status, body) = owner.upload(&id, "trips", name, bytes).await;
        assert_eq!(status, 422, "{name}: {body}");
        let message = field_error(&body, "file").unwrap();
        assert!(message.contains(expected), "{name}: {message}");
    }
    assert_eq!(app.count("SELECT count(*) FROM data_imports").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM trips").await, 0);

    // Someone else's vehicle is not there for them.
    let (other, _) = app.signed_in(Role::EvOwner).await;
    let (status, _) = other
        .upload(
            &id,
            "trips",
            "x.csv",
            b"start_time,end_time,distance_km\n".to_vec(),
        )
        .await;
    assert_eq!(status, 404);
}

#[sqlx::test(migrations = "../migrations")]
async fn overlaps_with_stored_trips_and_claimed_trips_are_read_only(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, owner_id) = app.signed_in(Role::EvOwner).await;
    let id = vehicle(&owner, VIN_B).await;
    let first = "start_time,end_time,distance_km\n2026-01-10T08:00:00Z,2026-01-10T09:00:00Z,50\n";
    owner
        .upload(&id, "trips", "1.csv", first.as_bytes().to_vec())
        .await;
    let second = "start_time,end_time,distance_km\n2026-01-10T08:30:00Z,2026-01-10T09:30:00Z,50\n2026-01-10T09:00:00Z,2026-01-10T10:00:00Z,50\n";
    let (_, report) = owner
        .upload(&id, "trips", "2.csv", second.as_bytes().to_vec())
        .await;
    assert_eq!(
        reasons(&report),
        vec![(
            2,
            "overlaps a trip already imported for this vehicle".to_owned()
        )]
    );
    assert_eq!(
        report["rows_imported"], 1,
        "a trip starting when another ends is fine"
    );

    let request = super::support::pending_request(&app.pool, owner_id).await;
    let stray = sqlx::query("UPDATE trips SET claim_id = gen_random_uuid() WHERE line = 2")
        .execute(&app.pool)
        .await;
    assert!(
        stray.is_err(),
        "only a real pending request can claim a trip"
    );
    sqlx::query("UPDATE trips SET claim_id = $1 WHERE line = 2")
        .bind(request)
        .execute(&app.pool)
        .await
        .unwrap();
    let other = super::support::pending_request(&app.pool, owner_id).await;
    let steal = sqlx::query("UPDATE trips SET claim_id = $1 WHERE line = 2")
        .bind(other)
        .execute(&app.pool)
        .await;
    assert!(steal.is_err(), "a claimed trip cannot be claimed again");
    let edit = sqlx::query("UPDATE trips SET distance_km = 1 WHERE claim_id IS NOT NULL")
        .execute(&app.pool)
        .await;
    assert!(edit.is_err(), "a claimed trip cannot be edited");
    let delete = sqlx::query("DELETE FROM trips WHERE claim_id IS NOT NULL")
        .execute(&app.pool)
        .await;
    assert!(delete.is_err(), "a claimed trip cannot be deleted");
    let release = sqlx::query("UPDATE trips SET claim_id = NULL WHERE claim_id IS NOT NULL")
        .execute(&app.pool)
        .await;
    assert!(
        release.is_err(),
        "the claim holds while the request is pending"
    );
    sqlx::query("UPDATE credit_requests SET status = 'rejected', closed_at = now() WHERE id = $1")
        .bind(request)
        .execute(&app.pool)
        .await
        .unwrap();
    let release = sqlx::query("UPDATE trips SET claim_id = NULL WHERE claim_id IS NOT NULL")
        .execute(&app.pool)
        .await;
    assert!(
        release.is_ok(),
        "a rejected request releases its trips: {release:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn charging_sessions_are_imported_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, _) = app.signed_in(Role::EvOwner).await;
    let id = vehicle(&owner, VIN_A).await;
    let csv = "sessionId,chargerId,start,end,kWh\n\
        S-1,CH-9,2026-03-01T22:00:00+07:00,2026-03-02T01:00:00+07:00,31.5\n\
        S-2,CH-9,2026-03-03T22:00:00+07:00,2026-03-04T01:00:00+07:00,0\n\
        S-1,CH-9,2026-03-05T22:00:00+07:00,2026-03-06T01:00:00+07:00,20\n";
    let (status, report) = owner
        .upload(&id, "charging", "sessions.csv", csv.as_bytes().to_vec())
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rows_imported"], 1);
    assert_eq!(
        reasons(&report),
        vec![
            (3, "energy_kwh “0” is not more than 0 kWh".to_owned()),
            (4, "the same session as line 2".to_owned())
        ]
    );
    let (_, again) = owner
        .upload(&id, "charging", "sessions.csv", csv.as_bytes().to_vec())
        .await;
    assert_eq!(again["rows_imported"], 0);
    assert_eq!(
        reasons(&again)[0],
        (2, "session S-1 was already imported".to_owned())
    );
    assert_eq!(app.count("SELECT count(*) FROM charging_sessions").await, 1);

    // The owner lists them, filtered by local date; another owner sees none of them.
    let (status, page) = json(
        owner
            .post(
                "/api/charging",
                &[
                    ("vehicle_id", &id),
                    ("from", "2026-03-01"),
                    ("to", "2026-03-01"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 1);
    assert_eq!(dec(&page["total_kwh"]), Decimal::from_str("31.5").unwrap());
    assert_eq!(page["sessions"][0]["session_id"], "S-1");
    assert_eq!(page["sessions"][0]["local_start"], "2026-03-01 22:00");
    let (_, none) = json(owner.post("/api/charging", &[("from", "2026-03-02")]).await).await;
    assert_eq!(none["total"], 0);
    let (other, _) = app.signed_in(Role::EvOwner).await;
    let (_, theirs) = json(other.post("/api/charging", &[]).await).await;
    assert_eq!(theirs["total"], 0);
    let (status, body) = json(owner.post("/api/charging", &[("vehicle_id", "nope")]).await).await;
    assert_eq!(status, 422, "{body}");
}

#[sqlx::test(migrations = "../migrations")]
async fn period_checks_find_long_days_odometer_gaps_and_identical_trips(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, _) = app.signed_in(Role::EvOwner).await;
    let id = vehicle(&owner, VIN_A).await;
    // Five identical 2-hour, 120 km trips on 1 March (odometer continuous), then on 2 March
    // trips adding up to 1,100 km with an odometer jump of 500 km before the first of them.
    // (UTC times: the daily distance check counts UTC days, the date filter the vehicle's local
    // days, and these trips fall on the same dates in both.)
    let mut csv = String::from(
        "start_time,end_time,distance_km,energy_kwh,odometer_start_km,odometer_end_km\n",
    );
    let mut odo = 1000;
    for h in [0, 3, 6, 9, 12] {
        csv.push_str(&format!(
            "2026-03-01T{h:02}:00:00Z,2026-03-01T{:02}:00:00Z,120,20,{odo},{}\n",
            h + 2,
            odo + 120
        ));
        odo += 120;
    }
    odo += 500;
    for h in [0, 4, 8, 12, 16] {
        csv.push_str(&format!(
            "2026-03-02T{h:02}:00:00Z,2026-03-02T{:02}:30:00Z,220,35,{odo},{}\n",
            h + 3,
            odo + 220
        ));
        odo += 220;
    }
    let (status, report) = owner.upload(&id, "trips", "t.csv", csv.into_bytes()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rows_imported"], 10);

    let checks = |from: &'static str, to: &'static str| {
        let owner = &owner;
        let id = id.clone();
        async move {
            let (status, body) = json(
                owner
                    .post(
                        "/api/trips/period-checks",
                        &[("vehicle_id", &id), ("from", from), ("to", to)],
                    )
                    .await,
            )
            .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let codes = |body: &Value| -> Vec<String> {
        body["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_owned())
            .collect()
    };
    let both = checks("2026-03-01", "2026-03-02").await;
    assert_eq!(both["trips"], 10);
    assert_eq!(both["checked"], true);
    let found = codes(&both);
    for code in ["daily_distance_high", "odometer_gap", "identical_trips"] {
        assert!(
            found.contains(&code.to_owned()),
            "{code} missing from {found:?}"
        );
    }
    // 1 March alone: the identical trips only.
    let first = checks("2026-03-01", "2026-03-01").await;
    assert_eq!(first["trips"], 5);
    assert_eq!(codes(&first), vec!["identical_trips".to_owned()]);
    // A day without trips: nothing to find.
    let empty = checks("2026-04-01", "2026-04-30").await;
    assert_eq!((empty["trips"].as_i64(), codes(&empty).len()), (Some(0), 0));

    // Only the owner's own vehicle; a vehicle is required.
    let (other, _) = app.signed_in(Role::EvOwner).await;
    let (status, _) = json(
        other
            .post("/api/trips/period-checks", &[("vehicle_id", &id)])
            .await,
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = json(
        owner
            .post("/api/trips/period-checks", &[("vehicle_id", "")])
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "vehicle_id").as_deref(),
        Some("Choose a vehicle.")
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn every_stored_calculation_can_be_redone_exactly(pool: PgPool) {
    use app::domain::methodology::{Methodology, TripInput};
    let app = TestApp::spawn(pool).await;
    let (owner, _) = app.signed_in(Role::EvOwner).await;
    let id = vehicle(&owner, VIN_A).await;
    // Make ENERGY-2025 the active methodology (the admin screen does this, audited).
    app::server::services::methodology::ensure_defaults(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE methodology_active SET version_id = (SELECT id FROM methodology_versions WHERE code = 'ENERGY-2025' AND version = 1)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let csv = "start_time,end_time,distance_km,energy_kwh\n\
        2026-01-10T08:00:00Z,2026-01-10T09:00:00Z,250,40\n\
        2026-01-11T08:00:00Z,2026-01-11T08:45:00Z,37.5,\n\
        2026-01-12T08:00:00Z,2026-01-12T08:20:00Z,10,9\n";
    let (status, report) = owner
        .upload(&id, "trips", "energy.csv", csv.as_bytes().to_vec())
        .await;
    assert_eq!(
        (status, report["rows_imported"].as_i64()),
        (200, Some(3)),
        "{report}"
    );

    // Redo it from what is stored: the version's parameters, the vehicle inputs of the
    // calculation, and each trip.
    let (methodology, efficiency, region, total): (
        sqlx::types::Json<Methodology>,
        Decimal,
        String,
        Decimal,
    ) = sqlx::query_as(
        "SELECT v.methodology, c.efficiency_kwh_per_100km, c.grid_region, c.avoided_kg
         FROM co2_calculations c JOIN methodology_versions v ON v.id = c.methodology_version_id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(methodology.0.code.as_str(), "ENERGY-2025");
    let trips: Vec<(Decimal, Option<Decimal>, Decimal)> =
        sqlx::query_as("SELECT distance_km, energy_kwh, avoided_kg FROM trips ORDER BY start_time")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let mut sum = Decimal::ZERO;
    for (distance_km, measured, stored) in &trips {
        let input = TripInput {
            distance_km: *distance_km,
            measured_energy_kwh: *measured,
            efficiency_kwh_per_100km: efficiency,
            region: region.clone(),
        };
        let redone = methodology.0.calculate(&input).unwrap();
        assert_eq!(redone.avoided_kg, *stored, "trip of {distance_km} km");
        sum += redone.avoided_kg;
    }
    assert_eq!(sum, total);
    // Hand check of the first trip (see the methodology tests): 250 km, 40 kWh measured in VN:
    // 250 × 7.0 / 100 × 2.348 − 40 × 0.6592 × 1.08 = 41.09 − 28.47744 = 12.61256 kg.
    assert_eq!(trips[0].2, Decimal::from_str("12.61256").unwrap());
    // 10 km with 9 kWh emits more on the grid than a petrol car would: nothing avoided.
    assert_eq!(trips[2].2, Decimal::ZERO);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_dashboard_sums_by_local_day_month_and_year(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, _) = app.signed_in(Role::EvOwner).await;
    let a = vehicle(&owner, VIN_A).await;
    let b = vehicle(&owner, VIN_B).await;
    let today = chrono::Utc::now().date_naive();
    let yesterday = today - chrono::Duration::days(1);
    // 23:30 local (UTC+7) yesterday is 16:30 UTC: it counts on yesterday's local date.
    let csv_a = format!("start_time,end_time,distance_km\n{yesterday}T23:30:00,{yesterday}T23:50:00,20\n{yesterday}T08:00:00,{yesterday}T08:30:00,10\n");
    let csv_b = format!("start_time,end_time,distance_km,energy_kwh\n{yesterday}T09:00:00+07:00,{yesterday}T10:00:00+07:00,70,11\n");
    owner.upload(&a, "trips", "a.csv", csv_a.into_bytes()).await;
    owner.upload(&b, "trips", "b.csv", csv_b.into_bytes()).await;

    let (status, all) = json(owner.post("/api/dashboard", &[("by", "day")]).await).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["total_trips"], 3);
    assert_eq!(
        dec(&all["total_avoided_kg"]),
        Decimal::from(10),
        "100 km × 100 g/km"
    );
    assert_eq!(dec(&all["credit_equivalent"]), Decimal::new(10, 3));
    let buckets = all["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 30);
    let day = buckets
        .iter()
        .find(|b| b["start"] == yesterday.to_string())
        .unwrap();
    assert_eq!(
        (day["trips"].as_i64(), dec(&day["distance_km"])),
        (Some(3), Decimal::from(100))
    );
    assert!(all["chart_svg"].as_str().unwrap().starts_with("<svg"));
    assert!(all["chart_svg"].as_str().unwrap().contains("<rect"));

    let (_, only_b) = json(
        owner
            .post("/api/dashboard", &[("by", "year"), ("vehicle_id", &b)])
            .await,
    )
    .await;
    assert_eq!(dec(&only_b["total_distance_km"]), Decimal::from(70));
    // Energy: measured 11 kWh for b; a's 30 km are estimated at 18.5 kWh/100 km = 5.55 kWh.
    let (_, month) = json(owner.post("/api/dashboard", &[("by", "month")]).await).await;
    assert_eq!(dec(&month["total_energy_kwh"]), Decimal::new(166, 1));

    let (other, _) = app.signed_in(Role::EvOwner).await;
    let (_, theirs) = json(other.post("/api/dashboard", &[]).await).await;
    assert_eq!(
        theirs["total_trips"], 0,
        "an owner sees only their own driving"
    );
    let (status, _) = json(other.post("/api/dashboard", &[("vehicle_id", &a)]).await).await;
    assert_eq!(status, 200);
    let (status, body) = json(owner.post("/api/dashboard", &[("by", "week")]).await).await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "by").is_some());
}

#[sqlx::test(migrations = "../migrations")]
async fn trips_are_listed_edited_and_deleted_unless_claimed(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, owner_id) = app.signed_in(Role::EvOwner).await;
    let id = vehicle(&owner, VIN_A).await;
    let csv = "start_time,end_time,distance_km,energy_kwh\n\
        2026-02-01T08:00:00+07:00,2026-02-01T08:30:00+07:00,10,\n\
        2026-02-01T09:00:00+07:00,2026-02-01T09:30:00+07:00,20,1\n\
        2026-02-02T09:00:00+07:00,2026-02-02T09:30:00+07:00,30,\n";
    owner
        .upload(&id, "trips", "feb.csv", csv.as_bytes().to_vec())
        .await;

    let (status, page) = json(
        owner
            .post(
                "/api/trips",
                &[("from", "2026-02-01"), ("to", "2026-02-01")],
            )
            .await,
    )
    .await;
    assert_eq!((status, page["total"].as_i64()), (200, Some(2)), "{page}");
    let (_, flagged) = json(owner.post("/api/trips", &[("flagged", "true")]).await).await;
    assert_eq!(flagged["total"], 1, "1 kWh for 20 km is below 8 kWh/100 km");
    let trips = page["trips"].as_array().unwrap();
    let (second, first) = (
        trips[0]["id"].as_i64().unwrap().to_string(),
        trips[1]["id"].as_i64().unwrap().to_string(),
    );
    assert_eq!(trips[1]["local_start"], "2026-02-01T08:00");

    // Editing into an overlap is refused; a good edit moves CO₂ and the day totals.
    let overlap = [
        ("trip_id", first.as_str()),
        ("start_time", "2026-02-01T08:50"),
        ("end_time", "2026-02-01T09:10"),
        ("distance_km", "10"),
        ("energy_kwh", ""),
        ("notes", ""),
    ];
    let (status, body) = json(owner.post("/api/trips/update", &overlap).await).await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "start_time")
        .unwrap()
        .contains("overlaps your trip of 2026-02-01 09:00"));
    let edit = [
        ("trip_id", first.as_str()),
        ("start_time", "2026-02-01T07:00"),
        ("end_time", "2026-02-01T07:40"),
        ("distance_km", "15,5"),
        ("energy_kwh", ""),
        ("notes", "fixed"),
    ];
    let (status, trip) = json(owner.post("/api/trips/update", &edit).await).await;
    assert_eq!(status, 200, "{trip}");
    assert_eq!(dec(&trip["avoided_kg"]), Decimal::new(155, 2));
    let day: (i32, Decimal, Decimal) = sqlx::query_as(
        "SELECT trips, distance_km, avoided_kg FROM trip_days WHERE vehicle_id = $1::uuid AND day = '2026-02-01'",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(day, (2, Decimal::new(355, 1), Decimal::new(355, 2)));
    let bad = [
        ("trip_id", first.as_str()),
        ("start_time", "2026-02-01T07:00"),
        ("end_time", "2026-02-01T06:00"),
        ("distance_km", "0"),
        ("energy_kwh", "x"),
        ("notes", ""),
    ];
    let (status, body) = json(owner.post("/api/trips/update", &bad).await).await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "energy_kwh").is_some(), "{body}");

    // Another owner cannot touch it; a claimed trip cannot change.
    let (other, _) = app.signed_in(Role::EvOwner).await;
    assert_eq!(
        other
            .post("/api/trips/delete", &[("trip_id", &second)])
            .await
            .status(),
        404
    );
    let request = super::support::pending_request(&app.pool, owner_id).await;
    sqlx::query("UPDATE trips SET claim_id = $2 WHERE id = $1::bigint")
        .bind(&second)
        .bind(request)
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, body) = json(
        owner
            .post("/api/trips/delete", &[("trip_id", &second)])
            .await,
    )
    .await;
    assert_eq!((status, body["kind"].as_str()), (409, Some("conflict")));

    assert_eq!(
        owner
            .post("/api/trips/delete", &[("trip_id", &first)])
            .await
            .status(),
        200
    );
    let day: (i32, Decimal) = sqlx::query_as(
        "SELECT trips, distance_km FROM trip_days WHERE vehicle_id = $1::uuid AND day = '2026-02-01'",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(day, (1, Decimal::from(20)));
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action IN ('trip.update', 'trip.delete')")
            .await,
        2
    );

    // The CSV download has every matching trip, oldest first.
    let res = owner
        .http
        .get(format!("{}/api/trips/export", owner.base))
        .query(&[("vehicle_id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("trips.csv"));
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("vehicle_plate,start_time_utc"));
    assert!(
        lines[1].contains("2026-02-01 09:00")
            && lines[1].contains(",20,1,")
            && lines[1].contains(",energy_out_of_range,true,"),
        "{csv}"
    );
    assert!(
        lines[2].contains(",30,") && lines[2].ends_with(",false,"),
        "{csv}"
    );

    let res = owner
        .http
        .get(format!("{}/api/dashboard/export", owner.base))
        .query(&[("by", "year")])
        .send()
        .await
        .unwrap();
    let csv = res.text().await.unwrap();
    assert!(
        csv.starts_with("period_start,period,trips,distance_km,energy_kwh,avoided_kg"),
        "{csv}"
    );
    assert!(csv.contains("2026-01-01,2026,2,50,"), "{csv}");
    let visitor = app.client();
    assert_eq!(visitor.get("/api/trips/export").await.status(), 401);
}

#[sqlx::test(migrations = "../migrations")]
async fn admins_add_methodology_versions_and_choose_the_active_one(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (admin, admin_id) = app.signed_in(Role::Admin).await;
    let (_, versions) = json(admin.post("/api/admin/methodologies", &[]).await).await;
    let versions = versions.as_array().unwrap().clone();
    assert_eq!(versions.len(), 2);
    assert!(versions
        .iter()
        .any(|v| v["active"] == true && v["methodology"]["code"] == "SEED-2025"));

    let bad = [
        ("code", "ENERGY-2025"),
        ("baseline_l_per_100km", "7"),
        ("fuel_kg_co2_per_l", "2.348"),
        ("losses_share", "1.5"),
        ("grid_factors", "VN=0.7\nnonsense"),
        ("buffer_share", "0.05"),
        ("note", ""),
    ];
    let (status, body) = json(admin.post("/api/admin/methodologies/add", &bad).await).await;
    assert_eq!(status, 422);
    for field in ["grid_kg_co2_per_kwh", "note"] {
        assert!(field_error(&body, field).is_some(), "{field}: {body}");
    }
    let good = [
        ("code", "ENERGY-2025"),
        ("baseline_l_per_100km", "7,2"),
        ("fuel_kg_co2_per_l", "2.348"),
        ("losses_share", "0.08"),
        ("grid_factors", "VN=0.6800\nTH=0.4500"),
        ("buffer_share", "0.05"),
        ("note", "MONRE 2024 grid factor"),
    ];
    let (status, id) = json(admin.post("/api/admin/methodologies/add", &good).await).await;
    assert_eq!(status, 200, "{id}");
    let id = id.as_str().unwrap().to_owned();
    let (status, _) = json(
        admin
            .post("/api/admin/methodologies/activate", &[("version_id", &id)])
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let active: (String, i32) = sqlx::query_as(
        "SELECT v.code, v.version FROM methodology_active a JOIN methodology_versions v ON v.id = a.version_id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(active, ("ENERGY-2025".to_owned(), 2));
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action LIKE 'methodology.%'")
            .await,
        2
    );
    let actor: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT actor_id FROM audit_log WHERE action = 'methodology.activate'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(actor, Some(admin_id));
    // Vehicles may now choose TH, the newest ENERGY version's region.
    let (owner, _) = app.signed_in(Role::EvOwner).await;
    let (_, options) = json(owner.post("/api/vehicles/options", &[]).await).await;
    assert_eq!(options["grid_regions"], serde_json::json!(["TH", "VN"]));
    // Versions are append-only in the schema.
    assert!(sqlx::query("UPDATE methodology_versions SET note = 'x'")
        .execute(&app.pool)
        .await
        .is_err());
}
