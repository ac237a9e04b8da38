//! A datagram longer than `buffer_size` is dropped and counted, never delivered cut short.

mod io_support;

use std::time::{Duration, Instant};

use io_support::*;
use tern::datapath::io::IoConfig;

#[test]
fn oversized_datagram_is_dropped_and_counted() {
    for mode in backends() {
        let cfg = IoConfig {
            buffer_size: 512,
            ..IoConfig::default()
        };
        let mut io = server("127.0.0.1:0", mode, cfg, None);
        let c = client("127.0.0.1:0");
        let dst = io.local_addr();
        c.send_to(&[1; 512], dst).unwrap();
        c.send_to(&[2; 513], dst).unwrap();
        c.send_to(&[3; 5], dst).unwrap();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen.len() < 2 && Instant::now() < deadline {
            io.run_once(Duration::from_millis(20), |d, _, _| {
                seen.push((d[0], d.len()))
            })
            .unwrap();
        }
        assert_eq!(seen, vec![(1, 512), (3, 5)], "{mode}");
        assert_eq!(io.stats().recv_truncated, 1, "{mode}");
    }
}
