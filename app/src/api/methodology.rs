//! Methodology versions for the admin (endpoints `/api/admin/methodologies…`).

use crate::domain::methodology::Methodology;
use crate::error::AppError;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "ssr")]
use crate::domain::methodology::{EnergyParams, MethodologyCode, Params, SeedParams};
#[cfg(feature = "ssr")]
use crate::domain::user::Role;
#[cfg(feature = "ssr")]
use crate::error::FieldErrors;
#[cfg(feature = "ssr")]
use crate::server::{services::methodology, session};
#[cfg(feature = "ssr")]
use rust_decimal::Decimal;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodologyVersion {
    pub id: Uuid,
    pub methodology: Methodology,
    pub note: String,
    pub created_at: DateTime<Utc>,
    pub active: bool,
}

#[server(endpoint = "admin/methodologies")]
pub async fn list_methodologies() -> Result<Vec<MethodologyVersion>, AppError> {
    session::respond(async {
        let (state, _) = session::require(&[Role::Admin]).await?;
        Ok(methodology::list(&state.pool)
            .await?
            .into_iter()
            .map(|l| MethodologyVersion {
                id: l.id,
                methodology: l.methodology,
                note: l.note,
                created_at: l.created_at,
                active: l.active,
            })
            .collect())
    })
    .await
}

#[cfg(feature = "ssr")]
fn decimal(errors: &mut FieldErrors, field: &str, raw: &str) -> Decimal {
    let value = crate::domain::trip::parse_number(raw, true);
    errors
        .check(
            field,
            value.ok_or_else(|| "Enter a number, like 0.6592.".to_owned()),
        )
        .unwrap_or_default()
}

/// Adds the next version of SEED-2025 or ENERGY-2025. Only the fields of that methodology are
/// read; `grid_factors` holds one `REGION=kg CO₂/kWh` per line.
#[server(endpoint = "admin/methodologies/add")]
#[allow(clippy::too_many_arguments)]
pub async fn add_methodology_version(
    code: String,
    baseline_g_per_km: Option<String>,
    ev_g_per_km: Option<String>,
    baseline_l_per_100km: Option<String>,
    fuel_kg_co2_per_l: Option<String>,
    losses_share: Option<String>,
    grid_factors: Option<String>,
    buffer_share: String,
    note: String,
) -> Result<Uuid, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::Admin]).await?;
        let code = MethodologyCode::parse(&code).map_err(|m| AppError::invalid("code", m))?;
        let mut e = FieldErrors::new();
        let text = |o: Option<String>| o.unwrap_or_default();
        let params = match code {
            MethodologyCode::Seed2025 => Params::Seed(SeedParams {
                baseline_g_per_km: decimal(&mut e, "baseline_g_per_km", &text(baseline_g_per_km)),
                ev_g_per_km: decimal(&mut e, "ev_g_per_km", &text(ev_g_per_km)),
            }),
            MethodologyCode::Energy2025 => {
                let mut grid = std::collections::BTreeMap::new();
                for line in text(grid_factors)
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                {
                    match line.split_once('=') {
                        Some((region, factor)) => {
                            let factor = decimal(&mut e, "grid_kg_co2_per_kwh", factor);
                            grid.insert(region.trim().to_uppercase(), factor);
                        }
                        None => e.add(
                            "grid_kg_co2_per_kwh",
                            format!("“{line}” should look like VN=0.6592."),
                        ),
                    }
                }
                Params::Energy(EnergyParams {
                    baseline_l_per_100km: decimal(
                        &mut e,
                        "baseline_l_per_100km",
                        &text(baseline_l_per_100km),
                    ),
                    fuel_kg_co2_per_l: decimal(
                        &mut e,
                        "fuel_kg_co2_per_l",
                        &text(fuel_kg_co2_per_l),
                    ),
                    grid_kg_co2_per_kwh: grid,
                    losses_share: decimal(&mut e, "losses_share", &text(losses_share)),
                })
            }
        };
        let buffer_share = decimal(&mut e, "buffer_share", &buffer_share);
        if note.trim().is_empty() {
            e.add(
                "note",
                "Say why this version exists (source of the factors, date).",
            );
        }
        e.finish()?;
        let m = Methodology {
            code,
            version: 0,
            params,
            buffer_share,
        };
        methodology::add_version(&state.pool, caller.id, m, &note).await
    })
    .await
}

/// Makes a version the one new calculations use.
#[server(endpoint = "admin/methodologies/activate")]
pub async fn activate_methodology(version_id: String) -> Result<(), AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::Admin]).await?;
        let id = super::parse_id("version_id", &version_id)?;
        methodology::activate(&state.pool, caller.id, id).await
    })
    .await
}
