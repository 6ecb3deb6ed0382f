//! Auctions (SPEC §5.2): listing a lot, bidding with the leader's money held, buy-now, and
//! closing each auction exactly once. The rules are `domain::auction`; this module applies
//! them with the auction row locked: the bids waiting on an auction are decided together, one
//! after another in the order they arrived, in one transaction (see `BidQueues`).

use crate::api::auctions::{
    AuctionDetail, AuctionLine, AuctionList, AuctionLive, BidLine, BidPlaced,
};
use crate::domain::auction::{self, BidProblem, Increment, Outcome, Placed, State, Terms};
use crate::domain::market::{
    format_money, money_plain, parse_money, parse_plain_amount, parse_tonnes, tonnes,
};
use crate::domain::notification::Kind;
use crate::domain::trade::{Fees, Settlement};
use crate::domain::user::Role;
use crate::error::{AppError, FieldErrors};
use crate::server::ledger::{self, Asset, LedgerError, SerialClass};
use crate::server::live;
use crate::server::notify;
use crate::server::services::orders::{self, WonLot};
use crate::server::session::Caller;
use crate::server::AppState;
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use uuid::Uuid;

/// The listing form of an auction, as typed.
#[derive(Debug, Clone, Default)]
pub struct NewAuction<'a> {
    /// "VN:2026": region and vintage.
    pub class: &'a str,
    /// The lot, in tonnes.
    pub quantity: &'a str,
    pub starting_price: &'a str,
    /// Optional.
    pub reserve: &'a str,
    /// Optional: empty means the default table.
    pub increment: &'a str,
    /// Optional.
    pub buy_now: &'a str,
    /// How long it runs, in minutes (1 minute to 30 days).
    pub duration_minutes: &'a str,
    pub description: &'a str,
}

struct Parsed {
    region: String,
    vintage: i32,
    kg: i64,
    start: Decimal,
    reserve: Option<Decimal>,
    increment: Option<Decimal>,
    buy_now: Option<Decimal>,
    minutes: i64,
    description: String,
}

fn optional_money(
    errors: &mut FieldErrors,
    field: &str,
    raw: &str,
    currency: &str,
) -> Option<Decimal> {
    if raw.trim().is_empty() {
        None
    } else {
        errors.check(field, parse_money(raw, currency))
    }
}

fn parse(input: &NewAuction<'_>, currency: &str) -> Result<Parsed, AppError> {
    let mut errors = FieldErrors::new();
    let class = errors.check(
        "class",
        input
            .class
            .trim()
            .split_once(':')
            .and_then(|(r, v)| Some((r.to_owned(), v.parse::<i32>().ok()?)))
            .filter(|(r, _)| !r.is_empty())
            .ok_or_else(|| "Choose which credits to auction.".to_owned()),
    );
    let kg = errors.check("quantity", parse_tonnes(input.quantity));
    let start = errors.check(
        "starting_price",
        parse_money(input.starting_price, currency),
    );
    let reserve = optional_money(&mut errors, "reserve", input.reserve, currency);
    let increment = optional_money(&mut errors, "increment", input.increment, currency);
    let buy_now = optional_money(&mut errors, "buy_now", input.buy_now, currency);
    if let (Some(start), Some(reserve)) = (start, reserve) {
        if reserve < start {
            errors.add("reserve", "The reserve cannot be below the starting price.");
        }
    }
    if let (Some(start), Some(buy_now)) = (start, buy_now) {
        if buy_now <= start {
            errors.add(
                "buy_now",
                "The buy-now price has to be above the starting price.",
            );
        } else if reserve.is_some_and(|r| buy_now < r) {
            errors.add("buy_now", "The buy-now price cannot be below the reserve.");
        }
    }
    let minutes = errors.check(
        "duration_minutes",
        input
            .duration_minutes
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|m| (1..=30 * 24 * 60).contains(m))
            .ok_or_else(|| "Run the auction for 1 minute to 30 days (43,200 minutes).".to_owned()),
    );
    let description = input.description.trim().to_owned();
    if description.chars().count() > 2000 {
        errors.add(
            "description",
            "Keep the description under 2,000 characters.",
        );
    }
    errors.finish()?;
    let (region, vintage) = class.expect("checked");
    Ok(Parsed {
        region,
        vintage,
        kg: kg.expect("checked"),
        start: start.expect("checked"),
        reserve,
        increment,
        buy_now,
        minutes: minutes.expect("checked"),
        description,
    })
}

/// Lists a lot for auction; answers its listing number. The credits are reserved at once, the
/// fees and the soft-close window are those of today; amounts are read in `currency`.
#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn create(
    pool: &PgPool,
    currency: &str,
    seller: Uuid,
    input: NewAuction<'_>,
) -> Result<String, AppError> {
    let p = parse(&input, currency)?;
    let mut tx = pool.begin().await?;
    let id = Uuid::new_v4();
    let number = format!(
        "LST-{:06}",
        ledger::next_in_sequence(&mut tx, "listing_number_seq").await?
    );
    let (hold, account) = ledger::hold_credits(
        &mut tx,
        seller,
        p.kg,
        id,
        SerialClass {
            region: &p.region,
            vintage: p.vintage,
        },
        &format!("auction {number}"),
        Some(seller),
    )
    .await
    .map_err(|e| match e {
        LedgerError::Insufficient { balance, .. } => AppError::invalid(
            "quantity",
            format!(
                "You have {} of {} {} credits available to auction.",
                tonnes(i64::try_from(balance.trunc()).unwrap_or(0)),
                p.region,
                p.vintage
            ),
        ),
        other => other.into(),
    })?;
    let ends_at = Utc::now() + Duration::minutes(p.minutes);
    sqlx::query(
        "INSERT INTO listings (id, number, seller_id, kind, region, vintage, listed_kg, quantity_kg, price_per_t,
                               min_lot_kg, description, expires_at, hold_id, account_id)
         VALUES ($1, $2, $3, 'auction', $4, $5, $6, $6, $7, $6, $8, $9, $10, $11)",
    )
    .bind(id)
    .bind(&number)
    .bind(seller)
    .bind(&p.region)
    .bind(p.vintage)
    .bind(p.kg)
    .bind(p.start)
    .bind(&p.description)
    .bind(ends_at)
    .bind(hold)
    .bind(account)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO auctions (listing_id, starting_price, reserve_price, increment, buy_now_price, soft_close_secs,
                               buyer_fee_rate, seller_fee_rate, ends_at, price)
         SELECT $1, $2, $3, $4, $5, s.soft_close_secs, s.buyer_fee_rate, s.seller_fee_rate, $6, $2
         FROM platform_settings s",
    )
    .bind(id)
    .bind(p.start)
    .bind(p.reserve)
    .bind(p.increment)
    .bind(p.buy_now)
    .bind(ends_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(number)
}

