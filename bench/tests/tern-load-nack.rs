//! With 2% of RTP dropped on purpose at the subscribers, `tern-load` NACKs every gap, the relay
//! answers from its retransmission cache, the retransmissions are counted as such (not as
//! reordering) and fill the gaps, so almost nothing stays lost.

use std::time::Duration;

use tern::config::Config;
use tern::control::server;
use tern_bench::load::{self, LoadConfig, Progress, Scenario};

#[test]
fn simulated_loss_is_recovered_by_nack() {
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.media.port_base = 0;
    config.media.placement = tern::config::WorkerPlacement::Unbound;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let running = rt
        .block_on(server::start(
            &config,
            Some(b"tern-load-nack-secret".to_vec()),
        ))
        .expect("relay starts");
    let token = running.minter.as_ref().unwrap().mint(
        "load",
        None,
        true,
        true,
        "tern-load-nack",
        Duration::from_secs(600),
    );
    let cfg = LoadConfig {
        url: format!("http://{}", running.http_addr),
        token,
        scenario: Scenario::Broadcast {
            publishers: 1,
            subscribers: 3,
        },
        duration: Duration::from_secs(3),
        warmup: Duration::from_millis(300),
        simulate_loss: 0.02,
        progress: Progress::Off,
        ..LoadConfig::default()
    };
    let report = load::run(&cfg).expect("run");
    println!("{}", report.summary());
    assert!(report.all_ok(), "{:?}", report.failures);
    let json = report.to_json();
    let drops = json["simulated_drops"].as_u64().unwrap();
    let nacks = json["nacks_sent"].as_u64().unwrap();
    let retransmissions = json["retransmissions"].as_u64().unwrap();
    // ~3 × 3 s × 200 packets/s × 2%: tens of drops.
    assert!(drops >= 10, "{drops}");
    assert!(nacks > 0, "no NACK sent for {drops} drops");
    assert!(
        retransmissions * 10 >= drops * 7,
        "{retransmissions} retransmissions for {drops} drops"
    );
    // What stays lost: a retransmission dropped again, or a drop with no later packet.
    assert!(report.loss_ratio() < 0.005, "{}", report.loss_ratio());
    rt.block_on(running.stop());
}
