//! DTLS between a validated peer and the slow path: datagrams from the ICE-validated address
//! reach the slow path through the event queue; the slow path's datagrams leave through the
//! worker's socket to that address. Before the keys arrive, RTP is dropped and counted.

mod common;

use std::time::{Duration, Instant};

use common::peer::{eventually, wire_up, Peer};
use tern::datapath::{Command, Datapath, DatapathConfig, Event, IoMode, MediaKind};

#[test]
fn dtls_goes_to_the_slow_path_and_back_and_media_waits_for_keys() {
    let dp = Datapath::start(DatapathConfig::for_tests(1, IoMode::Auto)).unwrap();
    let mut publisher = Peer::install(&dp, 0, 1, false); // no keys yet
    let mut sub = Peer::install(&dp, 0, 2, true);
    publisher.connect();
    sub.connect();
    wire_up(&dp, &publisher, 8, 0x42, MediaKind::Audio, &[&sub]);
    std::thread::sleep(Duration::from_millis(100));

    let hello = [22u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xaa, 0xbb];
    publisher.sock.send_to(&hello, publisher.relay).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut got = None;
    while got.is_none() && Instant::now() < deadline {
        if let Ok(Event::Dtls {
            session,
            worker,
            data,
        }) = dp.events().recv_timeout(Duration::from_millis(100))
        {
            got = Some((session, worker, data));
        }
    }
    assert_eq!(
        got,
        Some((1, 0, hello.to_vec())),
        "the datagram reached the slow path unchanged"
    );

    let flight = vec![22u8, 0xfe, 0xfd, 9, 9, 9];
    dp.send(
        0,
        Command::SendDtls {
            session: 1,
            data: flight.clone(),
        },
    )
    .unwrap();
    assert_eq!(
        publisher.recv_raw(Instant::now() + Duration::from_secs(2)),
        Some(flight),
        "sent to the validated address"
    );

    // RTP before keys: dropped and counted; after keys: relayed.
    publisher.send_rtp(0x42, 1, 0, b"early");
    assert!(eventually(Duration::from_secs(2), || dp
        .total_counters()
        .no_keys
        >= 1));
    assert!(sub
        .recv_rtp(Instant::now() + Duration::from_millis(200))
        .is_none());
    let keys = common::peer::keys_for(1);
    dp.send(0, Command::SetKeys { session: 1, keys }).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    publisher.send_rtp(0x42, 2, 0, b"with keys");
    let p = sub
        .recv_rtp(Instant::now() + Duration::from_secs(2))
        .expect("media flows once keys are in");
    assert_eq!(&p[12..], b"with keys");
}
