//! Buying credits (SPEC §5.1): in one transaction the listing's open quantity drops, the buyer
//! pays price × quantity + fee, the seller receives price × quantity − fee, the platform keeps
//! both fees, the serials move to the buyer (or straight into their retired account for a
//! named beneficiary), and the order gets its invoice. A checkout reserves the quantity and the
//! buyer's own money while the gateway collects the rest; the payment's outcome completes or
//! cancels it. Orders of both sides, and the invoice PDF.

use crate::api::market::{Order, OrderLine, Purchase};
use crate::domain::market::{format_money, parse_tonnes, tonnes};
use crate::domain::notification::Kind;
use crate::domain::serial::SerialRange;
use crate::domain::trade::{check_quantity, Fees, Settlement};
use crate::domain::user::Role;
use crate::error::{AppError, FieldErrors};
use crate::server::ledger::{self, AccountKind, Asset, LedgerError, Leg, Transfer};
use crate::server::notify;
use crate::server::services::wallet::{self, Retirement};
use crate::server::services::{disputes, payments, settings};
use crate::server::session::Caller;
use crate::server::AppState;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The purchase form's fields, as typed.
#[derive(Debug, Clone, Default)]
pub struct BuyInput<'a> {
    pub listing: &'a str,
    /// Tonnes.
    pub quantity: &'a str,
    pub idempotency_key: &'a str,
    /// Pay what the wallet does not cover on the gateway's page.
    pub checkout: bool,
    pub retire: bool,
    pub beneficiary: &'a str,
    pub reason: &'a str,
}

/// Why one attempt of a purchase stopped.
enum Stop {
    /// A deadlock, a serialisation failure or a concurrent request with the same key: the
    /// whole transaction runs again (and then finds the other request's order).
    Retry,
    Fail(AppError),
    /// The buyer's wallet does not cover the purchase.
    Unpaid,
}

impl From<AppError> for Stop {
    fn from(e: AppError) -> Self {
        Stop::Fail(e)
    }
}

impl From<LedgerError> for Stop {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Retry => Stop::Retry,
            other => Stop::Fail(other.into()),
        }
    }
}

impl From<sqlx::Error> for Stop {
    fn from(e: sqlx::Error) -> Self {
        if ledger::is_retryable(&e) {
            return Stop::Retry;
        }
        if let sqlx::Error::Database(d) = &e {
            if d.constraint() == Some("orders_buyer_id_idempotency_key_key") {
                return Stop::Retry;
            }
        }
        Stop::Fail(e.into())
    }
}

fn check_key(key: &str) -> Result<&str, String> {
    let key = key.trim();
    if (8..=100).contains(&key.len())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(key)
    } else {
        Err("Send an idempotency key of 8–100 letters, digits, - or _ (reload the page to get one).".into())
    }
}

/// Buys from a fixed-price listing; answers the order and where the buyer goes next.
#[tracing::instrument(skip(state), err(level = "info"))]
pub async fn buy(state: &AppState, buyer: Uuid, input: BuyInput<'_>) -> Result<Purchase, AppError> {
    let mut errors = FieldErrors::new();
    let kg = errors.check("quantity", parse_tonnes(input.quantity));
    let key = errors.check("idempotency_key", check_key(input.idempotency_key));
    let retire = if input.retire {
        let (b, r) = wallet::check_retirement(&mut errors, input.beneficiary, input.reason);
        Some((b, r))
    } else {
        None
    };
    errors.finish()?;
    let (kg, key) = (kg.expect("checked"), key.expect("checked"));
    let listing = input.listing.trim().to_uppercase();
    for _ in 0..8 {
        match attempt(state, buyer, &listing, kg, key, input.checkout, retire).await {
            Ok(p) => return Ok(p),
            Err(Stop::Retry) => continue,
            Err(Stop::Fail(e)) => return Err(e),
            Err(Stop::Unpaid) => {
                return Err(crate::server::internal("an unworded unpaid purchase"))
            }
        }
    }
    Err(AppError::conflict(
        "The listing is very busy right now. Please try again.",
    ))
}

#[derive(sqlx::FromRow)]
struct Taken {
    id: Uuid,
    seller_id: Uuid,
    price_per_t: Decimal,
    hold_id: Uuid,
    number: String,
}

