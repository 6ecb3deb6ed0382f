//! The price suggestion and the market trends, from the platform's completed trades (see
//! `domain::pricing` for the rule). Today's date is the only other input, so a suggestion is the
//! same all day for the same trades.

use crate::api::market::{ClassTrend, TrendPoint, Trends};
use crate::domain::pricing::{self, Suggestion, Trade};
use crate::error::AppError;
use chrono::{Datelike, Months, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgPool;

/// Completed trades of the last two years (a year to suggest from, a year more to back-test).
async fn trades(conn: impl sqlx::PgExecutor<'_>) -> Result<Vec<Trade>, AppError> {
    let rows: Vec<(NaiveDate, Decimal, i64, String, i32)> = sqlx::query_as(
        "SELECT (o.completed_at AT TIME ZONE 'UTC')::date, o.price_per_t, o.quantity_kg, l.region, l.vintage
         FROM orders o JOIN listings l ON l.id = o.listing_id
         WHERE o.status = 'completed' AND o.completed_at >= now() - interval '730 days'",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(day, price_per_t, kg, region, vintage)| Trade {
            day,
            price_per_t,
            kg,
            region,
            vintage,
        })
        .collect())
}

/// Suggestions for several classes (region, vintage) at once.
pub async fn suggestions(
    pool: &PgPool,
    classes: &[(String, i32)],
    currency: &str,
) -> Result<Vec<Suggestion>, AppError> {
    if classes.is_empty() {
        return Ok(Vec::new());
    }
    let trades = trades(pool).await?;
    let today = Utc::now().date_naive();
    Ok(classes
        .iter()
        .map(|(region, vintage)| pricing::suggest(&trades, region, *vintage, today, currency))
        .collect())
}

/// The suggestion for one class, read on the caller's connection (a listing's price is
/// checked against it inside the listing's transaction).
pub async fn suggestion(
    conn: &mut sqlx::PgConnection,
    region: &str,
    vintage: i32,
    currency: &str,
) -> Result<Suggestion, AppError> {
    let trades = trades(conn).await?;
    Ok(pricing::suggest(
        &trades,
        region,
        vintage,
        Utc::now().date_naive(),
        currency,
    ))
}

/// Monthly prices of the last 12 months for every region and vintage that traded, each with its
/// chart and its suggestion.
pub async fn trends(pool: &PgPool, currency: &str) -> Result<Trends, AppError> {
    let trades = trades(pool).await?;
    let today = Utc::now().date_naive();
    let first = today.with_day(1).unwrap_or(today) - Months::new(11);
    let months: Vec<NaiveDate> = (0..12).map(|i| first + Months::new(i)).collect();
    let mut classes: Vec<(String, i32)> = trades
        .iter()
        .filter(|t| t.day >= first)
        .map(|t| (t.region.clone(), t.vintage))
        .collect();
    classes.sort();
    classes.dedup();
    let mut out = Vec::new();
    for (region, vintage) in classes {
        let points: Vec<TrendPoint> = months
            .iter()
            .map(|m| {
                let of_month: Vec<&Trade> = trades
                    .iter()
                    .filter(|t| {
                        t.region == region
                            && t.vintage == vintage
                            && t.day.year() == m.year()
                            && t.day.month() == m.month()
                    })
                    .collect();
                let kg: i64 = of_month.iter().map(|t| t.kg).sum();
                let value: Decimal = of_month
                    .iter()
                    .map(|t| t.price_per_t * Decimal::from(t.kg))
                    .sum();
                TrendPoint {
                    month: m.format("%b %Y").to_string(),
                    average_per_t: (kg > 0).then(|| (value / Decimal::from(kg)).round_dp(2)),
                    trades: of_month.len() as i64,
                    kg,
                }
            })
            .collect();
        let line: Vec<(String, Decimal)> = points
            .iter()
            .filter_map(|p| p.average_per_t.map(|a| (p.month.clone(), a)))
            .collect();
        let chart_svg = crate::server::chart::line(
            &format!("{region} {vintage}: average price per tonne"),
            currency,
            &line,
        )
        .map_err(crate::server::internal)?;
        let suggestion = pricing::suggest(&trades, &region, vintage, today, currency);
        out.push(ClassTrend {
            region,
            vintage,
            points,
            chart_svg,
            suggestion,
        });
    }
    Ok(Trends {
        currency: currency.to_owned(),
        classes: out,
    })
}
