//! `Waker::wake()` from another thread makes a `run_once` with a 10 s timeout return promptly,
//! and repeated wakes are consumed (the next wait waits again).

mod io_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use io_support::*;
use tern::datapath::io::{IoConfig, Waker};

#[test]
fn wake_interrupts_a_long_wait() {
    for mode in backends() {
        let waker = Arc::new(Waker::new().unwrap());
        let mut io = server(
            "127.0.0.1:0",
            mode,
            IoConfig::default(),
            Some(waker.clone()),
        );
        let w = waker.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            for _ in 0..1000 {
                w.wake();
            }
        });
        let start = Instant::now();
        let n = io.run_once(Duration::from_secs(10), echo).unwrap();
        let waited = start.elapsed();
        t.join().unwrap();
        assert_eq!(n, 0);
        assert!(
            waited < Duration::from_secs(2),
            "{mode}: run_once took {waited:?}"
        );

        // The wakes were consumed: the next wait lasts its timeout.
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed() < Duration::from_millis(150) {
            n += io.run_once(Duration::from_millis(200), echo).unwrap();
        }
        assert_eq!(n, 0);
        assert!(
            start.elapsed() >= Duration::from_millis(190),
            "{mode}: a consumed wake fired again"
        );

        // And a wake before the wait also interrupts it.
        waker.wake();
        let start = Instant::now();
        io.run_once(Duration::from_secs(10), echo).unwrap();
        assert!(start.elapsed() < Duration::from_secs(2), "{mode}");
    }
}
