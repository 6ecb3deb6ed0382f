//! The admin's operations (endpoints `/api/admin/…`): the transactions monitor, stuck orders,
//! suspending listings, the KYC flag, and the platform's money with its reconciliation.

use crate::error::AppError;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::domain::user::Role;
#[cfg(feature = "ssr")]
use crate::server::services::{operations, payments};
#[cfg(feature = "ssr")]
use crate::server::session;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct OrderRow {
    pub number: String,
    pub listing: String,
    /// fixed or auction.
    pub kind: String,
    pub buyer: String,
    pub seller: String,
    pub quantity_kg: i64,
    /// What the buyer pays.
    pub total: Decimal,
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// A checkout's payment: number and status.
    pub payment: Option<String>,
    pub payment_status: Option<String>,
    pub dispute: Option<String>,
    pub dispute_status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrdersMonitor {
    pub currency: String,
    pub orders: Vec<OrderRow>,
    pub total: i64,
    pub page: i64,
    pub pages: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct ListingRow {
    pub number: String,
    pub kind: String,
    pub seller: String,
    pub region: String,
    pub vintage: i32,
    pub listed_kg: i64,
    pub sold_kg: i64,
    pub available_kg: i64,
    /// The price per tonne (an auction's current price).
    pub price_per_t: Decimal,
    pub status: String,
    pub suspended_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    /// Auctions: bids so far and, once closed, the outcome.
    pub bid_count: Option<i32>,
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListingsMonitor {
    pub currency: String,
    pub listings: Vec<ListingRow>,
    pub total: i64,
    pub page: i64,
    pub pages: i64,
}

/// The sum of one kind of account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Balance {
    /// money or credit.
    pub asset: String,
    /// "Users: available", "Platform: fee income", …
    pub holder: String,
    /// Money in currency units; credits in kilograms.
    pub amount: Decimal,
    pub accounts: i64,
}

/// One money transfer of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct MoneyMove {
    pub id: i64,
    pub kind: String,
    pub reference: Option<String>,
    pub memo: String,
    pub created_at: DateTime<Utc>,
    /// What moved (the sum of its credited legs).
    pub amount: Option<Decimal>,
    /// Whose accounts it touched.
    pub parties: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CashFlow {
    pub currency: String,
    /// Every check of the reconciliation passed (SPEC §6).
    pub reconciled: bool,
    pub problems: Vec<String>,
    /// Per asset: Σ of every entry (0 when sound) and how many entries there are.
    pub entry_sums: Vec<(String, Decimal, i64)>,
    pub balances: Vec<Balance>,
    pub fee_income: Decimal,
    pub pending_withdrawals: i64,
    pub pending_withdrawal_amount: Decimal,
    pub moves: Vec<MoneyMove>,
    pub page: i64,
    pub pages: i64,
    pub checked_at: DateTime<Utc>,
}

/// Orders, newest first, 50 a page: `status` (any, pending, completed, cancelled, refunded),
/// `q` (an order or listing number, or part of the buyer's or seller's name or e-mail).
#[server(endpoint = "admin/orders")]
pub async fn monitor_orders(
    status: Option<String>,
    q: Option<String>,
    page: Option<String>,
) -> Result<OrdersMonitor, AppError> {
    session::respond(async {
        let (state, _) = session::require(&[Role::Admin]).await?;
        let page = super::parse_page(page.as_deref())?;
        let mut m = operations::orders(
            &state.pool,
            status.as_deref().unwrap_or_default(),
            q.as_deref().unwrap_or_default(),
            page,
        )
        .await?;
        m.currency = state.config.payments.currency.clone();
        Ok(m)
    })
    .await
}

/// Settles an order stuck waiting for its payment: `confirm` (the gateway collected the money
/// but never said so: it completes) or `cancel` (released; money the gateway collects later
/// lands in the buyer's wallet). Answers the order's new status.
#[server(endpoint = "admin/orders/resolve")]
pub async fn resolve_order(order: String, action: String) -> Result<String, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::Admin]).await?;
        let confirm = match action.trim() {
            "confirm" => true,
            "cancel" => false,
            _ => return Err(AppError::invalid("action", "Choose confirm or cancel.")),
        };
        payments::resolve_stuck(&state.pool, caller.id, &order, confirm).await
    })
    .await
}

/// Listings and auctions, newest first, 50 a page: `kind` (any, fixed, auction), `status`
/// (any, active, suspended, sold, cancelled, expired), `q` (a number or part of the seller's
/// name or e-mail).
#[server(endpoint = "admin/listings")]
pub async fn monitor_listings(
    kind: Option<String>,
    status: Option<String>,
    q: Option<String>,
    page: Option<String>,
) -> Result<ListingsMonitor, AppError> {
    session::respond(async {
        let (state, _) = session::require(&[Role::Admin]).await?;
        let page = super::parse_page(page.as_deref())?;
        let mut m = operations::listings(
            &state.pool,
            kind.as_deref().unwrap_or_default(),
            status.as_deref().unwrap_or_default(),
            q.as_deref().unwrap_or_default(),
            page,
        )
        .await?;
        m.currency = state.config.payments.currency.clone();
        Ok(m)
    })
    .await
}

/// Takes an active fixed-price listing off the market, with a `reason` the seller reads.
#[server(endpoint = "admin/listings/suspend")]
pub async fn suspend_listing(listing: String, reason: String) -> Result<(), AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::Admin]).await?;
        operations::suspend_listing(&state.pool, caller.id, &listing, &reason).await
    })
    .await
}

/// Puts a suspended listing back on the market.
#[server(endpoint = "admin/listings/reinstate")]
pub async fn reinstate_listing(listing: String) -> Result<(), AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::Admin]).await?;
        operations::reinstate_listing(&state.pool, caller.id, &listing).await
    })
    .await
}

/// Marks a person's identity as checked (`verified` = "on"; withdrawals need it) or not ("off").
#[server(endpoint = "admin/users/kyc")]
pub async fn set_kyc(user_id: String, verified: String) -> Result<(), AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::Admin]).await?;
        let user = super::parse_id("user_id", &user_id)?;
        let verified = match verified.trim() {
            "on" => true,
            "off" => false,
            _ => return Err(AppError::invalid("verified", "Choose on or off.")),
        };
        operations::set_kyc(&state.pool, caller.id, user, verified).await
    })
    .await
}

/// The platform's money: the reconciliation, balances by kind of account, fee income, pending
/// withdrawals, and every money movement (newest first, 50 a page).
#[server(endpoint = "admin/cash-flow")]
pub async fn platform_money(page: Option<String>) -> Result<CashFlow, AppError> {
    session::respond(async {
        let (state, _) = session::require(&[Role::Admin]).await?;
        let page = super::parse_page(page.as_deref())?;
        let mut c = operations::cash_flow(&state.pool, page).await?;
        c.currency = state.config.payments.currency.clone();
        Ok(c)
    })
    .await
}
