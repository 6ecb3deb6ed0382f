//! Disputes (endpoints `/api/orders/dispute`, `/api/admin/disputes…`): a buyer disputes a
//! completed order within the dispute window; an admin refunds it (through reversing ledger
//! transfers) or rejects it, once.

use crate::error::AppError;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::domain::user::Role;
#[cfg(feature = "ssr")]
use crate::server::services::disputes;
#[cfg(feature = "ssr")]
use crate::server::session;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispute {
    pub number: String,
    pub order: String,
    pub buyer_name: String,
    pub seller_name: String,
    pub reason: String,
    /// open, refunded or rejected.
    pub status: String,
    pub decided_by: Option<String>,
    pub decision_note: String,
    /// What went back to the buyer (everything they paid) and the kilograms that went back to
    /// the seller (what the buyer had not retired).
    pub refunded_amount: Option<Decimal>,
    pub returned_kg: Option<i64>,
    pub order_total: Decimal,
    pub order_kg: i64,
    pub opened_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    /// While open: the order's kilograms a refund would return to the seller now (those the
    /// buyer has not retired or listed again).
    pub returnable_kg: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disputes {
    pub currency: String,
    pub disputes: Vec<Dispute>,
}

/// The buyer disputes one of their completed orders, within the dispute window; answers the
/// dispute's number. The seller and the admins are told.
#[server(endpoint = "orders/dispute")]
pub async fn open_dispute(order: String, reason: String) -> Result<String, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::Buyer]).await?;
        let number = disputes::open(&state.pool, caller.id, &order, &reason).await?;
        leptos_axum::redirect(&format!("/orders/{}", order.trim().to_uppercase()));
        Ok(number)
    })
    .await
}

/// Disputes for the admin: `status` open (default, oldest first), refunded, rejected or all.
#[server(endpoint = "admin/disputes")]
pub async fn dispute_queue(status: Option<String>) -> Result<Disputes, AppError> {
    session::respond(async {
        let (state, _) = session::require(&[Role::Admin]).await?;
        Ok(Disputes {
            currency: state.config.payments.currency.clone(),
            disputes: disputes::list(&state.pool, status.as_deref().unwrap_or("open")).await?,
        })
    })
    .await
}

/// Decides an open dispute once: `refund` (money back to the buyer, the order's unretired
/// credits back to the seller) or `reject` (with a `note`).
#[server(endpoint = "admin/disputes/decide")]
pub async fn decide_dispute(
    dispute: String,
    decision: String,
    note: Option<String>,
) -> Result<Dispute, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::Admin]).await?;
        let decision =
            disputes::Decision::parse(&decision).map_err(|m| AppError::invalid("decision", m))?;
        disputes::decide(
            &state.pool,
            caller.id,
            &state.config.payments.currency,
            &dispute,
            decision,
            note.as_deref().unwrap_or_default(),
        )
        .await
    })
    .await
}
