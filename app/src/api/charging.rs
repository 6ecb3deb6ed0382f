//! An owner's charging sessions (endpoint `/api/charging`).

use crate::error::AppError;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "ssr")]
use crate::domain::user::Role;
#[cfg(feature = "ssr")]
use crate::server::services::charging;
#[cfg(feature = "ssr")]
use crate::server::session;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargingSession {
    pub id: i64,
    pub vehicle_id: Uuid,
    pub plate: String,
    /// The charger operator's id of the session.
    pub session_id: String,
    pub charger_id: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    /// Start and end in the vehicle's time zone, `YYYY-MM-DD HH:MM`.
    pub local_start: String,
    pub local_end: String,
    pub energy_kwh: Decimal,
    /// Inside a pending or approved credit request.
    pub claimed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargingPage {
    pub sessions: Vec<ChargingSession>,
    pub total: i64,
    /// kWh of every matching session (not only this page).
    pub total_kwh: Decimal,
    pub page: i64,
    pub pages: i64,
}

/// The caller's charging sessions, newest first, 50 a page. Filters (all optional):
/// `vehicle_id`, `from` and `to` (local dates, inclusive), `page`.
#[server(endpoint = "charging")]
pub async fn list_charging(
    vehicle_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    page: Option<String>,
) -> Result<ChargingPage, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner]).await?;
        let page = super::parse_page(page.as_deref())?;
        let filter = super::trips::filter(vehicle_id, from, to, None, page)?;
        let (rows, total, total_kwh) = charging::list(&state.pool, caller.id, &filter).await?;
        let sessions = rows
            .into_iter()
            .map(|r| {
                let tz: chrono_tz::Tz = r.time_zone.parse().unwrap_or(chrono_tz::UTC);
                let local =
                    |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
                ChargingSession {
                    id: r.id,
                    vehicle_id: r.vehicle_id,
                    plate: r.plate,
                    session_id: r.session_id,
                    charger_id: r.charger_id,
                    local_start: local(r.start_time),
                    local_end: local(r.end_time),
                    start_time: r.start_time,
                    end_time: r.end_time,
                    energy_kwh: r.energy_kwh.normalize(),
                    claimed: r.claimed,
                }
            })
            .collect();
        Ok(ChargingPage {
            sessions,
            total,
            total_kwh: total_kwh.normalize(),
            page,
            pages: ((total + charging::PAGE_SIZE - 1) / charging::PAGE_SIZE).max(1),
        })
    })
    .await
}
