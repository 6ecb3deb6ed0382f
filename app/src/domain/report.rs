//! A report (SPEC §9): figures per period for one person or the platform — rows of buckets
//! (days, months or years), columns of measures, totals — and its CSV. The same report is the
//! page's table, the charts' data, the CSV and the PDF, so they can never disagree.

use crate::domain::market::{format_money, tonnes};
use crate::domain::period::Grain;
use chrono::NaiveDate;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What a column counts, which decides how it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Kilograms of CO₂ or of credits, written in tonnes.
    Kg,
    /// Money in the platform currency.
    Money,
    Count,
    /// A share, 0–100.
    Percent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub label: String,
    pub measure: Measure,
    /// A running figure (users so far): its total is the last value, not the sum.
    pub running: bool,
}

impl Column {
    pub fn new(label: &str, measure: Measure) -> Column {
        Column {
            label: label.to_owned(),
            measure,
            running: false,
        }
    }

    pub fn running(label: &str, measure: Measure) -> Column {
        Column {
            running: true,
            ..Column::new(label, measure)
        }
    }

    /// The figure as a person reads it.
    pub fn format(&self, value: Decimal, currency: &str) -> String {
        match self.measure {
            Measure::Kg => tonnes(value.round().to_i64().unwrap_or(0)),
            Measure::Money => format_money(value.round_dp(2), currency),
            Measure::Count => value.round().to_string(),
            Measure::Percent => format!("{} %", value.round_dp(1)),
        }
    }

    /// The unit of the plain numbers (CSV, chart axes): kg, the currency, %, or none.
    pub fn unit(&self, currency: &str) -> String {
        match self.measure {
            Measure::Kg => "kg".to_owned(),
            Measure::Money => currency.to_owned(),
            Measure::Count => String::new(),
            Measure::Percent => "%".to_owned(),
        }
    }

    /// The CSV header: the unit is in the name, the values are plain numbers.
    pub fn csv_header(&self, currency: &str) -> String {
        match self.unit(currency).as_str() {
            "" => self.label.clone(),
            unit => format!("{} ({unit})", self.label),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The bucket's first day.
    pub start: NaiveDate,
    pub label: String,
    pub values: Vec<Decimal>,
}

/// A chart the page (and the PDF) draws: one column of the rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartOf {
    pub title: String,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub title: String,
    /// Whose figures: a person's name, or "the whole platform".
    pub subject: String,
    pub grain: Grain,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub currency: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    pub charts: Vec<ChartOf>,
    /// What the figures mean, in a sentence each.
    pub notes: Vec<String>,
}

impl Report {
    /// Per column: the sum of the rows (a running column: its last value; a percentage: none).
    pub fn totals(&self) -> Vec<Option<Decimal>> {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, c)| match (c.measure, c.running) {
                (Measure::Percent, _) => None,
                (_, true) => self.rows.last().map(|r| r.values[i]),
                _ => Some(self.rows.iter().map(|r| r.values[i]).sum()),
            })
            .collect()
    }

    /// The report as CSV: a header, one line per bucket (plain numbers, kilograms and
    /// currency units), then the totals.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        let mut header = vec!["period_start".to_owned(), "period".to_owned()];
        header.extend(self.columns.iter().map(|c| c.csv_header(&self.currency)));
        push_line(&mut out, &header);
        for r in &self.rows {
            let mut line = vec![r.start.to_string(), r.label.clone()];
            line.extend(r.values.iter().map(|v| v.normalize().to_string()));
            push_line(&mut out, &line);
        }
        let mut total = vec![String::new(), "Total".to_owned()];
        total.extend(
            self.totals()
                .into_iter()
                .map(|t| t.map(|v| v.normalize().to_string()).unwrap_or_default()),
        );
        push_line(&mut out, &total);
        out
    }
}

/// One CSV line (RFC 4180 quoting where needed).
fn push_line(out: &mut String, fields: &[String]) {
    let line: Vec<String> = super::spreadsheet::safe_record(fields)
        .into_iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f
            }
        })
        .collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

