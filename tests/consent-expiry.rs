//! Consent freshness: a session with no authenticated Binding request for the consent timeout
//! is closed, the slow path is told, and nothing more is sent to its address.

mod common;

use std::time::{Duration, Instant};

use common::peer::{wire_up, Peer};
use tern::datapath::{Datapath, DatapathConfig, Event, IoMode, MediaKind};

#[test]
fn a_silent_session_expires_and_the_slow_path_is_told() {
    let mut cfg = DatapathConfig::for_tests(1, IoMode::Auto);
    cfg.consent_timeout = Duration::from_millis(600);
    let dp = Datapath::start(cfg).unwrap();
    let mut publisher = Peer::install(&dp, 0, 1, true);
    let mut quiet = Peer::install(&dp, 0, 2, true);
    publisher.connect();
    quiet.connect();
    wire_up(&dp, &publisher, 4, 0x77, MediaKind::Audio, &[&quiet]);

    // The publisher keeps its consent fresh; the subscriber never checks again.
    let start = Instant::now();
    let mut expired_at = None;
    let mut seq = 0u16;
    while start.elapsed() < Duration::from_secs(3) && expired_at.is_none() {
        publisher.connect();
        publisher.send_rtp(0x77, seq, 0, b"audio");
        seq += 1;
        while let Ok(ev) = dp.events().try_recv() {
            if let Event::ConsentExpired { session } = ev {
                assert_eq!(session, 2, "only the silent session expires");
                expired_at = Some(start.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let when = expired_at.expect("the silent session's consent expired");
    assert!(
        when >= Duration::from_millis(500),
        "not before the timeout: {when:?}"
    );
    assert_eq!(dp.total_counters().consent_expired, 1);

    // Drain what was sent before expiry, then: nothing more reaches the expired address.
    while quiet
        .recv_raw(Instant::now() + Duration::from_millis(100))
        .is_some()
    {}
    for _ in 0..10 {
        publisher.send_rtp(0x77, seq, 0, b"audio");
        seq += 1;
    }
    assert!(
        quiet
            .recv_raw(Instant::now() + Duration::from_millis(400))
            .is_none(),
        "no media after expiry"
    );
}
