//! Server functions: the platform's API. Each has a stable endpoint under `/api/` (listed in
//! docs/API.md) and is thin: session → role check → one service call → wire type.

pub mod admin;
pub mod auctions;
pub mod audit;
pub mod auth;
pub mod charging;
pub mod credits;
pub mod dashboard;
pub mod disputes;
pub mod imports;
pub mod market;
pub mod methodology;
pub mod notifications;
pub mod operations;
pub mod payments;
pub mod reports;
pub mod settings;
pub mod trips;
pub mod vehicles;
pub mod wallet;

use crate::domain::user::{AccountStatus, Role};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An account as shown to its owner and to admins. Never carries the password hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub phone: String,
    pub role: Role,
    pub status: AccountStatus,
    pub created_at: DateTime<Utc>,
    /// An admin checked the person's identity (withdrawals need it).
    pub kyc_verified: bool,
}

#[cfg(feature = "ssr")]
impl From<crate::server::db::users::UserRow> for User {
    fn from(row: crate::server::db::users::UserRow) -> Self {
        User {
            id: row.id,
            role: row.role(),
            status: row.status(),
            email: row.email,
            full_name: row.full_name,
            phone: row.phone,
            created_at: row.created_at,
            kyc_verified: row.kyc_verified_at.is_some(),
        }
    }
}

/// Every role, for endpoints any signed-in account may call.
pub const ANY_ROLE: &[Role] = &Role::ALL;

/// A 1-based page number from a form or URL; empty means the first page.
pub fn parse_page(raw: Option<&str>) -> Result<i64, crate::error::AppError> {
    match raw.map(str::trim).filter(|p| !p.is_empty()) {
        None => Ok(1),
        Some(p) => p.parse::<i64>().ok().filter(|p| *p >= 1).ok_or_else(|| {
            crate::error::AppError::invalid("page", "The page must be a whole number from 1.")
        }),
    }
}

/// Parses an id from a form or URL, refusing garbage with a clear message.
pub fn parse_id(field: &str, raw: &str) -> Result<Uuid, crate::error::AppError> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| crate::error::AppError::invalid(field, "This is not a valid id."))
}

/// Sets the response up as a file download named `name` of type `content_type`.
#[cfg(feature = "ssr")]
pub(crate) fn download(name: &str, content_type: &'static str) {
    use leptos::prelude::use_context;
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.insert_header(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        if let Ok(v) = http::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            options.insert_header(http::header::CONTENT_DISPOSITION, v);
        }
    }
}
