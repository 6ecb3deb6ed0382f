//! Finding credits to buy: the search over open listings (every filter and order the URL can
//! carry) and a listing's detail with the evidence behind its credits and the prices of
//! comparable trades.

use crate::api::market::{Evidence, ListingDetail, ListingLine, PricePoint, SearchResults};
use crate::domain::market::{MarketQuery, Sort, PAGE_SIZE};
use crate::domain::serial::{self, SerialRange};
use crate::domain::user::Role;
use crate::error::AppError;
use crate::server::ledger::{self, AccountKind, Asset};
use crate::server::services::listings::{LineRow, LINE_SELECT};
use crate::server::services::settings;
use crate::server::session::Caller;
use crate::server::AppState;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{Postgres, QueryBuilder};
use std::collections::BTreeMap;
use uuid::Uuid;

/// How far the count goes before it says "more than".
const COUNT_CAP: i64 = 1000;

/// The conditions of a search, shared by the page query and the count.
fn push_filters<'a>(b: &mut QueryBuilder<'a, Postgres>, q: &'a MarketQuery) {
    b.push(
        " WHERE l.status = 'active' AND (l.expires_at IS NULL OR l.expires_at > now())
          AND l.quantity_kg - l.sold_kg - l.pending_kg > 0",
    );
    if !q.text.is_empty() {
        b.push(" AND (l.search @@ plainto_tsquery('simple', ")
            .push_bind(&q.text)
            .push(") OR u.full_name ILIKE ")
            .push_bind(format!("%{}%", like_escape(&q.text)))
            .push(")");
    }
    if let Some(region) = &q.region {
        b.push(" AND l.region = ").push_bind(region);
    }
    if let Some(vintage) = q.vintage {
        b.push(" AND l.vintage = ").push_bind(vintage);
    }
    if let Some(kind) = q.kind {
        b.push(" AND l.kind = ").push_bind(kind.as_str());
    }
    if !q.seller.is_empty() {
        b.push(" AND u.full_name ILIKE ")
            .push_bind(format!("%{}%", like_escape(&q.seller)));
    }
    if let Some(kg) = q.min_kg {
        b.push(" AND l.quantity_kg - l.sold_kg - l.pending_kg >= ")
            .push_bind(kg);
    }
    if let Some(p) = q.min_price {
        b.push(" AND l.price_per_t >= ").push_bind(p);
    }
    if let Some(p) = q.max_price {
        b.push(" AND l.price_per_t <= ").push_bind(p);
    }
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// One page of open listings matching `q`.
pub async fn search(state: &AppState, q: &MarketQuery) -> Result<SearchResults, AppError> {
    let mut b = QueryBuilder::new(LINE_SELECT);
    push_filters(&mut b, q);
    b.push(match q.sort {
        Sort::PriceLow => " ORDER BY l.price_per_t, l.created_at DESC, l.id",
        // The price index walked backwards: equal prices oldest first.
        Sort::PriceHigh => " ORDER BY l.price_per_t DESC, l.created_at, l.id DESC",
        Sort::Newest => " ORDER BY l.created_at DESC, l.id",
        Sort::Quantity => {
            " ORDER BY l.quantity_kg - l.sold_kg - l.pending_kg DESC, l.price_per_t, l.id"
        }
    });
    b.push(" LIMIT ")
        .push_bind(PAGE_SIZE + 1)
        .push(" OFFSET ")
        .push_bind((q.page - 1) * PAGE_SIZE);
    let mut rows: Vec<LineRow> = b.build_query_as().fetch_all(&state.pool).await?;
    let has_next = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);

    let mut c = QueryBuilder::new(
        "SELECT count(*) FROM (SELECT 1 FROM listings l JOIN users u ON u.id = l.seller_id",
    );
    push_filters(&mut c, q);
    c.push(" LIMIT ").push_bind(COUNT_CAP + 1).push(") m");
    let counted: i64 = c.build_query_scalar().fetch_one(&state.pool).await?;

    // What the filters offer: every region and vintage ever issued (a small table).
    let classes: Vec<(String, i32)> =
        sqlx::query_as("SELECT DISTINCT region, vintage FROM credit_issuances")
            .fetch_all(&state.pool)
            .await?;
    let mut regions: Vec<String> = classes.iter().map(|c| c.0.clone()).collect();
    regions.sort();
    regions.dedup();
    let mut vintages: Vec<i32> = classes.iter().map(|c| c.1).collect();
    vintages.sort_by(|a, b| b.cmp(a));
    vintages.dedup();
    Ok(SearchResults {
        currency: state.config.payments.currency.clone(),
        listings: rows.into_iter().map(ListingLine::from).collect(),
        total: counted.min(COUNT_CAP),
        capped: counted > COUNT_CAP,
        page: q.page,
        has_next,
        regions,
        vintages,
    })
}

