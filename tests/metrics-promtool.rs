//! A live `/metrics` scrape, taken while webrtc-rs peers publish and subscribe through Tern,
//! passes `promtool check metrics` (Prometheus's own linter) without a single remark; it repeats
//! no series, its latency histogram is cumulative and ends at `_count`, and its gauges say one
//! publisher, one subscriber, one room.

mod metrics_support;
mod webrtc_client;

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use metrics_support::{series, sum};
use webrtc_client::{check_payload, media_pair};

fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (test-all.sh installs Debian's `prometheus`)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && said.trim().is_empty(), said)
}

#[test]
fn promtool_notices_a_bad_exposition() {
    // The oracle itself: a counter without `_total` and a unit abbreviation are problems.
    let (ok, said) = promtool_check("# HELP tern_x_ms x\n# TYPE tern_x_ms counter\ntern_x_ms 1\n");
    assert!(!ok, "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_scrape_passes_promtool() {
    let mut pair = media_pair(None).await;
    for _ in 0..50 {
        let p = tokio::time::timeout(Duration::from_secs(10), pair.rx.recv())
            .await
            .expect("media flows")
            .expect("open");
        check_payload(&p);
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // one more latency merge
    let text = reqwest::get(format!("http://{}/metrics", pair.running.http_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (ok, said) = tokio::task::block_in_place(|| promtool_check(&text));
    assert!(ok, "promtool check metrics:\n{said}\n---\n{text}");

    let mut seen = HashSet::new();
    for (s, _) in series(&text) {
        assert!(seen.insert(s), "{s} appears twice");
    }
    // Media flowed, and no unlabelled twin of a per-worker counter remains.
    assert!(sum(&text, "tern_media_out_total").unwrap() >= 50.0);
    assert!(!text.contains("\ntern_media_out_total "), "{text}");
    assert!(text.contains("tern_media_out_total{worker=\"0\"} "));
    // The histogram, per worker: cumulative buckets up to +Inf == _count; in all, _count
    // counts the packets relayed.
    let workers = series(&text)
        .filter(|(s, _)| s.starts_with("tern_worker_up{"))
        .count();
    for w in 0..workers {
        let prefix = format!("tern_relay_latency_seconds_bucket{{worker=\"{w}\",le=");
        let buckets: Vec<f64> = series(&text)
            .filter(|(s, _)| s.starts_with(&prefix))
            .map(|(_, v)| v)
            .collect();
        assert_eq!(buckets.len(), 14, "13 bounds and +Inf");
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
        let count = sum(
            &text,
            &format!("tern_relay_latency_seconds_count{{worker=\"{w}\"}}"),
        );
        assert_eq!(Some(buckets[13]), count);
        assert!(text.contains(&format!("{prefix}\"0.00001\"}}")), "{text}");
        assert!(text.contains(&format!("{prefix}\"0.1\"}}")), "{text}");
    }
    let count = sum(&text, "tern_relay_latency_seconds_count").unwrap();
    assert!(count >= 50.0, "{count}");
    assert!(sum(&text, "tern_relay_latency_seconds_sum").unwrap() > 0.0);
    // Gauges.
    assert_eq!(sum(&text, "tern_sessions{kind=\"publisher\"}"), Some(1.0));
    assert_eq!(sum(&text, "tern_sessions{kind=\"subscriber\"}"), Some(1.0));
    assert_eq!(sum(&text, "tern_rooms"), Some(1.0));
    assert!(sum(&text, "tern_tracks").unwrap() >= 1.0);
    assert_eq!(sum(&text, "tern_dtls_handshakes_in_flight"), Some(0.0));
    assert!(workers >= 1);
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.contains(&format!(
            "tern_build_info{{version=\"{version}\",io_mode=\""
        )),
        "{text}"
    );
    every_metric_the_ops_files_name_exists(&text);
    pair.close().await;
}

/// The dashboard and the alert rules name only metrics this scrape has (a renamed metric
/// would leave a panel empty and an alert silent).
fn every_metric_the_ops_files_name_exists(text: &str) {
    let mut known: HashSet<&str> = series(text)
        .map(|(s, _)| s.split('{').next().unwrap())
        .collect();
    known.extend(
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next()),
    );
    for file in ["ops/grafana/tern.json", "ops/prometheus/tern-rules.yml"] {
        let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
        let body = std::fs::read_to_string(&path).expect(file);
        let mut named = 0;
        for (i, _) in body.match_indices("tern_") {
            let name: String = body[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            named += 1;
            assert!(
                known.contains(name.as_str()),
                "{file} names {name}, not in /metrics"
            );
        }
        assert!(named >= 8, "{file} names only {named} metrics");
    }
}
