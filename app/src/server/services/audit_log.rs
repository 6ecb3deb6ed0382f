//! Browsing the append-only audit trail.

use crate::api::audit::{AuditLine, AuditPage, AUDIT_PAGE_SIZE};
use crate::error::AppError;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

pub struct Filter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub entity: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub page: i64,
}

pub async fn list(pool: &PgPool, f: Filter) -> Result<AuditPage, AppError> {
    let filter =
        "($1::text IS NULL OR u.full_name ILIKE '%' || $1 || '%' OR u.email ILIKE '%' || $1 || '%')
        AND ($2::text IS NULL OR a.action = $2)
        AND ($3::text IS NULL OR a.entity_id ILIKE '%' || $3 || '%' OR a.entity ILIKE $3)
        AND ($4::date IS NULL OR a.at >= $4::date)
        AND ($5::date IS NULL OR a.at < $5::date + 1)";
    type Row = (
        i64,
        DateTime<Utc>,
        Option<String>,
        Option<String>,
        String,
        String,
        String,
        Option<serde_json::Value>,
        Option<serde_json::Value>,
    );
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT a.id, a.at, u.full_name, u.email, a.action, a.entity, a.entity_id, a.before, a.after
         FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id
         WHERE {filter} ORDER BY a.at DESC, a.id DESC LIMIT $6 OFFSET $7"
    ))
    .bind(&f.actor)
    .bind(&f.action)
    .bind(&f.entity)
    .bind(f.from)
    .bind(f.to)
    .bind(AUDIT_PAGE_SIZE)
    .bind((f.page.max(1) - 1) * AUDIT_PAGE_SIZE)
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id WHERE {filter}"
    ))
    .bind(&f.actor)
    .bind(&f.action)
    .bind(&f.entity)
    .bind(f.from)
    .bind(f.to)
    .fetch_one(pool)
    .await?;
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT action FROM audit_log ORDER BY action")
            .fetch_all(pool)
            .await?;
    let json = |v: Option<serde_json::Value>| v.map(|v| v.to_string()).unwrap_or_default();
    Ok(AuditPage {
        entries: rows
            .into_iter()
            .map(|r| AuditLine {
                id: r.0,
                at: r.1,
                actor: match (r.2, r.3) {
                    (Some(name), Some(email)) => format!("{name} <{email}>"),
                    _ => "system".into(),
                },
                action: r.4,
                entity: r.5,
                entity_id: r.6,
                before: json(r.7),
                after: json(r.8),
            })
            .collect(),
        total,
        page: f.page,
        pages: ((total + AUDIT_PAGE_SIZE - 1) / AUDIT_PAGE_SIZE).max(1),
        actions,
    })
}
