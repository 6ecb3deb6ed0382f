//! Generated inputs for everything that reads what people and other systems send: the
//! trip/charging file reader (CSV with either separator, JSON, UTF-8 or UTF-16, with or without
//! BOM, every quoting), the form parsers for money, quantities, VINs and the sign-in redirect,
//! and the payment gateways' signed notifications.
//!
//! Each target is a property over generated inputs: arbitrary (and adversarial) text or bytes
//! never panic and, when read, give values within the documented bounds; values written the way
//! the platform (or a gateway) writes them read back exactly. The unit tests below run each
//! target on a few thousand inputs from a fixed seed; `evcx-bench generated_inputs` runs
//! millions from a random seed (`make bench-generated_inputs`).

use crate::api::auth::safe_next;
use crate::domain::amount::{parse_money, parse_plain_amount, parse_tonnes};
use crate::domain::market::{format_money, money_plain, tonnes, MAX_KG};
use crate::domain::trip::{parse_number, Timestamp, TripField};
use crate::domain::vehicle::{Vin, SEVENTEEN_SINCE};
use crate::server::payments::sandbox::{self, Delivery, Sandbox};
use crate::server::payments::stripe::{self, Stripe};
use crate::server::payments::{hmac_sha256_hex, Outcome, PaymentGateway, WebhookError};
use crate::server::services::import::read::{read_records, ReadLimits, Refusal, Schema};
use crate::server::services::import::trips;
use chrono::{DateTime, Duration, FixedOffset, TimeZone, Timelike, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use rust_decimal::Decimal;
use std::str::FromStr;
use uuid::Uuid;

/// One property over generated inputs.
pub struct Target {
    pub name: &'static str,
    /// How many inputs a run gives this target, relative to the others (the file targets cost
    /// more per input than the one-line parsers).
    pub weight: u32,
    check: fn(&mut TestRunner) -> Result<(), String>,
}

impl Target {
    /// Runs `cases` inputs from `seed`; the error names the smallest failing input found.
    pub fn run(&self, cases: u32, seed: [u8; 32]) -> Result<(), String> {
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 2_000,
            ..Config::default()
        };
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
        let mut runner = TestRunner::new_with_rng(config, rng);
        (self.check)(&mut runner)
    }
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "money_typed",
        weight: 10,
        check: money_typed,
    },
    Target {
        name: "money_shown",
        weight: 10,
        check: money_shown,
    },
    Target {
        name: "tonnes",
        weight: 10,
        check: tonnes_typed,
    },
    Target {
        name: "plain_amount",
        weight: 5,
        check: plain_amount,
    },
    Target {
        name: "vin",
        weight: 10,
        check: vin,
    },
    Target {
        name: "redirect_after_sign_in",
        weight: 5,
        check: redirect,
    },
    Target {
        name: "file_numbers_and_times",
        weight: 10,
        check: file_values,
    },
    Target {
        name: "trip_files",
        weight: 1,
        check: trip_files,
    },
    Target {
        name: "arbitrary_files",
        weight: 2,
        check: arbitrary_files,
    },
    Target {
        name: "sandbox_notifications",
        weight: 5,
        check: sandbox_notifications,
    },
    Target {
        name: "stripe_notifications",
        weight: 5,
        check: stripe_notifications,
    },
];

fn report<T: std::fmt::Debug>(result: Result<(), TestError<T>>) -> Result<(), String> {
    result.map_err(|e| e.to_string())
}

/// Text as people and scripts send it: anything at all, or the characters numbers are written
/// with (digits, separators, signs, currency marks, spaces of several kinds) in any order.
fn typed() -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>(),
        "[0-9]{0,22}",
        "[-+ 0-9.,'_\u{a0}\u{202f}]{0,24}",
        "[-+ 0-9.,₫đdVNvnUSD$€tTấn]{0,24}",
        "[0-9]{1,3}([.,  ][0-9]{1,4}){0,5}( ?(₫|đ|VND|t|tấn))?",
    ]
    .boxed()
}