async fn attempt(
    state: &AppState,
    buyer: Uuid,
    listing: &str,
    kg: i64,
    key: &str,
    checkout: bool,
    retire: Option<(&str, &str)>,
) -> Result<Purchase, Stop> {
    let mut tx = state.pool.begin().await?;
    let fees = match replay(&mut tx, buyer, key, listing, kg).await? {
        Replay::Done(p) => return Ok(p),
        Replay::New(fees) => fees,
    };
    // The quantity leaves the listing in one conditional statement: it never goes below zero,
    // and concurrent buyers queue on the row.
    let column = if checkout { "pending_kg" } else { "sold_kg" };
    let taken: Option<Taken> = sqlx::query_as(&format!(
        "UPDATE listings SET {column} = {column} + $2, updated_at = now(),
                status = CASE WHEN sold_kg + pending_kg + $2 = quantity_kg AND {complete} THEN 'sold' ELSE status END,
                closed_at = CASE WHEN sold_kg + pending_kg + $2 = quantity_kg AND {complete} THEN now() END
         WHERE number = $1 AND status = 'active' AND kind = 'fixed' AND seller_id <> $3
           AND (expires_at IS NULL OR expires_at > now())
           AND quantity_kg - sold_kg - pending_kg >= $2
           AND ($2 >= min_lot_kg OR $2 = quantity_kg - sold_kg - pending_kg)
         RETURNING id, seller_id, price_per_t, hold_id, 'ORD-' || lpad(nextval('order_number_seq')::text, 6, '0') AS number",
        complete = if checkout { "false" } else { "pending_kg = 0" },
    ))
    .bind(listing)
    .bind(kg)
    .bind(buyer)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(taken) = taken else {
        return Err(Stop::Fail(refusal(&mut tx, listing, buyer, kg).await?));
    };
    let settlement = Settlement::new(taken.price_per_t, kg, fees);
    let order_id = Uuid::new_v4();
    let number = taken.number;

    if checkout {
        let available =
            ledger::balance(&mut tx, buyer, Asset::Money, AccountKind::Available).await?;
        // A wallet that covers it all needs no gateway: fall through to paying from it.
        if available < settlement.buyer_pays {
            let own = available.max(Decimal::ZERO);
            let hold = if own > Decimal::ZERO {
                Some(
                    ledger::hold(
                        &mut tx,
                        buyer,
                        Asset::Money,
                        own,
                        &format!("checkout {number}"),
                        Some(buyer),
                    )
                    .await?,
                )
            } else {
                None
            };
            let payment = payments::create(
                &mut tx,
                &state.config.payments,
                buyer,
                "checkout",
                settlement.buyer_pays - own,
            )
            .await?;
            insert_order(
                &mut tx,
                NewOrder {
                    id: order_id,
                    number: &number,
                    listing_id: taken.id,
                    buyer,
                    seller: taken.seller_id,
                    kg,
                    price_per_t: taken.price_per_t,
                    settlement: &settlement,
                    key,
                    retire,
                    status: "pending",
                    payment_id: Some(payment.id),
                    money_hold_id: hold,
                    settled: None,
                },
            )
            .await?;
            tx.commit().await?;
            return Ok(Purchase {
                order: number,
                next: payment.redirect,
            });
        }
        // Paying from the wallet after all: the quantity counts as sold, not pending.
        sqlx::query(
            "UPDATE listings SET pending_kg = pending_kg - $2, sold_kg = sold_kg + $2,
                    status = CASE WHEN sold_kg + $2 = quantity_kg AND pending_kg - $2 = 0 THEN 'sold' ELSE status END,
                    closed_at = CASE WHEN sold_kg + $2 = quantity_kg AND pending_kg - $2 = 0 THEN now() END
             WHERE id = $1",
        )
        .bind(taken.id)
        .bind(kg)
        .execute(&mut *tx)
        .await?;
    }

    // The seller is told first (it all commits together or not at all): the accounts that
    // `settle` locks — the seller's wallet, shared by every sale of theirs — are then held
    // for as few statements as possible.
    tell_seller(
        &mut tx,
        taken.seller_id,
        &number,
        listing,
        kg,
        &settlement,
        &state.config.payments.currency,
    )
    .await?;
    let settled = settle(
        &mut tx,
        Sale {
            order_id,
            number: &number,
            hold_id: taken.hold_id,
            buyer,
            seller: taken.seller_id,
            kg,
            settlement: &settlement,
            retire,
        },
    )
    .await
    .map_err(|e| match e {
        Stop::Unpaid => {
            Stop::Fail(AppError::InsufficientFunds {
                message: format!(
                    "This purchase costs {} and your wallet does not cover it. Top up your wallet or pay at checkout.",
                    format_money(settlement.buyer_pays, &state.config.payments.currency)
                ),
            })
        }
        other => other,
    })?;
    insert_order(
        &mut tx,
        NewOrder {
            id: order_id,
            number: &number,
            listing_id: taken.id,
            buyer,
            seller: taken.seller_id,
            kg,
            price_per_t: taken.price_per_t,
            settlement: &settlement,
            key,
            retire,
            status: "completed",
            payment_id: None,
            money_hold_id: None,
            settled: Some(&settled),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Purchase {
        next: format!("/orders/{number}"),
        order: number,
    })
}

/// The seller hears of a completed sale from a fixed-price listing.
async fn tell_seller(
    conn: &mut PgConnection,
    seller: Uuid,
    order: &str,
    listing: &str,
    kg: i64,
    s: &Settlement,
    currency: &str,
) -> Result<(), sqlx::Error> {
    notify::send(
        conn,
        seller,
        Kind::ListingSold,
        &format!("Sold {} from {listing}", tonnes(kg)),
        &format!(
            "Order {order}: {} is in your wallet ({} for the credits, less the {} seller fee).",
            format_money(s.seller_receives, currency),
            format_money(s.amount, currency),
            format_money(s.seller_fee, currency)
        ),
        &format!("/orders/{order}"),
    )
    .await
}

enum Replay {
    /// The key made this order before.
    Done(Purchase),
    /// A new purchase, at these fees.
    New(Fees),
}

/// The order a key already made, if any (the same key for a different purchase is refused);
/// otherwise the fees a new purchase pays now. One round trip.
async fn replay(
    conn: &mut PgConnection,
    buyer: Uuid,
    key: &str,
    listing: &str,
    kg: i64,
) -> Result<Replay, Stop> {
    #[derive(sqlx::FromRow)]
    struct Row {
        buyer_fee_rate: Decimal,
        seller_fee_rate: Decimal,
        number: Option<String>,
        listing_number: Option<String>,
        quantity_kg: Option<i64>,
        status: Option<String>,
        payment_id: Option<Uuid>,
    }
    let row: Row = sqlx::query_as(
        "SELECT s.buyer_fee_rate, s.seller_fee_rate, o.number, l.number AS listing_number,
                o.quantity_kg, o.status, o.payment_id
         FROM platform_settings s
         LEFT JOIN orders o ON o.buyer_id = $1 AND o.idempotency_key = $2
         LEFT JOIN listings l ON l.id = o.listing_id",
    )
    .bind(buyer)
    .bind(key)
    .fetch_one(&mut *conn)
    .await?;
    let (Some(number), Some(listing_number), Some(quantity), Some(status)) =
        (row.number, row.listing_number, row.quantity_kg, row.status)
    else {
        return Ok(Replay::New(Fees::new(
            row.buyer_fee_rate,
            row.seller_fee_rate,
        )));
    };
    let payment = row.payment_id;
    if listing_number != listing || quantity != kg {
        return Err(Stop::Fail(AppError::conflict(format!(
            "This purchase key was already used for order {number}. Reload the page to buy again."
        ))));
    }
    let next = match (status.as_str(), payment) {
        ("pending", Some(payment)) => payments::redirect_of(conn, payment).await?,
        _ => format!("/orders/{number}"),
    };
    Ok(Replay::Done(Purchase {
        order: number,
        next,
    }))
}

/// Says exactly why a listing could not sell `kg` to this buyer.
async fn refusal(
    conn: &mut PgConnection,
    listing: &str,
    buyer: Uuid,
    kg: i64,
) -> Result<AppError, sqlx::Error> {
    let row: Option<(String, String, Uuid, i64, i64, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT status, kind, seller_id, quantity_kg - sold_kg - pending_kg, min_lot_kg, expires_at
         FROM listings WHERE number = $1",
    )
    .bind(listing)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((status, kind, seller, left, min_lot, expires_at)) = row else {
        return Ok(AppError::not_found("The listing"));
    };
    Ok(if seller == buyer {
        AppError::conflict("This is your own listing.")
    } else if kind != "fixed" {
        AppError::conflict("This listing is an auction: place a bid instead.")
    } else if status == "sold" || (status == "active" && left == 0) {
        AppError::conflict("Sold out: every credit of this listing is sold or being paid for.")
    } else if status != "active" || expires_at.is_some_and(|e| e <= Utc::now()) {
        AppError::conflict(format!(
            "This listing is {} and no longer for sale.",
            if status == "active" {
                "expired"
            } else {
                status.as_str()
            }
        ))
    } else {
        match check_quantity(kg, min_lot, left) {
            Err(problem) => AppError::invalid("quantity", problem.message()),
            // It changed under us; the buyer can simply try again.
            Ok(()) => AppError::conflict("The listing changed a moment ago. Please try again."),
        }
    })
}

struct Sale<'a> {
    order_id: Uuid,
    number: &'a str,
    hold_id: Uuid,
    buyer: Uuid,
    seller: Uuid,
    kg: i64,
    settlement: &'a Settlement,
    retire: Option<(&'a str, &'a str)>,
}

