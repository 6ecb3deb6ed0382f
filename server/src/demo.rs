//! Demo data for `make run`: one account per role, and for the demo owner two vehicles with a
//! year of trips and charging sessions, loaded through the real import path. Idempotent.

use app::server::demo::ACCOUNTS;
use app::server::services::accounts::{self, NewAccount};
use app::server::services::import::{self, Kind};
use app::server::services::vehicles::{self, VehicleInput};
use bytes::Bytes;
use chrono::{Duration, NaiveDate, Utc};
use sqlx::PgPool;
use std::fmt::Write;
use uuid::Uuid;

pub async fn seed(pool: &PgPool, public_url: &str) -> anyhow::Result<()> {
    for a in ACCOUNTS {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)")
                .bind(a.email)
                .fetch_one(pool)
                .await?;
        if exists {
            continue;
        }
        let input = NewAccount {
            email: a.email.into(),
            full_name: a.full_name.into(),
            phone: a.phone.into(),
            role: a.role,
            password: Some(a.password.into()),
        };
        accounts::create_account(pool, public_url, None, input)
            .await
            .map_err(|e| anyhow::anyhow!("seeding {}: {e}", a.email))?;
        tracing::info!(email = a.email, role = ?a.role, "demo account created");
    }
    seed_ev_data(pool).await?;
    seed_issuance(pool).await
}

/// Credit requests for the demo owner, decided and waiting, and one retirement: two approved
/// (one in full, one reduced) over the first months of data, two pending for the verifier.
async fn seed_issuance(pool: &PgPool) -> anyhow::Result<()> {
    use app::server::services::issuance::{self, Decision, Selection};
    use app::server::services::wallet;
    use chrono::{Datelike, Months};
    let ids: Option<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT o.id, c.id FROM users o, users c WHERE o.email = 'owner@evcx.demo' AND c.email = 'cva@evcx.demo'",
    )
    .fetch_optional(pool)
    .await?;
    let Some((owner, cva)) = ids else {
        return Ok(());
    };
    let has_requests: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM credit_requests WHERE owner_id = $1)")
            .bind(owner)
            .fetch_one(pool)
            .await?;
    if has_requests {
        return Ok(());
    }
    let vehicles: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM vehicles WHERE owner_id = $1 ORDER BY created_at")
            .bind(owner)
            .fetch_all(pool)
            .await?;
    if vehicles.len() < 2 {
        return Ok(());
    }
    // Whole months of data, from the first full month a year ago.
    let today = Utc::now().date_naive();
    let first = (today - Duration::days(365)).with_day(1).expect("day 1") + Months::new(1);
    let months = |from: u32, count: u32| {
        let start = first + Months::new(from);
        let end_of_year = NaiveDate::from_ymd_opt(start.year(), 12, 31).expect("31 December");
        let end = (start + Months::new(count) - Duration::days(1)).min(end_of_year);
        (start, end)
    };
    let plan = [
        (vehicles[0], months(0, 3), Some(Decision::Approve)),
        (
            vehicles[1],
            months(0, 4),
            Some(Decision::ApproveReduced {
                gross_kg: 0,
                reason: "Two weeks of trips repeat the same distance and duration; those are left out until the owner sends odometer photos.".into(),
            }),
        ),
        (vehicles[0], months(3, 3), None),
        (vehicles[1], months(4, 3), None),
    ];
    for (vehicle, (from, to), decision) in plan {
        let sel = Selection {
            vehicle: Some(vehicle),
            from,
            to,
        };
        let (id, number) = issuance::submit(pool, owner, &sel)
            .await
            .map_err(|e| anyhow::anyhow!("demo request {from}–{to}: {e}"))?;
        let decision = match decision {
            Some(Decision::ApproveReduced { reason, .. }) => {
                let gross: i64 =
                    sqlx::query_scalar("SELECT gross_kg FROM credit_requests WHERE id = $1")
                        .bind(id)
                        .fetch_one(pool)
                        .await?;
                Some(Decision::ApproveReduced {
                    gross_kg: (gross * 9 / 10).max(1),
                    reason,
                })
            }
            other => other,
        };
        if let Some(decision) = decision {
            issuance::decide(pool, cva, id, decision)
                .await
                .map_err(|e| anyhow::anyhow!("demo decision on {number}: {e}"))?;
        }
    }
    wallet::retire(
        pool,
        owner,
        "25",
        "Saigon Green Café",
        "Offsetting the café's delivery scooters, Q1",
    )
    .await
    .map_err(|e| anyhow::anyhow!("demo retirement: {e}"))?;
    tracing::info!("demo credit requests, issuance and a retirement created");
    Ok(())
}

struct DemoVehicle {
    make: &'static str,
    model: &'static str,
    year: &'static str,
    vin: &'static str,
    plate: &'static str,
    battery_kwh: &'static str,
    efficiency: &'static str,
    /// Whether the car reports the energy of each trip (otherwise it is estimated).
    measured: bool,
    /// Typical one-way commute, km.
    commute_km: u32,
}

const VEHICLES: [DemoVehicle; 2] = [
    DemoVehicle {
        make: "VinFast",
        model: "VF 8",
        year: "2024",
        vin: "RLLV8ANA2PV000123",
        plate: "51K-246.80",
        battery_kwh: "87.7",
        efficiency: "18.5",
        measured: true,
        commute_km: 14,
    },
    DemoVehicle {
        make: "Hyundai",
        model: "Ioniq 5",
        year: "2022",
        vin: "KMHKM81A6NU012345",
        plate: "51H-135.79",
        battery_kwh: "72.6",
        efficiency: "16.8",
        measured: false,
        commute_km: 22,
    },
];

