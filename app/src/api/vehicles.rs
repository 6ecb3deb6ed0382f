//! An owner's vehicles (endpoints `/api/vehicles/…`).

use crate::error::AppError;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "ssr")]
use crate::domain::user::Role;
#[cfg(feature = "ssr")]
use crate::server::services::{methodology, vehicles};
#[cfg(feature = "ssr")]
use crate::server::session;

#[cfg(feature = "ssr")]
const OWNER: &[Role] = &[Role::EvOwner];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vehicle {
    pub id: Uuid,
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
}

impl Vehicle {
    pub fn label(&self) -> String {
        format!(
            "{} {} {} ({})",
            self.year, self.make, self.model, self.plate
        )
    }
}

#[cfg(feature = "ssr")]
impl From<crate::server::db::vehicles::VehicleRow> for Vehicle {
    fn from(r: crate::server::db::vehicles::VehicleRow) -> Self {
        Vehicle {
            id: r.id,
            make: r.make,
            model: r.model,
            year: r.year,
            vin: r.vin,
            plate: r.plate,
            battery_kwh: r.battery_kwh.normalize(),
            efficiency_kwh_per_100km: r.efficiency_kwh_per_100km.normalize(),
            grid_region: r.grid_region,
            time_zone: r.time_zone,
            archived_at: r.archived_at,
            created_at: r.created_at,
        }
    }
}

/// Choices for the vehicle form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehicleChoices {
    pub grid_regions: Vec<String>,
    pub time_zones: Vec<String>,
}

/// The caller's vehicles, active first; archived ones too when `archived` is "true".
#[server(endpoint = "vehicles")]
pub async fn list_vehicles(archived: Option<String>) -> Result<Vec<Vehicle>, AppError> {
    session::respond(async {
        let (state, caller) = session::require(OWNER).await?;
        let all = archived.as_deref() == Some("true");
        Ok(vehicles::list(&state.pool, caller.id, all)
            .await?
            .into_iter()
            .map(Vehicle::from)
            .collect())
    })
    .await
}

#[server(endpoint = "vehicles/get")]
pub async fn get_vehicle(vehicle_id: String) -> Result<Vehicle, AppError> {
    session::respond(async {
        let (state, caller) = session::require(OWNER).await?;
        let id = super::parse_id("vehicle_id", &vehicle_id)?;
        Ok(vehicles::get(&state.pool, caller.id, id).await?.into())
    })
    .await
}

#[server(endpoint = "vehicles/options")]
pub async fn vehicle_options() -> Result<VehicleChoices, AppError> {
    session::respond(async {
        let (state, _) = session::require(OWNER).await?;
        Ok(VehicleChoices {
            grid_regions: methodology::grid_regions(&state.pool).await?,
            time_zones: chrono_tz::TZ_VARIANTS
                .iter()
                .map(|tz| tz.name().to_owned())
                .collect(),
        })
    })
    .await
}

#[cfg(feature = "ssr")]
#[allow(clippy::too_many_arguments)]
fn input(
    make: String,
    model: String,
    year: String,
    vin: String,
    plate: String,
    battery_kwh: String,
    efficiency_kwh_per_100km: String,
    grid_region: String,
    time_zone: String,
) -> vehicles::VehicleInput {
    vehicles::VehicleInput {
        make,
        model,
        year,
        vin,
        plate,
        battery_kwh,
        efficiency_kwh_per_100km,
        grid_region,
        time_zone,
    }
}

/// Registers a vehicle. The VIN is unique on the whole platform.
#[server(endpoint = "vehicles/register")]
#[allow(clippy::too_many_arguments)]
pub async fn register_vehicle(
    make: String,
    model: String,
    year: String,
    vin: String,
    plate: String,
    battery_kwh: String,
    efficiency_kwh_per_100km: String,
    grid_region: String,
    time_zone: String,
) -> Result<Vehicle, AppError> {
    session::respond(async {
        let (state, caller) = session::require(OWNER).await?;
        let fields = input(
            make,
            model,
            year,
            vin,
            plate,
            battery_kwh,
            efficiency_kwh_per_100km,
            grid_region,
            time_zone,
        );
        let v = vehicles::register(&state.pool, caller.id, fields).await?;
        leptos_axum::redirect("/vehicles");
        Ok(v.into())
    })
    .await
}

#[server(endpoint = "vehicles/update")]
#[allow(clippy::too_many_arguments)]
pub async fn update_vehicle(
    vehicle_id: String,
    make: String,
    model: String,
    year: String,
    vin: String,
    plate: String,
    battery_kwh: String,
    efficiency_kwh_per_100km: String,
    grid_region: String,
    time_zone: String,
) -> Result<Vehicle, AppError> {
    session::respond(async {
        let (state, caller) = session::require(OWNER).await?;
        let id = super::parse_id("vehicle_id", &vehicle_id)?;
        let fields = input(
            make,
            model,
            year,
            vin,
            plate,
            battery_kwh,
            efficiency_kwh_per_100km,
            grid_region,
            time_zone,
        );
        Ok(vehicles::update(&state.pool, caller.id, id, fields)
            .await?
            .into())
    })
    .await
}

/// Archives (`archived` = "true") or restores a vehicle. Its data stays.
#[server(endpoint = "vehicles/archive")]
pub async fn archive_vehicle(vehicle_id: String, archived: String) -> Result<Vehicle, AppError> {
    session::respond(async {
        let (state, caller) = session::require(OWNER).await?;
        let id = super::parse_id("vehicle_id", &vehicle_id)?;
        let archived = match archived.as_str() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(AppError::invalid(
                    "archived",
                    "Say true to archive or false to restore.",
                ))
            }
        };
        Ok(vehicles::set_archived(&state.pool, caller.id, id, archived)
            .await?
            .into())
    })
    .await
}
