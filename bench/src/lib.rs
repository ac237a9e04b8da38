//! Shared helpers for Tern's benchmark binaries: a median-of-samples timer and the machine
//! facts every report needs; and [`load`], the WHIP/WHEP load generator behind `tern-load`.

pub mod load;
pub mod veth;

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

/// CPU time in ns a thread of this process has run: `tid` (from [`worker_tids`]) or, with
/// `None`, the calling thread. Read from `/proc/.../schedstat`; 0 if unreadable.
pub fn thread_cpu_ns(tid: Option<u32>) -> u64 {
    let path = match tid {
        Some(t) => format!("/proc/self/task/{t}/schedstat"),
        None => "/proc/thread-self/schedstat".to_string(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Thread ids of the datapath's worker threads `tern-worker-0 .. n-1`, in order.
pub fn worker_tids(n: usize) -> Vec<u32> {
    let mut found = vec![0u32; n];
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for entry in dir.flatten() {
            let Some(tid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            if let Some(i) = comm
                .trim()
                .strip_prefix("tern-worker-")
                .and_then(|i| i.parse::<usize>().ok())
            {
                if i < n {
                    found[i] = tid;
                }
            }
        }
    }
    found
}

/// The webrtc-srtp name of a Tern SRTP profile (for the baselines that link webrtc-srtp).
pub fn webrtc_profile(
    p: tern::srtp::Profile,
) -> webrtc_srtp::protection_profile::ProtectionProfile {
    use tern::srtp::Profile;
    use webrtc_srtp::protection_profile::ProtectionProfile as W;
    match p {
        Profile::Aes128CmHmacSha1_80 => W::Aes128CmHmacSha1_80,
        Profile::Aes128CmHmacSha1_32 => W::Aes128CmHmacSha1_32,
        Profile::AeadAes128Gcm => W::AeadAes128Gcm,
        _ => W::AeadAes256Gcm,
    }
}
