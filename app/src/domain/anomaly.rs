//! Anomaly flags on imported trips: implausible energy use or speed, odometer gaps, long
//! days, trips far from home, sudden jumps in volume and suspiciously identical trips.
//! Flags are shown to the verifier with the numbers behind them and add up to a risk score;
//! they never block an import.

use super::methodology::group;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The facts about one trip that the checks look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TripFacts {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub distance_km: Decimal,
    pub energy_kwh: Option<Decimal>,
    pub odometer_start_km: Option<Decimal>,
    pub odometer_end_km: Option<Decimal>,
    pub start_lat: Option<Decimal>,
    pub start_lng: Option<Decimal>,
}

/// What the owner drove before: one entry per previous month, in kilometres.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub monthly_km: Vec<Decimal>,
}

/// One anomaly, with the numbers that explain it. Serialised with its `code` as the tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Flag {
    /// Energy per 100 km outside the plausible range for an EV (2 decimals).
    EnergyOutOfRange { kwh_per_100km: Decimal },
    /// Average speed above the limit (2 decimals).
    SpeedTooHigh { km_per_h: Decimal },
    /// The trip ends before it starts, or covers distance in no time at all.
    InvalidDuration { seconds: i64 },
    /// Too many kilometres started on one calendar day (UTC).
    DailyDistanceHigh {
        date: NaiveDate,
        km: Decimal,
        trips: u32,
    },
    /// The odometer jumped forward between two trips: kilometres nobody reported.
    OdometerGap {
        trip_start: DateTime<Utc>,
        previous_end_km: Decimal,
        start_km: Decimal,
    },
    /// The odometer went down, between two trips or within one.
    OdometerReversal {
        trip_start: DateTime<Utc>,
        from_km: Decimal,
        to_km: Decimal,
    },
    /// The trip started far from where this vehicle's trips usually start.
    FarFromUsualRegion {
        trip_start: DateTime<Utc>,
        distance_km: u32,
    },
    /// This period's volume is far above the owner's previous months.
    VolumeJump {
        period_km: Decimal,
        period_days: u32,
        km_per_30_days: Decimal,
        history_average_km: Decimal,
        history_months: u32,
    },
    /// Several trips with exactly the same distance, duration and energy.
    IdenticalTrips {
        count: u32,
        distance_km: Decimal,
        duration_s: i64,
        energy_kwh: Option<Decimal>,
    },
}

/// Plausible EV consumption, kWh per 100 km (inclusive).
const MIN_KWH_PER_100KM: i64 = 8;
const MAX_KWH_PER_100KM: i64 = 40;
/// Average speed above this is flagged, km/h.
const MAX_KM_PER_H: i64 = 150;
/// More than this in one day is flagged, km.
const MAX_KM_PER_DAY: i64 = 1000;
/// Odometer readings between trips may differ by this much (rounding), km.
const ODOMETER_TOLERANCE_KM: i64 = 1;
/// Start points further than this from the usual start point are flagged, km.
const MAX_KM_FROM_USUAL: u32 = 300;
/// Located trips needed before "usual region" means anything.
const MIN_LOCATED_TRIPS: usize = 5;
/// Volume more than this many times the history average is flagged.
const VOLUME_JUMP_FACTOR: i64 = 3;
/// Months of history needed before the volume check runs.
const MIN_HISTORY_MONTHS: usize = 3;
/// This many identical trips or more are flagged.
const MIN_IDENTICAL_TRIPS: usize = 5;
/// Shorter periods count as this long, so a few busy days are not extrapolated to a month.
const MIN_PERIOD_DAYS: i64 = 30;

