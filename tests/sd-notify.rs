//! Under systemd (`Type=notify`, `WatchdogSec`): `tern serve` says READY=1 once it serves,
//! reports STATUS= with sessions and packet rates, pings WATCHDOG=1 at half the watchdog period
//! while its workers turn, and says STOPPING=1 on SIGTERM before it exits 0.

mod serve_support;

use std::io::{Read, Write};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use serve_support::{config_dir, Served};

#[test]
fn ready_status_watchdog_and_stopping_reach_the_notify_socket() {
    let dir = config_dir("notify", "notify-test-secret", "");
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // WatchdogSec=0.6 s: a ping every 300 ms.
    let mut served = Served::start(
        dir,
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "600000"),
        ],
    );
    let mut messages = Vec::new();
    let mut buf = [0u8; 512];
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        if let Ok(n) = sock.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).to_string());
        }
    }
    assert!(
        messages.first().is_some_and(|m| m.starts_with("READY=1")),
        "READY=1 comes first: {messages:?}"
    );
    // READY=1 only once HTTP answers.
    let addr = served.base.trim_start_matches("http://");
    let mut http = std::net::TcpStream::connect(addr).expect("HTTP listens");
    http.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    http.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let pings = messages.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(
        (4..=12).contains(&pings),
        "about one ping per 300 ms over 2.5 s, got {pings}: {messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("STATUS=0 sessions, ") && m.contains("packets/s in")),
        "STATUS= with sessions and rates: {messages:?}"
    );

    served.kill("TERM");
    let mut stopping = false;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until && !stopping {
        if let Ok(n) = sock.recv(&mut buf) {
            stopping = buf[..n].starts_with(b"STOPPING=1");
        }
    }
    assert!(stopping, "STOPPING=1 on SIGTERM");
    let status = served.wait_exit(Duration::from_secs(5)).expect("exits");
    assert!(status.success(), "exit 0 after an empty drain: {status:?}");
}
