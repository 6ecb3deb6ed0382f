//! The charging-session rows of an import: read and check each session, then insert them all
//! at once; a session id already on the platform is rejected by the unique constraint
//! (`ON CONFLICT DO NOTHING`), so two imports racing for one session cannot both take it.

use super::copy_text::{push_decimal, push_text, push_timestamp};
use super::read::{read_records, ReadLimits, Refusal, Schema, Values};
use super::{Outcome, CHUNK};
use crate::domain::trip::{check_charging, parse_number, ChargingField, ChargingRecord, Rejection};
use crate::error::AppError;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use std::collections::{HashMap, HashSet};
use tokio::sync::mpsc;
use uuid::Uuid;

const FIELDS: [ChargingField; 5] = ChargingField::REQUIRED;
const REQUIRED: [(usize, &str); 5] = [
    (0, "session_id"),
    (1, "charger_id"),
    (2, "start_time"),
    (3, "end_time"),
    (4, "energy_kwh"),
];

fn field_index(header: &str) -> Option<usize> {
    let f = ChargingField::from_header(header)?;
    FIELDS.iter().position(|x| *x == f)
}

/// Reads the file into COPY text for the staging table (line, session, charger, start, end, kWh).
pub fn read<R: std::io::Read>(
    reader: R,
    limits: ReadLimits,
    sender: mpsc::Sender<Vec<u8>>,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<Outcome, Refusal> {
    let schema = Schema {
        field_of: &field_index,
        fields: FIELDS.len(),
        required: &REQUIRED,
    };
    let mut out = Vec::with_capacity(CHUNK + 1024);
    let mut rejections = Vec::new();
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut rows_total = 0u64;
    let mut accepted = 0u64;
    let facts = read_records(reader, limits, &schema, |line, values, comma_decimal| {
        rows_total += 1;
        match resolve(values, zone, comma_decimal).and_then(|r| check_charging(&r, now).map(|_| r))
        {
            Err(rejection) => rejections.push((line, rejection)),
            Ok(r) => {
                if let Some(first) = seen.get(&r.session_id) {
                    rejections.push((line, Rejection::SessionRepeated { line: *first }));
                } else {
                    seen.insert(r.session_id.clone(), line);
                    accepted += 1;
                    out.extend_from_slice(format!("{line}\t").as_bytes());
                    push_text(&mut out, &r.session_id);
                    out.push(b'\t');
                    push_text(&mut out, &r.charger_id);
                    out.push(b'\t');
                    push_timestamp(&mut out, r.start);
                    out.push(b'\t');
                    push_timestamp(&mut out, r.end);
                    out.push(b'\t');
                    push_decimal(&mut out, r.energy_kwh);
                    out.push(b'\n');
                }
            }
        }
        if out.len() >= CHUNK {
            return sender.blocking_send(std::mem::take(&mut out)).is_ok();
        }
        true
    })?;
    if !out.is_empty() {
        sender.blocking_send(out).map_err(|_| Refusal::Stopped)?;
    }
    Ok(Outcome {
        facts,
        rows_total,
        rejections,
        imported: accepted,
        flagged: 0,
        days: HashMap::new(),
        distance_km: Decimal::ZERO,
        baseline_kg: Decimal::ZERO,
        project_kg: Decimal::ZERO,
        avoided_kg: Decimal::ZERO,
    })
}

fn resolve(
    v: Option<&Values<'_>>,
    zone: Tz,
    comma_decimal: bool,
) -> Result<ChargingRecord, Rejection> {
    let v = v.ok_or_else(|| Rejection::Unreadable {
        detail: "it is not valid text".into(),
    })?;
    let text = |i: usize, field: &str| -> Result<String, Rejection> {
        v[i].map(|s| s.trim().to_owned())
            .ok_or_else(|| Rejection::Missing {
                field: field.into(),
            })
    };
    let time = |i: usize, field: &str| -> Result<DateTime<Utc>, Rejection> {
        let raw = v[i].ok_or_else(|| Rejection::Missing {
            field: field.into(),
        })?;
        super::read_time(raw, field, zone)
    };
    let raw_energy = v[4].ok_or_else(|| Rejection::Missing {
        field: "energy_kwh".into(),
    })?;
    let energy = parse_number(raw_energy, comma_decimal).ok_or_else(|| Rejection::Garbled {
        field: "energy_kwh".into(),
        value: raw_energy.trim().into(),
        expected: "a number of kWh".into(),
    })?;
    Ok(ChargingRecord {
        session_id: text(0, "session_id")?,
        charger_id: text(1, "charger_id")?,
        start: time(2, "start_time")?,
        end: time(3, "end_time")?,
        energy_kwh: energy.round_dp(3),
    })
}

/// Copies the accepted sessions into a staging table, then inserts them; sessions already on
/// the platform become rejections. Returns the reader's refusal if the file was refused.
pub async fn store(
    conn: &mut PgConnection,
    vehicle_id: Uuid,
    import_id: Uuid,
    receiver: &mut mpsc::Receiver<Vec<u8>>,
    worker: tokio::task::JoinHandle<Result<Outcome, Refusal>>,
) -> Result<Result<Outcome, Refusal>, AppError> {
    sqlx::query(
        "CREATE TEMPORARY TABLE charging_staging (line integer, session_id text, charger_id text,
             start_time timestamptz, end_time timestamptz, energy_kwh numeric) ON COMMIT DROP",
    )
    .execute(&mut *conn)
    .await?;
    let mut copy = conn
        .copy_in_raw("COPY charging_staging (line, session_id, charger_id, start_time, end_time, energy_kwh) FROM STDIN")
        .await?;
    let mut failed = None;
    while let Some(chunk) = receiver.recv().await {
        if let Err(e) = copy.send(chunk).await {
            failed = Some(e);
            break;
        }
    }
    receiver.close();
    let outcome = worker.await.map_err(crate::server::internal)?;
    if let Some(e) = failed {
        copy.abort("import failed").await.ok();
        return Err(e.into());
    }
    let mut outcome = match outcome {
        Ok(o) => o,
        Err(refusal) => {
            copy.abort("file refused").await.ok();
            return Ok(Err(refusal));
        }
    };
    copy.finish().await?;
    let inserted: Vec<i32> = sqlx::query_scalar(
        "INSERT INTO charging_sessions (vehicle_id, import_id, line, session_id, charger_id, start_time, end_time, energy_kwh)
         SELECT $1, $2, line, session_id, charger_id, start_time, end_time, energy_kwh FROM charging_staging ORDER BY line
         ON CONFLICT (session_id) DO NOTHING RETURNING line",
    )
    .bind(vehicle_id)
    .bind(import_id)
    .fetch_all(&mut *conn)
    .await?;
    let inserted: HashSet<i32> = inserted.into_iter().collect();
    let taken: Vec<(i32, String)> =
        sqlx::query_as("SELECT line, session_id FROM charging_staging ORDER BY line")
            .fetch_all(&mut *conn)
            .await?;
    for (line, session_id) in taken.into_iter().filter(|(l, _)| !inserted.contains(l)) {
        outcome.rejections.push((
            line as u32,
            Rejection::SessionAlreadyImported { session_id },
        ));
    }
    outcome.rejections.sort_by_key(|(line, _)| *line);
    outcome.imported = inserted.len() as u64;
    Ok(Ok(outcome))
}
