//! Disputes: a buyer disputes a completed order within the configured window; an admin decides
//! it once — a refund, or a rejection with a note. A refund reverses the sale through the
//! ledger, never by editing rows: the buyer gets back everything they paid (from the seller's
//! wallet and the fee income), and the order's own serials that the buyer still holds go back
//! to the seller; retired ones stay retired. Both parties are told.

use crate::api::disputes::Dispute;
use crate::domain::market::{format_money, tonnes};
use crate::domain::notification::Kind;
use crate::domain::serial::SerialRange;
use crate::error::{AppError, FieldErrors};
use crate::server::audit::{self, AuditEntry};
use crate::server::ledger::{self, AccountKind, Asset, LedgerError, Leg, Transfer};
use crate::server::notify;
use crate::server::services::settings;
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct OrderFacts {
    id: Uuid,
    number: String,
    buyer_id: Uuid,
    seller_id: Uuid,
    status: String,
    completed_at: Option<DateTime<Utc>>,
    transfer_id: Option<i64>,
    quantity_kg: i64,
    buyer_pays: Decimal,
    seller_receives: Decimal,
    buyer_fee: Decimal,
    seller_fee: Decimal,
}

/// Until when the buyer of an order completed at `completed_at` may dispute it.
pub fn deadline(completed_at: DateTime<Utc>, window_days: i32) -> DateTime<Utc> {
    completed_at + Duration::days(window_days.into())
}

