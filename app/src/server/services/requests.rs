//! Reading credit requests: lists for owners and the verification queue, and one request in
//! full (its stored calculation, timeline, decision and serials).

use crate::api::credits::{
    CreditRequest, RequestFigures, RequestLine, RequestList, TimelineEvent, Verification,
};
use crate::domain::serial::SerialRange;
use crate::domain::user::Role;
use crate::error::AppError;
use crate::server::services::issuance::Computed;
use crate::server::session::Caller;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

pub const PAGE_SIZE: i64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Oldest,
    Newest,
    Risk,
    Size,
}

impl Sort {
    pub fn parse(s: &str) -> Result<Sort, String> {
        match s.trim() {
            "" | "oldest" => Ok(Sort::Oldest),
            "newest" => Ok(Sort::Newest),
            "risk" => Ok(Sort::Risk),
            "size" => Ok(Sort::Size),
            _ => Err("Sort by oldest, newest, risk or size.".into()),
        }
    }

    fn order_by(self) -> &'static str {
        match self {
            Sort::Oldest => "r.created_at, r.number",
            Sort::Newest => "r.created_at DESC, r.number DESC",
            Sort::Risk => "r.risk_score DESC, r.created_at",
            Sort::Size => "r.gross_kg DESC, r.created_at",
        }
    }
}

pub struct ListFilter {
    pub owner: Option<Uuid>,
    pub status: Option<String>,
    pub sort: Sort,
    pub page: i64,
}

#[derive(FromRow)]
struct LineRow {
    id: Uuid,
    number: String,
    status: String,
    owner_name: String,
    plate: Option<String>,
    period_from: NaiveDate,
    period_to: NaiveDate,
    trips: i32,
    gross_kg: i64,
    net_kg: i64,
    risk_score: i32,
    created_at: DateTime<Utc>,
}

impl From<LineRow> for RequestLine {
    fn from(r: LineRow) -> Self {
        RequestLine {
            id: r.id,
            number: r.number,
            status: r.status,
            owner_name: r.owner_name,
            vehicles: r.plate.unwrap_or_else(|| "All vehicles".into()),
            period_from: r.period_from,
            period_to: r.period_to,
            trips: r.trips.into(),
            gross_kg: r.gross_kg,
            net_kg: r.net_kg,
            risk_score: r.risk_score,
            created_at: r.created_at,
        }
    }
}

const LINE: &str = "SELECT r.id, r.number, r.status, u.full_name AS owner_name, v.plate, r.period_from, r.period_to,
        r.trips, r.gross_kg, r.net_kg, r.risk_score, r.created_at
    FROM credit_requests r JOIN users u ON u.id = r.owner_id LEFT JOIN vehicles v ON v.id = r.vehicle_id";

pub async fn line(pool: &PgPool, id: Uuid) -> Result<RequestLine, AppError> {
    let row: LineRow = sqlx::query_as(&format!("{LINE} WHERE r.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| AppError::not_found("The request"))?;
    Ok(row.into())
}

pub async fn list(pool: &PgPool, f: ListFilter) -> Result<RequestList, AppError> {
    let filter = "($1::uuid IS NULL OR r.owner_id = $1) AND ($2::text IS NULL OR r.status = $2)";
    let rows: Vec<LineRow> = sqlx::query_as(&format!(
        "{LINE} WHERE {filter} ORDER BY {} LIMIT $3 OFFSET $4",
        f.sort.order_by()
    ))
    .bind(f.owner)
    .bind(&f.status)
    .bind(PAGE_SIZE)
    .bind((f.page.max(1) - 1) * PAGE_SIZE)
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM credit_requests r WHERE {filter}"
    ))
    .bind(f.owner)
    .bind(&f.status)
    .fetch_one(pool)
    .await?;
    Ok(RequestList {
        requests: rows.into_iter().map(RequestLine::from).collect(),
        total,
        page: f.page,
        pages: ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1),
    })
}

#[derive(FromRow)]
struct DetailRow {
    owner_id: Uuid,
    status: String,
    closed_at: Option<DateTime<Utc>>,
    calculation: Json<Computed>,
}

