//! Buying credits (SPEC §5.1): in one transaction the listing's open quantity drops, the buyer
//! pays price × quantity + fee, the seller receives price × quantity − fee, the platform keeps
//! both fees, the serials move to the buyer (or straight into their retired account for a
//! named beneficiary), and the order gets its invoice. A checkout reserves the quantity and the
//! buyer's own money while the gateway collects the rest; the payment's outcome completes or
//! cancels it. Orders of both sides, and the invoice PDF.

use crate::api::market::{Order, OrderLine, Purchase};
use crate::domain::market::{format_money, parse_plain_amount, parse_tonnes, tonnes};
use crate::domain::notification::Kind;
use crate::domain::serial::SerialRange;
use crate::domain::trade::{check_price_seen, check_quantity, Fees, Settlement};
use crate::domain::user::Role;
use crate::error::{AppError, FieldErrors};
use crate::server::ledger::{
    self, AccountKind, Asset, Booking, HoldPost, LedgerError, Leg, Transfer,
};
use crate::server::notify;
use crate::server::services::wallet::{self, Retirement};
use crate::server::services::{disputes, payments, settings};
use crate::server::session::Caller;
use crate::server::AppState;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use uuid::Uuid;

/// The purchase form's fields, as typed.
#[derive(Debug, Clone, Default)]
pub struct BuyInput<'a> {
    pub listing: &'a str,
    /// Tonnes.
    pub quantity: &'a str,
    /// The price per tonne the buyer saw, as the listing answered it ("215000.00"): the
    /// purchase is refused if the price is higher when it is decided. Required.
    pub expected_price: &'a str,
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

