//! In steady state a worker allocates nothing: a counting global allocator counts only on
//! threads the datapath marks as workers, across a fan-out run over two workers (local
//! subscribers and ring transfers, STUN consent checks, NACK answers).

mod common;
mod worker_alloc;

use std::time::Duration;

use common::peer::{eventually, wire_up, Peer};
use tern::datapath::{Datapath, DatapathConfig, IoMode, MediaKind};
use worker_alloc::{mark_worker, worker_allocations};

fn send_burst(publisher: &mut Peer, from: u16, count: u16) {
    for seq in from..from + count {
        publisher.send_rtp(0xabcd, seq, u32::from(seq) * 90, &[seq as u8; 900]);
        std::thread::sleep(Duration::from_micros(500));
    }
}

#[test]
fn workers_do_not_allocate_in_steady_state() {
    let mut cfg = DatapathConfig::for_tests(2, IoMode::Auto);
    cfg.on_worker_start = Some(mark_worker);
    let dp = Datapath::start(cfg).unwrap();
    let mut publisher = Peer::install(&dp, 0, 1, true);
    publisher.connect();
    let mut subs: Vec<Peer> = (0..10)
        .map(|i| Peer::install(&dp, i % 2, 10 + i as u64, true))
        .collect();
    for s in &mut subs {
        s.connect();
    }
    let refs: Vec<&Peer> = subs.iter().collect();
    wire_up(&dp, &publisher, 3, 0xabcd, MediaKind::Video, &refs);
    std::thread::sleep(Duration::from_millis(200));

    // Warm up: first packets of every stream, pool and ring buffers in use, a report tick.
    send_burst(&mut publisher, 0, 200);
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        worker_allocations() > 0,
        "the counter sees worker setup allocations"
    );
    let before = worker_allocations();

    send_burst(&mut publisher, 200, 1000);
    for s in &mut subs {
        s.connect(); // consent refresh: STUN answered in the worker
    }
    assert!(eventually(Duration::from_secs(2), || dp
        .total_counters()
        .media_out
        >= 10 * 1200));
    let made = worker_allocations() - before;
    assert_eq!(
        made, 0,
        "workers allocated {made} times while relaying 10,000 packets"
    );
}
