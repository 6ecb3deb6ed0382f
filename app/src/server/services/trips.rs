//! An owner's trips: list with filters, edit or delete a trip that is not claimed. Every
//! change recomputes the trip's CO₂ (a new stored calculation) and keeps the per-day
//! aggregates in step, in one transaction with the vehicle locked.

use crate::domain::methodology::TripInput;
use crate::domain::trip::{check_trip, parse_number, Rejection, TripRecord};
use crate::error::{AppError, FieldErrors};
use crate::server::audit::{self, AuditEntry};
use crate::server::db::vehicles::{self, VehicleRow};
use crate::server::db::violated_constraint;
use crate::server::services::methodology;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

pub const PAGE_SIZE: i64 = 50;
pub const CLAIMED: &str = "claimed_read_only";

#[derive(Debug, Clone, FromRow)]
pub struct TripRow {
    pub id: i64,
    pub vehicle_id: Uuid,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub distance_km: Decimal,
    pub energy_kwh: Option<Decimal>,
    pub notes: Option<String>,
    pub flags: Vec<String>,
    pub avoided_kg: Decimal,
    pub claimed: bool,
    pub time_zone: String,
    pub plate: String,
}

pub struct Filter {
    pub vehicle: Option<Uuid>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub flagged_only: bool,
    pub page: i64,
}

/// The columns of `TripRow`, from trips joined with their vehicle.
pub(crate) const SELECT: &str = "SELECT t.id, t.vehicle_id, t.start_time, t.end_time, t.distance_km, t.energy_kwh, t.notes, t.flags,
        t.avoided_kg, t.claim_id IS NOT NULL AS claimed, v.time_zone, v.plate
    FROM trips t JOIN vehicles v ON v.id = t.vehicle_id";

/// One page of the owner's trips, newest first, and how many match. Dates are the
/// vehicle's local dates.
pub async fn list(pool: &PgPool, owner: Uuid, f: &Filter) -> Result<(Vec<TripRow>, i64), AppError> {
    let filter = "v.owner_id = $1 AND ($2::uuid IS NULL OR t.vehicle_id = $2)
        AND ($3::date IS NULL OR (t.start_time AT TIME ZONE v.time_zone)::date >= $3)
        AND ($4::date IS NULL OR (t.start_time AT TIME ZONE v.time_zone)::date <= $4)
        AND (NOT $5 OR cardinality(t.flags) > 0)";
    let rows = sqlx::query_as::<_, TripRow>(&format!(
        "{SELECT} WHERE {filter} ORDER BY t.start_time DESC, t.id DESC LIMIT $6 OFFSET $7"
    ))
    .bind(owner)
    .bind(f.vehicle)
    .bind(f.from)
    .bind(f.to)
    .bind(f.flagged_only)
    .bind(PAGE_SIZE)
    .bind((f.page.max(1) - 1) * PAGE_SIZE)
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM trips t JOIN vehicles v ON v.id = t.vehicle_id WHERE {filter}"
    ))
    .bind(owner)
    .bind(f.vehicle)
    .bind(f.from)
    .bind(f.to)
    .bind(f.flagged_only)
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

/// Raw edit form input; times are local to the vehicle unless they carry an offset.
pub struct TripEdit {
    pub start_time: String,
    pub end_time: String,
    pub distance_km: String,
    pub energy_kwh: String,
    pub notes: String,
}

struct Locked {
    trip: TripRow,
    vehicle: VehicleRow,
}

async fn lock(conn: &mut PgConnection, owner: Uuid, id: i64) -> Result<Locked, AppError> {
    let vehicle_id: Option<Uuid> = sqlx::query_scalar(
        "SELECT t.vehicle_id FROM trips t JOIN vehicles v ON v.id = t.vehicle_id WHERE t.id = $1 AND v.owner_id = $2",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut *conn)
    .await?;
    let vehicle_id = vehicle_id.ok_or_else(|| AppError::not_found("The trip"))?;
    let vehicle = vehicles::owned_for_update(conn, owner, vehicle_id)
        .await?
        .ok_or_else(|| AppError::not_found("The trip"))?;
    let trip = sqlx::query_as::<_, TripRow>(&format!("{SELECT} WHERE t.id = $1"))
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    if trip.claimed {
        return Err(claimed());
    }
    Ok(Locked { trip, vehicle })
}

