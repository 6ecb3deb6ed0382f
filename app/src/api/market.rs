//! The marketplace (endpoints `/api/market/…`, `/api/listings/…`, `/api/orders/…`): search,
//! listing detail, purchase, the seller's listings and the orders of both sides.

use crate::domain::trade::Fees;
use crate::error::AppError;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::domain::user::Role;
#[cfg(feature = "ssr")]
use crate::server::services::{listings, market, orders};
#[cfg(feature = "ssr")]
use crate::server::session;

/// Credits of one region and vintage the seller has available.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditClass {
    pub region: String,
    pub vintage: i32,
    pub available_kg: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListingLine {
    pub number: String,
    /// fixed or auction.
    pub kind: String,
    pub region: String,
    pub vintage: i32,
    /// First listed, listed now, sold, waiting for payment, open to buy (kg).
    pub listed_kg: i64,
    pub quantity_kg: i64,
    pub sold_kg: i64,
    pub pending_kg: i64,
    pub available_kg: i64,
    pub price_per_t: Decimal,
    pub min_lot_kg: i64,
    pub description: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// active, sold, cancelled, expired, suspended.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub seller_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    pub currency: String,
    pub listings: Vec<ListingLine>,
    /// Matching listings, counted up to 1,000 (`capped` when there are more).
    pub total: i64,
    pub capped: bool,
    pub page: i64,
    pub has_next: bool,
    /// What the filters offer.
    pub regions: Vec<String>,
    pub vintages: Vec<i32>,
}

/// One issuance behind a listing's credits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub request: String,
    pub period: String,
    pub trips: i64,
    pub distance_km: Decimal,
    pub methodology: String,
    pub verifier: String,
    pub approved_at: DateTime<Utc>,
    /// Of this listing's credits, how many come from this issuance, and their serials.
    pub kg: i64,
    pub serials: Vec<String>,
}

/// Trades of comparable credits (same region and vintage) in one week.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricePoint {
    pub week: String,
    pub average_per_t: Decimal,
    pub trades: i64,
    pub kg: i64,
}

