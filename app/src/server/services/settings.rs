//! Platform settings the admin changes: the fee on each side of a sale, the withdrawal
//! limits and fee, the auctions' soft-close window and default length, and the dispute window.
//! One row; every change is audited with its before and after.

use crate::domain::market::{parse_money, parse_percent};
use crate::domain::trade::Fees;
use crate::error::{AppError, FieldErrors};
use crate::server::audit::{self, AuditEntry};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Settings {
    pub buyer_fee_rate: Decimal,
    pub seller_fee_rate: Decimal,
    /// Per withdrawal.
    pub withdrawal_min: Decimal,
    pub withdrawal_max: Decimal,
    /// All of one user's withdrawals requested in the last 24 hours, paid or pending.
    pub withdrawal_daily_max: Decimal,
    /// Charged on each paid withdrawal.
    pub withdrawal_fee: Decimal,
    /// A bid this close to an auction's end moves the end this much later (0: no soft close).
    pub soft_close_secs: i32,
    /// A buyer may dispute a completed order for this many days.
    pub dispute_window_days: i32,
    /// The length a new auction's form offers.
    pub auction_default_hours: i32,
    pub updated_at: DateTime<Utc>,
}

impl Settings {
    pub fn fees(&self) -> Fees {
        Fees::new(self.buyer_fee_rate, self.seller_fee_rate)
    }
}

const SELECT: &str = "SELECT buyer_fee_rate, seller_fee_rate, withdrawal_min, withdrawal_max,
        withdrawal_daily_max, withdrawal_fee, soft_close_secs, dispute_window_days, auction_default_hours,
        updated_at FROM platform_settings";

pub async fn get(conn: &mut PgConnection) -> Result<Settings, sqlx::Error> {
    sqlx::query_as(SELECT).fetch_one(conn).await
}

pub async fn current(pool: &PgPool) -> Result<Settings, AppError> {
    let mut conn = pool.acquire().await?;
    Ok(get(&mut conn).await?)
}

/// The form's fields, as typed.
#[derive(Debug, Clone, Default)]
pub struct SettingsInput<'a> {
    pub buyer_fee_percent: &'a str,
    pub seller_fee_percent: &'a str,
    pub withdrawal_min: &'a str,
    pub withdrawal_max: &'a str,
    pub withdrawal_daily_max: &'a str,
    pub withdrawal_fee: &'a str,
    /// Seconds, 0–3600; empty keeps the current window.
    pub soft_close_secs: &'a str,
    /// Days, 1–365; empty keeps the current window.
    pub dispute_window_days: &'a str,
    /// Hours, 1–720; empty keeps the current default.
    pub auction_default_hours: &'a str,
}

/// An optional whole number within `range`; empty is `None`.
fn optional_number(
    raw: &str,
    range: std::ops::RangeInclusive<i32>,
    message: &str,
) -> Result<Option<i32>, String> {
    match raw.trim() {
        "" => Ok(None),
        raw => raw
            .parse::<i32>()
            .ok()
            .filter(|n| range.contains(n))
            .map(Some)
            .ok_or_else(|| message.to_owned()),
    }
}

/// Changes the settings; answers the new ones. Sales and withdrawals started after the commit
/// use them.
#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn update(
    pool: &PgPool,
    currency: &str,
    admin: Uuid,
    input: SettingsInput<'_>,
) -> Result<Settings, AppError> {
    let mut errors = FieldErrors::new();
    let buyer = errors.check("buyer_fee_percent", parse_percent(input.buyer_fee_percent));
    let seller = errors.check(
        "seller_fee_percent",
        parse_percent(input.seller_fee_percent),
    );
    let min = errors.check(
        "withdrawal_min",
        parse_money(input.withdrawal_min, currency),
    );
    let max = errors.check(
        "withdrawal_max",
        parse_money(input.withdrawal_max, currency),
    );
    let daily = errors.check(
        "withdrawal_daily_max",
        parse_money(input.withdrawal_daily_max, currency),
    );
    let fee = errors.check(
        "withdrawal_fee",
        if input.withdrawal_fee.trim().parse::<Decimal>() == Ok(Decimal::ZERO) {
            Ok(Decimal::new(0, 2))
        } else {
            parse_money(input.withdrawal_fee, currency)
        },
    );
    let soft_close = errors.check(
        "soft_close_secs",
        optional_number(
            input.soft_close_secs,
            0..=3600,
            "Enter 0 to 3600 seconds (0: auctions end on time).",
        ),
    );
    let dispute_days = errors.check(
        "dispute_window_days",
        optional_number(input.dispute_window_days, 1..=365, "Enter 1 to 365 days."),
    );
    let auction_hours = errors.check(
        "auction_default_hours",
        optional_number(
            input.auction_default_hours,
            1..=720,
            "Enter 1 to 720 hours (30 days).",
        ),
    );
    if let (Some(min), Some(max)) = (min, max) {
        if max < min {
            errors.add(
                "withdrawal_max",
                "The largest withdrawal is below the smallest.",
            );
        }
    }
    if let (Some(max), Some(daily)) = (max, daily) {
        if daily < max {
            errors.add(
                "withdrawal_daily_max",
                "The daily limit is below the largest single withdrawal.",
            );
        }
    }
    if let (Some(min), Some(fee)) = (min, fee) {
        if fee >= min {
            errors.add(
                "withdrawal_fee",
                "The fee must be less than the smallest withdrawal.",
            );
        }
    }
    errors.finish()?;
    let (buyer, seller, min, max, daily, fee) = (
        buyer.unwrap_or_default(),
        seller.unwrap_or_default(),
        min.unwrap_or_default(),
        max.unwrap_or_default(),
        daily.unwrap_or_default(),
        fee.unwrap_or_default(),
    );

    let mut tx = pool.begin().await?;
    let before: Settings = sqlx::query_as(&format!("{SELECT} FOR UPDATE"))
        .fetch_one(&mut *tx)
        .await?;
    let after: Settings = sqlx::query_as(
        "UPDATE platform_settings SET buyer_fee_rate = $1, seller_fee_rate = $2, withdrawal_min = $3,
                withdrawal_max = $4, withdrawal_daily_max = $5, withdrawal_fee = $6,
                soft_close_secs = COALESCE($8, soft_close_secs),
                dispute_window_days = COALESCE($9, dispute_window_days),
                auction_default_hours = COALESCE($10, auction_default_hours), updated_at = now(), updated_by = $7
         RETURNING buyer_fee_rate, seller_fee_rate, withdrawal_min, withdrawal_max,
                   withdrawal_daily_max, withdrawal_fee, soft_close_secs, dispute_window_days,
                   auction_default_hours, updated_at",
    )
    .bind(buyer)
    .bind(seller)
    .bind(min)
    .bind(max)
    .bind(daily)
    .bind(fee)
    .bind(admin)
    .bind(soft_close.flatten())
    .bind(dispute_days.flatten())
    .bind(auction_hours.flatten())
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(admin),
            action: "settings.update",
            entity: "platform_settings",
            entity_id: "platform".into(),
            before: Some(serde_json::to_value(&before).unwrap_or_default()),
            after: Some(serde_json::to_value(&after).unwrap_or_default()),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}
