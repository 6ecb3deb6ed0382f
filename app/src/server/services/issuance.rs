//! Credit requests (SPEC §4): preview the calculation over a period, submit (the trips and
//! charging sessions are claimed in the same transaction), cancel while pending; the verifier
//! approves (in full or reduced, with a reason) or rejects, once. Approval mints one block of
//! serials: the owner's share into their carbon wallet, the buffer's share into the pool.

use crate::domain::anomaly::{self, Flag};
use crate::domain::methodology::{kg_to_credits, Calculation, Methodology, PeriodInput, Step};
use crate::domain::notification::Kind;
use crate::domain::serial::SerialRange;
use crate::error::AppError;
use crate::server::audit::{self, AuditEntry};
use crate::server::db::vehicles::VehicleRow;
use crate::server::ledger::{self, AccountKind, Asset, Leg, Transfer};
use crate::server::notify;
use crate::server::services::{methodology, trips};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A request covers at most this many trips (a year of daily driving is a few thousand).
pub const MAX_TRIPS: i64 = 100_000;

/// What the owner asks for: one vehicle or all, and a period of local dates in one year.
#[derive(Debug, Clone)]
pub struct Selection {
    pub vehicle: Option<Uuid>,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// One vehicle's part of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehiclePart {
    pub vehicle_id: Uuid,
    pub plate: String,
    pub input: PeriodInput,
    pub calculation: Calculation,
    pub flags: Vec<Flag>,
}

/// A computed request, before or after it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Computed {
    pub methodology_version_id: Uuid,
    pub methodology: Methodology,
    pub region: String,
    pub vintage: i32,
    pub parts: Vec<VehiclePart>,
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
    /// Trip flag code → how many of the request's trips carry it.
    pub trip_flags: Vec<(String, i64)>,
    pub risk_score: u32,
    #[serde(skip)]
    pub trip_ids: Vec<i64>,
    #[serde(skip)]
    pub session_ids: Vec<i64>,
}

impl Computed {
    /// Every step of every vehicle, then the issuance.
    pub fn steps(&self) -> Vec<Step> {
        let mut steps: Vec<Step> = self
            .parts
            .iter()
            .flat_map(|p| p.calculation.steps.clone())
            .collect();
        steps.push(Step {
            label: "Credits".into(),
            formula: format!(
                "{} kg avoided, whole kilograms; {}% to the buffer pool (rounded up)",
                self.avoided_kg.round_dp(3),
                (self.methodology.buffer_share * Decimal::ONE_HUNDRED).normalize()
            ),
            value: format!(
                "{} kg gross, {} kg buffer, {} kg ({} t) to the owner",
                self.gross_kg,
                self.buffer_kg,
                self.net_kg,
                kg_to_credits(Decimal::from(self.net_kg))
            ),
        });
        steps
    }
}

fn selection_error(field: &str, message: &str) -> AppError {
    AppError::invalid(field, message)
}

