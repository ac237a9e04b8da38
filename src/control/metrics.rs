//! The `/metrics` body in the Prometheus text format (0.0.4), written the way `promtool check
//! metrics` wants it: every family once, with `# HELP` and `# TYPE`; counters named
//! `tern_<thing>_total` with a `worker` label and no unlabelled twin (sums are PromQL's job);
//! relay latency as a histogram in seconds, converted at scrape time from each worker's
//! HdrHistogram; gauges for workers, sessions, rooms, tracks, DTLS handshakes and the build.
//!
//! Each family is one function in [`FAMILIES`], reading a [`Scrape`] taken once per request.
//! To add metrics, write a function that calls [`Exposition::family`] and then
//! [`Exposition::sample`] per series, and list it there.

use std::fmt::{Display, Write};

use hdrhistogram::Histogram;

use super::dtls::client_hello::HelloError;
use super::relay::Relay;
use super::rooms::SessionRole;
use crate::datapath::Counters;
use crate::srtp::Profile;

/// Relay-latency bucket bounds in seconds: 10 µs to 100 ms (1-2-5 steps).
pub const LATENCY_BUCKETS: [f64; 13] = [
    10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 100e-3,
];

/// Worker counters that are levels, not counts: exposed as `tern_worker_<name>` gauges.
const WORKER_GAUGES: &[&str] = &["sessions"];

/// The families, in the order they are written.
const FAMILIES: &[fn(&mut Exposition, &Scrape)] = &[
    build_info,
    worker_state,
    worker_counters,
    relay_latency,
    sessions,
    dtls,
    cluster,
];

/// What one scrape reads from the relay, so each family sees the same moment.
#[derive(Debug)]
pub struct Scrape<'a> {
    relay: &'a Relay,
    /// Per worker: counters, latency histogram (ns), I/O mode, dead, seconds since progress.
    workers: Vec<WorkerScrape>,
}

#[derive(Debug)]
struct WorkerScrape {
    counters: Counters,
    latency: Histogram<u64>,
    io_mode: &'static str,
    dead: bool,
    since_progress: f64,
}

impl<'a> Scrape<'a> {
    /// Reads every worker's published counters and histogram.
    pub fn take(relay: &'a Relay) -> Self {
        let dp = &relay.dp;
        let dead = dp.dead_workers();
        let workers = (0..dp.worker_count())
            .map(|w| {
                let stats = dp.stats(w);
                WorkerScrape {
                    counters: stats.counters.snapshot(),
                    latency: stats.latency_snapshot(),
                    io_mode: stats.io_mode,
                    dead: dead.contains(&w),
                    since_progress: dp.since_progress(w).as_secs_f64(),
                }
            })
            .collect();
        Self { relay, workers }
    }
}

/// The `/metrics` body.
pub fn render(relay: &Relay) -> String {
    let scrape = Scrape::take(relay);
    let mut out = Exposition::default();
    for family in FAMILIES {
        family(&mut out, &scrape);
    }
    out.text
}

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic; the name ends in `_total`.
    Counter,
    /// A level.
    Gauge,
    /// `_bucket{le}`, `_sum` and `_count` series.
    Histogram,
}

/// Text being written.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// Starts family `name`: its HELP and TYPE lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let help = help.trim().replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One series: `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &dyn Display)], value: impl Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let v = v.to_string();
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.text, "{key}=\"{v}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

fn build_info(out: &mut Exposition, s: &Scrape) {
    out.family(
        "tern_build_info",
        Kind::Gauge,
        "Always 1; the labels name the version and the workers' I/O backend.",
    );
    let io_mode = s.workers.first().map_or("none", |w| w.io_mode);
    out.sample(
        "tern_build_info",
        &[
            ("version", &env!("CARGO_PKG_VERSION")),
            ("io_mode", &io_mode),
        ],
        1,
    );
}

