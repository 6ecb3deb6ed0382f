//! Importing trips and charging sessions from an uploaded file, in one transaction: the file
//! streams through a reader thread (decode, parse, check, CO₂, COPY text) into PostgreSQL
//! COPY, so memory stays flat whatever the file's size. Rejected rows are stored with their
//! line and reason; the report is read back from `data_imports`.

mod charging;
mod copy_text;
pub mod read;
pub(crate) mod trips;

use crate::error::AppError;
use crate::server::audit::{self, AuditEntry};
use crate::server::db::vehicles::{self, VehicleRow};
use crate::server::services::methodology;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::Stream;
use read::{read_records, FileFacts, ReadLimits, Refusal, Schema};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeMap, HashMap};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Trips,
    Charging,
}

impl Kind {
    pub fn parse(s: &str) -> Result<Kind, String> {
        match s.trim() {
            "trips" | "" => Ok(Kind::Trips),
            "charging" => Ok(Kind::Charging),
            other => Err(format!(
                "“{other}” is not an import type (trips or charging)."
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Trips => "trips",
            Kind::Charging => "charging",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Trips => "trip data",
            Kind::Charging => "charging-session data",
        }
    }
}

/// COPY text is handed to the database in chunks of about this size.
const CHUNK: usize = 256 * 1024;

/// What the reader thread hands back at the end.
struct Outcome {
    facts: FileFacts,
    rows_total: u64,
    rejections: Vec<(u32, crate::domain::trip::Rejection)>,
    imported: u64,
    flagged: u64,
    days: HashMap<NaiveDate, trips::DayTotals>,
    distance_km: Decimal,
    baseline_kg: Decimal,
    project_kg: Decimal,
    avoided_kg: Decimal,
}

/// Imports `body` for the owner's vehicle and returns the import's id.
#[tracing::instrument(skip(pool, body), err(level = "info"))]
pub async fn import<S>(
    pool: &PgPool,
    owner: Uuid,
    vehicle_id: Uuid,
    kind: Kind,
    file_name: &str,
    limits: ReadLimits,
    body: S,
) -> Result<Uuid, AppError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
{
    let version = methodology::active(pool).await?;
    let mut tx = pool.begin().await?;
    let vehicle = vehicles::owned_for_update(&mut tx, owner, vehicle_id)
        .await?
        .ok_or_else(|| AppError::not_found("The vehicle"))?;
    if vehicle.archived_at.is_some() {
        return Err(AppError::invalid(
            "vehicle_id",
            "This vehicle is archived; restore it before importing data for it.",
        ));
    }
    let zone: chrono_tz::Tz = vehicle.time_zone.parse().map_err(crate::server::internal)?;
    let import_id = Uuid::new_v4();
    let calculation_id = Uuid::new_v4();
    let file_name: String = file_name.trim().chars().take(200).collect();
    sqlx::query(
        "INSERT INTO data_imports (id, owner_id, vehicle_id, kind, file_name, file_bytes, file_sha256, format,
                                   rows_total, rows_imported, rows_duplicate, rows_rejected, rows_flagged)
         VALUES ($1, $2, $3, $4, $5, 0, '', '', 0, 0, 0, 0, 0)",
    )
    .bind(import_id)
    .bind(owner)
    .bind(vehicle_id)
    .bind(kind.as_str())
    .bind(if file_name.is_empty() { "upload" } else { &file_name })
    .execute(&mut *tx)
    .await?;

    let (sender, mut receiver) = mpsc::channel::<Vec<u8>>(4);
    let reader = SyncIoBridge::new(StreamReader::new(body));
    let now = Utc::now();
    let outcome = match kind {
        Kind::Trips => {
            sqlx::query(
                "INSERT INTO co2_calculations (id, methodology_version_id, vehicle_id, efficiency_kwh_per_100km,
                     grid_region, trips, distance_km, baseline_kg, project_kg, avoided_kg)
                 VALUES ($1, $2, $3, $4, $5, 0, 0, 0, 0, 0)",
            )
            .bind(calculation_id)
            .bind(version.id)
            .bind(vehicle_id)
            .bind(vehicle.efficiency_kwh_per_100km)
            .bind(&vehicle.grid_region)
            .execute(&mut *tx)
            .await?;
            let intervals = existing_intervals(&mut tx, vehicle_id).await?;
            let methodology = version.methodology.clone();
            let vehicle = vehicle.clone();
            let worker = tokio::task::spawn_blocking(move || {
                read_trips(
                    reader,
                    limits,
                    sender,
                    &vehicle,
                    zone,
                    now,
                    &methodology,
                    intervals,
                    import_id,
                    calculation_id,
                )
            });
            let mut copy = tx.copy_in_raw(trips::COPY).await?;
            let mut copy_failed = None;
            while let Some(chunk) = receiver.recv().await {
                if let Err(e) = copy.send(chunk).await {
                    copy_failed = Some(e);
                    break;
                }
            }
            drop(receiver);
            let outcome = worker.await.map_err(crate::server::internal)?;
            if let Some(e) = copy_failed {
                copy.abort("import failed").await.ok();
                return Err(e.into());
            }
            match outcome {
                Ok(outcome) => {
                    let copied = copy.finish().await?;
                    debug_assert_eq!(copied, outcome.imported);
                    outcome
                }
                Err(refusal) => {
                    copy.abort("file refused").await.ok();
                    return Err(refusal_error(refusal, kind));
                }
            }
        }
        Kind::Charging => {
            let worker = tokio::task::spawn_blocking(move || {
                charging::read(reader, limits, sender, zone, now)
            });
            charging::store(&mut tx, vehicle_id, import_id, &mut receiver, worker)
                .await?
                .map_err(|r| refusal_error(r, kind))?
        }
    };