/// Gathers the unclaimed trips and sessions of the selection and computes the request with
/// `version`. Reads inside `conn` (the submit transaction locks the vehicles first).
async fn compute(
    conn: &mut PgConnection,
    owner: Uuid,
    sel: &Selection,
    version: &methodology::Version,
) -> Result<Computed, AppError> {
    if sel.from > sel.to {
        return Err(selection_error(
            "to",
            "The end date is before the start date.",
        ));
    }
    if sel.from.year() != sel.to.year() {
        return Err(selection_error(
            "to",
            "A request covers one calendar year (its vintage): end it on 31 December or start a second request.",
        ));
    }
    let vehicles: Vec<VehicleRow> = sqlx::query_as(
        "SELECT * FROM vehicles WHERE owner_id = $1 AND ($2::uuid IS NULL OR id = $2) ORDER BY id",
    )
    .bind(owner)
    .bind(sel.vehicle)
    .fetch_all(&mut *conn)
    .await?;
    if vehicles.is_empty() {
        return Err(match sel.vehicle {
            Some(_) => AppError::not_found("The vehicle"),
            None => selection_error(
                "vehicle_id",
                "Register a vehicle and import its trips first.",
            ),
        });
    }
    let m = &version.methodology;
    let mut parts = Vec::new();
    let (mut trip_ids, mut session_ids) = (Vec::new(), Vec::new());
    let mut trip_flag_counts: std::collections::BTreeMap<String, i64> = Default::default();
    for v in &vehicles {
        type TripRow = (i64, Decimal, Option<Decimal>, Vec<String>);
        let rows: Vec<TripRow> = sqlx::query_as(
            "SELECT id, distance_km, energy_kwh, flags FROM trips
             WHERE vehicle_id = $1 AND claim_id IS NULL
               AND start_time >= ($2::date::timestamp AT TIME ZONE $4)
               AND start_time < (($3::date + 1)::timestamp AT TIME ZONE $4)
             ORDER BY start_time LIMIT $5",
        )
        .bind(v.id)
        .bind(sel.from)
        .bind(sel.to)
        .bind(&v.time_zone)
        .bind(MAX_TRIPS + 1)
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            continue;
        }
        if trip_ids.len() + rows.len() > MAX_TRIPS as usize {
            return Err(selection_error(
                "to",
                &format!("More than {MAX_TRIPS} trips: choose a shorter period."),
            ));
        }
        let mut input = PeriodInput {
            trips: rows.len() as u64,
            distance_km: Decimal::ZERO,
            trip_energy_kwh: Decimal::ZERO,
            measured_trips: 0,
            charging_kwh: Decimal::ZERO,
            charging_sessions: 0,
            region: v.grid_region.clone(),
        };
        for (id, distance, energy, flags) in &rows {
            trip_ids.push(*id);
            input.distance_km += distance;
            match energy {
                Some(e) => {
                    input.trip_energy_kwh += e;
                    input.measured_trips += 1;
                }
                None => {
                    input.trip_energy_kwh +=
                        distance * v.efficiency_kwh_per_100km / Decimal::ONE_HUNDRED
                }
            }
            for f in flags {
                *trip_flag_counts.entry(f.clone()).or_default() += 1;
            }
        }
        if matches!(m.params, crate::domain::methodology::Params::Energy(_)) {
            let sessions: Vec<(i64, Decimal)> = sqlx::query_as(
                "SELECT id, energy_kwh FROM charging_sessions
                 WHERE vehicle_id = $1 AND claim_id IS NULL
                   AND start_time >= ($2::date::timestamp AT TIME ZONE $4)
                   AND start_time < (($3::date + 1)::timestamp AT TIME ZONE $4)",
            )
            .bind(v.id)
            .bind(sel.from)
            .bind(sel.to)
            .bind(&v.time_zone)
            .fetch_all(&mut *conn)
            .await?;
            for (id, kwh) in sessions {
                session_ids.push(id);
                input.charging_kwh += kwh;
                input.charging_sessions += 1;
            }
        }
        let calculation = m
            .period(&input, &v.plate)
            .map_err(|message| selection_error("vehicle_id", &message))?;
        let flags = trips::period_flags(conn, owner, v.id, Some(sel.from), Some(sel.to), MAX_TRIPS)
            .await?
            .map(|(_, f)| f)
            .unwrap_or_default();
        parts.push(VehiclePart {
            vehicle_id: v.id,
            plate: v.plate.clone(),
            input,
            calculation,
            flags,
        });
    }
    if parts.is_empty() {
        return Err(selection_error(
            "from",
            "No unclaimed trips in this period: import trips, or choose another period.",
        ));
    }
    let mut regions: Vec<&str> = parts.iter().map(|p| p.input.region.as_str()).collect();
    regions.sort_unstable();
    regions.dedup();
    if regions.len() > 1 {
        return Err(selection_error(
            "vehicle_id",
            &format!(
                "Your vehicles are in different grid regions ({}): request for one vehicle at a time.",
                regions.join(", ")
            ),
        ));
    }
    let sum = |f: &dyn Fn(&VehiclePart) -> Decimal| parts.iter().map(f).sum::<Decimal>();
    let avoided = sum(&|p| p.calculation.avoided_kg);
    let issuance = m.issuance(avoided);
    let gross = issuance.gross_kg.to_i64().unwrap_or(0);
    if gross < 1 {
        return Err(selection_error(
            "from",
            &format!(
                "These trips avoid {} kg of CO₂, less than one whole kilogram: choose a longer period.",
                avoided.round_dp(3)
            ),
        ));
    }
    let period_flags: Vec<Flag> = parts.iter().flat_map(|p| p.flags.clone()).collect();
    let codes: Vec<&str> = trip_flag_counts.keys().map(String::as_str).collect();
    let risk_score = anomaly::request_risk(&period_flags, &codes);
    Ok(Computed {
        methodology_version_id: version.id,
        methodology: m.clone(),
        region: regions[0].to_owned(),
        vintage: sel.from.year(),
        trips: trip_ids.len() as i64,
        charging_sessions: session_ids.len() as i64,
        distance_km: sum(&|p| p.input.distance_km),
        energy_kwh: sum(&|p| p.calculation.energy_kwh),
        baseline_kg: sum(&|p| p.calculation.baseline_kg),
        project_kg: sum(&|p| p.calculation.project_kg),
        avoided_kg: avoided,
        gross_kg: gross,
        buffer_kg: issuance.buffer_kg.to_i64().unwrap_or(0),
        net_kg: issuance.net_kg.to_i64().unwrap_or(0),
        trip_flags: trip_flag_counts.into_iter().collect(),
        risk_score,
        parts,
        trip_ids,
        session_ids,
    })
}

