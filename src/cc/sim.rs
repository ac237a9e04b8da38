//! A simulated path for the estimator's tests: a bottleneck of some rate with a drop-tail queue
//! of some bytes, random loss and jitter, and a receiver that sends transport-cc feedback every
//! 50 ms. Deterministic (a seeded xorshift), in simulated time.

use std::collections::VecDeque;

use super::{Estimator, PacketResult};

pub struct Link {
    pub rate_bps: f64,
    pub queue_bytes: usize,
    pub loss: f64,
    pub jitter_us: i64,
    pub delay_us: i64,
}

impl Link {
    pub fn new(rate_bps: f64, queue_bytes: usize) -> Self {
        Self {
            rate_bps,
            queue_bytes,
            loss: 0.0,
            jitter_us: 0,
            delay_us: 20_000,
        }
    }
}

/// The sender, the path and the receiver's feedback, stepped in simulated µs.
pub struct Sim {
    pub link: Link,
    pub cc: Estimator,
    pub now: i64,
    rng: u64,
    /// Departure times of queued packets with their sizes (drop-tail accounting).
    queue: VecDeque<(i64, usize)>,
    last_departure: i64,
    last_arrival: i64,
    /// (send, size, arrival, probe) not yet reported.
    pending: Vec<(i64, u16, Option<i64>, u16)>,
    next_feedback: i64,
    pub sent_bytes: u64,
    pub lost: u64,
    pub sent: u64,
}

impl Sim {
    pub fn new(link: Link, cc: Estimator) -> Self {
        Self {
            link,
            cc,
            now: 0,
            rng: 0x2545_f491_4f6c_dd1d,
            queue: VecDeque::new(),
            last_departure: 0,
            last_arrival: 0,
            pending: Vec::new(),
            next_feedback: 50_000,
            sent_bytes: 0,
            lost: 0,
            sent: 0,
        }
    }

