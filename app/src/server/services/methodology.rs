//! Methodology versions in the database: the active one new calculations use, the defaults
//! created on first use, and the grid regions vehicles may choose.

use crate::domain::methodology::{Methodology, MethodologyCode, Params};
use crate::error::AppError;
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

/// A stored version: its id and the parameters.
#[derive(Debug, Clone)]
pub struct Version {
    pub id: Uuid,
    pub methodology: Methodology,
}

/// Creates SEED-2025 v1 and ENERGY-2025 v1 and makes SEED-2025 active, unless present.
/// Safe to run concurrently (every insert is conditional).
pub async fn ensure_defaults(pool: &PgPool) -> Result<(), AppError> {
    let mut tx = pool.begin().await?;
    for m in [Methodology::seed_default(), Methodology::energy_default()] {
        sqlx::query(
            "INSERT INTO methodology_versions (id, code, version, methodology, note)
             VALUES ($1, $2, $3, $4, 'Default parameters (SPEC §3.2)')
             ON CONFLICT (code, version) DO NOTHING",
        )
        .bind(Uuid::new_v4())
        .bind(m.code.as_str())
        .bind(m.version)
        .bind(Json(&m))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO methodology_active (version_id)
         SELECT id FROM methodology_versions WHERE code = 'SEED-2025' AND version = 1
         ON CONFLICT (singleton) DO NOTHING",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The version new calculations use.
pub async fn active(pool: &PgPool) -> Result<Version, AppError> {
    for _ in 0..2 {
        let row: Option<(Uuid, Json<Methodology>)> = sqlx::query_as(
            "SELECT v.id, v.methodology FROM methodology_active a JOIN methodology_versions v ON v.id = a.version_id",
        )
        .fetch_optional(pool)
        .await?;
        if let Some((id, Json(methodology))) = row {
            return Ok(Version { id, methodology });
        }
        ensure_defaults(pool).await?;
    }
    Err(super::super::internal(
        "no active methodology after creating the defaults",
    ))
}

pub async fn by_id(pool: &PgPool, id: Uuid) -> Result<Version, AppError> {
    let row: Option<Json<Methodology>> =
        sqlx::query_scalar("SELECT methodology FROM methodology_versions WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    row.map(|Json(methodology)| Version { id, methodology })
        .ok_or_else(|| AppError::not_found("The methodology version"))
}

/// Regions with a grid emission factor in the newest ENERGY-2025 version.
pub async fn grid_regions(pool: &PgPool) -> Result<Vec<String>, AppError> {
    ensure_defaults(pool).await?;
    let newest: Json<Methodology> = sqlx::query_scalar(
        "SELECT methodology FROM methodology_versions WHERE code = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(MethodologyCode::Energy2025.as_str())
    .fetch_one(pool)
    .await?;
    Ok(match newest.0.params {
        Params::Energy(p) => p.grid_kg_co2_per_kwh.keys().cloned().collect(),
        Params::Seed(_) => Vec::new(),
    })
}
