//! Money out (SPEC §6): a withdrawal holds its amount and fee at request time, within the
//! configured limits; an admin pays it (the amount leaves through gateway clearing, the fee is
//! income) or rejects it (everything is released). Decided once.

use crate::api::payments::{WithdrawalLine, WithdrawalRules};
use crate::domain::market::{format_money, parse_money};
use crate::domain::notification::Kind;
use crate::error::{AppError, FieldErrors};
use crate::server::audit::{self, AuditEntry};
use crate::server::ledger::{self, AccountKind, Asset, LedgerError, Leg, Transfer};
use crate::server::notify;
use crate::server::services::settings;
use crate::server::AppState;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// The form's fields, as typed.
#[derive(Debug, Clone, Default)]
pub struct NewWithdrawal<'a> {
    pub amount: &'a str,
    pub bank_name: &'a str,
    pub account_holder: &'a str,
    pub account_number: &'a str,
    pub idempotency_key: &'a str,
}

/// Requested by `user` in the last 24 hours and not rejected.
async fn used_today(conn: &mut sqlx::PgConnection, user: Uuid) -> Result<Decimal, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(sum(amount), 0) FROM withdrawals
         WHERE user_id = $1 AND status <> 'rejected' AND created_at > now() - interval '24 hours'",
    )
    .bind(user)
    .fetch_one(conn)
    .await
}

pub async fn rules(pool: &PgPool, user: Uuid) -> Result<WithdrawalRules, AppError> {
    let mut conn = pool.acquire().await?;
    let s = settings::get(&mut conn).await?;
    Ok(WithdrawalRules {
        min: s.withdrawal_min,
        max: s.withdrawal_max,
        daily_max: s.withdrawal_daily_max,
        fee: s.withdrawal_fee,
        used_today: used_today(&mut conn, user).await?,
    })
}

/// Requests a payout; answers its number. The same key answers the same withdrawal.
#[tracing::instrument(skip(state), err(level = "info"))]
pub async fn request(
    state: &AppState,
    user: Uuid,
    input: NewWithdrawal<'_>,
) -> Result<String, AppError> {
    let currency = &state.config.payments.currency;
    let mut errors = FieldErrors::new();
    let amount = errors.check("amount", parse_money(input.amount, currency));
    let bank_name = input.bank_name.trim();
    if !(2..=100).contains(&bank_name.chars().count()) {
        errors.add("bank_name", "Name the bank (2–100 characters).");
    }
    let holder = input.account_holder.trim();
    if !(2..=100).contains(&holder.chars().count()) {
        errors.add(
            "account_holder",
            "Give the account holder's name as the bank knows it.",
        );
    }
    let account: String = input
        .account_number
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if !(6..=20).contains(&account.len()) || !account.chars().all(|c| c.is_ascii_digit()) {
        errors.add("account_number", "An account number is 6–20 digits.");
    }
    let key = input.idempotency_key.trim();
    if !(8..=100).contains(&key.len())
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        errors.add("idempotency_key", "Reload the page and submit again.");
    }
    errors.finish()?;
    let amount = amount.expect("checked");

    let mut tx = state.pool.begin().await?;
    // One user's withdrawals queue here, so the daily limit holds under concurrent requests,
    // and a repeated key is looked up only once the one before it has committed (looked up
    // before the lock, two requests with one key both missed it and one failed on insert).
    // NO KEY UPDATE: a plain FOR UPDATE also waits for every transaction that inserted a row
    // pointing at this user (a purchase holds the foreign key's KEY SHARE lock while it waits
    // for the wallet this withdrawal locks next: a deadlock).
    let verified: bool = sqlx::query_scalar(
        "SELECT kyc_verified_at IS NOT NULL FROM users WHERE id = $1 FOR NO KEY UPDATE",
    )
    .bind(user)
    .fetch_one(&mut *tx)
    .await?;
    if let Some(number) = sqlx::query_scalar(
        "SELECT number FROM withdrawals WHERE user_id = $1 AND idempotency_key = $2",
    )
    .bind(user)
    .bind(key)
    .fetch_optional(&mut *tx)
    .await?
    {
        return Ok(number);
    }
    if !verified {
        return Err(AppError::conflict(
            "Withdrawals need your identity checked first (know your customer). An administrator verifies it; your money stays in your wallet meanwhile.",
        ));
    }
    let s = settings::get(&mut tx).await?;
    if amount < s.withdrawal_min || amount > s.withdrawal_max {
        return Err(AppError::invalid(
            "amount",
            format!(
                "A withdrawal is between {} and {}.",
                format_money(s.withdrawal_min, currency),
                format_money(s.withdrawal_max, currency)
            ),
        ));
    }
    let used = used_today(&mut tx, user).await?;
    if used + amount > s.withdrawal_daily_max {
        return Err(AppError::invalid(
            "amount",
            format!(
                "The limit is {} in 24 hours; {} is left.",
                format_money(s.withdrawal_daily_max, currency),
                format_money((s.withdrawal_daily_max - used).max(Decimal::ZERO), currency)
            ),
        ));
    }
    let number = format!(
        "WDR-{:06}",
        ledger::next_in_sequence(&mut tx, "withdrawal_number_seq").await?
    );
    let total = amount + s.withdrawal_fee;
    let hold = ledger::hold(
        &mut tx,
        user,
        Asset::Money,
        total,
        &format!("withdrawal {number}"),
        Some(user),
    )
    .await
    .map_err(|e| match e {
        LedgerError::Insufficient { balance, .. } => AppError::InsufficientFunds {
            message: format!(
                "This withdrawal needs {} (with the {} fee); your wallet has {}.",
                format_money(total, currency),
                format_money(s.withdrawal_fee, currency),
                format_money(balance, currency)
            ),
        },
        other => other.into(),
    })?;
    sqlx::query(
        "INSERT INTO withdrawals (id, number, user_id, amount, fee, bank_name, account_holder, account_number,
                                  idempotency_key, hold_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(Uuid::new_v4())
    .bind(&number)
    .bind(user)
    .bind(amount)
    .bind(s.withdrawal_fee)
    .bind(bank_name)
    .bind(holder)
    .bind(&account)
    .bind(key)
    .bind(hold)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(number)
}