impl Flag {
    /// Stable snake_case code, the same as the serde tag.
    pub fn code(&self) -> &'static str {
        match self {
            Flag::EnergyOutOfRange { .. } => "energy_out_of_range",
            Flag::SpeedTooHigh { .. } => "speed_too_high",
            Flag::InvalidDuration { .. } => "invalid_duration",
            Flag::DailyDistanceHigh { .. } => "daily_distance_high",
            Flag::OdometerGap { .. } => "odometer_gap",
            Flag::OdometerReversal { .. } => "odometer_reversal",
            Flag::FarFromUsualRegion { .. } => "far_from_usual_region",
            Flag::VolumeJump { .. } => "volume_jump",
            Flag::IdenticalTrips { .. } => "identical_trips",
        }
    }

    /// How much the flag adds to the risk score.
    pub fn weight(&self) -> u32 {
        match self {
            Flag::EnergyOutOfRange { .. } => 20,
            Flag::SpeedTooHigh { .. } => 25,
            Flag::InvalidDuration { .. } => 25,
            Flag::DailyDistanceHigh { .. } => 25,
            Flag::OdometerGap { .. } => 15,
            Flag::OdometerReversal { .. } => 30,
            Flag::FarFromUsualRegion { .. } => 10,
            Flag::VolumeJump { .. } => 20,
            Flag::IdenticalTrips { .. } => 30,
        }
    }

    /// A sentence for the verifier.
    pub fn message(&self) -> String {
        match self {
            Flag::EnergyOutOfRange { kwh_per_100km } => format!(
                "Used {} kWh per 100 km; electric cars normally use {MIN_KWH_PER_100KM}–{MAX_KWH_PER_100KM} kWh.",
                short(*kwh_per_100km)
            ),
            Flag::SpeedTooHigh { km_per_h } => format!(
                "Average speed of {} km/h, above {MAX_KM_PER_H} km/h.",
                short(*km_per_h)
            ),
            Flag::InvalidDuration { seconds } => {
                if *seconds < 0 {
                    format!("The trip ends {} seconds before it starts.", -seconds)
                } else {
                    "The trip covers distance but starts and ends at the same moment.".to_owned()
                }
            }
            Flag::DailyDistanceHigh { date, km, trips } => format!(
                "{} km driven on {date} in {trips} trip{}, more than {} km in one day.",
                short(*km),
                if *trips == 1 { "" } else { "s" },
                group(Decimal::from(MAX_KM_PER_DAY))
            ),
            Flag::OdometerGap {
                trip_start,
                previous_end_km,
                start_km,
            } => format!(
                "The odometer read {} km after the previous trip but {} km at the start of the trip on {}: {} km were not reported.",
                group(*previous_end_km),
                group(*start_km),
                when(trip_start),
                short(*start_km - *previous_end_km)
            ),
            Flag::OdometerReversal {
                trip_start,
                from_km,
                to_km,
            } => format!(
                "The odometer went down from {} km to {} km around the trip on {}.",
                group(*from_km),
                group(*to_km),
                when(trip_start)
            ),
            Flag::FarFromUsualRegion {
                trip_start,
                distance_km,
            } => format!(
                "The trip on {} started {} km from where this vehicle's trips usually start (more than {MAX_KM_FROM_USUAL} km).",
                when(trip_start),
                group(Decimal::from(*distance_km))
            ),
            Flag::VolumeJump {
                period_km,
                period_days,
                km_per_30_days,
                history_average_km,
                history_months,
            } => format!(
                "{} km in {period_days} days ({} km per 30 days) is more than {VOLUME_JUMP_FACTOR}× the average of the previous {history_months} months ({} km).",
                short(*period_km),
                short(*km_per_30_days),
                short(*history_average_km)
            ),
            Flag::IdenticalTrips {
                count,
                distance_km,
                duration_s,
                energy_kwh,
            } => format!(
                "{count} trips have exactly the same distance ({} km), duration ({}) and energy ({}).",
                group(*distance_km),
                duration(*duration_s),
                match energy_kwh {
                    Some(e) => format!("{} kWh", group(*e)),
                    None => "none reported".to_owned(),
                }
            ),
        }
    }
}

