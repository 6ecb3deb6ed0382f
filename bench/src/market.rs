//! The marketplace benchmarks: `purchase_distinct` (many buyers buying from many listings),
//! `purchase_race` (10,000 attempts on one listing that can fill 100) and `ssr_market` (the
//! server-rendered search page, 50 listings out of 100,000).
//!
//! The market is made by the server's own `seed-market` command before the server starts (real
//! services: verified issuances, listings that reserve their credits, funded buyers); it is not
//! measured. Buyers sign in before the load starts (not measured either). After the load, the
//! database is checked with `psql`: orders against the answers, no listing sold beyond its
//! quantity, and a balanced ledger.

use crate::harness::{self, bench_line, histogram, ms, Server, Session};
use anyhow::{ensure, Context};
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde::Deserialize;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The password of every seeded account.
pub(crate) const PASSWORD: &str = "bench-market-2026";
/// Money in each buyer's wallet (VND); a 1 kg purchase costs at most 400.
const MONEY: &str = "1000000000";

#[derive(Deserialize)]
pub(crate) struct Seeded {
    pub sellers: Vec<String>,
    pub buyers: Vec<String>,
    pub listings: Vec<String>,
}

/// `server seed-market`: `listings` fixed-price listings of `listing_kg` each from `sellers`
/// sellers, and `buyers` buyers with `MONEY` in their wallets.
pub(crate) async fn seed(
    sellers: usize,
    listings: usize,
    listing_kg: u64,
    buyers: usize,
) -> anyhow::Result<Seeded> {
    let dir = harness::work_dir();
    std::fs::create_dir_all(dir.join("server-data"))?;
    let out = dir.join("market.json");
    std::fs::remove_file(&out).ok();
    println!(
        "seeding {listings} listings of {listing_kg} kg from {sellers} seller(s) and {buyers} funded buyer(s) \
         with `server seed-market` (not measured)…"
    );
    let started = Instant::now();
    let status = tokio::process::Command::new(harness::server_binary())
        .arg("seed-market")
        .args(["--sellers", &sellers.to_string()])
        .args(["--listings", &listings.to_string()])
        .args(["--listing-kg", &listing_kg.to_string()])
        .args(["--buyers", &buyers.to_string()])
        .args(["--money", MONEY, "--password", PASSWORD, "--out"])
        .arg(&out)
        .env("EVCX_DATA_DIR", dir.join("server-data"))
        .env("EVCX_LOG", "warn")
        .status()
        .await
        .context("running server seed-market")?;
    ensure!(status.success(), "server seed-market failed ({status})");
    let seeded: Seeded = serde_json::from_slice(&std::fs::read(&out)?)
        .with_context(|| format!("reading {}", out.display()))?;
    ensure!(
        seeded.listings.len() == listings && seeded.buyers.len() == buyers,
        "seed-market made {} listings and {} buyers, expected {listings} and {buyers}",
        seeded.listings.len(),
        seeded.buyers.len()
    );
    println!("  {:.1} s", started.elapsed().as_secs_f64());
    Ok(seeded)
}

/// Steady state before the load: the seeded rows vacuumed, analyzed and written out.
pub(crate) async fn settle() -> anyhow::Result<()> {
    println!("vacuum, analyze and checkpoint after seeding…");
    let url = std::env::var("DATABASE_URL")?;
    if let Ok(experiment) = std::env::var("EVCX_BENCH_SQL") {
        let mut args = vec![url.as_str(), "-q", "-v", "ON_ERROR_STOP=1"];
        for statement in experiment.split(";;") {
            args.extend(["-c", statement]);
        }
        let status = tokio::process::Command::new(harness::psql()?)
            .args(&args)
            .status()
            .await?;
        ensure!(status.success(), "EVCX_BENCH_SQL failed");
    }
    let status = tokio::process::Command::new(harness::psql()?)
        .args([&url, "-q", "-c", "VACUUM (ANALYZE)", "-c", "CHECKPOINT"])
        .status()
        .await?;
    ensure!(status.success(), "psql could not vacuum");
    Ok(())
}