type Row = (
    String,
    String,
    String,
    Decimal,
    Decimal,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

const SELECT: &str =
    "SELECT w.number, u.full_name, u.email, w.amount, w.fee, w.bank_name, w.account_holder,
        w.account_number, w.status, w.decision_note, d.full_name, w.created_at, w.decided_at
    FROM withdrawals w JOIN users u ON u.id = w.user_id LEFT JOIN users d ON d.id = w.decided_by";

/// A withdrawal as its owner sees it (the account number masked) or as the admin who pays it
/// out sees it (in full).
fn line(r: Row, full_account: bool) -> WithdrawalLine {
    let digits = r.7.len();
    WithdrawalLine {
        number: r.0,
        user_name: r.1,
        user_email: r.2,
        amount: r.3,
        fee: r.4,
        bank_name: r.5,
        account_holder: r.6,
        account_number: if full_account {
            r.7.clone()
        } else {
            format!("••••{}", &r.7[digits.saturating_sub(4)..])
        },
        status: r.8,
        decision_note: r.9,
        decided_by: r.10,
        created_at: r.11,
        decided_at: r.12,
    }
}

pub async fn of_user(pool: &PgPool, user: Uuid) -> Result<Vec<WithdrawalLine>, AppError> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} WHERE w.user_id = $1 ORDER BY w.created_at DESC LIMIT 50"
    ))
    .bind(user)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| line(r, false)).collect())
}

/// For the admin: `pending` oldest first; `paid`, `rejected` or `all` newest first.
pub async fn queue(pool: &PgPool, status: &str) -> Result<Vec<WithdrawalLine>, AppError> {
    let (filter, order) = match status {
        "pending" | "" => ("WHERE w.status = 'pending'", "w.created_at"),
        "paid" => ("WHERE w.status = 'paid'", "w.created_at DESC"),
        "rejected" => ("WHERE w.status = 'rejected'", "w.created_at DESC"),
        "all" => ("", "w.created_at DESC"),
        _ => {
            return Err(AppError::invalid(
                "status",
                "Choose pending, paid, rejected or all.",
            ))
        }
    };
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} {filter} ORDER BY {order} LIMIT 200"))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| line(r, true)).collect())
}