/// An auction row, locked for a bid or the close.
#[derive(sqlx::FromRow)]
struct Locked {
    listing_id: Uuid,
    number: String,
    seller_id: Uuid,
    quantity_kg: i64,
    hold_id: Uuid,
    starting_price: Decimal,
    reserve_price: Option<Decimal>,
    increment: Option<Decimal>,
    buy_now_price: Option<Decimal>,
    soft_close_secs: i32,
    buyer_fee_rate: Decimal,
    seller_fee_rate: Decimal,
    ends_at: DateTime<Utc>,
    price: Decimal,
    leader_id: Option<Uuid>,
    leader_max: Option<Decimal>,
    leader_hold_id: Option<Uuid>,
    bid_count: i32,
    bidder_count: i32,
    version: i64,
    bought_now: bool,
    closed_at: Option<DateTime<Utc>>,
}

const LOCK: &str = "SELECT a.listing_id, l.number, l.seller_id, l.quantity_kg, l.hold_id, a.starting_price,
        a.reserve_price, a.increment, a.buy_now_price, a.soft_close_secs, a.buyer_fee_rate, a.seller_fee_rate,
        a.ends_at, a.price, a.leader_id, a.leader_max, a.leader_hold_id, a.bid_count, a.bidder_count,
        a.version, a.bought_now, a.closed_at
    FROM auctions a JOIN listings l ON l.id = a.listing_id";

impl Locked {
    fn terms(&self) -> Terms {
        Terms {
            seller: self.seller_id,
            starting_price: self.starting_price,
            reserve: self.reserve_price,
            increment: self.increment.map_or(Increment::Table, Increment::Fixed),
            buy_now: self.buy_now_price,
            soft_close_secs: i64::from(self.soft_close_secs),
        }
    }

    fn state(&self) -> State {
        State {
            price: self.price,
            leader: self.leader_id.zip(self.leader_max),
            bids: i64::from(self.bid_count),
            ends_at: self.ends_at,
            bought_now: self.bought_now || self.closed_at.is_some(),
        }
    }

    fn fees(&self) -> Fees {
        Fees::new(self.buyer_fee_rate, self.seller_fee_rate)
    }

    /// What a bidder with maximum `max` must be able to pay: the whole lot at `max` plus the
    /// buyer fee.
    fn commitment(&self, max: Decimal) -> Decimal {
        Settlement::new(max, self.quantity_kg, self.fees()).buyer_pays
    }
}

/// Places a proxy bid (`max` per tonne, as typed) or, with `buy_now`, buys the lot outright
/// at no more than `max` (the buy-now price the buyer saw, written plain: "400000.00"). A retry
/// with the same `key` answers the first bid's result and places nothing. A bid made by code
/// (the demo, tests): its maximum is taken as meant, with no confirmation against the price
/// suggestion — forms go through `place`.
pub async fn bid(
    state: &AppState,
    bidder: Uuid,
    number: &str,
    max: &str,
    buy_now: bool,
    key: Option<&str>,
) -> Result<BidPlaced, AppError> {
    let input = BidInput {
        auction: number,
        price: max,
        buy_now,
        key,
        retire: None,
        confirm_price: true,
    };
    place(state, bidder, input).await
}

/// The bid and buy-now forms, as typed.
#[derive(Debug, Clone, Default)]
pub struct BidInput<'a> {
    pub auction: &'a str,
    /// A bid: the maximum per tonne, as typed. Buy-now: the buy-now price per tonne the buyer
    /// saw, written plain ("400000.00"); a higher one is refused.
    pub price: &'a str,
    pub buy_now: bool,
    pub key: Option<&'a str>,
    /// (beneficiary, reason): should this bidder win, the lot is retired at once for the
    /// beneficiary; their latest bid's choice holds.
    pub retire: Option<(&'a str, &'a str)>,
    /// The bidder confirmed a maximum far above the price suggestion (`confirm_price=true`).
    pub confirm_price: bool,
}

/// Places a bid or buys now (see `BidInput`). A maximum far above both the price suggestion
/// and the auction's current minimum (`Suggestion::far_bid`) is refused with
/// `AppError::ConfirmPrice` unless confirmed.
#[tracing::instrument(skip(state), err(level = "info"))]
pub async fn place(
    state: &AppState,
    bidder: Uuid,
    input: BidInput<'_>,
) -> Result<BidPlaced, AppError> {
    let key = input.key.map(str::trim).filter(|k| !k.is_empty());
    if key.is_some_and(|k| k.chars().count() > 100 || k.chars().any(char::is_control)) {
        return Err(AppError::invalid(
            "idempotency_key",
            "The idempotency key is at most 100 characters, without control characters.",
        ));
    }
    let currency = state.config.payments.currency.clone();
    let money = |d: Decimal| format_money(d, &currency);
    let mut errors = FieldErrors::new();
    let offer = if input.buy_now {
        errors
            .check("expected_price", buy_now_seen(input.price))
            .map(|seen| Offer::BuyNow { seen })
    } else {
        errors
            .check("max", parse_money(input.price, &currency))
            .map(Offer::Bid)
    };
    let retire = input
        .retire
        .map(|(b, r)| crate::server::services::wallet::check_retirement(&mut errors, b, r));
    errors.finish()?;
    let offer = offer.expect("checked");
    let number = input.auction.trim().to_uppercase();
    // Before joining the auction's queue: a retry answers from its stored bid, and a bid that
    // is already too low is refused (the price and the minimum only ever rise, so it would be
    // refused in turn too) — neither waits.
    let pre = pre_read(&state.pool, bidder, &number, key).await?;
    if let Some(Pre {
        replay: Some(r), ..
    }) = pre
    {
        return Ok(r);
    }
    if let (Some(p), Offer::Bid(max)) = (&pre, offer) {
        if p.open && p.seller != bidder {
            let minimum = auction::minimum_bid(
                p.starting_price,
                p.increment.map_or(Increment::Table, Increment::Fixed),
                p.price,
                p.has_leader,
            );
            if !p.i_lead {
                let check = auction::check_bid(
                    p.starting_price,
                    p.increment.map_or(Increment::Table, Increment::Fixed),
                    p.price,
                    p.has_leader,
                    None,
                    max,
                );
                if let Err(problem @ BidProblem::TooLow { .. }) = check {
                    return Err(refusal(&problem, &money));
                }
            }
            if !input.confirm_price {
                confirm_far_bid(state, p, &number, max, minimum, &input, key).await?;
            }
        }
    }
    let bid = NewBid {
        bidder,
        offer,
        key: key.map(str::to_owned),
        retire: retire.map(|(b, r)| (b.to_owned(), r.to_owned())),
    };
    state.bids.place(state, &number, bid).await
}

