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
pub async fn series(
    pool: &PgPool,
    owner: Uuid,
    vehicle: Option<Uuid>,
    grain: Grain,
    today: NaiveDate,
) -> Result<(Vec<(NaiveDate, Figures)>, Figures), AppError> {
    type Row = (
        Option<NaiveDate>,
        Option<i64>,
        Option<Decimal>,
        Option<Decimal>,
        Option<Decimal>,
    );
    let totals: Row = sqlx::query_as(
        "SELECT min(d.day), sum(d.trips)::bigint, sum(d.distance_km), sum(d.energy_kwh), sum(d.avoided_kg)
         FROM trip_days d JOIN vehicles v ON v.id = d.vehicle_id
         WHERE v.owner_id = $1 AND ($2::uuid IS NULL OR v.id = $2)",
    )
    .bind(owner)
    .bind(vehicle)
    .fetch_one(pool)
    .await?;
    let first_year = totals.0.map(|d| d.year());
    let buckets = grain.buckets(today, first_year);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT date_trunc($3, d.day)::date, sum(d.trips)::bigint, sum(d.distance_km), sum(d.energy_kwh), sum(d.avoided_kg)
         FROM trip_days d JOIN vehicles v ON v.id = d.vehicle_id
         WHERE v.owner_id = $1 AND ($2::uuid IS NULL OR v.id = $2) AND d.day >= $4 AND d.day <= $5
         GROUP BY 1",
    )
    .bind(owner)
    .bind(vehicle)
    .bind(grain.as_str())
    .bind(buckets[0])
    .bind(today)
    .fetch_all(pool)
    .await?;
    let figures = |r: &Row| Figures {
        trips: r.1.unwrap_or(0),
        distance_km: r.2.unwrap_or_default(),
        energy_kwh: r.3.unwrap_or_default(),
        avoided_kg: r.4.unwrap_or_default(),
    };
    let mut by_start: HashMap<NaiveDate, Figures> = rows
        .iter()
        .filter_map(|r| r.0.map(|d| (d, figures(r))))
        .collect();
    let series = buckets
        .into_iter()
        .map(|b| (b, by_start.remove(&b).unwrap_or_default()))
        .collect();
    Ok((series, figures(&totals)))
}
