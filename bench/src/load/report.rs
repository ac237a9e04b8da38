//! The results of a run and the three ways they leave the program: a summary table for the
//! terminal, a JSON document (`--json`) with every figure and the full percentile distribution,
//! and one self-contained HTML page (`--html`) with a latency-percentile plot and a
//! throughput-over-time plot drawn as inline SVG.
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

    fn percentile(&self, q: f64) -> u64 {
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

    /// The self-contained HTML report.
    pub fn to_html(&self) -> String {
        let mut h = String::with_capacity(32 * 1024);
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>tern-load report</title><style>\
             body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\
             table{{border-collapse:collapse}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}}\
             th:first-child,td:first-child{{text-align:left}}pre{{background:#f6f6f6;padding:1em}}\
             svg{{background:#fff;border:1px solid #ccc;margin:1em 0}}</style></head><body>\
             <h1>tern-load report</h1><p>{}</p>",
            escape(&self.title)
        );
        let _ = write!(
            h,
            "<table><tr><th>latency (µs)</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th>\
             <th>max</th></tr><tr><td>one-way</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td></tr></table>",
            self.percentile(0.5),
            self.percentile(0.9),
            self.percentile(0.99),
            self.percentile(0.999),
            self.latency.max()
        );
        let _ = write!(
            h,
            "<table><tr><th>figure</th><th>value</th></tr>\
             <tr><td>subscribers ok / failed</td><td>{} / {}</td></tr>\
             <tr><td>loss ratio</td><td>{:.6}</td></tr>\
             <tr><td>egress pps</td><td>{:.0}</td></tr>\
             <tr><td>egress Mbit/s</td><td>{:.2}</td></tr>",
            self.subscribers_ok(),
            self.subscribers_failed,
            self.loss_ratio(),
            self.egress_pps(),
            self.egress_bps() / 1e6
        );
        if let Some(per) = self.relay_cpu_ns_per_egress() {
            let _ = write!(
                h,
                "<tr><td>relay CPU ns / egress packet</td><td>{per:.0}</td></tr>"
            );
        }
        h.push_str("</table>");
        h.push_str("<h2>Latency by percentile</h2>");
        h.push_str(&percentile_svg(&self.distribution()));
        h.push_str("<h2>Throughput over time</h2>");
        h.push_str(&timeline_svg(&self.timeline));
        let _ = writeln!(
            h,
            "<h2>Summary</h2><pre>{}</pre></body></html>",
            escape(&self.summary())
        );
        h
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

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 760.0;
const H: f64 = 320.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 40.0;
const TOP: f64 = 20.0;
const RIGHT: f64 = 45.0;

/// A "nice" axis maximum at or above `v`.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

fn svg_open(h: &mut String, title: &str) {
    let _ = write!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" font-size=\"11\" font-family=\"sans-serif\">\
         <title>{}</title>",
        escape(title)
    );
}

/// Latency (y, µs) against percentile on a `1/(1-p)` log axis, as HdrHistogram plots draw it.
fn percentile_svg(points: &[(f64, u64)]) -> String {
    let mut h = String::new();
    svg_open(&mut h, "latency by percentile");
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    // x = log10(1 / (1 - p)); p = 99.999% is 5.
    let x_of = |pct: f64| {
        let p = (pct / 100.0).min(0.999_999);
        (1.0 / (1.0 - p)).log10()
    };
    let x_max = points
        .iter()
        .map(|(p, _)| x_of(*p))
        .fold(2.0f64, f64::max)
        .ceil()
        .min(6.0);
    let y_max = nice_max(points.iter().map(|(_, v)| *v as f64).fold(0.0, f64::max));
    let px = |x: f64| LEFT + x / x_max * pw;
    let py = |y: f64| TOP + ph - y / y_max * ph;
    for i in 0..=x_max as usize {
        let x = px(i as f64);
        let label = match i {
            0 => "0%".to_string(),
            1 => "90%".to_string(),
            n => format!("{}%", 100.0 - 100.0 / 10f64.powi(n as i32)),
        };
        let _ = write!(
            h,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            TOP + ph,
            TOP + ph + 15.0
        );
    }
    axis_y(&mut h, y_max, "µs", &py);
    let _ = write!(
        h,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">percentile</text>",
        LEFT + pw / 2.0,
        H - 5.0
    );
    if !points.is_empty() {
        let path: Vec<String> = points
            .iter()
            .map(|(p, v)| format!("{:.1},{:.1}", px(x_of(*p)), py(*v as f64)))
            .collect();
        let _ = write!(
            h,
            "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
    } else {
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no samples</text>",
            LEFT + pw / 2.0,
            TOP + ph / 2.0
        );
    }
    h.push_str("</svg>");
    h
}

fn axis_y(h: &mut String, y_max: f64, unit: &str, py: &dyn Fn(f64) -> f64) {
    for i in 0..=5 {
        let v = y_max * i as f64 / 5.0;
        let y = py(v);
        let _ = write!(
            h,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 5.0,
            y + 4.0,
            fmt_num(v)
        );
    }
    let _ = write!(
        h,
        "<text x=\"12\" y=\"{:.1}\" transform=\"rotate(-90 12 {:.1})\" text-anchor=\"middle\">{unit}</text>",
        TOP + (H - TOP - BOTTOM) / 2.0,
        TOP + (H - TOP - BOTTOM) / 2.0
    );
}

fn fmt_num(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Packets per second received (bars) and per-second p99 latency (line, right-hand scale).
fn timeline_svg(points: &[TimelinePoint]) -> String {
    let mut h = String::new();
    svg_open(&mut h, "throughput over time");
    let (pw, ph) = (W - LEFT - RIGHT - 40.0, H - TOP - BOTTOM);
    let n = points.len().max(1) as f64;
    let y_max = nice_max(points.iter().map(|p| p.packets as f64).fold(0.0, f64::max));
    let l_max = nice_max(points.iter().map(|p| p.p99_us as f64).fold(0.0, f64::max));
    let py = |y: f64| TOP + ph - y / y_max * ph;
    axis_y(&mut h, y_max, "packets/s", &py);
    let bw = pw / n;
    for (i, p) in points.iter().enumerate() {
        let x = LEFT + i as f64 * bw;
        let y = py(p.packets as f64);
        let _ = write!(
            h,
            "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#9ecae1\">\
             <title>second {}: {} packets, {:.2} Mbit/s, p99 {} µs</title></rect>",
            x + 1.0,
            (bw - 2.0).max(1.0),
            TOP + ph - y,
            p.second,
            p.packets,
            p.bytes as f64 * 8.0 / 1e6,
            p.p99_us
        );
        if i % ((points.len() / 10).max(1)) == 0 {
            let _ = write!(
                h,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}s</text>",
                x + bw / 2.0,
                TOP + ph + 15.0,
                p.second
            );
        }
    }
    if !points.is_empty() {
        let path: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let x = LEFT + (i as f64 + 0.5) * bw;
                let y = TOP + ph - p.p99_us as f64 / l_max * ph;
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = write!(
            h,
            "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for i in 0..=5 {
            let v = l_max * i as f64 / 5.0;
            let y = TOP + ph - v / l_max * ph;
            let _ = write!(
                h,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d62728\">{}</text>",
                LEFT + pw + 5.0,
                y + 4.0,
                fmt_num(v)
            );
        }
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d62728\" text-anchor=\"end\">p99 µs (line)</text>",
            W - 5.0,
            TOP - 6.0
        );
    }
    let _ = write!(
        h,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">seconds since measurement began</text>",
        LEFT + pw / 2.0,
        H - 5.0
    );
    h.push_str("</svg>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
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
        }
    }

    #[test]
    fn json_has_the_required_keys() {
        let j = report().to_json();
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

    #[test]
    fn html_is_self_contained() {
        let html = report().to_html();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(!html.contains("<script"));
        assert_eq!(html.matches("<svg").count(), 2);
        assert!(html.contains("99.9%"));
    }

    #[test]
    fn nice_axis_maxima() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(180.0), 200.0);
        assert_eq!(nice_max(2100.0), 2500.0);
    }
}
