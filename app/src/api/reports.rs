//! Reports (endpoints `/api/reports/…`): the verifiers' issuance report, and each role's own
//! report (an EV owner's, a buyer's, the admin's platform report).

use crate::error::AppError;
use chrono::{DateTime, NaiveDate, Utc};
use leptos::prelude::*;
use leptos::server_fn::codec::{ByteStream, GetUrl, Streaming, StreamingText, TextStream};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::domain::user::Role;
#[cfg(feature = "ssr")]
use crate::server::services::reports;
#[cfg(feature = "ssr")]
use crate::server::session;

/// One decision in the issuance report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuanceLine {
    pub request: String,
    pub owner: String,
    pub vehicles: String,
    pub vintage: i32,
    pub region: String,
    pub verifier: String,
    /// approved, approved_reduced or rejected.
    pub decision: String,
    pub decided_at: DateTime<Utc>,
    pub requested_kg: i64,
    /// Gross kilograms issued (0 when rejected).
    pub approved_kg: i64,
    pub buffer_kg: i64,
    pub net_kg: i64,
    pub serials: Option<String>,
    pub notes: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuanceReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub lines: Vec<IssuanceLine>,
    pub requested_kg: i64,
    pub issued_kg: i64,
    pub buffer_kg: i64,
    pub net_kg: i64,
    pub approved: i64,
    pub reduced: i64,
    pub rejected: i64,
    /// Requests waiting for a decision now.
    pub pending_now: i64,
    /// Approved (in full or reduced) per 100 decisions, 1 decimal.
    pub approval_rate: Decimal,
    /// Gross kilograms issued per month ("Mar 2026", kg).
    pub by_month: Vec<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuanceView {
    pub report: IssuanceReport,
    /// Issued kilograms per month as an SVG bar chart.
    pub chart_svg: String,
    pub csv_url: String,
    pub pdf_url: String,
}

#[cfg(feature = "ssr")]
fn period(from: Option<String>, to: Option<String>) -> Result<(NaiveDate, NaiveDate), AppError> {
    use chrono::Datelike;
    let today = Utc::now().date_naive();
    period_or(
        from,
        to,
        NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today),
        today,
    )
}

/// `from` and `to` as typed (each empty: its default), checked.
#[cfg(feature = "ssr")]
fn period_or(
    from: Option<String>,
    to: Option<String>,
    default_from: NaiveDate,
    default_to: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), AppError> {
    let today = default_to;
    let mut errors = crate::error::FieldErrors::new();
    let mut date = |field: &str, raw: Option<String>, default: NaiveDate| match raw
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => Some(default),
        Some(s) => errors.check(
            field,
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| "Use a date like 2026-03-01.".to_owned()),
        ),
    };
    let from = date("from", from, default_from);
    let to = date("to", to, default_to);
    errors.finish()?;
    let (from, to) = (from.unwrap_or(today), to.unwrap_or(today));
    if from > to {
        return Err(AppError::invalid(
            "to",
            "The end date is before the start date.",
        ));
    }
    Ok((from, to))
}

#[cfg(feature = "ssr")]
fn query(from: NaiveDate, to: NaiveDate) -> String {
    format!("from={from}&to={to}")
}

/// The issuance report: every decision between `from` and `to` (UTC dates, inclusive; default
/// this year so far).
#[server(endpoint = "reports/issuance")]
pub async fn issuance_summary(
    from: Option<String>,
    to: Option<String>,
) -> Result<IssuanceView, AppError> {
    session::respond(async {
        let (state, _) = session::require(&[Role::Cva, Role::Admin]).await?;
        let (from, to) = period(from, to)?;
        let report = reports::issuance(&state.pool, from, to).await?;
        let points: Vec<(String, Decimal)> = report
            .by_month
            .iter()
            .map(|(m, kg)| (m.clone(), Decimal::from(*kg)))
            .collect();
        let chart_svg =
            crate::server::chart::bars("Credits issued per month", "kg (gross)", &points)
                .map_err(crate::server::internal)?;
        Ok(IssuanceView {
            report,
            chart_svg,
            csv_url: format!("/api/reports/issuance/csv?{}", query(from, to)),
            pdf_url: format!("/api/reports/issuance/pdf?{}", query(from, to)),
        })
    })
    .await
}

/// The issuance report as CSV (one row per decision).
#[server(endpoint = "reports/issuance/csv", input = GetUrl, output = StreamingText)]
pub async fn issuance_csv(
    from: Option<String>,
    to: Option<String>,
) -> Result<TextStream<AppError>, AppError> {
    session::respond(async {
        let (state, _) = session::require(&[Role::Cva, Role::Admin]).await?;
        let (from, to) = period(from, to)?;
        let report = reports::issuance(&state.pool, from, to).await?;
        let csv = reports::issuance_csv(&report)?;
        super::download(
            &format!("issuance-{from}-{to}.csv"),
            "text/csv; charset=utf-8",
        );
        Ok(TextStream::new(futures::stream::once(
            async move { Ok(csv) },
        )))
    })
    .await
}