/// Pays or rejects a pending withdrawal. The second decision is refused with who made the first.
#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn decide(
    pool: &PgPool,
    admin: Uuid,
    number: &str,
    decision: &str,
    note: &str,
) -> Result<(), AppError> {
    let note = note.trim();
    let status = match decision {
        "approve" => "paid",
        "reject" => {
            if note.is_empty() {
                return Err(AppError::invalid(
                    "note",
                    "Say why the withdrawal is rejected; the user sees it.",
                ));
            }
            "rejected"
        }
        _ => return Err(AppError::invalid("decision", "Choose approve or reject.")),
    };
    let mut tx = pool.begin().await?;
    let row: Option<(
        Uuid,
        Uuid,
        Decimal,
        Decimal,
        Uuid,
        String,
        Option<String>,
        Option<DateTime<Utc>>,
    )> = sqlx::query_as(
        "SELECT w.id, w.user_id, w.amount, w.fee, w.hold_id, w.status, d.full_name, w.decided_at
             FROM withdrawals w LEFT JOIN users d ON d.id = w.decided_by
             WHERE w.number = $1 FOR UPDATE OF w",
    )
    .bind(number.trim().to_uppercase())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, user, amount, fee, hold, current, decider, decided_at)) = row else {
        return Err(AppError::not_found("The withdrawal"));
    };
    if current != "pending" {
        return Err(AppError::conflict(format!(
            "This withdrawal was already {current} by {} on {}.",
            decider.unwrap_or_else(|| "an admin".into()),
            decided_at
                .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default()
        )));
    }
    let transfer = if status == "paid" {
        let clearing =
            ledger::platform_account(&mut tx, Asset::Money, AccountKind::GatewayClearing).await?;
        let mut legs = vec![Leg::new(clearing, amount)];
        if fee > Decimal::ZERO {
            legs.push(Leg::new(
                ledger::fee_account(&mut tx, id.as_u128() as u64).await?,
                fee,
            ));
        }
        ledger::post(
            &mut tx,
            hold,
            amount + fee,
            legs,
            Transfer {
                kind: "withdrawal",
                reference: Some(number.trim().to_uppercase()),
                memo: "paid to the bank account".into(),
                actor: Some(admin),
                ..Transfer::default()
            },
        )
        .await?
    } else {
        ledger::void(&mut tx, hold, Some(admin)).await?;
        sqlx::query_scalar("SELECT max(id) FROM ledger_transfers WHERE hold_id = $1")
            .bind(hold)
            .fetch_one(&mut *tx)
            .await?
    };
    sqlx::query(
        "UPDATE withdrawals SET status = $2, decided_by = $3, decision_note = $4, decided_at = now(), transfer_id = $5
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(admin)
    .bind(note)
    .bind(transfer)
    .execute(&mut *tx)
    .await?;
    let number = number.trim().to_uppercase();
    notify::send(
        &mut tx,
        user,
        Kind::WithdrawalDecided,
        &if status == "paid" {
            format!("Withdrawal {number} paid")
        } else {
            format!("Withdrawal {number} rejected")
        },
        &match (status, note) {
            ("paid", "") => "The money is on its way to your bank account.".to_owned(),
            ("paid", note) => format!("The money is on its way to your bank account. {note}"),
            (_, note) => format!("The amount and its fee are back in your wallet. Reason: {note}"),
        },
        &format!("/money#{number}"),
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(admin),
            action: if status == "paid" {
                "withdrawal.pay"
            } else {
                "withdrawal.reject"
            },
            entity: "withdrawal",
            entity_id: number.trim().to_uppercase(),
            before: Some(json!({"status": "pending"})),
            after: Some(json!({"status": status, "note": note, "amount": amount, "fee": fee})),
        },
    )
    .await?;
    tx.commit().await?;
    let _ = user;
    Ok(())
}
