//! The carbon wallet: balances (available, reserved, retired), every movement with its serial
//! ranges, retirement for a named beneficiary with its certificate, and the public facts of a
//! certificate.

use crate::api::wallet::{Balances, Certificate, CertificateBlock, Holding, Movement};
use crate::domain::methodology::kg_to_credits;
use crate::domain::serial::{self, SerialRange};
use crate::domain::user::is_invisible_formatting;
use crate::error::{AppError, FieldErrors};
use crate::server::audit::{self, AuditEntry};
use crate::server::ledger::{self, AccountKind, Asset, LedgerError, Leg, Transfer};
use chrono::{DateTime, Datelike, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

fn kg(d: Decimal) -> i64 {
    d.to_i64().unwrap_or(0)
}

pub async fn balances(pool: &PgPool, owner: Uuid) -> Result<Balances, AppError> {
    let mut conn = pool.acquire().await?;
    Ok(Balances {
        available_kg: kg(
            ledger::balance(&mut conn, owner, Asset::Credit, AccountKind::Available).await?,
        ),
        reserved_kg: kg(ledger::balance(&mut conn, owner, Asset::Credit, AccountKind::Held).await?),
        retired_kg: kg(
            ledger::balance(&mut conn, owner, Asset::Credit, AccountKind::Retired).await?,
        ),
    })
}

/// The owner's serials now, per balance, vintage and region, touching ranges joined.
pub async fn holdings(pool: &PgPool, owner: Uuid) -> Result<Vec<Holding>, AppError> {
    let rows: Vec<(String, String, i32, i64, i64)> = sqlx::query_as(
        "SELECT a.kind, i.region, i.vintage, lower(b.serials), upper(b.serials)
         FROM serial_blocks b JOIN ledger_accounts a ON a.id = b.account_id
         JOIN credit_issuances i ON i.id = b.issuance_id
         WHERE a.owner_id = $1 ORDER BY a.kind, i.vintage, lower(b.serials)",
    )
    .bind(owner)
    .fetch_all(pool)
    .await?;
    let mut groups: std::collections::BTreeMap<(String, i32, String), Vec<SerialRange>> =
        Default::default();
    for (account, region, vintage, start, end) in rows {
        groups
            .entry((account, vintage, region))
            .or_default()
            .push(SerialRange::new(start, end));
    }
    let mut out = Vec::new();
    for ((account, vintage, region), ranges) in groups {
        for r in serial::coalesce(ranges) {
            out.push(Holding {
                account: account.clone(),
                serials: r.label(&region, vintage),
                kg: r.len(),
                vintage,
                region: region.clone(),
            });
        }
    }
    Ok(out)
}

/// The owner's credit movements, newest first: in entry order, the order the balances moved in
/// (a transfer's id may be drawn before its accounts are locked, see `ledger::post_unbooked`).
pub async fn movements(pool: &PgPool, owner: Uuid, limit: i64) -> Result<Vec<Movement>, AppError> {
    type Row = (
        i64,
        i64,
        DateTime<Utc>,
        String,
        String,
        Decimal,
        Decimal,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT t.id, a.id, t.created_at, t.kind, a.kind, e.amount, e.balance_after, t.reference
         FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
         JOIN ledger_transfers t ON t.id = e.transfer_id
         WHERE a.owner_id = $1 AND a.asset = 'credit'
         ORDER BY e.id DESC LIMIT $2",
    )
    .bind(owner)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let transfers: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let moved: Vec<(i64, Option<i64>, i64, String, i32, i64, i64)> = sqlx::query_as(
        "SELECT m.transfer_id, m.from_account_id, m.to_account_id, i.region, i.vintage, lower(m.serials), upper(m.serials)
         FROM serial_movements m JOIN credit_issuances i ON i.id = m.issuance_id
         WHERE m.transfer_id = ANY($1) ORDER BY lower(m.serials)",
    )
    .bind(&transfers)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(transfer, account, at, kind, account_kind, amount, after, reference)| {
                let serials = moved
                    .iter()
                    .filter(|m| m.0 == transfer && (m.1 == Some(account) || m.2 == account))
                    .map(|m| SerialRange::new(m.5, m.6).label(&m.3, m.4))
                    .collect();
                Movement {
                    at,
                    kind,
                    account: account_kind,
                    kg: kg(amount),
                    balance_after: kg(after),
                    reference,
                    serials,
                }
            },
        )
        .collect())
}

