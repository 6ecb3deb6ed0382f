//! A seller's fixed-price listings: create one from available credits of one region and vintage
//! (the quantity moves, with its serials, into the listing's own reserved account), change the
//! price, reduce the quantity down to what is sold, cancel, and the expiry job. Whatever leaves
//! the listing unsold goes back to the seller's available credits.

use crate::api::market::{CreditClass, ListingLine};
use crate::domain::market::{
    format_money, money_plain, parse_money, parse_tonnes, tonnes, tonnes_plain, MAX_KG,
};
use crate::domain::notification::Kind;
use crate::error::{AppError, FieldErrors};
use crate::server::ledger::{self, LedgerError, SerialClass};
use crate::server::notify;
use crate::server::services::pricing;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The seller's available credits per region and vintage (what can be listed).
pub async fn classes(pool: &PgPool, owner: Uuid) -> Result<Vec<CreditClass>, AppError> {
    let rows: Vec<(String, i32, i64)> = sqlx::query_as(
        "SELECT i.region, i.vintage, sum(upper(b.serials) - lower(b.serials))::bigint
         FROM serial_blocks b JOIN ledger_accounts a ON a.id = b.account_id
         JOIN credit_issuances i ON i.id = b.issuance_id
         WHERE a.owner_id = $1 AND a.asset = 'credit' AND a.kind = 'available' AND a.scope IS NULL
         GROUP BY i.region, i.vintage ORDER BY i.vintage DESC, i.region",
    )
    .bind(owner)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(region, vintage, available_kg)| CreditClass {
            region,
            vintage,
            available_kg,
        })
        .collect())
}

/// The form's fields, as typed.
#[derive(Debug, Clone, Default)]
pub struct NewListing<'a> {
    /// "VN:2026": region and vintage.
    pub class: &'a str,
    pub quantity: &'a str,
    pub price: &'a str,
    pub min_lot: &'a str,
    pub description: &'a str,
    /// YYYY-MM-DD, optional: the listing ends at the end of that day (UTC).
    pub expires_on: &'a str,
    /// The seller confirmed a price far from the price suggestion (`confirm_price=true`).
    pub confirm_price: bool,
}

struct Parsed {
    region: String,
    vintage: i32,
    kg: i64,
    price: Decimal,
    min_lot: i64,
    description: String,
    expires_at: Option<DateTime<Utc>>,
}

fn parse(input: &NewListing<'_>, currency: &str, now: DateTime<Utc>) -> Result<Parsed, AppError> {
    let mut errors = FieldErrors::new();
    let class = errors.check(
        "class",
        input
            .class
            .trim()
            .split_once(':')
            .and_then(|(r, v)| Some((r.to_owned(), v.parse::<i32>().ok()?)))
            .filter(|(r, _)| !r.is_empty())
            .ok_or_else(|| "Choose which credits to list.".to_owned()),
    );
    let kg = errors.check("quantity", parse_tonnes(input.quantity));
    let price = errors.check("price", parse_money(input.price, currency));
    let min_lot = if input.min_lot.trim().is_empty() {
        Some(1)
    } else {
        errors.check("min_lot", parse_tonnes(input.min_lot))
    };
    if let (Some(kg), Some(lot)) = (kg, min_lot) {
        if lot > kg {
            errors.add(
                "min_lot",
                "The minimum lot cannot be more than the quantity.",
            );
        }
    }
    let description = input.description.trim().to_owned();
    if description.chars().count() > 2000 {
        errors.add(
            "description",
            "Keep the description under 2,000 characters.",
        );
    }
    let expires_at = match input.expires_on.trim() {
        "" => None,
        raw => errors.check(
            "expires_on",
            NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .map_err(|_| "Enter a date like 2026-12-31.".to_owned())
                .and_then(|d| {
                    let at = d
                        .and_time(NaiveTime::from_hms_opt(23, 59, 59).expect("valid"))
                        .and_utc();
                    if at <= now {
                        Err("The expiry date has to be in the future.".to_owned())
                    } else if at > now + chrono::Duration::days(366) {
                        Err("A listing can run for at most a year.".to_owned())
                    } else {
                        Ok(at)
                    }
                }),
        ),
    };
    errors.finish()?;
    let (region, vintage) = class.expect("checked");
    Ok(Parsed {
        region,
        vintage,
        kg: kg.expect("checked"),
        price: price.expect("checked"),
        min_lot: min_lot.expect("checked"),
        description,
        expires_at,
    })
}

