//! Trip and charging-session records as they arrive in an import file: which column is which
//! (snake_case, camelCase and aliases), how a value is read, and the hard checks that reject
//! a row. Time zones are resolved by the caller (local times need the vehicle's zone).

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Fastest plausible average speed of a car trip.
pub const MAX_SPEED_KMH: i64 = 250;
/// Clock skew tolerated before a time counts as "in the future".
pub const FUTURE_TOLERANCE_SECS: i64 = 300;

/// Lower-cases and drops everything but letters and digits: `Start Time`, `start_time` and
/// `startTime` all become `starttime`.
fn normalise(header: &str) -> String {
    header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TripField {
    StartTime,
    EndTime,
    DistanceKm,
    EnergyKwh,
    StartLat,
    StartLng,
    EndLat,
    EndLng,
    OdometerStartKm,
    OdometerEndKm,
    Notes,
}

impl TripField {
    pub const REQUIRED: [TripField; 3] = [
        TripField::StartTime,
        TripField::EndTime,
        TripField::DistanceKm,
    ];

    pub fn from_header(header: &str) -> Option<TripField> {
        use TripField::*;
        Some(match normalise(header).as_str() {
            "starttime" | "start" | "startedat" | "departuretime" => StartTime,
            "endtime" | "end" | "endedat" | "arrivaltime" => EndTime,
            "distancekm" | "distance" => DistanceKm,
            "energykwh" | "energyconsumed" | "energyconsumedkwh" | "energy" => EnergyKwh,
            "startlat" | "startlatitude" => StartLat,
            "startlng" | "startlong" | "startlon" | "startlongitude" => StartLng,
            "endlat" | "endlatitude" => EndLat,
            "endlng" | "endlong" | "endlon" | "endlongitude" => EndLng,
            "odometerstartkm" | "odometerstart" => OdometerStartKm,
            "odometerendkm" | "odometerend" => OdometerEndKm,
            "notes" | "note" | "comment" => Notes,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        use TripField::*;
        match self {
            StartTime => "start_time",
            EndTime => "end_time",
            DistanceKm => "distance_km",
            EnergyKwh => "energy_kwh",
            StartLat => "start_lat",
            StartLng => "start_lng",
            EndLat => "end_lat",
            EndLng => "end_lng",
            OdometerStartKm => "odometer_start_km",
            OdometerEndKm => "odometer_end_km",
            Notes => "notes",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChargingField {
    SessionId,
    ChargerId,
    StartTime,
    EndTime,
    EnergyKwh,
}

impl ChargingField {
    pub const REQUIRED: [ChargingField; 5] = [
        ChargingField::SessionId,
        ChargingField::ChargerId,
        ChargingField::StartTime,
        ChargingField::EndTime,
        ChargingField::EnergyKwh,
    ];

    pub fn from_header(header: &str) -> Option<ChargingField> {
        use ChargingField::*;
        Some(match normalise(header).as_str() {
            "sessionid" | "session" | "transactionid" => SessionId,
            "chargerid" | "charger" | "chargepointid" | "stationid" => ChargerId,
            "starttime" | "start" | "startedat" => StartTime,
            "endtime" | "end" | "endedat" | "stoppedat" => EndTime,
            "energykwh" | "kwh" | "energy" | "energydelivered" | "energydeliveredkwh" => EnergyKwh,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        use ChargingField::*;
        match self {
            SessionId => "session_id",
            ChargerId => "charger_id",
            StartTime => "start_time",
            EndTime => "end_time",
            EnergyKwh => "energy_kwh",
        }
    }
}

/// A time as written in a file: with an offset, or local (the vehicle's zone applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamp {
    Absolute(DateTime<FixedOffset>),
    Local(NaiveDateTime),
}

impl Timestamp {
    pub fn parse(raw: &str) -> Option<Timestamp> {
        let s = raw.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(Timestamp::Absolute(t));
        }
        // RFC 3339 with a space instead of the T.
        if s.len() > 10 && s.as_bytes()[10] == b' ' {
            let with_t = format!("{}T{}", &s[..10], &s[11..]);
            if let Ok(t) = DateTime::parse_from_rfc3339(&with_t) {
                return Some(Timestamp::Absolute(t));
            }
        }
        for format in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M",
        ] {
            if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
                return Some(Timestamp::Local(t));
            }
        }
        None
    }
}

/// A number from a file: `.` as the decimal mark, or `,` when the file separates columns
/// with semicolons (European exports).
pub fn parse_number(raw: &str, comma_decimal: bool) -> Option<Decimal> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    if comma_decimal && !s.contains('.') {
        Decimal::from_str(&s.replacen(',', ".", 1)).ok()
    } else {
        Decimal::from_str(s).ok()
    }
}

/// One trip, read and resolved to UTC.
#[derive(Debug, Clone, PartialEq)]
pub struct TripRecord {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub distance_km: Decimal,
    pub energy_kwh: Option<Decimal>,
    pub start_lat: Option<Decimal>,
    pub start_lng: Option<Decimal>,
    pub end_lat: Option<Decimal>,
    pub end_lng: Option<Decimal>,
    pub odometer_start_km: Option<Decimal>,
    pub odometer_end_km: Option<Decimal>,
    pub notes: Option<String>,
}

/// One charging session, read and resolved to UTC.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargingRecord {
    pub session_id: String,
    pub charger_id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub energy_kwh: Decimal,
}

/// Why a row was not imported. The message names the field and the value where it helps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rejection {
    Missing {
        field: String,
    },
    Garbled {
        field: String,
        value: String,
        expected: String,
    },
    LocalTimeInvalid {
        field: String,
        value: String,
        zone: String,
    },
    EndNotAfterStart,
    DistanceNotPositive,
    InFuture {
        field: String,
    },
    TooFast {
        kmh: i64,
    },
    /// Same start and end as a trip already imported (`line` when it is in the same file).
    Duplicate {
        line: Option<u32>,
    },
    Overlap {
        line: Option<u32>,
    },
    SessionAlreadyImported {
        session_id: String,
    },
    /// The same session id as an earlier line of the file.
    SessionRepeated {
        line: u32,
    },
    TooLong {
        field: String,
        max: usize,
    },
    Unreadable {
        detail: String,
    },
}

impl Rejection {
    pub fn message(&self) -> String {
        match self {
            Rejection::Missing { field } => format!("{field} is missing"),
            Rejection::Garbled {
                field,
                value,
                expected,
            } => {
                format!("{field} “{}” is not {expected}", shorten(value))
            }
            Rejection::LocalTimeInvalid { field, value, zone } => {
                format!("{field} “{value}” does not exist in {zone} (the clocks skip that hour)")
            }
            Rejection::EndNotAfterStart => "end_time is not after start_time".into(),
            Rejection::DistanceNotPositive => "distance_km must be more than 0".into(),
            Rejection::InFuture { field } => format!("{field} is in the future"),
            Rejection::TooFast { kmh } => {
                format!("average speed {kmh} km/h is above {MAX_SPEED_KMH} km/h; distance or times are wrong")
            }
            Rejection::Duplicate { line: Some(l) } => format!("duplicate of the trip on line {l}"),
            Rejection::Duplicate { line: None } => "duplicate of a trip already imported".into(),
            Rejection::Overlap { line: Some(l) } => format!("overlaps the trip on line {l}"),
            Rejection::Overlap { line: None } => {
                "overlaps a trip already imported for this vehicle".into()
            }
            Rejection::SessionAlreadyImported { session_id } => {
                format!("session {} was already imported", shorten(session_id))
            }
            Rejection::SessionRepeated { line } => format!("the same session as line {line}"),
            Rejection::TooLong { field, max } => format!("{field} is longer than {max} characters"),
            Rejection::Unreadable { detail } => format!("the row cannot be read: {detail}"),
        }
    }

    pub fn is_duplicate(&self) -> bool {
        matches!(
            self,
            Rejection::Duplicate { .. }
                | Rejection::SessionAlreadyImported { .. }
                | Rejection::SessionRepeated { .. }
        )
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// The checks every trip row must pass, other than duplicates and overlaps.
pub fn check_trip(t: &TripRecord, now: DateTime<Utc>) -> Result<(), Rejection> {
    if t.end <= t.start {
        return Err(Rejection::EndNotAfterStart);
    }
    if t.distance_km <= Decimal::ZERO {
        return Err(Rejection::DistanceNotPositive);
    }
    let tolerance = chrono::Duration::seconds(FUTURE_TOLERANCE_SECS);
    if t.end > now + tolerance {
        return Err(Rejection::InFuture {
            field: "end_time".into(),
        });
    }
    let seconds = (t.end - t.start).num_seconds().max(1);
    // km/h = km / (s / 3600), compared exactly: km × 3600 > 250 × s.
    if t.distance_km * Decimal::from(3600) > Decimal::from(MAX_SPEED_KMH * seconds) {
        let kmh = (t.distance_km * Decimal::from(3600) / Decimal::from(seconds)).trunc();
        return Err(Rejection::TooFast {
            kmh: i64::try_from(kmh).unwrap_or(i64::MAX),
        });
    }
    for (field, value, limit) in [
        ("start_lat", t.start_lat, 90),
        ("end_lat", t.end_lat, 90),
        ("start_lng", t.start_lng, 180),
        ("end_lng", t.end_lng, 180),
    ] {
        if let Some(v) = value {
            if v.abs() > Decimal::from(limit) {
                return Err(Rejection::Garbled {
                    field: field.into(),
                    value: v.to_string(),
                    expected: format!("a coordinate between -{limit} and {limit}"),
                });
            }
        }
    }
    if let Some(notes) = &t.notes {
        if notes.chars().count() > 500 {
            return Err(Rejection::TooLong {
                field: "notes".into(),
                max: 500,
            });
        }
    }
    Ok(())
}

pub fn check_charging(c: &ChargingRecord, now: DateTime<Utc>) -> Result<(), Rejection> {
    if c.end <= c.start {
        return Err(Rejection::EndNotAfterStart);
    }
    if c.energy_kwh <= Decimal::ZERO {
        return Err(Rejection::Garbled {
            field: "energy_kwh".into(),
            value: c.energy_kwh.to_string(),
            expected: "more than 0 kWh".into(),
        });
    }
    if c.end > now + chrono::Duration::seconds(FUTURE_TOLERANCE_SECS) {
        return Err(Rejection::InFuture {
            field: "end_time".into(),
        });
    }
    for (field, value) in [("session_id", &c.session_id), ("charger_id", &c.charger_id)] {
        if value.chars().count() > 100 {
            return Err(Rejection::TooLong {
                field: field.into(),
                max: 100,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn trip(start_min: i64, minutes: i64, km: &str) -> TripRecord {
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
            + chrono::Duration::minutes(start_min);
        TripRecord {
            start,
            end: start + chrono::Duration::minutes(minutes),
            distance_km: Decimal::from_str(km).unwrap(),
            energy_kwh: None,
            start_lat: None,
            start_lng: None,
            end_lat: None,
            end_lng: None,
            odometer_start_km: None,
            odometer_end_km: None,
            notes: None,
        }
    }

    #[test]
    fn headers_in_any_case_and_alias() {
        assert_eq!(
            TripField::from_header("startTime"),
            Some(TripField::StartTime)
        );
        assert_eq!(
            TripField::from_header("Start_Time"),
            Some(TripField::StartTime)
        );
        assert_eq!(
            TripField::from_header("energy_consumed"),
            Some(TripField::EnergyKwh)
        );
        assert_eq!(
            TripField::from_header("energyConsumedKwh"),
            Some(TripField::EnergyKwh)
        );
        assert_eq!(
            TripField::from_header("start_long"),
            Some(TripField::StartLng)
        );
        assert_eq!(
            TripField::from_header("\u{feff}distance_km"),
            Some(TripField::DistanceKm)
        );
        assert_eq!(TripField::from_header("colour"), None);
        assert_eq!(
            ChargingField::from_header("sessionId"),
            Some(ChargingField::SessionId)
        );
        assert_eq!(
            ChargingField::from_header("kWh"),
            Some(ChargingField::EnergyKwh)
        );
    }

    #[test]
    fn timestamps_with_offset_or_local() {
        let t = Timestamp::parse("2026-03-01T08:00:00+07:00").unwrap();
        assert!(
            matches!(t, Timestamp::Absolute(d) if d.with_timezone(&Utc).to_rfc3339() == "2026-03-01T01:00:00+00:00")
        );
        assert!(matches!(
            Timestamp::parse("2026-03-01T01:00:00Z"),
            Some(Timestamp::Absolute(_))
        ));
        assert!(matches!(
            Timestamp::parse("2026-03-01 01:00:00Z"),
            Some(Timestamp::Absolute(_))
        ));
        assert!(matches!(
            Timestamp::parse("2026-03-01T08:00:00"),
            Some(Timestamp::Local(_))
        ));
        assert!(matches!(
            Timestamp::parse("2026-03-01 08:00"),
            Some(Timestamp::Local(_))
        ));
        assert!(matches!(
            Timestamp::parse("2026-03-01 08:00:00.250"),
            Some(Timestamp::Local(_))
        ));
        assert_eq!(Timestamp::parse("yesterday"), None);
        assert_eq!(Timestamp::parse("2026-02-30T08:00:00"), None);
    }

    #[test]
    fn numbers_with_either_decimal_mark() {
        assert_eq!(parse_number("12.5", false), Some(Decimal::new(125, 1)));
        assert_eq!(parse_number("12,5", true), Some(Decimal::new(125, 1)));
        assert_eq!(parse_number("12,5", false), None);
        assert_eq!(parse_number(" ", false), None);
        assert_eq!(parse_number("abc", true), None);
    }

    #[test]
    fn hard_checks() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        assert_eq!(check_trip(&trip(0, 30, "20"), now), Ok(()));
        assert_eq!(
            check_trip(&trip(0, 0, "20"), now),
            Err(Rejection::EndNotAfterStart)
        );
        assert_eq!(
            check_trip(&trip(0, 30, "0"), now),
            Err(Rejection::DistanceNotPositive)
        );
        // 125 km in 30 minutes is exactly 250 km/h: allowed; a metre more is not.
        assert_eq!(check_trip(&trip(0, 30, "125"), now), Ok(()));
        assert_eq!(
            check_trip(&trip(0, 30, "125.001"), now),
            Err(Rejection::TooFast { kmh: 250 })
        );
        let future = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        assert_eq!(
            check_trip(&trip(0, 30, "20"), future),
            Err(Rejection::InFuture {
                field: "end_time".into()
            })
        );
        let mut bad = trip(0, 30, "20");
        bad.start_lat = Some(Decimal::from(91));
        assert!(check_trip(&bad, now)
            .unwrap_err()
            .message()
            .contains("start_lat “91”"));
        assert_eq!(
            Rejection::Duplicate { line: Some(3) }.message(),
            "duplicate of the trip on line 3"
        );
        assert!(Rejection::Duplicate { line: None }.is_duplicate());
    }
}
