//! Demo data for `make run`: one account per role, and for the demo owner two vehicles with a
//! year of trips and charging sessions, loaded through the real import path; verified credits;
//! a marketplace with open listings from three sellers and half a year of trades. Everything
//! goes through the real services. Idempotent.

use app::server::demo::ACCOUNTS;
use app::server::services::accounts::{self, NewAccount};
use app::server::services::import::{self, Kind};
use app::server::services::vehicles::{self, VehicleInput};
use bytes::Bytes;
use chrono::{Duration, NaiveDate, Utc};
use sqlx::PgPool;
use std::fmt::Write;
use uuid::Uuid;

pub async fn seed(pool: &PgPool, config: &crate::config::Config) -> anyhow::Result<()> {
    let public_url = config.public_url.as_str();
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
    // The demo's owners and buyers have had their identity checked (withdrawals need it).
    sqlx::query(
        "UPDATE users SET kyc_verified_at = now() WHERE kyc_verified_at IS NULL AND role IN ('ev_owner', 'buyer')
           AND email = ANY($1)",
    )
    .bind(ACCOUNTS.iter().map(|a| a.email).collect::<Vec<_>>())
    .execute(pool)
    .await?;
    seed_ev_data(pool).await?;
    seed_issuance(pool).await?;
    let state = app::server::AppState {
        pool: pool.clone(),
        config: std::sync::Arc::new(config.app_config()),
        leptos_options: config.leptos.clone(),
        live: Default::default(),
        bids: Default::default(),
        purchases: Default::default(),
    };
    seed_market(&state, public_url).await?;
    seed_auctions(&state).await
}

/// Live auctions, on every start: one ending a few minutes from now with bids on it (reserve
/// met, buy-now still offered), and one running for days with a single bid — each created only
/// when no such auction is running, so restarting the demo always shows one about to end.
async fn seed_auctions(state: &app::server::AppState) -> anyhow::Result<()> {
    use app::server::services::{auctions, listings};
    let pool = &state.pool;
    let ids: Option<(Uuid, Uuid, Uuid, Uuid)> = sqlx::query_as(
        "SELECT f.id, d.id, b.id, r.id FROM users f, users d, users b, users r
         WHERE f.email = 'fleet@evcx.demo' AND d.email = 'driver@evcx.demo'
           AND b.email = 'buyer@evcx.demo' AND r.email = 'roaster@evcx.demo'",
    )
    .fetch_optional(pool)
    .await?;
    let Some((fleet, driver, buyer, roaster)) = ids else {
        return Ok(());
    };
    // (seller, minutes, terms, bids as (bidder, maximum))
    let plans = [
        (
            fleet,
            8,
            ("150000", "180000", "400000"),
            vec![(buyer, "170000"), (roaster, "190000"), (buyer, "200000")],
        ),
        (
            driver,
            3 * 24 * 60,
            ("120000", "", ""),
            vec![(roaster, "125000")],
        ),
    ];
    for (seller, minutes, (start, reserve, buy_now), bids) in plans {
        let running: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM auctions a JOIN listings l ON l.id = a.listing_id
                            WHERE l.seller_id = $1 AND a.closed_at IS NULL AND a.ends_at > now() + interval '2 minutes')",
        )
        .bind(seller)
        .fetch_one(pool)
        .await?;
        if running {
            continue;
        }
        let Some(class) = listings::classes(pool, seller)
            .await?
            .into_iter()
            .max_by_key(|c| c.available_kg)
        else {
            continue;
        };
        // A tenth of what is left, at most a tonne.
        let kg = (class.available_kg / 10).min(1_000);
        if kg < 10 {
            continue;
        }
        let quantity = rust_decimal::Decimal::new(kg, 3).normalize().to_string();
        let number = auctions::create(
            pool,
            &state.config.payments.currency,
            seller,
            auctions::NewAuction {
                class: &format!("{}:{}", class.region, class.vintage),
                quantity: &quantity,
                starting_price: start,
                reserve,
                increment: "",
                buy_now,
                duration_minutes: &minutes.to_string(),
                description: "A whole lot of verified credits from this year's driving, sold by live auction.",
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("demo auction: {e}"))?;
        for (bidder, max) in bids {
            auctions::bid(state, bidder, &number, max, false, None)
                .await
                .map_err(|e| anyhow::anyhow!("demo bid on {number}: {e}"))?;
        }
        tracing::info!(auction = %number, minutes, "demo auction running");
    }
    Ok(())
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
    let retirement = wallet::RetireRequest {
        quantity_kg: "25",
        beneficiary: "Saigon Green Café",
        reason: "Offsetting the café's delivery scooters, Q1",
        idempotency_key: "demo-owner-retirement",
        show_holder: true,
    };
    wallet::retire(pool, owner, retirement)
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
            Default::default(),
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
            Default::default(),
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

