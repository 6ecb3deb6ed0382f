//! `server seed-market`: a marketplace for the benchmarks, made by the real services — sellers
//! whose credits come from a verifier's approval, listings that reserve them, buyers whose
//! wallets are topped up as a gateway payment would. Writes the accounts and listing numbers
//! as JSON for the load generator.

use anyhow::Context;
use app::domain::user::Role;
use app::server::ledger::{self, AccountKind, Asset, Leg, Transfer};
use app::server::services::accounts::{self, NewAccount};
use app::server::services::issuance::{self, Decision};
use app::server::services::{listings, methodology};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

pub struct Plan {
    /// The platform currency (the listings' prices are read in it).
    pub currency: String,
    pub sellers: usize,
    pub listings: usize,
    /// Kilograms in each listing.
    pub listing_kg: i64,
    pub buyers: usize,
    /// Money in each buyer's wallet.
    pub money: Decimal,
    pub password: String,
}

#[derive(Serialize)]
pub struct Seeded {
    pub password: String,
    pub sellers: Vec<String>,
    pub buyers: Vec<String>,
    pub listings: Vec<String>,
}

async fn account(
    pool: &PgPool,
    role: Role,
    email: &str,
    name: &str,
    password: &str,
) -> anyhow::Result<Uuid> {
    let input = NewAccount {
        email: email.into(),
        full_name: name.into(),
        phone: "+84900000000".into(),
        role,
        password: Some(password.into()),
    };
    Ok(accounts::create_account(pool, "http://bench", None, input)
        .await
        .map_err(|e| anyhow::anyhow!("account {email}: {e}"))?
        .id)
}

pub async fn seed(pool: &PgPool, plan: Plan) -> anyhow::Result<Seeded> {
    methodology::ensure_defaults(pool)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let cva = account(
        pool,
        Role::Cva,
        "bench-cva@bench.evcx",
        "Bench Verifier",
        &plan.password,
    )
    .await?;
    let per_seller = plan.listings.div_ceil(plan.sellers.max(1));
    let mut out = Seeded {
        password: plan.password.clone(),
        sellers: Vec::new(),
        buyers: Vec::new(),
        listings: Vec::new(),
    };
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..plan.sellers {
        let count = per_seller.min(plan.listings.saturating_sub(s * per_seller));
        if count == 0 {
            break;
        }
        let email = format!("bench-seller-{s}@bench.evcx");
        let seller = account(
            pool,
            Role::EvOwner,
            &email,
            &format!("Bench Seller {s}"),
            &plan.password,
        )
        .await?;
        out.sellers.push(email);
        let pool = pool.clone();
        let (kg, currency) = (plan.listing_kg, plan.currency.clone());
        tasks.spawn(
            async move { seller_listings(&pool, &currency, cva, seller, s, count, kg).await },
        );
        // Two sellers at a time keep both cores busy without piling up connections.
        if tasks.len() >= 2 {
            out.listings
                .extend(tasks.join_next().await.context("task")???);
        }
    }
    while let Some(done) = tasks.join_next().await {
        out.listings.extend(done??);
    }
    for b in 0..plan.buyers {
        let email = format!("bench-buyer-{b}@bench.evcx");
        let buyer = account(
            pool,
            Role::Buyer,
            &email,
            &format!("Bench Buyer {b}"),
            &plan.password,
        )
        .await?;
        top_up(pool, buyer, plan.money).await?;
        out.buyers.push(email);
    }
    Ok(out)
}

/// One verified issuance for the seller, then `count` listings of `kg` each at prices spread
/// over 100,000–400,000 per tonne, a thousand per transaction.
async fn seller_listings(
    pool: &PgPool,
    currency: &str,
    cva: Uuid,
    seller: Uuid,
    index: usize,
    count: usize,
    kg: i64,
) -> anyhow::Result<Vec<String>> {
    // Gross so that the owner's share (after the 5 % buffer, rounded up) covers every listing.
    let need = kg * count as i64;
    let mut gross = need + need / 19 + 1;
    while gross - (gross * 5 + 99) / 100 < need {
        gross += 1;
    }
    let request = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO credit_requests (id, number, owner_id, period_from, period_to, region, vintage,
             methodology_version_id, trips, distance_km, energy_kwh, baseline_kg, project_kg, avoided_kg,
             gross_kg, buffer_kg, net_kg, risk_score, calculation, status)
         VALUES ($1, 'BENCH-' || $1::text, $2, '2026-01-01', '2026-12-31', $3, 2026,
             (SELECT version_id FROM methodology_active), 1, 0, 0, $4, 0, $4, $4, 0, $4, 0, '{}', 'pending')",
    )
    .bind(request)
    .bind(seller)
    .bind(if index % 3 == 0 { "TH" } else { "VN" })
    .bind(gross)
    .execute(pool)
    .await?;
    issuance::decide(pool, cva, request, Decision::Approve)
        .await
        .map_err(|e| anyhow::anyhow!("issuance: {e}"))?;
    let region = if index % 3 == 0 { "TH" } else { "VN" };
    let class = format!("{region}:2026");
    let quantity = (Decimal::from(kg) / Decimal::from(1000))
        .normalize()
        .to_string();
    let mut numbers = Vec::with_capacity(count);
    let mut tx = pool.begin().await?;
    for i in 0..count {
        let price = (100_000 + ((index * 7919 + i * 104_729) % 3001) * 100).to_string();
        let number = listings::create_in(
            &mut tx,
            currency,
            seller,
            listings::NewListing {
                class: &class,
                quantity: &quantity,
                price: &price,
                min_lot: "0.001",
                description: &format!(
                    "Bench listing {i} of seller {index}: scooter and car fleet credits"
                ),
                expires_on: "",
                // Spread on purpose, and checked against no suggestion: seeding stays fast.
                confirm_price: true,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("listing: {e}"))?;
        numbers.push(number);
        if i % 1000 == 999 {
            tx.commit().await?;
            tx = pool.begin().await?;
        }
    }
    tx.commit().await?;
    Ok(numbers)
}

/// Money into a buyer's wallet the way a gateway payment lands: from gateway clearing.
async fn top_up(pool: &PgPool, buyer: Uuid, amount: Decimal) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let clearing =
        ledger::platform_account(&mut tx, Asset::Money, AccountKind::GatewayClearing).await?;
    let wallet = ledger::user_account(&mut tx, buyer, Asset::Money, AccountKind::Available).await?;
    ledger::transfer(
        &mut tx,
        Transfer {
            kind: "top_up",
            legs: vec![Leg::new(clearing, -amount), Leg::new(wallet, amount)],
            memo: "benchmark seed".into(),
            ..Transfer::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