/// Lists credits for sale; answers the listing number. The quantity is reserved at once, so a
/// seller can never list more than they have available. The price is read in `currency`; one
/// far from the price suggestion is refused (`AppError::ConfirmPrice`) unless confirmed.
#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn create(
    pool: &PgPool,
    currency: &str,
    seller: Uuid,
    input: NewListing<'_>,
) -> Result<String, AppError> {
    let mut tx = pool.begin().await?;
    let number = create_in(&mut tx, currency, seller, input).await?;
    tx.commit().await?;
    Ok(number)
}

/// `create` inside the caller's transaction (the benchmarks' seeding lists thousands at once).
pub async fn create_in(
    conn: &mut PgConnection,
    currency: &str,
    seller: Uuid,
    input: NewListing<'_>,
) -> Result<String, AppError> {
    let p = parse(&input, currency, Utc::now())?;
    let id = Uuid::new_v4();
    let number = format!(
        "LST-{:06}",
        ledger::next_in_sequence(&mut *conn, "listing_number_seq").await?
    );
    let class = SerialClass {
        region: &p.region,
        vintage: p.vintage,
    };
    let (hold, account) = ledger::hold_credits(
        &mut *conn,
        seller,
        p.kg,
        id,
        class,
        &format!("listing {number}"),
        Some(seller),
    )
    .await
    .map_err(|e| match e {
        LedgerError::Insufficient { balance, .. } => AppError::invalid(
            "quantity",
            format!(
                "You have {} of {} {} credits available to list.",
                tonnes(i64::try_from(balance.trunc()).unwrap_or(0)),
                p.region,
                p.vintage
            ),
        ),
        other => other.into(),
    })?;
    // Last of the checks, so that confirming the price is the only step left.
    if !input.confirm_price {
        let resubmit = [
            ("class", input.class.trim().to_owned()),
            ("quantity", tonnes_plain(p.kg)),
            ("price", money_plain(p.price, currency)),
            ("min_lot", tonnes_plain(p.min_lot)),
            ("description", p.description.clone()),
            ("expires_on", input.expires_on.trim().to_owned()),
        ];
        confirm_far_price(
            &mut *conn, currency, &p.region, p.vintage, p.price, &resubmit,
        )
        .await?;
    }
    sqlx::query(
        "INSERT INTO listings (id, number, seller_id, region, vintage, listed_kg, quantity_kg, price_per_t,
                               min_lot_kg, description, expires_at, hold_id, account_id)
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(id)
    .bind(&number)
    .bind(seller)
    .bind(&p.region)
    .bind(p.vintage)
    .bind(p.kg)
    .bind(p.price)
    .bind(p.min_lot)
    .bind(&p.description)
    .bind(p.expires_at)
    .bind(hold)
    .bind(account)
    .execute(&mut *conn)
    .await?;
    Ok(number)
}

#[derive(sqlx::FromRow)]
struct Locked {
    id: Uuid,
    status: String,
    quantity_kg: i64,
    sold_kg: i64,
    pending_kg: i64,
    hold_id: Uuid,
}

/// Locks the seller's listing; refuses one that is not theirs or no longer open.
async fn lock_own(conn: &mut PgConnection, seller: Uuid, number: &str) -> Result<Locked, AppError> {
    lock_own_in(conn, seller, number, &["active"]).await
}