pub(crate) fn check_key(key: &str) -> Result<&str, String> {
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

/// The price the buyer saw, which every purchase carries: a script that buys blind would pay
/// whatever the seller set a moment before (a "maximum" it is willing to pay is fine too).
fn check_expected_price(raw: &str) -> Result<Decimal, String> {
    if raw.trim().is_empty() {
        return Err("Send the price per tonne you saw (the listing's price_per_t, e.g. 215000.00): the purchase is refused if the price is higher by then.".into());
    }
    parse_plain_amount(raw)
}

/// The answer to a buyer who saw a lower price than the listing's now.
fn price_changed(seen: Decimal, now: Decimal, currency: &str) -> Option<AppError> {
    check_price_seen(seen, now)
        .err()
        .map(|rose| AppError::PriceChanged {
            message: rose.message(|v| format_money(v, currency)),
            price_per_t: now,
        })
}

/// Buys from a fixed-price listing; answers the order and where the buyer goes next. A
/// purchase paid from the wallet waits for the instance's settlement worker (see
/// `PurchaseQueue`); a checkout runs on its own (its payment comes later). Either is decided
/// under the listing's row lock, price included: a price raised above `expected_price` before
/// then is refused and nothing is written.
#[tracing::instrument(skip(state), err(level = "info"))]
pub async fn buy(state: &AppState, buyer: Uuid, input: BuyInput<'_>) -> Result<Purchase, AppError> {
    let mut errors = FieldErrors::new();
    let kg = errors.check("quantity", parse_tonnes(input.quantity));
    let expected = errors.check("expected_price", check_expected_price(input.expected_price));
    let key = errors.check("idempotency_key", check_key(input.idempotency_key));
    let retire = if input.retire {
        let (b, r) = wallet::check_retirement(&mut errors, input.beneficiary, input.reason);
        Some((b, r))
    } else {
        None
    };
    errors.finish()?;
    let (kg, key) = (kg.expect("checked"), key.expect("checked"));
    let expected = expected.expect("checked");
    let listing = input.listing.trim().to_uppercase();
    if !input.checkout {
        let wanted = Wanted {
            buyer,
            listing,
            kg,
            expected,
            key: key.to_owned(),
            retire: retire.map(|(b, r)| (b.to_owned(), r.to_owned())),
        };
        return state.purchases.place(state, wanted).await;
    }
    for _ in 0..8 {
        match checkout(state, buyer, &listing, kg, expected, key, retire).await {
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

/// The answer to a buyer whose wallet does not cover a purchase.
fn unpaid(buyer_pays: Decimal, currency: &str) -> AppError {
    AppError::InsufficientFunds {
        message: format!(
            "This purchase costs {} and your wallet does not cover it. Top up your wallet or pay at checkout.",
            format_money(buyer_pays, currency)
        ),
    }
}

/// Wallet-paid purchases wait here for this instance's settlement worker. A worker takes
/// every purchase waiting at that moment (up to `BATCH`) and settles them together, in the
/// order they arrived, in one transaction (`settle_batch`): a fixed number of statements and
/// one commit per batch instead of a dozen statements and a commit per purchase. The worker,
/// not the request, drives a batch: a client that goes away does not stall or abandon anyone's
/// purchase (its own is settled as if it had stayed, and its key answers a retry). Batches of
/// other instances, and checkouts, take turns with it on the rows they share (listings, then
/// accounts, each in id order).
#[derive(Clone, Default)]
pub struct PurchaseQueue(Arc<Mutex<Queue>>);

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// Workers settling batches now (at most `WORKERS`).
    working: usize,
}

struct Waiting {
    wanted: Wanted,
    answer: oneshot::Sender<Result<Purchase, AppError>>,
}

/// A wallet-paid purchase as it waits for its turn.
struct Wanted {
    buyer: Uuid,
    listing: String,
    kg: i64,
    /// The price per tonne the buyer saw: at most this is paid.
    expected: Decimal,
    key: String,
    retire: Option<(String, String)>,
}

/// At most this many purchases settle in one transaction.
const BATCH: usize = 128;
/// Batches settled at the same time on an instance. One: what arrives while a batch settles
/// joins the next, so batches grow with the load and each purchase's share of a batch's
/// statements shrinks. Two workers (each batch half the size, and the two waiting for each
/// other's rows) took a fifth more CPU per purchase in `purchase_distinct` for the same rate.
const WORKERS: usize = 1;

impl PurchaseQueue {
    /// How many purchases wait for a worker now (those being settled not counted).
    pub fn waiting(&self) -> usize {
        self.0.lock().expect("purchase queue").waiting.len()
    }

    /// How many workers are settling a batch now.
    pub fn settling(&self) -> usize {
        self.0.lock().expect("purchase queue").working
    }

    async fn place(&self, state: &AppState, wanted: Wanted) -> Result<Purchase, AppError> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut q = self.0.lock().expect("purchase queue");
            q.waiting.push_back(Waiting { wanted, answer });
            let start = q.working < WORKERS;
            if start {
                q.working += 1;
            }
            start
        };
        if start {
            tokio::spawn(work(self.clone(), state.clone()));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(crate::server::internal("a purchase went unanswered")))
    }

    /// A worker's next batch, or None (and that worker done) when nothing waits. Pushes take
    /// the same lock, so no purchase arrives unseen in between.
    fn next_batch(&self) -> Option<Vec<Waiting>> {
        let mut q = self.0.lock().expect("purchase queue");
        if q.waiting.is_empty() {
            q.working -= 1;
            return None;
        }
        let n = q.waiting.len().min(BATCH);
        Some(q.waiting.drain(..n).collect())
    }
}

/// A settlement worker: batch after batch until nothing waits.
async fn work(queue: PurchaseQueue, state: AppState) {
    while let Some(batch) = queue.next_batch() {
        let state = state.clone();
        // Its own task: should settling panic, the batch's buyers get an error (their answers
        // are dropped) and the worker goes on with the next batch.
        let _ = tokio::spawn(async move { settle_batch(&state, batch).await }).await;
    }
}

/// Settles a batch and answers every purchase in it.
async fn settle_batch(state: &AppState, mut batch: Vec<Waiting>) {
    let mut retries = 0;
    loop {
        match settle_once(state, &batch).await {
            Ok(Batch::Done(answers)) => {
                for (w, a) in batch.into_iter().zip(answers) {
                    let _ = w.answer.send(a);
                }
                return;
            }
            // A buyer's wallet changed since it was read: that purchase is refused and the rest
            // settled again.
            Ok(Batch::Unpaid(i, error)) => {
                let _ = batch.remove(i).answer.send(Err(error));
                if batch.is_empty() {
                    return;
                }
            }
            Err(Stop::Retry) if retries < 8 => retries += 1,
            // Whatever failed, it must not fail the others with it: each purchase alone.
            Err(Stop::Fail(_) | Stop::Unpaid) if batch.len() > 1 => {
                for w in batch {
                    Box::pin(settle_batch(state, vec![w])).await;
                }
                return;
            }
            Err(stop) => {
                let error = match stop {
                    Stop::Fail(e) => e,
                    Stop::Retry => {
                        AppError::conflict("The listing is very busy right now. Please try again.")
                    }
                    Stop::Unpaid => crate::server::internal("an unworded unpaid purchase"),
                };
                for w in batch {
                    let _ = w.answer.send(Err(error.clone()));
                }
                return;
            }
        }
    }
}

enum Batch {
    /// Committed: each purchase's answer, in the batch's order.
    Done(Vec<Result<Purchase, AppError>>),
    /// Nothing written: the buyer of the purchase at this index cannot pay for it.
    Unpaid(usize, AppError),
}

/// What became of a purchase while its batch is decided.
enum Outcome {
    Answer(Result<Purchase, AppError>),
    /// It buys: the batch's `n`th sale.
    Sale(usize),
    /// Its key bought something else in this batch (the `n`th sale).
    KeyUsed(usize),
}

/// A purchase the batch accepted, before it has its order number.
struct Deal {
    listing_id: Uuid,
    hold_id: Uuid,
    seller: Uuid,
    price_per_t: Decimal,
    settlement: Settlement,
}

/// Decides a batch in arrival order under the listings' locks — a retried key answers its
/// order, a listing refuses what it cannot sell, a buyer what their wallet cannot pay — then
/// settles every purchase accepted in one ledger post, writes their listings, orders and the
/// sellers' notifications, and commits.
async fn settle_once(state: &AppState, batch: &[Waiting]) -> Result<Batch, Stop> {
    let currency = &state.config.payments.currency;
    // `known` is planned for each batch: `orders` can grow fast from empty, and a generic plan
    // made while it was small scans it whole until it is next analysed.
    let mut tx = state
        .pool
        .begin_with("BEGIN; SET LOCAL plan_cache_mode = force_custom_plan")
        .await?;
    let asks: Vec<(Uuid, &str)> = batch
        .iter()
        .map(|w| (w.wanted.buyer, w.wanted.key.as_str()))
        .collect();
    // The statements after it take arrays and find their rows by key: a plan made for one
    // batch's sizes serves every other (planning each one anew costs more than running it), so
    // `known` also switches the transaction to generic plans.
    let (fees, now, known) = known(&mut tx, &asks, true).await?;
    let numbers: Vec<&str> = batch.iter().map(|w| w.wanted.listing.as_str()).collect();
    let mut listings: HashMap<String, Listing> = sqlx::query_as::<_, Listing>(&format!(
        "{LISTING} WHERE number = ANY($1) ORDER BY id FOR UPDATE"
    ))
    .bind(&numbers)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|l| (l.number.clone(), l))
    .collect();

    let mut available: HashMap<Uuid, Decimal> = HashMap::new();
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(batch.len());
    let mut deals: Vec<(usize, Deal)> = Vec::new();
    for (i, (w, k)) in batch.iter().zip(known).enumerate() {
        let p = &w.wanted;
        if let Some(earlier) = k.earlier {
            outcomes.push(Outcome::Answer(
                match replayed(&mut tx, earlier, &p.listing, p.kg).await {
                    Ok(purchase) => Ok(purchase),
                    Err(Stop::Fail(e)) => Err(e),
                    Err(stop) => return Err(stop),
                },
            ));
            continue;
        }
        // The same key twice in one batch: once the first buys, the second is its retry.
        let twin = batch[..i]
            .iter()
            .zip(&outcomes)
            .find_map(|(o, outcome)| match outcome {
                Outcome::Sale(n) if o.wanted.buyer == p.buyer && o.wanted.key == p.key => {
                    Some((*n, o.wanted.listing == p.listing && o.wanted.kg == p.kg))
                }
                _ => None,
            });
        if let Some((n, same)) = twin {
            outcomes.push(if same {
                Outcome::Sale(n)
            } else {
                Outcome::KeyUsed(n)
            });
            continue;
        }
        let Some(l) = listings.get_mut(&p.listing) else {
            outcomes.push(Outcome::Answer(Err(AppError::not_found("The listing"))));
            continue;
        };
        if let Some(refused) = why_not(l, p, now, currency) {
            outcomes.push(Outcome::Answer(Err(refused)));
            continue;
        }
        let settlement = Settlement::new(l.price_per_t, p.kg, fees);
        let money = available.entry(p.buyer).or_insert(k.available);
        if *money < settlement.buyer_pays {
            outcomes.push(Outcome::Answer(Err(unpaid(
                settlement.buyer_pays,
                currency,
            ))));
            continue;
        }
        *money -= settlement.buyer_pays;
        l.left_kg -= p.kg;
        outcomes.push(Outcome::Sale(deals.len()));
        deals.push((
            i,
            Deal {
                listing_id: l.id,
                hold_id: l.hold_id,
                seller: l.seller_id,
                price_per_t: l.price_per_t,
                settlement,
            },
        ));
    }
    if deals.is_empty() {
        tx.rollback().await?;
        return Ok(Batch::Done(answers(outcomes, &[])));
    }

    // What needs no account comes first: the accounts' rows the ledger locks (a seller's
    // wallet, shared by all their sales) are then held for as few statements as possible.
    // Each listing's quantity sold goes up by what the batch bought from it (a listing with
    // nothing left and nothing waiting for a payment is sold), and the accepted purchases
    // draw their order numbers, in one statement (listings reached by key, as the ledger's
    // holds in `post_unbooked`).
    let mut sold: HashMap<Uuid, i64> = HashMap::new();
    for (i, d) in &deals {
        *sold.entry(d.listing_id).or_default() += batch[*i].wanted.kg;
    }
    let numbers: Vec<String> = sqlx::query_scalar(
        "WITH sold AS (
             UPDATE listings l SET sold_kg = l.sold_kg + n.kg, updated_at = now(),
                    status = CASE WHEN l.sold_kg + l.pending_kg + n.kg = l.quantity_kg AND l.pending_kg = 0
                                  THEN 'sold' ELSE l.status END,
                    closed_at = CASE WHEN l.sold_kg + l.pending_kg + n.kg = l.quantity_kg AND l.pending_kg = 0
                                     THEN now() END
             FROM UNNEST($1::uuid[], $2::bigint[]) AS n(id, kg) WHERE l.id = n.id AND l.id = ANY($1))
         SELECT 'ORD-' || lpad(nextval('order_number_seq')::text, 6, '0') FROM generate_series(1, $3)",
    )
    .bind(sold.keys().copied().collect::<Vec<_>>())
    .bind(sold.values().copied().collect::<Vec<_>>())
    .bind(deals.len() as i32)
    .fetch_all(&mut *tx)
    .await?;
    let ids: Vec<Uuid> = deals.iter().map(|_| Uuid::new_v4()).collect();
    let sales: Vec<Sale<'_>> = deals
        .iter()
        .zip(&numbers)
        .zip(&ids)
        .map(|(((i, d), number), id)| {
            let p = &batch[*i].wanted;
            Sale {
                order_id: *id,
                number,
                hold_id: d.hold_id,
                buyer: p.buyer,
                seller: d.seller,
                kg: p.kg,
                settlement: &d.settlement,
                retire: p.retire.as_ref().map(|(b, r)| (b.as_str(), r.as_str())),
            }
        })
        .collect();
    let notes: Vec<[String; 3]> = sales
        .iter()
        .zip(&deals)
        .map(|(s, (i, _))| {
            sale_note(
                s.number,
                &batch[*i].wanted.listing,
                s.kg,
                s.settlement,
                currency,
            )
        })
        .collect();
    notify::send_all(
        &mut tx,
        &sales
            .iter()
            .zip(&notes)
            .map(|(s, [title, body, link])| notify::Note {
                user: s.seller,
                kind: Kind::ListingSold,
                title,
                body,
                link,
            })
            .collect::<Vec<_>>(),
    )
    .await?;
    let (settled, booking) = match settle_all(&mut tx, &sales).await {
        Ok(settled) => settled,
        Err(refusal) => return unpaid_or(tx, refusal, &deals, currency).await,
    };

    let orders: Vec<NewOrder<'_>> = sales
        .iter()
        .zip(&deals)
        .zip(&settled)
        .map(|((s, (i, d)), settled)| NewOrder {
            id: s.order_id,
            number: s.number,
            listing_id: d.listing_id,
            buyer: s.buyer,
            seller: s.seller,
            kg: s.kg,
            price_per_t: d.price_per_t,
            settlement: s.settlement,
            key: &batch[*i].wanted.key,
            retire: s.retire,
            status: "completed",
            payment_id: None,
            money_hold_id: None,
            settled: Some(settled),
        })
        .collect();
    insert_orders(&mut tx, &orders).await?;
    // The accounts last: locked for this statement and the commit only.
    if let Err(refusal) = book(&mut tx, booking).await {
        return unpaid_or(tx, refusal, &deals, currency).await;
    }
    tx.commit().await?;
    Ok(Batch::Done(answers(outcomes, &numbers)))
}

