//! The delay-based part of the estimator: packets grouped into bursts by send time, the change
//! of one-way delay between consecutive groups, and a trendline (least-squares slope of the
//! smoothed accumulated delay over the last groups) compared with an adaptive threshold to say
//! whether the path is over-used, under-used or normal.
//!
//! Follows libwebrtc's `InterArrival` and `TrendlineEstimator`, as str0m ports them
//! (`src/packet/bwe/arrival_group.rs`, `trendline_estimator.rs`; MIT/Apache-2.0): the same
//! constants, with a fixed window instead of a `VecDeque`. Times are µs; nothing allocates.

/// Packets sent within this span of a group's first form one group (a burst).
const BURST_US: i64 = 5_000;
/// Groups in the trendline window.
const WINDOW: usize = 20;
const SMOOTHING: f64 = 0.9;
const THRESHOLD_GAIN: f64 = 4.0;
const INITIAL_THRESHOLD_MS: f64 = 12.5;
const OVERUSE_TIME_US: i64 = 10_000;
const MAX_ADAPT_OFFSET_MS: f64 = 15.0;
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
/// The trend's weight grows with the number of samples up to this.
const MAX_DELTAS: f64 = 60.0;

/// What the delay trend says about the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Normal,
    Overuse,
    Underuse,
}

#[derive(Debug, Clone, Copy, Default)]
struct Group {
    first_send: i64,
    last_send: i64,
    last_arrival: i64,
    /// First arrival, for burst detection.
    first_arrival: i64,
}

/// Arrival groups and the trendline over them.
#[derive(Debug)]
pub struct DelayDetector {
    current: Option<Group>,
    previous: Option<Group>,
    /// (arrival ms since the first, smoothed accumulated delay ms) of the last groups.
    window: [(f64, f64); WINDOW],
    filled: usize,
    next: usize,
    first_arrival: Option<i64>,
    deltas: f64,
    accumulated: f64,
    smoothed: f64,
    threshold: f64,
    last_threshold_update: Option<i64>,
    previous_trend: f64,
    overusing_us: i64,
    overuse_count: u32,
    usage: Usage,
}

impl Default for DelayDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl DelayDetector {
    pub fn new() -> Self {
        Self {
            current: None,
            previous: None,
            window: [(0.0, 0.0); WINDOW],
            filled: 0,
            next: 0,
            first_arrival: None,
            deltas: 0.0,
            accumulated: 0.0,
            smoothed: 0.0,
            threshold: INITIAL_THRESHOLD_MS,
            last_threshold_update: None,
            previous_trend: 0.0,
            overusing_us: 0,
            overuse_count: 0,
            usage: Usage::Normal,
        }
    }

    /// The current hypothesis.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// One received packet, in send order: sent at `send_us` (sender's clock), arrived at
    /// `arrival_us` (receiver's clock).
    pub fn on_packet(&mut self, send_us: i64, arrival_us: i64) {
        let Some(cur) = self.current.as_mut() else {
            self.current = Some(Group {
                first_send: send_us,
                last_send: send_us,
                last_arrival: arrival_us,
                first_arrival: arrival_us,
            });
            return;
        };
        if send_us < cur.first_send {
            return; // reordered past a whole group: ignored, as libwebrtc does
        }
        let in_burst = send_us - cur.first_send <= BURST_US || {
            // Arrived back to back, faster than sent: queued behind each other on the path.
            let arrival_delta = arrival_us - cur.last_arrival;
            let propagation = arrival_delta - (send_us - cur.last_send);
            propagation < 0 && arrival_delta <= BURST_US && arrival_us - cur.first_arrival < 100_000
        };
        if in_burst {
            cur.last_send = cur.last_send.max(send_us);
            cur.last_arrival = cur.last_arrival.max(arrival_us);
            return;
        }
        let done = *cur;
        if let Some(prev) = self.previous {
            let send_delta = done.last_send - prev.last_send;
            let arrival_delta = done.last_arrival - prev.last_arrival;
            if arrival_delta >= 0 {
                self.on_delta(
                    (arrival_delta - send_delta) as f64 / 1000.0,
                    send_delta,
                    done.last_arrival,
                );
            }
        }
        self.previous = Some(done);
        self.current = Some(Group {
            first_send: send_us,
            last_send: send_us,
            last_arrival: arrival_us,
            first_arrival: arrival_us,
        });
    }