/// What settling wrote.
struct Settled {
    transfer_id: i64,
    retirement: Option<Uuid>,
}

/// Money against credits in one balanced transfer: the buyer's money to the seller and the fee
/// accounts, the listing's credits (with their serials) to the buyer's available or retired
/// account; then the retirement (if asked) and the invoice number. A buyer who cannot pay gets
/// `Stop::Unpaid` (the caller words it).
async fn settle(conn: &mut PgConnection, sale: Sale<'_>) -> Result<Settled, Stop> {
    let s = sale.settlement;
    let credit_kind = if sale.retire.is_some() {
        AccountKind::Retired
    } else {
        AccountKind::Available
    };
    let (ids, fees) = ledger::user_accounts_and_fees(
        conn,
        &[
            (sale.buyer, Asset::Money, AccountKind::Available),
            (sale.seller, Asset::Money, AccountKind::Available),
            (sale.buyer, Asset::Credit, credit_kind),
        ],
        sale.order_id.as_u128() as u64,
    )
    .await?;
    let (buyer_money, seller_money, credits_to) = (ids[0], ids[1], ids[2]);
    let mut legs = vec![Leg::new(credits_to, Decimal::from(sale.kg))];
    for (account, amount) in [
        (buyer_money, -s.buyer_pays),
        (seller_money, s.seller_receives),
        (fees, s.fees()),
    ] {
        if !amount.is_zero() {
            legs.push(Leg::new(account, amount));
        }
    }
    let retirement = sale.retire.map(|_| Uuid::new_v4());
    let certificate = match sale.retire {
        Some(_) => Some(wallet::certificate_number(conn).await?),
        None => None,
    };
    let transfer_id = ledger::post(
        conn,
        sale.hold_id,
        Decimal::from(sale.kg),
        legs,
        Transfer {
            kind: "sale",
            reference: Some(sale.number.to_owned()),
            memo: format!("{} for {}", tonnes(sale.kg), s.amount),
            actor: Some(sale.buyer),
            retirement_id: retirement,
            ..Transfer::default()
        },
    )
    .await
    .map_err(|e| match e {
        LedgerError::Insufficient { account, .. } if account == buyer_money => Stop::Unpaid,
        other => other.into(),
    })?;
    if let (Some(id), Some(number), Some((beneficiary, reason))) =
        (retirement, certificate.as_deref(), sale.retire)
    {
        wallet::record_retirement(
            conn,
            Retirement {
                id,
                number,
                owner: sale.buyer,
                beneficiary,
                reason,
                quantity_kg: sale.kg,
                transfer_id,
            },
        )
        .await?;
    }
    Ok(Settled {
        transfer_id,
        retirement,
    })
}