/// One signed-in session per buyer, in the order given (a few sign-ins at a time).
pub(crate) async fn sign_in(base: &str, buyers: &[String]) -> anyhow::Result<Vec<Session>> {
    println!("signing in {} buyers (not measured)…", buyers.len());
    let started = Instant::now();
    let sessions: Vec<anyhow::Result<Session>> = futures::stream::iter(buyers)
        .map(|email| Session::login(base, email, PASSWORD))
        .buffered(4)
        .collect()
        .await;
    let sessions = sessions.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    println!("  {:.1} s", started.elapsed().as_secs_f64());
    Ok(sessions)
}

/// Runs one psql query and answers its single value.
pub(crate) async fn sql(query: &str) -> anyhow::Result<String> {
    let url = std::env::var("DATABASE_URL")?;
    let out = tokio::process::Command::new(harness::psql()?)
        .args([&url, "-Atc", query])
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// With `EVCX_PG_PROFILE=1`, resets pg_stat_statements before a load.
pub(crate) async fn profile_reset() -> anyhow::Result<()> {
    if std::env::var("EVCX_PG_PROFILE").is_ok_and(|v| v == "1") {
        sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").await?;
        sql("SELECT pg_stat_statements_reset()").await?;
    }
    Ok(())
}

/// With `EVCX_PG_PROFILE=1`, prints the statements that took the most time during the load.
pub(crate) async fn profile_print() -> anyhow::Result<()> {
    if std::env::var("EVCX_PG_PROFILE").is_ok_and(|v| v == "1") {
        let top = sql(
            "SELECT string_agg(format('%8s calls %8s ms total %6s ms mean  %s', calls, round(total_exec_time::numeric, 0),
                                      round(mean_exec_time::numeric, 3), left(regexp_replace(query, '\\s+', ' ', 'g'), 150)), E'\n')
             FROM (SELECT * FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 40) s",
        )
        .await?;
        println!("statements by total time:\n{top}");
    }
    Ok(())
}

/// Prints `CHECK FAILED` when `got` is not `want`; answers whether it is.
pub(crate) fn check(what: &str, got: impl std::fmt::Display, want: impl std::fmt::Display) -> bool {
    let (got, want) = (got.to_string(), want.to_string());
    if got != want {
        println!("CHECK FAILED: {what} = {got}, expected {want}");
    }
    got == want
}