fn money_typed(runner: &mut TestRunner) -> Result<(), String> {
    let currencies = prop_oneof![Just("VND"), Just("USD"), Just("EUR")];
    report(runner.run(&(typed(), currencies), |(raw, currency)| {
        if let Ok(v) = parse_money(&raw, currency) {
            prop_assert!(v > Decimal::ZERO, "{raw:?} read as {v}");
            prop_assert!(
                v < Decimal::from(1_000_000_000_000_000i64),
                "{raw:?} read as {v}"
            );
            prop_assert_eq!(v.scale(), 2);
            if currency == "VND" {
                prop_assert!(
                    v.fract().is_zero(),
                    "{:?} read as {} ₫: not whole đồng",
                    raw,
                    v
                );
            }
            // What was read is shown again, and reads back the same.
            prop_assert_eq!(parse_money(&format_money(v, currency), currency), Ok(v));
        }
        Ok(())
    }))
}

fn money_shown(runner: &mut TestRunner) -> Result<(), String> {
    let amounts = prop_oneof![
        (1i64..1_000_000).prop_map(|v| ("VND", Decimal::from(v * 1_000))),
        (1i64..999_999_999_999_999).prop_map(|v| ("VND", Decimal::from(v))),
        (1i64..99_999_999_999_999_999).prop_map(|c| ("USD", Decimal::new(c, 2))),
        (1i64..99_999_999_999).prop_map(|c| ("EUR", Decimal::new(c, 2))),
    ];
    report(runner.run(&amounts, |(currency, v)| {
        let mut expected = v;
        expected.rescale(2);
        let mut shown = vec![format_money(v, currency), money_plain(v, currency)];
        if v.fract().is_zero() {
            shown.push(v.trunc().to_string());
        }
        for shown in shown {
            prop_assert_eq!(
                parse_money(&shown, currency),
                Ok(expected),
                "shown as {:?}",
                shown
            );
        }
        Ok(())
    }))
}

fn tonnes_typed(runner: &mut TestRunner) -> Result<(), String> {
    report(runner.run(&(typed(), 1i64..=MAX_KG), |(raw, kg)| {
        if let Ok(read) = parse_tonnes(&raw) {
            prop_assert!((1..=MAX_KG).contains(&read), "{raw:?} read as {read} kg");
        }
        // A quantity as the pages show it reads back to the same kilograms.
        let shown = tonnes(kg);
        prop_assert_eq!(parse_tonnes(&shown), Ok(kg), "shown as {:?}", shown);
        Ok(())
    }))
}

fn plain_amount(runner: &mut TestRunner) -> Result<(), String> {
    report(
        runner.run(&(typed(), 1i64..99_999_999_999_999_999), |(raw, cents)| {
            if let Ok(v) = parse_plain_amount(&raw) {
                prop_assert!(v > Decimal::ZERO && v.scale() == 2, "{raw:?} read as {v}");
            }
            let v = Decimal::new(cents, 2);
            prop_assert_eq!(parse_plain_amount(&v.to_string()), Ok(v));
            Ok(())
        }),
    )
}

const VIN_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";

/// ISO 3779's check digit, computed here independently of the parser.
fn vin_check_digit(vin: &[u8]) -> u8 {
    const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let value = |c: u8| match c {
        b'0'..=b'9' => u32::from(c - b'0'),
        // The transliteration table: letters in order, skipping I, O and Q, count 1–9 three
        // times over (with S starting the third run at 2).
        b'A'..=b'H' => u32::from(c - b'A') + 1,
        b'J'..=b'N' => u32::from(c - b'J') + 1,
        b'P' => 7,
        b'R' => 9,
        b'S'..=b'Z' => u32::from(c - b'S') + 2,
        _ => 0,
    };
    let sum: u32 = vin.iter().zip(WEIGHTS).map(|(c, w)| value(*c) * w).sum();
    match sum % 11 {
        10 => b'X',
        d => b'0' + d as u8,
    }
}