/// The buy-now price the buyer saw, which a buy-now carries (as `market/buy` does).
fn buy_now_seen(raw: &str) -> Result<Decimal, String> {
    if raw.trim().is_empty() {
        return Err("Send the buy-now price per tonne you saw (e.g. 400000.00): buying is refused if the price is higher.".into());
    }
    parse_plain_amount(raw)
}

/// Refuses a maximum far above the suggestion and the auction's minimum (see
/// `Suggestion::far_bid`) with `AppError::ConfirmPrice`, carrying the bid form to resubmit.
/// The suggestion is read only for a maximum above double the minimum, so ordinary bidding
/// never pays for it.
async fn confirm_far_bid(
    state: &AppState,
    p: &Pre,
    number: &str,
    max: Decimal,
    minimum: Decimal,
    input: &BidInput<'_>,
    key: Option<&str>,
) -> Result<(), AppError> {
    if max <= minimum * Decimal::from(crate::domain::pricing::FAR_FACTOR) {
        return Ok(());
    }
    let currency = &state.config.payments.currency;
    let mut conn = state.pool.acquire().await?;
    let suggestion =
        crate::server::services::pricing::suggestion(&mut conn, &p.region, p.vintage, currency)
            .await?;
    if !suggestion.far_bid(max, minimum) {
        return Ok(());
    }
    let mut resubmit = vec![
        ("auction".to_owned(), number.to_owned()),
        ("max".to_owned(), money_plain(max, currency)),
    ];
    if let Some(key) = key {
        resubmit.push(("idempotency_key".to_owned(), key.to_owned()));
    }
    if let Some((beneficiary, reason)) = input.retire {
        resubmit.extend([
            ("retire".to_owned(), "on".to_owned()),
            ("beneficiary".to_owned(), beneficiary.trim().to_owned()),
            ("reason".to_owned(), reason.trim().to_owned()),
        ]);
    }
    resubmit.push(("confirm_price".to_owned(), "true".to_owned()));
    Err(AppError::ConfirmPrice {
        message: suggestion.bid_warning(max, minimum, |v| format_money(v, currency)),
        price_per_t: max,
        suggested_per_t: suggestion.price_per_t,
        resubmit,
    })
}

/// The bids of this instance waiting for their auction. Bids on one auction are decided in
/// batches by one worker task per busy auction: it takes every bid waiting at that moment and
/// decides them one after another, in the order they arrived, in one transaction — so a busy
/// auction costs one lock, one hold swap and one commit per batch rather than per bid, and
/// bids are served first come, first served. The worker, not the request, drives a batch: a
/// client that goes away does not stall or abandon anyone's bid (its own is decided as if it
/// had stayed). Instances still take turns on the auction's row lock.
#[derive(Clone, Default)]
pub struct BidQueues(Arc<Mutex<HashMap<String, Arc<Mutex<BidQueue>>>>>);

#[derive(Default)]
struct BidQueue {
    waiting: Vec<Waiting>,
    /// A worker is deciding this auction's bids.
    working: bool,
}

struct Waiting {
    bid: NewBid,
    answer: oneshot::Sender<Result<BidPlaced, AppError>>,
}

/// A bid as it waits for its turn.
struct NewBid {
    bidder: Uuid,
    offer: Offer,
    key: Option<String>,
    retire: Option<(String, String)>,
}

/// What a bidder offers.
#[derive(Debug, Clone, Copy)]
enum Offer {
    /// A proxy bid up to this maximum per tonne.
    Bid(Decimal),
    /// The buy-now price, provided it is not above the one the buyer saw.
    BuyNow { seen: Decimal },
}

impl BidQueues {
    /// How many bids wait for their turn on this auction now (the batch being decided not
    /// counted).
    pub fn waiting(&self, number: &str) -> usize {
        let queues = self.0.lock().expect("bid queues");
        queues
            .get(number)
            .map_or(0, |q| q.lock().expect("bid queue").waiting.len())
    }

    async fn place(
        &self,
        state: &AppState,
        number: &str,
        bid: NewBid,
    ) -> Result<BidPlaced, AppError> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut queues = self.0.lock().expect("bid queues");
            let queue = queues.entry(number.to_owned()).or_default();
            let mut q = queue.lock().expect("bid queue");
            q.waiting.push(Waiting { bid, answer });
            !std::mem::replace(&mut q.working, true)
        };
        if start {
            tokio::spawn(work(self.clone(), state.clone(), number.to_owned()));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(crate::server::internal("a bid went unanswered")))
    }

    /// The next batch of this auction, or None (and the auction's queue forgotten) when no
    /// bid waits. Pushes take the same locks, so no bid arrives unseen in between.
    fn next_batch(&self, number: &str) -> Option<Vec<Waiting>> {
        let mut queues = self.0.lock().expect("bid queues");
        let queue = queues.get(number)?;
        let batch = std::mem::take(&mut queue.lock().expect("bid queue").waiting);
        if batch.is_empty() {
            queues.remove(number);
            None
        } else {
            Some(batch)
        }
    }
}

/// An auction's worker: decides batch after batch until no bid waits.
async fn work(queues: BidQueues, state: AppState, number: String) {
    while let Some(batch) = queues.next_batch(&number) {
        let (state, number) = (state.clone(), number.clone());
        // Its own task: should deciding panic, the batch's bidders get an error (their answers
        // are dropped) and the worker goes on with the next batch.
        let _ = tokio::spawn(async move { decide(&state, &number, batch).await }).await;
    }
}

enum Fail {
    Retry,
    App(AppError),
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        if ledger::is_retryable(&e) {
            Fail::Retry
        } else {
            Fail::App(e.into())
        }
    }
}

impl From<LedgerError> for Fail {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Retry => Fail::Retry,
            other => Fail::App(other.into()),
        }
    }
}

impl From<AppError> for Fail {
    fn from(e: AppError) -> Self {
        Fail::App(e)
    }
}

/// Decides a batch and answers every bid in it.
async fn decide(state: &AppState, number: &str, mut batch: Vec<Waiting>) {
    let mut retries = 0;
    loop {
        match decide_once(state, number, &batch).await {
            Ok(Decided::Done(answers)) => {
                for (w, a) in batch.into_iter().zip(answers) {
                    let _ = w.answer.send(a);
                }
                return;
            }
            // The leader the batch ends with cannot cover their maximum any more (their wallet
            // changed since it was read): that bid is refused and the rest decided again.
            Ok(Decided::Unaffordable(i, error)) => {
                let _ = batch.remove(i).answer.send(Err(error));
            }
            Err(Fail::Retry) if retries < 8 => retries += 1,
            // Whatever failed, it must not fail the others with it: each bid alone.
            Err(Fail::App(_)) if batch.len() > 1 => {
                for w in batch {
                    Box::pin(decide(state, number, vec![w])).await;
                }
                return;
            }
            Err(fail) => {
                let error = match fail {
                    Fail::App(e) => e,
                    Fail::Retry => {
                        AppError::conflict("The auction is very busy right now. Please try again.")
                    }
                };
                for w in batch {
                    let _ = w.answer.send(Err(error.clone()));
                }
                return;
            }
        }
    }
}