/// A batch the ledger refused: rolled back, and the buyer who cannot pay named (the batch then
/// settles again without them), or the stop passed on.
async fn unpaid_or(
    tx: Transaction<'_, Postgres>,
    (n, stop): (usize, Stop),
    deals: &[(usize, Deal)],
    currency: &str,
) -> Result<Batch, Stop> {
    tx.rollback().await?;
    match stop {
        Stop::Unpaid => {
            let (i, d) = &deals[n];
            Ok(Batch::Unpaid(*i, unpaid(d.settlement.buyer_pays, currency)))
        }
        stop => Err(stop),
    }
}

/// Each purchase's answer once the batch's orders have their numbers.
fn answers(outcomes: Vec<Outcome>, numbers: &[String]) -> Vec<Result<Purchase, AppError>> {
    outcomes
        .into_iter()
        .map(|o| match o {
            Outcome::Answer(a) => a,
            Outcome::Sale(n) => Ok(Purchase {
                order: numbers[n].clone(),
                next: format!("/orders/{}", numbers[n]),
            }),
            Outcome::KeyUsed(n) => Err(key_used(&numbers[n])),
        })
        .collect()
}

fn key_used(order: &str) -> AppError {
    AppError::conflict(format!(
        "This purchase key was already used for order {order}. Reload the page to buy again."
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

/// A checkout: the quantity is reserved (pending) and, if the wallet does not cover it all,
/// the buyer's own money held while the gateway collects the rest; if it does, the purchase is
/// paid from the wallet at once.
async fn checkout(
    state: &AppState,
    buyer: Uuid,
    listing: &str,
    kg: i64,
    expected: Decimal,
    key: &str,
    retire: Option<(&str, &str)>,
) -> Result<Purchase, Stop> {
    let mut tx = state.pool.begin().await?;
    let fees = match replay(&mut tx, buyer, key, listing, kg).await? {
        Replay::Done(p) => return Ok(p),
        Replay::New(fees) => fees,
    };
    // The quantity leaves the listing in one conditional statement: it never goes below zero,
    // never at a price above the one the buyer saw, and concurrent buyers queue on the row.
    let taken: Option<Taken> = sqlx::query_as(
        "UPDATE listings SET pending_kg = pending_kg + $2, updated_at = now()
         WHERE number = $1 AND status = 'active' AND kind = 'fixed' AND seller_id <> $3
           AND (expires_at IS NULL OR expires_at > now())
           AND quantity_kg - sold_kg - pending_kg >= $2
           AND ($2 >= min_lot_kg OR $2 = quantity_kg - sold_kg - pending_kg)
           AND price_per_t <= $4
         RETURNING id, seller_id, price_per_t, hold_id, 'ORD-' || lpad(nextval('order_number_seq')::text, 6, '0') AS number",
    )
    .bind(listing)
    .bind(kg)
    .bind(buyer)
    .bind(expected)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(taken) = taken else {
        let refused = refusal(
            &mut tx,
            listing,
            buyer,
            kg,
            expected,
            &state.config.payments.currency,
        )
        .await?;
        return Err(Stop::Fail(refused));
    };
    let settlement = Settlement::new(taken.price_per_t, kg, fees);
    let order_id = Uuid::new_v4();
    let number = taken.number;
    // The order, completed from the wallet (see below for one waiting for its payment).
    let order = |settled| NewOrder {
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
        settled,
    };

    let available = ledger::balance(&mut tx, buyer, Asset::Money, AccountKind::Available).await?;
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
        let pending = NewOrder {
            status: "pending",
            payment_id: Some(payment.id),
            money_hold_id: hold,
            ..order(None)
        };
        insert_order(&mut tx, pending).await?;
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
        Stop::Unpaid => Stop::Fail(unpaid(
            settlement.buyer_pays,
            &state.config.payments.currency,
        )),
        other => other,
    })?;
    insert_order(&mut tx, order(Some(&settled))).await?;
    tx.commit().await?;
    Ok(Purchase {
        next: format!("/orders/{number}"),
        order: number,
    })
}

/// What the seller of a completed sale is told: title, body and link.
fn sale_note(order: &str, listing: &str, kg: i64, s: &Settlement, currency: &str) -> [String; 3] {
    [
        format!("Sold {} from {listing}", tonnes(kg)),
        format!(
            "Order {order}: {} is in your wallet ({} for the credits, less the {} seller fee).",
            format_money(s.seller_receives, currency),
            format_money(s.amount, currency),
            format_money(s.seller_fee, currency)
        ),
        format!("/orders/{order}"),
    ]
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
    let [title, body, link] = sale_note(order, listing, kg, s, currency);
    notify::send(conn, seller, Kind::ListingSold, &title, &body, &link).await
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
    let (fees, _, mut known) = known(conn, &[(buyer, key)], false).await?;
    match known.pop().and_then(|k| k.earlier) {
        Some(earlier) => Ok(Replay::Done(replayed(conn, earlier, listing, kg).await?)),
        None => Ok(Replay::New(fees)),
    }
}

/// The order a key made before.
struct Earlier {
    number: String,
    listing: String,
    quantity_kg: i64,
    status: String,
    payment_id: Option<Uuid>,
}

/// What a purchase needs to know before it is decided.
struct Known {
    /// The order its key made before.
    earlier: Option<Earlier>,
    /// Its buyer's available money.
    available: Decimal,
}

/// The fees now, the database's time, and for each (buyer, key) what `Known` says. One round
/// trip; with `then_generic`, the same round trip turns the rest of the transaction to generic
/// plans (this statement itself is planned in the mode the transaction began with).
async fn known(
    conn: &mut PgConnection,
    asks: &[(Uuid, &str)],
    then_generic: bool,
) -> Result<(Fees, DateTime<Utc>, Vec<Known>), sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        buyer_fee_rate: Decimal,
        seller_fee_rate: Decimal,
        now: DateTime<Utc>,
        number: Option<String>,
        listing_number: Option<String>,
        quantity_kg: Option<i64>,
        status: Option<String>,
        payment_id: Option<Uuid>,
        available: Decimal,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "WITH mode AS MATERIALIZED (
             SELECT set_config('plan_cache_mode',
                               CASE WHEN $3 THEN 'force_generic_plan' ELSE current_setting('plan_cache_mode') END,
                               true))
         SELECT s.buyer_fee_rate, s.seller_fee_rate, statement_timestamp() AS now, o.number,
                l.number AS listing_number, o.quantity_kg, o.status, o.payment_id,
                coalesce(a.balance, 0) AS available
         FROM UNNEST($1::uuid[], $2::text[]) WITH ORDINALITY AS w(buyer, key, n)
         CROSS JOIN platform_settings s CROSS JOIN mode
         LEFT JOIN orders o ON o.buyer_id = w.buyer AND o.idempotency_key = w.key
         LEFT JOIN listings l ON l.id = o.listing_id
         LEFT JOIN ledger_accounts a
                ON a.owner_id = w.buyer AND a.asset = 'money' AND a.kind = 'available' AND a.scope IS NULL
         ORDER BY w.n",
    )
    .bind(asks.iter().map(|a| a.0).collect::<Vec<_>>())
    .bind(asks.iter().map(|a| a.1).collect::<Vec<_>>())
    .bind(then_generic)
    .fetch_all(&mut *conn)
    .await?;
    let first = rows.first().ok_or(sqlx::Error::RowNotFound)?;
    let (fees, now) = (
        Fees::new(first.buyer_fee_rate, first.seller_fee_rate),
        first.now,
    );
    let known = rows
        .into_iter()
        .map(|r| Known {
            earlier: match (r.number, r.listing_number, r.quantity_kg, r.status) {
                (Some(number), Some(listing), Some(quantity_kg), Some(status)) => Some(Earlier {
                    number,
                    listing,
                    quantity_kg,
                    status,
                    payment_id: r.payment_id,
                }),
                _ => None,
            },
            available: r.available,
        })
        .collect();
    Ok((fees, now, known))
}

