//! The admin's operations: the transactions monitor (orders, listings and auctions with
//! filters), suspending and reinstating listings, the KYC flag, and the platform's money — the
//! reconciliation, balances by kind, pending withdrawals and every money movement.

use crate::api::operations::{
    Balance, CashFlow, ListingRow, ListingsMonitor, MoneyMove, OrderRow, OrdersMonitor,
};
use crate::domain::notification::Kind;
use crate::error::AppError;
use crate::server::audit::{self, AuditEntry};
use crate::server::ledger;
use crate::server::notify;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

pub const PAGE: i64 = 50;

fn pages(total: i64) -> i64 {
    ((total + PAGE - 1) / PAGE).max(1)
}

/// Words to look for: a number (ORD-…, LST-…) or part of a person's name or e-mail.
fn pattern(q: &str) -> Option<String> {
    let q = q.trim();
    (!q.is_empty()).then(|| {
        format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    })
}

/// Orders, newest first: `status` any, pending, completed, cancelled or refunded; `q` an
/// order or listing number or part of the buyer's or seller's name or e-mail.
pub async fn orders(
    pool: &PgPool,
    status: &str,
    q: &str,
    page: i64,
) -> Result<OrdersMonitor, AppError> {
    let status = match status.trim() {
        "" | "any" => None,
        s @ ("pending" | "completed" | "cancelled" | "refunded") => Some(s.to_owned()),
        other => {
            return Err(AppError::invalid(
                "status",
                format!(
                    "“{other}” is not an order status (pending, completed, cancelled or refunded)."
                ),
            ))
        }
    };
    let pattern = pattern(q);
    const FROM: &str = "FROM orders o JOIN listings l ON l.id = o.listing_id
        JOIN users b ON b.id = o.buyer_id JOIN users s ON s.id = o.seller_id
        LEFT JOIN payments p ON p.id = o.payment_id
        LEFT JOIN disputes d ON d.order_id = o.id
        WHERE ($1::text IS NULL OR o.status = $1)
          AND ($2::text IS NULL OR o.number ILIKE $2 OR l.number ILIKE $2 OR b.full_name ILIKE $2
               OR b.email ILIKE $2 OR s.full_name ILIKE $2 OR s.email ILIKE $2)";
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) {FROM}"))
        .bind(&status)
        .bind(&pattern)
        .fetch_one(pool)
        .await?;
    let rows: Vec<OrderRow> = sqlx::query_as(&format!(
        "SELECT o.number, l.number AS listing, l.kind, b.full_name AS buyer, s.full_name AS seller,
                o.quantity_kg, o.buyer_pays AS total, o.status, o.created_at,
                p.number AS payment, p.status AS payment_status, d.number AS dispute, d.status AS dispute_status
         {FROM} ORDER BY o.created_at DESC, o.number DESC LIMIT $3 OFFSET $4"
    ))
    .bind(&status)
    .bind(&pattern)
    .bind(PAGE)
    .bind((page - 1) * PAGE)
    .fetch_all(pool)
    .await?;
    Ok(OrdersMonitor {
        currency: String::new(),
        orders: rows,
        total,
        page,
        pages: pages(total),
    })
}