/// The seller's listing, locked, when its status is one of `statuses`.
async fn lock_own_in(
    conn: &mut PgConnection,
    seller: Uuid,
    number: &str,
    statuses: &[&str],
) -> Result<Locked, AppError> {
    let row: Option<(Locked, Uuid)> =
        sqlx::query_as::<_, (Uuid, String, i64, i64, i64, Uuid, Uuid, String)>(
            "SELECT id, status, quantity_kg, sold_kg, pending_kg, hold_id, seller_id, kind FROM listings
         WHERE number = $1 FOR UPDATE",
        )
        .bind(number.trim().to_uppercase())
        .fetch_optional(&mut *conn)
        .await?
        .map(
            |(id, status, quantity_kg, sold_kg, pending_kg, hold_id, seller_id, kind)| {
                let status = if kind == "auction" && status == "active" {
                    "an open auction".to_owned()
                } else {
                    status
                };
                (
                    Locked {
                        id,
                        status,
                        quantity_kg,
                        sold_kg,
                        pending_kg,
                        hold_id,
                    },
                    seller_id,
                )
            },
        );
    match row {
        Some((l, owner)) if owner == seller => {
            if !statuses.contains(&l.status.as_str()) {
                return Err(AppError::conflict(format!(
                    "Listing {} is {} and can no longer be changed.",
                    number.trim().to_uppercase(),
                    l.status
                )));
            }
            Ok(l)
        }
        _ => Err(AppError::not_found("The listing")),
    }
}

/// Refuses a listing price far from the suggestion for its credits (see
/// `Suggestion::far_listing_price`) with `AppError::ConfirmPrice`: the seller is shown the
/// suggestion and the form (`resubmit`, plus `confirm_price=true`) to list at it anyway.
async fn confirm_far_price(
    conn: &mut PgConnection,
    currency: &str,
    region: &str,
    vintage: i32,
    price: Decimal,
    resubmit: &[(&str, String)],
) -> Result<(), AppError> {
    let suggestion = pricing::suggestion(conn, region, vintage, currency).await?;
    match suggestion.far_listing_price(price) {
        None => Ok(()),
        Some(far) => Err(AppError::ConfirmPrice {
            message: suggestion.listing_warning(price, far, |v| format_money(v, currency)),
            price_per_t: price,
            suggested_per_t: suggestion.price_per_t,
            resubmit: resubmit
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .chain([("confirm_price".to_owned(), "true".to_owned())])
                .collect(),
        }),
    }
}