/// A retry's answer: the order its key made (the same key for another purchase is refused).
async fn replayed(
    conn: &mut PgConnection,
    earlier: Earlier,
    listing: &str,
    kg: i64,
) -> Result<Purchase, Stop> {
    if earlier.listing != listing || earlier.quantity_kg != kg {
        return Err(Stop::Fail(key_used(&earlier.number)));
    }
    let next = match (earlier.status.as_str(), earlier.payment_id) {
        ("pending", Some(payment)) => payments::redirect_of(conn, payment).await?,
        _ => format!("/orders/{}", earlier.number),
    };
    Ok(Purchase {
        order: earlier.number,
        next,
    })
}

/// A listing as a purchase finds it.
#[derive(sqlx::FromRow)]
struct Listing {
    id: Uuid,
    number: String,
    seller_id: Uuid,
    kind: String,
    status: String,
    left_kg: i64,
    min_lot_kg: i64,
    expires_at: Option<DateTime<Utc>>,
    price_per_t: Decimal,
    hold_id: Uuid,
}

const LISTING: &str =
    "SELECT id, number, seller_id, kind, status, quantity_kg - sold_kg - pending_kg AS left_kg,
                              min_lot_kg, expires_at, price_per_t, hold_id
                       FROM listings";

/// Why a listing cannot sell what this purchase wants now (at the price its buyer saw), or
/// None if it can.
fn why_not(l: &Listing, p: &Wanted, now: DateTime<Utc>, currency: &str) -> Option<AppError> {
    let (buyer, kg) = (p.buyer, p.kg);
    if l.seller_id == buyer {
        return Some(AppError::conflict("This is your own listing."));
    }
    if l.kind != "fixed" {
        return Some(AppError::conflict(
            "This listing is an auction: place a bid instead.",
        ));
    }
    if l.status == "sold" || (l.status == "active" && l.left_kg == 0) {
        return Some(AppError::conflict(
            "Sold out: every credit of this listing is sold or being paid for.",
        ));
    }
    if l.status != "active" || l.expires_at.is_some_and(|e| e <= now) {
        return Some(AppError::conflict(format!(
            "This listing is {} and no longer for sale.",
            if l.status == "active" {
                "expired"
            } else {
                l.status.as_str()
            }
        )));
    }
    if let Some(changed) = price_changed(p.expected, l.price_per_t, currency) {
        return Some(changed);
    }
    check_quantity(kg, l.min_lot_kg, l.left_kg)
        .err()
        .map(|problem| AppError::invalid("quantity", problem.message()))
}