struct NewOrder<'a> {
    id: Uuid,
    number: &'a str,
    listing_id: Uuid,
    buyer: Uuid,
    seller: Uuid,
    kg: i64,
    price_per_t: Decimal,
    settlement: &'a Settlement,
    key: &'a str,
    retire: Option<(&'a str, &'a str)>,
    status: &'a str,
    payment_id: Option<Uuid>,
    money_hold_id: Option<Uuid>,
    settled: Option<&'a Settled>,
}

async fn insert_order(conn: &mut PgConnection, o: NewOrder<'_>) -> Result<(), sqlx::Error> {
    let s = o.settlement;
    sqlx::query(
        "INSERT INTO orders (id, number, listing_id, buyer_id, seller_id, quantity_kg, price_per_t, amount,
                             buyer_fee, seller_fee, buyer_pays, seller_receives, status, idempotency_key,
                             retire_beneficiary, retire_reason, payment_id, money_hold_id, transfer_id,
                             invoice_number, retirement_id, completed_at, closed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
                 CASE WHEN $13 = 'completed' THEN 'INV-' || lpad(nextval('invoice_number_seq')::text, 6, '0') END,
                 $20, CASE WHEN $13 = 'completed' THEN now() END, CASE WHEN $13 = 'completed' THEN now() END)",
    )
    .bind(o.id)
    .bind(o.number)
    .bind(o.listing_id)
    .bind(o.buyer)
    .bind(o.seller)
    .bind(o.kg)
    .bind(o.price_per_t)
    .bind(s.amount)
    .bind(s.buyer_fee)
    .bind(s.seller_fee)
    .bind(s.buyer_pays)
    .bind(s.seller_receives)
    .bind(o.status)
    .bind(o.key)
    .bind(o.retire.map(|r| r.0))
    .bind(o.retire.map(|r| r.1))
    .bind(o.payment_id)
    .bind(o.money_hold_id)
    .bind(o.settled.map(|s| s.transfer_id))
    .bind(o.settled.and_then(|s| s.retirement))
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct PendingOrder {
    id: Uuid,
    number: String,
    listing_id: Uuid,
    buyer_id: Uuid,
    seller_id: Uuid,
    quantity_kg: i64,
    price_per_t: Decimal,
    amount: Decimal,
    buyer_fee: Decimal,
    seller_fee: Decimal,
    buyer_pays: Decimal,
    seller_receives: Decimal,
    retire_beneficiary: Option<String>,
    retire_reason: Option<String>,
    money_hold_id: Option<Uuid>,
    hold_id: Uuid,
    listing_number: String,
}

