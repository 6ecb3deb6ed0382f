//! Reports. The verifiers' issuance report: every decision in a period, what was issued (gross,
//! buffer, net, serials), the approval rate, and issued kilograms per month; as data, CSV and
//! PDF.

use crate::api::reports::{IssuanceLine, IssuanceReport};
use crate::domain::serial::SerialRange;
use crate::domain::spreadsheet::safe_record;
use crate::error::AppError;
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use sqlx::PgPool;

type Row = (
    String,
    String,
    Option<String>,
    i32,
    String,
    String,
    String,
    chrono::DateTime<chrono::Utc>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    String,
);

/// Decisions taken between two dates (inclusive, UTC).
pub async fn issuance(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<IssuanceReport, AppError> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT r.number, u.full_name, v.plate, r.vintage, r.region, cv.full_name, f.decision, f.created_at,
                r.gross_kg, f.approved_kg, i.buffer_kg, i.net_kg, lower(i.serials), upper(i.serials), f.notes
         FROM verifications f
         JOIN credit_requests r ON r.id = f.request_id
         JOIN users u ON u.id = r.owner_id
         JOIN users cv ON cv.id = f.verifier_id
         LEFT JOIN vehicles v ON v.id = r.vehicle_id
         LEFT JOIN credit_issuances i ON i.request_id = r.id
         WHERE f.created_at >= $1::date AND f.created_at < $2::date + 1
         ORDER BY f.created_at, r.number",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM credit_requests WHERE status = 'pending'")
            .fetch_one(pool)
            .await?;
    let mut report = IssuanceReport {
        from,
        to,
        lines: Vec::new(),
        requested_kg: 0,
        issued_kg: 0,
        buffer_kg: 0,
        net_kg: 0,
        approved: 0,
        reduced: 0,
        rejected: 0,
        pending_now: pending,
        approval_rate: Decimal::ZERO,
        by_month: Vec::new(),
    };
    let mut months: std::collections::BTreeMap<NaiveDate, i64> = Default::default();
    for r in rows {
        let serials = match (r.12, r.13) {
            (Some(s), Some(e)) => Some(SerialRange::new(s, e).label(&r.4, r.3)),
            _ => None,
        };
        match r.6.as_str() {
            "approved" => report.approved += 1,
            "approved_reduced" => report.reduced += 1,
            _ => report.rejected += 1,
        }
        report.requested_kg += r.8;
        report.issued_kg += r.9;
        report.buffer_kg += r.10.unwrap_or(0);
        report.net_kg += r.11.unwrap_or(0);
        let day = r.7.date_naive();
        *months
            .entry(NaiveDate::from_ymd_opt(day.year(), day.month(), 1).unwrap_or(day))
            .or_default() += r.9;
        report.lines.push(IssuanceLine {
            request: r.0,
            owner: r.1,
            vehicles: r.2.unwrap_or_else(|| "All vehicles".into()),
            vintage: r.3,
            region: r.4,
            verifier: r.5,
            decision: r.6,
            decided_at: r.7,
            requested_kg: r.8,
            approved_kg: r.9,
            buffer_kg: r.10.unwrap_or(0),
            net_kg: r.11.unwrap_or(0),
            serials,
            notes: r.14,
        });
    }
    let decided = report.approved + report.reduced + report.rejected;
    if decided > 0 {
        let mut rate = (Decimal::from((report.approved + report.reduced) * 100)
            / Decimal::from(decided))
        .round_dp(1);
        rate.rescale(1);
        report.approval_rate = rate;
    }
    report.by_month = months
        .into_iter()
        .map(|(m, kg)| (m.format("%b %Y").to_string(), kg))
        .collect();
    Ok(report)
}

pub fn issuance_csv(r: &IssuanceReport) -> Result<String, AppError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "request",
        "owner",
        "vehicles",
        "vintage",
        "region",
        "verifier",
        "decision",
        "decided_at_utc",
        "requested_kg",
        "approved_kg",
        "buffer_kg",
        "net_kg",
        "serials",
        "notes",
    ];
    w.write_record(header).map_err(crate::server::internal)?;
    for l in &r.lines {
        w.write_record(safe_record([
            l.request.clone(),
            l.owner.clone(),
            l.vehicles.clone(),
            l.vintage.to_string(),
            l.region.clone(),
            l.verifier.clone(),
            l.decision.clone(),
            l.decided_at.to_rfc3339(),
            l.requested_kg.to_string(),
            l.approved_kg.to_string(),
            l.buffer_kg.to_string(),
            l.net_kg.to_string(),
            l.serials.clone().unwrap_or_default(),
            l.notes.clone(),
        ]))
        .map_err(crate::server::internal)?;
    }
    let bytes = w.into_inner().map_err(crate::server::internal)?;
    String::from_utf8(bytes).map_err(crate::server::internal)
}

pub fn issuance_pdf(r: &IssuanceReport) -> Vec<u8> {
    use crate::server::pdf::Document;
    let mut doc = Document::new(&format!("Issuance report {} to {}", r.from, r.to));
    doc.line(10.0, true, "EV CARBON EXCHANGE");
    doc.line(20.0, true, "Issuance report");
    doc.line(
        12.0,
        false,
        &format!("Decisions from {} to {} (UTC)", r.from, r.to),
    );
    doc.space(8.0);
    doc.facts(&[
        (
            "Decisions",
            format!(
                "{} approved, {} reduced, {} rejected",
                r.approved, r.reduced, r.rejected
            ),
        ),
        ("Approval rate", format!("{} %", r.approval_rate)),
        ("Requested", format!("{} kg", r.requested_kg)),
        (
            "Issued (gross)",
            format!(
                "{} kg: {} kg to owners, {} kg to the buffer pool",
                r.issued_kg, r.net_kg, r.buffer_kg
            ),
        ),
        ("Pending now", r.pending_now.to_string()),
    ]);
    doc.space(8.0);
    doc.line(12.0, true, "Issued per month");
    let months: Vec<Vec<String>> = r
        .by_month
        .iter()
        .map(|(m, kg)| vec![m.clone(), format!("{kg} kg")])
        .collect();
    doc.table(&[(0.0, "Month"), (120.0, "Issued (gross)")], &months);
    doc.space(8.0);
    doc.line(12.0, true, "Decisions");
    let rows: Vec<Vec<String>> = r
        .lines
        .iter()
        .map(|l| {
            vec![
                l.request.clone(),
                l.decided_at.format("%Y-%m-%d").to_string(),
                l.decision.replace('_', " "),
                l.approved_kg.to_string(),
                l.net_kg.to_string(),
                l.verifier.clone(),
                l.serials.clone().unwrap_or_default(),
            ]
        })
        .collect();
    doc.table(
        &[
            (0.0, "Request"),
            (62.0, "Date"),
            (120.0, "Decision"),
            (190.0, "kg"),
            (222.0, "Net"),
            (256.0, "Verifier"),
            (330.0, "Serials"),
        ],
        &rows,
    );
    doc.finish()
}