/// The request the selection would make now, with its calculation (nothing is stored).
pub async fn preview(pool: &PgPool, owner: Uuid, sel: &Selection) -> Result<Computed, AppError> {
    let version = methodology::active(pool).await?;
    let mut conn = pool.acquire().await?;
    compute(&mut conn, owner, sel, &version).await
}

/// Submits a request: computed again inside the transaction with the vehicles locked (no trip
/// can change meanwhile), stored `pending`, its trips and sessions claimed. A trip already
/// claimed by a request that committed first makes this one fail whole.
#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn submit(
    pool: &PgPool,
    owner: Uuid,
    sel: &Selection,
) -> Result<(Uuid, String), AppError> {
    let version = methodology::active(pool).await?;
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT id FROM vehicles WHERE owner_id = $1 AND ($2::uuid IS NULL OR id = $2) ORDER BY id FOR UPDATE")
        .bind(owner)
        .bind(sel.vehicle)
        .execute(&mut *tx)
        .await?;
    let c = compute(&mut tx, owner, sel, &version).await?;
    let id = Uuid::new_v4();
    let number = format!("REQ-{:06}", ledger::next_number(&mut tx, "request").await?);
    let flags = json!({
        "period": c.parts.iter().flat_map(|p| p.flags.clone()).collect::<Vec<_>>(),
        "trips": c.trip_flags,
    });
    sqlx::query(
        "INSERT INTO credit_requests (id, number, owner_id, vehicle_id, period_from, period_to, region, vintage,
             methodology_version_id, trips, charging_sessions, distance_km, energy_kwh, baseline_kg, project_kg,
             avoided_kg, gross_kg, buffer_kg, net_kg, risk_score, flags, calculation, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, 'pending')",
    )
    .bind(id)
    .bind(&number)
    .bind(owner)
    .bind(sel.vehicle)
    .bind(sel.from)
    .bind(sel.to)
    .bind(&c.region)
    .bind(c.vintage)
    .bind(c.methodology_version_id)
    .bind(c.trips as i32)
    .bind(c.charging_sessions as i32)
    .bind(c.distance_km)
    .bind(c.energy_kwh)
    .bind(c.baseline_kg)
    .bind(c.project_kg)
    .bind(c.avoided_kg)
    .bind(c.gross_kg)
    .bind(c.buffer_kg)
    .bind(c.net_kg)
    .bind(c.risk_score as i32)
    .bind(Json(&flags))
    .bind(Json(&c))
    .execute(&mut *tx)
    .await?;
    let claimed =
        sqlx::query("UPDATE trips SET claim_id = $1 WHERE id = ANY($2) AND claim_id IS NULL")
            .bind(id)
            .bind(&c.trip_ids)
            .execute(&mut *tx)
            .await;
    let claimed = claimed.map_err(claim_error)?.rows_affected();
    let sessions = sqlx::query(
        "UPDATE charging_sessions SET claim_id = $1 WHERE id = ANY($2) AND claim_id IS NULL",
    )
    .bind(id)
    .bind(&c.session_ids)
    .execute(&mut *tx)
    .await
    .map_err(claim_error)?
    .rows_affected();
    if claimed != c.trip_ids.len() as u64 || sessions != c.session_ids.len() as u64 {
        return Err(already_claimed());
    }
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(owner),
            action: "credit_request.submit",
            entity: "credit_request",
            entity_id: number.clone(),
            before: None,
            after: Some(json!({
                "trips": c.trips, "charging_sessions": c.charging_sessions, "gross_kg": c.gross_kg,
                "net_kg": c.net_kg, "period": [sel.from, sel.to], "risk_score": c.risk_score,
            })),
        },
    )
    .await?;
    tx.commit().await.map_err(claim_error)?;
    Ok((id, number))
}

fn already_claimed() -> AppError {
    AppError::conflict(
        "Some of these trips were claimed by another request a moment ago. Look at the preview again.",
    )
}