async fn lock_pending(
    conn: &mut PgConnection,
    payment: Uuid,
) -> Result<Option<PendingOrder>, sqlx::Error> {
    sqlx::query_as(
        "SELECT o.id, o.number, o.listing_id, o.buyer_id, o.seller_id, o.quantity_kg, o.price_per_t, o.amount,
                o.buyer_fee, o.seller_fee, o.buyer_pays, o.seller_receives, o.retire_beneficiary,
                o.retire_reason, o.money_hold_id, l.hold_id, l.number AS listing_number
         FROM orders o JOIN listings l ON l.id = o.listing_id
         WHERE o.payment_id = $1 AND o.status = 'pending' FOR UPDATE OF o, l",
    )
    .bind(payment)
    .fetch_optional(conn)
    .await
}

/// A checkout's payment succeeded (its money is already in the buyer's wallet): the order
/// completes with the quantity it reserved. Runs inside the payment's transaction.
pub(crate) async fn complete_checkout(
    conn: &mut PgConnection,
    payment: Uuid,
    currency: &str,
) -> Result<Option<String>, AppError> {
    let Some(o) = lock_pending(conn, payment).await? else {
        return Ok(None);
    };
    if let Some(hold) = o.money_hold_id {
        ledger::void(conn, hold, Some(o.buyer_id)).await?;
    }
    sqlx::query(
        "UPDATE listings SET pending_kg = pending_kg - $2, sold_kg = sold_kg + $2, updated_at = now(),
                status = CASE WHEN status = 'active' AND sold_kg + $2 = quantity_kg AND pending_kg - $2 = 0
                              THEN 'sold' ELSE status END,
                closed_at = CASE WHEN status = 'active' AND sold_kg + $2 = quantity_kg AND pending_kg - $2 = 0
                                 THEN now() ELSE closed_at END
         WHERE id = $1",
    )
    .bind(o.listing_id)
    .bind(o.quantity_kg)
    .execute(&mut *conn)
    .await?;
    let settlement = Settlement {
        amount: o.amount,
        buyer_fee: o.buyer_fee,
        seller_fee: o.seller_fee,
        buyer_pays: o.buyer_pays,
        seller_receives: o.seller_receives,
    };
    let retire = o
        .retire_beneficiary
        .as_deref()
        .zip(o.retire_reason.as_deref());
    let _ = o.price_per_t;
    let settled = settle(
        conn,
        Sale {
            order_id: o.id,
            number: &o.number,
            hold_id: o.hold_id,
            buyer: o.buyer_id,
            seller: o.seller_id,
            kg: o.quantity_kg,
            settlement: &settlement,
            retire,
        },
    )
    .await
    .map_err(|e| match e {
        Stop::Retry => AppError::from(LedgerError::Retry),
        // The buyer's own money was held and the payment covers the rest.
        Stop::Unpaid => crate::server::internal("a paid checkout did not cover its order"),
        Stop::Fail(e) => e,
    })?;
    sqlx::query(
        "UPDATE orders SET status = 'completed', transfer_id = $2, retirement_id = $3,
                invoice_number = 'INV-' || lpad(nextval('invoice_number_seq')::text, 6, '0'),
                completed_at = now(), closed_at = now()
         WHERE id = $1",
    )
    .bind(o.id)
    .bind(settled.transfer_id)
    .bind(settled.retirement)
    .execute(&mut *conn)
    .await?;
    tell_seller(
        conn,
        o.seller_id,
        &o.number,
        &o.listing_number,
        o.quantity_kg,
        &settlement,
        currency,
    )
    .await?;
    Ok(Some(o.number))
}