fn vin(runner: &mut TestRunner) -> Result<(), String> {
    let chars = proptest::collection::vec(proptest::sample::select(VIN_ALPHABET), 17);
    let typed_vin = prop_oneof![
        any::<String>(),
        "[A-Za-z0-9 -]{0,20}",
        "[A-HJ-NPR-Z0-9]{11,17}",
    ];
    let years = prop_oneof![Just(None), (1950i32..2030).prop_map(Some)];
    report(
        runner.run(&(typed_vin, chars, years), |(raw, mut generated, year)| {
            if let Ok(v) = Vin::parse(&raw, year) {
                let s = v.as_str();
                let n = s.len();
                prop_assert!(
                    s.bytes().all(|c| VIN_ALPHABET.contains(&c)),
                    "{raw:?} read as {s:?}"
                );
                let older = year.is_some_and(|y| y < SEVENTEEN_SINCE);
                prop_assert!(
                    n == 17 || (older && (11..=16).contains(&n)),
                    "{raw:?} read as {s:?}"
                );
                let again = Vin::parse(s, year);
                prop_assert!(again.as_ref() == Ok(&v), "{s:?} read again as {again:?}");
            }
            // A VIN of a region that computes the check digit: accepted with the right digit
            // (whatever the case and spacing it is typed with), refused with any other.
            generated[0] = b'1';
            generated[8] = vin_check_digit(&generated);
            let right = String::from_utf8(generated.clone()).expect("ascii");
            let typed = format!(
                "{}-{} {}",
                &right[..3].to_lowercase(),
                &right[3..9],
                &right[9..]
            );
            prop_assert_eq!(
                Vin::parse(&typed, Some(2024)).map(|v| v.as_str().to_owned()),
                Ok(right)
            );
            generated[8] = if generated[8] == b'X' { b'0' } else { b'X' };
            let wrong = String::from_utf8(generated).expect("ascii");
            prop_assert!(
                Vin::parse(&wrong, Some(2024)).is_err(),
                "{wrong} has a wrong check digit"
            );
            Ok(())
        }),
    )
}

fn redirect(runner: &mut TestRunner) -> Result<(), String> {
    let next = prop_oneof![
        any::<String>(),
        "[/\\\\.:a-z%\t\r\n ?#@]{0,20}",
        "/[/\\\\a-z0-9%\t.]{0,16}",
    ];
    report(runner.run(&proptest::option::of(next), |next| {
        let to = safe_next(next.as_deref());
        prop_assert!(to.starts_with('/'), "{next:?} → {to:?}");
        prop_assert!(!to.starts_with("//"), "{next:?} → {to:?} leaves the site");
        prop_assert!(
            !to.chars()
                .any(|c| c == '\\' || c.is_control() || c.is_whitespace()),
            "{next:?} → {to:?}"
        );
        Ok(())
    }))
}

/// A time between 2000 and 2035, to the second, with an offset of whole quarter hours.
fn datetimes() -> impl Strategy<Value = DateTime<FixedOffset>> {
    (946_684_800i64..2_082_758_400, -56i32..=56).prop_map(|(secs, quarters)| {
        let offset = FixedOffset::east_opt(quarters * 15 * 60).expect("within a day");
        offset.from_utc_datetime(
            &DateTime::from_timestamp(secs, 0)
                .expect("in range")
                .naive_utc(),
        )
    })
}