/// Sets a new price per tonne (read in `currency`); orders already placed keep theirs. A price
/// far from the suggestion needs `confirmed` (see `confirm_far_price`).
#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn change_price(
    pool: &PgPool,
    currency: &str,
    seller: Uuid,
    number: &str,
    price: &str,
    confirmed: bool,
) -> Result<(), AppError> {
    let price = parse_money(price, currency).map_err(|m| AppError::invalid("price", m))?;
    let mut tx = pool.begin().await?;
    let l = lock_own(&mut tx, seller, number).await?;
    if !confirmed {
        let (listing, region, vintage): (String, String, i32) =
            sqlx::query_as("SELECT number, region, vintage FROM listings WHERE id = $1")
                .bind(l.id)
                .fetch_one(&mut *tx)
                .await?;
        let resubmit = [
            ("listing", listing),
            ("price", money_plain(price, currency)),
        ];
        confirm_far_price(&mut tx, currency, &region, vintage, price, &resubmit).await?;
    }
    sqlx::query("UPDATE listings SET price_per_t = $2, updated_at = now() WHERE id = $1")
        .bind(l.id)
        .bind(price)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Lowers the listed quantity (never below what is sold or being paid for); the difference
/// returns to the seller's available credits.
#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn change_quantity(
    pool: &PgPool,
    seller: Uuid,
    number: &str,
    quantity: &str,
) -> Result<(), AppError> {
    let kg = parse_tonnes(quantity).map_err(|m| AppError::invalid("quantity", m))?;
    let mut tx = pool.begin().await?;
    let l = lock_own(&mut tx, seller, number).await?;
    let committed = l.sold_kg + l.pending_kg;
    if kg > l.quantity_kg {
        return Err(AppError::invalid(
            "quantity",
            format!(
                "A listing's quantity can only go down (it is {}); list more credits in a new listing.",
                tonnes(l.quantity_kg)
            ),
        ));
    }
    if kg < committed {
        return Err(AppError::invalid(
            "quantity",
            format!("{} are already sold or being paid for.", tonnes(committed)),
        ));
    }
    if kg == l.quantity_kg {
        return Ok(());
    }
    ledger::release(
        &mut tx,
        l.hold_id,
        Decimal::from(l.quantity_kg - kg),
        "listing_reduced",
        Some(seller),
    )
    .await?;
    sqlx::query(
        "UPDATE listings SET quantity_kg = $2, min_lot_kg = least(min_lot_kg, greatest($2, 1)),
                status = CASE WHEN $2 = sold_kg AND pending_kg = 0 THEN 'sold' ELSE status END,
                closed_at = CASE WHEN $2 = sold_kg AND pending_kg = 0 THEN now() END,
                updated_at = now()
         WHERE id = $1",
    )
    .bind(l.id)
    .bind(kg)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Withdraws a listing: what is unsold returns to the seller. Payments already under way still
/// complete (their credits stay reserved until then).
#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn cancel(pool: &PgPool, seller: Uuid, number: &str) -> Result<(), AppError> {
    let mut tx = pool.begin().await?;
    // A suspended listing can be withdrawn too: its unsold credits come back.
    let l = lock_own_in(&mut tx, seller, number, &["active", "suspended"]).await?;
    close(&mut tx, &l, "cancelled", Some(seller)).await?;
    tx.commit().await?;
    Ok(())
}