enum Decided {
    /// Committed: each bid's answer, in the batch's order.
    Done(Vec<Result<BidPlaced, AppError>>),
    /// Nothing written: the bid at this index set the final leader's maximum, and its bidder
    /// cannot cover it.
    Unaffordable(usize, AppError),
}

/// What the batch needs to know of each bidder, read under the auction's lock.
struct Known {
    available: Decimal,
    alias: Option<i32>,
    /// The result of the bid this key placed before.
    replay: Option<BidPlaced>,
}

/// Each bid's bidder's available money and alias, and the bid its key placed before; what the
/// auction's current leader holds; and the database's time, the batch's. One round trip.
async fn known(
    conn: &mut PgConnection,
    a: &Locked,
    batch: &[Waiting],
) -> Result<(Vec<Known>, Decimal, DateTime<Utc>), sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        available: Decimal,
        alias: Option<i32>,
        leading: Option<bool>,
        price: Option<Decimal>,
        version: Option<i64>,
        leader_held: Decimal,
        now: DateTime<Utc>,
    }
    let bidders: Vec<Uuid> = batch.iter().map(|w| w.bid.bidder).collect();
    let keys: Vec<Option<&str>> = batch.iter().map(|w| w.bid.key.as_deref()).collect();
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT coalesce(m.balance, 0) AS available,
                (SELECT b.alias FROM bids b WHERE b.auction_id = $1 AND b.bidder_id = w.bidder LIMIT 1) AS alias,
                k.is_leading AS leading, k.price_after AS price, k.version,
                coalesce((SELECT h.remaining FROM ledger_holds h WHERE h.id = $4 AND h.status = 'pending'), 0) AS leader_held,
                statement_timestamp() AS now
         FROM UNNEST($2::uuid[], $3::text[]) WITH ORDINALITY w(bidder, key, n)
         LEFT JOIN ledger_accounts m
                ON m.owner_id = w.bidder AND m.asset = 'money' AND m.kind = 'available' AND m.scope IS NULL
         LEFT JOIN bids k ON k.auction_id = $1 AND k.bidder_id = w.bidder AND k.idempotency_key = w.key
         ORDER BY w.n",
    )
    .bind(a.listing_id)
    .bind(&bidders)
    .bind(&keys)
    .bind(a.leader_hold_id)
    .fetch_all(conn)
    .await?;
    let (leader_held, now) = rows
        .first()
        .map_or((Decimal::ZERO, Utc::now()), |r| (r.leader_held, r.now));
    let known = rows
        .into_iter()
        .map(|r| Known {
            available: r.available,
            alias: r.alias,
            replay: placed_before(&a.number, a.ends_at, r.leading, r.price, r.version),
        })
        .collect();
    Ok((known, leader_held, now))
}

/// The result of a bid placed before, from its stored columns (all present, or no such bid).
fn placed_before(
    number: &str,
    ends_at: DateTime<Utc>,
    leading: Option<bool>,
    price: Option<Decimal>,
    version: Option<i64>,
) -> Option<BidPlaced> {
    Some(BidPlaced {
        auction: number.to_owned(),
        leading: leading?,
        price: price?,
        version: version?,
        ends_at,
    })
}

/// The accepted bids of a batch and the notifications they send, as the columns they are
/// written in.
#[derive(Default)]
struct Accepted {
    bidders: Vec<Uuid>,
    aliases: Vec<i32>,
    kinds: Vec<&'static str>,
    maxes: Vec<Decimal>,
    prices: Vec<Decimal>,
    leading: Vec<bool>,
    extended_to: Vec<Option<DateTime<Utc>>>,
    versions: Vec<i64>,
    keys: Vec<Option<String>>,
    beneficiaries: Vec<Option<String>>,
    reasons: Vec<Option<String>>,
    notes: Vec<Note>,
}

/// A notification a batch sends (see `notify`).
struct Note {
    who: Uuid,
    kind: Kind,
    title: String,
    body: String,
}