/// The ways exports write a time, and what each means.
fn written_time(t: DateTime<FixedOffset>, style: u8) -> (String, Timestamp) {
    let local = t.naive_local();
    match style % 5 {
        0 => (t.to_rfc3339(), Timestamp::Absolute(t)),
        1 => (
            t.format("%Y-%m-%d %H:%M:%S%:z").to_string(),
            Timestamp::Absolute(t),
        ),
        2 => (
            t.with_timezone(&Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
            Timestamp::Absolute(t),
        ),
        3 => (
            local.format("%Y-%m-%d %H:%M:%S").to_string(),
            Timestamp::Local(local),
        ),
        _ => {
            let minute = local.with_second(0).expect("second 0 exists");
            (
                minute.format("%Y-%m-%dT%H:%M").to_string(),
                Timestamp::Local(minute),
            )
        }
    }
}

fn same_time(a: Timestamp, b: Timestamp) -> bool {
    match (a, b) {
        (Timestamp::Absolute(x), Timestamp::Absolute(y)) => x == y,
        (Timestamp::Local(x), Timestamp::Local(y)) => x == y,
        _ => false,
    }
}

fn file_values(runner: &mut TestRunner) -> Result<(), String> {
    let numbers = (any::<i64>(), 0u32..=8);
    report(runner.run(
        &(typed(), any::<bool>(), datetimes(), any::<u8>(), numbers),
        |(raw, comma, t, style, (mantissa, scale))| {
            // Anything is read or not, without a panic.
            let _ = (parse_number(&raw, comma), Timestamp::parse(&raw));
            let (shown, expected) = written_time(t, style);
            let read = Timestamp::parse(&shown);
            prop_assert!(
                read.is_some_and(|r| same_time(r, expected)),
                "{shown:?} read as {read:?}, not {expected:?}"
            );
            let n = Decimal::new(mantissa, scale);
            let written = if comma {
                n.to_string().replace('.', ",")
            } else {
                n.to_string()
            };
            prop_assert_eq!(parse_number(&written, comma), Some(n), "{:?}", written);
            Ok(())
        },
    ))
}

/// One generated trip: the text of each column present, and what it means.
#[derive(Debug, Clone)]
struct Trip {
    start: (String, Timestamp),
    end: (String, Timestamp),
    distance: Decimal,
    energy: Option<Decimal>,
    notes: Option<String>,
}

fn trips() -> impl Strategy<Value = Vec<Trip>> {
    let note = prop_oneof![
        Just(None),
        "[a-zA-Z0-9 ,;\"'\n.ăđêôơưáàảãạ€]{1,40}".prop_map(Some),
        any::<String>()
            .prop_map(|s| Some(s.chars().filter(|c| *c != '\0' && *c != '\r').collect())),
    ];
    let trip = (
        datetimes(),
        1i64..24 * 60,
        any::<u8>(),
        1i64..100_000,
        0u32..=3,
        proptest::option::of(0i64..10_000),
        note,
    )
        .prop_map(|(t, minutes, style, distance, scale, energy, notes)| Trip {
            start: written_time(t, style),
            end: written_time(t + Duration::minutes(minutes), style),
            distance: Decimal::new(distance, scale),
            energy: energy.map(|e| Decimal::new(e, 2)),
            notes: notes.filter(|n: &String| !n.trim().is_empty()),
        });
    proptest::collection::vec(trip, 0..12)
}

/// How a file is written: the format, its separators and quoting, its encoding.
#[derive(Debug, Clone)]
struct Layout {
    json: bool,
    /// JSON: the array inside `{"trips": …}`.
    wrapped: bool,
    semicolon: bool,
    quote_all: bool,
    crlf: bool,
    final_newline: bool,
    /// 0 UTF-8, 1 UTF-8 with BOM, 2 UTF-16LE with BOM, 3 UTF-16BE with BOM.
    encoding: u8,
    upper_headers: bool,
    extra_column: bool,
}

fn layouts() -> impl Strategy<Value = Layout> {
    (any::<[bool; 8]>(), 0u8..4).prop_map(|(b, encoding)| Layout {
        json: b[0],
        wrapped: b[1],
        semicolon: b[2],
        quote_all: b[3],
        crlf: b[4],
        final_newline: b[5],
        encoding,
        upper_headers: b[6],
        extra_column: b[7],
    })
}

fn csv_field(value: &str, layout: &Layout) -> String {
    let delimiter = if layout.semicolon { ';' } else { ',' };
    let needs =
        value.contains([delimiter, '"', '\n', '\r']) || value.starts_with(char::is_whitespace);
    if layout.quote_all || needs {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn number_text(n: Decimal, layout: &Layout) -> String {
    if layout.semicolon && !layout.json {
        n.to_string().replace('.', ",")
    } else {
        n.to_string()
    }
}

/// Writes `trips` as an export would, in `layout`.
fn render(trips: &[Trip], layout: &Layout) -> Vec<u8> {
    let header = |f: TripField| {
        let name = f.name();
        if layout.upper_headers {
            name.to_uppercase()
        } else {
            name.to_owned()
        }
    };
    let text = if layout.json {
        let rows: Vec<serde_json::Value> = trips
            .iter()
            .map(|t| {
                let mut row = serde_json::Map::new();
                row.insert(header(TripField::StartTime), t.start.0.clone().into());
                row.insert(header(TripField::EndTime), t.end.0.clone().into());
                let number = |d: Decimal| {
                    serde_json::Value::from_str(&d.to_string()).expect("a JSON number")
                };
                row.insert(header(TripField::DistanceKm), number(t.distance));
                if let Some(e) = t.energy {
                    row.insert(header(TripField::EnergyKwh), number(e));
                }
                if let Some(n) = &t.notes {
                    row.insert(header(TripField::Notes), n.clone().into());
                }
                if layout.extra_column {
                    row.insert(
                        "battery_health".into(),
                        serde_json::json!({ "soh": [98, 97] }),
                    );
                }
                serde_json::Value::Object(row)
            })
            .collect();
        let array = serde_json::Value::Array(rows);
        let value = if layout.wrapped {
            serde_json::json!({ "trips": array })
        } else {
            array
        };
        let written = if layout.crlf {
            serde_json::to_string_pretty(&value)
        } else {
            serde_json::to_string(&value)
        };
        written.expect("JSON")
    } else {
        let delimiter = if layout.semicolon { ";" } else { "," };
        let newline = if layout.crlf { "\r\n" } else { "\n" };
        let mut columns = vec![
            header(TripField::StartTime),
            header(TripField::EndTime),
            header(TripField::DistanceKm),
            header(TripField::EnergyKwh),
            header(TripField::Notes),
        ];
        if layout.extra_column {
            columns.insert(1, "Vehicle name".into());
        }
        let mut lines = vec![columns
            .iter()
            .map(|c| csv_field(c, layout))
            .collect::<Vec<_>>()
            .join(delimiter)];
        for t in trips {
            let mut fields = vec![
                t.start.0.clone(),
                t.end.0.clone(),
                number_text(t.distance, layout),
                t.energy.map(|e| number_text(e, layout)).unwrap_or_default(),
                t.notes.clone().unwrap_or_default(),
            ];
            if layout.extra_column {
                fields.insert(1, "VF 8 (ô tô)".into());
            }
            lines.push(
                fields
                    .iter()
                    .map(|f| csv_field(f, layout))
                    .collect::<Vec<_>>()
                    .join(delimiter),
            );
        }
        let mut text = lines.join(newline);
        if layout.final_newline {
            text.push_str(newline);
        }
        text
    };
    match layout.encoding {
        0 => text.into_bytes(),
        1 => [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat(),
        2 => [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect(),
        _ => [0xFE, 0xFF]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
            .collect(),
    }
}

fn trip_schema() -> Schema<'static> {
    Schema {
        field_of: &trips::field_index,
        fields: trips::FIELDS.len(),
        required: &trips::REQUIRED,
    }
}

fn field_at(f: TripField) -> usize {
    trips::FIELDS
        .iter()
        .position(|x| *x == f)
        .expect("a trip field")
}

/// Every generated trip file reads back to exactly the trips written, whatever its format.
fn trip_files(runner: &mut TestRunner) -> Result<(), String> {
    report(runner.run(&(trips(), layouts()), |(trips, layout)| {
        let bytes = render(&trips, &layout);
        let mut read: Vec<Result<Trip, String>> = Vec::new();
        let facts = read_records(
            &bytes[..],
            ReadLimits::default(),
            &trip_schema(),
            |_, values, comma| {
                let Some(values) = values else {
                    read.push(Err("a row is not text".into()));
                    return true;
                };
                let text = |f: TripField| values[field_at(f)];
                let time = |f| {
                    text(f)
                        .and_then(Timestamp::parse)
                        .ok_or(format!("{f:?}: {:?}", text(f)))
                };
                let number = |f| text(f).and_then(|v| parse_number(v, comma));
                read.push((|| {
                    Ok(Trip {
                        start: (String::new(), time(TripField::StartTime)?),
                        end: (String::new(), time(TripField::EndTime)?),
                        distance: number(TripField::DistanceKm).ok_or("distance")?,
                        energy: number(TripField::EnergyKwh),
                        notes: text(TripField::Notes).map(str::to_owned),
                    })
                })());
                true
            },
        );
        match facts {
            Ok(facts) => {
                prop_assert_eq!(facts.bytes, bytes.len() as u64);
                prop_assert_eq!(facts.comma_decimal, layout.semicolon && !layout.json);
            }
            // An export with no rows is a header only (CSV) or an empty array: both read as a
            // file without trips; nothing else may be refused.
            Err(refusal) => prop_assert!(false, "refused: {refusal:?}"),
        }
        prop_assert_eq!(read.len(), trips.len(), "rows read: {:?}", read);
        for (got, want) in read.into_iter().zip(&trips) {
            let got = got.map_err(|e| TestCaseError::fail(e))?;
            prop_assert!(
                same_time(got.start.1, want.start.1),
                "{:?} ≠ {:?}",
                got.start.1,
                want.start.1
            );
            prop_assert!(
                same_time(got.end.1, want.end.1),
                "{:?} ≠ {:?}",
                got.end.1,
                want.end.1
            );
            prop_assert_eq!(got.distance, want.distance);
            prop_assert_eq!(got.energy, want.energy);
            // A note is kept as written (CSV and JSON alike), line breaks included; the reader's
            // users trim what surrounds it (a CSV line's last field keeps a CRLF's '\r').
            prop_assert_eq!(
                got.notes.as_deref().map(str::trim),
                want.notes.as_deref().map(str::trim)
            );
        }
        Ok(())
    }))
}

/// Arbitrary bytes, and generated files cut, spliced and flipped: the reader answers rows or a
/// refusal, never panics, and keeps within its limits.
fn arbitrary_files(runner: &mut TestRunner) -> Result<(), String> {
    let mutated = (
        trips(),
        layouts(),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        any::<usize>(),
    )
        .prop_map(|(trips, layout, flips, cut)| {
            let mut bytes = render(&trips, &layout);
            for (at, byte) in flips {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = byte;
                }
            }
            let keep = if bytes.is_empty() {
                0
            } else {
                cut % (bytes.len() + 1)
            };
            bytes.truncate(keep);
            bytes
        });
    let files = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        mutated,
        "[\\[\\]{}\",:0-9a-z_ \n-]{0,300}".prop_map(String::into_bytes),
    ];
    let limits = ReadLimits {
        max_file_bytes: 1024,
        max_record_bytes: 256,
    };
    report(runner.run(&files, |bytes| {
        let mut rows = 0u64;
        let mut last_line = 0u32;
        let result = read_records(&bytes[..], limits, &trip_schema(), |line, _, _| {
            rows += 1;
            last_line = last_line.max(line);
            true
        });
        match result {
            Ok(facts) => {
                prop_assert!(facts.bytes <= limits.max_file_bytes);
                prop_assert_eq!(facts.bytes, bytes.len() as u64);
            }
            Err(Refusal::TooLarge { limit }) => prop_assert_eq!(limit, limits.max_file_bytes),
            Err(Refusal::Stopped) => prop_assert!(false, "stopped without being asked to"),
            Err(_) => {}
        }
        // A row is at least a newline (or a JSON object's two braces) long.
        prop_assert!(
            rows <= bytes.len() as u64,
            "{} rows from {} bytes",
            rows,
            bytes.len()
        );
        Ok(())
    }))
}

const NOW: i64 = 1_780_000_000;

fn headers(name: &'static str, value: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(value) {
        h.insert(name, v);
    }
    h
}

/// Signature headers as received: anything, or well-formed ones with any time and signatures.
fn signature_headers() -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>(),
        "[tv0-9=,a-f ]{0,80}",
        (any::<i64>(), "[0-9a-f]{0,64}").prop_map(|(t, s)| format!("t={t},v1={s}")),
    ]
    .boxed()
}

