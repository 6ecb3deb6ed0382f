//! Platform settings for the admin (endpoints `/api/admin/settings…`): fees and withdrawal
//! limits. Every change is audited.

use crate::error::AppError;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::domain::user::Role;
#[cfg(feature = "ssr")]
use crate::server::services::settings;
#[cfg(feature = "ssr")]
use crate::server::session;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeeSettings {
    pub currency: String,
    /// Fractions: 0.025 = 2.5 %.
    pub buyer_fee_rate: Decimal,
    pub seller_fee_rate: Decimal,
    pub withdrawal_min: Decimal,
    pub withdrawal_max: Decimal,
    pub withdrawal_daily_max: Decimal,
    pub withdrawal_fee: Decimal,
    /// Auctions listed from now on: a bid this close to the end moves it this much later.
    pub soft_close_secs: i32,
    /// A buyer may dispute a completed order for this many days.
    pub dispute_window_days: i32,
    /// The length a new auction's form offers, in hours.
    pub auction_default_hours: i32,
    pub updated_at: DateTime<Utc>,
}

#[cfg(feature = "ssr")]
fn wire(currency: &str, s: settings::Settings) -> FeeSettings {
    FeeSettings {
        currency: currency.to_owned(),
        buyer_fee_rate: s.buyer_fee_rate.normalize(),
        seller_fee_rate: s.seller_fee_rate.normalize(),
        withdrawal_min: s.withdrawal_min,
        withdrawal_max: s.withdrawal_max,
        withdrawal_daily_max: s.withdrawal_daily_max,
        withdrawal_fee: s.withdrawal_fee,
        soft_close_secs: s.soft_close_secs,
        dispute_window_days: s.dispute_window_days,
        auction_default_hours: s.auction_default_hours,
        updated_at: s.updated_at,
    }
}

/// The current fee rates and withdrawal limits.
#[server(endpoint = "admin/settings")]
pub async fn get_fee_settings() -> Result<FeeSettings, AppError> {
    session::respond(async {
        let (state, _) = session::require(&[Role::Admin]).await?;
        Ok(wire(
            &state.config.payments.currency,
            settings::current(&state.pool).await?,
        ))
    })
    .await
}

/// Changes the fee rates (in percent, 0–20), the withdrawal limits and fee, and (when given)
/// the auctions' soft-close window in seconds, the dispute window in days and a new auction's
/// default length in hours.
#[server(endpoint = "admin/settings/update")]
#[allow(clippy::too_many_arguments)]
pub async fn update_fee_settings(
    buyer_fee_percent: String,
    seller_fee_percent: String,
    withdrawal_min: String,
    withdrawal_max: String,
    withdrawal_daily_max: String,
    withdrawal_fee: String,
    soft_close_secs: Option<String>,
    dispute_window_days: Option<String>,
    auction_default_hours: Option<String>,
) -> Result<FeeSettings, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::Admin]).await?;
        let s = settings::update(
            &state.pool,
            &state.config.payments.currency,
            caller.id,
            settings::SettingsInput {
                buyer_fee_percent: &buyer_fee_percent,
                seller_fee_percent: &seller_fee_percent,
                withdrawal_min: &withdrawal_min,
                withdrawal_max: &withdrawal_max,
                withdrawal_daily_max: &withdrawal_daily_max,
                withdrawal_fee: &withdrawal_fee,
                soft_close_secs: soft_close_secs.as_deref().unwrap_or_default(),
                dispute_window_days: dispute_window_days.as_deref().unwrap_or_default(),
                auction_default_hours: auction_default_hours.as_deref().unwrap_or_default(),
            },
        )
        .await?;
        Ok(wire(&state.config.payments.currency, s))
    })
    .await
}
