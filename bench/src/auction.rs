//! The auction benchmarks: `bid_hot` (200 bidders on one auction) and `bid_fanout` (1,000 live
//! watchers across two server instances).
//!
//! Both start from `server seed-market` (one seller, funded buyers; not measured). The seller
//! withdraws their seeded listing and auctions a 1 t lot through the API with a fixed increment
//! of 1 ₫, so almost every rising maximum is a valid bid.

use crate::harness::{bench_line, histogram, ms, Server, Session};
use crate::market::{check, drive, ledger_balanced, seed, settle, sign_in, sql, Answer, PASSWORD};
use anyhow::{ensure, Context};
use app::domain::auction::{self, Increment, State, Terms};
use futures::StreamExt;
use rust_decimal::Decimal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const START: i64 = 100_000;

/// The seller withdraws their seeded listing and auctions 1 t of it for an hour.
async fn open_auction(base: &str, seller: &str, listing: &str) -> anyhow::Result<String> {
    let s = Session::login(base, seller, PASSWORD).await?;
    s.call("listings/cancel", &[("listing", listing)]).await?;
    // Seller 0 of seed-market holds TH credits.
    let number = s
        .call(
            "auctions/create",
            &[
                ("class", "TH:2026"),
                ("quantity", "1"),
                ("starting_price", &START.to_string()),
                ("increment", "1"),
                ("duration_minutes", "60"),
                ("description", "bench lot"),
            ],
        )
        .await?;
    number
        .as_str()
        .map(str::to_owned)
        .context("auctions/create answered no number")
}