/// The issuance report as a PDF.
#[server(endpoint = "reports/issuance/pdf", input = GetUrl, output = Streaming)]
pub async fn issuance_pdf(
    from: Option<String>,
    to: Option<String>,
) -> Result<ByteStream<AppError>, AppError> {
    session::respond(async {
        let (state, _) = session::require(&[Role::Cva, Role::Admin]).await?;
        let (from, to) = period(from, to)?;
        let report = reports::issuance(&state.pool, from, to).await?;
        let pdf = reports::issuance_pdf(&report);
        super::download(&format!("issuance-{from}-{to}.pdf"), "application/pdf");
        Ok(ByteStream::new(futures::stream::once(async move {
            Ok::<_, AppError>(pdf)
        })))
    })
    .await
}

/// A role's report (SPEC §9) as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportView {
    pub report: crate::domain::report::Report,
    /// The report's totals per column (None for a share).
    pub totals: Vec<Option<Decimal>>,
    /// One SVG chart per `report.charts`, drawn on the server.
    pub charts_svg: Vec<String>,
    pub csv_url: String,
    pub pdf_url: String,
}

/// The caller's report: an EV owner's CO₂, credits and revenue; a buyer's purchases and
/// retirements; for an admin, the platform's activity. `by` day, month (default) or year;
/// `from`/`to` as 2026-03-01 (default: the last 12 months).
#[cfg(feature = "ssr")]
async fn my_report(
    state: &crate::server::AppState,
    caller: &session::Caller,
    by: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<crate::domain::report::Report, AppError> {
    use crate::domain::period::Grain;
    use crate::server::services::figures::{self, Period};
    let grain =
        Grain::parse(by.as_deref().unwrap_or("")).map_err(|m| AppError::invalid("by", m))?;
    let today = Utc::now().date_naive();
    let default_from = grain.bucket_start(
        today
            .checked_sub_months(chrono::Months::new(11))
            .unwrap_or(today),
    );
    let (from, to) = period_or(from, to, default_from, today)?;
    let p = Period { grain, from, to };
    let currency = &state.config.payments.currency;
    match caller.role {
        Role::EvOwner => {
            figures::owner(&state.pool, caller.id, &caller.full_name, currency, p).await
        }
        Role::Buyer => figures::buyer(&state.pool, caller.id, &caller.full_name, currency, p).await,
        Role::Admin => figures::platform(&state.pool, currency, p).await,
        Role::Cva => Err(AppError::Forbidden),
    }
}

#[cfg(feature = "ssr")]
fn report_query(r: &crate::domain::report::Report) -> String {
    format!("by={}&from={}&to={}", r.grain.as_str(), r.from, r.to)
}

#[server(endpoint = "reports/mine")]
pub async fn my_report_view(
    by: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<ReportView, AppError> {
    session::respond(async {
        let (state, caller) = session::require(MY_REPORT_ROLES).await?;
        let report = my_report(&state, &caller, by, from, to).await?;
        let charts_svg = report
            .charts
            .iter()
            .map(|c| {
                let column = &report.columns[c.column];
                let unit = column.unit(&report.currency);
                let points: Vec<(String, Decimal)> = report
                    .rows
                    .iter()
                    .map(|r| (r.label.clone(), r.values[c.column]))
                    .collect();
                if column.running {
                    crate::server::chart::line(&c.title, &unit, &points)
                } else {
                    crate::server::chart::bars(&c.title, &unit, &points)
                }
                .map_err(crate::server::internal)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let q = report_query(&report);
        Ok(ReportView {
            totals: report.totals(),
            charts_svg,
            csv_url: format!("/api/reports/mine/csv?{q}"),
            pdf_url: format!("/api/reports/mine/pdf?{q}"),
            report,
        })
    })
    .await
}

/// The caller's report as CSV (same inputs as `reports/mine`).
#[server(endpoint = "reports/mine/csv", input = GetUrl, output = StreamingText)]
pub async fn my_report_csv(
    by: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<TextStream<AppError>, AppError> {
    session::respond(async {
        let (state, caller) = session::require(MY_REPORT_ROLES).await?;
        let report = my_report(&state, &caller, by, from, to).await?;
        super::download(
            &format!("report-{}-{}.csv", report.from, report.to),
            "text/csv; charset=utf-8",
        );
        let csv = report.csv();
        Ok(TextStream::new(futures::stream::once(
            async move { Ok(csv) },
        )))
    })
    .await
}

/// The caller's report as a PDF (same inputs as `reports/mine`).
#[server(endpoint = "reports/mine/pdf", input = GetUrl, output = Streaming)]
pub async fn my_report_pdf(
    by: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<ByteStream<AppError>, AppError> {
    session::respond(async {
        let (state, caller) = session::require(MY_REPORT_ROLES).await?;
        let report = my_report(&state, &caller, by, from, to).await?;
        super::download(
            &format!("report-{}-{}.pdf", report.from, report.to),
            "application/pdf",
        );
        let pdf = crate::server::services::figures::pdf(&report);
        Ok(ByteStream::new(futures::stream::once(async move {
            Ok::<_, AppError>(pdf)
        })))
    })
    .await
}

#[cfg(feature = "ssr")]
const MY_REPORT_ROLES: &[Role] = &[Role::EvOwner, Role::Buyer, Role::Admin];
