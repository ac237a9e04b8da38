//! Rate control on the delay signal (AIMD, draft-ietf-rmcat-gcc-02 §5): increase while the path
//! is normal (8 %/s multiplicatively, additively once near the rate where it last congested),
//! hold while it under-uses, and on over-use drop to 0.85 × the acknowledged rate. An increase
//! never takes the estimate past 1.5 × what the receiver acknowledged plus 10 kbit/s, so an
//! estimate is never far above what the path was seen to carry (probes raise it directly).
//!
//! Also the acknowledged rate: bytes the receiver reported received over the last 500 ms of
//! its arrival clock. Follows libwebrtc's `AimdRateControl` as str0m ports it
//! (`src/packet/bwe/rate_control.rs`, MIT/Apache-2.0). Fixed-size, no allocation.

use super::delay::Usage;

const BETA: f64 = 0.85;
const INCREASE_PER_SECOND: f64 = 1.08;
const THROUGHPUT_RATIO: f64 = 1.5;
const SMOOTHING: f64 = 0.95;
const ACKED_WINDOW_US: i64 = 500_000;
/// Feedback summaries the acknowledged-rate window keeps.
const SUMMARIES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Increase,
    Hold,
    Decrease,
}

/// The AIMD controller.
#[derive(Debug)]
pub struct RateControl {
    state: State,
    estimate: f64,
    min: f64,
    max: f64,
    last_update: Option<i64>,
    /// Acked rate at the last decreases (mean, variance): near it, increase additively.
    average_at_decrease: Option<(f64, f64)>,
}

impl RateControl {
    pub fn new(start: f64, min: f64, max: f64) -> Self {
        Self {
            state: State::Increase,
            estimate: start,
            min,
            max,
            last_update: None,
            average_at_decrease: None,
        }
    }

    pub fn estimate(&self) -> f64 {
        self.estimate
    }

    /// Sets the estimate outright (a probe measured the path).
    pub fn set_estimate(&mut self, bps: f64, now_us: i64) {
        self.estimate = bps.clamp(self.min, self.max);
        self.last_update = Some(now_us);
    }

    /// One update with the delay detector's `usage` and the acknowledged rate `acked`.
    /// Returns true when it decreased.
    pub fn update(&mut self, usage: Usage, acked: Option<f64>, now_us: i64) -> bool {
        self.state = match (self.state, usage) {
            (_, Usage::Overuse) => State::Decrease,
            (_, Usage::Underuse) => State::Hold,
            (State::Decrease, Usage::Normal) => State::Hold,
            (_, Usage::Normal) => State::Increase,
        };
        let last = *self.last_update.get_or_insert(now_us);
        match (self.state, acked) {
            (State::Increase, Some(acked)) => {
                let limit = THROUGHPUT_RATIO * acked + 10_000.0;
                if self.estimate < limit {
                    let dt = ((now_us - last) as f64 / 1e6).clamp(0.0, 1.0);
                    let near = self.average_at_decrease.is_some_and(|(mean, var)| {
                        (acked - mean).abs() <= 3.0 * var.sqrt().max(0.05 * mean)
                    });
                    let increased = if near {
                        // About one packet per response time (100 ms + RTT, taken as 100 ms).
                        self.estimate + (0.5 * dt / 0.2 * 1200.0 * 8.0).max(1000.0 * dt)
                    } else {
                        self.estimate * INCREASE_PER_SECOND.powf(dt)
                    };
                    self.estimate = increased.min(limit).clamp(self.min, self.max);
                }
                self.last_update = Some(now_us);
                false
            }
            (State::Decrease, Some(acked)) => {
                let decreased = (BETA * acked).min(self.estimate);
                self.estimate = decreased.clamp(self.min, self.max);
                self.average_at_decrease = Some(match self.average_at_decrease {
                    Some((mean, var)) if (acked - mean).abs() <= 3.0 * var.sqrt() + 1.0 => {
                        let d = acked - mean;
                        let mean = mean + (1.0 - SMOOTHING) * d;
                        (mean, SMOOTHING * (var + (1.0 - SMOOTHING) * d * d))
                    }
                    _ => (acked, 0.0),
                });
                self.state = State::Hold;
                self.last_update = Some(now_us);
                true
            }
            _ => {
                self.last_update = Some(now_us);
                false
            }
        }
    }
}