/// One attempt at a batch: the auction locked, every bid decided by `domain::auction` in turn
/// (refusals and replays answered without writing), then one hold swap for the leader the
/// batch ends with, and every accepted bid, the auction's new state and the notifications
/// written in one statement.
async fn decide_once(state: &AppState, number: &str, batch: &[Waiting]) -> Result<Decided, Fail> {
    let currency = &state.config.payments.currency;
    let money = |d: Decimal| format_money(d, currency);
    let insufficient = |needed: Decimal, available: Decimal| {
        AppError::InsufficientFunds {
        message: format!(
            "This bid commits up to {} (the whole lot at your maximum, with the buyer fee) and your wallet has {} available. Top up your wallet or bid lower.",
            money(needed),
            money(available)
        ),
    }
    };
    let mut tx = state.pool.begin().await?;
    let a: Locked = sqlx::query_as(&format!("{LOCK} WHERE l.number = $1 FOR UPDATE OF a"))
        .bind(number)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| AppError::not_found("The auction"))?;
    let (known, leader_held, now) = known(&mut tx, &a, batch).await?;
    let terms = a.terms();
    let before = a.state();
    let mut s = before.clone();
    let mut version = a.version;
    let mut bidders = a.bidder_count;
    let mut aliases: HashMap<Uuid, i32> = HashMap::new();
    let mut last_lead = None;
    let mut w = Accepted::default();
    let link = format!("/auctions/{}", a.number);
    let mut answers: Vec<Result<BidPlaced, AppError>> = Vec::with_capacity(batch.len());
    for (i, (item, k)) in batch.iter().zip(&known).enumerate() {
        let b = &item.bid;
        if let Some(r) = &k.replay {
            answers.push(Ok(r.clone()));
            continue;
        }
        // The same key twice in one batch: the second answers the first's result.
        if let Some(key) = &b.key {
            let twin = batch[..i]
                .iter()
                .position(|o| o.bid.bidder == b.bidder && o.bid.key.as_ref() == Some(key));
            if let Some(j) = twin {
                answers.push(answers[j].clone());
                continue;
            }
        }
        let (placed, bid_max) = match b.offer {
            Offer::Bid(max) => (auction::place(&terms, &s, b.bidder, max, now), Some(max)),
            Offer::BuyNow { seen } => (auction::buy_now(&terms, &s, b.bidder, seen, now), None),
        };
        let placed: Placed = match placed {
            Ok(placed) => placed,
            Err(problem) => {
                answers.push(Err(refusal(&problem, &money)));
                continue;
            }
        };
        let offered = placed
            .state
            .leader
            .filter(|l| l.0 == b.bidder)
            .map_or(bid_max.unwrap_or(placed.state.price), |l| l.1);
        // Only the leader holds money: a bid must be one its bidder could pay. The leader the
        // batch began with counts what the auction holds for them: by this bid they either
        // raise their own maximum or no longer lead, and either way it is theirs again. The
        // leader the batch ends with is held below, under the ledger's locks.
        let needed = a.commitment(offered);
        let mut available = k.available;
        if a.leader_id == Some(b.bidder) {
            available += leader_held;
        }
        if available < needed {
            answers.push(Err(insufficient(needed, available)));
            continue;
        }
        if placed.leading {
            last_lead = Some(i);
        }
        version += 1;
        let alias = *aliases.entry(b.bidder).or_insert_with(|| {
            k.alias.unwrap_or_else(|| {
                bidders += 1;
                bidders
            })
        });
        let after = placed.state.clone();
        w.bidders.push(b.bidder);
        w.aliases.push(alias);
        w.kinds
            .push(if bid_max.is_some() { "bid" } else { "buy_now" });
        w.maxes.push(offered);
        w.prices.push(after.price);
        w.leading.push(placed.leading);
        w.extended_to.push(placed.extended.then_some(after.ends_at));
        w.versions.push(version);
        w.keys.push(b.key.clone());
        w.beneficiaries.push(b.retire.as_ref().map(|r| r.0.clone()));
        w.reasons.push(b.retire.as_ref().map(|r| r.1.clone()));
        // The bidder who no longer leads is told (nothing of theirs stays held).
        if let Some(outbid) = placed.outbid {
            w.notes.push(Note {
                who: outbid,
                kind: Kind::Outbid,
                title: format!("You were outbid on {}", a.number),
                body: format!(
                    "The high bid is now {} per tonne. Your funds are released.",
                    money(after.price)
                ),
            });
        }
        // The seller hears of every bid (one notification per auction while unread).
        w.notes.push(Note {
            who: a.seller_id,
            kind: Kind::NewBid,
            title: format!("New bid on {}", a.number),
            body: format!(
                "The high bid is {} per tonne after {} bid{}{}.",
                money(after.price),
                after.bids,
                if after.bids == 1 { "" } else { "s" },
                if placed.extended {
                    "; the end moved later (soft close)"
                } else {
                    ""
                }
            ),
        });
        answers.push(Ok(BidPlaced {
            auction: a.number.clone(),
            leading: placed.leading,
            price: after.price,
            version,
            ends_at: after.ends_at,
        }));
        s = after;
    }
    if w.versions.is_empty() {
        tx.rollback().await?;
        return Ok(Decided::Done(answers));
    }
    // Outbid and leading again within the batch: the leader is not told they were outbid.
    if let Some((leader, _)) = s.leader {
        w.notes
            .retain(|n| !(n.who == leader && n.kind == Kind::Outbid));
    }

    // Money: the leader the batch ends with holds their maximum in place of the hold it began
    // with (voided and placed in the same two statements); leaders in between held nothing
    // that outlived the batch.
    let mut hold = a.leader_hold_id;
    if s.leader != before.leader {
        let (leader, max) = s.leader.expect("a bid that leads leaves a leader");
        let needed = a.commitment(max);
        match ledger::rehold(
            &mut tx,
            a.leader_hold_id,
            leader,
            needed,
            &format!("bid on {}", a.number),
            Some(leader),
        )
        .await
        {
            Ok(h) => hold = Some(h),
            Err(LedgerError::Insufficient { balance, .. }) => {
                tx.rollback().await?;
                let i = last_lead.expect("a new leader comes from a bid that leads");
                return Ok(Decided::Unaffordable(i, insufficient(needed, balance)));
            }
            Err(e) => return Err(e.into()),
        }
    }

    sqlx::query(
        "WITH u AS (
             UPDATE auctions SET price = $2, leader_id = $3, leader_max = $4, leader_hold_id = $5, bid_count = $6,
                    bidder_count = $7, version = $8, ends_at = $9, bought_now = $10
             WHERE listing_id = $1),
         l AS (
             UPDATE listings SET price_per_t = $2, expires_at = $9, updated_at = now() WHERE id = $1),
         b AS (
             INSERT INTO bids (auction_id, bidder_id, alias, kind, max_price, price_after, is_leading, extended_to, version,
                               idempotency_key, retire_beneficiary, retire_reason, created_at)
             SELECT $1, n.*, $11 FROM UNNEST($12::uuid[], $13::int[], $14::text[], $15::numeric[], $16::numeric[],
                                             $17::bool[], $18::timestamptz[], $19::bigint[], $20::text[], $21::text[],
                                             $22::text[]) AS n),
         n AS (
             SELECT notify(x.who, x.kind, x.title, x.body, $23)
             FROM UNNEST($24::uuid[], $25::text[], $26::text[], $27::text[]) AS x(who, kind, title, body))
         SELECT pg_notify('live', $28), (SELECT count(*) FROM n)",
    )
    .bind(a.listing_id)
    .bind(s.price)
    .bind(s.leader.map(|l| l.0))
    .bind(s.leader.map(|l| l.1))
    .bind(hold)
    .bind(s.bids as i32)
    .bind(bidders)
    .bind(version)
    .bind(s.ends_at)
    .bind(s.bought_now)
    .bind(now)
    .bind(&w.bidders)
    .bind(&w.aliases)
    .bind(&w.kinds)
    .bind(&w.maxes)
    .bind(&w.prices)
    .bind(&w.leading)
    .bind(&w.extended_to)
    .bind(&w.versions)
    .bind(&w.keys)
    .bind(&w.beneficiaries)
    .bind(&w.reasons)
    .bind(&link)
    .bind(w.notes.iter().map(|n| n.who).collect::<Vec<_>>())
    .bind(w.notes.iter().map(|n| n.kind.as_str()).collect::<Vec<_>>())
    .bind(w.notes.iter().map(|n| n.title.as_str()).collect::<Vec<_>>())
    .bind(w.notes.iter().map(|n| n.body.as_str()).collect::<Vec<_>>())
    // Announced to every instance when this commits.
    .bind(live::payload("auction", &a.number, version))
    .execute(&mut *tx)
    .await
    .map_err(|e| match &e {
        // A key placed a moment ago elsewhere: decided again, it answers that bid's result.
        sqlx::Error::Database(d) if d.constraint() == Some("bids_idempotency_idx") => Fail::Retry,
        _ => Fail::from(e),
    })?;
    if s.bought_now && !before.bought_now {
        // Buy-now ends the auction: it closes in the same transaction.
        let a: Locked = sqlx::query_as(&format!("{LOCK} WHERE l.number = $1 FOR UPDATE OF a"))
            .bind(number)
            .fetch_one(&mut *tx)
            .await?;
        close(&mut tx, &a, currency).await?;
    }
    tx.commit().await?;
    Ok(Decided::Done(answers))
}