/// Checks that need one trip only.
pub fn trip_flags(t: &TripFacts) -> Vec<Flag> {
    let mut flags = Vec::new();
    let hundred = Decimal::from(100);
    if let Some(energy) = t.energy_kwh {
        if t.distance_km > Decimal::ZERO {
            let per_100 = energy * hundred / t.distance_km;
            if per_100 < Decimal::from(MIN_KWH_PER_100KM)
                || per_100 > Decimal::from(MAX_KWH_PER_100KM)
            {
                flags.push(Flag::EnergyOutOfRange {
                    kwh_per_100km: round2(per_100),
                });
            }
        }
    }
    let seconds = (t.end - t.start).num_seconds();
    if seconds < 0 || (seconds == 0 && t.distance_km > Decimal::ZERO) {
        flags.push(Flag::InvalidDuration { seconds });
    } else if seconds > 0 {
        let km_per_h = t.distance_km * Decimal::from(3600) / Decimal::from(seconds);
        if km_per_h > Decimal::from(MAX_KM_PER_H) {
            flags.push(Flag::SpeedTooHigh {
                km_per_h: round2(km_per_h),
            });
        }
    }
    flags
}

/// Checks over one vehicle's trips for a period (in any order), against the owner's history.
pub fn period_flags(trips: &[TripFacts], history: &History) -> Vec<Flag> {
    let mut sorted: Vec<&TripFacts> = trips.iter().collect();
    sorted.sort_by_key(|t| (t.start, t.end));

    let mut flags = Vec::new();
    daily_distance(&sorted, &mut flags);
    odometer(&sorted, &mut flags);
    far_from_usual(&sorted, &mut flags);
    volume_jump(&sorted, history, &mut flags);
    identical(&sorted, &mut flags);
    flags
}

/// The weight of a flag from its code (trips store codes only); 0 for an unknown code.
pub fn code_weight(code: &str) -> u32 {
    match code {
        "energy_out_of_range" => 20,
        "speed_too_high" | "invalid_duration" | "daily_distance_high" => 25,
        "odometer_gap" => 15,
        "odometer_reversal" | "identical_trips" => 30,
        "far_from_usual_region" => 10,
        "volume_jump" => 20,
        _ => 0,
    }
}

/// A request's risk: its period flags plus each kind of trip flag found among its trips
/// (once per kind), at most 100.
pub fn request_risk(period: &[Flag], trip_flag_codes: &[&str]) -> u32 {
    let mut kinds: Vec<&str> = trip_flag_codes.to_vec();
    kinds.sort_unstable();
    kinds.dedup();
    (risk_score(period) + kinds.iter().map(|c| code_weight(c)).sum::<u32>()).min(100)
}

/// Sum of the weights, at most 100.
pub fn risk_score(flags: &[Flag]) -> u32 {
    flags.iter().map(Flag::weight).sum::<u32>().min(100)
}

/// "low" below 20, "medium" below 50, "high" from 50.
pub fn risk_level(score: u32) -> &'static str {
    match score {
        0..=19 => "low",
        20..=49 => "medium",
        _ => "high",
    }
}

fn daily_distance(sorted: &[&TripFacts], flags: &mut Vec<Flag>) {
    let mut days: BTreeMap<NaiveDate, (Decimal, u32)> = BTreeMap::new();
    for t in sorted {
        let day = days.entry(t.start.date_naive()).or_default();
        day.0 += t.distance_km;
        day.1 += 1;
    }
    for (date, (km, trips)) in days {
        if km > Decimal::from(MAX_KM_PER_DAY) {
            flags.push(Flag::DailyDistanceHigh { date, km, trips });
        }
    }
}