/// The ledger's invariants, checked from outside: every asset sums to zero, no user is below
/// zero, and every account's balance is the sum of its entries.
pub(crate) async fn ledger_balanced() -> anyhow::Result<bool> {
    let unbalanced = sql(
        "SELECT count(*) FROM (SELECT asset FROM ledger_entries GROUP BY asset HAVING sum(amount) <> 0) s",
    )
    .await?;
    let negative =
        sql("SELECT count(*) FROM ledger_accounts WHERE owner_id IS NOT NULL AND balance < 0")
            .await?;
    let drift = sql("SELECT count(*) FROM ledger_accounts a
         LEFT JOIN (SELECT account_id, sum(amount) s FROM ledger_entries GROUP BY account_id) e
           ON e.account_id = a.id
         WHERE a.balance <> coalesce(e.s, 0)")
    .await?;
    let a = check("assets whose entries do not sum to 0", unbalanced, 0);
    let b = check("user accounts below 0", negative, 0);
    let c = check(
        "accounts whose balance is not the sum of their entries",
        drift,
        0,
    );
    Ok(a && b && c)
}

/// Listings sold (or held for payments) beyond their quantity.
async fn double_sales() -> anyhow::Result<u64> {
    Ok(
        sql("SELECT count(*) FROM listings WHERE sold_kg + pending_kg > quantity_kg")
            .await?
            .parse()?,
    )
}

async fn completed_orders() -> anyhow::Result<u64> {
    Ok(
        sql("SELECT count(*) FROM orders WHERE status = 'completed'")
            .await?
            .parse()?,
    )
}

/// Kilograms of credits in buyers' hands.
async fn buyers_credits_kg() -> anyhow::Result<String> {
    sql(
        "SELECT coalesce(sum(balance), 0)::bigint FROM ledger_accounts
         WHERE asset = 'credit' AND kind = 'available'
           AND owner_id IN (SELECT id FROM users WHERE role = 'buyer')",
    )
    .await
}

/// A small deterministic generator, so every run asks for the same listings.
fn pick(seed: u64, n: usize) -> usize {
    let x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((x >> 33) % n as u64) as usize
}

/// What one request came to.
pub(crate) enum Answer {
    Ok,
    /// A refusal the benchmark expects (sold out).
    Refused,
    Error(String),
}

pub(crate) struct Load {
    pub h: Histogram<u64>,
    pub ok: u64,
    pub refused: u64,
    pub errors: u64,
    pub elapsed: f64,
}

/// `workers` loops, each sending `request(worker, its nth request, global index)` until `total`
/// requests are sent or `limit` has passed; every latency goes into the histogram.
pub(crate) async fn drive<F, Fut>(
    workers: usize,
    total: u64,
    limit: Duration,
    request: F,
) -> anyhow::Result<Load>
where
    F: Fn(usize, u64, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Answer> + Send + 'static,
{
    let request = Arc::new(request);
    let next = Arc::new(AtomicU64::new(0));
    let printed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + limit;
    let started = Instant::now();
    let cpu_before = machine_cpu();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (request, next, printed) = (request.clone(), next.clone(), printed.clone());
        tasks.spawn(async move {
            let mut h = histogram();
            let (mut ok, mut refused, mut errors) = (0u64, 0u64, 0u64);
            for n in 0.. {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() > deadline {
                    break;
                }
                let t = Instant::now();
                let answer = request(w, n, i).await;
                h.record(t.elapsed().as_micros() as u64).ok();
                match answer {
                    Answer::Ok => ok += 1,
                    Answer::Refused => refused += 1,
                    Answer::Error(e) => {
                        errors += 1;
                        if printed.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("  unexpected answer: {e}");
                        }
                    }
                }
            }
            (h, ok, refused, errors)
        });
    }
    let mut load = Load {
        h: histogram(),
        ok: 0,
        refused: 0,
        errors: 0,
        elapsed: 0.0,
    };
    while let Some(done) = tasks.join_next().await {
        let (h, ok, refused, errors) = done?;
        load.h.add(&h)?;
        load.ok += ok;
        load.refused += refused;
        load.errors += errors;
    }
    load.elapsed = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, machine_cpu()) {
        (Some(before), Some(after)) if !load.h.is_empty() => format!(
            "; the machine's CPU {:.2} ms per request, {:.0} % of it taken by the hypervisor",
            (after.busy - before.busy) / load.h.len() as f64,
            100.0 * (after.stolen - before.stolen) / (after.all - before.all).max(1.0)
        ),
        _ => String::new(),
    };
    println!(
        "  {} requests in {:.1} s ({:.0}/s); p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms; {} ok, {} refused, {} errors{cpu}",
        load.h.len(),
        load.elapsed,
        load.h.len() as f64 / load.elapsed,
        ms(&load.h, 0.50),
        ms(&load.h, 0.95),
        ms(&load.h, 0.99),
        load.ok,
        load.refused,
        load.errors
    );
    Ok(load)
}

/// The machine's CPU time so far, in ms, from /proc/stat.
struct MachineCpu {
    /// Busy in every process (the server, PostgreSQL and this load client). Steadier than
    /// throughput for comparing two builds on a noisy machine.
    busy: f64,
    /// Taken by the hypervisor for other machines (steal): the figures of a run that lost much
    /// to it are low.
    stolen: f64,
    /// Every state, idle included.
    all: f64,
}

