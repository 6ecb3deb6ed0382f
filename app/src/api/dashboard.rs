//! The owner's CO₂ dashboard (endpoint `/api/dashboard`).

use crate::domain::period::Grain;
use crate::error::AppError;
use chrono::NaiveDate;
use leptos::prelude::*;
use leptos::server_fn::codec::{GetUrl, StreamingText, TextStream};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::domain::user::Role;
#[cfg(feature = "ssr")]
use crate::server::{chart, services::dashboard, services::methodology, session};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub start: NaiveDate,
    pub label: String,
    pub trips: i64,
    pub distance_km: Decimal,
    pub energy_kwh: Decimal,
    pub avoided_kg: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub grain: Grain,
    pub buckets: Vec<Bucket>,
    pub total_trips: i64,
    pub total_distance_km: Decimal,
    pub total_energy_kwh: Decimal,
    pub total_avoided_kg: Decimal,
    /// Credits the total corresponds to (1 credit = 1 t, whole kilograms), before the buffer.
    pub credit_equivalent: Decimal,
    /// The bar chart of CO₂ avoided per bucket, as an SVG document drawn by the server.
    pub chart_svg: String,
    pub methodology: String,
    /// Links to the CSV downloads of these buckets and of the trips behind them.
    pub export_url: String,
    pub trips_export_url: String,
}

/// The period and the optional vehicle of a dashboard request.
#[cfg(feature = "ssr")]
fn inputs(
    by: Option<String>,
    vehicle_id: Option<String>,
) -> Result<(Grain, Option<uuid::Uuid>), AppError> {
    let grain =
        Grain::parse(by.as_deref().unwrap_or("")).map_err(|m| AppError::invalid("by", m))?;
    let vehicle = match vehicle_id
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        None => None,
        Some(v) => Some(super::parse_id("vehicle_id", v)?),
    };
    Ok((grain, vehicle))
}

/// CO₂ avoided, distance and energy by `by` (`day`: last 30 days, `month`: last 12 months,
/// `year`), for one vehicle or all (`vehicle_id` empty).
#[server(endpoint = "dashboard")]
pub async fn owner_dashboard(
    by: Option<String>,
    vehicle_id: Option<String>,
) -> Result<Dashboard, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner]).await?;
        let (grain, vehicle) = inputs(by, vehicle_id)?;
        let today = chrono::Utc::now().date_naive();
        let (series, totals) =
            dashboard::series(&state.pool, caller.id, vehicle, grain, today).await?;
        let buckets: Vec<Bucket> = series
            .into_iter()
            .map(|(start, f)| Bucket {
                start,
                label: grain.bucket_label(start),
                trips: f.trips,
                distance_km: f.distance_km.round_dp(1),
                energy_kwh: f.energy_kwh.round_dp(1),
                avoided_kg: f.avoided_kg.round_dp(3),
            })
            .collect();
        let points: Vec<(String, Decimal)> = buckets
            .iter()
            .map(|b| (b.label.clone(), b.avoided_kg))
            .collect();
        let chart_svg = chart::bars(
            &format!("CO₂ avoided — {}", grain.label().to_lowercase()),
            "kg CO₂",
            &points,
        )
        .map_err(crate::server::internal)?;
        let active = methodology::active(&state.pool).await?;
        Ok(Dashboard {
            grain,
            buckets,
            total_trips: totals.trips,
            total_distance_km: totals.distance_km.round_dp(1),
            total_energy_kwh: totals.energy_kwh.round_dp(1),
            total_avoided_kg: totals.avoided_kg.round_dp(3),
            credit_equivalent: crate::domain::methodology::kg_to_credits(totals.avoided_kg),
            chart_svg,
            methodology: format!(
                "{} v{}",
                active.methodology.code.as_str(),
                active.methodology.version
            ),
            export_url: format!(
                "/api/dashboard/export?by={}&vehicle_id={}",
                grain.as_str(),
                vehicle.map(|v| v.to_string()).unwrap_or_default()
            ),
            trips_export_url: format!(
                "/api/trips/export?vehicle_id={}",
                vehicle.map(|v| v.to_string()).unwrap_or_default()
            ),
        })
    })
    .await
}

/// The dashboard's buckets as a CSV download (same inputs as `dashboard`).
#[server(endpoint = "dashboard/export", input = GetUrl, output = StreamingText)]
pub async fn export_dashboard(
    by: Option<String>,
    vehicle_id: Option<String>,
) -> Result<TextStream<AppError>, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner]).await?;
        let (grain, vehicle) = inputs(by, vehicle_id)?;
        let today = chrono::Utc::now().date_naive();
        let (series, _) = dashboard::series(&state.pool, caller.id, vehicle, grain, today).await?;
        let mut out = csv::Writer::from_writer(Vec::new());
        let _ = out.write_record([
            "period_start",
            "period",
            "trips",
            "distance_km",
            "energy_kwh",
            "avoided_kg",
        ]);
        for (start, f) in series {
            let _ = out.write_record(crate::domain::spreadsheet::safe_record([
                start.to_string(),
                grain.bucket_label(start),
                f.trips.to_string(),
                f.distance_km.normalize().to_string(),
                f.energy_kwh.normalize().to_string(),
                f.avoided_kg.normalize().to_string(),
            ]));
        }
        let text = String::from_utf8(out.into_inner().map_err(crate::server::internal)?)
            .map_err(crate::server::internal)?;
        super::download(
            &format!("co2-by-{}.csv", grain.as_str()),
            "text/csv; charset=utf-8",
        );
        Ok(TextStream::new(futures::stream::once(
            async move { Ok(text) },
        )))
    })
    .await
}
