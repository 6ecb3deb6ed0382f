//! Auctions (SPEC §5.2): listing a lot, bidding with the leader's money held, buy-now, and
//! closing each auction exactly once. The rules are `domain::auction`; this module applies
//! them inside one transaction per bid, with the auction row locked, so concurrent bids are
//! decided one after another in the order they lock it.

use crate::domain::auction::{self, BidProblem, Increment, Outcome, Placed, State, Terms};
use crate::domain::market::{format_money, parse_money, parse_tonnes, tonnes};
use crate::domain::trade::{Fees, Settlement};
use crate::error::{AppError, FieldErrors};
use crate::server::ledger::{self, Asset, LedgerError, SerialClass};
use crate::server::live;
use crate::server::services::orders::{self, WonLot};
use crate::server::AppState;
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
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
    /// How long it runs, in minutes (5 minutes to 30 days).
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

fn optional_money(errors: &mut FieldErrors, field: &str, raw: &str) -> Option<Decimal> {
    if raw.trim().is_empty() {
        None
    } else {
        errors.check(field, parse_money(raw))
    }
}

fn parse(input: &NewAuction<'_>) -> Result<Parsed, AppError> {
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
    let start = errors.check("starting_price", parse_money(input.starting_price));
    let reserve = optional_money(&mut errors, "reserve", input.reserve);
    let increment = optional_money(&mut errors, "increment", input.increment);
    let buy_now = optional_money(&mut errors, "buy_now", input.buy_now);
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
            .filter(|m| (5..=30 * 24 * 60).contains(m))
            .ok_or_else(|| "Run the auction for 5 minutes to 30 days (43,200 minutes).".to_owned()),
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
/// fees and the soft-close window are those of today.
#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn create(
    pool: &PgPool,
    seller: Uuid,
    input: NewAuction<'_>,
) -> Result<String, AppError> {
    let p = parse(&input)?;
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

/// What a bid did, for the bidder.
#[derive(Debug, Clone, PartialEq)]
pub struct BidResult {
    pub leading: bool,
    pub price: Decimal,
    pub version: i64,
    pub ends_at: DateTime<Utc>,
}

/// Places a proxy bid (`max` per tonne, as typed) or, with `buy_now`, buys the lot outright.
#[tracing::instrument(skip(state), err(level = "info"))]
pub async fn bid(
    state: &AppState,
    bidder: Uuid,
    number: &str,
    max: &str,
    buy_now: bool,
) -> Result<BidResult, AppError> {
    let currency = state.config.payments.currency.clone();
    let money = |d: Decimal| format_money(d, &currency);
    let max = if buy_now {
        None
    } else {
        Some(parse_money(max).map_err(|m| AppError::invalid("max", m))?)
    };
    for _ in 0..8 {
        let mut tx = state.pool.begin().await?;
        match place(&mut tx, bidder, number, max, &money).await {
            Ok(r) => {
                if buy_now {
                    // Buy-now ends the auction: it closes in the same transaction.
                    let a: Locked =
                        sqlx::query_as(&format!("{LOCK} WHERE l.number = $1 FOR UPDATE OF a"))
                            .bind(number.trim().to_uppercase())
                            .fetch_one(&mut *tx)
                            .await?;
                    close(&mut tx, &a, &currency).await?;
                }
                tx.commit().await?;
                return Ok(r);
            }
            Err(Fail::Retry) => continue,
            Err(Fail::App(e)) => return Err(e),
        }
    }
    Err(AppError::conflict(
        "The auction is very busy right now. Please try again.",
    ))
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

async fn place(
    conn: &mut PgConnection,
    bidder: Uuid,
    number: &str,
    max: Option<Decimal>,
    money: &impl Fn(Decimal) -> String,
) -> Result<BidResult, Fail> {
    let a: Locked = sqlx::query_as(&format!("{LOCK} WHERE l.number = $1 FOR UPDATE OF a"))
        .bind(number.trim().to_uppercase())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| AppError::not_found("The auction"))?;
    let now = Utc::now();
    let terms = a.terms();
    let before = a.state();
    let placed: Placed = match max {
        Some(max) => auction::place(&terms, &before, bidder, max, now),
        None => auction::buy_now(&terms, &before, bidder, now),
    }
    .map_err(|p| refusal(&p, money))?;
    let offered = placed
        .state
        .leader
        .filter(|l| l.0 == bidder)
        .map_or(max.unwrap_or(placed.state.price), |l| l.1);
    let needed = a.commitment(offered);

    // Money: only the leader holds any. A bid that leads holds the bidder's maximum (a raise
    // replaces their hold); the bidder it displaces is released; a bid that does not lead
    // must still be one its bidder could pay.
    let mut new_hold = a.leader_hold_id;
    if placed.leading {
        if let Some(old) = a.leader_hold_id {
            ledger::void(conn, old, Some(bidder)).await?;
        }
        let hold = ledger::hold(
            conn,
            bidder,
            Asset::Money,
            needed,
            &format!("bid on {}", a.number),
            Some(bidder),
        )
        .await
        .map_err(|e| match e {
            LedgerError::Insufficient { balance, .. } => Fail::App(AppError::InsufficientFunds {
                message: format!(
                    "This bid commits up to {} (the whole lot at your maximum, with the buyer fee) and your wallet has {} available. Top up your wallet or bid lower.",
                    money(needed),
                    money(balance)
                ),
            }),
            other => other.into(),
        })?;
        new_hold = Some(hold);
    } else {
        let available =
            ledger::balance(conn, bidder, Asset::Money, ledger::AccountKind::Available).await?;
        if available < needed {
            return Err(Fail::App(AppError::InsufficientFunds {
                message: format!(
                    "This bid commits up to {} (the whole lot at your maximum, with the buyer fee) and your wallet has {} available. Top up your wallet or bid lower.",
                    money(needed),
                    money(available)
                ),
            }));
        }
    }

    let version = a.version + 1;
    let s = placed.state;
    // The bidder's alias on this auction: their first bid's, or the next one.
    let alias: Option<i32> = sqlx::query_scalar(
        "SELECT alias FROM bids WHERE auction_id = $1 AND bidder_id = $2 LIMIT 1",
    )
    .bind(a.listing_id)
    .bind(bidder)
    .fetch_optional(&mut *conn)
    .await?;
    let (alias, bidders) = match alias {
        Some(n) => (n, a.bidder_count),
        None => (a.bidder_count + 1, a.bidder_count + 1),
    };
    sqlx::query(
        "WITH u AS (
             UPDATE auctions SET price = $2, leader_id = $3, leader_max = $4, leader_hold_id = $5, bid_count = $6,
                    bidder_count = $7, version = $8, ends_at = $9, bought_now = $10
             WHERE listing_id = $1),
         l AS (
             UPDATE listings SET price_per_t = $2, expires_at = $9, updated_at = now() WHERE id = $1),
         b AS (
             INSERT INTO bids (auction_id, bidder_id, alias, kind, max_price, price_after, is_leading, extended_to, version)
             VALUES ($1, $11, $12, $13, $14, $2, $15, $16, $8))
         SELECT 1",
    )
    .bind(a.listing_id)
    .bind(s.price)
    .bind(s.leader.map(|l| l.0))
    .bind(s.leader.map(|l| l.1))
    .bind(new_hold)
    .bind(s.bids as i32)
    .bind(bidders)
    .bind(version)
    .bind(s.ends_at)
    .bind(s.bought_now)
    .bind(bidder)
    .bind(alias)
    .bind(if max.is_some() { "bid" } else { "buy_now" })
    .bind(offered)
    .bind(placed.leading)
    .bind(placed.extended.then_some(s.ends_at))
    .execute(&mut *conn)
    .await?;
    live::announce(conn, "auction", &a.number, version).await?;
    if let Some(outbid) = placed.outbid {
        sqlx::query(
            "INSERT INTO notifications (id, user_id, kind, title, body, link)
             VALUES ($1, $2, 'outbid', $3, $4, $5)",
        )
        .bind(Uuid::new_v4())
        .bind(outbid)
        .bind(format!("You were outbid on {}", a.number))
        .bind(format!(
            "The high bid is now {} per tonne. Your funds are released.",
            money(s.price)
        ))
        .bind(format!("/auctions/{}", a.number))
        .execute(&mut *conn)
        .await?;
    }
    Ok(BidResult {
        leading: placed.leading,
        price: s.price,
        version,
        ends_at: s.ends_at,
    })
}

