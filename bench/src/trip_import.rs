//! `trip_import`: a million-row CSV through the real import path (HTTP upload → parse,
//! validate, dedupe, CO₂, COPY), timed against `psql \copy` of the same file into a bare table,
//! with the server's resident memory watched throughout.
//!
//! `dashboard`: the same import, then the owner's server-rendered dashboard page (day, month
//! and year views in turn): 1,000 pages one at a time (what the owner sees; the target), then
//! 2,000 from 4 connections at once (2 per core: latency under load).

use crate::harness::{self, bench_line, ms, Server, Session};
use anyhow::{bail, ensure, Context};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Import,
    Dashboard,
}

/// Every this many rows one repeats the row before it (a duplicate the import must refuse)…
const DUPLICATE_EVERY: u64 = 1000;
/// …and one, half-way between, ends before it starts (a hard error).
const BROKEN_OFFSET: u64 = 500;

struct File {
    path: PathBuf,
    rows: u64,
    duplicates: u64,
    broken: u64,
}

impl File {
    fn good(&self) -> u64 {
        self.rows - self.duplicates - self.broken
    }
}

/// Writes (once) a CSV of `rows` trips, ten minutes apart, ending long before today.
fn trip_file(rows: u64) -> anyhow::Result<File> {
    let dir = harness::work_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("trips-{rows}.csv"));
    let (mut duplicates, mut broken) = (0, 0);
    for i in 0..rows {
        if i > 0 && i % DUPLICATE_EVERY == 0 {
            duplicates += 1;
        } else if i % DUPLICATE_EVERY == BROKEN_OFFSET {
            broken += 1;
        }
    }
    let file = File {
        path,
        rows,
        duplicates,
        broken,
    };
    if file.path.exists() {
        return Ok(file);
    }
    println!("writing {} ({rows} rows)…", file.path.display());
    let tmp = file.path.with_extension("tmp");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    writeln!(
        out,
        "start_time,end_time,distance_km,energy_kwh,start_lat,start_lng,end_lat,end_lng,odometer_start_km,odometer_end_km"
    )?;
    // 2005-01-01T00:00:00+07:00: a million trips ten minutes apart end in 2024.
    let origin = chrono::DateTime::parse_from_rfc3339("2005-01-01T00:00:00+07:00")?;
    let mut odometer: u64 = 120_000; // tenths of a km
    let mut previous = String::new();
    for i in 0..rows {
        if i > 0 && i % DUPLICATE_EVERY == 0 {
            out.write_all(previous.as_bytes())?;
            continue;
        }
        let start = origin + chrono::Duration::minutes(10 * i as i64);
        let minutes = 4 + (i * 7919 % 5) as i64; // 4–8 minutes
        let mut end = start + chrono::Duration::minutes(minutes);
        if i % DUPLICATE_EVERY == BROKEN_OFFSET {
            end = start - chrono::Duration::minutes(1);
        }
        // 30–54 km/h: tenths of a km per minute 5–9.
        let tenths = minutes as u64 * (5 + i * 104_729 % 5);
        let (lat, lng) = (
            21_000_000 + (i * 31 % 50_000),
            105_800_000 + (i * 17 % 50_000),
        );
        let energy = if i % 3 == 0 {
            String::new()
        } else {
            format!("{}.{:03}", tenths * 16 / 1000, tenths * 16 % 1000)
        };
        previous = format!(
            "{},{},{}.{},{},{}.{:06},{}.{:06},{}.{:06},{}.{:06},{}.{},{}.{}\n",
            start.format("%Y-%m-%dT%H:%M:%S%:z"),
            end.format("%Y-%m-%dT%H:%M:%S%:z"),
            tenths / 10,
            tenths % 10,
            energy,
            lat / 1_000_000,
            lat % 1_000_000,
            lng / 1_000_000,
            lng % 1_000_000,
            (lat + 900) / 1_000_000,
            (lat + 900) % 1_000_000,
            (lng + 1200) / 1_000_000,
            (lng + 1200) % 1_000_000,
            odometer / 10,
            odometer % 10,
            (odometer + tenths) / 10,
            (odometer + tenths) % 10,
        );
        odometer += tenths;
        out.write_all(previous.as_bytes())?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, &file.path)?;
    Ok(file)
}

