//! An owner's imported charging sessions: the metered energy ENERGY-2025 prefers.

use crate::error::AppError;
use crate::server::services::trips::Filter;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

pub const PAGE_SIZE: i64 = 50;

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub id: i64,
    pub vehicle_id: Uuid,
    pub plate: String,
    pub time_zone: String,
    pub session_id: String,
    pub charger_id: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub energy_kwh: Decimal,
    pub claimed: bool,
}

/// One page of the owner's sessions, newest first, with how many match and their kWh.
/// Dates are the vehicle's local dates.
pub async fn list(
    pool: &PgPool,
    owner: Uuid,
    f: &Filter,
) -> Result<(Vec<SessionRow>, i64, Decimal), AppError> {
    let filter = "v.owner_id = $1 AND ($2::uuid IS NULL OR c.vehicle_id = $2)
        AND ($3::date IS NULL OR c.start_time >= ($3::date::timestamp AT TIME ZONE v.time_zone))
        AND ($4::date IS NULL OR c.start_time < (($4::date + 1)::timestamp AT TIME ZONE v.time_zone))";
    let rows = sqlx::query_as::<_, SessionRow>(&format!(
        "SELECT c.id, c.vehicle_id, v.plate, v.time_zone, c.session_id, c.charger_id, c.start_time, c.end_time,
                c.energy_kwh, c.claim_id IS NOT NULL AS claimed
         FROM charging_sessions c JOIN vehicles v ON v.id = c.vehicle_id
         WHERE {filter} ORDER BY c.start_time DESC, c.id DESC LIMIT $5 OFFSET $6"
    ))
    .bind(owner)
    .bind(f.vehicle)
    .bind(f.from)
    .bind(f.to)
    .bind(PAGE_SIZE)
    .bind((f.page.max(1) - 1) * PAGE_SIZE)
    .fetch_all(pool)
    .await?;
    let (total, kwh): (i64, Option<Decimal>) = sqlx::query_as(&format!(
        "SELECT count(*), sum(c.energy_kwh) FROM charging_sessions c JOIN vehicles v ON v.id = c.vehicle_id WHERE {filter}"
    ))
    .bind(owner)
    .bind(f.vehicle)
    .bind(f.from)
    .bind(f.to)
    .fetch_one(pool)
    .await?;
    Ok((rows, total, kwh.unwrap_or_default()))
}