/// The buyer disputes one of their completed orders; answers the dispute's number.
#[tracing::instrument(skip(pool, reason), err(level = "info"))]
pub async fn open(
    pool: &PgPool,
    buyer: Uuid,
    order: &str,
    reason: &str,
) -> Result<String, AppError> {
    let reason = reason.trim();
    if reason.chars().count() < 10 || reason.chars().count() > 2000 {
        return Err(AppError::invalid(
            "reason",
            "Say what went wrong in 10 to 2,000 characters.",
        ));
    }
    let mut tx = pool.begin().await?;
    let o: Option<OrderFacts> = sqlx::query_as(&format!(
        "{ORDER} WHERE o.number = $1 AND o.buyer_id = $2 FOR UPDATE OF o"
    ))
    .bind(order.trim().to_uppercase())
    .bind(buyer)
    .fetch_optional(&mut *tx)
    .await?;
    // Someone else's order is not found, as everywhere.
    let o = o.ok_or_else(|| AppError::not_found("The order"))?;
    let existing: Option<(String, String)> =
        sqlx::query_as("SELECT number, status FROM disputes WHERE order_id = $1")
            .bind(o.id)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((number, status)) = existing {
        return Err(AppError::conflict(format!(
            "Order {} already has dispute {number} ({status}).",
            o.number
        )));
    }
    let Some(completed_at) = o.completed_at.filter(|_| o.status == "completed") else {
        return Err(AppError::conflict(format!(
            "Only a completed order can be disputed; {} is {}.",
            o.number, o.status
        )));
    };
    let window = settings::get(&mut tx).await?.dispute_window_days;
    let until = deadline(completed_at, window);
    if Utc::now() > until {
        return Err(AppError::conflict(format!(
            "Orders can be disputed for {window} days after they complete; {} could be until {}.",
            o.number,
            until.format("%Y-%m-%d %H:%M UTC")
        )));
    }
    let number: String = sqlx::query_scalar(
        "INSERT INTO disputes (id, number, order_id, opened_by, reason)
         VALUES ($1, 'DSP-' || lpad(nextval('dispute_number_seq')::text, 6, '0'), $2, $3, $4)
         RETURNING number",
    )
    .bind(Uuid::new_v4())
    .bind(o.id)
    .bind(buyer)
    .bind(reason)
    .fetch_one(&mut *tx)
    .await?;
    let link = format!("/orders/{}", o.number);
    let title = format!("Dispute {number} opened on {}", o.number);
    notify::send(
        &mut tx,
        o.seller_id,
        Kind::DisputeOpened,
        &title,
        &format!("The buyer says: “{reason}” An administrator will decide it."),
        &link,
    )
    .await?;
    notify::admins(
        &mut tx,
        Kind::DisputeOpened,
        &title,
        &format!("“{reason}”"),
        "/admin/disputes",
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(buyer),
            action: "dispute.open",
            entity: "dispute",
            entity_id: number.clone(),
            before: None,
            after: Some(json!({ "order": o.number, "reason": reason })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(number)
}

const ORDER: &str =
    "SELECT o.id, o.number, o.buyer_id, o.seller_id, o.status, o.completed_at, o.transfer_id,
        o.quantity_kg, o.buyer_pays, o.seller_receives, o.buyer_fee, o.seller_fee
    FROM orders o";

/// What an admin decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Refund,
    Reject,
}

impl Decision {
    pub fn parse(raw: &str) -> Result<Decision, String> {
        match raw.trim() {
            "refund" => Ok(Decision::Refund),
            "reject" => Ok(Decision::Reject),
            _ => Err("Choose refund or reject.".into()),
        }
    }
}

/// Decides an open dispute, once. A refund moves the money and the credits back in this
/// transaction; a rejection needs a note.
#[tracing::instrument(skip(pool, note), err(level = "info"))]
pub async fn decide(
    pool: &PgPool,
    admin: Uuid,
    currency: &str,
    number: &str,
    decision: Decision,
    note: &str,
) -> Result<Dispute, AppError> {
    let note = note.trim();
    let mut errors = FieldErrors::new();
    if decision == Decision::Reject && note.is_empty() {
        errors.add(
            "note",
            "Say why the dispute is rejected; both parties read it.",
        );
    }
    if note.chars().count() > 2000 {
        errors.add("note", "Keep the note under 2,000 characters.");
    }
    errors.finish()?;
    let mut tx = pool.begin().await?;
    let row: Option<(Uuid, String, Uuid, Option<String>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT d.id, d.status, d.order_id, u.full_name, d.decided_at FROM disputes d
         LEFT JOIN users u ON u.id = d.decided_by WHERE d.number = $1 FOR UPDATE OF d",
    )
    .bind(number.trim().to_uppercase())
    .fetch_optional(&mut *tx)
    .await?;
    let (id, status, order_id, decider, decided_at) =
        row.ok_or_else(|| AppError::not_found("The dispute"))?;
    if status != "open" {
        return Err(AppError::conflict(format!(
            "Dispute {} was already decided ({status}) by {} on {}.",
            number.trim().to_uppercase(),
            decider.unwrap_or_else(|| "an admin".into()),
            decided_at
                .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default()
        )));
    }
    let o: OrderFacts = sqlx::query_as(&format!("{ORDER} WHERE o.id = $1 FOR UPDATE OF o"))
        .bind(order_id)
        .fetch_one(&mut *tx)
        .await?;
    let number = number.trim().to_uppercase();
    let link = format!("/orders/{}", o.number);
    match decision {
        Decision::Reject => {
            sqlx::query(
                "UPDATE disputes SET status = 'rejected', decided_by = $2, decision_note = $3, decided_at = now()
                 WHERE id = $1",
            )
            .bind(id)
            .bind(admin)
            .bind(note)
            .execute(&mut *tx)
            .await?;
            for user in [o.buyer_id, o.seller_id] {
                notify::send(
                    &mut tx,
                    user,
                    Kind::DisputeResolved,
                    &format!("Dispute {number} rejected"),
                    &format!("Order {} stands as it is. {note}", o.number),
                    &link,
                )
                .await?;
            }
        }
        Decision::Refund => {
            let (refund, back, returned_kg) = refund(&mut tx, admin, &number, &o, currency).await?;
            sqlx::query(
                "UPDATE disputes SET status = 'refunded', decided_by = $2, decision_note = $3, decided_at = now(),
                        refund_transfer_id = $4, return_transfer_id = $5, refunded_amount = $6, returned_kg = $7
                 WHERE id = $1",
            )
            .bind(id)
            .bind(admin)
            .bind(note)
            .bind(refund)
            .bind(back)
            .bind(o.buyer_pays)
            .bind(returned_kg)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE orders SET status = 'refunded' WHERE id = $1")
                .bind(o.id)
                .execute(&mut *tx)
                .await?;
            let kept = o.quantity_kg - returned_kg;
            let credits = match (returned_kg, kept) {
                (_, 0) => format!("the {} of credits go back to the seller", tonnes(returned_kg)),
                (0, _) => "the credits were retired, so they stay retired".to_owned(),
                _ => format!(
                    "{} of credits go back to the seller; the other {} were retired or listed and stay",
                    tonnes(returned_kg),
                    tonnes(kept)
                ),
            };
            let paid = format_money(o.buyer_pays, currency);
            notify::send(
                &mut tx,
                o.buyer_id,
                Kind::DisputeResolved,
                &format!("Dispute {number}: refunded"),
                &format!(
                    "{paid} is back in your wallet for order {}; {credits}. {note}",
                    o.number
                ),
                &link,
            )
            .await?;
            notify::send(
                &mut tx,
                o.seller_id,
                Kind::DisputeResolved,
                &format!("Dispute {number}: the buyer was refunded"),
                &format!(
                    "{} left your wallet for order {}; {credits}. {note}",
                    format_money(o.seller_receives, currency),
                    o.number
                ),
                &link,
            )
            .await?;
        }
    }
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(admin),
            action: match decision {
                Decision::Refund => "dispute.refund",
                Decision::Reject => "dispute.reject",
            },
            entity: "dispute",
            entity_id: number.clone(),
            before: Some(json!({ "status": "open", "order": o.number })),
            after: Some(json!({
                "status": if decision == Decision::Refund { "refunded" } else { "rejected" },
                "note": note,
            })),
        },
    )
    .await?;
    let dispute = load(&mut tx, &number).await?;
    tx.commit().await?;
    Ok(dispute)
}