/// An auction as a bidder finds it before bidding (no lock: it may be a moment old).
struct Pre {
    seller: Uuid,
    region: String,
    vintage: i32,
    open: bool,
    starting_price: Decimal,
    increment: Option<Decimal>,
    price: Decimal,
    has_leader: bool,
    i_lead: bool,
    /// The result of the bid this key placed before.
    replay: Option<BidPlaced>,
}

/// The auction `number` (trimmed and upper-cased) as this bidder finds it, without a lock.
async fn pre_read(
    pool: &PgPool,
    bidder: Uuid,
    number: &str,
    key: Option<&str>,
) -> Result<Option<Pre>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        number: String,
        seller_id: Uuid,
        region: String,
        vintage: i32,
        open: bool,
        starting_price: Decimal,
        increment: Option<Decimal>,
        price: Decimal,
        has_leader: bool,
        i_lead: bool,
        ends_at: DateTime<Utc>,
        replay_leading: Option<bool>,
        replay_price: Option<Decimal>,
        replay_version: Option<i64>,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT l.number, l.seller_id, l.region, l.vintage, (a.closed_at IS NULL AND NOT a.bought_now AND a.ends_at > now()) AS open,
                a.starting_price, a.increment, a.price, a.leader_id IS NOT NULL AS has_leader,
                a.leader_id IS NOT DISTINCT FROM $2 AS i_lead, a.ends_at,
                k.is_leading AS replay_leading, k.price_after AS replay_price, k.version AS replay_version
         FROM auctions a JOIN listings l ON l.id = a.listing_id
         LEFT JOIN bids k ON k.auction_id = a.listing_id AND k.bidder_id = $2 AND k.idempotency_key = $3
         WHERE l.number = $1",
    )
    .bind(number)
    .bind(bidder)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| Pre {
        replay: placed_before(
            &r.number,
            r.ends_at,
            r.replay_leading,
            r.replay_price,
            r.replay_version,
        ),
        seller: r.seller_id,
        region: r.region,
        vintage: r.vintage,
        open: r.open,
        starting_price: r.starting_price,
        increment: r.increment,
        price: r.price,
        has_leader: r.has_leader,
        i_lead: r.i_lead,
    }))
}

fn refusal(p: &BidProblem, money: &impl Fn(Decimal) -> String) -> AppError {
    let message = p.message(money);
    match p {
        BidProblem::NotAnAmount
        | BidProblem::TooLow { .. }
        | BidProblem::NotAboveOwnMaximum { .. } => AppError::invalid("max", message),
        BidProblem::Closed | BidProblem::OwnLot | BidProblem::NoBuyNow => {
            AppError::conflict(message)
        }
        BidProblem::BuyNowPriceRose(rose) => AppError::PriceChanged {
            message,
            price_per_t: rose.now,
        },
    }
}

/// Closes every auction whose time is up (or that was bought now), each in its own
/// transaction; two instances never close the same one (row locks, SKIP LOCKED, and a closed
/// auction cannot change). Answers how many it closed.
pub async fn close_due(state: &AppState) -> Result<usize, AppError> {
    let mut closed = 0;
    loop {
        let mut tx = state.pool.begin().await?;
        let due: Option<Locked> = sqlx::query_as(&format!(
            "{LOCK} WHERE a.closed_at IS NULL AND (a.ends_at <= now() OR a.bought_now)
             ORDER BY a.ends_at LIMIT 1 FOR UPDATE OF a SKIP LOCKED"
        ))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(a) = due else {
            return Ok(closed);
        };
        close(&mut tx, &a, &state.config.payments.currency).await?;
        tx.commit().await?;
        closed += 1;
    }
}

async fn close(conn: &mut PgConnection, a: &Locked, currency: &str) -> Result<(), AppError> {
    let terms = a.terms();
    let outcome = auction::outcome(&terms, &a.state());
    if let Some(hold) = a.leader_hold_id {
        ledger::void(conn, hold, None).await?;
    }
    let (label, order_id) = match outcome {
        Outcome::Sold { buyer, price } => {
            // The winner's latest bid says whether to retire the lot at once.
            let retire: Option<(Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT retire_beneficiary, retire_reason FROM bids
                 WHERE auction_id = $1 AND bidder_id = $2 ORDER BY version DESC LIMIT 1",
            )
            .bind(a.listing_id)
            .bind(buyer)
            .fetch_optional(&mut *conn)
            .await?;
            let retire = retire.and_then(|(b, r)| b.zip(r));
            let (order_id, order) = orders::sell_lot(
                conn,
                WonLot {
                    listing_id: a.listing_id,
                    listing_number: &a.number,
                    credits_hold_id: a.hold_id,
                    seller: a.seller_id,
                    buyer,
                    kg: a.quantity_kg,
                    price_per_t: price,
                    fees: a.fees(),
                    retire: retire.as_ref().map(|(b, r)| (b.as_str(), r.as_str())),
                },
            )
            .await?;
            let total = format_money(price, currency);
            notify::send(
                conn,
                buyer,
                Kind::AuctionWon,
                &format!("You won {}", a.number),
                &format!(
                    "{} at {total} per tonne: order {order}.",
                    tonnes(a.quantity_kg)
                ),
                &format!("/orders/{order}"),
            )
            .await?;
            notify::send(
                conn,
                a.seller_id,
                Kind::ListingSold,
                &format!("{} sold", a.number),
                &format!(
                    "{} at {total} per tonne: order {order}.",
                    tonnes(a.quantity_kg)
                ),
                &format!("/orders/{order}"),
            )
            .await?;
            ("sold", Some(order_id))
        }
        Outcome::NoBids | Outcome::BelowReserve => {
            ledger::release(
                conn,
                a.hold_id,
                Decimal::from(a.quantity_kg),
                "listing_released",
                None,
            )
            .await?;
            sqlx::query(
                "UPDATE listings SET quantity_kg = 0, status = 'expired', updated_at = now(), closed_at = now()
                 WHERE id = $1",
            )
            .bind(a.listing_id)
            .execute(&mut *conn)
            .await?;
            let (label, why) = if outcome == Outcome::NoBids {
                ("no_bids", "there were no bids")
            } else {
                ("below_reserve", "the bidding did not reach your reserve")
            };
            notify::send(
                conn,
                a.seller_id,
                Kind::ListingEnded,
                &format!("{} ended unsold", a.number),
                &format!("It ended unsold because {why}; the credits are back in your wallet."),
                &format!("/auctions/{}", a.number),
            )
            .await?;
            (label, None)
        }
    };
    // Everyone else who bid: it is over.
    let losers: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT bidder_id FROM bids WHERE auction_id = $1 AND bidder_id IS DISTINCT FROM $2",
    )
    .bind(a.listing_id)
    .bind(match outcome {
        Outcome::Sold { buyer, .. } => Some(buyer),
        _ => None,
    })
    .fetch_all(&mut *conn)
    .await?;
    let why = match outcome {
        Outcome::Sold { price, .. } => format!(
            "Another bidder won it at {} per tonne. Your funds are released.",
            format_money(price, currency)
        ),
        Outcome::NoBids | Outcome::BelowReserve => {
            "It ended unsold: the bidding did not reach the seller's reserve. Your funds are released."
                .to_owned()
        }
    };
    for loser in losers {
        notify::send(
            conn,
            loser,
            Kind::AuctionLost,
            &format!("{} has ended", a.number),
            &why,
            &format!("/auctions/{}", a.number),
        )
        .await?;
    }
    sqlx::query(
        "UPDATE auctions SET outcome = $2, order_id = $3, leader_hold_id = NULL, closed_at = now(),
                version = $4
         WHERE listing_id = $1",
    )
    .bind(a.listing_id)
    .bind(label)
    .bind(order_id)
    .bind(a.version + 1)
    .execute(&mut *conn)
    .await?;
    live::announce(conn, "auction", &a.number, a.version + 1).await?;
    Ok(())
}

