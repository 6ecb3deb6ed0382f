//! Credit requests for owners (endpoints `/api/credits/…`) and their verification by CVAs
//! (`/api/cva/…`).

use crate::error::AppError;
use chrono::{DateTime, NaiveDate, Utc};
use leptos::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "ssr")]
use crate::domain::user::Role;
#[cfg(feature = "ssr")]
use crate::server::services::{issuance, requests};
#[cfg(feature = "ssr")]
use crate::server::session;

pub use crate::domain::methodology::Step;

/// A finding shown with a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub code: String,
    pub message: String,
}

/// What a request (or its preview) computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestFigures {
    pub region: String,
    pub vintage: i32,
    /// "ENERGY-2025 v1".
    pub methodology: String,
    pub trips: i64,
    pub charging_sessions: i64,
    pub distance_km: Decimal,
    pub energy_kwh: Decimal,
    pub baseline_kg: Decimal,
    pub project_kg: Decimal,
    pub avoided_kg: Decimal,
    pub gross_kg: i64,
    pub buffer_kg: i64,
    pub net_kg: i64,
    /// `net_kg` in tonnes (credits), 3 decimals.
    pub net_credits: Decimal,
    pub risk_score: u32,
    pub risk_level: String,
    pub period_flags: Vec<Finding>,
    /// Trip flag code → how many trips carry it.
    pub trip_flags: Vec<(String, i64)>,
    pub steps: Vec<Step>,
}

#[cfg(feature = "ssr")]
impl From<&issuance::Computed> for RequestFigures {
    fn from(c: &issuance::Computed) -> Self {
        RequestFigures {
            region: c.region.clone(),
            vintage: c.vintage,
            methodology: format!("{} v{}", c.methodology.code, c.methodology.version),
            trips: c.trips,
            charging_sessions: c.charging_sessions,
            distance_km: c.distance_km.round_dp(3),
            energy_kwh: c.energy_kwh.round_dp(3),
            baseline_kg: c.baseline_kg.round_dp(3),
            project_kg: c.project_kg.round_dp(3),
            avoided_kg: c.avoided_kg.round_dp(3),
            gross_kg: c.gross_kg,
            buffer_kg: c.buffer_kg,
            net_kg: c.net_kg,
            net_credits: crate::domain::methodology::kg_to_credits(Decimal::from(c.net_kg)),
            risk_score: c.risk_score,
            risk_level: crate::domain::anomaly::risk_level(c.risk_score).to_owned(),
            period_flags: c
                .parts
                .iter()
                .flat_map(|p| {
                    p.flags.iter().map(|f| Finding {
                        code: f.code().to_owned(),
                        message: format!("{}: {}", p.plate, f.message()),
                    })
                })
                .collect(),
            trip_flags: c.trip_flags.clone(),
            steps: c.steps(),
        }
    }
}

/// A request as its owner, the CVAs and admins see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditRequest {
    pub id: Uuid,
    pub number: String,
    pub status: String,
    pub owner_name: String,
    /// The plate, or "All vehicles".
    pub vehicles: String,
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
    pub created_at: DateTime<Utc>,
    pub figures: RequestFigures,
    pub timeline: Vec<TimelineEvent>,
    pub verification: Option<Verification>,
    /// The serial block minted on approval, e.g. `EVCX-VN-2026-000000001-000000950`.
    pub serials: Option<String>,
    /// The owner can still cancel it.
    pub can_cancel: bool,
    /// The caller may decide it (a CVA, and it is pending).
    pub can_decide: bool,
    /// The owner's other requests, newest first (at most 10).
    pub history: Vec<RequestLine>,
    /// Kilometres per day of the request's trips (an SVG chart), while they are claimed.
    pub chart_svg: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub at: DateTime<Utc>,
    pub label: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub decision: String,
    pub approved_kg: i64,
    pub notes: String,
    pub verifier: String,
    pub at: DateTime<Utc>,
}

/// One line of a list of requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestLine {
    pub id: Uuid,
    pub number: String,
    pub status: String,
    pub owner_name: String,
    pub vehicles: String,
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
    pub trips: i64,
    pub gross_kg: i64,
    pub net_kg: i64,
    pub risk_score: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestList {
    pub requests: Vec<RequestLine>,
    pub total: i64,
    pub page: i64,
    pub pages: i64,
}

#[cfg(feature = "ssr")]
fn selection(
    vehicle_id: Option<String>,
    from: String,
    to: String,
) -> Result<issuance::Selection, AppError> {
    let mut errors = crate::error::FieldErrors::new();
    let date = |raw: &str| {
        NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
            .map_err(|_| "Use a date like 2026-03-01.".to_owned())
    };
    let from = errors.check("from", date(&from));
    let to = errors.check("to", date(&to));
    let vehicle = match vehicle_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(v) => errors.check(
            "vehicle_id",
            Uuid::parse_str(v).map_err(|_| "Choose one of your vehicles.".to_owned()),
        ),
    };
    errors.finish()?;
    Ok(issuance::Selection {
        vehicle,
        from: from.unwrap_or_default(),
        to: to.unwrap_or_default(),
    })
}

/// What a request for the period would be, with its calculation step by step; nothing is
/// stored. `vehicle_id` empty: all the owner's vehicles (of one grid region).
#[server(endpoint = "credits/preview")]
pub async fn preview_request(
    vehicle_id: Option<String>,
    from: String,
    to: String,
) -> Result<RequestFigures, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner]).await?;
        let sel = selection(vehicle_id, from, to)?;
        let c = issuance::preview(&state.pool, caller.id, &sel).await?;
        Ok(RequestFigures::from(&c))
    })
    .await
}