async fn close(
    conn: &mut PgConnection,
    l: &Locked,
    status: &str,
    actor: Option<Uuid>,
) -> Result<(), AppError> {
    let unsold = l.quantity_kg - l.sold_kg - l.pending_kg;
    if unsold > 0 {
        ledger::release(
            conn,
            l.hold_id,
            Decimal::from(unsold),
            if status == "expired" {
                "listing_expired"
            } else {
                "listing_cancelled"
            },
            actor,
        )
        .await?;
    }
    sqlx::query(
        "UPDATE listings SET status = $2, quantity_kg = sold_kg + pending_kg, suspended_reason = NULL,
                closed_at = now(), updated_at = now() WHERE id = $1",
    )
    .bind(l.id)
    .bind(status)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Ends listings past their expiry, releasing what is unsold; answers how many. Safe on any
/// number of instances (rows are claimed with SKIP LOCKED).
pub async fn expire_due(pool: &PgPool) -> Result<usize, AppError> {
    let mut tx = pool.begin().await?;
    type Due = (Uuid, String, i64, i64, i64, Uuid, String, Uuid);
    let due: Vec<Due> = sqlx::query_as(
        "SELECT id, status, quantity_kg, sold_kg, pending_kg, hold_id, number, seller_id FROM listings
         WHERE status IN ('active', 'suspended') AND expires_at <= now() AND kind = 'fixed'
         ORDER BY expires_at LIMIT 200 FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (id, status, quantity_kg, sold_kg, pending_kg, hold_id, number, seller) in &due {
        let l = Locked {
            id: *id,
            status: status.clone(),
            quantity_kg: *quantity_kg,
            sold_kg: *sold_kg,
            pending_kg: *pending_kg,
            hold_id: *hold_id,
        };
        close(&mut tx, &l, "expired", None).await?;
        let unsold = quantity_kg - sold_kg - pending_kg;
        notify::send(
            &mut tx,
            *seller,
            Kind::ListingEnded,
            &format!("{number} has expired"),
            &if unsold > 0 {
                format!(
                    "{} did not sell; those credits are back in your wallet.",
                    tonnes(unsold)
                )
            } else {
                "Everything on it was sold.".to_owned()
            },
            &format!("/sell#{number}"),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

/// Warns sellers once, a day ahead, that a fixed-price listing is about to expire; answers how
/// many were warned. Safe on any number of instances.
pub async fn warn_expiring(pool: &PgPool) -> Result<usize, AppError> {
    let mut tx = pool.begin().await?;
    let due: Vec<(String, Uuid, DateTime<Utc>, i64)> = sqlx::query_as(
        "UPDATE listings SET expiry_warned_at = now()
         WHERE id IN (SELECT id FROM listings
                      WHERE status = 'active' AND kind = 'fixed' AND expiry_warned_at IS NULL
                        AND expires_at > now() AND expires_at <= now() + interval '24 hours'
                      ORDER BY expires_at LIMIT 200 FOR UPDATE SKIP LOCKED)
         RETURNING number, seller_id, expires_at, quantity_kg - sold_kg - pending_kg",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (number, seller, expires_at, left) in &due {
        notify::send(
            &mut tx,
            *seller,
            Kind::ListingExpiring,
            &format!("{number} expires soon"),
            &format!(
                "It ends on {} with {} unsold. A lower price may sell it sooner; whatever is left returns to your wallet.",
                expires_at.format("%Y-%m-%d %H:%M UTC"),
                tonnes(*left)
            ),
            &format!("/sell#{number}"),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

pub(crate) const LINE_SELECT: &str =
    "SELECT l.number, l.kind, l.region, l.vintage, l.listed_kg, l.quantity_kg,
        l.sold_kg, l.pending_kg, l.price_per_t, l.min_lot_kg, l.description, l.expires_at, l.status,
        l.created_at, u.full_name AS seller_name
    FROM listings l JOIN users u ON u.id = l.seller_id";

#[derive(sqlx::FromRow)]
pub(crate) struct LineRow {
    number: String,
    kind: String,
    region: String,
    vintage: i32,
    listed_kg: i64,
    quantity_kg: i64,
    sold_kg: i64,
    pending_kg: i64,
    price_per_t: Decimal,
    min_lot_kg: i64,
    description: String,
    expires_at: Option<DateTime<Utc>>,
    status: String,
    created_at: DateTime<Utc>,
    seller_name: String,
}

impl From<LineRow> for ListingLine {
    fn from(r: LineRow) -> Self {
        // An active listing past its expiry is shown as expired before the job gets to it.
        let expired = r.status == "active" && r.expires_at.is_some_and(|e| e <= Utc::now());
        ListingLine {
            available_kg: if expired {
                0
            } else {
                (r.quantity_kg - r.sold_kg - r.pending_kg).clamp(0, MAX_KG)
            },
            number: r.number,
            kind: r.kind,
            region: r.region,
            vintage: r.vintage,
            listed_kg: r.listed_kg,
            quantity_kg: r.quantity_kg,
            sold_kg: r.sold_kg,
            pending_kg: r.pending_kg,
            price_per_t: r.price_per_t,
            min_lot_kg: r.min_lot_kg,
            description: r.description,
            expires_at: r.expires_at,
            status: if expired { "expired".into() } else { r.status },
            created_at: r.created_at,
            seller_name: r.seller_name,
        }
    }
}

/// The seller's listings, newest first.
pub async fn mine(pool: &PgPool, seller: Uuid) -> Result<Vec<ListingLine>, AppError> {
    let rows: Vec<LineRow> = sqlx::query_as(&format!(
        "{LINE_SELECT} WHERE l.seller_id = $1 ORDER BY l.created_at DESC LIMIT 200"
    ))
    .bind(seller)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(ListingLine::from).collect())
}