/// A checkout's payment failed or expired: the order is cancelled, the buyer's money released,
/// and the reserved quantity goes back on sale (or to the seller, if the listing has closed).
pub(crate) async fn cancel_checkout(
    conn: &mut PgConnection,
    payment: Uuid,
    reason: &str,
) -> Result<Option<String>, AppError> {
    let Some(o) = lock_pending(conn, payment).await? else {
        return Ok(None);
    };
    if let Some(hold) = o.money_hold_id {
        ledger::void(conn, hold, Some(o.buyer_id)).await?;
    }
    let status: String = sqlx::query_scalar(
        "UPDATE listings SET pending_kg = pending_kg - $2, updated_at = now(),
                quantity_kg = CASE WHEN status = 'active' THEN quantity_kg ELSE quantity_kg - $2 END
         WHERE id = $1 RETURNING status",
    )
    .bind(o.listing_id)
    .bind(o.quantity_kg)
    .fetch_one(&mut *conn)
    .await?;
    if status != "active" {
        ledger::release(
            conn,
            o.hold_id,
            Decimal::from(o.quantity_kg),
            "listing_released",
            None,
        )
        .await?;
    }
    sqlx::query(
        "UPDATE orders SET status = 'cancelled', cancel_reason = $2, closed_at = now() WHERE id = $1",
    )
    .bind(o.id)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(Some(o.number))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Bought,
    Sold,
}

/// The caller's orders on one side, newest first (the latest 200).
pub async fn lines(pool: &PgPool, user: Uuid, side: Side) -> Result<Vec<OrderLine>, AppError> {
    type Row = (
        String,
        String,
        String,
        String,
        i32,
        i64,
        Decimal,
        Decimal,
        String,
        DateTime<Utc>,
        Option<String>,
        Option<String>,
    );
    let (me, other, total) = match side {
        Side::Bought => ("buyer_id", "seller_id", "buyer_pays"),
        Side::Sold => ("seller_id", "buyer_id", "seller_receives"),
    };
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT o.number, l.number, u.full_name, l.region, l.vintage, o.quantity_kg, o.price_per_t,
                o.{total}, o.status, o.created_at, o.invoice_number, r.number
         FROM orders o JOIN listings l ON l.id = o.listing_id JOIN users u ON u.id = o.{other}
         LEFT JOIN retirements r ON r.id = o.retirement_id
         WHERE o.{me} = $1 ORDER BY o.created_at DESC LIMIT 200"
    ))
    .bind(user)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                number,
                listing,
                counterparty,
                region,
                vintage,
                quantity_kg,
                price_per_t,
                total,
                status,
                created_at,
                invoice_number,
                certificate,
            )| OrderLine {
                number,
                listing,
                side: match side {
                    Side::Bought => "bought".into(),
                    Side::Sold => "sold".into(),
                },
                counterparty,
                region,
                vintage,
                quantity_kg,
                price_per_t,
                total,
                status,
                created_at,
                invoice_number,
                certificate,
            },
        )
        .collect())
}