/// One request in full. Owners see only their own.
pub async fn detail(pool: &PgPool, caller: &Caller, id: Uuid) -> Result<CreditRequest, AppError> {
    let line = line(pool, id).await?;
    let row: DetailRow = sqlx::query_as(
        "SELECT owner_id, status, closed_at, calculation FROM credit_requests WHERE id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await?;
    if caller.role == Role::EvOwner && row.owner_id != caller.id {
        return Err(AppError::not_found("The request"));
    }
    let verification: Option<(String, i64, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT v.decision, v.approved_kg, v.notes, u.full_name, v.created_at
         FROM verifications v JOIN users u ON u.id = v.verifier_id WHERE v.request_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let issuance: Option<(String, i32, i64, i64)> = sqlx::query_as(
        "SELECT region, vintage, lower(serials), upper(serials) FROM credit_issuances WHERE request_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let mut timeline = vec![TimelineEvent {
        at: line.created_at,
        label: "Submitted".into(),
        detail: format!(
            "{} trips locked; {} kg requested",
            line.trips, line.gross_kg
        ),
    }];
    let verification =
        verification.map(
            |(decision, approved_kg, notes, verifier, at)| Verification {
                decision,
                approved_kg,
                notes,
                verifier,
                at,
            },
        );
    let serials = issuance
        .map(|(region, vintage, start, end)| SerialRange::new(start, end).label(&region, vintage));
    match (&verification, row.closed_at) {
        (Some(v), _) => timeline.push(TimelineEvent {
            at: v.at,
            label: match v.decision.as_str() {
                "approved" => "Approved".into(),
                "approved_reduced" => "Approved (reduced)".into(),
                _ => "Rejected".into(),
            },
            detail: match v.decision.as_str() {
                "rejected" => format!("by {}: {}", v.verifier, v.notes),
                "approved_reduced" => {
                    format!("{} kg by {}: {}", v.approved_kg, v.verifier, v.notes)
                }
                _ => format!("{} kg by {}", v.approved_kg, v.verifier),
            },
        }),
        (None, Some(at)) => timeline.push(TimelineEvent {
            at,
            label: "Cancelled".into(),
            detail: "by the owner; the trips are free again".into(),
        }),
        (None, None) => {}
    }
    if let (Some(s), Some(v)) = (&serials, &verification) {
        timeline.push(TimelineEvent {
            at: v.at,
            label: "Credits issued".into(),
            detail: s.clone(),
        });
    }
    let pending = row.status == "pending";
    let history: Vec<LineRow> = sqlx::query_as(&format!(
        "{LINE} WHERE r.owner_id = $1 AND r.id <> $2 ORDER BY r.created_at DESC LIMIT 10"
    ))
    .bind(row.owner_id)
    .bind(id)
    .fetch_all(pool)
    .await?;
    let days: Vec<(NaiveDate, rust_decimal::Decimal)> = sqlx::query_as(
        "SELECT (t.start_time AT TIME ZONE v.time_zone)::date AS day, sum(t.distance_km)
         FROM trips t JOIN vehicles v ON v.id = t.vehicle_id WHERE t.claim_id = $1 GROUP BY 1 ORDER BY 1",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let chart_svg = if days.is_empty() {
        None
    } else {
        let points: Vec<(String, rust_decimal::Decimal)> = days
            .iter()
            .map(|(d, km)| (d.format("%d %b").to_string(), km.round_dp(1)))
            .collect();
        Some(
            crate::server::chart::bars("Distance per day", "km", &points)
                .map_err(crate::server::internal)?,
        )
    };
    Ok(CreditRequest {
        id,
        number: line.number.clone(),
        status: row.status,
        owner_name: line.owner_name.clone(),
        vehicles: line.vehicles.clone(),
        period_from: line.period_from,
        period_to: line.period_to,
        created_at: line.created_at,
        figures: RequestFigures::from(&row.calculation.0),
        timeline,
        verification,
        serials,
        can_cancel: pending && caller.id == row.owner_id,
        can_decide: pending && caller.role == Role::Cva && caller.id != row.owner_id,
        history: history.into_iter().map(RequestLine::from).collect(),
        chart_svg,
    })
}

pub const TRIPS_PAGE: i64 = 50;

/// The trips a request holds, oldest first.
pub async fn trips(
    pool: &PgPool,
    caller: &Caller,
    id: Uuid,
    page: i64,
) -> Result<(Vec<crate::server::services::trips::TripRow>, i64), AppError> {
    let owner: Uuid = sqlx::query_scalar("SELECT owner_id FROM credit_requests WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| AppError::not_found("The request"))?;
    if caller.role == Role::EvOwner && owner != caller.id {
        return Err(AppError::not_found("The request"));
    }
    let rows = sqlx::query_as(&format!(
        "{} WHERE t.claim_id = $1 ORDER BY t.start_time LIMIT $2 OFFSET $3",
        crate::server::services::trips::SELECT
    ))
    .bind(id)
    .bind(TRIPS_PAGE)
    .bind((page.max(1) - 1) * TRIPS_PAGE)
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM trips WHERE claim_id = $1")
        .bind(id)
        .fetch_one(pool)
        .await?;
    Ok((rows, total))
}