/// `psql \copy` of the file into a table with the file's columns and no constraints.
async fn psql_copy(file: &Path) -> anyhow::Result<Duration> {
    let url = std::env::var("DATABASE_URL")?;
    let psql = harness::psql()?;
    let sql = "CREATE TABLE bare_trips (start_time timestamptz, end_time timestamptz, distance_km numeric,
                   energy_kwh numeric, start_lat numeric, start_lng numeric, end_lat numeric, end_lng numeric,
                   odometer_start_km numeric, odometer_end_km numeric)";
    let status = tokio::process::Command::new(&psql)
        .args([&url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .status()
        .await?;
    ensure!(status.success(), "psql could not create the bare table");
    let copy = format!(
        "\\copy bare_trips FROM '{}' WITH (FORMAT csv, HEADER true)",
        file.display()
    );
    let started = Instant::now();
    let status = tokio::process::Command::new(&psql)
        .args([&url, "-q", "-v", "ON_ERROR_STOP=1", "-c", &copy])
        .status()
        .await?;
    let took = started.elapsed();
    ensure!(status.success(), "psql \\copy failed");
    Ok(took)
}

async fn upload(
    owner: &Session,
    vehicle_id: &str,
    file: &Path,
) -> anyhow::Result<serde_json::Value> {
    let handle = tokio::fs::File::open(file).await?;
    let len = handle.metadata().await?.len();
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
        handle,
        256 * 1024,
    ));
    let form = reqwest::multipart::Form::new()
        .text("vehicle_id", vehicle_id.to_owned())
        .text("kind", "trips")
        .part(
            "file",
            reqwest::multipart::Part::stream_with_length(body, len)
                .file_name("trips.csv")
                .mime_str("text/csv")?,
        );
    let r = owner
        .http
        .post(format!("{}/api/imports/upload", owner.base))
        .header("accept", "application/json")
        .multipart(form)
        .send()
        .await?;
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("upload answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

pub async fn run(rows: u64, measure: Measure) -> anyhow::Result<bool> {
    let file = trip_file(rows)?;
    println!(
        "{}: {rows} rows, {:.1} MB ({} duplicates, {} broken rows to refuse)",
        file.path.display(),
        harness::file_mb(&file.path),
        file.duplicates,
        file.broken
    );

    println!("baseline: psql \\copy into a bare table…");
    let baseline = psql_copy(&file.path).await?;
    println!("  {:.2} s", baseline.as_secs_f64());

    let server = Server::start().await?;
    let owner = Session::sign_up(&server.base, "bench-owner@example.com", "ev_owner").await?;
    let vehicle = owner
        .call(
            "vehicles/register",
            &[
                ("make", "VinFast"),
                ("model", "VF 8"),
                ("year", "2024"),
                ("vin", "RLLV8ANA2PV000123"),
                ("plate", "30A-123.45"),
                ("battery_kwh", "87.7"),
                ("efficiency_kwh_per_100km", "16"),
                ("grid_region", "VN"),
                ("time_zone", "Asia/Ho_Chi_Minh"),
            ],
        )
        .await?;
    let vehicle_id = vehicle["id"].as_str().context("vehicle id")?.to_owned();

    let (rss_before, _) = server.memory_mb();
    let watching = Arc::new(AtomicBool::new(true));
    let pid = server.pid();
    let watcher = {
        let watching = watching.clone();
        tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            while watching.load(Ordering::Relaxed) {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                if let Some(kb) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                {
                    peak = peak.max(kb / 1024.0);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        })
    };
    println!("importing through POST /api/imports/upload…");
    let started = Instant::now();
    let report = upload(&owner, &vehicle_id, &file.path).await?;
    let took = started.elapsed();
    watching.store(false, Ordering::Relaxed);
    let rss_peak = watcher.await?.max(server.memory_mb().0);
    let (_, rss_hwm) = server.memory_mb();
    println!("  {:.2} s", took.as_secs_f64());

    let mut ok = true;
    let count = |k: &str| report[k].as_u64().unwrap_or(u64::MAX);
    for (what, got, want) in [
        ("rows_total", count("rows_total"), file.rows),
        ("rows_imported", count("rows_imported"), file.good()),
        ("rows_duplicate", count("rows_duplicate"), file.duplicates),
        (
            "rows_rejected",
            count("rows_rejected"),
            file.duplicates + file.broken,
        ),
    ] {
        if got != want {
            println!("CHECK FAILED: {what} = {got}, expected {want}");
            ok = false;
        }
    }
    let stored = owner.call("dashboard", &[("by", "year")]).await?;
    let stored_trips = stored["total_trips"].as_u64().unwrap_or(0);
    if stored_trips != file.good() {
        println!(
            "CHECK FAILED: the dashboard counts {stored_trips} trips, expected {}",
            file.good()
        );
        ok = false;
    }

    if measure == Measure::Import {
        let rows_per_s = rows as f64 / took.as_secs_f64();
        let ratio = took.as_secs_f64() / baseline.as_secs_f64();
        println!(
            "trip_import: {rows_per_s:.0} rows/s (target ≥ 100000), {ratio:.2}× psql \\copy (target ≤ 2), \
             server RSS {rss_before:.0} MB before, {rss_peak:.0} MB at most during (target ≤ 200)"
        );
        bench_line(
            "trip_import",
            &[
                ("rows", rows.to_string()),
                ("rows_per_s", format!("{rows_per_s:.0}")),
                ("seconds", format!("{:.2}", took.as_secs_f64())),
                ("copy_seconds", format!("{:.2}", baseline.as_secs_f64())),
                ("ratio_vs_copy", format!("{ratio:.2}")),
                ("rss_before_mb", format!("{rss_before:.0}")),
                ("rss_peak_mb", format!("{rss_peak:.0}")),
                ("rss_hwm_mb", format!("{rss_hwm:.0}")),
                ("imported", count("rows_imported").to_string()),
                ("rejected", count("rows_rejected").to_string()),
                ("checks", if ok { "ok" } else { "FAILED" }.to_owned()),
            ],
        );
    } else {
        // Steady state: the maintenance a fresh million-row import sets off (autovacuum of the
        // new rows, the checkpoint writing them out) is done first, as it is for an owner who
        // opens the dashboard any time later.
        println!("vacuum, analyze and checkpoint after the import…");
        let url = std::env::var("DATABASE_URL")?;
        let status = tokio::process::Command::new(harness::psql()?)
            .args([
                &url,
                "-q",
                "-c",
                "VACUUM (ANALYZE) trips",
                "-c",
                "VACUUM (ANALYZE) trip_days",
                "-c",
                "CHECKPOINT",
            ])
            .status()
            .await?;
        ensure!(status.success(), "psql could not vacuum");
        let single = dashboard_load(&owner, file.good(), 1, 1000).await?;
        let loaded = dashboard_load(&owner, file.good(), 4, 2000).await?;
        let ok_pages =
            single.errors == 0 && loaded.errors == 0 && single.wrong == 0 && loaded.wrong == 0;
        ok &= ok_pages;
        bench_line(
            "dashboard",
            &[
                ("trips", file.good().to_string()),
                ("p50_ms", format!("{:.1}", single.p50)),
                ("p95_ms", format!("{:.1}", single.p95)),
                ("p99_ms", format!("{:.1}", single.p99)),
                ("pages_per_s", format!("{:.0}", single.rate)),
                ("c4_p95_ms", format!("{:.1}", loaded.p95)),
                ("c4_pages_per_s", format!("{:.0}", loaded.rate)),
                ("errors", (single.errors + loaded.errors).to_string()),
                ("wrong", (single.wrong + loaded.wrong).to_string()),
            ],
        );
    }
    server.stop().await?;
    Ok(ok)
}

struct Load {
    p50: f64,
    p95: f64,
    p99: f64,
    rate: f64,
    errors: u64,
    wrong: u64,
}

async fn dashboard_load(
    owner: &Session,
    trips: u64,
    connections: u64,
    pages: u64,
) -> anyhow::Result<Load> {
    // The trip count as the page shows it.
    let expected = format!("data-testid=\"total-trips\">{trips}<");
    let views = ["day", "month", "year"];
    // Warm up: one of each.
    for by in views {
        owner
            .http
            .get(format!("{}/dashboard?by={by}", owner.base))
            .send()
            .await?
            .error_for_status()?;
    }
    println!("dashboard: {pages} pages from {connections} connection(s)…");
    let deadline = Instant::now() + Duration::from_secs(120);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (owner, next, expected) = (owner.clone(), next.clone(), expected.clone());
        workers.push(tokio::spawn(async move {
            let mut h = harness::histogram();
            let mut per_view = [
                harness::histogram(),
                harness::histogram(),
                harness::histogram(),
            ];
            let (mut errors, mut wrong) = (0u64, 0u64);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= pages || Instant::now() > deadline {
                    break;
                }
                let by = views[(i % 3) as usize];
                let t = Instant::now();
                let r = owner
                    .http
                    .get(format!("{}/dashboard?by={by}", owner.base))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let body = r.text().await.unwrap_or_default();
                        h.record(t.elapsed().as_micros() as u64).ok();
                        per_view[(i % 3) as usize]
                            .record(t.elapsed().as_micros() as u64)
                            .ok();
                        if !body.contains(&expected) {
                            wrong += 1;
                        }
                    }
                    _ => errors += 1,
                }
            }
            (h, per_view, errors, wrong)
        }));
    }
    let mut h = harness::histogram();
    let mut views_h = [
        harness::histogram(),
        harness::histogram(),
        harness::histogram(),
    ];
    let (mut errors, mut wrong) = (0, 0);
    for w in workers {
        let (wh, pv, e, x) = w.await?;
        h.add(&wh).ok();
        for (total, part) in views_h.iter_mut().zip(pv.iter()) {
            total.add(part).ok();
        }
        errors += e;
        wrong += x;
    }
    for (by, vh) in views.iter().zip(views_h.iter()) {
        println!(
            "  by={by}: p50 {:.1} ms, p95 {:.1} ms",
            ms(vh, 0.5),
            ms(vh, 0.95)
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    let done = h.len();
    println!(
        "  {done} pages in {elapsed:.1} s; p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms; {errors} errors, {wrong} with a wrong trip count",
        ms(&h, 0.5),
        ms(&h, 0.95),
        ms(&h, 0.99)
    );
    Ok(Load {
        p50: ms(&h, 0.5),
        p95: ms(&h, 0.95),
        p99: ms(&h, 0.99),
        rate: done as f64 / elapsed,
        errors: errors.max(pages.saturating_sub(done)),
        wrong,
    })
}
