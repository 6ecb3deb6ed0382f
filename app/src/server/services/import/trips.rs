//! The trip rows of an import: read each record into a trip (local times in the vehicle's
//! zone), check it, refuse duplicates and overlaps (with trips already stored and with earlier
//! lines of the file), compute its CO₂ with the active methodology, flag anomalies, and write
//! it as a line of PostgreSQL COPY text.

use super::copy_text::{push_decimal, push_opt_decimal, push_text, push_timestamp};
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

/// The COPY column list matching `Pipeline::write`.
pub const COPY: &str = "COPY trips (vehicle_id, import_id, line, start_time, end_time, distance_km, energy_kwh, \
     start_lat, start_lng, end_lat, end_lng, odometer_start_km, odometer_end_km, notes, flags, calculation_id, avoided_kg) \
     FROM STDIN";

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
    /// `vehicle_id\timport_id\t`, the same on every line.
    pub prefix: String,
    /// `\tcalculation_id\t`
    pub calc_column: String,
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
        let o = &mut self.out;
        o.extend_from_slice(self.prefix.as_bytes());
        o.extend_from_slice(line.to_string().as_bytes());
        o.push(b'\t');
        push_timestamp(o, t.start);
        o.push(b'\t');
        push_timestamp(o, t.end);
        o.push(b'\t');
        push_decimal(o, t.distance_km);
        for value in [
            t.energy_kwh,
            t.start_lat,
            t.start_lng,
            t.end_lat,
            t.end_lng,
            t.odometer_start_km,
            t.odometer_end_km,
        ] {
            o.push(b'\t');
            push_opt_decimal(o, value);
        }
        o.push(b'\t');
        match &t.notes {
            Some(n) => push_text(o, n),
            None => o.extend_from_slice(b"\\N"),
        }
        o.extend_from_slice(b"\t{");
        o.extend_from_slice(flags.join(",").as_bytes());
        o.push(b'}');
        o.extend_from_slice(self.calc_column.as_bytes());
        push_decimal(o, avoided_kg);
        o.push(b'\n');
    }
}
