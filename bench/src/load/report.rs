//! The results of a run and the ways they leave the program: a summary table for the terminal
//! and a JSON document (`--json`) with every figure and the full percentile distribution (the
//! HTML page is drawn by `html`).
//!
//! Pure data and formatting: nothing here touches the network or the clock.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// A session that did not work, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `publisher` or `subscriber`.
    pub role: &'static str,
    /// Room.
    pub room: String,
    /// Stream.
    pub stream: String,
    /// `http`, `sdp`, `ice`, `dtls`, `io`, `media` or `skipped`.
    pub phase: &'static str,
    /// What went wrong, in words.
    pub reason: String,
}

/// One subscriber's figures.
#[derive(Debug, Clone)]
pub struct SubscriberReport {
    /// Room.
    pub room: String,
    /// The stream it received.
    pub stream: String,
    /// Received media in the window.
    pub ok: bool,
    /// Publisher sequence numbers sent in the window.
    pub expected: u64,
    /// Of those, received (late ones included).
    pub received: u64,
    /// Media packets received in the window (bytes below).
    pub packets: u64,
    /// SRTP bytes received in the window.
    pub bytes: u64,
    /// Duplicates.
    pub duplicates: u64,
    /// Reordered arrivals.
    pub reordered: u64,
    /// Retransmissions received for NACKed packets.
    pub retransmissions: u64,
    /// NACK packets sent.
    pub nacks_sent: u64,
    /// SRTP failures.
    pub srtp_errors: u64,
    /// Latency p50, p99, max (µs), 0 when nothing arrived.
    pub latency_us: [u64; 3],
    /// Time from the POST to usable keys, ms.
    pub setup_ms: f64,
    /// Datagrams timed in user space for want of a kernel timestamp.
    pub user_timestamps: u64,
    /// RTP datagrams dropped on purpose (`--simulate-loss`).
    pub simulated_drops: u64,
}

/// Packets, bytes and latency of one second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TimelinePoint {
    /// Second since the measurement began.
    pub second: usize,
    /// Media packets received by all subscribers.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Latency percentiles of that second, µs.
    pub p50_us: u64,
    /// See `p50_us`.
    pub p99_us: u64,
    /// See `p50_us`.
    pub max_us: u64,
}

/// Everything a run measured.
#[derive(Debug)]
pub struct Report {
    /// One line describing the run (scenario, sizes, media).
    pub title: String,
    /// The configuration, echoed into the JSON.
    pub config: Value,
    /// Seconds from the start of measurement to the publishers stopping.
    pub window_s: f64,
    /// One-way latency of every first arrival in the window, all subscribers, µs.
    pub latency: Histogram<u64>,
    /// Per subscriber (connected ones).
    pub subscribers: Vec<SubscriberReport>,
    /// Sessions that failed (publishers and subscribers).
    pub failures: Vec<Failure>,
    /// Subscribers that failed (setup, skipped, or no media).
    pub subscribers_failed: usize,
    /// Publishers connected.
    pub publishers_ok: usize,
    /// RTP packets the publishers sent in the window.
    pub published_packets: u64,
    /// Per second of the window.
    pub timeline: Vec<TimelinePoint>,
    /// Relay CPU time over the window, ns, when `--relay-pid` was given.
    pub relay_cpu_ns: Option<u64>,
    /// PLI/FIR the publishers received.
    pub keyframe_requests: u64,
    /// This process's CPU time over the window, ns (is the tester itself the bottleneck?).
    pub tester_cpu_ns: Option<u64>,
    /// The measurement was cut short (Ctrl-C).
    pub interrupted: bool,
}

impl Report {
    /// Subscribers that received media.
    pub fn subscribers_ok(&self) -> usize {
        self.subscribers.iter().filter(|s| s.ok).count()
    }

    fn sum(&self, f: impl Fn(&SubscriberReport) -> u64) -> u64 {
        self.subscribers.iter().map(f).sum()
    }

    /// Expected packets not received, over expected packets (0 when nothing was expected).
    pub fn loss_ratio(&self) -> f64 {
        let expected = self.sum(|s| s.expected);
        let received = self.sum(|s| s.received);
        if expected == 0 {
            return 0.0;
        }
        expected.saturating_sub(received) as f64 / expected as f64
    }

