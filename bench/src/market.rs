//! The marketplace benchmarks: `purchase_distinct` (many buyers buying from many listings),
//! `purchase_race` (10,000 attempts on one listing that can fill 100) and `ssr_market` (the
//! server-rendered search page, 50 listings out of 100,000). The market is made by the server's
//! own `seed-market` command (real services: verified issuances, listings that reserve their
//! credits, funded buyers) before the server starts.

use crate::harness::{self, bench_line, histogram, ms, Server, Session};
use anyhow::{ensure, Context};
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "bench-market-2026";

#[derive(Deserialize)]
struct Seeded {
    buyers: Vec<String>,
    listings: Vec<String>,
}

async fn seed(sellers: usize, listings: usize, listing_kg: i64, buyers: usize) -> anyhow::Result<Seeded> {
    let out = harness::work_dir().join("market.json");
    std::fs::create_dir_all(harness::work_dir())?;
    println!("seeding {listings} listings of {listing_kg} kg from {sellers} sellers and {buyers} funded buyers…");
    let started = Instant::now();
    let server = std::env::var_os("EVCX_BENCH_SERVER").unwrap_or_else(|| "target/release/server".into());
    let status = tokio::process::Command::new(server)
        .args(["seed-market", "--sellers", &sellers.to_string(), "--listings", &listings.to_string()])
        .args(["--listing-kg", &listing_kg.to_string(), "--buyers", &buyers.to_string()])
        .args(["--money", "1000000000", "--password", PASSWORD, "--out"])
        .arg(&out)
        .env("EVCX_DATA_DIR", harness::work_dir().join("server-data"))
        .env("EVCX_LOG", "warn")
        .status()
        .await
        .context("running server seed-market")?;
    ensure!(status.success(), "seed-market failed");
    println!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    Ok(serde_json::from_slice(&std::fs::read(&out)?)?)
}

/// One signed-in session per buyer.
async fn sign_in(base: &str, buyers: &[String]) -> anyhow::Result<Vec<Session>> {
    let mut sessions = Vec::with_capacity(buyers.len());
    for email in buyers {
        let s = Session::new(base);
        s.call("users/login", &[("email", email), ("password", PASSWORD)]).await?;
        sessions.push(s);
    }
    Ok(sessions)
}