/// Says exactly why a listing could not sell `kg` to this buyer at `expected` per tonne.
async fn refusal(
    conn: &mut PgConnection,
    listing: &str,
    buyer: Uuid,
    kg: i64,
    expected: Decimal,
    currency: &str,
) -> Result<AppError, sqlx::Error> {
    let row: Option<Listing> = sqlx::query_as(&format!("{LISTING} WHERE number = $1"))
        .bind(listing)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(l) = row else {
        return Ok(AppError::not_found("The listing"));
    };
    let wanted = Wanted {
        buyer,
        listing: listing.to_owned(),
        kg,
        expected,
        key: String::new(),
        retire: None,
    };
    // Nothing in the way: it changed under us, and the buyer can simply try again.
    Ok(
        why_not(&l, &wanted, Utc::now(), currency).unwrap_or_else(|| {
            AppError::conflict("The listing changed a moment ago. Please try again.")
        }),
    )
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

/// Money against credits in one balanced transfer (see `settle_all`).
async fn settle(conn: &mut PgConnection, sale: Sale<'_>) -> Result<Settled, Stop> {
    let (mut settled, booking) = settle_all(conn, &[sale]).await.map_err(|(_, stop)| stop)?;
    book(conn, booking).await.map_err(|(_, stop)| stop)?;
    Ok(settled.remove(0))
}

/// Money against credits, each sale in one balanced transfer, all in one ledger post: the
/// buyer's money to the seller and a fee account, the listing's credits (with their serials)
/// to the buyer's available or retired account; then the retirements (if asked). The ledger's
/// entries and balances are left to `book`, which the caller runs last, right before it
/// commits (see `ledger::post_unbooked`). A buyer who cannot pay stops it (or `book`) at their
/// sale with `Stop::Unpaid` (the caller words it, and must not commit).
async fn settle_all(
    conn: &mut PgConnection,
    sales: &[Sale<'_>],
) -> Result<(Vec<Settled>, SaleBooking), (usize, Stop)> {
    let all = |stop: Stop| (0, stop);
    let wanted: Vec<(Uuid, Asset, AccountKind)> = sales
        .iter()
        .flat_map(|s| {
            let credit_kind = if s.retire.is_some() {
                AccountKind::Retired
            } else {
                AccountKind::Available
            };
            [
                (s.buyer, Asset::Money, AccountKind::Available),
                (s.seller, Asset::Money, AccountKind::Available),
                (s.buyer, Asset::Credit, credit_kind),
            ]
        })
        .collect();
    let (ids, fees) =
        ledger::user_accounts_and_fees(conn, &wanted, sales[0].order_id.as_u128() as u64)
            .await
            .map_err(|e| all(e.into()))?;
    let mut retirements: Vec<Option<(Uuid, String)>> = Vec::with_capacity(sales.len());
    for s in sales {
        retirements.push(match s.retire {
            Some(_) => Some((
                Uuid::new_v4(),
                wallet::certificate_number(conn)
                    .await
                    .map_err(|e| all(e.into()))?,
            )),
            None => None,
        });
    }
    let posts = sales
        .iter()
        .zip(ids.chunks(3))
        .zip(&retirements)
        .map(|((s, accounts), retirement)| {
            let st = s.settlement;
            let mut to = vec![Leg::new(accounts[2], Decimal::from(s.kg))];
            for (account, amount) in [
                (accounts[0], -st.buyer_pays),
                (accounts[1], st.seller_receives),
                (fees, st.fees()),
            ] {
                if !amount.is_zero() {
                    to.push(Leg::new(account, amount));
                }
            }
            HoldPost {
                hold_id: s.hold_id,
                amount: Decimal::from(s.kg),
                to,
                transfer: Transfer {
                    kind: "sale",
                    reference: Some(s.number.to_owned()),
                    memo: format!("{} for {}", tonnes(s.kg), st.amount),
                    actor: Some(s.buyer),
                    retirement_id: retirement.as_ref().map(|r| r.0),
                    ..Transfer::default()
                },
            }
        })
        .collect();
    let buyers: Vec<i64> = ids.chunks(3).map(|a| a[0]).collect();
    let (transfers, booking) = ledger::post_unbooked(conn, posts)
        .await
        .map_err(|e| refused(&buyers, e))?;
    let mut settled = Vec::with_capacity(sales.len());
    for ((s, transfer_id), retirement) in sales.iter().zip(transfers).zip(retirements) {
        if let (Some((id, number)), Some((beneficiary, reason))) = (&retirement, s.retire) {
            wallet::record_retirement(
                conn,
                Retirement {
                    id: *id,
                    number,
                    owner: s.buyer,
                    beneficiary,
                    reason,
                    quantity_kg: s.kg,
                    transfer_id,
                    idempotency_key: None,
                    show_holder: false,
                },
            )
            .await
            .map_err(|e| all(e.into()))?;
        }
        settled.push(Settled {
            transfer_id,
            retirement: retirement.map(|r| r.0),
        });
    }
    Ok((settled, SaleBooking { booking, buyers }))
}

/// The ledger's booking of settled sales, with each sale's buyer's money account.
#[must_use = "the sales have no ledger entries until `book` writes them, before the commit"]
struct SaleBooking {
    booking: Booking,
    buyers: Vec<i64>,
}

/// Writes settled sales' ledger entries (see `settle_all`); the caller commits next.
async fn book(conn: &mut PgConnection, b: SaleBooking) -> Result<(), (usize, Stop)> {
    b.booking
        .book(conn)
        .await
        .map_err(|e| refused(&b.buyers, e))
}

/// The ledger's refusal of the `i`th sale: `Stop::Unpaid` when its buyer (whose money account
/// is `buyers[i]`) cannot pay.
fn refused(buyers: &[i64], (i, e): (usize, LedgerError)) -> (usize, Stop) {
    match e {
        LedgerError::Insufficient { account, .. } if account == buyers[i] => (i, Stop::Unpaid),
        other => (i, other.into()),
    }
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
    insert_orders(conn, &[o]).await
}

/// Writes orders in one statement; a completed one gets the next invoice number.
async fn insert_orders(
    conn: &mut PgConnection,
    orders: &[NewOrder<'_>],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO orders (id, number, listing_id, buyer_id, seller_id, quantity_kg, price_per_t, amount,
                             buyer_fee, seller_fee, buyer_pays, seller_receives, status, idempotency_key,
                             retire_beneficiary, retire_reason, payment_id, money_hold_id, transfer_id,
                             invoice_number, retirement_id, completed_at, closed_at)
         SELECT o.id, o.number, o.listing_id, o.buyer_id, o.seller_id, o.quantity_kg, o.price_per_t, o.amount,
                o.buyer_fee, o.seller_fee, o.buyer_pays, o.seller_receives, o.status, o.idempotency_key,
                o.retire_beneficiary, o.retire_reason, o.payment_id, o.money_hold_id, o.transfer_id,
                CASE WHEN o.status = 'completed' THEN 'INV-' || lpad(nextval('invoice_number_seq')::text, 6, '0') END,
                o.retirement_id,
                CASE WHEN o.status = 'completed' THEN now() END, CASE WHEN o.status = 'completed' THEN now() END
         FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::uuid[], $6::bigint[], $7::numeric[],
                     $8::numeric[], $9::numeric[], $10::numeric[], $11::numeric[], $12::numeric[], $13::text[],
                     $14::text[], $15::text[], $16::text[], $17::uuid[], $18::uuid[], $19::bigint[], $20::uuid[])
              AS o(id, number, listing_id, buyer_id, seller_id, quantity_kg, price_per_t, amount, buyer_fee,
                   seller_fee, buyer_pays, seller_receives, status, idempotency_key, retire_beneficiary,
                   retire_reason, payment_id, money_hold_id, transfer_id, retirement_id)",
    )
    .bind(orders.iter().map(|o| o.id).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.number).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.listing_id).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.buyer).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.seller).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.kg).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.price_per_t).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.settlement.amount).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.settlement.buyer_fee).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.settlement.seller_fee).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.settlement.buyer_pays).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.settlement.seller_receives).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.status).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.key).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.retire.map(|r| r.0)).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.retire.map(|r| r.1)).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.payment_id).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.money_hold_id).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.settled.map(|s| s.transfer_id)).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.settled.and_then(|s| s.retirement)).collect::<Vec<_>>())
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