/// One order, for its buyer, its seller or an admin (anyone else: not found).
pub async fn get(state: &AppState, caller: &Caller, number: &str) -> Result<Order, AppError> {
    let row: Option<OrderRow> = sqlx::query_as(
        "SELECT o.number, l.number AS listing, o.buyer_id, o.seller_id, b.full_name AS buyer_name,
                s.full_name AS seller_name, l.region, l.vintage, o.quantity_kg, o.price_per_t, o.amount,
                o.buyer_fee, o.seller_fee, o.buyer_pays, o.seller_receives, o.status, o.created_at,
                o.completed_at, o.invoice_number, r.number AS certificate, o.retire_beneficiary,
                p.number AS payment_number, p.status AS payment_status, o.cancel_reason, o.transfer_id
         FROM orders o JOIN listings l ON l.id = o.listing_id
         JOIN users b ON b.id = o.buyer_id JOIN users s ON s.id = o.seller_id
         LEFT JOIN retirements r ON r.id = o.retirement_id
         LEFT JOIN payments p ON p.id = o.payment_id
         WHERE o.number = $1",
    )
    .bind(number.trim().to_uppercase())
    .fetch_optional(&state.pool)
    .await?;
    let Some(r) = row else {
        return Err(AppError::not_found("The order"));
    };
    let side = if caller.id == r.buyer_id {
        "bought"
    } else if caller.id == r.seller_id {
        "sold"
    } else if caller.role == Role::Admin {
        "admin"
    } else {
        return Err(AppError::not_found("The order"));
    };
    let serials: Vec<(i64, i64, String, i32)> = match r.transfer_id {
        Some(transfer) => sqlx::query_as(
            "SELECT lower(m.serials), upper(m.serials), i.region, i.vintage FROM serial_movements m
             JOIN credit_issuances i ON i.id = m.issuance_id
             WHERE m.transfer_id = $1 ORDER BY lower(m.serials)",
        )
        .bind(transfer)
        .fetch_all(&state.pool)
        .await?,
        None => Vec::new(),
    };
    let dispute = disputes::of_order(&state.pool, &r.number).await?;
    let dispute_until = match (r.completed_at, &dispute, r.status.as_str()) {
        (Some(at), None, "completed") => {
            let window = settings::current(&state.pool).await?.dispute_window_days;
            Some(disputes::deadline(at, window)).filter(|until| *until > Utc::now())
        }
        _ => None,
    };
    Ok(Order {
        dispute,
        dispute_until,
        currency: state.config.payments.currency.clone(),
        number: r.number,
        listing: r.listing,
        side: side.into(),
        buyer_name: r.buyer_name,
        seller_name: r.seller_name,
        region: r.region,
        vintage: r.vintage,
        quantity_kg: r.quantity_kg,
        price_per_t: r.price_per_t,
        amount: r.amount,
        buyer_fee: r.buyer_fee,
        seller_fee: r.seller_fee,
        buyer_pays: r.buyer_pays,
        seller_receives: r.seller_receives,
        status: r.status,
        created_at: r.created_at,
        completed_at: r.completed_at,
        invoice_number: r.invoice_number,
        certificate: r.certificate,
        retire_beneficiary: r.retire_beneficiary,
        payment: r.payment_number.zip(r.payment_status),
        cancel_reason: r.cancel_reason,
        serials: serials
            .into_iter()
            .map(|(a, b, region, vintage)| SerialRange::new(a, b).label(&region, vintage))
            .collect(),
    })
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    number: String,
    listing: String,
    buyer_id: Uuid,
    seller_id: Uuid,
    buyer_name: String,
    seller_name: String,
    region: String,
    vintage: i32,
    quantity_kg: i64,
    price_per_t: Decimal,
    amount: Decimal,
    buyer_fee: Decimal,
    seller_fee: Decimal,
    buyer_pays: Decimal,
    seller_receives: Decimal,
    status: String,
    created_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    invoice_number: Option<String>,
    certificate: Option<String>,
    retire_beneficiary: Option<String>,
    payment_number: Option<String>,
    payment_status: Option<String>,
    cancel_reason: Option<String>,
    transfer_id: Option<i64>,
}

