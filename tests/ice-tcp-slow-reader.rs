//! A TCP subscriber that never reads its socket costs only its own packets: the publisher's
//! other subscribers, one on UDP and one on TCP, receive every packet in order, the relay's
//! memory stays flat once the stalled connection's buffers are full (the worker allocates
//! nothing, the process's RSS grows by less than half of what it drops), and the relay counts
//! the packets it drops for the stalled one. Both I/O backends.

mod common;
mod worker_alloc;

use std::thread;
use std::time::{Duration, Instant};

use common::peer::{eventually, wire_up_sessions, Peer};
use common::tcp_peer::TcpPeer;
use tern::datapath::{Datapath, DatapathConfig, IoMode};
use worker_alloc::{mark_worker, worker_allocations};

/// 2,000 packets/s of ~1 KB for 3 s: ~2 MB/s into a subscriber that reads nothing.
const PACKETS: u16 = 6000;
const GAP: Duration = Duration::from_micros(500);

fn payload(seq: u16) -> Vec<u8> {
    (0..1000).map(|i| (i as u16 ^ seq) as u8).collect()
}

/// (sequence number, payload intact) of each packet `recv` returns, up to `PACKETS` or 30 s.
fn received(mut recv: impl FnMut(Instant) -> Option<Vec<u8>>) -> Vec<(u16, bool)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    (0..PACKETS)
        .map_while(|_| recv(deadline))
        .map(|p| {
            let seq = u16::from_be_bytes([p[2], p[3]]);
            (seq, p[12..] == payload(seq)[..])
        })
        .collect()
}

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Both backends in turn: the allocation count and RSS are per process, so runs must not
/// overlap.
#[test]
fn a_stalled_tcp_subscriber_costs_only_its_own_packets() {
    if let Err(missing) = tern::datapath::io::probe_uring() {
        panic!("this test needs io_uring, and the kernel lacks: {missing}");
    }
    run(IoMode::Uring);
    run(IoMode::Mmsg);
}

fn run(mode: IoMode) {
    let mut cfg = DatapathConfig::for_tests(1, mode);
    cfg.on_worker_start = Some(mark_worker);
    let dp = Datapath::start(cfg).unwrap();
    let mut publisher = Peer::install(&dp, 0, 1, true);
    let mut udp_sub = Peer::install(&dp, 0, 2, true);
    let mut tcp_sub = TcpPeer::install(&dp, 0, 3, true);
    let mut stalled = TcpPeer::install(&dp, 0, 4, true);
    publisher.connect();
    udp_sub.connect();
    tcp_sub.connect();
    stalled.connect();
    // The stalled viewer's kernel takes little: the relay's own buffer must do the holding.
    socket2::SockRef::from(&stalled.stream)
        .set_recv_buffer_size(16 << 10)
        .unwrap();
    let subs = [(2, 0), (3, 0), (4, 0)];
    wire_up_sessions(
        &dp,
        (1, 0),
        7,
        0xabcd,
        tern::datapath::MediaKind::Video,
        &subs,
    );
    thread::sleep(Duration::from_millis(200));

    let readers = [
        thread::spawn(move || received(|deadline| udp_sub.recv_rtp(deadline))),
        thread::spawn(move || received(|deadline| tcp_sub.recv_rtp(deadline))),
    ];

    let start = Instant::now();
    let (mut samples, mut allocations) = (Vec::with_capacity(8), Vec::with_capacity(8));
    for seq in 0..PACKETS {
        publisher.send_rtp(0xabcd, seq, u32::from(seq) * 90, &payload(seq));
        if seq % 1000 == 999 {
            let c = dp.total_counters();
            samples.push((seq, rss_kib(), c.tcp_dropped_send_buffer_full));
            allocations.push(worker_allocations());
        }
        let due = start + GAP * (u32::from(seq) + 1);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
    for (name, r) in ["udp", "tcp"].into_iter().zip(readers) {
        let got = r.join().unwrap();
        assert_eq!(
            got.len(),
            usize::from(PACKETS),
            "{name}: every packet arrives"
        );
        for (i, (seq, intact)) in got.iter().enumerate() {
            assert_eq!(*seq as usize, i, "{name}: in order");
            assert!(intact, "{name}: packet {i} byte for byte");
        }
    }
    assert!(eventually(Duration::from_secs(2), || {
        dp.total_counters().media_out >= 3 * u64::from(PACKETS)
    }));
    let c = dp.total_counters();
    println!("{mode:?}: samples (seq, rss KiB, dropped): {samples:?}\n{c:?}");
    // Drops begin once the stalled connection's send ring and kernel buffers are full, and keep
    // rising while the stream flows.
    let (_, rss_full, dropped_full) = samples[1];
    let (_, rss_end, dropped_end) = *samples.last().unwrap();
    assert!(dropped_full > 0, "dropping by 2 s: {samples:?}");
    assert!(
        dropped_end > dropped_full + 1000,
        "still dropping: {samples:?}"
    );
    // A relay that queued what it drops would grow by those ~1 KB packets; half of that is
    // allowed for the allocator and the histograms' pages.
    let dropped_kib = (dropped_end - dropped_full) * 1000 / 1024;
    assert_eq!(
        allocations[1],
        *allocations.last().unwrap(),
        "the worker allocated while dropping: {allocations:?}"
    );
    assert!(
        rss_end <= rss_full + dropped_kib / 2,
        "memory grew from {rss_full} KiB to {rss_end} KiB while dropping {dropped_kib} KiB: \
         {samples:?}"
    );
    assert_eq!(
        c.tcp_dropped_send_buffer_full,
        dropped_end.max(c.tcp_dropped_send_buffer_full)
    );
    assert_eq!(c.tcp_dropped_closed, 0, "{c:?}");
    assert_eq!(
        c.tcp_connections, 2,
        "the stalled viewer is not cut off: {c:?}"
    );
    drop(stalled);
}