    fn on_delta(&mut self, delay_ms: f64, send_delta_us: i64, arrival_us: i64) {
        let first = *self.first_arrival.get_or_insert(arrival_us);
        self.deltas = (self.deltas + 1.0).min(1000.0);
        self.accumulated += delay_ms;
        self.smoothed = SMOOTHING * self.smoothed + (1.0 - SMOOTHING) * self.accumulated;
        self.window[self.next] = ((arrival_us - first) as f64 / 1000.0, self.smoothed);
        self.next = (self.next + 1) % WINDOW;
        self.filled = (self.filled + 1).min(WINDOW);
        if self.filled < WINDOW {
            return;
        }
        let trend = self.slope().unwrap_or(self.previous_trend);
        self.detect(trend, send_delta_us, arrival_us);
    }

    /// Least-squares slope of smoothed delay over arrival time in the window.
    fn slope(&self) -> Option<f64> {
        let n = self.filled as f64;
        let (sx, sy) = self.window[..self.filled]
            .iter()
            .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
        let (mx, my) = (sx / n, sy / n);
        let (num, den) = self.window[..self.filled]
            .iter()
            .fold((0.0, 0.0), |(num, den), (x, y)| {
                (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
            });
        (den != 0.0).then(|| num / den)
    }

    fn detect(&mut self, trend: f64, send_delta_us: i64, now_us: i64) {
        let modified = self.deltas.min(MAX_DELTAS) * trend * THRESHOLD_GAIN;
        if modified > self.threshold {
            if self.overuse_count == 0 {
                self.overusing_us = send_delta_us / 2;
            } else {
                self.overusing_us += send_delta_us;
            }
            self.overuse_count += 1;
            if self.overusing_us > OVERUSE_TIME_US
                && self.overuse_count > 1
                && trend >= self.previous_trend
            {
                self.overusing_us = 0;
                self.overuse_count = 0;
                self.usage = Usage::Overuse;
            }
        } else if modified < -self.threshold {
            self.overuse_count = 0;
            self.usage = Usage::Underuse;
        } else {
            self.overuse_count = 0;
            self.usage = Usage::Normal;
        }
        self.previous_trend = trend;
        self.adapt_threshold(modified, now_us);
    }

    fn adapt_threshold(&mut self, modified: f64, now_us: i64) {
        let last = *self.last_threshold_update.get_or_insert(now_us);
        self.last_threshold_update = Some(now_us);
        if modified.abs() > self.threshold + MAX_ADAPT_OFFSET_MS {
            return; // a latency spike (a sudden capacity drop): not a new normal
        }
        let k = if modified.abs() < self.threshold {
            K_DOWN
        } else {
            K_UP
        };
        let dt_ms = ((now_us - last) as f64 / 1000.0).clamp(0.0, 100.0);
        self.threshold += k * (modified.abs() - self.threshold) * dt_ms;
        self.threshold = self.threshold.clamp(6.0, 600.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames every 33 ms, 5 packets each; the path adds `extra_ms` per frame of queueing.
    fn run(frames: i64, extra_ms: f64) -> DelayDetector {
        let mut d = DelayDetector::new();
        let mut queue = 0.0;
        for f in 0..frames {
            queue += extra_ms;
            for p in 0..5 {
                let send = f * 33_000 + p * 100;
                d.on_packet(send, send + 20_000 + (queue * 1000.0) as i64 + p * 200);
            }
        }
        d
    }

    #[test]
    fn a_steady_path_is_normal_and_a_growing_queue_is_overuse() {
        assert_eq!(run(100, 0.0).usage(), Usage::Normal);
        assert_eq!(run(100, 2.0).usage(), Usage::Overuse);
    }

    #[test]
    fn a_draining_queue_is_underuse() {
        let mut d = DelayDetector::new();
        let mut queue = 400.0f64;
        for f in 0..60i64 {
            queue = (queue - 6.0).max(0.0);
            let send = f * 33_000;
            d.on_packet(send, send + (queue * 1000.0) as i64);
        }
        assert_eq!(d.usage(), Usage::Underuse);
    }
}
