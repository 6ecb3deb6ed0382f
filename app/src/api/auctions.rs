//! Auctions (endpoints `/api/auctions/…`): listing a lot, the auctions page, one auction with
//! its live state, bids, buy-now and the watch list. The live state also streams, as the same
//! `AuctionLive` JSON, from `GET /live/auctions/{number}` (Server-Sent Events).

use crate::domain::trade::Fees;
use crate::domain::user::Role;
use crate::error::AppError;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::server::services::auctions;
#[cfg(feature = "ssr")]
use crate::server::session;

/// One accepted bid as everyone sees it: by alias, never by name, and never its maximum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BidLine {
    pub alias: i32,
    /// bid or buy_now.
    pub kind: String,
    /// The auction's price right after the bid.
    pub price: Decimal,
    /// Whether the bidder led after it.
    pub leading: bool,
    /// The new end, when the bid came in the soft-close window.
    pub extended_to: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// What every watcher sees of an auction, versioned: a newer version replaces an older one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuctionLive {
    pub number: String,
    pub version: i64,
    /// Taking bids: not closed, not bought, and the end not passed.
    pub open: bool,
    /// sold, no_bids or below_reserve once closed.
    pub outcome: Option<String>,
    /// The high bid per tonne (the starting price before any bid).
    pub price: Decimal,
    pub leader_alias: Option<i32>,
    pub bid_count: i64,
    pub bidder_count: i64,
    pub ends_at: DateTime<Utc>,
    /// How many bids moved the end (soft close).
    pub extensions: i64,
    pub has_reserve: bool,
    pub reserve_met: bool,
    /// While it is still offered.
    pub buy_now_price: Option<Decimal>,
    /// The least a new bidder may offer now.
    pub minimum_bid: Decimal,
    /// The server's clock when this was read, so a browser can count down on server time.
    pub server_now: DateTime<Utc>,
    /// The latest bids, newest first (at most 10).
    pub recent: Vec<BidLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuctionDetail {
    pub currency: String,
    pub live: AuctionLive,
    pub region: String,
    pub vintage: i32,
    pub quantity_kg: i64,
    pub description: String,
    pub seller_name: String,
    pub starting_price: Decimal,
    /// A fixed step, or none for the default table.
    pub increment: Option<Decimal>,
    pub soft_close_secs: i64,
    /// The fees of this sale (those of the day it was listed).
    pub fees: Fees,
    pub created_at: DateTime<Utc>,
    pub viewer: Option<Role>,
    pub is_own: bool,
    /// The caller's alias and highest maximum, once they have bid.
    pub my_alias: Option<i32>,
    pub my_max: Option<Decimal>,
    /// A signed-in buyer's money available.
    pub wallet_available: Option<Decimal>,
    pub watching: bool,
    /// The sale's order, for its buyer, its seller and admins.
    pub order: Option<String>,
    /// Fresh keys for the bid and buy-now forms: a retried submit finds its first result.
    pub bid_key: String,
}

/// One auction on the auctions page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuctionLine {
    pub number: String,
    pub region: String,
    pub vintage: i32,
    pub quantity_kg: i64,
    pub seller_name: String,
    pub price: Decimal,
    pub bid_count: i64,
    pub ends_at: DateTime<Utc>,
    pub open: bool,
    pub outcome: Option<String>,
    pub has_reserve: bool,
    pub reserve_met: bool,
    pub buy_now_price: Option<Decimal>,
    /// The caller's part: leading, outbid, won, lost, or none.
    pub mine: Option<String>,
    pub watching: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuctionList {
    pub currency: String,
    /// open, ending_soon, my_bids, watching, my_lots or ended.
    pub filter: String,
    pub auctions: Vec<AuctionLine>,
    pub server_now: DateTime<Utc>,
    pub viewer: Option<Role>,
}

/// What a bid did, for the bidder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BidPlaced {
    pub auction: String,
    pub leading: bool,
    pub price: Decimal,
    pub version: i64,
    pub ends_at: DateTime<Utc>,
}

/// The auctions, filtered: `open` (default, ending first), `ending_soon` (within the hour),
/// `my_bids`, `watching`, `my_lots` (signed in) or `ended`. Public.
#[server(endpoint = "auctions/list")]
pub async fn list_auctions(filter: Option<String>) -> Result<AuctionList, AppError> {
    session::respond(async {
        let state = session::state();
        let caller = session::caller().await?;
        auctions::list(&state, caller.as_ref(), filter.as_deref().unwrap_or("open")).await
    })
    .await
}

/// One auction with its live state and what the caller may do. Public.
#[server(endpoint = "auctions/get")]
pub async fn get_auction(number: String) -> Result<AuctionDetail, AppError> {
    session::respond(async {
        let state = session::state();
        let caller = session::caller().await?;
        auctions::detail(&state, &number, caller.as_ref()).await
    })
    .await
}