/// One month of one region and vintage's trades.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    pub month: String,
    /// Weighted by quantity; None in a month without trades.
    pub average_per_t: Option<Decimal>,
    pub trades: i64,
    pub kg: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassTrend {
    pub region: String,
    pub vintage: i32,
    /// The last 12 months, oldest first.
    pub points: Vec<TrendPoint>,
    pub chart_svg: String,
    pub suggestion: crate::domain::pricing::Suggestion,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trends {
    pub currency: String,
    pub classes: Vec<ClassTrend>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListingDetail {
    pub currency: String,
    pub listing: ListingLine,
    pub seller_since: DateTime<Utc>,
    pub evidence: Vec<Evidence>,
    pub history: Vec<PricePoint>,
    /// The history as an SVG line chart (empty without trades).
    pub history_svg: String,
    pub fees: Fees,
    /// The caller's own listing (they cannot buy it).
    pub is_own: bool,
    /// The signed-in caller's role (none for a visitor).
    pub viewer: Option<crate::domain::user::Role>,
    /// A signed-in buyer's money available, to say up front whether the wallet covers it.
    pub wallet_available: Option<Decimal>,
    /// A fresh key for the purchase form: a retried submit carries it and finds its order.
    pub purchase_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    pub number: String,
    pub listing: String,
    /// bought or sold: the caller's side.
    pub side: String,
    pub counterparty: String,
    pub region: String,
    pub vintage: i32,
    pub quantity_kg: i64,
    pub price_per_t: Decimal,
    /// What the caller paid (buyer) or received (seller).
    pub total: Decimal,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub invoice_number: Option<String>,
    pub certificate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub currency: String,
    pub number: String,
    pub listing: String,
    pub side: String,
    pub buyer_name: String,
    pub seller_name: String,
    pub region: String,
    pub vintage: i32,
    pub quantity_kg: i64,
    pub price_per_t: Decimal,
    pub amount: Decimal,
    pub buyer_fee: Decimal,
    pub seller_fee: Decimal,
    pub buyer_pays: Decimal,
    pub seller_receives: Decimal,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub invoice_number: Option<String>,
    pub certificate: Option<String>,
    pub retire_beneficiary: Option<String>,
    /// A checkout's gateway payment: number and status.
    pub payment: Option<(String, String)>,
    pub cancel_reason: Option<String>,
    /// The serials that moved to the buyer.
    pub serials: Vec<String>,
    pub dispute: Option<crate::api::disputes::Dispute>,
    /// Until when its buyer may still dispute it (a completed order without a dispute).
    pub dispute_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MyListings {
    pub currency: String,
    pub classes: Vec<CreditClass>,
    pub listings: Vec<ListingLine>,
    /// Orders on the caller's listings, newest first.
    pub orders: Vec<OrderLine>,
    pub fees: Fees,
    /// The length the new-auction form offers (an admin setting).
    pub auction_default_hours: i32,
    /// A price suggestion for each class the seller can list.
    pub suggestions: Vec<crate::domain::pricing::Suggestion>,
}

/// A buyer's purchase history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Purchases {
    pub currency: String,
    pub orders: Vec<OrderLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Purchase {
    pub order: String,
    /// Where the buyer goes next: the order, or the gateway's payment page for a checkout.
    pub next: String,
}

/// Searches the open listings. Public: no sign-in needed. Fields are the URL's (see
/// `MarketQuery::parse`): `q`, `region`, `vintage`, `listing_type`, `seller`, `min_qty`
/// (tonnes), `min_price`, `max_price`, `sort` (price, price_desc, newest, quantity), `page`.
#[server(endpoint = "market/listings")]
#[allow(clippy::too_many_arguments)]
pub async fn search_listings(
    q: Option<String>,
    region: Option<String>,
    vintage: Option<String>,
    listing_type: Option<String>,
    seller: Option<String>,
    min_qty: Option<String>,
    min_price: Option<String>,
    max_price: Option<String>,
    sort: Option<String>,
    page: Option<String>,
) -> Result<SearchResults, AppError> {
    session::respond(async {
        let state = session::state();
        let mut params = std::collections::BTreeMap::new();
        for (k, v) in [
            ("q", q),
            ("region", region),
            ("vintage", vintage),
            ("type", listing_type),
            ("seller", seller),
            ("min_qty", min_qty),
            ("min_price", min_price),
            ("max_price", max_price),
            ("sort", sort),
            ("page", page),
        ] {
            if let Some(v) = v {
                params.insert(k.to_owned(), v);
            }
        }
        let currency = &state.config.payments.currency;
        let query =
            crate::domain::market::MarketQuery::parse(&params, currency).map_err(|errors| {
                AppError::Invalid {
                    fields: errors
                        .into_iter()
                        .map(|(field, message)| crate::error::FieldError {
                            // The URL says `type`; this endpoint's field is `listing_type`.
                            field: if field == "type" {
                                "listing_type".into()
                            } else {
                                field
                            },
                            message,
                        })
                        .collect(),
                }
            })?;
        market::search(&state, &query).await
    })
    .await
}

/// A listing with its seller, the evidence behind its credits and the price history of
/// comparable trades. Public.
#[server(endpoint = "market/listing")]
pub async fn get_listing(number: String) -> Result<ListingDetail, AppError> {
    session::respond(async {
        let state = session::state();
        let caller = session::caller().await?;
        market::detail(&state, &number, caller.as_ref()).await
    })
    .await
}

/// Buys `quantity` tonnes of a listing at no more than `expected_price` per tonne (required:
/// the price the buyer saw, as `price_per_t` answered it; a higher price by then is refused
/// with `price_changed` and nothing is bought). `pay_with`: `wallet` (default: money against
/// credits at once) or `gateway` (checkout: the part the wallet does not cover is paid on the
/// gateway's page, and the order completes when the payment succeeds). `retire` = `on` retires
/// the credits at once for `beneficiary` and `reason`. The same `idempotency_key` always
/// answers the same order.
#[server(endpoint = "market/buy")]
#[allow(clippy::too_many_arguments)]
pub async fn buy_credits(
    listing: String,
    quantity: String,
    expected_price: Option<String>,
    idempotency_key: String,
    pay_with: Option<String>,
    retire: Option<String>,
    beneficiary: Option<String>,
    reason: Option<String>,
) -> Result<Purchase, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::Buyer]).await?;
        let purchase = orders::buy(
            &state,
            caller.id,
            orders::BuyInput {
                listing: &listing,
                quantity: &quantity,
                expected_price: expected_price.as_deref().unwrap_or_default(),
                idempotency_key: &idempotency_key,
                checkout: pay_with.as_deref() == Some("gateway"),
                retire: retire.is_some_and(|r| r == "on" || r == "true"),
                beneficiary: beneficiary.as_deref().unwrap_or_default(),
                reason: reason.as_deref().unwrap_or_default(),
            },
        )
        .await?;
        leptos_axum::redirect(&purchase.next);
        Ok(purchase)
    })
    .await
}

/// The caller's listings, what they can list, and the orders on their listings.
#[server(endpoint = "listings/mine")]
pub async fn seller_listings() -> Result<MyListings, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner]).await?;
        let settings = crate::server::services::settings::current(&state.pool).await?;
        let classes = listings::classes(&state.pool, caller.id).await?;
        let wanted: Vec<(String, i32)> = classes
            .iter()
            .map(|c| (c.region.clone(), c.vintage))
            .collect();
        let currency = &state.config.payments.currency;
        Ok(MyListings {
            suggestions: crate::server::services::pricing::suggestions(
                &state.pool,
                &wanted,
                currency,
            )
            .await?,
            currency: currency.clone(),
            classes,
            listings: listings::mine(&state.pool, caller.id).await?,
            orders: orders::lines(&state.pool, caller.id, orders::Side::Sold).await?,
            fees: settings.fees(),
            auction_default_hours: settings.auction_default_hours,
        })
    })
    .await
}

