//! Helpers shared by the `io-*` integration tests: building a `UdpIo` per backend on loopback,
//! pumping it, and a blocking client.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tern::datapath::io::{probe_uring, IoConfig, IoKind, IoMode, SendQueue, UdpIo, Waker};

/// Both backends, io_uring first. Panics, loudly, if this kernel cannot run the io_uring one:
/// these tests never skip it silently.
pub fn backends() -> [IoMode; 2] {
    if let Err(missing) = probe_uring() {
        panic!("io_uring tests need these kernel features, which are missing here: {missing}");
    }
    [IoMode::Uring, IoMode::Mmsg]
}

pub fn kind_of(mode: IoMode) -> IoKind {
    match mode {
        IoMode::Mmsg => IoKind::Mmsg,
        _ => IoKind::Uring,
    }
}

/// A `UdpIo` bound to `bind` (port 0) with `cfg` and `mode`, checked to use that backend.
pub fn server(bind: &str, mode: IoMode, cfg: IoConfig, waker: Option<Arc<Waker>>) -> UdpIo {
    let sock = UdpSocket::bind(bind).expect("bind server");
    let cfg = IoConfig { mode, ..cfg };
    let io = UdpIo::new(sock, waker, &cfg).expect("UdpIo::new");
    assert_eq!(io.kind(), kind_of(mode));
    io
}

/// A blocking client socket with a 5 s read timeout.
pub fn client(bind: &str) -> UdpSocket {
    let c = UdpSocket::bind(bind).expect("bind client");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c
}

/// Queues an echo of `data` to `src`.
pub fn echo(data: &mut [u8], src: SocketAddr, tx: &mut SendQueue) {
    if let Some(buf) = tx.slot() {
        buf[..data.len()].copy_from_slice(data);
        tx.commit(data.len(), src);
    }
}

/// Runs `run_once` with echo until `want` datagrams were delivered (5 s at most), then flushes.
pub fn pump_echo(io: &mut UdpIo, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = 0;
    while got < want && Instant::now() < deadline {
        got += io.run_once(Duration::from_millis(20), echo).unwrap();
    }
    io.flush().unwrap();
    got
}

/// The test pattern for datagram `i` of length `len`.
pub fn pattern(i: usize, len: usize, out: &mut [u8]) {
    for (k, b) in out[..len].iter_mut().enumerate() {
        *b = (i * 31 + k * 7) as u8;
    }
}
