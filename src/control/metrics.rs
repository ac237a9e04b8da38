//! Prometheus text exposition of the datapath counters and relay-latency quantiles, per worker
//! and in total.

use std::fmt::Write;

use super::dtls::client_hello::HelloError;
use super::dtls::DtlsStats;
use crate::datapath::Datapath;
use crate::srtp::Profile;

/// The `/metrics` body.
pub fn render(dp: &Datapath, dtls: &DtlsStats) -> String {
    let mut out = String::new();
    let mut total = crate::datapath::Counters::default();
    let mut all = crate::datapath::stats_histogram();
    for w in 0..dp.worker_count() {
        let stats = dp.stats(w);
        let c = stats.counters.snapshot();
        total.add(&c);
        for (name, value) in c.fields() {
            let _ = writeln!(out, "tern_{name}{{worker=\"{w}\"}} {value}");
        }
        let _ = writeln!(
            out,
            "tern_io_mode{{worker=\"{w}\",mode=\"{}\"}} 1",
            stats.io_mode
        );
        let h = stats.latency_snapshot();
        let _ = all.add(&h);
        for q in [0.5, 0.9, 0.99, 0.999] {
            let _ = writeln!(
                out,
                "tern_relay_latency_ns{{worker=\"{w}\",quantile=\"{q}\"}} {}",
                h.value_at_quantile(q)
            );
        }
    }
    for (name, value) in total.fields() {
        let _ = writeln!(out, "tern_{name}_total {value}");
    }
    for q in [0.5, 0.9, 0.99, 0.999] {
        let _ = writeln!(
            out,
            "tern_relay_latency_ns{{quantile=\"{q}\"}} {}",
            all.value_at_quantile(q)
        );
    }
    let _ = writeln!(out, "tern_relay_latency_ns_count {}", all.len());
    let _ = writeln!(
        out,
        "tern_dtls_final_flight_resends_total {}",
        dtls.final_flight_resends()
    );
    let _ = writeln!(
        out,
        "tern_dtls_duplicate_hello_verify_total {}",
        dtls.duplicate_hello_verifies()
    );
    // Not `tern_dtls_dropped_total`: that is the datapath's counter, rendered above.
    let _ = writeln!(out, "tern_dtls_handshake_dropped_total {}", dtls.dropped());
    for p in Profile::ALL {
        let _ = writeln!(
            out,
            "tern_srtp_sessions_total{{profile=\"{}\"}} {}",
            p.name(),
            dtls.srtp_sessions(p)
        );
    }
    // Handshakes started without Tern's choice of SRTP profile (the dtls crate then chooses by
    // the client's order), and why.
    for r in HelloError::ALL {
        let _ = writeln!(
            out,
            "tern_dtls_srtp_fallback_total{{reason=\"{}\"}} {}",
            r.label(),
            dtls.srtp_fallbacks(r)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::datapath::{DatapathConfig, IoMode};

    /// Prometheus rejects a scrape that repeats a series (same name, same labels).
    #[test]
    fn every_series_appears_once() {
        let dp = Datapath::start(DatapathConfig::for_tests(2, IoMode::Auto)).expect("datapath");
        let text = render(&dp, &DtlsStats::default());
        let mut seen = HashSet::new();
        for line in text.lines() {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(seen.insert(series), "{series} appears twice:\n{text}");
        }
        assert!(seen.contains("tern_dtls_dropped_total"));
        assert!(seen.contains("tern_dtls_handshake_dropped_total"));
        assert!(seen.contains("tern_srtp_sessions_total{profile=\"AEAD_AES_128_GCM\"}"));
        assert!(seen.contains("tern_dtls_srtp_fallback_total{reason=\"malformed\"}"));
    }
}