/// None where there is no /proc/stat.
fn machine_cpu() -> Option<MachineCpu> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait (and
    // steal, which no process here spent).
    let busy: f64 = fields
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .take(6)
        .map(|(_, v)| v)
        .sum();
    // Clock ticks, 100 per second on Linux.
    Some(MachineCpu {
        busy: busy * 10.0,
        stolen: fields.get(7).copied().unwrap_or(0.0) * 10.0,
        all: fields.iter().take(8).sum::<f64>() * 10.0,
    })
}

/// The most a benchmark buyer pays per tonne (`expected_price`): the seed's highest price, so
/// no seeded listing is refused for its price.
const MAX_PRICE: &str = "400000.00";

/// `POST /api/market/buy` of 1 kg: the status and the body.
async fn buy(session: &Session, listing: &str, key: &str) -> (u16, String) {
    let r = session
        .http
        .post(format!("{}/api/market/buy", session.base))
        .header("accept", "application/json")
        .form(&[
            ("listing", listing),
            ("quantity", "0.001"),
            ("expected_price", MAX_PRICE),
            ("idempotency_key", key),
        ])
        .send()
        .await;
    match r {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, format!("{e:#}")),
    }
}

/// The buyer a worker sends its `n`th purchase as: worker `w` takes turns with buyers `w`,
/// `w + workers`, `w + 2·workers`, …, so no two purchases in flight share a wallet (while there
/// are more buyers than workers).
fn buyer_of(buyers: usize, workers: usize, w: usize, n: u64) -> usize {
    if workers >= buyers {
        return w % buyers;
    }
    let own = (buyers - w).div_ceil(workers);
    w + workers * (n % own as u64) as usize
}

pub async fn purchase_distinct(concurrency: usize) -> anyhow::Result<bool> {
    const PURCHASES: u64 = 20_000;
    let seeded = seed(50, 2_000, 100, 200).await?;
    settle().await?;
    let server = Server::start().await?;
    let sessions = Arc::new(sign_in(&server.base, &seeded.buyers).await?);
    let listings = Arc::new(seeded.listings);
    println!(
        "purchase_distinct: {PURCHASES} purchases of 1 kg (or 30 s) by {} buyers from {} listings, {concurrency} at a time…",
        sessions.len(),
        listings.len()
    );
    profile_reset().await?;
    let load = drive(
        concurrency,
        PURCHASES,
        Duration::from_secs(30),
        move |w, n, i| {
            let (sessions, listings) = (sessions.clone(), listings.clone());
            async move {
                let session = &sessions[buyer_of(sessions.len(), concurrency, w, n)];
                let listing = &listings[pick(i, listings.len())];
                match buy(session, listing, &format!("distinct-{i:08}")).await {
                    (200, _) => Answer::Ok,
                    (status, body) => Answer::Error(format!("{listing}: {status} {body}")),
                }
            }
        },
    )
    .await?;
    server.stop().await?;
    profile_print().await?;

    println!("checking the database…");
    let double = double_sales().await?;
    let balanced = ledger_balanced().await?;
    let mut ok = check("errors", load.errors, 0);
    ok &= check("completed orders", completed_orders().await?, load.ok);
    ok &= check(
        "kg sold (sum of sold_kg)",
        sql("SELECT coalesce(sum(sold_kg), 0) FROM listings").await?,
        load.ok,
    );
    ok &= check("kg in buyers' hands", buyers_credits_kg().await?, load.ok);
    ok &= check("double sales", double, 0);
    ok &= balanced;
    bench_line(
        "purchase_distinct",
        &[
            ("ops_per_s", format!("{:.0}", load.ok as f64 / load.elapsed)),
            ("p50_ms", format!("{:.1}", ms(&load.h, 0.50))),
            ("p95_ms", format!("{:.1}", ms(&load.h, 0.95))),
            ("p99_ms", format!("{:.1}", ms(&load.h, 0.99))),
            ("errors", load.errors.to_string()),
            ("double_sales", double.to_string()),
            ("ledger_balanced", balanced.to_string()),
            ("purchases", load.ok.to_string()),
            ("connections", concurrency.to_string()),
        ],
    );
    Ok(ok)
}

