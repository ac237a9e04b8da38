//! ICE-lite in the worker: a Binding request with the right USERNAME and MESSAGE-INTEGRITY is
//! answered; a wrong password, an unknown ufrag or a missing MESSAGE-INTEGRITY gets no reply
//! at all, and the drop counters move.

mod common;

use std::time::{Duration, Instant};

use common::peer::{eventually, Peer};
use tern::datapath::{Datapath, DatapathConfig, IoMode};

#[test]
fn only_authenticated_binding_requests_are_answered() {
    let dp = Datapath::start(DatapathConfig::for_tests(1, IoMode::Auto)).unwrap();
    let mut peer = Peer::install(&dp, 0, 42, false);
    std::thread::sleep(Duration::from_millis(50));

    let bad = [
        (
            "wrong password",
            peer.binding_request(Some("not-the-password"), None, true),
        ),
        ("unknown ufrag", {
            let pwd = peer.ice.local_pwd.clone();
            peer.binding_request(Some(&pwd), Some("nobody"), true)
        }),
        (
            "no MESSAGE-INTEGRITY",
            peer.binding_request(None, None, true),
        ),
    ];
    for (i, (what, req)) in bad.iter().enumerate() {
        peer.sock.send_to(req, peer.relay).unwrap();
        let silence = peer.recv_raw(Instant::now() + Duration::from_millis(300));
        assert!(silence.is_none(), "{what}: the relay must not answer");
        assert!(
            eventually(Duration::from_secs(2), || dp.total_counters().stun_dropped
                > i as u64),
            "{what}: counted as dropped"
        );
    }
    assert_eq!(dp.total_counters().stun_answered, 0);

    peer.connect();
    assert!(eventually(Duration::from_secs(2), || dp
        .total_counters()
        .stun_answered
        >= 1));
    assert_eq!(dp.total_counters().stun_dropped, 3);
}