/// Runs one psql query and answers its single value.
async fn sql(query: &str) -> anyhow::Result<String> {
    let url = std::env::var("DATABASE_URL")?;
    let out = tokio::process::Command::new(harness::psql()?)
        .args([&url, "-Atc", query])
        .output()
        .await?;
    ensure!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// The ledger's own invariants, checked from outside: every asset sums to zero and no user is
/// below zero.
async fn ledger_balanced() -> anyhow::Result<bool> {
    let unbalanced = sql("SELECT count(*) FROM (SELECT asset FROM ledger_entries GROUP BY asset HAVING sum(amount) <> 0) s").await?;
    let negative = sql("SELECT count(*) FROM ledger_accounts WHERE owner_id IS NOT NULL AND balance < 0").await?;
    let drift = sql(
        "SELECT count(*) FROM ledger_accounts a LEFT JOIN (SELECT account_id, sum(amount) s FROM ledger_entries GROUP BY account_id) e
         ON e.account_id = a.id WHERE a.balance <> coalesce(e.s, 0)",
    )
    .await?;
    Ok(unbalanced == "0" && negative == "0" && drift == "0")
}

async fn double_sales() -> anyhow::Result<u64> {
    Ok(sql("SELECT count(*) FROM listings WHERE sold_kg + pending_kg > quantity_kg").await?.parse()?)
}

/// A small deterministic generator, so every run asks for the same listings.
fn pick(seed: u64, n: usize) -> usize {
    let x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((x >> 33) % n as u64) as usize
}

pub async fn purchase_distinct(concurrency: usize) -> anyhow::Result<bool> {
    let seeded = seed(50, 2000, 100, 200).await?;
    let server = Server::start().await?;
    let sessions = Arc::new(sign_in(&server.base, &seeded.buyers).await?);
    let listings = Arc::new(seeded.listings);
    let total = 20_000u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    println!("{total} purchases of 1 kg by {} buyers from {} listings, {concurrency} at a time…", sessions.len(), listings.len());
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let (sessions, listings, next, errors) = (sessions.clone(), listings.clone(), next.clone(), errors.clone());
        tasks.spawn(async move {
            let mut h = histogram();
            let session = &sessions[w % sessions.len()];
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() > deadline {
                    break;
                }
                let listing = &listings[pick(i, listings.len())];
                let key = format!("distinct-{i:08}");
                let t = Instant::now();
                let ok = session
                    .call("market/buy", &[("listing", listing), ("quantity", "0.001"), ("idempotency_key", &key)])
                    .await;
                h.record(t.elapsed().as_micros() as u64).ok();
                if let Err(e) = ok {
                    if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                        eprintln!("purchase failed: {e:#}");
                    }
                }
            }
            h
        });
    }
    let mut h = histogram();
    while let Some(part) = tasks.join_next().await {
        h.add(part?)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    server.stop().await?;
    let attempts = h.len();
    let errors = errors.load(Ordering::Relaxed) as u64;
    let succeeded = attempts - errors;
    let orders: u64 = sql("SELECT count(*) FROM orders WHERE status = 'completed'").await?.parse()?;
    let sold: u64 = sql("SELECT coalesce(sum(sold_kg), 0) FROM listings").await?.parse()?;
    let double = double_sales().await?;
    let balanced = ledger_balanced().await?;
    let ops = succeeded as f64 / elapsed;
    bench_line(
        "purchase_distinct",
        &[
            ("ops_per_s", format!("{ops:.0}")),
            ("p50_ms", format!("{:.1}", ms(&h, 0.50))),
            ("p95_ms", format!("{:.1}", ms(&h, 0.95))),
            ("p99_ms", format!("{:.1}", ms(&h, 0.99))),
            ("errors", errors.to_string()),
            ("double_sales", double.to_string()),
            ("ledger_balanced", balanced.to_string()),
            ("connections", concurrency.to_string()),
        ],
    );
    let ok = orders == succeeded && sold == succeeded && double == 0 && balanced;
    if !ok {
        eprintln!("purchase_distinct: {succeeded} answered 200, {orders} completed orders, {sold} kg sold");
    }
    Ok(ok && errors == 0)
}

