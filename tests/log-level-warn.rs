//! `[log] level = "warn"` keeps every info line out (start-up, serving, reload, drain) while
//! warnings and errors still print; `RUST_LOG`, when set, wins over the config's level.

mod serve_support;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use serve_support::{config_dir, Served};

#[test]
fn warn_suppresses_info_but_not_errors() {
    let dir = config_dir("log-warn", "log-warn-secret", "[log]\nlevel = \"warn\"\n");
    // No info line says when it serves, so wait for READY=1 on a notify socket instead.
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut served = Served::spawn(dir, &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 256];
    loop {
        assert!(Instant::now() < deadline, "no READY=1: {:?}", served.log);
        if let Ok(n) = sock.recv(&mut buf) {
            if buf[..n].starts_with(b"READY=1") {
                break;
            }
        }
    }
    // A reload of a broken config is an error: it prints.
    let line = served.refused_reload();
    assert!(line.contains("ERROR"), "{line}");
    served.kill("TERM");
    assert!(served.wait_exit(Duration::from_secs(10)).is_some());
    let lines = served.all_lines(Duration::from_secs(5));
    assert!(
        !lines.iter().any(|l| l.contains("INFO")),
        "info lines at level warn: {lines:#?}"
    );
    assert_eq!(lines.len(), 1, "{lines:#?}");
}

#[test]
fn rust_log_wins_over_the_config() {
    let dir = config_dir(
        "log-rust-log",
        "log-warn-secret",
        "[log]\nlevel = \"warn\"\n",
    );
    // Served::start waits for the info line "serving": it comes only because RUST_LOG says so.
    let mut served = Served::start(dir, &[("RUST_LOG", "tern=info")]);
    assert!(
        served
            .log
            .iter()
            .any(|l| l.contains("INFO") && l.contains("config ok")),
        "{:?}",
        served.log
    );
    served.kill("TERM");
    assert!(served.wait_exit(Duration::from_secs(10)).is_some());
}