/// Whether a form's checkbox-like field is on ("true" or "on").
#[cfg(feature = "ssr")]
pub(crate) fn is_on(field: &Option<String>) -> bool {
    field.as_deref().is_some_and(|v| v == "on" || v == "true")
}

/// Lists credits of one region and vintage (`class` = `VN:2026`) at a fixed price per tonne.
/// A price below half or above double the price suggestion is refused with `confirm_price`
/// unless `confirm_price` = `true`.
#[server(endpoint = "listings/create")]
#[allow(clippy::too_many_arguments)]
pub async fn create_listing(
    class: String,
    quantity: String,
    price: String,
    min_lot: Option<String>,
    description: Option<String>,
    expires_on: Option<String>,
    confirm_price: Option<String>,
) -> Result<String, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner]).await?;
        let number = listings::create(
            &state.pool,
            &state.config.payments.currency,
            caller.id,
            listings::NewListing {
                class: &class,
                quantity: &quantity,
                price: &price,
                min_lot: min_lot.as_deref().unwrap_or_default(),
                description: description.as_deref().unwrap_or_default(),
                expires_on: expires_on.as_deref().unwrap_or_default(),
                confirm_price: is_on(&confirm_price),
            },
        )
        .await?;
        leptos_axum::redirect("/sell");
        Ok(number)
    })
    .await
}

/// Sets a new price per tonne on the caller's open listing (far from the price suggestion:
/// as `listings/create`, `confirm_price` = `true`).
#[server(endpoint = "listings/price")]
pub async fn reprice_listing(
    listing: String,
    price: String,
    confirm_price: Option<String>,
) -> Result<(), AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner]).await?;
        listings::change_price(
            &state.pool,
            &state.config.payments.currency,
            caller.id,
            &listing,
            &price,
            is_on(&confirm_price),
        )
        .await?;
        leptos_axum::redirect("/sell");
        Ok(())
    })
    .await
}

/// Lowers the quantity of the caller's open listing (not below what is sold).
#[server(endpoint = "listings/quantity")]
pub async fn resize_listing(listing: String, quantity: String) -> Result<(), AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner]).await?;
        listings::change_quantity(&state.pool, caller.id, &listing, &quantity).await?;
        leptos_axum::redirect("/sell");
        Ok(())
    })
    .await
}

/// Cancels the caller's open listing; what is unsold returns to their available credits.
#[server(endpoint = "listings/cancel")]
pub async fn cancel_listing(listing: String) -> Result<(), AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::EvOwner]).await?;
        listings::cancel(&state.pool, caller.id, &listing).await?;
        leptos_axum::redirect("/sell");
        Ok(())
    })
    .await
}

/// The caller's purchases, newest first.
#[server(endpoint = "orders/mine")]
pub async fn my_orders() -> Result<Purchases, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::Buyer]).await?;
        Ok(Purchases {
            currency: state.config.payments.currency.clone(),
            orders: orders::lines(&state.pool, caller.id, orders::Side::Bought).await?,
        })
    })
    .await
}

/// One order, for its buyer, its seller or an admin.
#[server(endpoint = "orders/get")]
pub async fn get_order(number: String) -> Result<Order, AppError> {
    session::respond(async {
        let (state, caller) = session::require(&[Role::Buyer, Role::EvOwner, Role::Admin]).await?;
        orders::get(&state, &caller, &number).await
    })
    .await
}

/// The suggested price per tonne for a region and vintage, from the platform's own trades
/// (recency- and quantity-weighted median, a 20–80 % band, the trades it rests on and its
/// back-tested error), or a labelled rule-based default when there are too few. Public.
#[server(endpoint = "market/price-suggestion")]
pub async fn price_suggestion(
    region: String,
    vintage: String,
) -> Result<crate::domain::pricing::Suggestion, AppError> {
    session::respond(async {
        let state = session::state();
        let mut errors = crate::error::FieldErrors::new();
        let region = region.trim().to_uppercase();
        if region.is_empty() || region.len() > 10 {
            errors.add("region", "Give a grid region, e.g. VN.");
        }
        let vintage = errors.check(
            "vintage",
            vintage
                .trim()
                .parse::<i32>()
                .ok()
                .filter(|v| (2000..=2100).contains(v))
                .ok_or_else(|| "Give a vintage year, e.g. 2026.".to_owned()),
        );
        errors.finish()?;
        let vintage = vintage.unwrap_or_default();
        let mut found = crate::server::services::pricing::suggestions(
            &state.pool,
            &[(region, vintage)],
            &state.config.payments.currency,
        )
        .await?;
        found
            .pop()
            .ok_or_else(|| crate::server::internal("no suggestion"))
    })
    .await
}

/// Prices of the last 12 months per region and vintage, each with a chart and its price
/// suggestion. Public.
#[server(endpoint = "market/trends")]
pub async fn market_trends() -> Result<Trends, AppError> {
    session::respond(async {
        let state = session::state();
        crate::server::services::pricing::trends(&state.pool, &state.config.payments.currency).await
    })
    .await
}