/// Checks a retirement's beneficiary and reason; answers them trimmed.
pub(crate) fn check_retirement<'a>(
    errors: &mut FieldErrors,
    beneficiary: &'a str,
    reason: &'a str,
) -> (&'a str, &'a str) {
    let beneficiary = beneficiary.trim();
    if beneficiary.is_empty()
        || beneficiary.chars().count() > 200
        || beneficiary.chars().any(char::is_control)
    {
        errors.add(
            "beneficiary",
            "Name who the retirement is for (up to 200 characters, on one line).",
        );
    } else if let Some(c) = beneficiary.chars().find(|c| is_invisible_formatting(*c)) {
        errors.add(
            "beneficiary",
            format!(
                "The beneficiary's name cannot contain invisible formatting characters (found U+{:04X}).",
                c as u32
            ),
        );
    }
    let reason = reason.trim();
    if reason.is_empty()
        || reason.chars().count() > 500
        || reason
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        errors.add(
            "reason",
            "Say why the credits are retired (up to 500 characters, no control characters).",
        );
    }
    (beneficiary, reason)
}

/// The next certificate number: CERT-{year}-000001, sequential per year.
pub(crate) async fn certificate_number(conn: &mut PgConnection) -> Result<String, sqlx::Error> {
    let year = Utc::now().year();
    Ok(format!(
        "CERT-{year}-{:06}",
        ledger::next_number(conn, &format!("certificate-{year}")).await?
    ))
}

/// A retirement whose credits a transfer has just moved into the owner's retired account.
pub(crate) struct Retirement<'a> {
    pub id: Uuid,
    pub number: &'a str,
    pub owner: Uuid,
    pub beneficiary: &'a str,
    pub reason: &'a str,
    pub quantity_kg: i64,
    pub transfer_id: i64,
    /// The key of the form that asked for it (none when a purchase or a bid retired at once:
    /// their own key covers it).
    pub idempotency_key: Option<&'a str>,
    pub show_holder: bool,
}

/// Writes the retirement (the certificate's record) and its audit entry.
pub(crate) async fn record_retirement(
    conn: &mut PgConnection,
    r: Retirement<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO retirements (id, number, owner_id, beneficiary, reason, quantity_kg, transfer_id,
                                  idempotency_key, show_holder)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(r.id)
    .bind(r.number)
    .bind(r.owner)
    .bind(r.beneficiary)
    .bind(r.reason)
    .bind(r.quantity_kg)
    .bind(r.transfer_id)
    .bind(r.idempotency_key)
    .bind(r.show_holder)
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        AuditEntry {
            actor_id: Some(r.owner),
            action: "credits.retire",
            entity: "retirement",
            entity_id: r.number.to_owned(),
            before: None,
            after: Some(json!({"quantity_kg": r.quantity_kg, "beneficiary": r.beneficiary, "reason": r.reason})),
        },
    )
    .await
}

/// What an owner asks to retire, as typed.
#[derive(Debug)]
pub struct RetireRequest<'a> {
    pub quantity_kg: &'a str,
    pub beneficiary: &'a str,
    pub reason: &'a str,
    /// The form's key: the same key answers the same certificate.
    pub idempotency_key: &'a str,
    /// Name the holder on the public certificate (the beneficiary is always named).
    pub show_holder: bool,
}