/// Reverses a sale: answers the money transfer, the credits transfer (none when nothing could
/// go back) and the kilograms returned.
async fn refund(
    conn: &mut PgConnection,
    admin: Uuid,
    number: &str,
    o: &OrderFacts,
    currency: &str,
) -> Result<(i64, Option<i64>, i64), AppError> {
    let sale = o
        .transfer_id
        .ok_or_else(|| crate::server::internal("a completed order without its transfer"))?;
    // The sale's fee went to one of the fee accounts: the refund takes it back from there.
    let fee_account: Option<i64> = sqlx::query_scalar(
        "SELECT e.account_id FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
         WHERE e.transfer_id = $1 AND a.kind = 'platform_fees' AND a.asset = 'money'",
    )
    .bind(sale)
    .fetch_optional(&mut *conn)
    .await?;
    let buyer_money =
        ledger::user_account(conn, o.buyer_id, Asset::Money, AccountKind::Available).await?;
    let seller_money =
        ledger::user_account(conn, o.seller_id, Asset::Money, AccountKind::Available).await?;
    let buyer_credits =
        ledger::user_account(conn, o.buyer_id, Asset::Credit, AccountKind::Available).await?;
    let seller_credits =
        ledger::user_account(conn, o.seller_id, Asset::Credit, AccountKind::Available).await?;
    // Every account the refund touches, locked up front in id order (the ledger's order, so a
    // purchase or retirement at the same moment waits instead of deadlocking): the serials read
    // below cannot move before they go back.
    let mut accounts = vec![buyer_money, seller_money, buyer_credits, seller_credits];
    accounts.extend(fee_account);
    accounts.sort_unstable();
    sqlx::query("SELECT id FROM ledger_accounts WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
        .bind(&accounts)
        .execute(&mut *conn)
        .await
        .map_err(busy)?;
    let fees = o.buyer_fee + o.seller_fee;
    let legs: Vec<Leg> = [
        (Some(buyer_money), o.buyer_pays),
        (Some(seller_money), -o.seller_receives),
        (fee_account, -fees),
    ]
    .into_iter()
    .filter_map(|(account, amount)| {
        account
            .filter(|_| !amount.is_zero())
            .map(|a| Leg::new(a, amount))
    })
    .collect();
    let money = ledger::transfer(
        conn,
        Transfer {
            kind: "refund",
            legs,
            idempotency_key: Some(&format!("refund:{number}")),
            reference: Some(o.number.clone()),
            memo: format!("dispute {number}: the sale reversed"),
            actor: Some(admin),
            ..Transfer::default()
        },
    )
    .await
    .map_err(|e| match e {
        LedgerError::Insufficient {
            account, balance, ..
        } if account == seller_money => AppError::conflict(format!(
            "The seller's wallet holds {}, less than the {} this refund takes back (they may have withdrawn it). Nothing was changed; reject the dispute or wait until the seller's wallet covers it.",
            format_money(balance, currency),
            format_money(o.seller_receives, currency)
        )),
        other => ledger_refusal(other),
    })?
    .id();

    let ranges = returnable(conn, sale, buyer_credits).await?;
    let kg: i64 = ranges.iter().map(SerialRange::len).sum();
    if kg == 0 {
        return Ok((money, None, 0));
    }
    let back = ledger::transfer(
        conn,
        Transfer {
            kind: "refund_credits",
            legs: vec![
                Leg::new(buyer_credits, -Decimal::from(kg)),
                Leg::new(seller_credits, Decimal::from(kg)),
            ],
            idempotency_key: Some(&format!("refund-credits:{number}")),
            reference: Some(o.number.clone()),
            memo: format!("dispute {number}: the order's credits returned"),
            actor: Some(admin),
            exact_serials: Some(&ranges),
            ..Transfer::default()
        },
    )
    .await
    .map_err(ledger_refusal)?
    .id();
    Ok((money, Some(back), kg))
}

/// The serials of a sale (its transfer) that the buyer still holds available: not retired,
/// not listed again.
async fn returnable(
    conn: &mut PgConnection,
    sale: i64,
    buyer_credits: i64,
) -> Result<Vec<SerialRange>, sqlx::Error> {
    let held: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT lower(b.serials * m.serials), upper(b.serials * m.serials)
         FROM serial_movements m JOIN serial_blocks b ON b.serials && m.serials
         WHERE m.transfer_id = $1 AND b.account_id = $2
         ORDER BY 1",
    )
    .bind(sale)
    .bind(buyer_credits)
    .fetch_all(conn)
    .await?;
    Ok(held
        .into_iter()
        .map(|(start, end)| SerialRange::new(start, end))
        .collect())
}