fn claim_error(e: sqlx::Error) -> AppError {
    match crate::server::db::violated_constraint(&e) {
        Some("claim_exclusive") => already_claimed(),
        _ if ledger::is_retryable(&e) => already_claimed(),
        _ => e.into(),
    }
}

/// Withdraws a pending request; its trips and sessions are free again.
pub async fn cancel(pool: &PgPool, owner: Uuid, id: Uuid) -> Result<(), AppError> {
    let mut tx = pool.begin().await?;
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT number, status FROM credit_requests WHERE id = $1 AND owner_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut *tx)
    .await?;
    let (number, status) = row.ok_or_else(|| AppError::not_found("The request"))?;
    if status != "pending" {
        return Err(AppError::conflict(format!(
            "{number} is already {status}; only a pending request can be cancelled."
        )));
    }
    close(&mut tx, id, "cancelled").await?;
    release_claims(&mut tx, id).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(owner),
            action: "credit_request.cancel",
            entity: "credit_request",
            entity_id: number,
            before: Some(json!({"status": "pending"})),
            after: Some(json!({"status": "cancelled"})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn close(conn: &mut PgConnection, id: Uuid, status: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE credit_requests SET status = $2, closed_at = now() WHERE id = $1 AND status = 'pending'")
        .bind(id)
        .bind(status)
        .execute(conn)
        .await?;
    Ok(())
}

async fn release_claims(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE trips SET claim_id = NULL WHERE claim_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE charging_sessions SET claim_id = NULL WHERE claim_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A verifier's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Approve,
    /// Approve fewer kilograms (gross, before the buffer) than requested, with the reason.
    ApproveReduced {
        gross_kg: i64,
        reason: String,
    },
    Reject {
        notes: String,
    },
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub number: String,
    pub status: String,
    pub issued: Option<Issued>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Issued {
    pub serials: SerialRange,
    pub gross_kg: i64,
    pub buffer_kg: i64,
    pub net_kg: i64,
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    number: String,
    owner_id: Uuid,
    status: String,
    region: String,
    vintage: i32,
    methodology_version_id: Uuid,
    gross_kg: i64,
}

/// Decides a pending request, once: the request row is locked, so a second verifier clicking
/// at the same moment waits and then finds it decided. Approval, in the same transaction:
/// verification record, serial block minted (owner's share to their wallet, the buffer's to
/// the pool), status, notification, audit.
#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn decide(
    pool: &PgPool,
    verifier: Uuid,
    id: Uuid,
    decision: Decision,
) -> Result<Decided, AppError> {
    let mut tx = pool.begin().await?;
    let r: PendingRow = sqlx::query_as(
        "SELECT number, owner_id, status, region, vintage, methodology_version_id, gross_kg
         FROM credit_requests WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| AppError::not_found("The request"))?;
    if r.status != "pending" {
        let by: Option<(String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT u.full_name, v.created_at FROM verifications v JOIN users u ON u.id = v.verifier_id WHERE v.request_id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        return Err(AppError::conflict(match by {
            Some((name, at)) => format!(
                "{} was already {} by {name} at {} UTC.",
                r.number,
                r.status,
                at.format("%Y-%m-%d %H:%M")
            ),
            None => format!("{} is {}; there is nothing to decide.", r.number, r.status),
        }));
    }
    if r.owner_id == verifier {
        return Err(AppError::Forbidden);
    }
    let (kind, approved, notes) = match &decision {
        Decision::Approve => ("approved", r.gross_kg, String::new()),
        Decision::ApproveReduced { gross_kg, reason } => {
            let mut errors = crate::error::FieldErrors::new();
            if *gross_kg < 1 || *gross_kg >= r.gross_kg {
                errors.add(
                    "approved_kg",
                    format!(
                        "Approve between 1 and {} kg (less than the {} kg requested).",
                        r.gross_kg - 1,
                        r.gross_kg
                    ),
                );
            }
            if reason.trim().is_empty() {
                errors.add("notes", "Say why the quantity is reduced.");
            }
            errors.finish()?;
            ("approved_reduced", *gross_kg, reason.trim().to_owned())
        }
        Decision::Reject { notes } => {
            if notes.trim().is_empty() {
                return Err(AppError::invalid(
                    "notes",
                    "Tell the owner why the request is rejected.",
                ));
            }
            ("rejected", 0, notes.trim().to_owned())
        }
    };
    let verification_id = Uuid::new_v4();
    close(
        &mut tx,
        id,
        if approved > 0 { "approved" } else { "rejected" },
    )
    .await?;
    sqlx::query(
        "INSERT INTO verifications (id, request_id, verifier_id, decision, approved_kg, notes) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(verification_id)
    .bind(id)
    .bind(verifier)
    .bind(kind)
    .bind(approved)
    .bind(&notes)
    .execute(&mut *tx)
    .await?;

    let issued = if approved > 0 {
        let version = methodology::by_id(pool, r.methodology_version_id).await?;
        let issuance = version.methodology.issuance(Decimal::from(approved));
        let (gross, buffer, net) = (
            approved,
            issuance.buffer_kg.to_i64().unwrap_or(0),
            issuance.net_kg.to_i64().unwrap_or(0),
        );
        let serials = ledger::allocate_serials(&mut tx, gross).await?;
        let source =
            ledger::platform_account(&mut tx, Asset::Credit, AccountKind::IssuanceSource).await?;
        let pool_account =
            ledger::platform_account(&mut tx, Asset::Credit, AccountKind::BufferPool).await?;
        let wallet =
            ledger::user_account(&mut tx, r.owner_id, Asset::Credit, AccountKind::Available)
                .await?;
        let mut legs = vec![Leg::new(source, -Decimal::from(gross))];
        if net > 0 {
            legs.push(Leg::new(wallet, Decimal::from(net)));
        }
        if buffer > 0 {
            legs.push(Leg::new(pool_account, Decimal::from(buffer)));
        }
        let transfer = ledger::transfer(
            &mut tx,
            Transfer {
                kind: "issuance",
                legs,
                idempotency_key: Some(&format!("issuance:{id}")),
                reference: Some(r.number.clone()),
                memo: format!("{} {} {}", r.number, r.region, r.vintage),
                actor: Some(verifier),
                ..Transfer::default()
            },
        )
        .await?
        .id();
        let issuance_id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO credit_issuances (id, request_id, verification_id, owner_id, region, vintage, methodology_version_id,
                 verifier_id, serials, gross_kg, buffer_kg, net_kg, transfer_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, int8range($9, $10), $11, $12, $13, $14)",
        )
        .bind(issuance_id)
        .bind(id)
        .bind(verification_id)
        .bind(r.owner_id)
        .bind(&r.region)
        .bind(r.vintage)
        .bind(r.methodology_version_id)
        .bind(verifier)
        .bind(serials.start)
        .bind(serials.end)
        .bind(gross)
        .bind(buffer)
        .bind(net)
        .bind(transfer)
        .execute(&mut *tx)
        .await?;
        if net > 0 {
            let owner_part = SerialRange::new(serials.start, serials.start + net);
            ledger::mint_block(&mut tx, transfer, issuance_id, owner_part, wallet).await?;
        }
        if buffer > 0 {
            let pool_part = SerialRange::new(serials.start + net, serials.end);
            ledger::mint_block(&mut tx, transfer, issuance_id, pool_part, pool_account).await?;
        }
        Some(Issued {
            serials,
            gross_kg: gross,
            buffer_kg: buffer,
            net_kg: net,
        })
    } else {
        release_claims(&mut tx, id).await?;
        None
    };

    let (title, body) = match &issued {
        Some(i) => (
            format!(
                "{} approved: {} t of credits issued",
                r.number,
                kg_to_credits(Decimal::from(i.net_kg))
            ),
            if notes.is_empty() {
                format!(
                    "Serials {} are in your carbon wallet.",
                    SerialRange::new(i.serials.start, i.serials.start + i.net_kg.max(1))
                        .label(&r.region, r.vintage)
                )
            } else {
                format!(
                    "Approved {} kg of the {} kg requested: {notes}",
                    i.gross_kg, r.gross_kg
                )
            },
        ),
        None => (format!("{} rejected", r.number), notes.clone()),
    };
    notify::send(
        &mut tx,
        r.owner_id,
        if issued.is_some() {
            Kind::RequestApproved
        } else {
            Kind::RequestRejected
        },
        &title,
        &body,
        &format!("/credits/{id}"),
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(verifier),
            action: "credit_request.decide",
            entity: "credit_request",
            entity_id: r.number.clone(),
            before: Some(json!({"status": "pending", "gross_kg": r.gross_kg})),
            after: Some(json!({
                "status": if issued.is_some() { "approved" } else { "rejected" },
                "decision": kind, "approved_kg": approved, "notes": notes,
                "serials": issued.as_ref().map(|i| i.serials.label(&r.region, r.vintage)),
            })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Decided {
        number: r.number,
        status: if issued.is_some() {
            "approved"
        } else {
            "rejected"
        }
        .into(),
        issued,
    })
}