    store_rejections(&mut tx, import_id, &outcome.rejections).await?;
    if kind == Kind::Trips {
        store_days(&mut tx, vehicle_id, &outcome.days).await?;
        sqlx::query(
            "UPDATE co2_calculations SET trips = $2, distance_km = $3, baseline_kg = $4, project_kg = $5, avoided_kg = $6
             WHERE id = $1",
        )
        .bind(calculation_id)
        .bind(outcome.imported as i32)
        .bind(outcome.distance_km)
        .bind(outcome.baseline_kg)
        .bind(outcome.project_kg)
        .bind(outcome.avoided_kg)
        .execute(&mut *tx)
        .await?;
    }
    let duplicates = outcome
        .rejections
        .iter()
        .filter(|(_, r)| r.is_duplicate())
        .count();
    sqlx::query(
        "UPDATE data_imports SET file_bytes = $2, file_sha256 = $3, format = $4, rows_total = $5, rows_imported = $6,
                rows_duplicate = $7, rows_rejected = $8, rows_flagged = $9, avoided_kg = $10
         WHERE id = $1",
    )
    .bind(import_id)
    .bind(outcome.facts.bytes as i64)
    .bind(&outcome.facts.sha256)
    .bind(&outcome.facts.format)
    .bind(outcome.rows_total as i32)
    .bind(outcome.imported as i32)
    .bind(duplicates as i32)
    .bind(outcome.rejections.len() as i32)
    .bind(outcome.flagged as i32)
    .bind(outcome.avoided_kg)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(owner),
            action: if kind == Kind::Trips {
                "import.trips"
            } else {
                "import.charging"
            },
            entity: "vehicle",
            entity_id: vehicle_id.to_string(),
            before: None,
            after: Some(json!({
                "import_id": import_id, "file": file_name, "rows": outcome.rows_total,
                "imported": outcome.imported, "rejected": outcome.rejections.len(),
            })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(import_id)
}

/// A time from a file or a form: with an offset, or local to the vehicle's `zone` (an hour
/// repeated when clocks go back is taken at its first occurrence; one they skip is refused).
pub(crate) fn read_time(
    raw: &str,
    field: &str,
    zone: chrono_tz::Tz,
) -> Result<DateTime<Utc>, crate::domain::trip::Rejection> {
    use crate::domain::trip::{Rejection, Timestamp};
    match Timestamp::parse(raw) {
        Some(Timestamp::Absolute(t)) => Ok(t.with_timezone(&Utc)),
        Some(Timestamp::Local(local)) => match local.and_local_timezone(zone) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                Ok(t.with_timezone(&Utc))
            }
            chrono::LocalResult::None => Err(Rejection::LocalTimeInvalid {
                field: field.into(),
                value: raw.trim().into(),
                zone: zone.name().into(),
            }),
        },
        None => Err(Rejection::Garbled {
            field: field.into(),
            value: raw.trim().into(),
            expected: "a date and time like 2026-03-01T08:30:00+07:00".into(),
        }),
    }
}

