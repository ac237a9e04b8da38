//! SRTP with valid keys from an address that never passed STUN is dropped, and nothing is ever
//! sent to that address: not media, not a STUN answer, not DTLS.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::peer::{eventually, keys_for, wire_up, Peer, PROFILE};
use tern::datapath::{Datapath, DatapathConfig, IoMode, MediaKind};
use tern::srtp::SrtpContext;

#[test]
fn media_from_an_unvalidated_address_is_dropped_and_never_answered() {
    let dp = Datapath::start(DatapathConfig::for_tests(1, IoMode::Auto)).unwrap();
    let mut publisher = Peer::install(&dp, 0, 1, true);
    let mut sub = Peer::install(&dp, 0, 2, true);
    sub.connect();
    wire_up(&dp, &publisher, 9, 0x1111, MediaKind::Audio, &[&sub]);
    std::thread::sleep(Duration::from_millis(100));

    // Before its own Binding request, even the real publisher's SRTP is dropped.
    publisher.send_rtp(0x1111, 1, 0, b"too early");
    assert!(eventually(Duration::from_secs(2), || dp
        .total_counters()
        .unvalidated_source
        >= 1));

    // An attacker on another port holds the publisher's keys but cannot pass STUN.
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    let keys = keys_for(publisher.session);
    let mut forged_tx = SrtpContext::new(PROFILE, &keys.remote_key, &keys.remote_salt).unwrap();
    for seq in 100..120u16 {
        let mut buf = vec![0x80, 96];
        buf.extend_from_slice(&seq.to_be_bytes());
        buf.extend_from_slice(&[0, 0, 0, 0]);
        buf.extend_from_slice(&0x1111u32.to_be_bytes());
        buf.extend_from_slice(b"forged but well keyed");
        let len = buf.len();
        buf.resize(len + PROFILE.rtp_overhead(), 0);
        let n = forged_tx.protect_rtp(&mut buf, len).unwrap();
        attacker.send_to(&buf[..n], publisher.relay).unwrap();
    }
    // A DTLS ClientHello-looking datagram and an unsigned Binding request too.
    attacker
        .send_to(
            &[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            publisher.relay,
        )
        .unwrap();
    let unsigned = publisher.binding_request(None, None, true);
    attacker.send_to(&unsigned, publisher.relay).unwrap();

    attacker
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 2048];
    assert!(
        attacker.recv_from(&mut buf).is_err(),
        "nothing is ever sent to the unvalidated address"
    );
    assert!(
        sub.recv_rtp(Instant::now() + Duration::from_millis(300))
            .is_none(),
        "no forged media relayed"
    );
    let c = dp.total_counters();
    assert!(c.unvalidated_source >= 21, "{c:?}");
    assert_eq!(c.media_out, 0);
    assert!(c.dtls_dropped >= 1);
}