fn odometer(sorted: &[&TripFacts], flags: &mut Vec<Flag>) {
    let mut previous_end: Option<Decimal> = None;
    for t in sorted {
        if let (Some(prev), Some(start)) = (previous_end, t.odometer_start_km) {
            if start < prev {
                flags.push(Flag::OdometerReversal {
                    trip_start: t.start,
                    from_km: prev,
                    to_km: start,
                });
            } else if start - prev > Decimal::from(ODOMETER_TOLERANCE_KM) {
                flags.push(Flag::OdometerGap {
                    trip_start: t.start,
                    previous_end_km: prev,
                    start_km: start,
                });
            }
        }
        if let (Some(start), Some(end)) = (t.odometer_start_km, t.odometer_end_km) {
            if end < start {
                flags.push(Flag::OdometerReversal {
                    trip_start: t.start,
                    from_km: start,
                    to_km: end,
                });
            }
        }
        // A trip without an end reading breaks the chain; the next comparison is skipped.
        previous_end = t.odometer_end_km;
    }
}

fn far_from_usual(sorted: &[&TripFacts], flags: &mut Vec<Flag>) {
    let located: Vec<(&TripFacts, Decimal, Decimal)> = sorted
        .iter()
        .filter_map(|t| Some((*t, t.start_lat?, t.start_lng?)))
        .collect();
    if located.len() < MIN_LOCATED_TRIPS {
        return;
    }
    let lat = median(located.iter().map(|l| l.1).collect());
    let lng = median(located.iter().map(|l| l.2).collect());
    for (t, la, ln) in located {
        let distance_km = haversine_km(lat, lng, la, ln);
        if distance_km > MAX_KM_FROM_USUAL {
            flags.push(Flag::FarFromUsualRegion {
                trip_start: t.start,
                distance_km,
            });
        }
    }
}

fn volume_jump(sorted: &[&TripFacts], history: &History, flags: &mut Vec<Flag>) {
    let months = history.monthly_km.len();
    let (Some(first), Some(last)) = (sorted.first(), sorted.iter().map(|t| t.end).max()) else {
        return;
    };
    if months < MIN_HISTORY_MONTHS {
        return;
    }
    let period_km: Decimal = sorted.iter().map(|t| t.distance_km).sum();
    let seconds = (last - first.start).num_seconds().max(0);
    let days = ((seconds + 86_399) / 86_400).max(MIN_PERIOD_DAYS);
    let history_km: Decimal = history.monthly_km.iter().copied().sum();
    // km × 30 / days > 3 × history / months, cross-multiplied so nothing is divided.
    let lhs = period_km * Decimal::from(30) * Decimal::from(months as u64);
    let rhs = Decimal::from(VOLUME_JUMP_FACTOR) * history_km * Decimal::from(days);
    if lhs > rhs {
        flags.push(Flag::VolumeJump {
            period_km,
            period_days: u32::try_from(days).unwrap_or(u32::MAX),
            km_per_30_days: round2(period_km * Decimal::from(30) / Decimal::from(days)),
            history_average_km: round2(history_km / Decimal::from(months as u64)),
            history_months: u32::try_from(months).unwrap_or(u32::MAX),
        });
    }
}

fn identical(sorted: &[&TripFacts], flags: &mut Vec<Flag>) {
    let mut groups: BTreeMap<(Decimal, i64, Option<Decimal>), usize> = BTreeMap::new();
    for t in sorted {
        let key = (
            t.distance_km.normalize(),
            (t.end - t.start).num_seconds(),
            t.energy_kwh.map(|e| e.normalize()),
        );
        *groups.entry(key).or_default() += 1;
    }
    for ((distance_km, duration_s, energy_kwh), count) in groups {
        if count >= MIN_IDENTICAL_TRIPS {
            flags.push(Flag::IdenticalTrips {
                count: u32::try_from(count).unwrap_or(u32::MAX),
                distance_km,
                duration_s,
                energy_kwh,
            });
        }
    }
}

/// Median of a non-empty list; the mean of the two middle values for an even count.
fn median(mut values: Vec<Decimal>) -> Decimal {
    values.sort();
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / Decimal::from(2)
    }
}

