//! An owner's vehicles: register, edit, archive. An owner only ever sees their own.

use crate::domain::vehicle::{self, Vin};
use crate::error::{AppError, FieldErrors};
use crate::server::audit::{self, AuditEntry};
use crate::server::db::vehicles::{self as db, VehicleFields, VehicleRow, VIN_TAKEN};
use crate::server::db::violated_constraint;
use crate::server::services::methodology;
use chrono::Datelike;
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// Raw vehicle form input.
pub struct VehicleInput {
    pub make: String,
    pub model: String,
    pub year: String,
    pub vin: String,
    pub plate: String,
    pub battery_kwh: String,
    pub efficiency_kwh_per_100km: String,
    pub grid_region: String,
    pub time_zone: String,
}

async fn parse(pool: &PgPool, input: &VehicleInput) -> Result<VehicleFields, AppError> {
    let mut e = FieldErrors::new();
    let make = e.check("make", vehicle::parse_name(&input.make, "make"));
    let model = e.check("model", vehicle::parse_name(&input.model, "model"));
    let year = e.check(
        "year",
        vehicle::parse_year(&input.year, chrono::Utc::now().year()),
    );
    let vin = e.check("vin", Vin::parse(&input.vin, year));
    let plate = e.check("plate", vehicle::parse_plate(&input.plate));
    let battery = e.check(
        "battery_kwh",
        vehicle::parse_positive(
            &input.battery_kwh,
            "battery capacity",
            "kWh",
            Decimal::from(500),
        ),
    );
    let efficiency = e.check(
        "efficiency_kwh_per_100km",
        vehicle::parse_positive(
            &input.efficiency_kwh_per_100km,
            "efficiency",
            "kWh/100 km",
            Decimal::from(100),
        ),
    );
    let regions = methodology::grid_regions(pool).await?;
    let region = e.check(
        "grid_region",
        vehicle::parse_region(&input.grid_region).and_then(|r| {
            if regions.contains(&r) {
                Ok(r)
            } else {
                Err(format!(
                    "There is no grid emission factor for {r} yet; choose one of {}.",
                    regions.join(", ")
                ))
            }
        }),
    );
    let zone = input.time_zone.trim();
    let time_zone = e.check(
        "time_zone",
        zone.parse::<chrono_tz::Tz>()
            .map(|tz| tz.name().to_owned())
            .map_err(|_| format!("“{zone}” is not a time zone; use a name like Asia/Ho_Chi_Minh.")),
    );
    e.finish()?;
    Ok(VehicleFields {
        make: make.unwrap(),
        model: model.unwrap(),
        year: year.unwrap(),
        vin: vin.unwrap().as_str().to_owned(),
        plate: plate.unwrap(),
        battery_kwh: battery.unwrap(),
        efficiency_kwh_per_100km: efficiency.unwrap(),
        grid_region: region.unwrap(),
        time_zone: time_zone.unwrap(),
    })
}

fn vin_conflict(e: sqlx::Error) -> AppError {
    match violated_constraint(&e) {
        Some(VIN_TAKEN) => AppError::invalid(
            "vin",
            "A vehicle with this VIN is already registered on the platform.",
        ),
        _ => e.into(),
    }
}

fn snapshot(v: &VehicleRow) -> serde_json::Value {
    json!({
        "make": v.make, "model": v.model, "year": v.year, "vin": v.vin, "plate": v.plate,
        "battery_kwh": v.battery_kwh, "efficiency_kwh_per_100km": v.efficiency_kwh_per_100km,
        "grid_region": v.grid_region, "time_zone": v.time_zone, "archived": v.archived_at.is_some(),
    })
}

#[tracing::instrument(skip(pool, input), err(level = "info"))]
pub async fn register(
    pool: &PgPool,
    owner: Uuid,
    input: VehicleInput,
) -> Result<VehicleRow, AppError> {
    let fields = parse(pool, &input).await?;
    let mut tx = pool.begin().await?;
    let row = db::insert(&mut tx, owner, &fields)
        .await
        .map_err(vin_conflict)?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(owner),
            action: "vehicle.register",
            entity: "vehicle",
            entity_id: row.id.to_string(),
            before: None,
            after: Some(snapshot(&row)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

#[tracing::instrument(skip(pool, input), err(level = "info"))]
pub async fn update(
    pool: &PgPool,
    owner: Uuid,
    id: Uuid,
    input: VehicleInput,
) -> Result<VehicleRow, AppError> {
    let fields = parse(pool, &input).await?;
    let mut tx = pool.begin().await?;
    let before = db::owned_for_update(&mut tx, owner, id)
        .await?
        .ok_or_else(|| AppError::not_found("The vehicle"))?;
    let after = db::update(&mut tx, id, &fields)
        .await
        .map_err(vin_conflict)?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(owner),
            action: "vehicle.update",
            entity: "vehicle",
            entity_id: id.to_string(),
            before: Some(snapshot(&before)),
            after: Some(snapshot(&after)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn set_archived(
    pool: &PgPool,
    owner: Uuid,
    id: Uuid,
    archived: bool,
) -> Result<VehicleRow, AppError> {
    let mut tx = pool.begin().await?;
    let before = db::owned_for_update(&mut tx, owner, id)
        .await?
        .ok_or_else(|| AppError::not_found("The vehicle"))?;
    if before.archived_at.is_some() == archived {
        return Ok(before);
    }
    let after = db::set_archived(&mut tx, id, archived).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(owner),
            action: if archived {
                "vehicle.archive"
            } else {
                "vehicle.restore"
            },
            entity: "vehicle",
            entity_id: id.to_string(),
            before: Some(snapshot(&before)),
            after: Some(snapshot(&after)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

pub async fn list(
    pool: &PgPool,
    owner: Uuid,
    include_archived: bool,
) -> Result<Vec<VehicleRow>, AppError> {
    Ok(db::list(pool, owner, include_archived).await?)
}

pub async fn get(pool: &PgPool, owner: Uuid, id: Uuid) -> Result<VehicleRow, AppError> {
    db::owned(pool, owner, id)
        .await?
        .ok_or_else(|| AppError::not_found("The vehicle"))
}
