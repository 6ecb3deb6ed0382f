//! Periods the dashboard groups by, and the range each one shows.

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grain {
    Day,
    Month,
    Year,
}

impl Grain {
    pub const ALL: [Grain; 3] = [Grain::Day, Grain::Month, Grain::Year];

    pub fn parse(raw: &str) -> Result<Grain, String> {
        match raw.trim() {
            "" | "month" => Ok(Grain::Month),
            "day" => Ok(Grain::Day),
            "year" => Ok(Grain::Year),
            other => Err(format!("“{other}” is not a period (day, month or year).")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Day => "day",
            Grain::Month => "month",
            Grain::Year => "year",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Grain::Day => "Last 30 days",
            Grain::Month => "Last 12 months",
            Grain::Year => "By year",
        }
    }

    /// The first day of the bucket holding `day`.
    pub fn bucket_start(self, day: NaiveDate) -> NaiveDate {
        match self {
            Grain::Day => day,
            Grain::Month => day.with_day(1).expect("day 1 exists"),
            Grain::Year => NaiveDate::from_ymd_opt(day.year(), 1, 1).expect("1 January exists"),
        }
    }

    /// Every bucket start from the range's first bucket to the one holding `today`.
    /// Years start at `first_year` (the first year with data), at most 20 years back.
    pub fn buckets(self, today: NaiveDate, first_year: Option<i32>) -> Vec<NaiveDate> {
        let last = self.bucket_start(today);
        match self {
            Grain::Day => (0..30)
                .rev()
                .map(|n| last - chrono::Duration::days(n))
                .collect(),
            Grain::Month => (0..12).rev().map(|n| last - Months::new(n)).collect(),
            Grain::Year => {
                let from = first_year
                    .unwrap_or(today.year())
                    .max(today.year() - 19)
                    .min(today.year());
                (from..=today.year())
                    .map(|y| NaiveDate::from_ymd_opt(y, 1, 1).expect("1 January"))
                    .collect()
            }
        }
    }

    /// Short label of a bucket for a chart axis or a table row.
    pub fn bucket_label(self, start: NaiveDate) -> String {
        match self {
            Grain::Day => start.format("%d %b").to_string(),
            Grain::Month => start.format("%b %Y").to_string(),
            Grain::Year => start.format("%Y").to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn ranges_end_with_the_current_bucket() {
        let today = d(2026, 11, 22);
        let days = Grain::Day.buckets(today, None);
        assert_eq!(
            (days.len(), days[0], days[29]),
            (30, d(2026, 10, 24), today)
        );
        let months = Grain::Month.buckets(today, None);
        assert_eq!(
            (months.len(), months[0], months[11]),
            (12, d(2025, 12, 1), d(2026, 11, 1))
        );
        assert_eq!(
            Grain::Year.buckets(today, Some(2024)),
            vec![d(2024, 1, 1), d(2025, 1, 1), d(2026, 1, 1)]
        );
        assert_eq!(Grain::Year.buckets(today, Some(1970)).len(), 20);
        assert_eq!(Grain::Year.buckets(today, None), vec![d(2026, 1, 1)]);
    }

    #[test]
    fn parsing_and_labels() {
        assert_eq!(Grain::parse(""), Ok(Grain::Month));
        assert_eq!(Grain::parse("day"), Ok(Grain::Day));
        assert!(Grain::parse("week").is_err());
        assert_eq!(Grain::Month.bucket_label(d(2026, 3, 1)), "Mar 2026");
        assert_eq!(Grain::Month.bucket_start(d(2026, 3, 17)), d(2026, 3, 1));
    }
}
