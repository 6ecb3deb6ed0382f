//! Trip and charging-session imports (endpoints `/api/imports/…`).

use crate::error::AppError;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos::server_fn::codec::{MultipartData, MultipartFormData};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "ssr")]
use crate::domain::user::Role;
#[cfg(feature = "ssr")]
use crate::server::services::import;
#[cfg(feature = "ssr")]
use crate::server::session;

#[cfg(feature = "ssr")]
const OWNER: &[Role] = &[Role::EvOwner];

/// Rejected rows shown per page of a report.
pub const REJECTIONS_PER_PAGE: i64 = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    pub line: i32,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportSummary {
    pub id: Uuid,
    pub vehicle_id: Uuid,
    pub kind: String,
    pub file_name: String,
    pub file_bytes: i64,
    pub format: String,
    pub rows_total: i32,
    pub rows_imported: i32,
    pub rows_duplicate: i32,
    pub rows_rejected: i32,
    pub rows_flagged: i32,
    pub avoided_kg: Decimal,
    pub created_at: DateTime<Utc>,
    pub earlier_same_file: Option<DateTime<Utc>>,
    /// The first rejected rows (see `import_rejections` for the rest).
    pub rejected: Vec<Rejected>,
}

/// Uploads a file: multipart fields `vehicle_id`, `kind` (`trips` or `charging`), then `file`.
/// The file is streamed; its good rows are stored in one transaction. Answers the report and
/// sends a browser to the report page.
#[server(endpoint = "imports/upload", input = MultipartFormData)]
pub async fn upload_import(data: MultipartData) -> Result<ImportSummary, AppError> {
    session::respond(async {
        let (state, caller) = session::require(OWNER).await?;
        let mut multipart = data.into_inner().ok_or_else(|| AppError::BadRequest {
            message: "no form data".into(),
        })?;
        let (mut vehicle_id, mut kind) = (None, import::Kind::Trips);
        loop {
            let field = multipart
                .next_field()
                .await
                .map_err(|e| AppError::BadRequest {
                    message: format!("the upload could not be read: {e}"),
                })?;
            let Some(field) = field else {
                return Err(AppError::invalid("file", "Choose a file to import."));
            };
            match field.name().unwrap_or_default() {
                "vehicle_id" => {
                    let text = field.text().await.map_err(|e| AppError::BadRequest {
                        message: e.to_string(),
                    })?;
                    vehicle_id = Some(super::parse_id("vehicle_id", &text).map_err(|_| {
                        AppError::invalid("vehicle_id", "Choose the vehicle the data belongs to.")
                    })?);
                }
                "kind" => {
                    let text = field.text().await.map_err(|e| AppError::BadRequest {
                        message: e.to_string(),
                    })?;
                    kind = import::Kind::parse(&text).map_err(|m| AppError::invalid("kind", m))?;
                }
                "file" => {
                    let vehicle_id = vehicle_id.ok_or_else(|| {
                        AppError::invalid("vehicle_id", "Choose the vehicle the data belongs to.")
                    })?;
                    let file_name = field.file_name().unwrap_or("upload").to_owned();
                    use futures::TryStreamExt;
                    let body = field.map_err(|e| std::io::Error::other(e.to_string()));
                    let id = import::import(
                        &state.pool,
                        caller.id,
                        vehicle_id,
                        kind,
                        &file_name,
                        state.config.imports,
                        Box::pin(body),
                    )
                    .await?;
                    leptos_axum::redirect(&format!("/imports/{id}"));
                    return report(&state.pool, caller.id, id, 1).await;
                }
                _ => {}
            }
        }
    })
    .await
}

#[cfg(feature = "ssr")]
async fn report(
    pool: &sqlx::PgPool,
    owner: Uuid,
    id: Uuid,
    page: i64,
) -> Result<ImportSummary, AppError> {
    let r = import::report(pool, owner, id).await?;
    let rejected = import::rejections(
        pool,
        id,
        REJECTIONS_PER_PAGE,
        (page - 1) * REJECTIONS_PER_PAGE,
    )
    .await?
    .into_iter()
    .map(|(line, reason)| Rejected { line, reason })
    .collect();
    Ok(ImportSummary {
        id: r.id,
        vehicle_id: r.vehicle_id,
        kind: r.kind,
        file_name: r.file_name,
        file_bytes: r.file_bytes,
        format: r.format,
        rows_total: r.rows_total,
        rows_imported: r.rows_imported,
        rows_duplicate: r.rows_duplicate,
        rows_rejected: r.rows_rejected,
        rows_flagged: r.rows_flagged,
        avoided_kg: r.avoided_kg,
        created_at: r.created_at,
        earlier_same_file: r.earlier_same_file,
        rejected,
    })
}

/// An import's report with one page (100 rows) of its rejected rows.
#[server(endpoint = "imports/report")]
pub async fn import_report(
    import_id: String,
    page: Option<String>,
) -> Result<ImportSummary, AppError> {
    session::respond(async {
        let (state, caller) = session::require(OWNER).await?;
        let id = super::parse_id("import_id", &import_id)?;
        let page = super::parse_page(page.as_deref())?;
        report(&state.pool, caller.id, id, page).await
    })
    .await
}