/// The buckets between two days (inclusive) at a grain, and a check that there are not too
/// many to read: at most 366 days, 120 months or 50 years.
pub fn buckets(grain: Grain, from: NaiveDate, to: NaiveDate) -> Result<Vec<NaiveDate>, String> {
    use chrono::{Datelike, Months};
    if from > to {
        return Err("The end date is before the start date.".into());
    }
    let mut out = Vec::new();
    let mut at = grain.bucket_start(from);
    let (limit, unit) = match grain {
        Grain::Day => (366, "days"),
        Grain::Month => (120, "months"),
        Grain::Year => (50, "years"),
    };
    while at <= to {
        out.push(at);
        if out.len() > limit {
            return Err(format!(
                "That is more than {limit} {unit}: choose a shorter period or a longer step."
            ));
        }
        at = match grain {
            Grain::Day => at.succ_opt().expect("a next day"),
            Grain::Month => at + Months::new(1),
            Grain::Year => NaiveDate::from_ymd_opt(at.year() + 1, 1, 1).expect("1 January"),
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn sample() -> Report {
        Report {
            title: "Sales".into(),
            subject: "Xanh, \"the fleet\"".into(),
            grain: Grain::Month,
            from: d(2026, 1, 1),
            to: d(2026, 2, 28),
            currency: "VND".into(),
            columns: vec![
                Column::new("Sold", Measure::Kg),
                Column::new("Revenue", Measure::Money),
                Column::running("Users", Measure::Count),
                Column::new("Approved", Measure::Percent),
            ],
            rows: vec![
                Row {
                    start: d(2026, 1, 1),
                    label: "Jan 2026".into(),
                    values: vec![
                        1500.into(),
                        Decimal::new(150_000_50, 2),
                        3.into(),
                        50.into(),
                    ],
                },
                Row {
                    start: d(2026, 2, 1),
                    label: "Feb, 2026".into(),
                    values: vec![250.into(), 25_000.into(), 5.into(), 100.into()],
                },
            ],
            charts: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn totals_sum_running_columns_take_the_last_and_shares_have_none() {
        assert_eq!(
            sample().totals(),
            vec![
                Some(1750.into()),
                Some(Decimal::new(175_000_50, 2)),
                Some(5.into()),
                None
            ]
        );
    }

    #[test]
    fn the_csv_has_units_in_the_header_plain_numbers_and_quotes_where_needed() {
        let csv = sample().csv();
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "period_start,period,Sold (kg),Revenue (VND),Users,Approved (%)"
        );
        assert_eq!(lines[1], "2026-01-01,Jan 2026,1500,150000.5,3,50");
        assert_eq!(lines[2], "2026-02-01,\"Feb, 2026\",250,25000,5,100");
        assert_eq!(lines[3], ",Total,1750,175000.5,5,");
        assert_eq!(lines[4], "");
    }

    #[test]
    fn figures_are_written_in_their_unit() {
        let r = sample();
        assert_eq!(r.columns[0].format(1500.into(), "VND"), "1.500 t");
        assert_eq!(
            r.columns[1].format(Decimal::new(150_000_50, 2), "VND"),
            "150.000,50 ₫"
        );
        assert_eq!(r.columns[3].format(Decimal::new(6667, 2), "VND"), "66.7 %");
    }

    #[test]
    fn buckets_cover_the_period_and_refuse_too_many() {
        assert_eq!(
            buckets(Grain::Month, d(2026, 1, 15), d(2026, 3, 1)).unwrap(),
            vec![d(2026, 1, 1), d(2026, 2, 1), d(2026, 3, 1)]
        );
        assert_eq!(
            buckets(Grain::Year, d(2024, 5, 1), d(2026, 1, 1))
                .unwrap()
                .len(),
            3
        );
        assert!(buckets(Grain::Day, d(2025, 1, 1), d(2026, 6, 1))
            .unwrap_err()
            .starts_with("That is more than 366 days"));
        assert!(buckets(Grain::Month, d(2026, 2, 1), d(2026, 1, 1)).is_err());
    }
}