fn claimed() -> AppError {
    AppError::conflict("This trip is part of a credit request and can no longer change.")
}

fn local_day(t: DateTime<Utc>, zone: &str) -> NaiveDate {
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    t.with_timezone(&tz).date_naive()
}

/// Adds (sign 1) or removes (sign -1) a trip from its local day's aggregate. Removal is a
/// plain UPDATE: the proposed row of an upsert would break the table's CHECKs.
async fn adjust_day(
    conn: &mut PgConnection,
    vehicle: &VehicleRow,
    start: DateTime<Utc>,
    distance: Decimal,
    energy: Option<Decimal>,
    avoided: Decimal,
    sign: i32,
) -> Result<(), sqlx::Error> {
    let energy =
        energy.unwrap_or(distance * vehicle.efficiency_kwh_per_100km / Decimal::ONE_HUNDRED);
    let day = local_day(start, &vehicle.time_zone);
    let sql = if sign > 0 {
        "INSERT INTO trip_days (vehicle_id, day, trips, distance_km, energy_kwh, avoided_kg) VALUES ($1, $2, 1, $3, $4, $5)
         ON CONFLICT (vehicle_id, day) DO UPDATE SET trips = trip_days.trips + 1,
             distance_km = trip_days.distance_km + EXCLUDED.distance_km,
             energy_kwh = trip_days.energy_kwh + EXCLUDED.energy_kwh,
             avoided_kg = trip_days.avoided_kg + EXCLUDED.avoided_kg"
    } else {
        "UPDATE trip_days SET trips = trips - 1, distance_km = distance_km - $3, energy_kwh = energy_kwh - $4,
             avoided_kg = avoided_kg - $5 WHERE vehicle_id = $1 AND day = $2"
    };
    sqlx::query(sql)
        .bind(vehicle.id)
        .bind(day)
        .bind(distance)
        .bind(energy)
        .bind(avoided)
        .execute(conn)
        .await?;
    Ok(())
}

fn parse_edit(e: &TripEdit, zone: chrono_tz::Tz) -> Result<TripRecord, AppError> {
    let mut errors = FieldErrors::new();
    // A datetime-local input sends "2026-03-01T08:30", read in the vehicle's zone.
    let time = |raw: &str, field: &str| {
        crate::server::services::import::read_time(raw, field, zone)
            .map_err(|r| capitalise(&r.message()))
    };
    let start = errors.check("start_time", time(&e.start_time, "start_time"));
    let end = errors.check("end_time", time(&e.end_time, "end_time"));
    let distance = errors.check(
        "distance_km",
        parse_number(&e.distance_km, true)
            .ok_or_else(|| "Enter the distance in km, like 12.5.".to_owned()),
    );
    let energy = if e.energy_kwh.trim().is_empty() {
        Some(None)
    } else {
        errors.check(
            "energy_kwh",
            parse_number(&e.energy_kwh, true)
                .filter(|v| *v >= Decimal::ZERO)
                .map(Some)
                .ok_or_else(|| {
                    "Enter the energy in kWh, or leave it empty to estimate it.".to_owned()
                }),
        )
    };
    errors.finish()?;
    let notes = e.notes.trim();
    Ok(TripRecord {
        start: start.unwrap(),
        end: end.unwrap(),
        distance_km: distance.unwrap().round_dp(3),
        energy_kwh: energy.unwrap().map(|v| v.round_dp(3)),
        start_lat: None,
        start_lng: None,
        end_lat: None,
        end_lng: None,
        odometer_start_km: None,
        odometer_end_km: None,
        notes: (!notes.is_empty()).then(|| notes.to_owned()),
    })
}