/// Bytes acknowledged received, over the last 500 ms of arrival time.
#[derive(Debug)]
pub struct AckedRate {
    /// (first arrival, last arrival, bytes) per feedback.
    summaries: [(i64, i64, u64); SUMMARIES],
    next: usize,
    filled: usize,
    /// The summary being built from the current feedback.
    building: Option<(i64, i64, u64)>,
}

impl Default for AckedRate {
    fn default() -> Self {
        Self {
            summaries: [(0, 0, 0); SUMMARIES],
            next: 0,
            filled: 0,
            building: None,
        }
    }
}

impl AckedRate {
    pub fn on_packet(&mut self, arrival_us: i64, size: u16) {
        let b = self.building.get_or_insert((arrival_us, arrival_us, 0));
        b.0 = b.0.min(arrival_us);
        b.1 = b.1.max(arrival_us);
        b.2 += u64::from(size);
    }

    /// Ends the current feedback's summary.
    pub fn end_feedback(&mut self) {
        if let Some(b) = self.building.take() {
            self.summaries[self.next] = b;
            self.next = (self.next + 1) % SUMMARIES;
            self.filled = (self.filled + 1).min(SUMMARIES);
        }
    }

    /// bit/s over the summaries ending within 500 ms of the newest arrival; `None` before
    /// 100 ms of arrivals were seen.
    pub fn rate(&self) -> Option<f64> {
        let newest = self.summaries[..self.filled].iter().map(|s| s.1).max()?;
        let (mut first, mut bytes) = (newest, 0u64);
        for s in &self.summaries[..self.filled] {
            if newest - s.1 <= ACKED_WINDOW_US {
                first = first.min(s.0);
                bytes += s.2;
            }
        }
        let span = (newest - first).max(1);
        (span >= 100_000).then(|| bytes as f64 * 8.0 * 1e6 / span as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increases_while_normal_but_not_past_the_acknowledged_rate() {
        let mut r = RateControl::new(300_000.0, 30_000.0, 10e6);
        for i in 0..=10 {
            r.update(Usage::Normal, Some(1e6), i * 100_000);
        }
        let after_1s = r.estimate();
        assert!((320_000.0..330_000.0).contains(&after_1s), "{after_1s}");
        for i in 11..=500 {
            r.update(Usage::Normal, Some(200_000.0), i * 100_000);
        }
        // Above 1.5 × 200k + 10k already: holds there rather than climbing.
        assert!(
            r.estimate() <= after_1s.max(310_000.0) + 1.0,
            "{}",
            r.estimate()
        );
    }

    #[test]
    fn overuse_drops_to_085_of_acknowledged_then_holds() {
        let mut r = RateControl::new(2e6, 30_000.0, 10e6);
        assert!(r.update(Usage::Overuse, Some(500_000.0), 0));
        assert_eq!(r.estimate(), 425_000.0);
        // Near the rate it last congested at, it grows back additively (slowly).
        assert!(!r.update(Usage::Normal, Some(500_000.0), 100_000));
        assert!(!r.update(Usage::Normal, Some(500_000.0), 200_000));
        assert!(
            (425_000.0..440_000.0).contains(&r.estimate()),
            "{}",
            r.estimate()
        );
    }

    #[test]
    fn acked_rate_counts_bytes_over_arrival_time() {
        let mut a = AckedRate::default();
        assert_eq!(a.rate(), None);
        // 1000 bytes every 10 ms = 800 kbit/s, in feedbacks of 5 packets.
        for i in 0..100i64 {
            a.on_packet(i * 10_000, 1000);
            if i % 5 == 4 {
                a.end_feedback();
            }
        }
        let r = a.rate().unwrap();
        assert!((780_000.0..840_000.0).contains(&r), "{r}");
    }
}