/// The public state of one auction, as every watcher sees it.
pub async fn live_view(
    conn: &mut PgConnection,
    number: &str,
) -> Result<Option<AuctionLive>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        listing_id: Uuid,
        number: String,
        version: i64,
        closed_at: Option<DateTime<Utc>>,
        bought_now: bool,
        outcome: Option<String>,
        price: Decimal,
        ends_at: DateTime<Utc>,
        bid_count: i32,
        bidder_count: i32,
        has_reserve: bool,
        reserve_met: bool,
        buy_now_price: Option<Decimal>,
        starting_price: Decimal,
        increment: Option<Decimal>,
        leader_alias: Option<i32>,
        extensions: i64,
        server_now: DateTime<Utc>,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT a.listing_id, l.number, a.version, a.closed_at, a.bought_now, a.outcome, a.price, a.ends_at,
                a.bid_count, a.bidder_count, a.reserve_price IS NOT NULL AS has_reserve,
                COALESCE(a.leader_max >= a.reserve_price, a.leader_id IS NOT NULL) AS reserve_met,
                a.buy_now_price, a.starting_price, a.increment,
                (SELECT b.alias FROM bids b WHERE b.auction_id = a.listing_id AND b.bidder_id = a.leader_id LIMIT 1)
                    AS leader_alias,
                (SELECT count(*) FROM bids b WHERE b.auction_id = a.listing_id AND b.extended_to IS NOT NULL)
                    AS extensions,
                now() AS server_now
         FROM auctions a JOIN listings l ON l.id = a.listing_id
         WHERE l.number = $1",
    )
    .bind(number.trim().to_uppercase())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let recent: Vec<(
        i32,
        String,
        Decimal,
        bool,
        Option<DateTime<Utc>>,
        DateTime<Utc>,
    )> = sqlx::query_as(
        "SELECT alias, kind, price_after, is_leading, extended_to, created_at FROM bids
             WHERE auction_id = $1 ORDER BY version DESC LIMIT 10",
    )
    .bind(r.listing_id)
    .fetch_all(&mut *conn)
    .await?;
    let open = r.closed_at.is_none() && !r.bought_now && r.ends_at > r.server_now;
    let has_leader = r.leader_alias.is_some();
    Ok(Some(AuctionLive {
        number: r.number,
        version: r.version,
        open,
        outcome: r.outcome,
        price: r.price,
        leader_alias: r.leader_alias,
        bid_count: i64::from(r.bid_count),
        bidder_count: i64::from(r.bidder_count),
        ends_at: r.ends_at,
        extensions: r.extensions,
        has_reserve: r.has_reserve,
        reserve_met: r.reserve_met,
        buy_now_price: r.buy_now_price.filter(|b| open && r.price < *b),
        minimum_bid: auction::minimum_bid(
            r.starting_price,
            r.increment.map_or(Increment::Table, Increment::Fixed),
            r.price,
            has_leader,
        ),
        server_now: r.server_now,
        recent: recent
            .into_iter()
            .map(|(alias, kind, price, leading, extended_to, at)| BidLine {
                alias,
                kind,
                price,
                leading,
                extended_to,
                at,
            })
            .collect(),
    }))
}

/// One auction for its page: the lot, its terms, the live state and the caller's part in it.
pub async fn detail(
    state: &AppState,
    number: &str,
    caller: Option<&Caller>,
) -> Result<AuctionDetail, AppError> {
    let mut conn = state.pool.acquire().await?;
    let live = live_view(&mut conn, number)
        .await?
        .ok_or_else(|| AppError::not_found("The auction"))?;
    #[derive(sqlx::FromRow)]
    struct Row {
        listing_id: Uuid,
        seller_id: Uuid,
        region: String,
        vintage: i32,
        listed_kg: i64,
        description: String,
        seller_name: String,
        starting_price: Decimal,
        increment: Option<Decimal>,
        soft_close_secs: i32,
        buyer_fee_rate: Decimal,
        seller_fee_rate: Decimal,
        created_at: DateTime<Utc>,
        order_number: Option<String>,
        buyer_id: Option<Uuid>,
    }
    let r: Row = sqlx::query_as(
        "SELECT l.id AS listing_id, l.seller_id, l.region, l.vintage, l.listed_kg, l.description,
                u.full_name AS seller_name, a.starting_price, a.increment, a.soft_close_secs,
                a.buyer_fee_rate, a.seller_fee_rate, l.created_at, o.number AS order_number,
                o.buyer_id
         FROM auctions a JOIN listings l ON l.id = a.listing_id JOIN users u ON u.id = l.seller_id
         LEFT JOIN orders o ON o.id = a.order_id
         WHERE l.number = $1",
    )
    .bind(&live.number)
    .fetch_one(&mut *conn)
    .await?;
    let me = caller.map(|c| c.id);
    // The caller's part: their alias and highest maximum once they have bid, and the watch list.
    let (my_alias, my_max, watching): (Option<i32>, Option<Decimal>, bool) = match me {
        Some(id) => {
            sqlx::query_as(
                "SELECT min(alias), max(max_price),
                    EXISTS (SELECT 1 FROM auction_watchers WHERE auction_id = $1 AND user_id = $2)
             FROM bids WHERE auction_id = $1 AND bidder_id = $2",
            )
            .bind(r.listing_id)
            .bind(id)
            .fetch_one(&mut *conn)
            .await?
        }
        None => (None, None, false),
    };
    let wallet_available = match caller {
        Some(c) if c.role == Role::Buyer => Some(
            ledger::balance(
                &mut conn,
                c.id,
                Asset::Money,
                ledger::AccountKind::Available,
            )
            .await?,
        ),
        _ => None,
    };
    let may_see_order = caller
        .is_some_and(|c| c.role == Role::Admin || Some(c.id) == r.buyer_id || c.id == r.seller_id);
    Ok(AuctionDetail {
        currency: state.config.payments.currency.clone(),
        live,
        region: r.region,
        vintage: r.vintage,
        quantity_kg: r.listed_kg,
        description: r.description,
        seller_name: r.seller_name,
        starting_price: r.starting_price,
        increment: r.increment,
        soft_close_secs: i64::from(r.soft_close_secs),
        fees: Fees::new(r.buyer_fee_rate, r.seller_fee_rate),
        created_at: r.created_at,
        viewer: caller.map(|c| c.role),
        is_own: me == Some(r.seller_id),
        my_alias,
        my_max,
        wallet_available,
        watching,
        order: r.order_number.filter(|_| may_see_order),
        bid_key: Uuid::new_v4().to_string(),
    })
}

