//! The figures behind the reports of SPEC §9, per day, month or year of a period: an EV
//! owner's CO₂ avoided, credits earned and revenue; a buyer's purchases and retirements; the
//! platform's volume, value, fees, credits issued / traded / retired and users. Each report is
//! one `Report` — the page's table and charts, the CSV and the PDF all come from it.

use crate::domain::period::Grain;
use crate::domain::report::{self, ChartOf, Column, Measure, Report, Row};
use crate::error::AppError;
use crate::server::pdf::Document;
use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;

/// A period: its grain and first and last day (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub grain: Grain,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// One query of a report: what it adds up per bucket (`width` values), from which rows (`$4`
/// is the person; a platform query ignores it with `$4::uuid IS NULL`), by which time.
struct Source {
    sums: &'static str,
    rows: &'static str,
    time: &'static str,
    width: usize,
}

/// Every bucket of the period with the sources' values side by side (zero where a bucket has
/// no rows).
async fn gather(
    pool: &PgPool,
    p: Period,
    who: Option<Uuid>,
    sources: &[Source],
) -> Result<BTreeMap<NaiveDate, Vec<Decimal>>, AppError> {
    let starts = report::buckets(p.grain, p.from, p.to).map_err(|m| AppError::invalid("to", m))?;
    let width: usize = sources.iter().map(|s| s.width).sum();
    let mut data: BTreeMap<NaiveDate, Vec<Decimal>> = starts
        .iter()
        .map(|s| (*s, vec![Decimal::ZERO; width]))
        .collect();
    let mut offset = 0;
    for source in sources {
        let sql = format!(
            "SELECT {b}, {sums} FROM {rows} AND {w} GROUP BY 1",
            b = bucket(source.time),
            sums = source.sums,
            rows = source.rows,
            w = within(source.time)
        );
        for (start, values) in series(pool, &sql, p, who, source.width).await? {
            if let Some(row) = data.get_mut(&start) {
                row[offset..offset + source.width].copy_from_slice(&values);
            }
        }
        offset += source.width;
    }
    Ok(data)
}

