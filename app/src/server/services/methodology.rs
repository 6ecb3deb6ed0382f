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
    // Read first: the defaults are written only on a fresh database, not on every call.
    for _ in 0..2 {
        let newest: Option<Json<Methodology>> = sqlx::query_scalar(
            "SELECT methodology FROM methodology_versions WHERE code = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(MethodologyCode::Energy2025.as_str())
        .fetch_optional(pool)
        .await?;
        if let Some(Json(m)) = newest {
            return Ok(match m.params {
                Params::Energy(p) => p.grid_kg_co2_per_kwh.keys().cloned().collect(),
                Params::Seed(_) => Vec::new(),
            });
        }
        ensure_defaults(pool).await?;
    }
    Err(crate::server::internal(
        "no ENERGY-2025 version after creating the defaults",
    ))
}

/// A stored version with when and why it was added, and whether it is the active one.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: Uuid,
    pub methodology: Methodology,
    pub note: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub active: bool,
}

/// Every version, newest first per methodology.
pub async fn list(pool: &PgPool) -> Result<Vec<Listed>, AppError> {
    ensure_defaults(pool).await?;
    let rows: Vec<(Uuid, Json<Methodology>, String, chrono::DateTime<chrono::Utc>, bool)> = sqlx::query_as(
        "SELECT v.id, v.methodology, v.note, v.created_at, v.id = a.version_id
         FROM methodology_versions v CROSS JOIN methodology_active a ORDER BY v.code DESC, v.version DESC",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, Json(methodology), note, created_at, active)| Listed {
            id,
            methodology,
            note,
            created_at,
            active,
        })
        .collect())
}

/// Adds `methodology` as the next version of its code (its own version number is ignored).
/// Parameters are checked by the domain; nothing is ever edited in place.
#[tracing::instrument(skip(pool, methodology), err(level = "info"))]
pub async fn add_version(
    pool: &PgPool,
    actor: Uuid,
    mut methodology: Methodology,
    note: &str,
) -> Result<Uuid, AppError> {
    ensure_defaults(pool).await?;
    let mut tx = pool.begin().await?;
    // One writer at a time per code, so two admins cannot take the same number.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(methodology.code.as_str())
        .execute(&mut *tx)
        .await?;
    let next: i32 = sqlx::query_scalar(
        "SELECT coalesce(max(version), 0) + 1 FROM methodology_versions WHERE code = $1",
    )
    .bind(methodology.code.as_str())
    .fetch_one(&mut *tx)
    .await?;
    methodology.version = next;
    if let Err(problems) = methodology.validate() {
        return Err(AppError::Invalid {
            fields: problems
                .into_iter()
                .map(|(field, message)| crate::error::FieldError { field, message })
                .collect(),
        });
    }
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO methodology_versions (id, code, version, methodology, note, created_by) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(methodology.code.as_str())
    .bind(next)
    .bind(Json(&methodology))
    .bind(note.trim())
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    crate::server::audit::record(
        &mut tx,
        crate::server::audit::AuditEntry {
            actor_id: Some(actor),
            action: "methodology.add_version",
            entity: "methodology_version",
            entity_id: id.to_string(),
            before: None,
            after: Some(serde_json::to_value(&methodology).map_err(crate::server::internal)?),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Makes a version the one new calculations use.
#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn activate(pool: &PgPool, actor: Uuid, version_id: Uuid) -> Result<(), AppError> {
    ensure_defaults(pool).await?;
    let mut tx = pool.begin().await?;
    let before: Uuid = sqlx::query_scalar("SELECT version_id FROM methodology_active FOR UPDATE")
        .fetch_one(&mut *tx)
        .await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM methodology_versions WHERE id = $1)")
            .bind(version_id)
            .fetch_one(&mut *tx)
            .await?;
    if !exists {
        return Err(AppError::not_found("The methodology version"));
    }
    if before == version_id {
        return Ok(());
    }
    sqlx::query(
        "UPDATE methodology_active SET version_id = $1, changed_by = $2, changed_at = now()",
    )
    .bind(version_id)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    crate::server::audit::record(
        &mut tx,
        crate::server::audit::AuditEntry {
            actor_id: Some(actor),
            action: "methodology.activate",
            entity: "methodology_active",
            entity_id: "active".into(),
            before: Some(serde_json::json!({ "version_id": before })),
            after: Some(serde_json::json!({ "version_id": version_id })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