async fn seed_ev_data(pool: &PgPool) -> anyhow::Result<()> {
    let owner: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'owner@evcx.demo'")
            .fetch_optional(pool)
            .await?;
    let Some(owner) = owner else { return Ok(()) };
    let has_vehicles: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM vehicles WHERE owner_id = $1)")
            .bind(owner)
            .fetch_one(pool)
            .await?;
    if has_vehicles {
        return Ok(());
    }
    let today = Utc::now().date_naive();
    for (i, v) in VEHICLES.iter().enumerate() {
        let input = VehicleInput {
            make: v.make.into(),
            model: v.model.into(),
            year: v.year.into(),
            vin: v.vin.into(),
            plate: v.plate.into(),
            battery_kwh: v.battery_kwh.into(),
            efficiency_kwh_per_100km: v.efficiency.into(),
            grid_region: "VN".into(),
            time_zone: "Asia/Ho_Chi_Minh".into(),
        };
        let vehicle = vehicles::register(pool, owner, input)
            .await
            .map_err(|e| anyhow::anyhow!("demo vehicle: {e}"))?;
        let mut rng = Lcg(0x5eed_0000 + i as u64);
        let trips = year_of_trips(v, today, &mut rng);
        let body = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(trips))]);
        import::import(
            pool,
            owner,
            vehicle.id,
            Kind::Trips,
            "demo-trips-last-12-months.csv",
            body,
        )
        .await
        .map_err(|e| anyhow::anyhow!("demo trips: {e}"))?;
        let sessions = year_of_charging(i, today, &mut rng);
        let body = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(sessions))]);
        import::import(
            pool,
            owner,
            vehicle.id,
            Kind::Charging,
            "demo-charging-sessions.csv",
            body,
        )
        .await
        .map_err(|e| anyhow::anyhow!("demo charging: {e}"))?;
    }
    tracing::info!("demo vehicles, trips and charging sessions created");
    Ok(())
}

/// A small deterministic generator: the demo is the same on every machine.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u32) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % u64::from(below.max(1))) as u32
    }
}

/// Weekday commutes, errands and some weekend trips over the last 365 days, local times.
fn year_of_trips(v: &DemoVehicle, today: NaiveDate, rng: &mut Lcg) -> String {
    let mut csv = String::from("start_time,end_time,distance_km,energy_kwh,notes\n");
    for back in (1..=365).rev() {
        let day = today - Duration::days(back);
        let weekday = chrono::Datelike::weekday(&day).num_days_from_monday();
        let mut trips: Vec<(u32, u32, u32, &str)> = Vec::new(); // (start minute, minutes, metres, note)
        if weekday < 5 {
            let km = v.commute_km * 1000 + rng.next(3000);
            trips.push((7 * 60 + 20 + rng.next(40), 25 + rng.next(20), km, "commute"));
            trips.push((
                17 * 60 + 30 + rng.next(60),
                30 + rng.next(25),
                km + rng.next(1500),
                "commute",
            ));
            if rng.next(3) == 0 {
                trips.push((
                    20 * 60 + rng.next(60),
                    10 + rng.next(15),
                    3000 + rng.next(6000),
                    "errand",
                ));
            }
        } else if rng.next(4) != 0 {
            let km = 30_000 + rng.next(90_000);
            let minutes = km / 1000 + 20 + rng.next(30);
            trips.push((9 * 60 + rng.next(90), minutes, km, "weekend trip"));
            trips.push((16 * 60 + rng.next(90), minutes, km, "weekend trip"));
        }
        for (start, minutes, metres, note) in trips {
            let km = f_km(metres);
            let energy = if v.measured {
                // 15–21 kWh/100 km depending on the day.
                let per_100 = 150 + rng.next(60);
                let wh = u64::from(metres) * u64::from(per_100) / 1000;
                format!("{}.{:03}", wh / 1000, wh % 1000)
            } else {
                String::new()
            };
            let _ = writeln!(
                csv,
                "{day}T{:02}:{:02}:00+07:00,{day}T{:02}:{:02}:00+07:00,{km},{energy},{note}",
                start / 60,
                start % 60,
                (start + minutes) / 60,
                (start + minutes) % 60
            );
        }
    }
    csv
}

/// Home charging about every third night.
fn year_of_charging(vehicle: usize, today: NaiveDate, rng: &mut Lcg) -> String {
    let mut csv = String::from("session_id,charger_id,start_time,end_time,energy_kwh\n");
    let mut back = 364;
    while back >= 2 {
        let day = today - Duration::days(back);
        let kwh = 18 + rng.next(30);
        let tenths = rng.next(10);
        let _ = writeln!(
            csv,
            "DEMO-{vehicle}-{day},HOME-WALLBOX-{vehicle},{day}T22:{:02}:00+07:00,{}T05:{:02}:00+07:00,{kwh}.{tenths}",
            rng.next(50),
            day + Duration::days(1),
            rng.next(50)
        );
        back -= 3;
    }
    csv
}

fn f_km(metres: u32) -> String {
    format!("{}.{:03}", metres / 1000, metres % 1000)
}
