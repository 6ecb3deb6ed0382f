//! The audit trail for admins (endpoint `/api/admin/audit`).

use crate::error::AppError;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::domain::user::Role;
#[cfg(feature = "ssr")]
use crate::server::session;

pub const AUDIT_PAGE_SIZE: i64 = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLine {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// "Name <email>", or "system".
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    /// The state before and after, as compact JSON (empty when none).
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditLine>,
    pub total: i64,
    pub page: i64,
    pub pages: i64,
    /// Every action recorded so far (for the filter).
    pub actions: Vec<String>,
}

/// The audit trail, newest first, 50 a page. Filters (all optional): `actor` (part of a name
/// or e-mail), `action` (exact), `entity` (part of the entity id, e.g. a request number),
/// `from`/`to` (UTC dates, inclusive), `page`.
#[server(endpoint = "admin/audit")]
pub async fn audit_trail(
    actor: Option<String>,
    action: Option<String>,
    entity: Option<String>,
    from: Option<String>,
    to: Option<String>,
    page: Option<String>,
) -> Result<AuditPage, AppError> {
    session::respond(async {
        let (state, _) = session::require(&[Role::Admin]).await?;
        let page = super::parse_page(page.as_deref())?;
        let text = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let mut errors = crate::error::FieldErrors::new();
        let mut date = |field: &str, v: Option<String>| match text(v) {
            None => None,
            Some(s) => errors.check(
                field,
                chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                    .map_err(|_| "Use a date like 2026-03-01.".to_owned()),
            ),
        };
        let (from, to) = (date("from", from), date("to", to));
        errors.finish()?;
        let filter = crate::server::services::audit_log::Filter {
            actor: text(actor),
            action: text(action),
            entity: text(entity),
            from,
            to,
            page,
        };
        crate::server::services::audit_log::list(&state.pool, filter).await
    })
    .await
}
