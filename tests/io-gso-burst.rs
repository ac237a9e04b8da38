//! A burst of 20 equal-size packets to one destination leaves as fewer send calls than packets
//! (UDP GSO), and the client still receives 20 separate datagrams, intact and in order.

mod io_support;

use std::time::Duration;

use io_support::*;
use tern::datapath::io::IoConfig;

#[test]
fn equal_size_burst_goes_out_as_gso() {
    for mode in backends() {
        let mut io = server("127.0.0.1:0", mode, IoConfig::default(), None);
        let c = client("127.0.0.1:0");
        let dst = c.local_addr().unwrap();
        for i in 0..20 {
            let buf = io.tx.slot().expect("free slot");
            pattern(i, 1000, buf);
            io.tx.commit(1000, dst);
        }
        assert_eq!(io.tx.queued(), 20);
        io.flush().unwrap();
        assert_eq!(io.tx.queued(), 0);
        let s = io.stats();
        assert!(
            !s.gso_disabled,
            "{mode}: kernel refused GSO on loopback: {s:?}"
        );
        assert!(s.gso_sends > 0, "{mode}: {s:?}");
        assert!(s.send_calls < 20, "{mode}: {s:?}");

        let mut want = [0u8; 1000];
        let mut got = [0u8; 2048];
        for i in 0..20 {
            let (n, from) = c.recv_from(&mut got).expect("segment arrives");
            assert_eq!(from, io.local_addr());
            assert_eq!(n, 1000, "{mode}: datagram {i} is one segment");
            pattern(i, 1000, &mut want);
            assert_eq!(
                &got[..n],
                &want[..],
                "{mode}: datagram {i} in order and intact"
            );
        }
        io.run_once(Duration::from_millis(10), echo).unwrap();
        let s = io.stats();
        assert_eq!(s.send_packets, 20, "{mode}: {s:?}");
        assert_eq!(s.send_errors, 0, "{mode}: {s:?}");
        // Every slot came back once the sends completed.
        assert_eq!(io.tx.free_slots(), io.tx.capacity());
    }
}
