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
    let parsed = (|| {
        Ok::<_, ExitCode>(Options {
            rows: number(&args, "--rows", 1_000_000, 10_000..=u64::MAX, "≥ 10000")?,
            concurrency: number(&args, "--concurrency", 64, 1..=1024, "from 1 to 1024")?,
            inputs: number(&args, "--inputs", 1_000_000, 1..=u64::MAX, "≥ 1")?,
            cycles: number(&args, "--cycles", 200, 1..=usize::MAX, "≥ 1")?,
            seed: option(&args, "--seed")
                .map(|_| number(&args, "--seed", 0, 0..=u64::MAX, ""))
                .transpose()?,
        })
    })();
    let options = match parsed {
        Ok(options) => options,
        Err(code) => return code,
    };
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    };
    let outcome = match name.as_str() {
        // Pure parsing: no database, no server.
        "generated_inputs" => generated::run(options.inputs),
        // Its own embedded PostgreSQL, started by the server itself: it is one of the victims.
        "crash" => {
            let clients = option(&args, "--concurrency").map_or(6, |_| options.concurrency);
            runtime().block_on(crash::crash(options.cycles, clients, options.seed))
        }
        _ if std::env::var_os("DATABASE_URL").is_none() => {
            return harness::rerun_under_private_postgres(&args);
        }
        _ => runtime().block_on(async {
            let concurrency = options.concurrency;
            match name.as_str() {
                "trip_import" => trip_import::run(options.rows, trip_import::Measure::Import).await,
                "dashboard" => {
                    trip_import::run(options.rows, trip_import::Measure::Dashboard).await
                }
                "purchase_distinct" => market::purchase_distinct(concurrency).await,
                "purchase_race" => market::purchase_race(concurrency).await,
                "ssr_market" => market::ssr_market(concurrency).await,
                "bid_hot" => auction::bid_hot(concurrency).await,
                "bid_fanout" => auction::bid_fanout(1_000).await,
                _ => unreachable!(),
            }
        }),
    };
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

struct Options {
    rows: u64,
    concurrency: usize,
    inputs: u64,
    cycles: usize,
    seed: Option<u64>,
}

/// The whole number given after `name` (or `default`), within `range`; a message naming the
/// rule (`rule`, e.g. "≥ 1") and exit status 2 otherwise.
fn number<T>(
    args: &[String],
    name: &str,
    default: T,
    range: std::ops::RangeInclusive<T>,
    rule: &str,
) -> Result<T, ExitCode>
where
    T: std::str::FromStr + PartialOrd,
{
    match option(args, name).map(str::parse::<T>) {
        None => Ok(default),
        Some(Ok(n)) if range.contains(&n) => Ok(n),
        Some(_) => {
            eprintln!(
                "{}",
                format!("{name} takes a whole number {rule}").trim_end()
            );
            Err(ExitCode::from(2))
        }
    }
}

fn option<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}
