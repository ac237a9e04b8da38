//! The fan-out scenario shared by the same-core, cross-core and mmsg tests: one publisher, 50
//! subscribers; every subscriber must decrypt every payload byte for byte, in order.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use tern::datapath::{Datapath, DatapathConfig, IoKind, IoMode, MediaKind};

use super::peer::{wire_up, Peer};

pub const PACKETS: u16 = 300;

fn payload(seq: u16) -> Vec<u8> {
    let len = 200 + (usize::from(seq) * 37) % 1000;
    (0..len)
        .map(|i| (i as u16 ^ seq.wrapping_mul(7)) as u8)
        .collect()
}

/// Runs the scenario on `workers` workers with subscribers spread round-robin; returns the
/// relay's total counters for further checks.
pub fn run(workers: usize, io: IoMode) -> tern::datapath::Counters {
    if io == IoMode::Uring {
        if let Err(missing) = tern::datapath::io::probe_uring() {
            panic!("this test needs io_uring, and the kernel lacks: {missing}");
        }
    }
    let dp = Datapath::start(DatapathConfig::for_tests(workers, io)).expect("datapath starts");
    let want = if io == IoMode::Mmsg {
        IoKind::Mmsg
    } else {
        IoKind::Uring
    };
    for w in 0..workers {
        assert_eq!(
            dp.io_kind(w),
            want,
            "worker {w} runs the requested I/O backend"
        );
        assert_eq!(
            dp.stats(w).io_mode,
            want.as_str(),
            "and reports it as a metric"
        );
    }
    let mut publisher = Peer::install(&dp, 0, 1, true);
    publisher.connect();
    let mut subs: Vec<Peer> = (0..50)
        .map(|i| Peer::install(&dp, i % workers, 100 + i as u64, true))
        .collect();
    for s in &mut subs {
        s.connect();
    }
    let refs: Vec<&Peer> = subs.iter().collect();
    wire_up(&dp, &publisher, 7, 0xabcd, MediaKind::Video, &refs);
    // Let the subscribe commands land before media flows.
    thread::sleep(Duration::from_millis(300));

    let start = Arc::new(Barrier::new(subs.len() + 1));
    let readers: Vec<_> = subs
        .into_iter()
        .map(|mut s| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut got = Vec::new();
                while got.len() < usize::from(PACKETS) {
                    let Some(p) = s.recv_rtp(deadline) else { break };
                    got.push(p);
                }
                (s.session, got)
            })
        })
        .collect();
    start.wait();
    for seq in 0..PACKETS {
        publisher.send_rtp(0xabcd, 1000 + seq, u32::from(seq) * 3000, &payload(seq));
        // A moderate rate: 1,000 packets/s in, 50,000/s out.
        thread::sleep(Duration::from_millis(1));
    }
    for r in readers {
        let (session, got) = r.join().unwrap();
        assert_eq!(
            got.len(),
            usize::from(PACKETS),
            "subscriber {session} got {} of {PACKETS}",
            got.len()
        );
        for (i, p) in got.iter().enumerate() {
            let seq = 1000 + i as u16;
            assert_eq!(
                u16::from_be_bytes([p[2], p[3]]),
                seq,
                "subscriber {session}: in order"
            );
            assert_eq!(
                u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
                0x5000 + session as u32,
                "rewritten SSRC"
            );
            assert_eq!(
                &p[12..],
                &payload(i as u16)[..],
                "subscriber {session}: payload {i} byte for byte"
            );
        }
    }
    let expected = 50 * u64::from(PACKETS);
    super::peer::eventually(Duration::from_secs(2), || {
        dp.total_counters().media_out >= expected
    });
    let counters = dp.total_counters();
    assert_eq!(dp.dead_workers(), Vec::<usize>::new());
    // Relay latency reaches the histograms the slow path reads (merged every 100 ms).
    std::thread::sleep(Duration::from_millis(250));
    let recorded: u64 = (0..workers)
        .map(|w| dp.stats(w).latency_snapshot().len())
        .sum();
    assert!(
        recorded >= expected,
        "{recorded} latency samples for {expected} egress packets"
    );
    counters
}
