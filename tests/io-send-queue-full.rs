//! When every send slot is queued or in flight, `slot()` returns `None` at once (and counts it)
//! instead of blocking; slots come back after the sends complete.

mod io_support;

use std::time::Duration;

use io_support::*;
use tern::datapath::io::IoConfig;

#[test]
fn full_send_queue_returns_none() {
    for mode in backends() {
        let cfg = IoConfig {
            send_slots: 4,
            ..IoConfig::default()
        };
        let mut io = server("127.0.0.1:0", mode, cfg, None);
        let c = client("127.0.0.1:0");
        let dst = c.local_addr().unwrap();
        for i in 0..4 {
            let b = io.tx.slot().expect("free slot");
            b[0] = i;
            io.tx.commit(1 + i as usize, dst);
        }
        assert!(io.tx.slot().is_none(), "{mode}: fifth slot");
        assert!(io.tx.slot().is_none(), "{mode}: sixth slot");
        assert_eq!(io.stats().send_queue_full, 2);
        assert_eq!(io.tx.queued(), 4);

        io.flush().unwrap();
        io.run_once(Duration::from_millis(10), echo).unwrap();
        assert_eq!(io.tx.free_slots(), 4, "{mode}: slots back after completion");
        let mut buf = [0u8; 16];
        for i in 0..4u8 {
            let (n, _) = c.recv_from(&mut buf).unwrap();
            assert_eq!((n, buf[0]), (1 + i as usize, i));
        }
        assert!(io.tx.slot().is_some());
    }
}