/// Retires the owner's available credits (lowest serials first) for a named beneficiary;
/// answers the certificate. Retired serials never move again. Retirements with one key queue on
/// it, so a repeat (a double click, a retried request) answers the first certificate.
///
/// The certificate is read inside the transaction that writes it: an answer is only ever a
/// retirement that committed, and an error (the database lost between the write and the read
/// included) is a retirement that did not.
#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn retire(
    pool: &PgPool,
    owner: Uuid,
    request: RetireRequest<'_>,
) -> Result<Certificate, AppError> {
    let mut errors = FieldErrors::new();
    let quantity = errors.check(
        "quantity_kg",
        request
            .quantity_kg
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|q| *q >= 1)
            .ok_or_else(|| "Enter a whole number of kilograms, at least 1.".to_owned()),
    );
    let (beneficiary, reason) = check_retirement(&mut errors, request.beneficiary, request.reason);
    let key = errors.check(
        "idempotency_key",
        crate::server::services::orders::check_key(request.idempotency_key),
    );
    errors.finish()?;
    let (quantity, key) = (quantity.unwrap_or_default(), key.unwrap_or_default());

    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text || $2, 11))")
        .bind(owner)
        .bind(key)
        .execute(&mut *tx)
        .await?;
    if let Some(number) = sqlx::query_scalar::<_, String>(
        "SELECT number FROM retirements WHERE owner_id = $1 AND idempotency_key = $2",
    )
    .bind(owner)
    .bind(key)
    .fetch_optional(&mut *tx)
    .await?
    {
        let certificate = certificate_in(&mut tx, &number).await?;
        tx.commit().await?;
        return Ok(certificate);
    }
    let available =
        ledger::user_account(&mut tx, owner, Asset::Credit, AccountKind::Available).await?;
    let retired = ledger::user_account(&mut tx, owner, Asset::Credit, AccountKind::Retired).await?;
    let id = Uuid::new_v4();
    let number = certificate_number(&mut tx).await?;
    let transfer = ledger::transfer(
        &mut tx,
        Transfer {
            kind: "retirement",
            legs: vec![
                Leg::new(available, -Decimal::from(quantity)),
                Leg::new(retired, Decimal::from(quantity)),
            ],
            reference: Some(number.clone()),
            memo: format!("for {beneficiary}"),
            actor: Some(owner),
            retirement_id: Some(id),
            ..Transfer::default()
        },
    )
    .await
    .map_err(|e| match e {
        LedgerError::Insufficient { balance, .. } => AppError::invalid(
            "quantity_kg",
            format!("You have {} kg available to retire.", kg(balance)),
        ),
        other => other.into(),
    })?
    .id();
    record_retirement(
        &mut tx,
        Retirement {
            id,
            number: &number,
            owner,
            beneficiary,
            reason,
            quantity_kg: quantity,
            transfer_id: transfer,
            idempotency_key: Some(key),
            show_holder: request.show_holder,
        },
    )
    .await?;
    let certificate = certificate_in(&mut tx, &number).await?;
    tx.commit().await?;
    Ok(certificate)
}

/// The public facts of a certificate and the live status of its serials.
pub async fn certificate(pool: &PgPool, number: &str) -> Result<Certificate, AppError> {
    let mut conn = pool.acquire().await?;
    certificate_in(&mut conn, number).await
}

/// `certificate` on a connection (inside a transaction: as that transaction sees it).
pub(crate) async fn certificate_in(
    conn: &mut PgConnection,
    number: &str,
) -> Result<Certificate, AppError> {
    // The holder's name is public only when they chose so.
    type Head = (
        Uuid,
        String,
        Option<String>,
        String,
        String,
        i64,
        DateTime<Utc>,
    );
    let row: Option<Head> = sqlx::query_as(
        "SELECT r.id, r.number, CASE WHEN r.show_holder THEN u.full_name END, r.beneficiary,
                r.reason, r.quantity_kg, r.retired_at
         FROM retirements r JOIN users u ON u.id = r.owner_id WHERE r.number = $1",
    )
    .bind(number.trim().to_uppercase())
    .fetch_optional(&mut *conn)
    .await?;
    let (id, number, owner_name, beneficiary, reason, quantity_kg, retired_at) =
        row.ok_or_else(|| AppError::not_found("The certificate"))?;
    type Block = (
        i64,
        i64,
        i32,
        String,
        serde_json::Value,
        String,
        String,
        String,
    );
    let blocks: Vec<Block> = sqlx::query_as(
        "SELECT lower(b.serials), upper(b.serials), i.vintage, i.region, m.methodology, u.full_name, q.number, a.kind
         FROM serial_blocks b
         JOIN credit_issuances i ON i.id = b.issuance_id
         JOIN methodology_versions m ON m.id = i.methodology_version_id
         JOIN users u ON u.id = i.verifier_id
         JOIN credit_requests q ON q.id = i.request_id
         JOIN ledger_accounts a ON a.id = b.account_id
         WHERE b.retirement_id = $1 ORDER BY lower(b.serials)",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Certificate {
        number,
        owner_name,
        beneficiary,
        reason,
        quantity_kg,
        credits: kg_to_credits(Decimal::from(quantity_kg)),
        retired_at,
        blocks: blocks
            .into_iter()
            .map(
                |(start, end, vintage, region, m, verifier, request, account)| CertificateBlock {
                    serials: SerialRange::new(start, end).label(&region, vintage),
                    kg: end - start,
                    vintage,
                    region,
                    methodology: format!(
                        "{} v{}",
                        m["code"].as_str().unwrap_or("?"),
                        m["version"].as_i64().unwrap_or(0)
                    ),
                    verifier,
                    request,
                    status: if account == "retired" {
                        "retired".into()
                    } else {
                        account
                    },
                },
            )
            .collect(),
    })
}

