//! ICE-TCP connections that never authenticate get nothing and are closed: a Binding request
//! signed with the wrong password (closed once `auth_timeout` passes), a DTLS record, random
//! bytes and an oversized length prefix (closed at once). Beside them a correctly signed request
//! on another connection is answered, so silence is the relay's choice, not a broken path. Both
//! I/O backends.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::peer::{binding_request_for, eventually, install_session};
use common::tcp_peer::{frame, TcpPeer};
use tern::datapath::{Datapath, DatapathConfig, IoMode, TcpConfig};

const AUTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Writes `bytes`, then reads until the relay closes; returns (bytes received, time to close).
fn send_and_wait_for_close(mut stream: TcpStream, bytes: Vec<u8>) -> (usize, Duration) {
    let start = Instant::now();
    stream.write_all(&bytes).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut got = 0;
    let mut buf = [0u8; 2048];
    while start.elapsed() < AUTH_TIMEOUT * 3 {
        match stream.read(&mut buf) {
            Ok(0) => return (got, start.elapsed()),
            Ok(n) => got += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (got, start.elapsed()),
            Err(e) => panic!("read: {e}"),
        }
    }
    panic!(
        "the relay kept the connection open for {:?}",
        start.elapsed()
    );
}

/// Deterministic "random" bytes (xorshift), starting with a non-zero length prefix that fits.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out: Vec<u8> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    // A frame length the relay reads whole, so it judges the frame's content: garbage.
    out[0] = 0;
    out[1] = (n - 2) as u8;
    if out[2] < 4 || (20..=63).contains(&out[2]) || (128..=191).contains(&out[2]) {
        out[2] = 0xee;
    }
    out
}

#[test]
fn unauthenticated_tcp_clients_get_nothing_and_are_closed_with_io_uring() {
    if let Err(missing) = tern::datapath::io::probe_uring() {
        panic!("this test needs io_uring, and the kernel lacks: {missing}");
    }
    run(IoMode::Uring);
}

#[test]
fn unauthenticated_tcp_clients_get_nothing_and_are_closed_with_mmsg() {
    run(IoMode::Mmsg);
}

fn run(mode: IoMode) {
    let mut cfg = DatapathConfig::for_tests(1, mode);
    cfg.tcp = Some(TcpConfig {
        auth_timeout: AUTH_TIMEOUT,
        ..TcpConfig::default()
    });
    let dp = Datapath::start(cfg).unwrap();
    let mut good = TcpPeer::install(&dp, 0, 1, true);
    let (ice, _, _) = install_session(&dp, 0, 2, true);
    let relay = dp.tcp_addr(0).unwrap();

    // Session 2's ufrags, the wrong password.
    let wrong_pwd = frame(&binding_request_for(
        &ice,
        1,
        Some("not-the-session-password"),
        None,
        true,
    ));
    let dtls = frame(&[
        22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x30, 1, 0, 0, 0x24, 0, 0,
    ]);
    let mut oversized = vec![0xff, 0xff];
    oversized.extend_from_slice(&[0u8; 64]);
    let cases = [
        ("wrong password", wrong_pwd, true),
        ("dtls", dtls, false),
        ("random bytes", random_bytes(64), false),
        ("oversized prefix", oversized, false),
    ];
    let clients: Vec<_> = cases
        .into_iter()
        .map(|(name, bytes, waits_for_timeout)| {
            let stream = TcpStream::connect(relay).unwrap();
            let h = thread::spawn(move || send_and_wait_for_close(stream, bytes));
            (name, waits_for_timeout, h)
        })
        .collect();

    // Meanwhile an authenticated client on its own connection is answered.
    good.connect();

    for (name, waits_for_timeout, h) in clients {
        let (received, closed_after) = h.join().unwrap();
        assert_eq!(received, 0, "{name}: the relay sent {received} bytes");
        if waits_for_timeout {
            assert!(
                closed_after >= AUTH_TIMEOUT - Duration::from_millis(300),
                "{name}: closed after {closed_after:?}, before the authentication timeout"
            );
        } else {
            assert!(
                closed_after < AUTH_TIMEOUT / 2,
                "{name}: closed only after {closed_after:?}"
            );
        }
    }
    assert!(eventually(Duration::from_secs(2), || {
        let c = dp.total_counters();
        c.tcp_closed_unauthenticated >= 2
            && c.tcp_closed_garbage >= 1
            && c.tcp_closed_oversized >= 1
            && c.tcp_connections == 1
    }));
    let c = dp.total_counters();
    assert_eq!(c.stun_answered, 1, "only the good client: {c:?}");
    assert!(c.stun_dropped >= 1, "the wrong password was checked: {c:?}");
    assert_eq!(c.dtls_in, 0, "{c:?}");
    // The answered connection stays open; the others are gone.
    assert_eq!((c.tcp_connections, c.tcp_accepted), (1, 5), "{c:?}");
}