/// `POST /api/auctions/bid`: the status and the body.
async fn bid(session: &Session, auction: &str, max: &str, key: &str) -> (u16, String) {
    let r = session
        .http
        .post(format!("{}/api/auctions/bid", session.base))
        .header("accept", "application/json")
        .form(&[("auction", auction), ("max", max), ("idempotency_key", key)])
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

pub async fn bid_hot(concurrency: usize) -> anyhow::Result<bool> {
    const BIDDERS: usize = 200;
    const BIDS: u64 = 10_000;
    let seeded = seed(1, 1, 1_000, BIDDERS).await?;
    settle().await?;
    let server = Server::start().await?;
    let number =
        Arc::new(open_auction(&server.base, &seeded.sellers[0], &seeded.listings[0]).await?);
    let sessions = Arc::new(sign_in(&server.base, &seeded.buyers).await?);
    println!(
        "bid_hot: {BIDS} bids on {number} from {BIDDERS} bidders, {concurrency} at a time, maximums rising by 10 ₫…"
    );
    crate::market::profile_reset().await?;
    let load = {
        let number = number.clone();
        drive(
            concurrency,
            BIDS,
            Duration::from_secs(120),
            move |_, _, i| {
                let (sessions, number) = (sessions.clone(), number.clone());
                async move {
                    let session = &sessions[i as usize % sessions.len()];
                    let max = (START + 10 * (i as i64 + 1)).to_string();
                    match bid(session, &number, &max, &format!("hot-{i:08}")).await {
                        (200, _) => Answer::Ok,
                        // Overtaken while in flight: a correct refusal.
                        (422, body)
                            if body.contains("Bid at least")
                                || body.contains("already the highest") =>
                        {
                            Answer::Refused
                        }
                        (status, body) => Answer::Error(format!("{status} {body}")),
                    }
                }
            },
        )
        .await?
    };
    crate::market::profile_print().await?;
    server.stop().await?;

    println!("checking the database: versions, a serial replay of the accepted bids, holds…");
    let (replayed, problems) = replay(&number).await?;
    let versions = sql(&format!(
        "SELECT count(*) || ' ' || coalesce(min(b.version), 0) || ' ' || coalesce(max(b.version), 0)
         FROM bids b JOIN listings l ON l.id = b.auction_id WHERE l.number = '{number}'"
    ))
    .await?;
    let pending =
        sql("SELECT count(*) FROM ledger_holds WHERE asset = 'money' AND status = 'pending'")
            .await?;
    let leader_holds = sql(&format!(
        "SELECT count(*) FROM ledger_holds h JOIN auctions a ON a.leader_hold_id = h.id
         JOIN listings l ON l.id = a.listing_id WHERE l.number = '{number}' AND h.status = 'pending'"
    ))
    .await?;
    let balanced = ledger_balanced().await?;
    let mut ok = check("errors", load.errors, 0);
    ok &= check("answers", load.ok + load.refused, load.h.len());
    ok &= check(
        "accepted bids stored, versions 1…n",
        versions,
        format!("{0} 1 {0}", load.ok),
    );
    ok &= check("bids differing from the serial replay", problems, 0);
    ok &= check("bids replayed", replayed, load.ok);
    ok &= check("money holds pending (only the leader's)", &pending, 1);
    ok &= check("the leader's hold pending", leader_holds, 1);
    ok &= balanced;
    let processed = load.h.len() as f64 / load.elapsed;
    bench_line(
        "bid_hot",
        &[
            ("bids_per_s", format!("{processed:.0}")),
            ("p50_ms", format!("{:.1}", ms(&load.h, 0.50))),
            ("p99_ms", format!("{:.1}", ms(&load.h, 0.99))),
            ("accepted", load.ok.to_string()),
            ("refused", load.refused.to_string()),
            ("errors", load.errors.to_string()),
            (
                "replay_equal",
                (problems == 0 && replayed == load.ok).to_string(),
            ),
            ("pending_holds", pending),
            ("ledger_balanced", balanced.to_string()),
            ("bidders", BIDDERS.to_string()),
            ("connections", concurrency.to_string()),
        ],
    );
    Ok(ok)
}

/// Replays the accepted bids, in version order, through the domain rules from the opening
/// state: every bid must come out as stored (price after it, whether it led), and the end state
/// must be the auction's. Answers (bids replayed, differences).
async fn replay(number: &str) -> anyhow::Result<(u64, u64)> {
    let terms_row = sql(&format!(
        "SELECT l.seller_id || ',' || a.starting_price || ',' || coalesce(a.increment::text, '') || ',' ||
                coalesce(a.reserve_price::text, '') || ',' || a.soft_close_secs || ',' ||
                (extract(epoch FROM a.ends_at) * 1000000)::bigint || ',' || a.price || ',' ||
                coalesce(a.leader_id::text, '') || ',' || a.bid_count
         FROM auctions a JOIN listings l ON l.id = a.listing_id WHERE l.number = '{number}'"
    ))
    .await?;
    let f: Vec<&str> = terms_row.split(',').collect();
    ensure!(f.len() == 9, "unexpected auction row: {terms_row}");
    let terms = Terms {
        seller: f[0].parse()?,
        starting_price: f[1].parse()?,
        reserve: (!f[3].is_empty()).then(|| f[3].parse()).transpose()?,
        increment: if f[2].is_empty() {
            Increment::Table
        } else {
            Increment::Fixed(f[2].parse()?)
        },
        buy_now: None,
        soft_close_secs: f[4].parse()?,
    };
    let bids = sql(&format!(
        "SELECT string_agg(b.bidder_id || ',' || b.max_price || ',' || b.price_after || ',' || b.is_leading || ',' ||
                           (extract(epoch FROM b.created_at) * 1000000)::bigint || ',' ||
                           coalesce((extract(epoch FROM b.extended_to) * 1000000)::bigint::text, ''), ';' ORDER BY b.version)
         FROM bids b JOIN listings l ON l.id = b.auction_id WHERE l.number = '{number}'"
    ))
    .await?;
    // The bids of this benchmark come long before the end, so none extends it: the end now is
    // the end it opened with (an extension would show up as a difference).
    let ends_at = chrono::DateTime::from_timestamp_micros(f[5].parse()?).context("ends_at")?;
    let mut state = State::opening(&terms, ends_at);
    let (mut replayed, mut problems) = (0u64, 0u64);
    for line in bids.split(';').filter(|l| !l.is_empty()) {
        let b: Vec<&str> = line.split(',').collect();
        let at = chrono::DateTime::from_timestamp_micros(b[4].parse()?).context("bid time")?;
        let max: Decimal = b[1].parse()?;
        match auction::place(&terms, &state, b[0].parse()?, max, at) {
            Ok(p) => {
                let price: Decimal = b[2].parse()?;
                if p.state.price != price || p.leading.to_string() != b[3] {
                    problems += 1;
                    if problems <= 5 {
                        println!(
                            "  replay differs at bid {replayed}: price {} vs {price}, leading {} vs {}",
                            p.state.price, p.leading, b[3]
                        );
                    }
                }
                state = p.state;
            }
            Err(e) => {
                problems += 1;
                if problems <= 5 {
                    println!("  replay refuses stored bid {replayed}: {e:?}");
                }
            }
        }
        replayed += 1;
    }
    let stored_price: Decimal = f[6].parse()?;
    if state.price != stored_price
        || state.leader.map(|l| l.0.to_string()).unwrap_or_default() != f[7]
        || state.bids.to_string() != f[8]
    {
        problems += 1;
        println!(
            "  end state differs: replay {} {:?} {} vs stored {} {} {}",
            state.price, state.leader, state.bids, f[6], f[7], f[8]
        );
    }
    Ok((replayed, problems))
}