/// Two more sellers (a scooter fleet and a ride-hailing driver), each with a vehicle, a year of
/// trips and one verified request.
const SELLERS: [(&str, &str, DemoVehicle); 2] = [
    (
        "fleet@evcx.demo",
        "Xanh Scooter Fleet Co.",
        DemoVehicle {
            make: "VinFast",
            model: "Feliz S",
            year: "2023",
            vin: "RLLVFSA13PV000777",
            plate: "29H1-555.22",
            battery_kwh: "3.5",
            efficiency: "3.2",
            measured: true,
            commute_km: 30,
        },
    ),
    (
        "driver@evcx.demo",
        "Lê Hoàng Nam",
        DemoVehicle {
            make: "Kia",
            model: "EV6",
            year: "2022",
            vin: "KNDJ23AU9N7123456",
            plate: "30K-888.99",
            battery_kwh: "77.4",
            efficiency: "17.2",
            measured: false,
            commute_km: 45,
        },
    ),
];

/// The marketplace: listings from the demo owner and two more sellers, a second buyer, and
/// trades over the last 26 weeks so the price history has a shape. The purchases are real;
/// only their dates are moved into the past (demo only, with triggers off for that one
/// transaction), since a demo cannot wait half a year.
async fn seed_market(state: &app::server::AppState, public_url: &str) -> anyhow::Result<()> {
    use app::server::ledger::{self, AccountKind, Asset, Leg, Transfer};
    use app::server::services::issuance::{self, Decision, Selection};
    use app::server::services::{listings, orders};
    use chrono::Datelike;
    let pool = &state.pool;
    let has_listings: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM listings)")
        .fetch_one(pool)
        .await?;
    let ids: Option<(Uuid, Uuid, Uuid)> = sqlx::query_as(
        "SELECT o.id, c.id, b.id FROM users o, users c, users b
         WHERE o.email = 'owner@evcx.demo' AND c.email = 'cva@evcx.demo' AND b.email = 'buyer@evcx.demo'",
    )
    .fetch_optional(pool)
    .await?;
    let (Some((owner, cva, buyer)), false) = (ids, has_listings) else {
        return Ok(());
    };
    let today = Utc::now().date_naive();
    let mut sellers = vec![owner];
    for (n, (email, name, v)) in SELLERS.iter().enumerate() {
        let input = NewAccount {
            email: (*email).into(),
            full_name: (*name).into(),
            phone: "+84909000000".into(),
            role: app::domain::user::Role::EvOwner,
            password: Some("green-miles-2026".into()),
        };
        let seller = accounts::create_account(pool, public_url, None, input)
            .await
            .map_err(|e| anyhow::anyhow!("seeding {email}: {e}"))?
            .id;
        let vehicle = vehicles::register(
            pool,
            seller,
            VehicleInput {
                make: v.make.into(),
                model: v.model.into(),
                year: v.year.into(),
                vin: v.vin.into(),
                plate: v.plate.into(),
                battery_kwh: v.battery_kwh.into(),
                efficiency_kwh_per_100km: v.efficiency.into(),
                grid_region: "VN".into(),
                time_zone: "Asia/Ho_Chi_Minh".into(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("demo vehicle: {e}"))?;
        let mut rng = Lcg(0x5e11_0000 + n as u64);
        let trips = year_of_trips(v, today, &mut rng);
        let body = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(trips))]);
        import::import(
            pool,
            seller,
            vehicle.id,
            Kind::Trips,
            "fleet-sync.csv",
            Default::default(),
            body,
        )
        .await
        .map_err(|e| anyhow::anyhow!("demo trips: {e}"))?;
        // One request over this calendar year's months so far (the vintage is one year).
        let from = NaiveDate::from_ymd_opt(today.year(), 1, 1).expect("1 January");
        let to = today - Duration::days(2);
        let (request, _) = issuance::submit(
            pool,
            seller,
            &Selection {
                vehicle: Some(vehicle.id),
                from: from.max(today - Duration::days(300)),
                to,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("demo request of {email}: {e}"))?;
        issuance::decide(pool, cva, request, Decision::Approve)
            .await
            .map_err(|e| anyhow::anyhow!("demo approval: {e}"))?;
        sellers.push(seller);
    }

    // A second buyer, and money for both (as a gateway payment lands: from gateway clearing).
    let roaster = accounts::create_account(
        pool,
        public_url,
        None,
        NewAccount {
            email: "roaster@evcx.demo".into(),
            full_name: "Saigon Coffee Roasters".into(),
            phone: "+84283334444".into(),
            role: app::domain::user::Role::Buyer,
            password: Some("offset-today-2026".into()),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("seeding the second buyer: {e}"))?
    .id;
    for (who, amount) in [(buyer, 5_000_000), (roaster, 3_000_000)] {
        let mut tx = pool.begin().await?;
        let clearing =
            ledger::platform_account(&mut tx, Asset::Money, AccountKind::GatewayClearing).await?;
        let wallet =
            ledger::user_account(&mut tx, who, Asset::Money, AccountKind::Available).await?;
        let amount = rust_decimal::Decimal::from(amount);
        ledger::transfer(
            &mut tx,
            Transfer {
                kind: "top_up",
                legs: vec![Leg::new(clearing, -amount), Leg::new(wallet, amount)],
                memo: "demo top-up".into(),
                actor: Some(who),
                ..Transfer::default()
            },
        )
        .await?;
        tx.commit().await?;
    }

    // Each seller lists what they hold in a few listings at different prices.
    let prices = [
        ["210000", "245000", "280000"],
        ["185000", "199000", "230000"],
        ["260000", "275000", "320000"],
    ];
    let mut open = Vec::new();
    let in_three_weeks = (today + Duration::days(21)).format("%Y-%m-%d").to_string();
    for (i, seller) in sellers.iter().enumerate() {
        let classes = listings::classes(pool, *seller).await?;
        for c in classes {
            let part = c.available_kg / 4;
            if part < 10 {
                continue;
            }
            for (k, price) in prices[i % 3].iter().enumerate() {
                let quantity = format!("{}", rust_decimal::Decimal::new(part, 3).normalize());
                let number = listings::create(
                    pool,
                    &state.config.payments.currency,
                    *seller,
                    listings::NewListing {
                        class: &format!("{}:{}", c.region, c.vintage),
                        quantity: &quantity,
                        price,
                        min_lot: if k == 2 { "0.010" } else { "0.001" },
                        description: [
                            "Verified credits from daily commuting in Hồ Chí Minh City, every trip on record.",
                            "Delivery scooter fleet, charged overnight; metered energy per trip.",
                            "Ride-hailing driver, long daily distances; estimated energy, verified by a CVA.",
                        ][i % 3],
                        // One listing of each seller ends in three weeks.
                        expires_on: if k == 1 { &in_three_weeks } else { "" },
                        // The demo's prices are chosen, whatever the suggestion says.
                        confirm_price: true,
                    },
                )
                .await
                .map_err(|e| anyhow::anyhow!("demo listing: {e}"))?;
                open.push((number, part, *price));
            }
        }
    }

    // Half a year of trades: small purchases from the open listings, dated back week by week.
    let mut traded: Vec<(String, i64)> = Vec::new();
    let mut left: Vec<i64> = open.iter().map(|(_, part, _)| *part).collect();
    for week in 0..24i64 {
        if open.is_empty() {
            break;
        }
        let at = (week as usize * 5) % open.len();
        // Ten to twenty kilograms (the largest minimum lot is 10 kg), while the listing lasts.
        let kg = (open[at].1 / 12).clamp(10, 20);
        if left[at] < kg + 10 {
            continue;
        }
        left[at] -= kg;
        let listing = open[at].0.clone();
        let who = if week % 3 == 0 { roaster } else { buyer };
        let purchase = orders::buy(
            state,
            who,
            orders::BuyInput {
                listing: &listing,
                quantity: &format!("{}", rust_decimal::Decimal::new(kg, 3).normalize()),
                expected_price: open[at].2,
                idempotency_key: &format!("demo-history-{week:02}"),
                checkout: false,
                retire: week % 4 == 1,
                beneficiary: "Green Logistics JSC staff travel",
                reason: "Quarterly offset of business travel",
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("demo trade {week}: {e}"))?;
        traded.push((purchase.order, 24 - week));
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await?;
    for (order, weeks_ago) in &traded {
        sqlx::query(
            "WITH o AS (
                 UPDATE orders SET created_at = created_at - make_interval(weeks => $2::int),
                        completed_at = completed_at - make_interval(weeks => $2::int),
                        closed_at = closed_at - make_interval(weeks => $2::int)
                 WHERE number = $1 RETURNING transfer_id, retirement_id)
             UPDATE ledger_transfers t SET created_at = t.created_at - make_interval(weeks => $2::int)
             FROM o WHERE t.id = o.transfer_id",
        )
        .bind(order)
        .bind(*weeks_ago as i32)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE retirements r SET retired_at = o.completed_at FROM orders o
             WHERE o.number = $1 AND r.id = o.retirement_id",
        )
        .bind(order)
        .execute(&mut *tx)
        .await?;
        // Its notifications happened then too; the seller read those older than two weeks.
        sqlx::query(
            "UPDATE notifications SET created_at = created_at - make_interval(weeks => $2::int),
                    read_at = CASE WHEN $2::int > 2 THEN now() END
             WHERE link = '/orders/' || $1",
        )
        .bind(order)
        .bind(*weeks_ago as i32)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    // One open dispute in the admin's queue: the demo buyer questions their latest purchase
    // (a week old, inside the dispute window).
    let latest: Option<String> = sqlx::query_scalar(
        "SELECT number FROM orders WHERE buyer_id = $1 AND status = 'completed' ORDER BY completed_at DESC LIMIT 1",
    )
    .bind(buyer)
    .fetch_optional(pool)
    .await?;
    if let Some(order) = latest {
        if let Err(e) = app::server::services::disputes::open(
            pool,
            buyer,
            &order,
            "The listing promised metered energy per trip, but the issuance evidence shows estimated energy.",
        )
        .await
        {
            tracing::warn!(error = %e, "demo dispute not opened");
        }
    }
    tracing::info!(
        listings = open.len(),
        trades = traded.len(),
        "demo marketplace created"
    );
    Ok(())
}
