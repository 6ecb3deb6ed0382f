//! `generated_inputs`: every generated-input target of `app::server::generated_inputs` (file
//! reader, form parsers, payment notifications) over a million inputs or more from a random
//! seed, one target per core at a time. Prints a `BENCH` line per target and a total with the
//! panics seen (the runner catches them; each is a failure) and the peak memory; fails on any
//! failing input (printed, shrunk to its smallest form) or a peak above 512 MB.

use app::server::generated_inputs::TARGETS;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

const MAX_PEAK_MB: f64 = 512.0;

static PANICS: AtomicU64 = AtomicU64::new(0);

pub fn run(inputs: u64) -> anyhow::Result<bool> {
    // Panics are caught and reported by the runner as failures; count them, quietly.
    std::panic::set_hook(Box::new(|_| {
        PANICS.fetch_add(1, Ordering::Relaxed);
    }));
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    seed[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let total_weight: u64 = TARGETS.iter().map(|t| u64::from(t.weight)).sum();
    let cases = |weight: u32| -> u32 {
        (inputs * u64::from(weight))
            .div_ceil(total_weight)
            .try_into()
            .unwrap_or(u32::MAX)
    };
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(target) = TARGETS.get(i) else {
                    return;
                };
                let n = cases(target.weight);
                let t0 = Instant::now();
                let outcome = target.run(n, seed);
                let seconds = t0.elapsed().as_secs_f64();
                results
                    .lock()
                    .expect("results")
                    .push((i, n, seconds, outcome));
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|r| r.0);
    let mut failures = 0;
    let mut total = 0u64;
    for (i, n, seconds, outcome) in &results {
        let name = TARGETS[*i].name;
        total += u64::from(*n);
        let failed = outcome.is_err();
        failures += usize::from(failed);
        crate::harness::bench_line(
            "generated_inputs",
            &[
                ("target", name.to_owned()),
                ("inputs", n.to_string()),
                ("seconds", format!("{seconds:.1}")),
                ("failures", usize::from(failed).to_string()),
            ],
        );
        if let Err(failure) = outcome {
            eprintln!("generated_inputs {name}: FAILED: {failure}");
        }
    }
    let peak_mb = peak_rss_mb();
    let panics = PANICS.load(Ordering::Relaxed);
    let seed_hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    crate::harness::bench_line(
        "generated_inputs",
        &[
            ("inputs", total.to_string()),
            ("targets", results.len().to_string()),
            ("seconds", format!("{:.1}", started.elapsed().as_secs_f64())),
            ("failures", failures.to_string()),
            ("panics", panics.to_string()),
            ("peak_rss_mb", format!("{peak_mb:.0}")),
            ("seed", seed_hex),
        ],
    );
    if peak_mb > MAX_PEAK_MB {
        eprintln!("generated_inputs: peak memory {peak_mb:.0} MB is over {MAX_PEAK_MB} MB");
    }
    Ok(failures == 0 && panics == 0 && peak_mb <= MAX_PEAK_MB)
}

/// The process's peak resident memory (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}
