//! The `--html` report: one self-contained page (no scripts, no external files) with the
//! summary figures, a latency-by-percentile plot on HdrHistogram's "1/(1-p)" log axis and a
//! throughput-over-time plot, both drawn here as inline SVG.

use std::fmt::Write as _;

use super::report::{Report, TimelinePoint};

/// The self-contained HTML report of `r`.
pub(super) fn render(r: &Report) -> String {
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
        escape(&r.title)
    );
    let _ = write!(
        h,
        "<table><tr><th>latency (µs)</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th>\
         <th>max</th></tr><tr><td>one-way</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td></tr></table>",
        r.percentile(0.5),
        r.percentile(0.9),
        r.percentile(0.99),
        r.percentile(0.999),
        r.latency.max()
    );
    let _ = write!(
        h,
        "<table><tr><th>figure</th><th>value</th></tr>\
         <tr><td>subscribers ok / failed</td><td>{} / {}</td></tr>\
         <tr><td>loss ratio</td><td>{:.6}</td></tr>\
         <tr><td>egress pps</td><td>{:.0}</td></tr>\
         <tr><td>egress Mbit/s</td><td>{:.2}</td></tr>",
        r.subscribers_ok(),
        r.subscribers_failed,
        r.loss_ratio(),
        r.egress_pps(),
        r.egress_bps() / 1e6
    );
    if let Some(per) = r.relay_cpu_ns_per_egress() {
        let _ = write!(
            h,
            "<tr><td>relay CPU ns / egress packet</td><td>{per:.0}</td></tr>"
        );
    }
    h.push_str("</table>");
    h.push_str("<h2>Latency by percentile</h2>");
    h.push_str(&percentile_svg(&r.distribution()));
    h.push_str("<h2>Throughput over time</h2>");
    h.push_str(&timeline_svg(&r.timeline));
    let _ = writeln!(
        h,
        "<h2>Summary</h2><pre>{}</pre></body></html>",
        escape(&r.summary())
    );
    h
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
    use crate::load::report::tests::sample_report;

    #[test]
    fn html_is_self_contained() {
        let html = sample_report().to_html();
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