fn refusal_error(refusal: Refusal, kind: Kind) -> AppError {
    match refusal {
        Refusal::Stopped => crate::server::internal("import reader stopped"),
        other => AppError::invalid("file", other.message(kind.what())),
    }
}

/// Start → (end, 0) of the vehicle's stored trips.
async fn existing_intervals(
    conn: &mut PgConnection,
    vehicle_id: Uuid,
) -> Result<BTreeMap<i64, (i64, u32)>, sqlx::Error> {
    use futures::TryStreamExt;
    let mut map = BTreeMap::new();
    let mut rows = sqlx::query_as::<_, (DateTime<Utc>, DateTime<Utc>)>(
        "SELECT start_time, end_time FROM trips WHERE vehicle_id = $1",
    )
    .bind(vehicle_id)
    .fetch(conn);
    while let Some((start, end)) = rows.try_next().await? {
        map.insert(start.timestamp_micros(), (end.timestamp_micros(), 0));
    }
    Ok(map)
}

#[allow(clippy::too_many_arguments)]
fn read_trips<R: std::io::Read>(
    reader: R,
    limits: ReadLimits,
    sender: mpsc::Sender<Vec<u8>>,
    vehicle: &VehicleRow,
    zone: chrono_tz::Tz,
    now: DateTime<Utc>,
    methodology: &crate::domain::methodology::Methodology,
    intervals: BTreeMap<i64, (i64, u32)>,
    import_id: Uuid,
    calculation_id: Uuid,
) -> Result<Outcome, Refusal> {
    let mut pipeline = trips::Pipeline {
        zone,
        comma_decimal: false,
        now,
        methodology,
        efficiency: vehicle.efficiency_kwh_per_100km,
        input: crate::domain::methodology::TripInput {
            distance_km: Decimal::ZERO,
            measured_energy_kwh: None,
            efficiency_kwh_per_100km: vehicle.efficiency_kwh_per_100km,
            region: vehicle.grid_region.clone(),
        },
        intervals,
        vehicle_id: vehicle.id,
        import_id,
        calculation_id,
        scratch: Default::default(),
        out: {
            let mut out = Vec::with_capacity(CHUNK + 4096);
            out.extend_from_slice(trips::BINARY_HEADER);
            out
        },
        rejections: Vec::new(),
        days: HashMap::new(),
        imported: 0,
        flagged: 0,
        distance_km: Decimal::ZERO,
        baseline_kg: Decimal::ZERO,
        project_kg: Decimal::ZERO,
        avoided_kg: Decimal::ZERO,
    };
    let schema = Schema {
        field_of: &trips::field_index,
        fields: trips::FIELDS.len(),
        required: &trips::REQUIRED,
    };
    let mut rows_total = 0u64;
    let started = std::time::Instant::now();
    let mut waited = std::time::Duration::ZERO;
    let facts = read_records(reader, limits, &schema, |line, values, comma_decimal| {
        // `values` is None for a row whose bytes are not text.
        rows_total += 1;
        pipeline.comma_decimal = comma_decimal;
        pipeline.record(line, values);
        if pipeline.out.len() >= CHUNK {
            let chunk = std::mem::replace(&mut pipeline.out, Vec::with_capacity(CHUNK + 4096));
            let t = std::time::Instant::now();
            let sent = sender.blocking_send(chunk).is_ok();
            waited += t.elapsed();
            return sent;
        }
        true
    })?;
    tracing::info!(
        rows = rows_total,
        total_ms = started.elapsed().as_millis() as u64,
        waiting_for_database_ms = waited.as_millis() as u64,
        "trip file read"
    );
    pipeline.out.extend_from_slice(&trips::BINARY_TRAILER);
    let chunk = std::mem::take(&mut pipeline.out);
    sender.blocking_send(chunk).map_err(|_| Refusal::Stopped)?;
    Ok(Outcome {
        facts,
        rows_total,
        rejections: pipeline.rejections,
        imported: pipeline.imported,
        flagged: pipeline.flagged,
        days: pipeline.days,
        distance_km: pipeline.distance_km,
        baseline_kg: pipeline.baseline_kg,
        project_kg: pipeline.project_kg,
        avoided_kg: pipeline.avoided_kg,
    })
}