fn bodies() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<String>().prop_map(String::into_bytes),
        "[{}\\[\\]\":,a-z_0-9. -]{0,200}".prop_map(String::into_bytes),
    ]
    .boxed()
}

fn sandbox_notifications(runner: &mut TestRunner) -> Result<(), String> {
    let secret = b"generated sandbox secret".to_vec();
    let gateway = Sandbox::new(secret.clone());
    let deliveries = (
        any::<u128>(),
        "[a-z0-9_-]{1,30}",
        prop_oneof![
            Just("succeeded".to_owned()),
            Just("failed".to_owned()),
            "[a-z]{0,10}"
        ],
        ".{0,40}",
    )
        .prop_map(|(id, event_id, status, reason)| Delivery {
            event_id,
            payment_id: Uuid::from_u128(id),
            status,
            reason,
        });
    let times = prop_oneof![any::<i64>(), (NOW - 1_000..NOW + 1_000)];
    report(runner.run(
        &(signature_headers(), bodies(), deliveries, times),
        |(header, body, delivery, t)| {
            // Forged: any header with any body is refused (never panics).
            let forged =
                gateway.verify_webhook(&headers(sandbox::SIGNATURE_HEADER, &header), &body, NOW);
            prop_assert!(forged.is_err(), "accepted a forged delivery {header:?}");
            // Signed by the secret at any time: read when fresh and known, refused otherwise.
            let (body, _) = gateway.delivery(&delivery, t);
            let mut message = format!("{t}.").into_bytes();
            message.extend_from_slice(&body);
            let signature = format!("t={t},v1={}", hmac_sha256_hex(&secret, &message));
            let answer =
                gateway.verify_webhook(&headers(sandbox::SIGNATURE_HEADER, &signature), &body, NOW);
            let fresh = NOW.abs_diff(t) <= sandbox::TOLERANCE_SECS as u64;
            match (answer, fresh, delivery.status.as_str()) {
                (Err(WebhookError::Stale), false, _) => {}
                (Ok(event), true, "succeeded") => {
                    prop_assert_eq!(event.payment_id, delivery.payment_id);
                    prop_assert_eq!(event.outcome, Outcome::Succeeded);
                }
                (Ok(event), true, "failed") => {
                    prop_assert_eq!(event.payment_id, delivery.payment_id);
                    let failed = matches!(event.outcome, Outcome::Failed { .. });
                    prop_assert!(failed, "a failed payment read as {:?}", event.outcome);
                }
                (Err(WebhookError::Ignored(_)), true, _) => {}
                (answer, fresh, status) => {
                    return Err(TestCaseError::fail(format!(
                        "{status} at {t} (fresh: {fresh}): {answer:?}"
                    )));
                }
            }
            Ok(())
        },
    ))
}