/// Great-circle distance in whole kilometres. Coordinates are not money: this is the one
/// place where decimals become floating point, because Decimal has no trigonometry.
fn haversine_km(lat1: Decimal, lng1: Decimal, lat2: Decimal, lng2: Decimal) -> u32 {
    const EARTH_RADIUS_KM: f64 = 6371.0;
    let rad = |d: Decimal| d.to_f64().unwrap_or(0.0).to_radians();
    let (p1, p2) = (rad(lat1), rad(lat2));
    let dp = p2 - p1;
    let dl = rad(lng2) - rad(lng1);
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    let c = 2.0 * a.sqrt().min(1.0).asin();
    (EARTH_RADIUS_KM * c).round() as u32
}

fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// At most 2 decimals, no trailing zeros, thousands grouped: 1250.50 → "1,250.5".
fn short(d: Decimal) -> String {
    group(round2(d).normalize())
}

fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn duration(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if h > 0 {
        format!("{h} h {m:02} min {s:02} s")
    } else {
        format!("{m} min {s:02} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_weights_match_the_flags() {
        let d = Decimal::ONE;
        let t = Utc::now();
        let all = [
            Flag::EnergyOutOfRange { kwh_per_100km: d },
            Flag::SpeedTooHigh { km_per_h: d },
            Flag::InvalidDuration { seconds: 0 },
            Flag::DailyDistanceHigh {
                date: t.date_naive(),
                km: d,
                trips: 1,
            },
            Flag::OdometerGap {
                trip_start: t,
                previous_end_km: d,
                start_km: d,
            },
            Flag::OdometerReversal {
                trip_start: t,
                from_km: d,
                to_km: d,
            },
            Flag::FarFromUsualRegion {
                trip_start: t,
                distance_km: 1,
            },
            Flag::VolumeJump {
                period_km: d,
                period_days: 1,
                km_per_30_days: d,
                history_average_km: d,
                history_months: 3,
            },
            Flag::IdenticalTrips {
                count: 5,
                distance_km: d,
                duration_s: 1,
                energy_kwh: None,
            },
        ];
        for f in &all {
            assert_eq!(code_weight(f.code()), f.weight(), "{}", f.code());
        }
        assert_eq!(
            request_risk(&[], &["speed_too_high", "speed_too_high", "odometer_gap"]),
            40
        );
        assert_eq!(request_risk(&all, &[]), 100);
    }
    use chrono::{Duration, TimeZone};

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, day, hour, 0, 0).unwrap()
    }

    /// A plain 1-hour, 50 km trip on 2025-03-`day` at `hour`:00 with nothing optional.
    fn trip(day: u32, hour: u32) -> TripFacts {
        TripFacts {
            start: at(day, hour),
            end: at(day, hour) + Duration::hours(1),
            distance_km: dec("50"),
            energy_kwh: None,
            odometer_start_km: None,
            odometer_end_km: None,
            start_lat: None,
            start_lng: None,
        }
    }

    fn codes(flags: &[Flag]) -> Vec<&'static str> {
        flags.iter().map(Flag::code).collect()
    }

    fn none() -> History {
        History::default()
    }

    #[test]
    fn energy_per_100km_boundaries() {
        let mut t = trip(1, 8);
        t.distance_km = dec("100");
        for (kwh, flagged) in [
            ("40", false),
            ("40.01", true),
            ("8", false),
            ("7.99", true),
            ("16", false),
        ] {
            t.energy_kwh = Some(dec(kwh));
            assert_eq!(!trip_flags(&t).is_empty(), flagged, "{kwh} kWh/100 km");
        }
        t.energy_kwh = Some(dec("40.01"));
        let flags = trip_flags(&t);
        assert_eq!(
            flags,
            [Flag::EnergyOutOfRange {
                kwh_per_100km: dec("40.01")
            }]
        );
        assert!(flags[0].message().contains("40.01 kWh per 100 km"));

        // No energy or no distance: nothing to judge.
        t.energy_kwh = None;
        assert!(trip_flags(&t).is_empty());
        t.energy_kwh = Some(dec("5"));
        t.distance_km = Decimal::ZERO;
        assert!(trip_flags(&t).is_empty());
    }

    #[test]
    fn speed_boundary() {
        let mut t = trip(1, 8);
        t.distance_km = dec("150");
        assert!(trip_flags(&t).is_empty(), "exactly 150 km/h is fine");
        t.distance_km = dec("150.01");
        let flags = trip_flags(&t);
        assert_eq!(
            flags,
            [Flag::SpeedTooHigh {
                km_per_h: dec("150.01")
            }]
        );
        assert!(flags[0].message().contains("150.01 km/h"));
        // 300 km in 2 h is 150 km/h again.
        t.distance_km = dec("300");
        t.end = t.start + Duration::hours(2);
        assert!(trip_flags(&t).is_empty());
    }

    #[test]
    fn impossible_durations() {
        let mut t = trip(1, 8);
        t.end = t.start - Duration::seconds(90);
        let flags = trip_flags(&t);
        assert_eq!(flags, [Flag::InvalidDuration { seconds: -90 }]);
        assert!(flags[0].message().contains("90 seconds before"));
        t.end = t.start;
        assert_eq!(codes(&trip_flags(&t)), ["invalid_duration"]);
        t.distance_km = Decimal::ZERO;
        assert!(trip_flags(&t).is_empty());
    }

    #[test]
    fn daily_distance_boundary() {
        let mut a = trip(1, 6);
        let mut b = trip(1, 20);
        a.distance_km = dec("600");
        b.distance_km = dec("400");
        a.end = a.start + Duration::hours(5);
        b.end = b.start + Duration::hours(3);
        assert!(period_flags(&[a.clone(), b.clone()], &none()).is_empty());

        b.distance_km = dec("400.01");
        let flags = period_flags(&[b.clone(), a.clone()], &none());
        assert_eq!(
            flags,
            [Flag::DailyDistanceHigh {
                date: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
                km: dec("1000.01"),
                trips: 2
            }]
        );
        assert!(flags[0]
            .message()
            .contains("1,000.01 km driven on 2025-03-01"));

        // The same on another day gives a second flag; a trip counts on its start date.
        let mut c = a.clone();
        let mut d = b.clone();
        c.start += Duration::days(1);
        c.end += Duration::days(1);
        d.start += Duration::days(1);
        d.end += Duration::days(1);
        let flags = period_flags(&[a, b, c, d], &none());
        assert_eq!(
            codes(&flags),
            ["daily_distance_high", "daily_distance_high"]
        );
    }

    #[test]
    fn odometer_gap_and_reversal() {
        let with_odo = |day: u32, start: &str, end: &str| {
            let mut t = trip(day, 8);
            t.odometer_start_km = Some(dec(start));
            t.odometer_end_km = Some(dec(end));
            t
        };
        // +1 km between trips is tolerated, in any input order.
        let ok = [with_odo(2, "1051", "1101"), with_odo(1, "1000", "1050")];
        assert!(period_flags(&ok, &none()).is_empty());

        let gap = [with_odo(1, "1000", "1050"), with_odo(2, "1051.01", "1101")];
        let flags = period_flags(&gap, &none());
        assert_eq!(
            flags,
            [Flag::OdometerGap {
                trip_start: at(2, 8),
                previous_end_km: dec("1050"),
                start_km: dec("1051.01")
            }]
        );
        assert!(flags[0].message().contains("1.01 km were not reported"));

        let back = [with_odo(1, "1000", "1050"), with_odo(2, "1049.99", "1100")];
        assert_eq!(
            period_flags(&back, &none()),
            [Flag::OdometerReversal {
                trip_start: at(2, 8),
                from_km: dec("1050"),
                to_km: dec("1049.99")
            }]
        );

        // Within one trip.
        assert_eq!(
            codes(&period_flags(&[with_odo(1, "1000", "990")], &none())),
            ["odometer_reversal"]
        );

        // A trip without readings breaks the chain instead of producing a flag.
        let mut gapless = trip(2, 8);
        gapless.distance_km = dec("50");
        let chain = [
            with_odo(1, "1000", "1050"),
            gapless,
            with_odo(3, "1100", "1150"),
        ];
        assert!(period_flags(&chain, &none()).is_empty());
    }

    #[test]
    fn far_from_usual_region() {
        // 1° of latitude is 6,371 × π / 180 = 111.195 km, so along a meridian
        // 2.698° ≈ 299.98 km (300, fine) and 2.71° ≈ 301.34 km (301, flagged).
        let located = |day: u32, lat: &str| {
            let mut t = trip(day, 8);
            t.distance_km = Decimal::from(40 + day); // not identical trips
            t.start_lat = Some(dec(lat));
            t.start_lng = Some(dec("106.7"));
            t
        };
        let mut trips: Vec<TripFacts> = (1..=4).map(|d| located(d, "10.8")).collect();
        trips.push(located(5, "13.498"));
        assert!(period_flags(&trips, &none()).is_empty());

        trips[4] = located(5, "13.51");
        let flags = period_flags(&trips, &none());
        assert_eq!(
            flags,
            [Flag::FarFromUsualRegion {
                trip_start: at(5, 8),
                distance_km: 301
            }]
        );
        assert!(flags[0].message().contains("301 km"));

        // Four located trips are too few to know the usual region.
        trips.remove(0);
        trips.push(trip(6, 8));
        assert!(period_flags(&trips, &none()).is_empty());
    }

    #[test]
    fn haversine_is_plausible() {
        // Hanoi → Ho Chi Minh City is about 1,140 km.
        let d = haversine_km(
            dec("21.0285"),
            dec("105.8542"),
            dec("10.8231"),
            dec("106.6297"),
        );
        assert!((1130..=1150).contains(&d), "{d}");
        assert_eq!(
            haversine_km(dec("10"), dec("106"), dec("10"), dec("106")),
            0
        );
    }

    #[test]
    fn volume_jump_boundary() {
        let history = History {
            monthly_km: vec![dec("100"), dec("100"), dec("100")],
        };
        // 30-day period: first trip 1 March 00:00, last ends 31 March 00:00.
        let period = |km: &str| {
            let mut a = trip(1, 0);
            a.distance_km = dec(km);
            a.end = a.start + Duration::hours(10);
            let mut b = trip(30, 23);
            b.distance_km = Decimal::ZERO;
            (a, b)
        };
        let (a, b) = period("300");
        assert!(period_flags(&[a, b], &history).is_empty());

        let (a, b) = period("300.01");
        let flags = period_flags(&[a.clone(), b.clone()], &history);
        assert_eq!(
            flags,
            [Flag::VolumeJump {
                period_km: dec("300.01"),
                period_days: 30,
                km_per_30_days: dec("300.01"),
                history_average_km: dec("100"),
                history_months: 3
            }]
        );
        assert!(flags[0]
            .message()
            .contains("3× the average of the previous 3 months"));

        // Two months of history are not enough.
        let short_history = History {
            monthly_km: vec![dec("100"), dec("100")],
        };
        assert!(period_flags(&[a.clone(), b], &short_history).is_empty());

        // A 60-day period is scaled to 30 days: 600 km → 300 per 30 days is fine, 601 is not.
        let mut late = trip(1, 0);
        late.start = at(1, 0) + Duration::days(59);
        late.end = at(1, 0) + Duration::days(60);
        late.distance_km = Decimal::ZERO;
        let mut early = a.clone();
        early.distance_km = dec("600");
        assert!(period_flags(&[early.clone(), late.clone()], &history).is_empty());
        early.distance_km = dec("601");
        assert_eq!(
            codes(&period_flags(&[early, late], &history)),
            ["volume_jump"]
        );

        // A short busy period is not extrapolated: 300 km in one day counts as 300, not 9,000.
        let mut one_day = trip(1, 8);
        one_day.distance_km = dec("300");
        one_day.end = one_day.start + Duration::hours(4);
        assert!(period_flags(&[one_day], &history).is_empty());
    }

    #[test]
    fn identical_trips() {
        let same = |day: u32| {
            let mut t = trip(day, 8);
            t.energy_kwh = Some(dec("7.5"));
            t
        };
        let four: Vec<TripFacts> = (1..=4).map(same).collect();
        assert!(period_flags(&four, &none()).is_empty());

        let mut five: Vec<TripFacts> = (1..=5).map(same).collect();
        five[4].distance_km = dec("50.0"); // same value, different scale
        let flags = period_flags(&five, &none());
        assert_eq!(
            flags,
            [Flag::IdenticalTrips {
                count: 5,
                distance_km: dec("50"),
                duration_s: 3600,
                energy_kwh: Some(dec("7.5"))
            }]
        );
        assert!(flags[0].message().contains("1 h 00 min 00 s"));

        // One second longer, or different energy, breaks the group.
        five[4].end += Duration::seconds(1);
        assert!(period_flags(&five, &none()).is_empty());
        five[4].end -= Duration::seconds(1);
        five[4].energy_kwh = Some(dec("7.6"));
        assert!(period_flags(&five, &none()).is_empty());
    }

    #[test]
    fn score_and_level() {
        assert_eq!(risk_score(&[]), 0);
        assert_eq!(risk_level(0), "low");
        assert_eq!(risk_level(19), "low");
        assert_eq!(risk_level(20), "medium");
        assert_eq!(risk_level(49), "medium");
        assert_eq!(risk_level(50), "high");
        let gap = Flag::OdometerGap {
            trip_start: at(1, 8),
            previous_end_km: dec("1"),
            start_km: dec("5"),
        };
        assert_eq!(risk_score(std::slice::from_ref(&gap)), 15);
        let many = vec![
            Flag::IdenticalTrips {
                count: 5,
                distance_km: dec("1"),
                duration_s: 60,
                energy_kwh: None
            };
            4
        ];
        assert_eq!(risk_score(&many), 100);
    }

    #[test]
    fn serde_tag_is_the_code() {
        let flags = [
            Flag::EnergyOutOfRange {
                kwh_per_100km: dec("41"),
            },
            Flag::SpeedTooHigh {
                km_per_h: dec("151"),
            },
            Flag::InvalidDuration { seconds: -1 },
            Flag::DailyDistanceHigh {
                date: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
                km: dec("1001"),
                trips: 1,
            },
            Flag::OdometerGap {
                trip_start: at(1, 8),
                previous_end_km: dec("1"),
                start_km: dec("5"),
            },
            Flag::OdometerReversal {
                trip_start: at(1, 8),
                from_km: dec("5"),
                to_km: dec("1"),
            },
            Flag::FarFromUsualRegion {
                trip_start: at(1, 8),
                distance_km: 400,
            },
            Flag::VolumeJump {
                period_km: dec("1000"),
                period_days: 30,
                km_per_30_days: dec("1000"),
                history_average_km: dec("100"),
                history_months: 3,
            },
            Flag::IdenticalTrips {
                count: 5,
                distance_km: dec("1"),
                duration_s: 60,
                energy_kwh: None,
            },
        ];
        for f in flags {
            let json = serde_json::to_value(&f).unwrap();
            assert_eq!(json["code"], f.code());
            let back: Flag = serde_json::from_value(json).unwrap();
            assert_eq!(back, f);
            assert!(!f.message().is_empty() && f.weight() > 0);
        }
    }
}