pub async fn purchase_race(concurrency: usize) -> anyhow::Result<bool> {
    const ATTEMPTS: u64 = 10_000;
    const FILLS: u64 = 100;
    let seeded = seed(1, 1, FILLS, 200).await?;
    settle().await?;
    let server = Server::start().await?;
    let sessions = Arc::new(sign_in(&server.base, &seeded.buyers).await?);
    let listing = Arc::new(seeded.listings[0].clone());
    println!(
        "purchase_race: {ATTEMPTS} attempts to buy 1 kg of {listing} ({FILLS} kg) by {} buyers, {concurrency} at a time…",
        sessions.len()
    );
    let load = {
        let listing = listing.clone();
        drive(
            concurrency,
            ATTEMPTS,
            Duration::from_secs(120),
            move |_, _, i| {
                let (sessions, listing) = (sessions.clone(), listing.clone());
                async move {
                    let session = &sessions[i as usize % sessions.len()];
                    match buy(session, &listing, &format!("race-{i:08}")).await {
                        (200, _) => Answer::Ok,
                        (409, body) if body.contains("Sold out") => Answer::Refused,
                        (422, body) if body.contains("Only ") => Answer::Refused,
                        (status, body) => Answer::Error(format!("{status} {body}")),
                    }
                }
            },
        )
        .await?
    };
    server.stop().await?;

    println!("checking the database…");
    let double = double_sales().await?;
    let balanced = ledger_balanced().await?;
    let mut ok = check("attempts", load.h.len(), ATTEMPTS);
    ok &= check("succeeded", load.ok, FILLS);
    ok &= check("errors", load.errors, 0);
    ok &= check(
        "sold_kg of the listing",
        sql(&format!(
            "SELECT sold_kg FROM listings WHERE number = '{listing}'"
        ))
        .await?,
        FILLS,
    );
    ok &= check("completed orders", completed_orders().await?, FILLS);
    ok &= check("kg in buyers' hands", buyers_credits_kg().await?, FILLS);
    ok &= check("double sales", double, 0);
    ok &= balanced;
    bench_line(
        "purchase_race",
        &[
            ("attempts", load.h.len().to_string()),
            ("succeeded", load.ok.to_string()),
            ("double_sales", double.to_string()),
            ("errors", load.errors.to_string()),
            ("ledger_balanced", balanced.to_string()),
            ("p99_ms", format!("{:.1}", ms(&load.h, 0.99))),
            ("elapsed_s", format!("{:.1}", load.elapsed)),
            ("sold_out", load.refused.to_string()),
            ("connections", concurrency.to_string()),
        ],
    );
    Ok(ok)
}

/// The searches of `ssr_market`, in turn: pages 1–20, every sort, a region, a price range and a
/// vintage; each has at least 50 listings on it.
const SEARCHES: &[&str] = &[
    "/market?sort=price&page=1",
    "/market?sort=price&page=2",
    "/market?sort=price&page=7",
    "/market?sort=price&page=20",
    "/market?sort=price_desc&page=1",
    "/market?sort=price_desc&page=3",
    "/market?sort=newest&page=1",
    "/market?sort=newest&page=12",
    "/market?sort=quantity&page=1",
    "/market?sort=quantity&page=5",
    "/market?region=VN&sort=price&page=2",
    "/market?region=TH&sort=price_desc&page=1",
    "/market?min_price=150000&max_price=300000&sort=price&page=4",
    "/market?vintage=2026&sort=newest&page=10",
    "/market",
    "/market?page=16",
];

/// Listings on a search page (each row links to its listing once).
fn rows(body: &str) -> usize {
    body.matches("href=\"/market/LST-").count()
}