fn refusal(p: &BidProblem, money: &impl Fn(Decimal) -> String) -> Fail {
    let message = p.message(money);
    Fail::App(match p {
        BidProblem::NotAnAmount
        | BidProblem::TooLow { .. }
        | BidProblem::NotAboveOwnMaximum { .. } => AppError::invalid("max", message),
        BidProblem::Closed | BidProblem::OwnLot | BidProblem::NoBuyNow => {
            AppError::conflict(message)
        }
    })
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
                },
            )
            .await?;
            let total = format_money(price, currency);
            notify(
                conn,
                buyer,
                "auction_won",
                &format!("You won {}", a.number),
                &format!(
                    "{} at {total} per tonne: order {order}.",
                    tonnes(a.quantity_kg)
                ),
                &format!("/orders/{order}"),
            )
            .await?;
            notify(
                conn,
                a.seller_id,
                "auction_sold",
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
            notify(
                conn,
                a.seller_id,
                "auction_unsold",
                &format!("{} ended unsold", a.number),
                &format!("It ended unsold because {why}; the credits are back in your wallet."),
                "/sell",
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
    for loser in losers {
        notify(
            conn,
            loser,
            "auction_lost",
            &format!("{} has ended", a.number),
            "Another bidder won it, or it did not sell. Your funds are released.",
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

async fn notify(
    conn: &mut PgConnection,
    user: Uuid,
    kind: &str,
    title: &str,
    body: &str,
    link: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notifications (id, user_id, kind, title, body, link) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::new_v4())
    .bind(user)
    .bind(kind)
    .bind(title)
    .bind(body)
    .bind(link)
    .execute(conn)
    .await?;
    Ok(())
}