fn rejection_field(r: &Rejection) -> &'static str {
    match r {
        Rejection::DistanceNotPositive | Rejection::TooFast { .. } => "distance_km",
        Rejection::TooLong { .. } => "notes",
        Rejection::EndNotAfterStart | Rejection::InFuture { .. } => "end_time",
        _ => "start_time",
    }
}

#[tracing::instrument(skip(pool, edit), err(level = "info"))]
pub async fn update(
    pool: &PgPool,
    owner: Uuid,
    id: i64,
    edit: TripEdit,
) -> Result<TripRow, AppError> {
    let version = methodology::active(pool).await?;
    let mut tx = pool.begin().await?;
    let Locked { trip, vehicle } = lock(&mut tx, owner, id).await?;
    let zone: chrono_tz::Tz = vehicle.time_zone.parse().map_err(crate::server::internal)?;
    let record = parse_edit(&edit, zone)?;
    check_trip(&record, Utc::now())
        .map_err(|r| AppError::invalid(rejection_field(&r), capitalise(&r.message())))?;
    // Stored trips never overlap each other, so only two can overlap the edit: one starting
    // inside it, or the last one starting before it. Both are short index range scans.
    let overlap: Option<DateTime<Utc>> = sqlx::query_scalar(
        "(SELECT start_time FROM trips WHERE vehicle_id = $1 AND id <> $2 AND start_time >= $3 AND start_time < $4
          ORDER BY start_time LIMIT 1)
         UNION ALL
         (SELECT start_time FROM (SELECT start_time, end_time FROM trips
                                   WHERE vehicle_id = $1 AND id <> $2 AND start_time < $3
                                   ORDER BY start_time DESC LIMIT 1) last WHERE end_time > $3)
         LIMIT 1",
    )
    .bind(vehicle.id)
    .bind(id)
    .bind(record.start)
    .bind(record.end)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(other) = overlap {
        let when = other.with_timezone(&zone).format("%Y-%m-%d %H:%M");
        return Err(AppError::invalid(
            "start_time",
            format!("This overlaps your trip of {when}."),
        ));
    }
    let calc = version
        .methodology
        .calculate(&TripInput {
            distance_km: record.distance_km,
            measured_energy_kwh: record.energy_kwh,
            efficiency_kwh_per_100km: vehicle.efficiency_kwh_per_100km,
            region: vehicle.grid_region.clone(),
        })
        .map_err(crate::server::internal)?;
    let calculation_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO co2_calculations (id, methodology_version_id, vehicle_id, efficiency_kwh_per_100km, grid_region,
             trips, distance_km, baseline_kg, project_kg, avoided_kg) VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9)",
    )
    .bind(calculation_id)
    .bind(version.id)
    .bind(vehicle.id)
    .bind(vehicle.efficiency_kwh_per_100km)
    .bind(&vehicle.grid_region)
    .bind(record.distance_km)
    .bind(calc.baseline_kg)
    .bind(calc.project_kg)
    .bind(calc.avoided_kg)
    .execute(&mut *tx)
    .await?;
    adjust_day(
        &mut tx,
        &vehicle,
        trip.start_time,
        trip.distance_km,
        trip.energy_kwh,
        trip.avoided_kg,
        -1,
    )
    .await?;
    sqlx::query(
        "UPDATE trips SET start_time = $2, end_time = $3, distance_km = $4, energy_kwh = $5, notes = $6,
                calculation_id = $7, avoided_kg = $8 WHERE id = $1",
    )
    .bind(id)
    .bind(record.start)
    .bind(record.end)
    .bind(record.distance_km)
    .bind(record.energy_kwh)
    .bind(&record.notes)
    .bind(calculation_id)
    .bind(calc.avoided_kg)
    .execute(&mut *tx)
    .await
    .map_err(|e| if violated_constraint(&e) == Some(CLAIMED) { claimed() } else { e.into() })?;
    adjust_day(
        &mut tx,
        &vehicle,
        record.start,
        record.distance_km,
        record.energy_kwh,
        calc.avoided_kg,
        1,
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(owner),
            action: "trip.update",
            entity: "trip",
            entity_id: id.to_string(),
            before: Some(json!({"start": trip.start_time, "end": trip.end_time, "distance_km": trip.distance_km, "energy_kwh": trip.energy_kwh})),
            after: Some(json!({"start": record.start, "end": record.end, "distance_km": record.distance_km, "energy_kwh": record.energy_kwh})),
        },
    )
    .await?;
    let updated = sqlx::query_as::<_, TripRow>(&format!("{SELECT} WHERE t.id = $1"))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(updated)
}