/// Runs a query answering `(bucket, v1, v2, …)` rows for `$1` = grain, `$2`/`$3` = the period
/// and `$4` = the person (unused by platform queries).
async fn series(
    pool: &PgPool,
    sql: &str,
    p: Period,
    who: Option<Uuid>,
    width: usize,
) -> Result<Vec<(NaiveDate, Vec<Decimal>)>, AppError> {
    use sqlx::Row as _;
    let rows = sqlx::query(sql)
        .bind(p.grain.as_str())
        .bind(p.from)
        .bind(p.to)
        .bind(who)
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|r| {
            let start: NaiveDate = r.try_get(0)?;
            let values = (1..=width)
                .map(|i| r.try_get::<Decimal, _>(i))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((start, values))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(AppError::from)
}

/// `WHERE` for a timestamp column inside the period (UTC days, inclusive).
fn within(column: &str) -> String {
    format!("{column} >= $2::date AND {column} < $3::date + 1")
}

fn bucket(column: &str) -> String {
    format!("date_trunc($1, {column} AT TIME ZONE 'UTC')::date")
}

fn rows(grain: Grain, data: BTreeMap<NaiveDate, Vec<Decimal>>) -> Vec<Row> {
    data.into_iter()
        .map(|(start, values)| Row {
            start,
            label: grain.bucket_label(start),
            values,
        })
        .collect()
}

/// An EV owner: CO₂ avoided by their trips, credits issued to them (net of the buffer), credits
/// sold and what the sales brought in after the seller fee.
pub async fn owner(
    pool: &PgPool,
    user: Uuid,
    name: &str,
    currency: &str,
    p: Period,
) -> Result<Report, AppError> {
    let data = gather(
        pool,
        p,
        Some(user),
        &[
            Source {
                sums: "sum(t.avoided_kg), count(*)::numeric",
                rows: "trips t JOIN vehicles v ON v.id = t.vehicle_id WHERE v.owner_id = $4",
                time: "t.start_time",
                width: 2,
            },
            Source {
                sums: "sum(i.net_kg)::numeric",
                rows: "credit_issuances i WHERE i.owner_id = $4",
                time: "i.issued_at",
                width: 1,
            },
            Source {
                sums: "sum(o.quantity_kg)::numeric, sum(o.seller_receives), sum(o.seller_fee)",
                rows: "orders o WHERE o.seller_id = $4 AND o.status = 'completed'",
                time: "o.completed_at",
                width: 3,
            },
        ],
    )
    .await?;
    Ok(Report {
        title: "Your CO₂, credits and revenue".into(),
        subject: name.to_owned(),
        grain: p.grain,
        from: p.from,
        to: p.to,
        currency: currency.to_owned(),
        columns: vec![
            Column::new("CO₂ avoided", Measure::Kg),
            Column::new("Trips", Measure::Count),
            Column::new("Credits issued", Measure::Kg),
            Column::new("Credits sold", Measure::Kg),
            Column::new("Revenue", Measure::Money),
            Column::new("Seller fees", Measure::Money),
        ],
        rows: rows(p.grain, data),
        charts: vec![
            ChartOf {
                title: "CO₂ avoided".into(),
                column: 0,
            },
            ChartOf {
                title: "Revenue".into(),
                column: 4,
            },
        ],
        notes: vec![
            "CO₂ avoided: by the trips that started in each period, as the methodology calculated them.".into(),
            "Credits issued: what verifiers approved into your wallet, after the buffer pool's share.".into(),
            "Revenue: what completed sales paid into your wallet, after the seller fee (refunded sales are left out).".into(),
        ],
    })
}

/// A buyer: completed purchases (orders, tonnes, what they paid with fees) and the tonnes they
/// retired.
pub async fn buyer(
    pool: &PgPool,
    user: Uuid,
    name: &str,
    currency: &str,
    p: Period,
) -> Result<Report, AppError> {
    let data = gather(
        pool,
        p,
        Some(user),
        &[
            Source {
                sums: "count(*)::numeric, sum(o.quantity_kg)::numeric, sum(o.buyer_pays), sum(o.buyer_fee)",
                rows: "orders o WHERE o.buyer_id = $4 AND o.status = 'completed'",
                time: "o.completed_at",
                width: 4,
            },
            Source {
                sums: "sum(r.quantity_kg)::numeric",
                rows: "retirements r WHERE r.owner_id = $4",
                time: "r.retired_at",
                width: 1,
            },
        ],
    )
    .await?;
    Ok(Report {
        title: "Your purchases and retirements".into(),
        subject: name.to_owned(),
        grain: p.grain,
        from: p.from,
        to: p.to,
        currency: currency.to_owned(),
        columns: vec![
            Column::new("Orders", Measure::Count),
            Column::new("Credits bought", Measure::Kg),
            Column::new("Paid", Measure::Money),
            Column::new("Buyer fees", Measure::Money),
            Column::new("Credits retired", Measure::Kg),
        ],
        rows: rows(p.grain, data),
        charts: vec![
            ChartOf {
                title: "Credits bought".into(),
                column: 1,
            },
            ChartOf {
                title: "Credits retired".into(),
                column: 4,
            },
        ],
        notes: vec![
            "Orders, credits bought and paid: completed purchases (fixed price and won auctions), with the buyer fee; refunded ones are left out.".into(),
            "Credits retired: every retirement you made, on purchase or later, each with its certificate.".into(),
        ],
    })
}

/// The platform: trades, volume, value and fees; credits issued (gross, buffer included),
/// traded and retired; new users and users in all.
pub async fn platform(pool: &PgPool, currency: &str, p: Period) -> Result<Report, AppError> {
    let mut data = gather(
        pool,
        p,
        None,
        &[
            Source {
                sums: "count(*)::numeric, sum(o.quantity_kg)::numeric, sum(o.amount), sum(o.buyer_fee + o.seller_fee)",
                rows: "orders o WHERE o.status = 'completed' AND $4::uuid IS NULL",
                time: "o.completed_at",
                width: 4,
            },
            Source {
                sums: "sum(i.gross_kg)::numeric",
                rows: "credit_issuances i WHERE $4::uuid IS NULL",
                time: "i.issued_at",
                width: 1,
            },
            Source {
                sums: "sum(r.quantity_kg)::numeric",
                rows: "retirements r WHERE $4::uuid IS NULL",
                time: "r.retired_at",
                width: 1,
            },
            // New users, then (below) users in all.
            Source {
                sums: "count(*)::numeric, 0::numeric",
                rows: "users u WHERE $4::uuid IS NULL",
                time: "u.created_at",
                width: 2,
            },
        ],
    )
    .await?;
    // Users in all: those who joined before the period, then each bucket's newcomers.
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE created_at < $1::date")
        .bind(data.keys().next().copied().unwrap_or(p.from))
        .fetch_one(pool)
        .await?;
    let mut total = Decimal::from(before);
    for values in data.values_mut() {
        total += values[6];
        values[7] = total;
    }
    Ok(Report {
        title: "Platform activity".into(),
        subject: "The whole platform".into(),
        grain: p.grain,
        from: p.from,
        to: p.to,
        currency: currency.to_owned(),
        columns: vec![
            Column::new("Trades", Measure::Count),
            Column::new("Volume traded", Measure::Kg),
            Column::new("Value traded", Measure::Money),
            Column::new("Fees", Measure::Money),
            Column::new("Credits issued", Measure::Kg),
            Column::new("Credits retired", Measure::Kg),
            Column::new("New users", Measure::Count),
            Column::running("Users", Measure::Count),
        ],
        rows: rows(p.grain, data),
        charts: vec![
            ChartOf {
                title: "Value traded".into(),
                column: 2,
            },
            ChartOf {
                title: "Credits issued".into(),
                column: 4,
            },
            ChartOf {
                title: "Users".into(),
                column: 7,
            },
        ],
        notes: vec![
            "Trades, volume and value: completed orders (fixed price and auctions) at the price before fees; fees: both sides' platform fees.".into(),
            "Credits issued: everything verifiers approved, the buffer pool's share included.".into(),
            "Users: accounts of every role; the running total counts everyone who joined up to the end of each period.".into(),
        ],
    })
}

/// The report as a PDF: its facts, a bar chart per chart, the table and what the figures mean.
pub fn pdf(r: &Report) -> Vec<u8> {
    use rust_decimal::prelude::ToPrimitive;
    let mut doc = Document::new(&r.title);
    doc.line(18.0, true, &r.title);
    doc.facts(&[
        ("For", r.subject.clone()),
        (
            "Period",
            format!("{} to {}, by {}", r.from, r.to, r.grain.as_str()),
        ),
        ("Made", Utc::now().format("%Y-%m-%d %H:%M UTC").to_string()),
    ]);
    let totals = r.totals();
    let summary: Vec<(&str, String)> = r
        .columns
        .iter()
        .zip(&totals)
        .filter_map(|(c, t)| t.map(|t| (c.label.as_str(), c.format(t, &r.currency))))
        .collect();
    doc.line(12.0, true, "In the period");
    doc.facts(&summary);
    for chart in &r.charts {
        let points: Vec<(String, f64)> = r
            .rows
            .iter()
            .map(|row| {
                (
                    row.label.clone(),
                    row.values[chart.column].to_f64().unwrap_or(0.0),
                )
            })
            .collect();
        let column = &r.columns[chart.column];
        let unit = column.unit(&r.currency);
        let caption = match unit.as_str() {
            "" => chart.title.clone(),
            unit => format!("{} ({unit})", chart.title),
        };
        doc.bar_chart(&caption, &points);
    }
    // The table: the period, then every column (narrow enough for A4).
    let width = (crate::server::pdf::WIDTH - 2.0 * crate::server::pdf::MARGIN - 70.0)
        / r.columns.len().max(1) as f32;
    let mut columns: Vec<(f32, &str)> = vec![(0.0, "Period")];
    columns.extend(
        r.columns
            .iter()
            .enumerate()
            .map(|(i, c)| (70.0 + width * i as f32, c.label.as_str())),
    );
    let mut lines: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            let mut line = vec![row.label.clone()];
            line.extend(
                r.columns
                    .iter()
                    .zip(&row.values)
                    .map(|(c, v)| c.format(*v, &r.currency)),
            );
            line
        })
        .collect();
    let mut total = vec!["Total".to_owned()];
    total.extend(
        r.columns
            .iter()
            .zip(&totals)
            .map(|(c, t)| t.map(|t| c.format(t, &r.currency)).unwrap_or_default()),
    );
    lines.push(total);
    doc.line(12.0, true, "Per period");
    doc.table(&columns, &lines);
    doc.space(8.0);
    for note in &r.notes {
        doc.line(9.0, false, note);
    }
    doc.finish()
}
