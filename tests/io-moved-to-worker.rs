//! A `UdpIo` built on one thread (mode Auto, which picks io_uring on a kernel that has it) can be
//! moved to its worker thread and driven there, as the worker loop does; dropping it there with
//! sends in flight is clean.

mod io_support;

use std::time::Duration;

use io_support::*;
use tern::datapath::io::{IoConfig, IoKind, UdpIo};

#[test]
fn built_here_driven_on_a_worker_thread() {
    backends(); // Require io_uring loudly, so Auto must pick it.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut io = UdpIo::new(sock, None, &IoConfig::default()).unwrap();
    assert_eq!(io.kind(), IoKind::Uring);
    assert_eq!(io.kind().as_str(), "uring");
    let dst = io.local_addr();
    let c = client("127.0.0.1:0");
    c.send_to(b"ping", dst).unwrap();
    let worker = std::thread::spawn(move || {
        assert_eq!(pump_echo(&mut io, 1), 1);
        // Queue a burst and drop without reaping: Drop cancels and drains on this thread.
        let to = c.local_addr().unwrap();
        for _ in 0..32 {
            io.tx.slot().unwrap();
            io.tx.commit(500, to);
        }
        io.flush().unwrap();
        io.run_once(Duration::ZERO, echo).unwrap();
        drop(io);
        c
    });
    let c = worker.join().expect("worker thread");
    let mut buf = [0u8; 600];
    let (n, _) = c.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
}
