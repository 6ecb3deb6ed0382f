//! Queries on `vehicles`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

pub const VIN_TAKEN: &str = "vehicles_vin_key";

#[derive(Debug, Clone, FromRow)]
pub struct VehicleRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub make: String,
    pub model: String,
    pub year: i32,
    pub vin: String,
    pub plate: String,
    pub battery_kwh: Decimal,
    pub efficiency_kwh_per_100km: Decimal,
    pub grid_region: String,
    pub time_zone: String,
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Validated fields of a vehicle.
pub struct VehicleFields {
    pub make: String,
    pub model: String,
    pub year: i32,
    pub vin: String,
    pub plate: String,
    pub battery_kwh: Decimal,
    pub efficiency_kwh_per_100km: Decimal,
    pub grid_region: String,
    pub time_zone: String,
}

pub async fn insert(
    conn: &mut PgConnection,
    owner: Uuid,
    f: &VehicleFields,
) -> Result<VehicleRow, sqlx::Error> {
    sqlx::query_as::<_, VehicleRow>(
        "INSERT INTO vehicles (id, owner_id, make, model, year, vin, plate, battery_kwh,
                               efficiency_kwh_per_100km, grid_region, time_zone)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *",
    )
    .bind(Uuid::new_v4())
    .bind(owner)
    .bind(&f.make)
    .bind(&f.model)
    .bind(f.year)
    .bind(&f.vin)
    .bind(&f.plate)
    .bind(f.battery_kwh)
    .bind(f.efficiency_kwh_per_100km)
    .bind(&f.grid_region)
    .bind(&f.time_zone)
    .fetch_one(conn)
    .await
}

pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    f: &VehicleFields,
) -> Result<VehicleRow, sqlx::Error> {
    sqlx::query_as::<_, VehicleRow>(
        "UPDATE vehicles SET make = $2, model = $3, year = $4, vin = $5, plate = $6, battery_kwh = $7,
                efficiency_kwh_per_100km = $8, grid_region = $9, time_zone = $10, updated_at = now()
         WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(&f.make)
    .bind(&f.model)
    .bind(f.year)
    .bind(&f.vin)
    .bind(&f.plate)
    .bind(f.battery_kwh)
    .bind(f.efficiency_kwh_per_100km)
    .bind(&f.grid_region)
    .bind(&f.time_zone)
    .fetch_one(conn)
    .await
}

/// The owner's vehicle, locked for the rest of the transaction (imports and edits of one
/// vehicle's trips run one at a time).
pub async fn owned_for_update(
    conn: &mut PgConnection,
    owner: Uuid,
    id: Uuid,
) -> Result<Option<VehicleRow>, sqlx::Error> {
    sqlx::query_as::<_, VehicleRow>(
        "SELECT * FROM vehicles WHERE id = $1 AND owner_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(conn)
    .await
}

pub async fn owned<'e>(
    conn: impl sqlx::PgExecutor<'e>,
    owner: Uuid,
    id: Uuid,
) -> Result<Option<VehicleRow>, sqlx::Error> {
    sqlx::query_as::<_, VehicleRow>("SELECT * FROM vehicles WHERE id = $1 AND owner_id = $2")
        .bind(id)
        .bind(owner)
        .fetch_optional(conn)
        .await
}

pub async fn list(
    pool: &PgPool,
    owner: Uuid,
    include_archived: bool,
) -> Result<Vec<VehicleRow>, sqlx::Error> {
    sqlx::query_as::<_, VehicleRow>(
        "SELECT * FROM vehicles WHERE owner_id = $1 AND ($2 OR archived_at IS NULL) ORDER BY archived_at NULLS FIRST, created_at",
    )
    .bind(owner)
    .bind(include_archived)
    .fetch_all(pool)
    .await
}

pub async fn set_archived(
    conn: &mut PgConnection,
    id: Uuid,
    archived: bool,
) -> Result<VehicleRow, sqlx::Error> {
    sqlx::query_as::<_, VehicleRow>(
        "UPDATE vehicles SET archived_at = CASE WHEN $2 THEN now() ELSE NULL END, updated_at = now()
         WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(archived)
    .fetch_one(conn)
    .await
}
