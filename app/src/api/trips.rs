//! An owner's trips (endpoints `/api/trips/…`).

use crate::error::AppError;
#[cfg(feature = "ssr")]
use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos::server_fn::codec::{GetUrl, StreamingText, TextStream};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "ssr")]
use crate::domain::user::Role;
#[cfg(feature = "ssr")]
use crate::server::services::trips;
#[cfg(feature = "ssr")]
use crate::server::session;

#[cfg(feature = "ssr")]
const OWNER: &[Role] = &[Role::EvOwner];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trip {
    pub id: i64,
    pub vehicle_id: Uuid,
    pub plate: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    /// Start and end in the vehicle's time zone, as `YYYY-MM-DDTHH:MM` (for forms and lists).
    pub local_start: String,
    pub local_end: String,
    pub distance_km: Decimal,
    pub energy_kwh: Option<Decimal>,
    pub notes: Option<String>,
    pub flags: Vec<String>,
    pub avoided_kg: Decimal,
    /// Inside a pending or approved credit request: read-only.
    pub claimed: bool,
}

#[cfg(feature = "ssr")]
impl From<trips::TripRow> for Trip {
    fn from(r: trips::TripRow) -> Self {
        let tz: chrono_tz::Tz = r.time_zone.parse().unwrap_or(chrono_tz::UTC);
        let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string();
        Trip {
            id: r.id,
            vehicle_id: r.vehicle_id,
            plate: r.plate,
            local_start: local(r.start_time),
            local_end: local(r.end_time),
            start_time: r.start_time,
            end_time: r.end_time,
            distance_km: r.distance_km.normalize(),
            energy_kwh: r.energy_kwh.map(|e| e.normalize()),
            notes: r.notes,
            flags: r.flags,
            avoided_kg: r.avoided_kg,
            claimed: r.claimed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TripPage {
    pub trips: Vec<Trip>,
    pub total: i64,
    pub page: i64,
    pub pages: i64,
}

#[cfg(feature = "ssr")]
fn date(field: &str, raw: Option<String>) -> Result<Option<NaiveDate>, AppError> {
    match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| AppError::invalid(field, "Use a date like 2026-03-01.")),
    }
}

#[cfg(feature = "ssr")]
pub(crate) fn filter(
    vehicle_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    flagged: Option<String>,
    page: i64,
) -> Result<trips::Filter, AppError> {
    let vehicle = match vehicle_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(v) => Some(super::parse_id("vehicle_id", v)?),
    };
    let (from, to) = (date("from", from)?, date("to", to)?);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(AppError::invalid(
                "to",
                "The end date is before the start date.",
            ));
        }
    }
    Ok(trips::Filter {
        vehicle,
        from,
        to,
        flagged_only: flagged.as_deref() == Some("true"),
        page,
    })
}

/// All the caller's matching trips as a CSV download (same filters as `trips`, no paging).
#[server(endpoint = "trips/export", input = GetUrl, output = StreamingText)]
pub async fn export_trips(
    vehicle_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    flagged: Option<String>,
) -> Result<TextStream<AppError>, AppError> {
    session::respond(async {
        let (state, caller) = session::require(OWNER).await?;
        let filter = filter(vehicle_id, from, to, flagged, 1)?;
        super::download("trips.csv", "text/csv; charset=utf-8");
        Ok(TextStream::new(trips::export_csv(
            state.pool.clone(),
            caller.id,
            filter,
        )))
    })
    .await
}

/// The caller's trips, newest first, 50 a page. Filters (all optional): `vehicle_id`, `from`
/// and `to` (local dates, inclusive), `flagged` ("true": only trips with anomaly flags), `page`.
#[server(endpoint = "trips")]
pub async fn list_trips(
    vehicle_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    flagged: Option<String>,
    page: Option<String>,
) -> Result<TripPage, AppError> {
    session::respond(async {
        let (state, caller) = session::require(OWNER).await?;
        let page = super::parse_page(page.as_deref())?;
        let filter = filter(vehicle_id, from, to, flagged, page)?;
        let (rows, total) = trips::list(&state.pool, caller.id, &filter).await?;
        Ok(TripPage {
            trips: rows.into_iter().map(Trip::from).collect(),
            total,
            page,
            pages: ((total + trips::PAGE_SIZE - 1) / trips::PAGE_SIZE).max(1),
        })
    })
    .await
}

/// One period check that found something.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodFlag {
    pub code: String,
    pub message: String,
}

/// The period checks over one vehicle's trips in a date range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodReview {
    /// Trips in the range.
    pub trips: i64,
    /// False when there were too many trips to check at once (more than `limit`).
    pub checked: bool,
    pub limit: i64,
    pub flags: Vec<PeriodFlag>,
}

/// The checks over a whole period (SPEC §3.3: long days, odometer gaps and reversals, trips far
/// from the usual region, volume jumps against the previous 12 months, identical trips) for one
/// vehicle between `from` and `to` (local dates, inclusive, either may be empty).
#[server(endpoint = "trips/period-checks")]
pub async fn period_checks(
    vehicle_id: String,
    from: Option<String>,
    to: Option<String>,
) -> Result<PeriodReview, AppError> {
    session::respond(async {
        let (state, caller) = session::require(OWNER).await?;
        let f = filter(Some(vehicle_id), from, to, None, 1)?;
        let vehicle = f
            .vehicle
            .ok_or_else(|| AppError::invalid("vehicle_id", "Choose a vehicle."))?;
        let limit = trips::PERIOD_CHECK_LIMIT;
        let found = trips::period_flags(
            &mut *state.pool.acquire().await?,
            caller.id,
            vehicle,
            f.from,
            f.to,
            limit,
        )
        .await?;
        Ok(match found {
            None => PeriodReview {
                trips: limit + 1,
                checked: false,
                limit,
                flags: Vec::new(),
            },
            Some((trips, flags)) => PeriodReview {
                trips,
                checked: true,
                limit,
                flags: flags
                    .iter()
                    .map(|f| PeriodFlag {
                        code: f.code().to_owned(),
                        message: f.message(),
                    })
                    .collect(),
            },
        })
    })
    .await
}

#[cfg(feature = "ssr")]
fn parse_trip_id(raw: &str) -> Result<i64, AppError> {
    raw.trim()
        .parse()
        .map_err(|_| AppError::invalid("trip_id", "This is not a valid trip id."))
}

/// Edits an unclaimed trip; its CO₂ is recomputed with the active methodology.
#[server(endpoint = "trips/update")]
pub async fn update_trip(
    trip_id: String,
    start_time: String,
    end_time: String,
    distance_km: String,
    energy_kwh: String,
    notes: String,
) -> Result<Trip, AppError> {
    session::respond(async {
        let (state, caller) = session::require(OWNER).await?;
        let edit = trips::TripEdit {
            start_time,
            end_time,
            distance_km,
            energy_kwh,
            notes,
        };
        Ok(
            trips::update(&state.pool, caller.id, parse_trip_id(&trip_id)?, edit)
                .await?
                .into(),
        )
    })
    .await
}

#[server(endpoint = "trips/delete")]
pub async fn delete_trip(trip_id: String) -> Result<(), AppError> {
    session::respond(async {
        let (state, caller) = session::require(OWNER).await?;
        trips::delete(&state.pool, caller.id, parse_trip_id(&trip_id)?).await
    })
    .await
}