/// Lists a lot of the caller's credits (`class` = `VN:2026`) for auction.
#[server(endpoint = "auctions/create")]
#[allow(clippy::too_many_arguments)]
pub async fn create_auction(
    class: String,
    quantity: String,
    starting_price: String,
    reserve: Option<String>,
    increment: Option<String>,
    buy_now: Option<String>,
    duration_minutes: String,
    description: Option<String>,
) -> Result<String, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner]).await?;
        let number = auctions::create(
            &state.pool,
            &state.config.payments.currency,
            caller.id,
            auctions::NewAuction {
                class: &class,
                quantity: &quantity,
                starting_price: &starting_price,
                reserve: reserve.as_deref().unwrap_or_default(),
                increment: increment.as_deref().unwrap_or_default(),
                buy_now: buy_now.as_deref().unwrap_or_default(),
                duration_minutes: &duration_minutes,
                description: description.as_deref().unwrap_or_default(),
            },
        )
        .await?;
        leptos_axum::redirect(&format!("/auctions/{number}"));
        Ok(number)
    })
    .await
}

/// The retire-on-win fields of a bid form: (beneficiary, reason) when `retire` is on.
#[cfg(feature = "ssr")]
fn retiring<'a>(
    retire: &Option<String>,
    beneficiary: &'a Option<String>,
    reason: &'a Option<String>,
) -> Option<(&'a str, &'a str)> {
    retire
        .as_deref()
        .is_some_and(|r| r == "on" || r == "true")
        .then(|| {
            (
                beneficiary.as_deref().unwrap_or_default(),
                reason.as_deref().unwrap_or_default(),
            )
        })
}

/// Bids up to `max` per tonne for the whole lot (a proxy bid: the platform raises it by the
/// increment only as far as needed). The same `idempotency_key` answers the first result.
/// `retire` = `on` with `beneficiary` and `reason`: if this bidder wins, the lot is retired at
/// once for the beneficiary, with a certificate. A maximum above double both the price
/// suggestion and the auction's current minimum is refused with `confirm_price` unless
/// `confirm_price` = `true`.
#[server(endpoint = "auctions/bid")]
#[allow(clippy::too_many_arguments)]
pub async fn place_bid(
    auction: String,
    max: String,
    idempotency_key: Option<String>,
    retire: Option<String>,
    beneficiary: Option<String>,
    reason: Option<String>,
    confirm_price: Option<String>,
) -> Result<BidPlaced, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::Buyer]).await?;
        let r = auctions::place(
            &state,
            caller.id,
            auctions::BidInput {
                auction: &auction,
                price: &max,
                buy_now: false,
                key: idempotency_key.as_deref(),
                retire: retiring(&retire, &beneficiary, &reason),
                confirm_price: crate::api::market::is_on(&confirm_price),
            },
        )
        .await?;
        leptos_axum::redirect(&format!("/auctions/{}", r.auction));
        Ok(r)
    })
    .await
}

/// Buys the whole lot at the buy-now price, at no more than `expected_price` per tonne
/// (required: the buy-now price the buyer saw; a higher one is refused with `price_changed`):
/// the auction ends and the sale settles at once.
#[server(endpoint = "auctions/buy-now")]
pub async fn buy_now(
    auction: String,
    expected_price: Option<String>,
    idempotency_key: Option<String>,
    retire: Option<String>,
    beneficiary: Option<String>,
    reason: Option<String>,
) -> Result<BidPlaced, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::Buyer]).await?;
        let r = auctions::place(
            &state,
            caller.id,
            auctions::BidInput {
                auction: &auction,
                price: expected_price.as_deref().unwrap_or_default(),
                buy_now: true,
                key: idempotency_key.as_deref(),
                retire: retiring(&retire, &beneficiary, &reason),
                confirm_price: false,
            },
        )
        .await?;
        leptos_axum::redirect(&format!("/auctions/{}", r.auction));
        Ok(r)
    })
    .await
}

/// Adds the auction to the caller's watch list (`watch` = `on`) or takes it off (`off`).
#[server(endpoint = "auctions/watch")]
pub async fn watch_auction(auction: String, watch: String) -> Result<bool, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&Role::ALL).await?;
        let on = match watch.as_str() {
            "on" | "true" => true,
            "off" | "false" => false,
            _ => return Err(AppError::invalid("watch", "Say on or off.")),
        };
        auctions::watch(&state.pool, caller.id, &auction, on).await?;
        leptos_axum::redirect(&format!("/auctions/{}", auction.trim().to_uppercase()));
        Ok(on)
    })
    .await
}