/// The auctions page: `open` (ending first), `ending_soon` (within the hour), `my_bids`,
/// `watching`, `my_lots` or `ended` (the last 100 closed).
pub async fn list(
    state: &AppState,
    caller: Option<&Caller>,
    filter: &str,
) -> Result<AuctionList, AppError> {
    let filter = filter.trim();
    let condition = match filter {
        "" | "open" => "a.closed_at IS NULL",
        "ending_soon" => "a.closed_at IS NULL AND a.ends_at <= now() + interval '1 hour'",
        "ended" => "a.closed_at IS NOT NULL",
        "my_bids" => "EXISTS (SELECT 1 FROM bids b WHERE b.auction_id = a.listing_id AND b.bidder_id = $1)",
        "watching" => {
            "EXISTS (SELECT 1 FROM auction_watchers w WHERE w.auction_id = a.listing_id AND w.user_id = $1)"
        }
        "my_lots" => "l.seller_id = $1",
        _ => {
            return Err(AppError::invalid(
                "filter",
                "Choose open, ending_soon, my_bids, watching, my_lots or ended.",
            ))
        }
    };
    let personal = matches!(filter, "my_bids" | "watching" | "my_lots");
    if personal && caller.is_none() {
        return Err(AppError::Unauthenticated);
    }
    let order = match filter {
        "ended" => "a.closed_at DESC",
        _ => "(a.closed_at IS NOT NULL), a.ends_at",
    };
    #[derive(sqlx::FromRow)]
    struct Row {
        number: String,
        region: String,
        vintage: i32,
        listed_kg: i64,
        seller_name: String,
        price: Decimal,
        bid_count: i32,
        ends_at: DateTime<Utc>,
        open: bool,
        outcome: Option<String>,
        has_reserve: bool,
        reserve_met: bool,
        buy_now_price: Option<Decimal>,
        i_lead: bool,
        i_bid: bool,
        i_bought: bool,
        watching: bool,
        server_now: DateTime<Utc>,
    }
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT l.number, l.region, l.vintage, l.listed_kg, u.full_name AS seller_name, a.price, a.bid_count,
                a.ends_at, (a.closed_at IS NULL AND NOT a.bought_now AND a.ends_at > now()) AS open, a.outcome,
                a.reserve_price IS NOT NULL AS has_reserve,
                COALESCE(a.leader_max >= a.reserve_price, a.leader_id IS NOT NULL) AS reserve_met,
                a.buy_now_price,
                a.leader_id IS NOT DISTINCT FROM $1 AND $1 IS NOT NULL AS i_lead,
                EXISTS (SELECT 1 FROM bids b WHERE b.auction_id = a.listing_id AND b.bidder_id = $1) AS i_bid,
                EXISTS (SELECT 1 FROM orders o WHERE o.id = a.order_id AND o.buyer_id = $1) AS i_bought,
                EXISTS (SELECT 1 FROM auction_watchers w WHERE w.auction_id = a.listing_id AND w.user_id = $1)
                    AS watching,
                now() AS server_now
         FROM auctions a JOIN listings l ON l.id = a.listing_id JOIN users u ON u.id = l.seller_id
         WHERE {condition}
         ORDER BY {order}
         LIMIT 100"
    ))
    .bind(caller.map(|c| c.id))
    .fetch_all(&state.pool)
    .await?;
    let server_now = rows.first().map_or_else(Utc::now, |r| r.server_now);
    Ok(AuctionList {
        currency: state.config.payments.currency.clone(),
        filter: if filter.is_empty() { "open" } else { filter }.to_owned(),
        viewer: caller.map(|c| c.role),
        server_now,
        auctions: rows
            .into_iter()
            .map(|r| {
                let closed = r.outcome.is_some();
                let mine = match (r.i_bid, closed) {
                    (false, _) => None,
                    (true, false) if r.i_lead => Some("leading"),
                    (true, false) => Some("outbid"),
                    (true, true) if r.i_bought => Some("won"),
                    (true, true) => Some("lost"),
                };
                AuctionLine {
                    number: r.number,
                    region: r.region,
                    vintage: r.vintage,
                    quantity_kg: r.listed_kg,
                    seller_name: r.seller_name,
                    price: r.price,
                    bid_count: i64::from(r.bid_count),
                    ends_at: r.ends_at,
                    open: r.open,
                    buy_now_price: r.buy_now_price.filter(|b| r.open && r.price < *b),
                    outcome: r.outcome,
                    has_reserve: r.has_reserve,
                    reserve_met: r.reserve_met,
                    mine: mine.map(str::to_owned),
                    watching: r.watching,
                }
            })
            .collect(),
    })
}

/// Puts an auction on the user's watch list or takes it off (either is idempotent).
pub async fn watch(pool: &PgPool, user: Uuid, number: &str, on: bool) -> Result<(), AppError> {
    let id: Uuid = sqlx::query_scalar(
        "SELECT a.listing_id FROM auctions a JOIN listings l ON l.id = a.listing_id WHERE l.number = $1",
    )
    .bind(number.trim().to_uppercase())
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| AppError::not_found("The auction"))?;
    let sql = if on {
        "INSERT INTO auction_watchers (auction_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM auction_watchers WHERE auction_id = $1 AND user_id = $2"
    };
    sqlx::query(sql).bind(id).bind(user).execute(pool).await?;
    Ok(())
}
