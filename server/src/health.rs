//! `/health`: is the database reachable, are migrations current, how long have we been up.

use crate::database::latest_migration;
use crate::startup::ServerState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

pub async fn health(State(s): State<ServerState>) -> (StatusCode, Json<Value>) {
    let uptime = s.metrics.uptime_secs();
    let applied: Result<Option<i64>, sqlx::Error> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&s.app.pool)
            .await;
    match applied {
        Ok(version) => {
            let version = version.unwrap_or(0);
            let current = version == latest_migration();
            let status = if current {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (
                status,
                Json(json!({
                    "status": if current { "ok" } else { "degraded" },
                    "database": "ok",
                    "migration_version": version,
                    "migrations_current": current,
                    "uptime_seconds": uptime,
                })),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "database": "unreachable",
                    "uptime_seconds": uptime,
                })),
            )
        }
    }
}
