//! `evcx-bench <name>`: one benchmark of ../shared/BENCHMARKS.md.
//!
//! Run through `make bench-<name>`, which builds the release server and this binary first.
//! Started without `DATABASE_URL`, the binary runs itself again under
//! `server pg-run` (a private PostgreSQL with fsync and synchronous commit ON, removed
//! afterwards); inside, it starts the release server on a free loopback port, loads data,
//! drives a bounded load, stops the server and prints `BENCH <name> k=v …` lines. It exits
//! non-zero when a correctness check fails.
//!
//! For profiling the marketplace benchmarks: `EVCX_PG_PROFILE=1` prints pg_stat_statements
//! after the load; `EVCX_BENCH_SQL` runs SQL after seeding, in one psql session (statements
//! apart by `;;`), e.g. `LOAD 'auto_explain';;ALTER SYSTEM SET …;;SELECT pg_reload_conf()`
//! to have the plans of slow statements in the private server's log.

mod auction;
mod crash;
mod generated;
mod harness;
mod market;
mod trip_import;

use std::process::ExitCode;

const BENCHMARKS: &[&str] = &[
    "trip_import",
    "dashboard",
    "purchase_distinct",
    "purchase_race",
    "ssr_market",
    "bid_hot",
    "bid_fanout",
    "generated_inputs",
    "crash",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first().cloned() else {
        eprintln!(
            "usage: evcx-bench <{}> [--rows N] [--concurrency N] [--inputs N] [--cycles N] [--seed N]",
            BENCHMARKS.join("|")
        );
        return ExitCode::from(2);
    };
    if !BENCHMARKS.contains(&name.as_str()) {
        eprintln!(
            "unknown benchmark {name:?}; one of {}",
            BENCHMARKS.join(", ")
        );
        return ExitCode::from(2);
    }
    let rows = match option(&args, "--rows").map(|v| v.parse::<u64>()) {
        None => 1_000_000,
        Some(Ok(n)) if n >= 10_000 => n,
        Some(_) => {
            eprintln!("--rows takes a whole number ≥ 10000");
            return ExitCode::from(2);
        }
    };
    let concurrency = match option(&args, "--concurrency").map(|v| v.parse::<usize>()) {
        None => 64,
        Some(Ok(n)) if (1..=1024).contains(&n) => n,
        Some(_) => {
            eprintln!("--concurrency takes a whole number from 1 to 1024");
            return ExitCode::from(2);
        }
    };
    if name == "generated_inputs" {
        // Pure parsing: no database, no server.
        let inputs = match option(&args, "--inputs").map(|v| v.parse::<u64>()) {
            None => 1_000_000,
            Some(Ok(n)) if n >= 1 => n,
            Some(_) => {
                eprintln!("--inputs takes a whole number ≥ 1");
                return ExitCode::from(2);
            }
        };
        return match generated::run(inputs) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => {
                eprintln!("{name}: a correctness check FAILED (see above)");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("{name}: error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if name == "crash" {
        // Its own embedded PostgreSQL, started by the server itself: it is one of the victims.
        let cycles = match option(&args, "--cycles").map(|v| v.parse::<usize>()) {
            None => 200,
            Some(Ok(n)) if n >= 1 => n,
            Some(_) => {
                eprintln!("--cycles takes a whole number ≥ 1");
                return ExitCode::from(2);
            }
        };
        let seed = match option(&args, "--seed").map(|v| v.parse::<u64>()) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => {
                eprintln!("--seed takes a whole number");
                return ExitCode::from(2);
            }
        };
        let clients = option(&args, "--concurrency").map_or(6, |_| concurrency);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        return match runtime.block_on(crash::crash(cycles, clients, seed)) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => {
                eprintln!("{name}: a correctness check FAILED (see above)");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("{name}: error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if std::env::var_os("DATABASE_URL").is_none() {
        return harness::rerun_under_private_postgres(&args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = runtime.block_on(async {
        match name.as_str() {
            "trip_import" => trip_import::run(rows, trip_import::Measure::Import).await,
            "dashboard" => trip_import::run(rows, trip_import::Measure::Dashboard).await,
            "purchase_distinct" => market::purchase_distinct(concurrency).await,
            "purchase_race" => market::purchase_race(concurrency).await,
            "ssr_market" => market::ssr_market(concurrency).await,
            "bid_hot" => auction::bid_hot(concurrency).await,
            "bid_fanout" => auction::bid_fanout(1_000).await,
            _ => unreachable!(),
        }
    });
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("{name}: a correctness check FAILED (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{name}: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn option<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}