    /// Packets received by all subscribers per second of the window.
    pub fn egress_pps(&self) -> f64 {
        if self.window_s <= 0.0 {
            return 0.0;
        }
        self.sum(|s| s.packets) as f64 / self.window_s
    }

    /// Bits per second received by all subscribers.
    pub fn egress_bps(&self) -> f64 {
        if self.window_s <= 0.0 {
            return 0.0;
        }
        self.sum(|s| s.bytes) as f64 * 8.0 / self.window_s
    }

    /// Relay CPU ns per packet the subscribers received.
    pub fn relay_cpu_ns_per_egress(&self) -> Option<f64> {
        let packets = self.sum(|s| s.packets);
        self.relay_cpu_ns.map(|ns| {
            if packets == 0 {
                0.0
            } else {
                ns as f64 / packets as f64
            }
        })
    }

    /// True when every session worked.
    pub fn all_ok(&self) -> bool {
        self.failures.is_empty() && self.subscribers_failed == 0
    }

    /// Latency at quantile `q` (0 when nothing was recorded), µs.
    pub fn percentile(&self, q: f64) -> u64 {
        if self.latency.is_empty() {
            0
        } else {
            self.latency.value_at_quantile(q)
        }
    }

    /// `(percentile, value_us)` pairs for plotting and the JSON.
    pub fn distribution(&self) -> Vec<(f64, u64)> {
        if self.latency.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<(f64, u64)> = self
            .latency
            .iter_quantiles(5)
            .map(|v| (v.percentile(), v.value_iterated_to()))
            .collect();
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }

    /// The JSON document `--json` writes.
    pub fn to_json(&self) -> Value {
        let failures: Vec<Value> = self
            .failures
            .iter()
            .map(|f| {
                json!({"role": f.role, "room": f.room, "stream": f.stream,
                       "phase": f.phase, "reason": f.reason})
            })
            .collect();
        let subscribers: Vec<Value> = self
            .subscribers
            .iter()
            .map(|s| {
                json!({
                    "room": s.room, "stream": s.stream, "ok": s.ok,
                    "expected": s.expected, "received": s.received,
                    "loss_ratio": if s.expected == 0 { 0.0 } else {
                        s.expected.saturating_sub(s.received) as f64 / s.expected as f64 },
                    "packets": s.packets, "bytes": s.bytes,
                    "rx_bps": if self.window_s > 0.0 { s.bytes as f64 * 8.0 / self.window_s } else { 0.0 },
                    "duplicates": s.duplicates, "reordered": s.reordered,
                    "retransmissions": s.retransmissions, "nacks_sent": s.nacks_sent,
                    "srtp_errors": s.srtp_errors,
                    "latency_us": {"p50": s.latency_us[0], "p99": s.latency_us[1], "max": s.latency_us[2]},
                    "setup_ms": s.setup_ms,
                })
            })
            .collect();
        let timeline: Vec<Value> = self
            .timeline
            .iter()
            .map(|t| {
                json!({"second": t.second, "packets": t.packets, "bytes": t.bytes,
                       "p50_us": t.p50_us, "p99_us": t.p99_us, "max_us": t.max_us})
            })
            .collect();
        let distribution: Vec<Value> = self
            .distribution()
            .iter()
            .map(|(p, v)| json!({"percentile": p, "value_us": v}))
            .collect();
        let mut doc = json!({
            "tool": "tern-load",
            "title": self.title,
            "config": self.config,
            "window_s": self.window_s,
            "latency_us": {
                "p50": self.percentile(0.5),
                "p90": self.percentile(0.9),
                "p99": self.percentile(0.99),
                "p999": self.percentile(0.999),
                "max": self.latency.max(),
                "mean": self.latency.mean(),
                "count": self.latency.len(),
                "distribution": distribution,
            },
            "loss_ratio": self.loss_ratio(),
            "expected": self.sum(|s| s.expected),
            "received": self.sum(|s| s.received),
            "egress_pps": self.egress_pps(),
            "egress_bps": self.egress_bps(),
            "published_packets": self.published_packets,
            "subscribers_ok": self.subscribers_ok(),
            "subscribers_failed": self.subscribers_failed,
            "publishers_ok": self.publishers_ok,
            "duplicates": self.sum(|s| s.duplicates),
            "reordered": self.sum(|s| s.reordered),
            "nacks_sent": self.sum(|s| s.nacks_sent),
            "retransmissions": self.sum(|s| s.retransmissions),
            "srtp_errors": self.sum(|s| s.srtp_errors),
            "keyframe_requests": self.keyframe_requests,
            "tester_cpu_ns": self.tester_cpu_ns,
            "interrupted": self.interrupted,
            "user_space_timestamps": self.sum(|s| s.user_timestamps),
            "simulated_drops": self.sum(|s| s.simulated_drops),
            "failures": failures,
            "subscribers": subscribers,
            "timeline": timeline,
        });
        if let (Some(map), Some(per), Some(ns)) = (
            doc.as_object_mut(),
            self.relay_cpu_ns_per_egress(),
            self.relay_cpu_ns,
        ) {
            map.insert("relay_cpu_ns_per_egress".into(), json!(per));
            map.insert("relay_cpu_ns".into(), json!(ns));
        }
        doc
    }