fn worker_state(out: &mut Exposition, s: &Scrape) {
    out.family(
        "tern_worker_up",
        Kind::Gauge,
        "1 while the worker thread runs, 0 once it has died (the relay then exits).",
    );
    for (w, ws) in s.workers.iter().enumerate() {
        out.sample("tern_worker_up", &[("worker", &w)], u8::from(!ws.dead));
    }
    out.family(
        "tern_worker_last_progress_seconds",
        Kind::Gauge,
        "Seconds since the worker last finished a loop turn (it turns at least every 100 ms).",
    );
    for (w, ws) in s.workers.iter().enumerate() {
        out.sample(
            "tern_worker_last_progress_seconds",
            &[("worker", &w)],
            ws.since_progress,
        );
    }
    out.family(
        "tern_io_mode",
        Kind::Gauge,
        "1 for the I/O backend each worker uses (uring or mmsg).",
    );
    for (w, ws) in s.workers.iter().enumerate() {
        out.sample("tern_io_mode", &[("worker", &w), ("mode", &ws.io_mode)], 1);
    }
}

/// Every datapath counter as `tern_<name>_total{worker}`, HELP from its doc comment.
fn worker_counters(out: &mut Exposition, s: &Scrape) {
    let per_worker: Vec<Vec<(&str, u64)>> = s.workers.iter().map(|w| w.counters.fields()).collect();
    for (i, (name, doc)) in Counters::DOCS.iter().enumerate() {
        let (family, kind) = if WORKER_GAUGES.contains(name) {
            (format!("tern_worker_{name}"), Kind::Gauge)
        } else {
            (format!("tern_{name}_total"), Kind::Counter)
        };
        out.family(&family, kind, doc);
        for (w, fields) in per_worker.iter().enumerate() {
            out.sample(&family, &[("worker", &w)], fields[i].1);
        }
    }
}

/// `tern_relay_latency_seconds` per worker: cumulative bucket counts read off the HdrHistogram
/// (recorded in ns, 3 significant digits), `_sum` from its mean.
fn relay_latency(out: &mut Exposition, s: &Scrape) {
    let name = "tern_relay_latency_seconds";
    out.family(
        name,
        Kind::Histogram,
        "Relay latency: a packet's receive to its send being submitted, in seconds.",
    );
    for (w, ws) in s.workers.iter().enumerate() {
        latency_series(out, w, &ws.latency);
    }
}

/// Worker `w`'s buckets, sum and count.
fn latency_series(out: &mut Exposition, w: usize, h: &Histogram<u64>) {
    let name = "tern_relay_latency_seconds";
    for le in LATENCY_BUCKETS {
        let below = h.count_between(0, (le * 1e9).round() as u64);
        out.sample(
            &format!("{name}_bucket"),
            &[("worker", &w), ("le", &le)],
            below,
        );
    }
    out.sample(
        &format!("{name}_bucket"),
        &[("worker", &w), ("le", &"+Inf")],
        h.len(),
    );
    let sum = if h.is_empty() {
        0.0
    } else {
        h.mean() * h.len() as f64 / 1e9
    };
    out.sample(&format!("{name}_sum"), &[("worker", &w)], sum);
    out.sample(&format!("{name}_count"), &[("worker", &w)], h.len());
}

/// Sessions by kind, rooms and published tracks, from the registry.
fn sessions(out: &mut Exposition, s: &Scrape) {
    let (mut publishers, mut subscribers) = (0u64, 0u64);
    let (rooms, tracks) = {
        let reg = s.relay.registry.lock().unwrap_or_else(|p| p.into_inner());
        for info in reg.sessions.values() {
            match info.role {
                SessionRole::Publisher => publishers += 1,
                SessionRole::Subscriber => subscribers += 1,
                // Node-to-node links: `tern_cluster_links`.
                SessionRole::Link => {}
            }
        }
        let tracks: usize = reg
            .rooms
            .values()
            .flat_map(|r| r.streams.values())
            .map(|st| st.tracks.len())
            .sum();
        let rooms = reg.rooms.values().filter(|r| !r.streams.is_empty()).count();
        (rooms, tracks)
    };
    out.family(
        "tern_sessions",
        Kind::Gauge,
        "Sessions admitted and not yet ended, by kind (publisher or subscriber).",
    );
    out.sample("tern_sessions", &[("kind", &"publisher")], publishers);
    out.sample("tern_sessions", &[("kind", &"subscriber")], subscribers);
    out.family("tern_rooms", Kind::Gauge, "Rooms with at least one stream.");
    out.sample("tern_rooms", &[], rooms);
    out.family(
        "tern_tracks",
        Kind::Gauge,
        "Published tracks (audio or video sections of connected publishers).",
    );
    out.sample("tern_tracks", &[], tracks);
}