/// Listings and auctions, newest first: `kind` any, fixed or auction; `status` any, active,
/// suspended, sold, cancelled or expired; `q` a number or part of the seller's name or e-mail.
pub async fn listings(
    pool: &PgPool,
    kind: &str,
    status: &str,
    q: &str,
    page: i64,
) -> Result<ListingsMonitor, AppError> {
    let kind = match kind.trim() {
        "" | "any" => None,
        k @ ("fixed" | "auction") => Some(k.to_owned()),
        other => {
            return Err(AppError::invalid(
                "kind",
                format!("“{other}” is not a listing type (fixed or auction)."),
            ))
        }
    };
    let status = match status.trim() {
        "" | "any" => None,
        s @ ("active" | "suspended" | "sold" | "cancelled" | "expired") => Some(s.to_owned()),
        other => {
            return Err(AppError::invalid(
                "status",
                format!("“{other}” is not a listing status (active, suspended, sold, cancelled or expired)."),
            ))
        }
    };
    let pattern = pattern(q);
    const FROM: &str = "FROM listings l JOIN users u ON u.id = l.seller_id
        LEFT JOIN auctions a ON a.listing_id = l.id
        WHERE ($1::text IS NULL OR l.kind = $1) AND ($2::text IS NULL OR l.status = $2)
          AND ($3::text IS NULL OR l.number ILIKE $3 OR u.full_name ILIKE $3 OR u.email ILIKE $3)";
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) {FROM}"))
        .bind(&kind)
        .bind(&status)
        .bind(&pattern)
        .fetch_one(pool)
        .await?;
    let rows: Vec<ListingRow> = sqlx::query_as(&format!(
        "SELECT l.number, l.kind, u.full_name AS seller, l.region, l.vintage, l.listed_kg, l.sold_kg,
                l.quantity_kg - l.sold_kg - l.pending_kg AS available_kg, l.price_per_t, l.status,
                l.suspended_reason, l.created_at, coalesce(l.expires_at, a.ends_at) AS ends_at,
                a.bid_count, a.outcome
         {FROM} ORDER BY l.created_at DESC, l.number DESC LIMIT $4 OFFSET $5"
    ))
    .bind(&kind)
    .bind(&status)
    .bind(&pattern)
    .bind(PAGE)
    .bind((page - 1) * PAGE)
    .fetch_all(pool)
    .await?;
    Ok(ListingsMonitor {
        currency: String::new(),
        listings: rows,
        total,
        page,
        pages: pages(total),
    })
}

