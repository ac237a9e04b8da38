//! A 3-second `tern-load` broadcast 1 → 5 against an in-process Tern (ephemeral ports only):
//! every subscriber gets media, nothing is lost, latency is recorded, and the JSON report
//! parses with the keys the issue promises.

use std::time::Duration;

use tern::config::Config;
use tern::control::server;
use tern_bench::load::{self, LoadConfig, Progress, Scenario};

#[test]
fn broadcast_one_to_five_delivers_everything() {
    // Ephemeral ports everywhere; limits raised so one address may hold six sessions.
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.media.port_base = 0;
    config.media.placement = tern::config::WorkerPlacement::Unbound;
    config.limits.sessions_per_ip = 100;
    config.limits.requests_per_minute = 10_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let running = rt
        .block_on(server::start(
            &config,
            Some(b"tern-load-test-secret".to_vec()),
        ))
        .expect("relay starts");
    let token = running.minter.as_ref().expect("HS256 minter").mint(
        "load",
        None,
        true,
        true,
        "tern-load-test",
        Duration::from_secs(600),
    );
    let cfg = LoadConfig {
        url: format!("http://{}", running.http_addr),
        token,
        scenario: Scenario::Broadcast {
            publishers: 1,
            subscribers: 5,
        },
        duration: Duration::from_secs(3),
        warmup: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(10),
        progress: Progress::Off,
        relay_pid: Some(std::process::id()),
        ..LoadConfig::default()
    };
    let report = load::run(&cfg).expect("run");
    println!("{}", report.summary());

    assert!(
        report.failures.is_empty(),
        "failures: {:?}",
        report.failures
    );
    assert_eq!(report.publishers_ok, 1);
    assert_eq!(report.subscribers_ok(), 5);
    assert_eq!(report.subscribers_failed, 0);
    for s in &report.subscribers {
        assert!(s.ok && s.packets > 0, "{s:?}");
        // 3 s of audio (50/s) and 1.5 Mbit/s video: hundreds of packets.
        assert!(s.expected > 300, "{s:?}");
        assert_eq!(s.received, s.expected, "subscriber lost packets: {s:?}");
        assert_eq!(s.srtp_errors, 0, "{s:?}");
    }
    assert_eq!(report.loss_ratio(), 0.0);
    assert!(report.latency.len() > 1500, "{}", report.latency.len());
    assert!(report.latency.value_at_quantile(0.5) > 0);
    assert!(report.egress_pps() > 500.0, "{}", report.egress_pps());
    assert!(report.relay_cpu_ns_per_egress().is_some_and(|n| n > 0.0));

    let path =
        std::env::temp_dir().join(format!("tern-load-broadcast-{}.json", std::process::id()));
    load::write_json(&report, &path).expect("write JSON");
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let json: serde_json::Value = serde_json::from_str(&text).expect("the JSON parses");
    for key in ["p50", "p90", "p99", "p999", "max"] {
        assert!(
            json["latency_us"][key].as_u64().is_some_and(|v| v > 0),
            "latency_us.{key}"
        );
    }
    assert!(!json["latency_us"]["distribution"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(json["loss_ratio"].as_f64(), Some(0.0));
    assert!(json["egress_pps"].as_f64().is_some_and(|v| v > 0.0));
    assert_eq!(json["subscribers_ok"].as_u64(), Some(5));
    assert_eq!(json["subscribers_failed"].as_u64(), Some(0));
    assert!(json["relay_cpu_ns_per_egress"].as_f64().is_some());
    assert_eq!(json["subscribers"].as_array().unwrap().len(), 5);

    rt.block_on(running.stop());
}
