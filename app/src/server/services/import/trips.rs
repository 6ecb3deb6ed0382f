//! The trip rows of an import: read each record into a trip (local times in the vehicle's
//! zone), check it, refuse duplicates and overlaps (with trips already stored and with earlier
//! lines of the file), compute its CO₂ with the active methodology, flag anomalies, and write
//! it as a line of PostgreSQL COPY text.

use super::read::Values;
use crate::domain::anomaly::{self, TripFacts};
use crate::domain::methodology::{Methodology, TripInput};
use crate::domain::trip::{check_trip, parse_number, Rejection, TripField, TripRecord};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};

pub const FIELDS: [TripField; 11] = [
    TripField::StartTime,
    TripField::EndTime,
    TripField::DistanceKm,
    TripField::EnergyKwh,
    TripField::StartLat,
    TripField::StartLng,
    TripField::EndLat,
    TripField::EndLng,
    TripField::OdometerStartKm,
    TripField::OdometerEndKm,
    TripField::Notes,
];

pub fn field_index(header: &str) -> Option<usize> {
    let f = TripField::from_header(header)?;
    FIELDS.iter().position(|x| *x == f)
}

pub const REQUIRED: [(usize, &str); 3] = [(0, "start_time"), (1, "end_time"), (2, "distance_km")];

/// The COPY column list matching `Pipeline::write`, in PostgreSQL's binary format: nothing for
/// the server to parse (a million timestamps and decimals as text cost it seconds).
pub const COPY: &str = "COPY trips (vehicle_id, import_id, line, start_time, end_time, distance_km, energy_kwh, \
     start_lat, start_lng, end_lat, end_lng, odometer_start_km, odometer_end_km, notes, flags, calculation_id, avoided_kg) \
     FROM STDIN (FORMAT binary)";

/// Columns per row of `COPY`.
const COLUMNS: i16 = 17;

/// Totals of one local day.
#[derive(Debug, Default, Clone)]
pub struct DayTotals {
    pub trips: i32,
    pub distance_km: Decimal,
    pub energy_kwh: Decimal,
    pub avoided_kg: Decimal,
}

pub struct Pipeline<'a> {
    pub zone: Tz,
    pub comma_decimal: bool,
    pub now: DateTime<Utc>,
    pub methodology: &'a Methodology,
    pub efficiency: Decimal,
    /// The vehicle's side of the calculation; distance and energy change per trip.
    pub input: TripInput,
    /// Start → (end, line) of every accepted trip; line 0 for trips already stored.
    pub intervals: BTreeMap<i64, (i64, u32)>,
    pub vehicle_id: uuid::Uuid,
    pub import_id: uuid::Uuid,
    pub calculation_id: uuid::Uuid,
    /// Scratch space for encoding one value.
    pub scratch: sqlx::postgres::PgArgumentBuffer,
    pub out: Vec<u8>,
    pub rejections: Vec<(u32, Rejection)>,
    pub days: HashMap<NaiveDate, DayTotals>,
    pub imported: u64,
    pub flagged: u64,
    pub distance_km: Decimal,
    pub baseline_kg: Decimal,
    pub project_kg: Decimal,
    pub avoided_kg: Decimal,
}