/// Submits a request for the period (computed again, with the same inputs as the preview); its
/// trips are locked. Sends a browser to the request's page.
#[server(endpoint = "credits/submit")]
pub async fn submit_request(
    vehicle_id: Option<String>,
    from: String,
    to: String,
) -> Result<RequestLine, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner]).await?;
        let sel = selection(vehicle_id, from, to)?;
        let (id, _) = issuance::submit(&state.pool, caller.id, &sel).await?;
        leptos_axum::redirect(&format!("/credits/{id}"));
        requests::line(&state.pool, id).await
    })
    .await
}

/// The caller's requests, newest first, 20 a page.
#[server(endpoint = "credits/requests")]
pub async fn my_requests(page: Option<String>) -> Result<RequestList, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner]).await?;
        let page = super::parse_page(page.as_deref())?;
        requests::list(
            &state.pool,
            requests::ListFilter {
                owner: Some(caller.id),
                status: None,
                sort: requests::Sort::Newest,
                page,
            },
        )
        .await
    })
    .await
}

/// One request: its owner, CVAs and admins may read it.
#[server(endpoint = "credits/request")]
pub async fn get_request(request_id: String) -> Result<CreditRequest, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner, Role::Cva, Role::Admin]).await?;
        let id = super::parse_id("request_id", &request_id)?;
        requests::detail(&state.pool, &caller, id).await
    })
    .await
}

/// The trips of a request (while it holds them), oldest first, 50 a page: its owner, CVAs and
/// admins.
#[server(endpoint = "credits/request-trips")]
pub async fn request_trips(
    request_id: String,
    page: Option<String>,
) -> Result<crate::api::trips::TripPage, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner, Role::Cva, Role::Admin]).await?;
        let id = super::parse_id("request_id", &request_id)?;
        let page = super::parse_page(page.as_deref())?;
        let (rows, total) = requests::trips(&state.pool, &caller, id, page).await?;
        Ok(crate::api::trips::TripPage {
            trips: rows
                .into_iter()
                .map(crate::api::trips::Trip::from)
                .collect(),
            total,
            page,
            pages: ((total + requests::TRIPS_PAGE - 1) / requests::TRIPS_PAGE).max(1),
        })
    })
    .await
}

/// Cancels one of the caller's pending requests; its trips are free again.
#[server(endpoint = "credits/cancel")]
pub async fn cancel_request(request_id: String) -> Result<(), AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner]).await?;
        let id = super::parse_id("request_id", &request_id)?;
        issuance::cancel(&state.pool, caller.id, id).await?;
        leptos_axum::redirect(&format!("/credits/{id}"));
        Ok(())
    })
    .await
}

/// The verification queue. `status`: `pending` (default), `approved`, `rejected`, `cancelled`
/// or `all`; `sort`: `oldest` (default), `newest`, `risk` (highest first), `size` (largest
/// first); `page`.
#[server(endpoint = "cva/queue")]
pub async fn review_queue(
    status: Option<String>,
    sort: Option<String>,
    page: Option<String>,
) -> Result<RequestList, AppError> {
    session::respond(async {
        let (state, _) = session::require(&[Role::Cva, Role::Admin]).await?;
        let page = super::parse_page(page.as_deref())?;
        let status = match status.as_deref().map(str::trim).unwrap_or("") {
            "" | "pending" => Some("pending"),
            "all" => None,
            s @ ("approved" | "rejected" | "cancelled") => Some(s),
            _ => {
                return Err(AppError::invalid(
                    "status",
                    "Choose pending, approved, rejected, cancelled or all.",
                ))
            }
        };
        let sort = requests::Sort::parse(sort.as_deref().unwrap_or(""))
            .map_err(|m| AppError::invalid("sort", m))?;
        requests::list(
            &state.pool,
            requests::ListFilter {
                owner: None,
                status: status.map(str::to_owned),
                sort,
                page,
            },
        )
        .await
    })
    .await
}

/// Decides a pending request, once. `decision`: `approve`, `reduce` (with `approved_kg`, the
/// gross kilograms approved, and `notes`, the reason) or `reject` (with `notes`).
#[server(endpoint = "cva/decide")]
pub async fn decide_request(
    request_id: String,
    decision: String,
    approved_kg: Option<String>,
    notes: Option<String>,
) -> Result<CreditRequest, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::Cva]).await?;
        let id = super::parse_id("request_id", &request_id)?;
        let notes = notes.unwrap_or_default();
        let decision = match decision.trim() {
            "approve" => issuance::Decision::Approve,
            "reduce" => {
                let kg = approved_kg
                    .as_deref()
                    .map(str::trim)
                    .unwrap_or("")
                    .parse::<i64>()
                    .map_err(|_| {
                        AppError::invalid(
                            "approved_kg",
                            "Enter the approved quantity in whole kilograms.",
                        )
                    })?;
                issuance::Decision::ApproveReduced {
                    gross_kg: kg,
                    reason: notes,
                }
            }
            "reject" => issuance::Decision::Reject { notes },
            _ => {
                return Err(AppError::invalid(
                    "decision",
                    "Choose approve, reduce or reject.",
                ))
            }
        };
        issuance::decide(&state.pool, caller.id, id, decision).await?;
        leptos_axum::redirect(&format!("/cva/requests/{id}"));
        requests::detail(&state.pool, &caller, id).await
    })
    .await
}