pub async fn bid_fanout(watchers: usize) -> anyhow::Result<bool> {
    const BIDS: usize = 200;
    const PACE: Duration = Duration::from_millis(50);
    let seeded = seed(1, 1, 1_000, 2).await?;
    settle().await?;
    let one = Server::start().await?;
    let two = Server::start().await?;
    let number = open_auction(&one.base, &seeded.sellers[0], &seeded.listings[0]).await?;
    let bidders = sign_in(&one.base, &seeded.buyers).await?;
    println!(
        "bid_fanout: {watchers} watchers of {number}, half on each of 2 instances; {BIDS} bids placed on the first, one every {} ms…",
        PACE.as_millis()
    );

    // Every watcher: the first time each version reached it.
    let connected = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let mut tasks = tokio::task::JoinSet::new();
    let clients = [reqwest::Client::new(), reqwest::Client::new()];
    for w in 0..watchers {
        let base = if w % 2 == 0 { &one.base } else { &two.base };
        let url = format!("{base}/live/auctions/{number}");
        let (client, connected, done) = (clients[w % 2].clone(), connected.clone(), done.clone());
        tasks.spawn(async move {
            let mut seen: Vec<(i64, Instant)> = Vec::new();
            let res = client.get(&url).send().await?;
            ensure!(res.status() == 200, "watcher {w}: {}", res.status());
            let mut stream = res.bytes_stream();
            let mut buf = String::new();
            let mut first = true;
            let finished = done.notified();
            tokio::pin!(finished);
            loop {
                tokio::select! {
                    _ = &mut finished => break,
                    chunk = stream.next() => {
                        let Some(chunk) = chunk else { break };
                        let at = Instant::now();
                        buf.push_str(std::str::from_utf8(&chunk?)?);
                        while let Some(end) = buf.find("\n\n") {
                            let block: String = buf.drain(..end + 2).collect();
                            if let Some(v) = block.lines().find_map(|l| l.strip_prefix("id:")) {
                                seen.push((v.trim().parse()?, at));
                                if first {
                                    first = false;
                                    connected.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                }
            }
            anyhow::Ok(seen)
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while connected.load(Ordering::Relaxed) < watchers {
        ensure!(
            Instant::now() < deadline,
            "only {} of {watchers} watchers connected within 60 s",
            connected.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("  {watchers} watchers connected; bidding…");

    // The bids: two bidders outbidding each other; bid k is version k.
    let sent: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::with_capacity(BIDS)));
    let mut errors = 0u64;
    let mut ticker = tokio::time::interval(PACE);
    for k in 1..=BIDS {
        ticker.tick().await;
        let max = (START + 100 * k as i64).to_string();
        let at = Instant::now();
        sent.lock().expect("sent").push(at);
        match bid(&bidders[k % 2], &number, &max, &format!("fan-{k}")).await {
            (200, body) if body.contains(&format!("\"version\":{k}")) => {}
            (status, body) => {
                errors += 1;
                if errors <= 5 {
                    eprintln!("  bid {k}: {status} {body}");
                }
            }
        }
    }
    // Give the last updates time to arrive, then end the streams.
    tokio::time::sleep(Duration::from_secs(2)).await;
    done.notify_waiters();
    let mut all = Vec::with_capacity(watchers);
    while let Some(r) = tasks.join_next().await {
        all.push(r??);
    }
    two.stop().await?;
    one.stop().await?;

    let sent = sent.lock().expect("sent").clone();
    let mut h = histogram();
    let (mut missed, mut coalesced) = (0u64, 0u64);
    for seen in &all {
        for (k, at) in sent.iter().enumerate() {
            let version = k as i64 + 1;
            // The first state at least this new: the screen shows this bid (or a later one).
            match seen.iter().find(|(v, _)| *v >= version) {
                Some((v, shown)) => {
                    if *v > version {
                        coalesced += 1;
                    }
                    h.record(shown.saturating_duration_since(*at).as_micros().max(1) as u64)
                        .ok();
                }
                None => missed += 1,
            }
        }
    }
    let balanced = ledger_balanced().await?;
    let mut ok = check("bid errors", errors, 0);
    ok &= check("watchers", all.len(), watchers);
    ok &= check("missed updates", missed, 0);
    ok &= balanced;
    println!(
        "  {} deliveries; p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {coalesced} arrived already superseded",
        h.len(),
        ms(&h, 0.5),
        ms(&h, 0.95),
        ms(&h, 0.99),
        h.max() as f64 / 1000.0
    );
    bench_line(
        "bid_fanout",
        &[
            ("watchers", watchers.to_string()),
            ("instances", "2".into()),
            ("bids", BIDS.to_string()),
            ("p50_ms", format!("{:.1}", ms(&h, 0.50))),
            ("p99_ms", format!("{:.1}", ms(&h, 0.99))),
            ("max_ms", format!("{:.1}", h.max() as f64 / 1000.0)),
            ("missed", missed.to_string()),
            ("superseded", coalesced.to_string()),
            ("bid_errors", errors.to_string()),
        ],
    );
    Ok(ok)
}