/// The owner's certificates, newest first.
pub async fn retirements(
    pool: &PgPool,
    owner: Uuid,
) -> Result<Vec<(String, String, i64, DateTime<Utc>)>, AppError> {
    Ok(sqlx::query_as(
        "SELECT number, beneficiary, quantity_kg, retired_at FROM retirements WHERE owner_id = $1 ORDER BY retired_at DESC",
    )
    .bind(owner)
    .fetch_all(pool)
    .await?)
}

/// The certificate as a PDF, with a QR code to its public verify page.
pub fn certificate_pdf(c: &Certificate, public_url: &str) -> Result<Vec<u8>, AppError> {
    use crate::server::pdf::{Document, MARGIN, WIDTH};
    let verify = format!("{}/verify/{}", public_url.trim_end_matches('/'), c.number);
    let mut doc = Document::new(&format!("Retirement certificate {}", c.number));
    doc.line(10.0, true, "EV CARBON EXCHANGE");
    doc.space(6.0);
    doc.line(22.0, true, "Retirement certificate");
    doc.line(14.0, false, &c.number);
    let top = doc.y;
    doc.qr(WIDTH - MARGIN - 120.0, top + 60.0, 120.0, &verify)
        .map_err(crate::server::internal)?;
    doc.space(10.0);
    doc.line(
        12.0,
        false,
        &format!(
            "{} t CO₂e ({} kg) retired on behalf of {}.",
            c.credits, c.quantity_kg, c.beneficiary
        ),
    );
    doc.space(6.0);
    let vintages: Vec<String> = {
        let mut v: Vec<String> = c.blocks.iter().map(|b| b.vintage.to_string()).collect();
        v.sort();
        v.dedup();
        v
    };
    let methodologies: Vec<String> = {
        let mut v: Vec<String> = c.blocks.iter().map(|b| b.methodology.clone()).collect();
        v.sort();
        v.dedup();
        v
    };
    let verifiers: Vec<String> = {
        let mut v: Vec<String> = c.blocks.iter().map(|b| b.verifier.clone()).collect();
        v.sort();
        v.dedup();
        v
    };
    let mut facts = vec![
        ("Beneficiary", c.beneficiary.clone()),
        ("Reason", c.reason.clone()),
        (
            "Quantity",
            format!("{} t CO2e ({} kg)", c.credits, c.quantity_kg),
        ),
        ("Vintage", vintages.join(", ")),
        ("Methodology", methodologies.join(", ")),
        ("Verified by", verifiers.join(", ")),
    ];
    if let Some(holder) = &c.owner_name {
        facts.push(("Retired by", holder.clone()));
    }
    facts.extend([
        (
            "Date",
            c.retired_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
        ("Verify at", verify.clone()),
    ]);
    doc.facts(&facts);
    doc.space(10.0);
    doc.line(12.0, true, "Serial numbers");
    let rows: Vec<Vec<String>> = c
        .blocks
        .iter()
        .map(|b| {
            vec![
                b.serials.clone(),
                b.kg.to_string(),
                b.request.clone(),
                b.status.clone(),
            ]
        })
        .collect();
    doc.table(
        &[
            (0.0, "Serials"),
            (250.0, "kg"),
            (300.0, "Issued by request"),
            (400.0, "Status"),
        ],
        &rows,
    );
    doc.space(12.0);
    doc.line(
        8.0,
        false,
        "Each kilogram has one serial. Retired serials can never be transferred or retired again; the verify page shows their live status.",
    );
    Ok(doc.finish())
}