/// The slow path's DTLS counters (one relay-wide series each: handshakes are not per worker).
fn dtls(out: &mut Exposition, s: &Scrape) {
    let d = &s.relay.dtls_stats;
    out.family(
        "tern_dtls_handshakes_in_flight",
        Kind::Gauge,
        "DTLS handshakes between their first ClientHello and their end.",
    );
    out.sample(
        "tern_dtls_handshakes_in_flight",
        &[],
        d.handshakes_in_flight(),
    );
    for (name, help, value) in [
        (
            "tern_dtls_final_flight_resends_total",
            "Times the relay resent its final DTLS flight for a retransmitting client.",
            d.final_flight_resends(),
        ),
        (
            "tern_dtls_duplicate_hello_verify_total",
            "HelloVerifyRequests sent twice for one fragmented ClientHello.",
            d.duplicate_hello_verifies(),
        ),
        (
            // Not `tern_dtls_dropped_total`: that is the datapath's counter.
            "tern_dtls_handshake_dropped_total",
            "DTLS datagrams a handshake dropped (its queue full, or too long).",
            d.dropped(),
        ),
    ] {
        out.family(name, Kind::Counter, help);
        out.sample(name, &[], value);
    }
    out.family(
        "tern_srtp_sessions_total",
        Kind::Counter,
        "Finished DTLS handshakes by negotiated SRTP profile.",
    );
    for p in Profile::ALL {
        out.sample(
            "tern_srtp_sessions_total",
            &[("profile", &p.name())],
            d.srtp_sessions(p),
        );
    }
    // Handshakes started without Tern's choice of SRTP profile (the dtls crate then chooses by
    // the client's order), and why.
    out.family(
        "tern_dtls_srtp_fallback_total",
        Kind::Counter,
        "Handshakes whose ClientHello gave Tern no SRTP profile choice, by reason.",
    );
    for r in HelloError::ALL {
        out.sample(
            "tern_dtls_srtp_fallback_total",
            &[("reason", &r.label())],
            d.srtp_fallbacks(r),
        );
    }
}

/// The cluster's families (`tern_cluster_*`, none without `[cluster]`), rendered with their
/// HELP and TYPE lines by `Relay::cluster_metrics`.
fn cluster(out: &mut Exposition, s: &Scrape) {
    out.text.push_str(&s.relay.cluster_metrics());
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn bucket(text: &str, le: &str) -> u64 {
        let key = format!("tern_relay_latency_seconds_bucket{{worker=\"0\",le=\"{le}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
    }

    #[test]
    fn histogram_buckets_are_cumulative_seconds_from_nanoseconds() {
        let mut h = crate::datapath::stats_histogram();
        for ns in [5_000, 15_000, 15_000, 400_000, 3_000_000, 900_000_000] {
            h.record(ns).unwrap();
        }
        let mut out = Exposition::default();
        latency_series(&mut out, 0, &h);
        let text = out.text;
        assert_eq!(bucket(&text, "0.00001"), 1);
        assert_eq!(bucket(&text, "0.00002"), 3);
        assert_eq!(bucket(&text, "0.0005"), 4);
        assert_eq!(bucket(&text, "0.005"), 5);
        assert_eq!(bucket(&text, "0.1"), 5);
        assert_eq!(bucket(&text, "+Inf"), 6);
        assert!(text.contains("tern_relay_latency_seconds_count{worker=\"0\"} 6\n"));
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("tern_relay_latency_seconds_sum{worker=\"0\"} "))
            .and_then(|v| v.parse().ok())
            .expect("sum");
        assert!((sum - 0.903_435).abs() < 0.001, "{sum}");
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut out = Exposition::default();
        out.family("tern_x", Kind::Gauge, "a \\ b\nc");
        out.sample("tern_x", &[("k", &"q\"\\\n")], 1);
        assert_eq!(
            out.text,
            "# HELP tern_x a \\\\ b\\nc\n# TYPE tern_x gauge\ntern_x{k=\"q\\\"\\\\\\n\"} 1\n"
        );
    }

    #[test]
    fn every_counter_has_help_and_a_unique_family() {
        let mut names = HashSet::new();
        for (name, doc) in Counters::DOCS {
            assert!(!doc.trim().is_empty(), "{name} has no doc comment");
            assert!(names.insert(*name));
        }
        assert_eq!(Counters::DOCS.len(), Counters::default().fields().len());
        for g in WORKER_GAUGES {
            assert!(names.contains(g), "{g}");
        }
    }
}