    fn random(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Sends one packet of `size` bytes now.
    pub fn send(&mut self, size: usize, probe: u16) {
        let now = self.now;
        while self.queue.front().is_some_and(|&(d, _)| d <= now) {
            self.queue.pop_front();
        }
        self.sent += 1;
        self.sent_bytes += size as u64;
        let queued: usize = self.queue.iter().map(|q| q.1).sum();
        let random = self.random();
        let arrival = if queued + size > self.link.queue_bytes || random < self.link.loss {
            self.lost += 1;
            None
        } else {
            let start = self.last_departure.max(now);
            let departure = start + (size as f64 * 8e6 / self.link.rate_bps) as i64;
            self.last_departure = departure;
            self.queue.push_back((departure, size));
            let jitter = (self.random() * self.link.jitter_us as f64) as i64;
            let at = (departure + self.link.delay_us + jitter).max(self.last_arrival);
            self.last_arrival = at;
            Some(at)
        };
        self.pending.push((now, size as u16, arrival, probe));
    }

    /// Advances time to `until`, delivering feedback every 50 ms (received 20 ms later).
    pub fn advance(&mut self, until: i64) {
        while self.next_feedback <= until {
            let at = self.next_feedback;
            self.now = at;
            // Report what has arrived by `at`, and losses sent before the last arrival.
            let cut = self
                .pending
                .iter()
                .rposition(|p| p.2.is_some_and(|a| a <= at))
                .map_or(0, |i| i + 1);
            for (send, size, arrival, probe) in self.pending.drain(..cut) {
                self.cc.on_packet(PacketResult {
                    send_us: send,
                    size,
                    arrival_us: arrival,
                    probe,
                });
            }
            self.cc.end_feedback(at + self.link.delay_us);
            self.next_feedback += 50_000;
        }
        self.now = until;
    }

    /// Sends `bps` as 30 fps frames of ≤ 1200-byte packets for `secs`, calling `each_second`
    /// with the estimate after every simulated second.
    pub fn stream(&mut self, bps: f64, secs: f64, mut each_second: impl FnMut(&mut Self)) {
        let end = self.now + (secs * 1e6) as i64;
        let frame_bytes = (bps / 8.0 / 30.0) as usize;
        let mut next_second = self.now + 1_000_000;
        while self.now < end {
            let mut left = frame_bytes;
            while left > 0 {
                let size = left.min(1200);
                self.send(size, 0);
                left -= size;
            }
            let next = self.now + 33_333;
            self.advance(next);
            if self.now >= next_second {
                next_second += 1_000_000;
                each_second(self);
            }
        }
    }

    /// A probe at `target_bps`: its packets paced, then a little time for feedback.
    pub fn probe(&mut self, target_bps: u64) {
        let plan = self.cc.start_probe(target_bps, 1200, self.now);
        let gap = (1200.0 * 8e6 / target_bps as f64) as i64;
        for _ in 0..plan.packets {
            self.send(1200, plan.cluster);
            let next = self.now + gap;
            self.advance(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Cause, CcConfig};
    use super::*;

    fn estimator() -> Estimator {
        Estimator::new(CcConfig::default())
    }

    #[test]
    fn too_much_for_a_narrow_link_brings_the_estimate_down_to_it() {
        // 1.25 Mbit/s into 500 kbit/s with a 64 kB queue.
        let mut sim = Sim::new(Link::new(500_000.0, 64_000), estimator());
        let mut trace = Vec::new();
        let mut first = None;
        sim.stream(1_250_000.0, 4.0, |s| {
            trace.push(s.cc.estimate_bps());
            first = first.or(s.cc.last_decrease());
        });
        let (at, cause) = first.expect("a decrease");
        assert!(at < 2_500_000, "within 2.5 s: {at} µs");
        assert!(matches!(cause, Cause::Delay | Cause::Loss), "{cause:?}");
        // Down to the link's rate from the second second on.
        assert!(
            trace[1..].iter().all(|e| (200_000..=550_000).contains(e)),
            "{trace:?}"
        );
        // Sending what fits: the estimate stays near the link, not far above it.
        sim.stream(200_000.0, 10.0, |_| {});
        assert!(
            sim.cc.estimate_bps() <= 550_000,
            "{}",
            sim.cc.estimate_bps()
        );
    }

    #[test]
    fn a_probe_on_a_wide_link_raises_the_estimate_and_on_a_narrow_one_finds_its_rate() {
        let mut sim = Sim::new(Link::new(10_000_000.0, 256_000), estimator());
        sim.stream(200_000.0, 2.0, |_| {});
        sim.probe(1_600_000);
        sim.stream(200_000.0, 0.5, |_| {});
        let e = sim.cc.estimate_bps();
        assert!(e >= 1_400_000, "{e}");
        assert!(sim.cc.grounded());

        let mut sim = Sim::new(Link::new(1_100_000.0, 64_000), estimator());
        sim.stream(200_000.0, 2.0, |_| {});
        sim.probe(1_600_000);
        sim.stream(200_000.0, 0.5, |_| {});
        let e = sim.cc.estimate_bps();
        assert!(e <= 1_150_000, "{e}");
    }

    #[test]
    fn random_loss_and_jitter_below_the_link_rate_leave_the_estimate_up() {
        let mut link = Link::new(2_000_000.0, 64_000);
        link.loss = 0.01;
        link.jitter_us = 4_000;
        let mut sim = Sim::new(link, estimator());
        sim.stream(800_000.0, 10.0, |_| {});
        let e = sim.cc.estimate_bps();
        assert!(e >= 800_000, "{e}: {:?}", sim.cc.last_decrease());
    }

    #[test]
    fn heavy_loss_cuts_the_estimate() {
        let mut link = Link::new(5_000_000.0, 256_000);
        link.loss = 0.3;
        let mut sim = Sim::new(link, estimator());
        sim.stream(1_000_000.0, 3.0, |_| {});
        assert_eq!(sim.cc.last_decrease().map(|d| d.1), Some(Cause::Loss));
        assert!(sim.cc.estimate_bps() < 900_000, "{}", sim.cc.estimate_bps());
    }

    #[test]
    fn remb_alone_is_the_estimate() {
        let mut cc = estimator();
        assert!(!cc.grounded());
        cc.on_remb(300_000, 1);
        assert_eq!(cc.estimate_bps(), 300_000);
        assert_eq!(cc.last_decrease().map(|d| d.1), Some(Cause::Remb));
        cc.on_remb(2_000_000, 2);
        assert_eq!(cc.estimate_bps(), 2_000_000);
    }
}
