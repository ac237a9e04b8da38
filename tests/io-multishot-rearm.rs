//! With only 4 receive buffers, a blast of 64 datagrams exhausts the buffer ring (the io_uring
//! multishot receive ends with ENOBUFS); it is re-armed, every datagram is still delivered, and
//! datagrams sent afterwards arrive too.

mod io_support;

use std::time::{Duration, Instant};

use io_support::*;
use tern::datapath::io::{IoConfig, IoMode};

fn receive(io: &mut tern::datapath::io::UdpIo, want: usize, seen: &mut Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.len() < want && Instant::now() < deadline {
        io.run_once(Duration::from_millis(20), |d, _, _| seen.push(d[0]))
            .unwrap();
    }
}

#[test]
fn receive_survives_buffer_exhaustion() {
    for mode in backends() {
        let cfg = IoConfig {
            recv_buffers: 4,
            ..IoConfig::default()
        };
        let mut io = server("127.0.0.1:0", mode, cfg, None);
        // Arm the receive before the blast.
        io.run_once(Duration::ZERO, |_, _, _| {}).unwrap();
        let c = client("127.0.0.1:0");
        let dst = io.local_addr();
        for i in 0..64u8 {
            c.send_to(&[i; 100], dst).unwrap();
        }
        let mut seen = Vec::new();
        receive(&mut io, 64, &mut seen);
        assert_eq!(
            seen,
            (0..64).collect::<Vec<u8>>(),
            "{mode}: all 64, in order"
        );
        if mode == IoMode::Uring {
            assert!(io.stats().recv_rearms > 0, "{mode}: {:?}", io.stats());
        }

        for i in 0..8u8 {
            c.send_to(&[100 + i; 10], dst).unwrap();
        }
        seen.clear();
        receive(&mut io, 8, &mut seen);
        assert_eq!(
            seen,
            (100..108).collect::<Vec<u8>>(),
            "{mode}: after re-arm"
        );
        assert_eq!(io.stats().recv_packets, 72);
    }
}
