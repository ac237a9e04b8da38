//! Under systemd (`JOURNAL_STREAM` set) text log lines carry no timestamp of their own
//! (journald stamps them) and start with the syslog priority journald reads (`<6>` info,
//! `<4>` warning, `<3>` error), so `journalctl -p warning` finds warnings and errors.

mod serve_support;

use std::time::Duration;

use serve_support::{config_dir, Served};

/// True if `line` has an RFC 3339 timestamp like `2026-12-05T07:41:19.278950Z`.
fn has_timestamp(line: &str) -> bool {
    line.as_bytes().windows(11).any(|w| {
        w[..4].iter().all(u8::is_ascii_digit) && w[4] == b'-' && w[7] == b'-' && w[10] == b'T'
    })
}

#[test]
fn journal_lines_have_priorities_and_no_timestamps() {
    let dir = config_dir("log-journal", "log-journal-secret", "");
    let mut served = Served::start(dir, &[("JOURNAL_STREAM", "8:12345")]);
    let serving = served.log.last().cloned().unwrap();
    assert!(serving.starts_with("<6>"), "{serving}");
    let refused = served.refused_reload();
    assert!(refused.starts_with("<3>"), "{refused}");
    served.kill("TERM");
    assert!(served.wait_exit(Duration::from_secs(10)).is_some());
    let lines = served.all_lines(Duration::from_secs(5));
    for line in lines {
        assert!(
            ["<3>", "<4>", "<6>", "<7>"]
                .iter()
                .any(|p| line.starts_with(p)),
            "no priority: {line}"
        );
        assert!(!has_timestamp(line), "a timestamp of its own: {line}");
    }

    // Without JOURNAL_STREAM the same lines have timestamps and no prefix.
    let dir = config_dir("log-plain", "log-journal-secret", "");
    let mut served = Served::start(dir, &[]);
    let serving = served.log.last().cloned().unwrap();
    assert!(
        has_timestamp(&serving) && !serving.starts_with('<'),
        "{serving}"
    );
    served.kill("TERM");
    assert!(served.wait_exit(Duration::from_secs(10)).is_some());
}
