//! Rate limits for a worker's rare warnings (a failing socket, drops on a full queue): at most
//! one log line per interval, carrying how many were held back. A worker never logs per
//! packet; what it drops it counts, and this only decides when a warning may be written.

use std::time::{Duration, Instant};

use super::stats::Counters;

/// One warning's rate limit.
#[derive(Debug, Clone)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    held: u64,
}

impl Throttle {
    /// At most one warning per `every`.
    pub const fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            held: 0,
        }
    }

    /// `Some(n)` if a warning may be written at `now`, `n` being how many were held back since
    /// the last one; `None` (and one more held back) otherwise.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < self.every)
        {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

/// Warns, at most once a minute, when a worker starts dropping packets on a full send queue, a
/// full fan-out ring or an empty buffer pool (the counters say how many; this says "look").
#[derive(Debug)]
pub(crate) struct DropWarning {
    throttle: Throttle,
    seen: u64,
}

impl DropWarning {
    pub(crate) const fn new() -> Self {
        Self {
            throttle: Throttle::new(Duration::from_secs(60)),
            seen: 0,
        }
    }

    /// Called from housekeeping with the worker's counters.
    pub(crate) fn check(&mut self, worker: usize, c: &Counters, now: Instant) {
        let dropped = c.send_queue_full + c.ring_full + c.pool_empty;
        if dropped <= self.seen {
            return;
        }
        self.seen = dropped;
        if let Some(held) = self.throttle.allow(now) {
            tracing::warn!(
                worker,
                send_queue_full = c.send_queue_full,
                ring_full = c.ring_full,
                pool_empty = c.pool_empty,
                held_back = held,
                "worker dropping packets: queue, ring or pool full"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_interval_with_the_held_back_count() {
        let mut t = Throttle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(t.allow(t0), Some(0));
        assert_eq!(t.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(9)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(t.allow(t0 + Duration::from_secs(11)), None);
    }
}