impl Pipeline<'_> {
    /// Handles one record; the COPY text accumulates in `out`.
    /// `values` is None when the row's bytes are not text.
    pub fn record(&mut self, line: u32, values: Option<&Values<'_>>) {
        match self.accept(line, values) {
            Ok(()) => {}
            Err(rejection) => self.rejections.push((line, rejection)),
        }
    }

    fn accept(&mut self, line: u32, values: Option<&Values<'_>>) -> Result<(), Rejection> {
        let values = values.ok_or_else(|| Rejection::Unreadable {
            detail: "it is not valid text".into(),
        })?;
        let trip = self.resolve(values)?;
        check_trip(&trip, self.now)?;
        let (start, end) = (trip.start.timestamp_micros(), trip.end.timestamp_micros());
        if let Some((&other_start, &(other_end, other_line))) =
            self.intervals.range(..end).next_back()
        {
            if other_end > start {
                let line = (other_line > 0).then_some(other_line);
                return Err(if other_start == start && other_end == end {
                    Rejection::Duplicate { line }
                } else {
                    Rejection::Overlap { line }
                });
            }
        }
        self.input.distance_km = trip.distance_km;
        self.input.measured_energy_kwh = trip.energy_kwh;
        let calc = self
            .methodology
            .figures(&self.input)
            .map_err(|detail| Rejection::Unreadable { detail })?;
        let facts = TripFacts {
            start: trip.start,
            end: trip.end,
            distance_km: trip.distance_km,
            energy_kwh: trip.energy_kwh,
            odometer_start_km: trip.odometer_start_km,
            odometer_end_km: trip.odometer_end_km,
            start_lat: trip.start_lat,
            start_lng: trip.start_lng,
        };
        let flags = anomaly::trip_flags(&facts);
        self.intervals.insert(start, (end, line));
        self.write(
            line,
            &trip,
            &flags.iter().map(|f| f.code()).collect::<Vec<_>>(),
            calc.avoided_kg,
        );

        let energy = trip
            .energy_kwh
            .unwrap_or(trip.distance_km * self.efficiency / Decimal::ONE_HUNDRED);
        let day = self
            .days
            .entry(trip.start.with_timezone(&self.zone).date_naive())
            .or_default();
        day.trips += 1;
        day.distance_km += trip.distance_km;
        day.energy_kwh += energy;
        day.avoided_kg += calc.avoided_kg;
        self.imported += 1;
        self.flagged += u64::from(!flags.is_empty());
        self.distance_km += trip.distance_km;
        self.baseline_kg += calc.baseline_kg;
        self.project_kg += calc.project_kg;
        self.avoided_kg += calc.avoided_kg;
        Ok(())
    }

    fn resolve(&self, v: &Values<'_>) -> Result<TripRecord, Rejection> {
        let time = |i: usize, field: &str| -> Result<DateTime<Utc>, Rejection> {
            let raw = v[i].ok_or_else(|| Rejection::Missing {
                field: field.into(),
            })?;
            super::read_time(raw, field, self.zone)
        };
        let number = |i: usize, field: &str| -> Result<Option<Decimal>, Rejection> {
            match v[i] {
                None => Ok(None),
                Some(raw) => parse_number(raw, self.comma_decimal)
                    .map(Some)
                    .ok_or_else(|| Rejection::Garbled {
                        field: field.into(),
                        value: raw.trim().into(),
                        expected: "a number".into(),
                    }),
            }
        };
        let distance = number(2, "distance_km")?.ok_or_else(|| Rejection::Missing {
            field: "distance_km".into(),
        })?;
        let energy = number(3, "energy_kwh")?;
        if energy.is_some_and(|e| e < Decimal::ZERO) {
            return Err(Rejection::Garbled {
                field: "energy_kwh".into(),
                value: energy.unwrap().to_string(),
                expected: "0 or more kWh".into(),
            });
        }
        Ok(TripRecord {
            start: time(0, "start_time")?,
            end: time(1, "end_time")?,
            distance_km: distance.round_dp(3),
            energy_kwh: energy.map(|e| e.round_dp(3)),
            start_lat: number(4, "start_lat")?.map(|d| d.round_dp(6)),
            start_lng: number(5, "start_lng")?.map(|d| d.round_dp(6)),
            end_lat: number(6, "end_lat")?.map(|d| d.round_dp(6)),
            end_lng: number(7, "end_lng")?.map(|d| d.round_dp(6)),
            odometer_start_km: number(8, "odometer_start_km")?.map(|d| d.round_dp(1)),
            odometer_end_km: number(9, "odometer_end_km")?.map(|d| d.round_dp(1)),
            notes: v[10].map(|s| s.trim().to_owned()),
        })
    }

    fn write(&mut self, line: u32, t: &TripRecord, flags: &[&str], avoided_kg: Decimal) {
        self.out.extend_from_slice(&COLUMNS.to_be_bytes());
        self.field(&self.vehicle_id.clone());
        self.field(&self.import_id.clone());
        self.field(&(line as i32));
        self.field(&t.start);
        self.field(&t.end);
        self.field(&t.distance_km);
        for value in [
            t.energy_kwh,
            t.start_lat,
            t.start_lng,
            t.end_lat,
            t.end_lng,
            t.odometer_start_km,
            t.odometer_end_km,
        ] {
            self.field(&value);
        }
        self.field(&t.notes);
        self.field(&flags);
        self.field(&self.calculation_id.clone());
        self.field(&avoided_kg);
    }

    /// One value in COPY's binary format: its length (−1 for NULL), then its bytes.
    fn field<'q, T: sqlx::Encode<'q, sqlx::Postgres>>(&mut self, value: &T) {
        self.scratch.clear();
        match value.encode_by_ref(&mut self.scratch) {
            Ok(sqlx::encode::IsNull::No) => {
                self.out
                    .extend_from_slice(&(self.scratch.len() as i32).to_be_bytes());
                self.out.extend_from_slice(&self.scratch);
            }
            // NULL (or a value that cannot be encoded, which a NOT NULL column then refuses).
            _ => self.out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
}

/// The start of a binary COPY stream: signature, flags, header extension length.
pub const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The end of a binary COPY stream.
pub const BINARY_TRAILER: [u8; 2] = (-1i16).to_be_bytes();
