//! The owner's CO₂ dashboard: per-day aggregates (kept with every change to trips) summed by
//! day, month or year, so it stays fast with millions of trips.

use crate::domain::period::Grain;
use crate::error::AppError;
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub trips: i64,
    pub distance_km: Decimal,
    pub energy_kwh: Decimal,
    pub avoided_kg: Decimal,
}

/// Buckets of the chosen grain (empty ones included, oldest first) and the all-time totals.
/// One scan of the per-day aggregates grouped by calendar month gives the totals, the month
/// and the year buckets; the day view reads its 30 days on top.
pub async fn series(
    pool: &PgPool,
    owner: Uuid,
    vehicle: Option<Uuid>,
    grain: Grain,
    today: NaiveDate,
) -> Result<(Vec<(NaiveDate, Figures)>, Figures), AppError> {
    type Row = (
        NaiveDate,
        i64,
        Option<Decimal>,
        Option<Decimal>,
        Option<Decimal>,
    );
    let figures = |r: &Row| Figures {
        trips: r.1,
        distance_km: r.2.unwrap_or_default(),
        energy_kwh: r.3.unwrap_or_default(),
        avoided_kg: r.4.unwrap_or_default(),
    };
    let months: Vec<Row> = sqlx::query_as(
        "SELECT date_trunc('month', d.day::timestamp)::date, sum(d.trips)::bigint, sum(d.distance_km),
                sum(d.energy_kwh), sum(d.avoided_kg)
         FROM trip_days d JOIN vehicles v ON v.id = d.vehicle_id
         WHERE v.owner_id = $1 AND ($2::uuid IS NULL OR v.id = $2)
         GROUP BY 1",
    )
    .bind(owner)
    .bind(vehicle)
    .fetch_all(pool)
    .await?;
    let mut totals = Figures::default();
    for m in &months {
        totals.add(&figures(m));
    }
    let first_year = months.iter().map(|m| m.0.year()).min();
    let buckets = grain.buckets(today, first_year);
    let mut by_start: HashMap<NaiveDate, Figures> = HashMap::new();
    if grain == Grain::Day {
        let days: Vec<Row> = sqlx::query_as(
            "SELECT d.day, sum(d.trips)::bigint, sum(d.distance_km), sum(d.energy_kwh), sum(d.avoided_kg)
             FROM trip_days d JOIN vehicles v ON v.id = d.vehicle_id
             WHERE v.owner_id = $1 AND ($2::uuid IS NULL OR v.id = $2) AND d.day >= $3 AND d.day <= $4
             GROUP BY 1",
        )
        .bind(owner)
        .bind(vehicle)
        .bind(buckets[0])
        .bind(today)
        .fetch_all(pool)
        .await?;
        for d in &days {
            by_start.insert(d.0, figures(d));
        }
    } else {
        for m in &months {
            by_start
                .entry(grain.bucket_start(m.0))
                .or_default()
                .add(&figures(m));
        }
    }
    let series = buckets
        .into_iter()
        .map(|b| (b, by_start.remove(&b).unwrap_or_default()))
        .collect();
    Ok((series, totals))
}

impl Figures {
    fn add(&mut self, other: &Figures) {
        self.trips += other.trips;
        self.distance_km += other.distance_km;
        self.energy_kwh += other.energy_kwh;
        self.avoided_kg += other.avoided_kg;
    }
}