#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn delete(pool: &PgPool, owner: Uuid, id: i64) -> Result<(), AppError> {
    let mut tx = pool.begin().await?;
    let Locked { trip, vehicle } = lock(&mut tx, owner, id).await?;
    sqlx::query("DELETE FROM trips WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if violated_constraint(&e) == Some(CLAIMED) {
                claimed()
            } else {
                e.into()
            }
        })?;
    adjust_day(
        &mut tx,
        &vehicle,
        trip.start_time,
        trip.distance_km,
        trip.energy_kwh,
        trip.avoided_kg,
        -1,
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(owner),
            action: "trip.delete",
            entity: "trip",
            entity_id: id.to_string(),
            before: Some(json!({"start": trip.start_time, "end": trip.end_time, "distance_km": trip.distance_km})),
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().collect::<String>() + c.as_str() + ".",
        None => String::new(),
    }
}

/// All matching trips as CSV, oldest first, produced 2,000 rows at a time (keyset paging), so
/// memory stays flat however many trips there are.
pub fn export_csv(
    pool: PgPool,
    owner: Uuid,
    filter: Filter,
) -> impl futures::Stream<Item = Result<String, AppError>> + Send + 'static {
    struct State {
        pool: PgPool,
        owner: Uuid,
        filter: Filter,
        after: Option<(DateTime<Utc>, i64)>,
        header: bool,
        done: bool,
    }
    let start = State {
        pool,
        owner,
        filter,
        after: None,
        header: false,
        done: false,
    };
    futures::stream::unfold(start, |mut st| async move {
        if st.done {
            return None;
        }
        let mut out = csv::Writer::from_writer(Vec::new());
        if !st.header {
            st.header = true;
            let _ = out.write_record([
                "vehicle_plate",
                "start_time_utc",
                "end_time_utc",
                "local_start",
                "distance_km",
                "energy_kwh",
                "avoided_kg",
                "flags",
                "claimed",
                "notes",
            ]);
        }
        let f = &st.filter;
        let rows = sqlx::query_as::<_, TripRow>(&format!(
            "{SELECT} WHERE v.owner_id = $1 AND ($2::uuid IS NULL OR t.vehicle_id = $2)
               AND ($3::date IS NULL OR (t.start_time AT TIME ZONE v.time_zone)::date >= $3)
               AND ($4::date IS NULL OR (t.start_time AT TIME ZONE v.time_zone)::date <= $4)
               AND (NOT $5 OR cardinality(t.flags) > 0)
               AND ($6::timestamptz IS NULL OR (t.start_time, t.id) > ($6, $7))
             ORDER BY t.start_time, t.id LIMIT 2000"
        ))
        .bind(st.owner)
        .bind(f.vehicle)
        .bind(f.from)
        .bind(f.to)
        .bind(f.flagged_only)
        .bind(st.after.map(|a| a.0))
        .bind(st.after.map_or(0, |a| a.1))
        .fetch_all(&st.pool)
        .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                st.done = true;
                return Some((Err(AppError::from(e)), st));
            }
        };
        if rows.len() < 2000 {
            st.done = true;
        }
        for r in &rows {
            let tz: chrono_tz::Tz = r.time_zone.parse().unwrap_or(chrono_tz::UTC);
            let _ = out.write_record(crate::domain::spreadsheet::safe_record([
                r.plate.clone(),
                r.start_time.to_rfc3339(),
                r.end_time.to_rfc3339(),
                r.start_time
                    .with_timezone(&tz)
                    .format("%Y-%m-%d %H:%M")
                    .to_string(),
                r.distance_km.normalize().to_string(),
                r.energy_kwh
                    .map(|e| e.normalize().to_string())
                    .unwrap_or_default(),
                r.avoided_kg.normalize().to_string(),
                r.flags.join(" "),
                r.claimed.to_string(),
                r.notes.clone().unwrap_or_default(),
            ]));
        }
        st.after = rows.last().map(|r| (r.start_time, r.id));
        let text = String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default();
        Some((Ok(text), st))
    })
}

