//! Shared helpers for Tern's benchmark binaries: a median-of-samples timer and the machine
//! facts every report needs.

use std::hint::black_box;
use std::time::Instant;

/// Runs `batch` (which processes `per_batch` items) `samples` times after a warm-up, with
/// `prepare` run untimed before each batch, and returns the median nanoseconds per item.
pub fn median_ns_per_item<S>(
    samples: usize,
    per_batch: usize,
    state: &mut S,
    mut prepare: impl FnMut(&mut S),
    mut batch: impl FnMut(&mut S),
) -> f64 {
    for _ in 0..samples.div_ceil(10).max(3) {
        prepare(state);
        batch(state);
    }
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        prepare(state);
        let t = Instant::now();
        batch(black_box(&mut *state));
        times.push(t.elapsed().as_nanos() as f64 / per_batch as f64);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}

/// CPU model, kernel and core count, for report headers.
pub fn machine_summary() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cpu}, {cores} cores, kernel {}", kernel.trim())
}
