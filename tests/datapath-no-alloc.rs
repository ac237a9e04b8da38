//! In steady state a worker allocates nothing: a counting global allocator counts only on
//! threads the datapath marks as workers, across a fan-out run over two workers (local
//! subscribers and ring transfers, STUN consent checks, NACK answers).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::peer::{eventually, wire_up, Peer};
use tern::datapath::{Datapath, DatapathConfig, IoMode, MediaKind};

struct Counting;

static WORKER_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static IS_WORKER: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards every call unchanged to the system allocator; the bookkeeping is an atomic
// add and a const-initialised thread-local read, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if IS_WORKER.with(Cell::get) {
            WORKER_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is the same.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if IS_WORKER.with(Cell::get) {
            WORKER_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: `ptr` was allocated by `System` with `layout`; the caller upholds the rest.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn mark_worker(_: usize) {
    IS_WORKER.with(|w| w.set(true));
}

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
        WORKER_ALLOCATIONS.load(Ordering::Relaxed) > 0,
        "the counter sees worker setup allocations"
    );
    let before = WORKER_ALLOCATIONS.load(Ordering::Relaxed);

    send_burst(&mut publisher, 200, 1000);
    for s in &mut subs {
        s.connect(); // consent refresh: STUN answered in the worker
    }
    assert!(eventually(Duration::from_secs(2), || dp
        .total_counters()
        .media_out
        >= 10 * 1200));
    let made = WORKER_ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(
        made, 0,
        "workers allocated {made} times while relaying 10,000 packets"
    );
}