/// A listing's page: the listing, its seller, the issuances behind its credits, and the weekly
/// average price of completed trades in the same region and vintage over the last 26 weeks.
pub async fn detail(
    state: &AppState,
    number: &str,
    caller: Option<&Caller>,
) -> Result<ListingDetail, AppError> {
    let pool = &state.pool;
    let row: Option<LineRow> = sqlx::query_as(&format!("{LINE_SELECT} WHERE l.number = $1"))
        .bind(number.trim().to_uppercase())
        .fetch_optional(pool)
        .await?;
    let listing = ListingLine::from(row.ok_or_else(|| AppError::not_found("The listing"))?);
    let (seller_id, seller_since, account_id): (Uuid, DateTime<Utc>, i64) = sqlx::query_as(
        "SELECT u.id, u.created_at, l.account_id FROM listings l JOIN users u ON u.id = l.seller_id
         WHERE l.number = $1",
    )
    .bind(&listing.number)
    .fetch_one(pool)
    .await?;

    // The serials that went into the listing's account, per issuance.
    type Moved = (
        i64,
        i64,
        String,
        NaiveDate,
        NaiveDate,
        i32,
        Decimal,
        serde_json::Value,
        String,
        DateTime<Utc>,
        String,
        i32,
    );
    let moved: Vec<Moved> = sqlx::query_as(
        "SELECT lower(m.serials), upper(m.serials), q.number, q.period_from, q.period_to, q.trips,
                q.distance_km, mv.methodology, v.full_name, i.issued_at, i.region, i.vintage
         FROM serial_movements m
         JOIN credit_issuances i ON i.id = m.issuance_id
         JOIN credit_requests q ON q.id = i.request_id
         JOIN methodology_versions mv ON mv.id = i.methodology_version_id
         JOIN users v ON v.id = i.verifier_id
         WHERE m.to_account_id = $1 ORDER BY lower(m.serials)",
    )
    .bind(account_id)
    .fetch_all(pool)
    .await?;
    let mut by_request: BTreeMap<String, (Evidence, Vec<SerialRange>, String, i32)> =
        BTreeMap::new();
    for (start, end, request, from, to, trips, km, m, verifier, issued, region, vintage) in moved {
        let entry = by_request.entry(request.clone()).or_insert_with(|| {
            let evidence = Evidence {
                request,
                period: format!("{from} – {to}"),
                trips: i64::from(trips),
                distance_km: km.round_dp(0),
                methodology: format!(
                    "{} v{}",
                    m["code"].as_str().unwrap_or("?"),
                    m["version"].as_i64().unwrap_or(0)
                ),
                verifier,
                approved_at: issued,
                kg: 0,
                serials: Vec::new(),
            };
            (evidence, Vec::new(), region, vintage)
        });
        entry.0.kg += end - start;
        entry.1.push(SerialRange::new(start, end));
    }
    let evidence = by_request
        .into_values()
        .map(|(mut e, ranges, region, vintage)| {
            e.serials = serial::coalesce(ranges)
                .into_iter()
                .map(|r| r.label(&region, vintage))
                .collect();
            e
        })
        .collect();

    let history = price_history(pool, &listing.region, listing.vintage).await?;
    let history_svg = if history.len() >= 2 {
        let points: Vec<(String, Decimal)> = history
            .iter()
            .map(|p| (p.week.clone(), p.average_per_t))
            .collect();
        crate::server::chart::line(
            &format!(
                "Average price, {} {} credits",
                listing.region, listing.vintage
            ),
            &format!("{} per t", state.config.payments.currency),
            &points,
        )
        .map_err(crate::server::internal)?
    } else {
        String::new()
    };
    let fees = settings::current(pool).await?.fees();
    let is_own = caller.is_some_and(|c| c.id == seller_id);
    let wallet_available = match caller {
        Some(c) if c.role == Role::Buyer => {
            let mut conn = pool.acquire().await?;
            Some(ledger::balance(&mut conn, c.id, Asset::Money, AccountKind::Available).await?)
        }
        _ => None,
    };
    Ok(ListingDetail {
        currency: state.config.payments.currency.clone(),
        listing,
        seller_since,
        evidence,
        history,
        history_svg,
        fees,
        is_own,
        viewer: caller.map(|c| c.role),
        wallet_available,
        purchase_key: Uuid::new_v4().to_string(),
    })
}

/// Weekly average prices (weighted by quantity) of completed trades in one region and vintage.
pub async fn price_history(
    pool: &sqlx::PgPool,
    region: &str,
    vintage: i32,
) -> Result<Vec<PricePoint>, AppError> {
    let rows: Vec<(NaiveDate, Decimal, i64, i64)> = sqlx::query_as(
        "SELECT date_trunc('week', o.completed_at)::date AS week,
                round(sum(o.price_per_t * o.quantity_kg) / sum(o.quantity_kg), 2),
                count(*), sum(o.quantity_kg)::bigint
         FROM orders o JOIN listings l ON l.id = o.listing_id
         WHERE o.status = 'completed' AND l.region = $1 AND l.vintage = $2
           AND o.completed_at > now() - interval '26 weeks'
         GROUP BY 1 ORDER BY 1",
    )
    .bind(region)
    .bind(vintage)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(week, average_per_t, trades, kg)| PricePoint {
            week: week.format("%d %b").to_string(),
            average_per_t,
            trades,
            kg,
        })
        .collect())
}