/// The invoice of a completed order as a PDF: parties, the credits and their serials, the
/// amount, both fee lines and the totals.
pub fn invoice_pdf(o: &Order) -> Result<Vec<u8>, AppError> {
    use crate::server::pdf::Document;
    let Some(invoice) = &o.invoice_number else {
        return Err(AppError::conflict(
            "This order has no invoice yet: it is issued when the order completes.",
        ));
    };
    // The PDF's standard fonts have no ₫ sign: write the currency code instead.
    let m = |d: Decimal| format_money(d, &o.currency).replace('₫', &o.currency);
    let mut doc = Document::new(&format!("Invoice {invoice}"));
    doc.line(10.0, true, "EV CARBON EXCHANGE");
    doc.space(6.0);
    doc.line(22.0, true, "Invoice");
    doc.line(14.0, false, invoice);
    doc.space(10.0);
    doc.facts(&[
        ("Order", o.number.clone()),
        (
            "Date",
            o.completed_at
                .unwrap_or(o.created_at)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string(),
        ),
        ("Buyer", o.buyer_name.clone()),
        ("Seller", o.seller_name.clone()),
        ("Listing", o.listing.clone()),
        (
            "Credits",
            format!(
                "{} of {} vintage {} (1 credit = 1 t CO2e)",
                tonnes(o.quantity_kg),
                o.region,
                o.vintage
            ),
        ),
        ("Price", format!("{} per t", m(o.price_per_t))),
    ]);
    doc.space(8.0);
    doc.line(12.0, true, "Buyer's invoice");
    doc.table(
        &[(0.0, "Line"), (300.0, "Amount")],
        &[
            vec![
                format!("{} at {} per t", tonnes(o.quantity_kg), m(o.price_per_t)),
                m(o.amount),
            ],
            vec!["Platform fee (buyer)".into(), m(o.buyer_fee)],
            vec!["Total paid by the buyer".into(), m(o.buyer_pays)],
        ],
    );
    doc.space(8.0);
    doc.line(12.0, true, "Seller's statement");
    doc.table(
        &[(0.0, "Line"), (300.0, "Amount")],
        &[
            vec!["Sale".into(), m(o.amount)],
            vec![
                "Platform fee (seller)".into(),
                format!("-{}", m(o.seller_fee)),
            ],
            vec!["Paid to the seller".into(), m(o.seller_receives)],
        ],
    );
    doc.space(8.0);
    doc.line(12.0, true, "Serial numbers delivered");
    let rows: Vec<Vec<String>> = o.serials.iter().map(|s| vec![s.clone()]).collect();
    doc.table(&[(0.0, "Serials")], &rows);
    if let Some(cert) = &o.certificate {
        doc.space(8.0);
        doc.line(
            11.0,
            false,
            &format!(
                "Retired on purchase for {}: certificate {cert}.",
                o.retire_beneficiary.clone().unwrap_or_default()
            ),
        );
    }
    Ok(doc.finish())
}

/// A won auction lot, sold inside the closing transaction.
pub(crate) struct WonLot<'a> {
    pub listing_id: Uuid,
    pub listing_number: &'a str,
    pub credits_hold_id: Uuid,
    pub seller: Uuid,
    pub buyer: Uuid,
    pub kg: i64,
    pub price_per_t: Decimal,
    pub fees: Fees,
    /// The winner asked to retire the lot at once: (beneficiary, reason).
    pub retire: Option<(&'a str, &'a str)>,
}

/// Sells an auction's whole lot to its winner, exactly as a purchase from the wallet (the
/// caller has released the winner's hold into their wallet in the same transaction): money
/// against credits with both fees, serials to the buyer, order and invoice. Answers the order's
/// id and number.
pub(crate) async fn sell_lot(
    conn: &mut PgConnection,
    lot: WonLot<'_>,
) -> Result<(Uuid, String), AppError> {
    let settlement = Settlement::new(lot.price_per_t, lot.kg, lot.fees);
    let order_id = Uuid::new_v4();
    let number: String = sqlx::query_scalar(
        "UPDATE listings SET sold_kg = quantity_kg, price_per_t = $2, status = 'sold', updated_at = now(),
                closed_at = now()
         WHERE id = $1 AND kind = 'auction' AND status = 'active' AND sold_kg = 0 AND pending_kg = 0
         RETURNING 'ORD-' || lpad(nextval('order_number_seq')::text, 6, '0')",
    )
    .bind(lot.listing_id)
    .bind(lot.price_per_t)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| crate::server::internal("an auction lot that is not open"))?;
    let settled = settle(
        conn,
        Sale {
            order_id,
            number: &number,
            hold_id: lot.credits_hold_id,
            buyer: lot.buyer,
            seller: lot.seller,
            kg: lot.kg,
            settlement: &settlement,
            retire: lot.retire,
        },
    )
    .await
    .map_err(|e| match e {
        Stop::Retry => AppError::from(LedgerError::Retry),
        Stop::Unpaid => crate::server::internal("a winning bid's hold did not cover its lot"),
        Stop::Fail(e) => e,
    })?;
    let key = format!("auction-{}", lot.listing_number);
    insert_order(
        conn,
        NewOrder {
            id: order_id,
            number: &number,
            listing_id: lot.listing_id,
            buyer: lot.buyer,
            seller: lot.seller,
            kg: lot.kg,
            price_per_t: lot.price_per_t,
            settlement: &settlement,
            key: &key,
            retire: lot.retire,
            status: "completed",
            payment_id: None,
            money_hold_id: None,
            settled: Some(&settled),
        },
    )
    .await?;
    Ok((order_id, number))
}