/// Pages the server rendered for the search (not served from its page cache).
static RENDERED: AtomicU64 = AtomicU64::new(0);

/// One search page; `fresh` asks the server for a new render (`Cache-Control: no-cache`).
async fn search(http: &reqwest::Client, base: &str, path: &str, fresh: bool) -> Answer {
    let mut request = http.get(format!("{base}{path}"));
    if fresh {
        request = request.header("cache-control", "no-cache");
    }
    match request.send().await {
        Ok(r) if r.status().is_success() => {
            if r.headers().get("x-evcx-cache").is_none_or(|v| v != "hit") {
                RENDERED.fetch_add(1, Ordering::Relaxed);
            }
            match r.text().await {
                Ok(body) if rows(&body) == 50 => Answer::Ok,
                Ok(body) => Answer::Error(format!("{path}: {} listings on the page", rows(&body))),
                Err(e) => Answer::Error(format!("{path}: {e:#}")),
            }
        }
        Ok(r) => Answer::Error(format!("{path}: {}", r.status())),
        Err(e) => Answer::Error(format!("{path}: {e:#}")),
    }
}

pub async fn ssr_market(concurrency: usize) -> anyhow::Result<bool> {
    const PAGES: u64 = 20_000;
    const LISTINGS: usize = 100_000;
    seed(100, LISTINGS, 1_000, 0).await?;
    settle().await?;
    let server = Server::start().await?;
    // Anonymous visitors: no cookies, connections kept alive.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(60))
        .build()?;
    println!("warm-up: every search 3 times…");
    for _ in 0..3 {
        for path in SEARCHES {
            if let Answer::Error(e) = search(&http, &server.base, path, false).await {
                anyhow::bail!("warm-up: {e}");
            }
        }
    }
    println!(
        "ssr_market: {} search pages (or 30 s) over {} searches, {concurrency} connections…",
        5 * PAGES,
        SEARCHES.len()
    );
    profile_reset().await?;
    let base = Arc::new(server.base.clone());
    let run = |fresh: bool| {
        let (http, base) = (http.clone(), base.clone());
        drive(
            concurrency,
            if fresh { PAGES } else { 5 * PAGES },
            Duration::from_secs(30),
            move |_, _, i| {
                let (http, base) = (http.clone(), base.clone());
                async move { search(&http, &base, SEARCHES[i as usize % SEARCHES.len()], fresh).await }
            },
        )
    };
    RENDERED.store(0, Ordering::Relaxed);
    let load = run(false).await?;
    let rendered = RENDERED.load(Ordering::Relaxed);
    profile_print().await?;
    println!("  {rendered} of them rendered, the rest served from the page cache");
    // The baseline: every page rendered (as a visitor's forced reload gets it).
    println!("baseline: the same searches, each asking for a fresh render…");
    let fresh = run(true).await?;
    server.stop().await?;
    bench_line(
        "ssr_market",
        &[
            (
                "pages_per_s",
                format!("{:.0}", load.ok as f64 / load.elapsed),
            ),
            ("p50_ms", format!("{:.1}", ms(&load.h, 0.50))),
            ("p95_ms", format!("{:.1}", ms(&load.h, 0.95))),
            ("p99_ms", format!("{:.1}", ms(&load.h, 0.99))),
            ("errors", (load.errors + fresh.errors).to_string()),
            ("rendered", rendered.to_string()),
            (
                "fresh_pages_per_s",
                format!("{:.0}", fresh.ok as f64 / fresh.elapsed),
            ),
            ("fresh_p95_ms", format!("{:.1}", ms(&fresh.h, 0.95))),
            (
                "ratio_vs_fresh",
                format!(
                    "{:.1}",
                    (load.ok as f64 / load.elapsed) / (fresh.ok as f64 / fresh.elapsed)
                ),
            ),
            ("connections", concurrency.to_string()),
            ("listings", LISTINGS.to_string()),
        ],
    );
    Ok(check("errors", load.errors + fresh.errors, 0))
}
