//! Steady-state `run_once` plus echo sends never touch the heap: a counting global allocator
//! watches this thread while batches of datagrams are received and echoed, on both backends.

mod counting_alloc;

use counting_alloc::allocations;
mod io_support;

use std::time::Duration;

use io_support::*;
use tern::datapath::io::IoConfig;

const BATCH: usize = 16;

/// One round: the client sends a batch (some equal-sized, so GSO groups form too), the server
/// receives and echoes it, the client reads every echo.
fn round(io: &mut tern::datapath::io::UdpIo, c: &std::net::UdpSocket, buf: &mut [u8]) {
    let dst = io.local_addr();
    for k in 0..BATCH {
        let len = if k < BATCH / 2 { 1200 } else { 100 + k * 10 };
        c.send_to(&buf[..len], dst).unwrap();
    }
    let mut got = 0;
    while got < BATCH {
        got += io.run_once(Duration::from_millis(100), echo).unwrap();
    }
    io.flush().unwrap();
    for _ in 0..BATCH {
        c.recv_from(buf).unwrap();
    }
}

#[test]
fn steady_state_allocates_nothing() {
    for mode in backends() {
        let mut io = server("127.0.0.1:0", mode, IoConfig::default(), None);
        let c = client("127.0.0.1:0");
        let mut buf = vec![7u8; 2048];
        for _ in 0..50 {
            round(&mut io, &c, &mut buf);
        }
        let before = allocations();
        for _ in 0..500 {
            round(&mut io, &c, &mut buf);
        }
        let allocated = allocations() - before;
        let s = io.stats();
        assert_eq!(
            allocated, 0,
            "{mode}: {allocated} allocations in steady state"
        );
        assert!(s.recv_packets >= 550 * BATCH as u64, "{mode}: {s:?}");
        assert!(s.gso_sends > 0, "{mode}: {s:?}");
        eprintln!(
            "{mode}: {} datagrams echoed with {} syscalls ({:.2} per {BATCH}-datagram batch)",
            s.recv_packets,
            s.submits,
            s.submits as f64 / 550.0
        );
    }
}