/// A deadlock with a change to the same wallets at the same instant: nothing was written.
fn busy(e: sqlx::Error) -> AppError {
    if ledger::is_retryable(&e) {
        AppError::conflict(
            "The buyer's or the seller's wallet changed at this very moment; nothing was changed. Decide again.",
        )
    } else {
        e.into()
    }
}

fn ledger_refusal(e: LedgerError) -> AppError {
    match e {
        LedgerError::Retry => AppError::conflict(
            "The buyer's or the seller's wallet changed at this very moment; nothing was changed. Decide again.",
        ),
        other => other.into(),
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    number: String,
    order_number: String,
    buyer_name: String,
    seller_name: String,
    reason: String,
    status: String,
    decided_by_name: Option<String>,
    decision_note: Option<String>,
    refunded_amount: Option<Decimal>,
    returned_kg: Option<i64>,
    buyer_pays: Decimal,
    quantity_kg: i64,
    created_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    returnable_kg: Option<i64>,
}

const SELECT: &str = "SELECT d.number, o.number AS order_number, b.full_name AS buyer_name,
        s.full_name AS seller_name, d.reason, d.status, a.full_name AS decided_by_name, d.decision_note,
        d.refunded_amount, d.returned_kg, o.buyer_pays, o.quantity_kg, d.created_at, d.decided_at,
        CASE WHEN d.status = 'open' THEN (
            SELECT coalesce(sum(upper(b.serials * m.serials) - lower(b.serials * m.serials)), 0)::bigint
            FROM serial_movements m JOIN serial_blocks b ON b.serials && m.serials
            JOIN ledger_accounts a ON a.id = b.account_id
            WHERE m.transfer_id = o.transfer_id AND a.owner_id = o.buyer_id AND a.asset = 'credit'
              AND a.kind = 'available' AND a.scope IS NULL) END AS returnable_kg
    FROM disputes d JOIN orders o ON o.id = d.order_id
    JOIN users b ON b.id = o.buyer_id JOIN users s ON s.id = o.seller_id
    LEFT JOIN users a ON a.id = d.decided_by";

impl From<Row> for Dispute {
    fn from(r: Row) -> Dispute {
        Dispute {
            number: r.number,
            order: r.order_number,
            buyer_name: r.buyer_name,
            seller_name: r.seller_name,
            reason: r.reason,
            status: r.status,
            decided_by: r.decided_by_name,
            decision_note: r.decision_note.unwrap_or_default(),
            refunded_amount: r.refunded_amount,
            returned_kg: r.returned_kg,
            order_total: r.buyer_pays,
            order_kg: r.quantity_kg,
            opened_at: r.created_at,
            decided_at: r.decided_at,
            returnable_kg: r.returnable_kg,
        }
    }
}

async fn load(conn: &mut PgConnection, number: &str) -> Result<Dispute, sqlx::Error> {
    let row: Row = sqlx::query_as(&format!("{SELECT} WHERE d.number = $1"))
        .bind(number)
        .fetch_one(conn)
        .await?;
    Ok(row.into())
}

/// The dispute of an order, if any.
pub async fn of_order(pool: &PgPool, order: &str) -> Result<Option<Dispute>, AppError> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} WHERE o.number = $1"))
        .bind(order)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(Dispute::from))
}

/// Disputes for the admin: `open` (oldest first, the default), `refunded`, `rejected` or
/// `all` (newest first).
pub async fn list(pool: &PgPool, status: &str) -> Result<Vec<Dispute>, AppError> {
    let (filter, order) = match status.trim() {
        "" | "open" => ("WHERE d.status = 'open'", "d.created_at"),
        "refunded" => ("WHERE d.status = 'refunded'", "d.decided_at DESC"),
        "rejected" => ("WHERE d.status = 'rejected'", "d.decided_at DESC"),
        "all" => ("", "d.created_at DESC"),
        other => {
            return Err(AppError::invalid(
                "status",
                format!("“{other}” is not a dispute status (open, refunded, rejected or all)."),
            ))
        }
    };
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} {filter} ORDER BY {order} LIMIT 500"))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(Dispute::from).collect())
}