    /// The summary table for the terminal.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "tern-load: {}", self.title);
        if self.interrupted {
            let _ = writeln!(
                s,
                "INTERRUPTED: measured {:.1} s, not the full duration",
                self.window_s
            );
        }
        let setups: Vec<f64> = self.subscribers.iter().map(|s| s.setup_ms).collect();
        let max_setup = setups.iter().copied().fold(0.0, f64::max);
        let _ = writeln!(
            s,
            "sessions: {} publisher(s) ok, {} subscriber(s) ok, {} subscriber(s) failed \
             (slowest setup {max_setup:.0} ms)",
            self.publishers_ok,
            self.subscribers_ok(),
            self.subscribers_failed
        );
        let untimed = self.sum(|s| s.user_timestamps);
        let source = if untimed == 0 {
            "kernel receive timestamps".to_string()
        } else {
            format!("{untimed} datagram(s) timed in user space, no kernel timestamp")
        };
        let _ = writeln!(
            s,
            "\n  latency (µs)      p50      p90      p99    p99.9      max    count   ({source})"
        );
        let _ = writeln!(
            s,
            "  one-way     {:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
            self.percentile(0.5),
            self.percentile(0.9),
            self.percentile(0.99),
            self.percentile(0.999),
            self.latency.max(),
            self.latency.len()
        );
        let expected = self.sum(|s| s.expected);
        let received = self.sum(|s| s.received);
        let _ = writeln!(
            s,
            "\n  packets: expected {expected}, received {received}, lost {} ({:.4}%), \
             duplicates {}, reordered {}",
            expected.saturating_sub(received),
            self.loss_ratio() * 100.0,
            self.sum(|s| s.duplicates),
            self.sum(|s| s.reordered)
        );
        let _ = writeln!(
            s,
            "  NACKs sent {}, retransmissions received {}, simulated drops {}, SRTP errors {}, \
             PLI/FIR at publishers {}",
            self.sum(|s| s.nacks_sent),
            self.sum(|s| s.retransmissions),
            self.sum(|s| s.simulated_drops),
            self.sum(|s| s.srtp_errors),
            self.keyframe_requests
        );
        let _ = writeln!(
            s,
            "  egress: {:.0} pps, {:.2} Mbit/s received by all subscribers over {:.1} s \
             (publishers sent {} packets)",
            self.egress_pps(),
            self.egress_bps() / 1e6,
            self.window_s,
            self.published_packets
        );
        if let (Some(ns), Some(per)) = (self.relay_cpu_ns, self.relay_cpu_ns_per_egress()) {
            let _ = writeln!(
                s,
                "  relay CPU: {:.2} s over {:.1} s ({:.0}% of one core), {per:.0} ns per egress packet",
                ns as f64 / 1e9,
                self.window_s,
                ns as f64 / 1e9 / self.window_s.max(1e-9) * 100.0
            );
        }
        if let Some(ns) = self.tester_cpu_ns {
            let _ = writeln!(
                s,
                "  tester CPU: {:.2} s over {:.1} s ({:.0}% of one core)",
                ns as f64 / 1e9,
                self.window_s,
                ns as f64 / 1e9 / self.window_s.max(1e-9) * 100.0
            );
        }
        if !self.failures.is_empty() {
            let _ = writeln!(s, "\nfailures ({}):", self.failures.len());
            // Group identical reasons so 200 refusals are one line.
            let mut groups: Vec<(String, usize, String)> = Vec::new();
            for f in &self.failures {
                let key = format!("{} [{}] {}", f.role, f.phase, f.reason);
                match groups.iter_mut().find(|g| g.0 == key) {
                    Some(g) => g.1 += 1,
                    None => groups.push((key, 1, format!("{}/{}", f.room, f.stream))),
                }
            }
            for (key, n, first) in groups {
                let _ = writeln!(s, "  {n} × {key} (first: {first})");
            }
            for hint in hints(&self.failures) {
                let _ = writeln!(s, "  hint: {hint}");
            }
        }
        s
    }

    /// The self-contained HTML report (see `html`).
    pub fn to_html(&self) -> String {
        super::html::render(self)
    }
}