fn stripe_notifications(runner: &mut TestRunner) -> Result<(), String> {
    let secret = "whsec_generated";
    let gateway = Stripe::new("sk_test_generated", secret);
    let kinds = prop_oneof![
        Just("checkout.session.completed".to_owned()),
        Just("checkout.session.async_payment_succeeded".to_owned()),
        Just("checkout.session.async_payment_failed".to_owned()),
        Just("checkout.session.expired".to_owned()),
        "[a-z._]{0,30}",
    ];
    let paid = prop_oneof![Just(Some("paid")), Just(Some("unpaid")), Just(None)];
    let reference = prop_oneof![
        any::<u128>().prop_map(|u| Uuid::from_u128(u).to_string()),
        ".{0,40}"
    ];
    let events = (kinds, paid, reference, any::<bool>()).prop_map(|(kind, paid, reference, in_metadata)| {
        let mut session = serde_json::json!({ "id": "cs_test_1", "object": "checkout.session" });
        if let Some(p) = paid {
            session["payment_status"] = p.into();
        }
        if in_metadata {
            session["metadata"] = serde_json::json!({ "payment_id": reference });
        } else {
            session["client_reference_id"] = reference.clone().into();
        }
        let event = serde_json::json!({ "id": "evt_1", "type": kind.clone(), "data": { "object": session } });
        (kind, paid, Uuid::parse_str(&reference).ok(), serde_json::to_vec(&event).expect("JSON"))
    });
    let times = prop_oneof![any::<i64>(), (NOW - 1_000..NOW + 1_000)];
    report(runner.run(
        &(signature_headers(), bodies(), events, times),
        |(header, body, (kind, paid, payment, event), t)| {
            let forged =
                gateway.verify_webhook(&headers(stripe::SIGNATURE_HEADER, &header), &body, NOW);
            prop_assert!(forged.is_err(), "accepted a forged notification {header:?}");
            let mut message = format!("{t}.").into_bytes();
            message.extend_from_slice(&event);
            let signature = format!("t={t},v1={}", hmac_sha256_hex(secret.as_bytes(), &message));
            let answer =
                gateway.verify_webhook(&headers(stripe::SIGNATURE_HEADER, &signature), &event, NOW);
            let fresh = NOW.abs_diff(t) <= stripe::DEFAULT_TOLERANCE_SECS as u64;
            let settles = match kind.as_str() {
                "checkout.session.completed" => paid == Some("paid"),
                "checkout.session.async_payment_succeeded"
                | "checkout.session.async_payment_failed"
                | "checkout.session.expired" => true,
                _ => false,
            };
            match answer {
                Err(WebhookError::Stale) => prop_assert!(!fresh),
                Ok(read) => {
                    prop_assert!(fresh && settles, "{kind} paid {paid:?} at {t}");
                    prop_assert_eq!(Some(read.payment_id), payment);
                    let succeeded = kind == "checkout.session.completed"
                        || kind.ends_with("async_payment_succeeded");
                    prop_assert_eq!(read.outcome == Outcome::Succeeded, succeeded);
                }
                Err(other) => prop_assert!(
                    fresh && (!settles || payment.is_none()),
                    "{kind} paid {paid:?} payment {payment:?} at {t}: {other:?}"
                ),
            }
            Ok(())
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The short run of `make test`: a fixed seed, a few thousand inputs per target.
    #[test]
    fn every_target_holds_for_generated_inputs() {
        for target in TARGETS {
            let cases = 300 * target.weight;
            if let Err(failure) = target.run(cases, [7; 32]) {
                panic!("{}: {failure}", target.name);
            }
        }
    }
}
