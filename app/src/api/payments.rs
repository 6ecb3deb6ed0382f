//! The money wallet (endpoints `/api/money/…`, `/api/payments/…`, `/api/admin/withdrawals…`):
//! balance and movements, top-up through the payment gateway, withdrawals and the admin's
//! decision on them.

use crate::error::AppError;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::domain::user::Role;
#[cfg(feature = "ssr")]
use crate::server::services::{payments, withdrawals};
#[cfg(feature = "ssr")]
use crate::server::session;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoneyMovement {
    pub at: DateTime<Utc>,
    /// top_up, sale, hold, void, withdrawal, …
    pub kind: String,
    /// available or held.
    pub account: String,
    /// Positive in, negative out.
    pub amount: Decimal,
    pub balance_after: Decimal,
    pub reference: Option<String>,
    pub memo: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentLine {
    pub number: String,
    pub purpose: String,
    pub amount: Decimal,
    /// pending, succeeded, failed, expired.
    pub status: String,
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// For a pending payment: the gateway page to finish it on.
    pub pay_url: Option<String>,
    /// A checkout's order.
    pub order: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WithdrawalLine {
    pub number: String,
    pub user_name: String,
    pub user_email: String,
    pub amount: Decimal,
    pub fee: Decimal,
    pub bank_name: String,
    pub account_holder: String,
    /// For its owner only the last four digits (••••6789); in full for the admin who pays it.
    pub account_number: String,
    /// pending, paid, rejected.
    pub status: String,
    pub decision_note: String,
    pub decided_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WithdrawalRules {
    pub min: Decimal,
    pub max: Decimal,
    pub daily_max: Decimal,
    pub fee: Decimal,
    /// Requested in the last 24 hours (pending or paid).
    pub used_today: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoneyWallet {
    pub currency: String,
    pub available: Decimal,
    /// Reserved for checkouts, bids and pending withdrawals.
    pub held: Decimal,
    /// The latest 100, newest first.
    pub movements: Vec<MoneyMovement>,
    pub payments: Vec<PaymentLine>,
    pub withdrawals: Vec<WithdrawalLine>,
    pub rules: WithdrawalRules,
    /// A fresh key for the withdrawal form, so a double submit makes one withdrawal.
    pub withdrawal_key: String,
    /// An admin checked the person's identity: withdrawals need it.
    pub kyc_verified: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopUp {
    pub payment: String,
    /// The gateway's page where the payer pays.
    pub pay_url: String,
}

/// The caller's money: balance, movements, payments, withdrawals and their limits.
#[server(endpoint = "money/wallet")]
pub async fn get_money_wallet() -> Result<MoneyWallet, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner, Role::Buyer]).await?;
        payments::wallet(&state, caller.id).await
    })
    .await
}

/// Starts a top-up of `amount` through the payment gateway; sends a browser to its page.
#[server(endpoint = "money/top-up")]
pub async fn start_top_up(amount: String) -> Result<TopUp, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner, Role::Buyer]).await?;
        let created = payments::top_up(&state, caller.id, &amount).await?;
        leptos_axum::redirect(&created.redirect);
        Ok(TopUp {
            payment: created.number,
            pay_url: created.redirect,
        })
    })
    .await
}

/// One of the caller's payments.
#[server(endpoint = "payments/get")]
pub async fn get_payment(number: String) -> Result<PaymentLine, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner, Role::Buyer]).await?;
        payments::get(&state.pool, caller.id, &number).await
    })
    .await
}

/// Asks for a payout of `amount` to a bank account; the amount and the fee are held until an
/// admin decides. The same `idempotency_key` answers the same withdrawal.
#[server(endpoint = "money/withdraw")]
pub async fn request_withdrawal(
    amount: String,
    bank_name: String,
    account_holder: String,
    account_number: String,
    idempotency_key: String,
) -> Result<String, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner, Role::Buyer]).await?;
        let number = withdrawals::request(
            &state,
            caller.id,
            withdrawals::NewWithdrawal {
                amount: &amount,
                bank_name: &bank_name,
                account_holder: &account_holder,
                account_number: &account_number,
                idempotency_key: &idempotency_key,
            },
        )
        .await?;
        leptos_axum::redirect("/money");
        Ok(number)
    })
    .await
}

/// Withdrawals as the admin sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payouts {
    pub currency: String,
    pub withdrawals: Vec<WithdrawalLine>,
}

/// Withdrawals for the admin: `status` pending (default, oldest first), paid, rejected or all.
#[server(endpoint = "admin/withdrawals")]
pub async fn withdrawal_queue(status: Option<String>) -> Result<Payouts, AppError> {
    session::respond(async {
        let (state, _) = session::require(&[Role::Admin]).await?;
        Ok(Payouts {
            currency: state.config.payments.currency.clone(),
            withdrawals: withdrawals::queue(&state.pool, status.as_deref().unwrap_or("pending"))
                .await?,
        })
    })
    .await
}

/// Pays (`approve`) or rejects (`reject`, with a note) a pending withdrawal, once.
#[server(endpoint = "admin/withdrawals/decide")]
pub async fn decide_withdrawal(
    withdrawal: String,
    decision: String,
    note: Option<String>,
) -> Result<(), AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::Admin]).await?;
        withdrawals::decide(
            &state.pool,
            caller.id,
            &withdrawal,
            &decision,
            note.as_deref().unwrap_or_default(),
        )
        .await?;
        leptos_axum::redirect("/admin/withdrawals");
        Ok(())
    })
    .await
}
