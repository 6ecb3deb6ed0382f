//! The carbon wallet and retirements (endpoints `/api/wallet/…`, `/api/certificates/…`).

use crate::error::AppError;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::domain::user::Role;
#[cfg(feature = "ssr")]
use crate::server::services::wallet;
#[cfg(feature = "ssr")]
use crate::server::session;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Balances {
    pub available_kg: i64,
    pub reserved_kg: i64,
    pub retired_kg: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Movement {
    pub at: DateTime<Utc>,
    /// issuance, retirement, hold, void, sale, …
    pub kind: String,
    /// available, held or retired: which of the owner's balances moved.
    pub account: String,
    /// Positive in, negative out.
    pub kg: i64,
    pub balance_after: i64,
    pub reference: Option<String>,
    /// The serial ranges that moved, as labels.
    pub serials: Vec<String>,
}

/// Serials held now, in as few ranges as possible, per balance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holding {
    pub account: String,
    pub serials: String,
    pub kg: i64,
    pub vintage: i32,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateBlock {
    pub serials: String,
    pub kg: i64,
    pub vintage: i32,
    pub region: String,
    pub methodology: String,
    pub verifier: String,
    pub request: String,
    /// "retired" while the serials sit retired under this certificate (always, by the schema).
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    pub number: String,
    /// The holder who retired the credits, when they chose to be named publicly.
    pub owner_name: Option<String>,
    pub beneficiary: String,
    pub reason: String,
    pub quantity_kg: i64,
    /// Tonnes, 3 decimals.
    pub credits: Decimal,
    pub retired_at: DateTime<Utc>,
    pub blocks: Vec<CertificateBlock>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateLine {
    pub number: String,
    pub beneficiary: String,
    pub quantity_kg: i64,
    pub retired_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wallet {
    pub balances: Balances,
    pub holdings: Vec<Holding>,
    /// The latest 100 movements, newest first.
    pub movements: Vec<Movement>,
    pub certificates: Vec<CertificateLine>,
    /// A fresh key for the retirement form, so a double submit retires once.
    pub retire_key: String,
}

/// The caller's carbon wallet: balances, serials held, movements, certificates.
#[server(endpoint = "wallet")]
pub async fn carbon_wallet() -> Result<Wallet, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner, Role::Buyer]).await?;
        Ok(Wallet {
            balances: wallet::balances(&state.pool, caller.id).await?,
            holdings: wallet::holdings(&state.pool, caller.id).await?,
            movements: wallet::movements(&state.pool, caller.id, 100).await?,
            certificates: wallet::retirements(&state.pool, caller.id)
                .await?
                .into_iter()
                .map(
                    |(number, beneficiary, quantity_kg, retired_at)| CertificateLine {
                        number,
                        beneficiary,
                        quantity_kg,
                        retired_at,
                    },
                )
                .collect(),
            retire_key: uuid::Uuid::new_v4().to_string(),
        })
    })
    .await
}

/// Retires credits for a beneficiary; answers the certificate and sends a browser to its
/// public page.
#[server(endpoint = "wallet/retire")]
pub async fn retire_credits(
    quantity_kg: String,
    beneficiary: String,
    reason: String,
    idempotency_key: String,
    show_holder: Option<String>,
) -> Result<Certificate, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner, Role::Buyer]).await?;
        let request = wallet::RetireRequest {
            quantity_kg: &quantity_kg,
            beneficiary: &beneficiary,
            reason: &reason,
            idempotency_key: &idempotency_key,
            show_holder: show_holder.is_some_and(|v| v == "on" || v == "true"),
        };
        // Read with the retirement, in its transaction: an answer is a retirement that
        // committed, an error one that did not.
        let certificate = wallet::retire(&state.pool, caller.id, request).await?;
        leptos_axum::redirect(&format!("/verify/{}", certificate.number));
        Ok(certificate)
    })
    .await
}

/// A certificate's public facts and the live status of its serials. No sign-in needed.
#[server(endpoint = "certificates/get")]
pub async fn get_certificate(number: String) -> Result<Certificate, AppError> {
    session::respond(async {
        let state = session::state();
        wallet::certificate(&state.pool, &number).await
    })
    .await
}
