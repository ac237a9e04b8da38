//! The service manager's side channel (systemd's `sd_notify` protocol, spoken directly): one
//! datagram per message to the `AF_UNIX` socket named by `NOTIFY_SOCKET`.
//!
//! `READY=1` goes out once HTTP listens and every worker runs; `STATUS=` says how many sessions
//! there are and how fast packets flow; `WATCHDOG=1` is sent only while every worker has
//! finished a loop turn recently (a worker turns at least every 100 ms even when idle), so a
//! stuck or dead worker stops the pings and systemd restarts the service after `WatchdogSec`.
//! Without `NOTIFY_SOCKET` (not under systemd) every call is a no-op.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use crate::datapath::Datapath;

/// A worker silent for longer than this is stuck (its loop turns at least every 100 ms).
pub const STUCK_AFTER: Duration = Duration::from_secs(2);

/// The notify socket, when the service manager gave one.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// From `NOTIFY_SOCKET` (a path, or `@name` for an abstract socket). `Ok(None)` when unset.
    pub fn from_env() -> io::Result<Option<Self>> {
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(name) if !name.is_empty() => Self::connect(&name.to_string_lossy()).map(Some),
            _ => Ok(None),
        }
    }

    /// A notifier sending to `name` (a path, or `@name` for an abstract socket).
    pub fn connect(name: &str) -> io::Result<Self> {
        let addr = match name.strip_prefix('@') {
            Some(abstract_name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(abstract_name.as_bytes())?
            }
            None => SocketAddr::from_pathname(name)?,
        };
        Ok(Self {
            socket: UnixDatagram::unbound()?,
            addr,
        })
    }

    /// Sends one message (`KEY=value` lines).
    pub fn send(&self, message: &str) -> io::Result<()> {
        self.socket
            .send_to_addr(message.as_bytes(), &self.addr)
            .map(|_| ())
    }
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, if it is set for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Whether the workers deserve a `WATCHDOG=1`: every worker alive and none silent for longer
/// than `stuck_after`. The error names the worker.
pub fn workers_healthy(
    dead: &[usize],
    since_progress: impl IntoIterator<Item = Duration>,
    stuck_after: Duration,
) -> Result<(), String> {
    if let Some(w) = dead.first() {
        return Err(format!("worker {w} has stopped"));
    }
    for (w, quiet) in since_progress.into_iter().enumerate() {
        if quiet > stuck_after {
            return Err(format!(
                "worker {w} has made no progress for {} ms",
                quiet.as_millis()
            ));
        }
    }
    Ok(())
}

/// [`workers_healthy`] of a running datapath.
pub fn datapath_healthy(dp: &Datapath) -> Result<(), String> {
    workers_healthy(
        &dp.dead_workers(),
        (0..dp.worker_count()).map(|w| dp.since_progress(w)),
        STUCK_AFTER,
    )
}

/// Rates between two looks at the datapath, for `STATUS=`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RateMeter {
    last: Option<(std::time::Instant, u64, u64)>,
}

impl RateMeter {
    /// `STATUS=` text: sessions and packets per second in and out since the last call.
    pub fn status(&mut self, sessions: usize, packets_in: u64, packets_out: u64) -> String {
        let now = std::time::Instant::now();
        let (pps_in, pps_out) = match self.last {
            Some((t, i, o)) => {
                let secs = now.duration_since(t).as_secs_f64().max(1e-3);
                (
                    (packets_in.saturating_sub(i) as f64 / secs).round() as u64,
                    (packets_out.saturating_sub(o) as f64 / secs).round() as u64,
                )
            }
            None => (0, 0),
        };
        self.last = Some((now, packets_in, packets_out));
        format!("{sessions} sessions, {pps_in} packets/s in, {pps_out} packets/s out")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn healthy_only_when_every_worker_turns() {
        assert!(workers_healthy(&[], [MS * 50, MS * 90], STUCK_AFTER).is_ok());
        let stuck = workers_healthy(&[], [MS * 50, MS * 2500], STUCK_AFTER).unwrap_err();
        assert!(stuck.contains("worker 1"), "{stuck}");
        let dead = workers_healthy(&[0], [MS, MS], STUCK_AFTER).unwrap_err();
        assert!(dead.contains("worker 0 has stopped"), "{dead}");
    }

    #[test]
    fn messages_reach_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("tern-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::connect(path.to_str().unwrap()).unwrap();
        n.send("READY=1\nSTATUS=up").unwrap();
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=up");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("tern-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::connect(&format!("@{name}")).unwrap();
        n.send("WATCHDOG=1").unwrap();
        let mut buf = [0u8; 16];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[test]
    fn status_reports_rates() {
        let mut m = RateMeter::default();
        assert_eq!(
            m.status(3, 0, 0),
            "3 sessions, 0 packets/s in, 0 packets/s out"
        );
        std::thread::sleep(Duration::from_millis(100));
        let s = m.status(3, 100, 1000);
        assert!(s.starts_with("3 sessions, "), "{s}");
        assert!(!s.contains(" 0 packets/s out"), "{s}");
    }
}