/// Takes a fixed-price listing off the market (buyers can no longer find or buy it; checkouts
/// already under way may still complete). The seller is told why.
#[tracing::instrument(skip(pool, reason), err(level = "info"))]
pub async fn suspend_listing(
    pool: &PgPool,
    admin: Uuid,
    number: &str,
    reason: &str,
) -> Result<(), AppError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(AppError::invalid(
            "reason",
            "Say why, in up to 500 characters: the seller reads it.",
        ));
    }
    let number = number.trim().to_uppercase();
    let mut tx = pool.begin().await?;
    let row: Option<(String, String, Uuid)> =
        sqlx::query_as("SELECT kind, status, seller_id FROM listings WHERE number = $1 FOR UPDATE")
            .bind(&number)
            .fetch_optional(&mut *tx)
            .await?;
    let (kind, status, seller) = row.ok_or_else(|| AppError::not_found("The listing"))?;
    if kind == "auction" {
        return Err(AppError::conflict(format!(
            "{number} is an auction: bidders hold money on it, so it runs to its end and cannot be suspended."
        )));
    }
    if status != "active" {
        return Err(AppError::conflict(format!(
            "Only an active listing can be suspended; {number} is {status}."
        )));
    }
    sqlx::query(
        "UPDATE listings SET status = 'suspended', suspended_reason = $2, updated_at = now() WHERE number = $1",
    )
    .bind(&number)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    notify::send(
        &mut tx,
        seller,
        Kind::ListingSuspended,
        &format!("{number} suspended"),
        &format!("An administrator took it off the market: {reason}"),
        &format!("/sell#{number}"),
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(admin),
            action: "listing.suspend",
            entity: "listing",
            entity_id: number,
            before: Some(json!({ "status": "active" })),
            after: Some(json!({ "status": "suspended", "reason": reason })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Puts a suspended listing back on the market (one past its end date then expires as usual).
#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn reinstate_listing(pool: &PgPool, admin: Uuid, number: &str) -> Result<(), AppError> {
    let number = number.trim().to_uppercase();
    let mut tx = pool.begin().await?;
    let row: Option<(String, Uuid, Option<String>)> = sqlx::query_as(
        "SELECT status, seller_id, suspended_reason FROM listings WHERE number = $1 FOR UPDATE",
    )
    .bind(&number)
    .fetch_optional(&mut *tx)
    .await?;
    let (status, seller, reason) = row.ok_or_else(|| AppError::not_found("The listing"))?;
    if status != "suspended" {
        return Err(AppError::conflict(format!(
            "Only a suspended listing can be reinstated; {number} is {status}."
        )));
    }
    sqlx::query(
        "UPDATE listings SET status = 'active', suspended_reason = NULL, updated_at = now() WHERE number = $1",
    )
    .bind(&number)
    .execute(&mut *tx)
    .await?;
    notify::send(
        &mut tx,
        seller,
        Kind::ListingSuspended,
        &format!("{number} is back on the market"),
        "An administrator reinstated it; buyers can find and buy it again.",
        &format!("/sell#{number}"),
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(admin),
            action: "listing.reinstate",
            entity: "listing",
            entity_id: number,
            before: Some(json!({ "status": "suspended", "reason": reason })),
            after: Some(json!({ "status": "active" })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Marks a person's identity as checked (withdrawals need it) or takes the mark back.
#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn set_kyc(
    pool: &PgPool,
    admin: Uuid,
    user: Uuid,
    verified: bool,
) -> Result<(), AppError> {
    let mut tx = pool.begin().await?;
    let before: Option<Option<DateTime<Utc>>> =
        sqlx::query_scalar("SELECT kyc_verified_at FROM users WHERE id = $1 FOR NO KEY UPDATE")
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?;
    let before = before.ok_or_else(|| AppError::not_found("The user"))?;
    sqlx::query(
        "UPDATE users SET kyc_verified_at = CASE WHEN $2 THEN coalesce(kyc_verified_at, now()) END,
                kyc_verified_by = CASE WHEN $2 THEN coalesce(kyc_verified_by, $3) END, updated_at = now()
         WHERE id = $1",
    )
    .bind(user)
    .bind(verified)
    .bind(admin)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(admin),
            action: if verified {
                "user.kyc_verify"
            } else {
                "user.kyc_revoke"
            },
            entity: "user",
            entity_id: user.to_string(),
            before: Some(json!({ "kyc_verified": before.is_some() })),
            after: Some(json!({ "kyc_verified": verified })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The platform's money: is the ledger sound, where the money is, what waits to be paid out,
/// and every movement (newest first, 50 a page).
pub async fn cash_flow(pool: &PgPool, page: i64) -> Result<CashFlow, AppError> {
    let mut conn = pool.acquire().await?;
    let check = ledger::reconcile(&mut conn).await?;
    let balances: Vec<(String, String, Decimal, i64)> = sqlx::query_as(
        "SELECT asset, CASE WHEN owner_id IS NULL THEN 'Platform: ' ELSE 'Users: ' END ||
                CASE kind WHEN 'platform_fees' THEN 'fee income' WHEN 'held' THEN 'reserved'
                          ELSE replace(kind, '_', ' ') END,
                coalesce(sum(balance), 0), count(*)
         FROM ledger_accounts GROUP BY 1, 2 ORDER BY 1 DESC, 2",
    )
    .fetch_all(&mut *conn)
    .await?;
    let (pending_withdrawals, pending_amount): (i64, Decimal) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(amount), 0) FROM withdrawals WHERE status = 'pending'",
    )
    .fetch_one(&mut *conn)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT transfer_id) FROM ledger_entries WHERE asset = 'money'",
    )
    .fetch_one(&mut *conn)
    .await?;
    let moves: Vec<MoneyMove> = sqlx::query_as(
        "SELECT t.id, t.kind, t.reference, t.memo, t.created_at,
                sum(e.amount) FILTER (WHERE e.amount > 0) AS amount,
                string_agg(DISTINCT coalesce(u.full_name, 'platform ' || a.kind), ', ') AS parties
         FROM ledger_transfers t
         JOIN ledger_entries e ON e.transfer_id = t.id AND e.asset = 'money'
         JOIN ledger_accounts a ON a.id = e.account_id
         LEFT JOIN users u ON u.id = a.owner_id
         WHERE t.id IN (SELECT DISTINCT transfer_id FROM ledger_entries WHERE asset = 'money'
                        ORDER BY transfer_id DESC LIMIT $1 OFFSET $2)
         GROUP BY t.id ORDER BY t.id DESC",
    )
    .bind(PAGE)
    .bind((page - 1) * PAGE)
    .fetch_all(&mut *conn)
    .await?;
    let fee_income = balances
        .iter()
        .filter(|b| b.0 == "money" && b.1 == "Platform: fee income")
        .map(|b| b.2)
        .sum();
    Ok(CashFlow {
        currency: String::new(),
        reconciled: check.ok(),
        problems: check.problems,
        entry_sums: check.sums,
        balances: balances
            .into_iter()
            .map(|(asset, holder, amount, accounts)| Balance {
                asset,
                holder,
                amount,
                accounts,
            })
            .collect(),
        fee_income,
        pending_withdrawals,
        pending_withdrawal_amount: pending_amount,
        moves,
        page,
        pages: pages(total),
        checked_at: Utc::now(),
    })
}
