//! A worker that panics is not limped past: `tern serve` logs which worker died and exits
//! non-zero (70) so systemd restarts it. The panic is injected (debug builds read
//! `TERN_FAULT_PANIC_WORKER`).

mod serve_support;

use std::time::{Duration, Instant};

use serve_support::{config_dir, Served};

#[test]
fn a_dead_worker_makes_the_process_exit_70_naming_it() {
    let dir = config_dir("worker-panic", "worker-panic-test-secret", "");
    let mut served = Served::start(dir, &[("TERN_FAULT_PANIC_WORKER", "0:700ms")]);
    let started = Instant::now();
    let line = served
        .wait_line("stopped unexpectedly", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the death is logged: {:?}", served.log));
    assert!(line.contains("[0]"), "names worker 0: {line}");
    let status = served
        .wait_exit(Duration::from_secs(5))
        .expect("the process exits");
    assert_eq!(status.code(), Some(70), "{status:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "served until the fault, not failed at start"
    );
}