/// Advice for the failures a user can fix, once each.
fn hints(failures: &[Failure]) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut add = |h: &'static str| {
        if !out.contains(&h) {
            out.push(h);
        }
    };
    for f in failures {
        let r = f.reason.as_str();
        if r.starts_with("HTTP 401") || r.starts_with("HTTP 403") {
            add(
                "the server refused the token: check its room, its publish/subscribe grants, its \
                 expiry, and that it was minted with the server's secret",
            );
        } else if r.starts_with("HTTP 429") {
            add(
                "the server limits sessions or requests per client address; for Tern raise \
                 [limits] sessions_per_ip and requests_per_minute in tern.toml",
            );
        } else if r.starts_with("HTTP 409") {
            add(
                "a stream of that name is already published: another run still holds it (a \
                 killed run's sessions end when their consent expires, 30 s on Tern), or use \
                 another --room",
            );
        } else if r.starts_with("server unreachable") {
            add("nothing answered at --url: is the server running, and on that address?");
        } else if f.phase == "ice" || f.phase == "dtls" {
            add(
                "signalling worked but media did not: is the answer's candidate address reachable \
                 from here (advertised address, firewall)?",
            );
        }
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A small report for the formatting tests.
    pub(in crate::load) fn sample_report() -> Report {
        let mut latency = super::super::receiver::new_histogram();
        for v in 1..=1000 {
            latency.saturating_record(v);
        }
        Report {
            title: "test".into(),
            config: json!({}),
            window_s: 2.0,
            latency,
            subscribers: vec![SubscriberReport {
                room: "r".into(),
                stream: "s".into(),
                ok: true,
                expected: 100,
                received: 99,
                packets: 1000,
                bytes: 1_000_000,
                duplicates: 0,
                reordered: 0,
                retransmissions: 0,
                nacks_sent: 1,
                srtp_errors: 0,
                latency_us: [500, 990, 1000],
                setup_ms: 20.0,
                user_timestamps: 0,
                simulated_drops: 0,
            }],
            failures: vec![],
            subscribers_failed: 0,
            publishers_ok: 1,
            published_packets: 100,
            timeline: vec![TimelinePoint::default(); 2],
            relay_cpu_ns: Some(1_000_000),
            keyframe_requests: 0,
            tester_cpu_ns: None,
            interrupted: false,
        }
    }

    #[test]
    fn json_has_the_required_keys() {
        let j = sample_report().to_json();
        for k in ["p50", "p90", "p99", "p999", "max", "distribution"] {
            assert!(j["latency_us"].get(k).is_some(), "{k}");
        }
        for k in [
            "loss_ratio",
            "egress_pps",
            "subscribers_ok",
            "subscribers_failed",
            "relay_cpu_ns_per_egress",
        ] {
            assert!(j.get(k).is_some(), "{k}");
        }
        assert_eq!(j["relay_cpu_ns_per_egress"], json!(1000.0));
        assert!((j["loss_ratio"].as_f64().unwrap() - 0.01).abs() < 1e-9);
        assert_eq!(j["egress_pps"], json!(500.0));
    }
}