pub async fn purchase_race(concurrency: usize) -> anyhow::Result<bool> {
    let seeded = seed(1, 1, 100, 200).await?;
    let server = Server::start().await?;
    let sessions = Arc::new(sign_in(&server.base, &seeded.buyers).await?);
    let listing = Arc::new(seeded.listings[0].clone());
    let attempts = 10_000u64;
    println!("{attempts} attempts to buy 1 kg of {listing} (100 kg), {concurrency} at a time…");
    let next = Arc::new(AtomicU64::new(0));
    let (won, sold_out, errors) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let deadline = Instant::now() + Duration::from_secs(120);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let (sessions, listing, next) = (sessions.clone(), listing.clone(), next.clone());
        let (won, sold_out, errors) = (won.clone(), sold_out.clone(), errors.clone());
        tasks.spawn(async move {
            let mut h = histogram();
            let session = &sessions[w % sessions.len()];
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= attempts || Instant::now() > deadline {
                    break;
                }
                let key = format!("race-{i:08}");
                let t = Instant::now();
                let r = session
                    .http
                    .post(format!("{}/api/market/buy", session.base))
                    .header("accept", "application/json")
                    .form(&[("listing", listing.as_str()), ("quantity", "0.001"), ("idempotency_key", &key)])
                    .send()
                    .await;
                let outcome = match r {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body = r.text().await.unwrap_or_default();
                        (status, body)
                    }
                    Err(e) => (0, e.to_string()),
                };
                h.record(t.elapsed().as_micros() as u64).ok();
                match outcome {
                    (200, _) => won.fetch_add(1, Ordering::Relaxed),
                    (409, b) if b.contains("Sold out") => sold_out.fetch_add(1, Ordering::Relaxed),
                    (s, b) => {
                        if errors.load(Ordering::Relaxed) < 5 {
                            eprintln!("unexpected answer {s}: {b}");
                        }
                        errors.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            h
        });
    }
    let mut h = histogram();
    while let Some(part) = tasks.join_next().await {
        h.add(part?)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    server.stop().await?;
    let (won, errors) = (won.load(Ordering::Relaxed), errors.load(Ordering::Relaxed));
    let sold = sql(&format!("SELECT sold_kg FROM listings WHERE number = '{listing}'")).await?;
    let orders = sql("SELECT count(*) FROM orders WHERE status = 'completed'").await?;
    let bought = sql(
        "SELECT coalesce(sum(balance), 0)::bigint FROM ledger_accounts a JOIN users u ON u.id = a.owner_id
         WHERE a.asset = 'credit' AND a.kind = 'available' AND u.role = 'buyer'",
    )
    .await?;
    let double = double_sales().await?;
    let balanced = ledger_balanced().await?;
    bench_line(
        "purchase_race",
        &[
            ("attempts", h.len().to_string()),
            ("succeeded", won.to_string()),
            ("sold_out", sold_out.load(Ordering::Relaxed).to_string()),
            ("double_sales", double.to_string()),
            ("errors", errors.to_string()),
            ("ledger_balanced", balanced.to_string()),
            ("p99_ms", format!("{:.1}", ms(&h, 0.99))),
            ("elapsed_s", format!("{elapsed:.1}")),
        ],
    );
    let ok = won == 100 && sold == "100" && orders == "100" && bought == "100" && double == 0 && errors == 0 && balanced;
    if !ok {
        eprintln!("purchase_race: {won} won, listing sold {sold} kg, {orders} orders, buyers hold {bought} kg");
    }
    Ok(ok && h.len() == attempts)
}

const SEARCHES: &[&str] = &[
    "/market",
    "/market?page=2",
    "/market?sort=price_desc&page=3",
    "/market?sort=newest",
    "/market?sort=quantity&page=5",
    "/market?region=VN&page=2",
    "/market?region=TH&sort=price_desc",
    "/market?min_price=150000&max_price=300000&page=4",
    "/market?vintage=2026&sort=newest&page=10",
    "/market?page=20",
];

pub async fn ssr_market(concurrency: usize) -> anyhow::Result<bool> {
    let _ = seed(100, 100_000, 1000, 0).await?;
    let url = std::env::var("DATABASE_URL")?;
    tokio::process::Command::new(harness::psql()?)
        .args([&url, "-qc", "VACUUM ANALYZE", "-c", "CHECKPOINT"])
        .status()
        .await?;
    let server = Server::start().await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(60))
        .build()?;
    // Warm-up: every search once.
    for path in SEARCHES {
        let r = http.get(format!("{}{path}", server.base)).send().await?;
        ensure!(r.status().is_success(), "{path}: {}", r.status());
    }
    let pages = 20_000u64;
    println!("{pages} search pages, {concurrency} connections…");
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(30);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, next, errors, base) = (http.clone(), next.clone(), errors.clone(), server.base.clone());
        tasks.spawn(async move {
            let mut h = histogram();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= pages || Instant::now() > deadline {
                    break;
                }
                let path = SEARCHES[i as usize % SEARCHES.len()];
                let t = Instant::now();
                let body = match http.get(format!("{base}{path}")).send().await {
                    Ok(r) if r.status().is_success() => r.text().await.ok(),
                    _ => None,
                };
                h.record(t.elapsed().as_micros() as u64).ok();
                let rows = body.as_deref().map_or(0, |b| b.matches("href=\"/market/LST-").count());
                if rows != 50 && errors.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("{path}: {rows} listings on the page");
                }
            }
            h
        });
    }
    let mut h = histogram();
    while let Some(part) = tasks.join_next().await {
        h.add(part?)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    server.stop().await?;
    let errors = errors.load(Ordering::Relaxed);
    bench_line(
        "ssr_market",
        &[
            ("pages_per_s", format!("{:.0}", h.len() as f64 / elapsed)),
            ("p50_ms", format!("{:.1}", ms(&h, 0.50))),
            ("p95_ms", format!("{:.1}", ms(&h, 0.95))),
            ("p99_ms", format!("{:.1}", ms(&h, 0.99))),
            ("errors", errors.to_string()),
            ("connections", concurrency.to_string()),
            ("listings", "100000".into()),
        ],
    );
    Ok(errors == 0)
}