/// More trips than this in a period are not checked as a whole on the trips page.
pub const PERIOD_CHECK_LIMIT: i64 = 20_000;

/// Months of history the volume check compares a period with.
const HISTORY_MONTHS: i32 = 12;

/// The period checks of SPEC §3.3 (long days, odometer, far from home, volume jump, identical
/// trips) over one vehicle's trips between two local dates (inclusive, either open), against
/// the twelve months before the first of them. `None` when more than `limit` trips match.
pub async fn period_flags(
    conn: &mut PgConnection,
    owner: Uuid,
    vehicle: Uuid,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    limit: i64,
) -> Result<Option<(i64, Vec<crate::domain::anomaly::Flag>)>, AppError> {
    use crate::domain::anomaly::{self, History, TripFacts};
    let v = vehicles::owned(&mut *conn, owner, vehicle)
        .await?
        .ok_or_else(|| AppError::not_found("The vehicle"))?;
    let filter = "t.vehicle_id = $1
        AND ($2::date IS NULL OR t.start_time >= ($2::date::timestamp AT TIME ZONE $4))
        AND ($3::date IS NULL OR t.start_time < (($3::date + 1)::timestamp AT TIME ZONE $4))";
    let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM trips t WHERE {filter}"))
        .bind(vehicle)
        .bind(from)
        .bind(to)
        .bind(&v.time_zone)
        .fetch_one(&mut *conn)
        .await?;
    if count > limit {
        return Ok(None);
    }
    type Row = (
        DateTime<Utc>,
        DateTime<Utc>,
        Decimal,
        Option<Decimal>,
        Option<Decimal>,
        Option<Decimal>,
        Option<Decimal>,
        Option<Decimal>,
    );
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT start_time, end_time, distance_km, energy_kwh, odometer_start_km, odometer_end_km, start_lat, start_lng
         FROM trips t WHERE {filter} ORDER BY start_time"
    ))
    .bind(vehicle)
    .bind(from)
    .bind(to)
    .bind(&v.time_zone)
    .fetch_all(&mut *conn)
    .await?;
    let Some(first) = rows.first().map(|r| local_day(r.0, &v.time_zone)) else {
        return Ok(Some((0, Vec::new())));
    };
    let facts: Vec<TripFacts> = rows
        .into_iter()
        .map(|r| TripFacts {
            start: r.0,
            end: r.1,
            distance_km: r.2,
            energy_kwh: r.3,
            odometer_start_km: r.4,
            odometer_end_km: r.5,
            start_lat: r.6,
            start_lng: r.7,
        })
        .collect();
    // Kilometres per calendar month before the period's first trip, months with trips only.
    let monthly_km: Vec<Decimal> = sqlx::query_scalar(
        "SELECT sum(distance_km) FROM trip_days
         WHERE vehicle_id = $1 AND day < date_trunc('month', $2::date)
           AND day >= date_trunc('month', $2::date) - make_interval(months => $3)
         GROUP BY date_trunc('month', day) ORDER BY date_trunc('month', day)",
    )
    .bind(vehicle)
    .bind(first)
    .bind(HISTORY_MONTHS)
    .fetch_all(&mut *conn)
    .await?;
    let flags = anomaly::period_flags(&facts, &History { monthly_km });
    Ok(Some((count, flags)))
}