async fn store_rejections(
    conn: &mut PgConnection,
    import_id: Uuid,
    rejections: &[(u32, crate::domain::trip::Rejection)],
) -> Result<(), sqlx::Error> {
    if rejections.is_empty() {
        return Ok(());
    }
    let mut copy = conn
        .copy_in_raw("COPY import_rejections (import_id, line, reason) FROM STDIN")
        .await?;
    let mut buf = Vec::with_capacity(CHUNK + 1024);
    for (line, rejection) in rejections {
        buf.extend_from_slice(format!("{import_id}\t{line}\t").as_bytes());
        copy_text::push_text(&mut buf, &rejection.message());
        buf.push(b'\n');
        if buf.len() >= CHUNK {
            copy.send(std::mem::take(&mut buf)).await?;
        }
    }
    if !buf.is_empty() {
        copy.send(buf).await?;
    }
    copy.finish().await?;
    Ok(())
}

async fn store_days(
    conn: &mut PgConnection,
    vehicle_id: Uuid,
    days: &HashMap<NaiveDate, trips::DayTotals>,
) -> Result<(), sqlx::Error> {
    if days.is_empty() {
        return Ok(());
    }
    let mut dates = Vec::with_capacity(days.len());
    let (mut trips, mut distance, mut energy, mut avoided) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (day, t) in days {
        dates.push(*day);
        trips.push(t.trips);
        distance.push(t.distance_km);
        energy.push(t.energy_kwh);
        avoided.push(t.avoided_kg);
    }
    sqlx::query(
        "INSERT INTO trip_days (vehicle_id, day, trips, distance_km, energy_kwh, avoided_kg)
         SELECT $1, * FROM UNNEST($2::date[], $3::int[], $4::numeric[], $5::numeric[], $6::numeric[])
         ON CONFLICT (vehicle_id, day) DO UPDATE SET
             trips = trip_days.trips + EXCLUDED.trips,
             distance_km = trip_days.distance_km + EXCLUDED.distance_km,
             energy_kwh = trip_days.energy_kwh + EXCLUDED.energy_kwh,
             avoided_kg = trip_days.avoided_kg + EXCLUDED.avoided_kg",
    )
    .bind(vehicle_id)
    .bind(&dates)
    .bind(&trips)
    .bind(&distance)
    .bind(&energy)
    .bind(&avoided)
    .execute(conn)
    .await?;
    Ok(())
}

/// The report of an import, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportRow {
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
    /// When the same file was imported earlier for the same vehicle.
    pub earlier_same_file: Option<DateTime<Utc>>,
}

pub async fn report(pool: &PgPool, owner: Uuid, id: Uuid) -> Result<ImportRow, AppError> {
    sqlx::query_as::<_, ImportRow>(
        "SELECT i.id, i.vehicle_id, i.kind, i.file_name, i.file_bytes, i.format, i.rows_total, i.rows_imported,
                i.rows_duplicate, i.rows_rejected, i.rows_flagged, i.avoided_kg, i.created_at,
                (SELECT min(e.created_at) FROM data_imports e
                  WHERE e.vehicle_id = i.vehicle_id AND e.file_sha256 = i.file_sha256 AND e.created_at < i.created_at) AS earlier_same_file
         FROM data_imports i WHERE i.id = $1 AND i.owner_id = $2",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| AppError::not_found("The import"))
}

/// Rejected rows of an import, in line order.
pub async fn rejections(
    pool: &PgPool,
    import_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<(i32, String)>, AppError> {
    Ok(sqlx::query_as(
        "SELECT line, reason FROM import_rejections WHERE import_id = $1 ORDER BY line LIMIT $2 OFFSET $3",
    )
    .bind(import_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?)
}
