//! Congestion control for what the relay sends each subscriber: a sans-IO, GoogCC-style
//! bandwidth estimator (feedback and `now` in, an estimate out) and the layer allocation that
//! turns estimates into simulcast layer choices.
//!
//! The estimator follows libwebrtc's GoogCC, reading str0m's port of it (`src/packet/bwe/`,
//! MIT/Apache-2.0) as the reference: a delay-based detector (arrival groups, trendline,
//! adaptive threshold: [`delay`]) drives AIMD rate control bounded by the acknowledged rate
//! ([`aimd`]); a loss-based bound cuts the estimate when more than 10 % is lost; probe clusters
//! ([`probe`]) measure the path directly; a subscriber without transport-cc is estimated by its
//! REMB. It owns no clock, no socket and allocates nothing after creation: the worker feeds it
//! each packet status of each transport-cc feedback (send time and size from the session's
//! send history) and reads the estimate. [`allocate`] is the slow path's part.

pub mod aimd;
pub mod allocate;
pub mod delay;
pub mod probe;
#[cfg(test)]
mod sim;

use aimd::{AckedRate, RateControl};
use delay::{DelayDetector, Usage};
use probe::{ProbePlan, ProbeResult, Probes};

/// Loss above this share cuts the loss-based bound; below [`LOSS_LOW`] it grows again.
const LOSS_HIGH: f64 = 0.10;
const LOSS_LOW: f64 = 0.02;
/// Packets and time a loss measurement spans at least.
const LOSS_MIN_PACKETS: u32 = 20;
const LOSS_MIN_US: i64 = 200_000;

/// An estimator's limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CcConfig {
    /// The estimate before any feedback, bit/s.
    pub start_bps: u64,
    pub min_bps: u64,
    pub max_bps: u64,
}

impl Default for CcConfig {
    fn default() -> Self {
        Self {
            start_bps: 1_000_000,
            min_bps: 30_000,
            max_bps: 50_000_000,
        }
    }
}

/// One packet as a transport-cc feedback reports it, joined with what the sender remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketResult {
    /// When it was sent (µs, sender's clock).
    pub send_us: i64,
    /// Bytes on the wire.
    pub size: u16,
    /// When it arrived (µs, receiver's clock), or `None` if it was lost.
    pub arrival_us: Option<i64>,
    /// Its probe cluster (0: none).
    pub probe: u16,
}

/// Why the estimate last went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Queueing delay grew (over-use).
    Delay,
    /// More than 10 % was lost.
    Loss,
    /// The receiver's REMB said less.
    Remb,
}

/// One subscriber session's bandwidth estimator.
#[derive(Debug)]
pub struct Estimator {
    config: CcConfig,
    delay: DelayDetector,
    rate: RateControl,
    acked: AckedRate,
    probes: Probes,
    /// Transport-cc feedback has been seen (else the estimate is REMB's, or the start).
    twcc: bool,
    remb: Option<f64>,
    loss_bound: Option<f64>,
    lost: u32,
    reported: u32,
    loss_since: Option<i64>,
    last_loss: f64,
    /// The last decrease: when and why.
    decreased: Option<(i64, Cause)>,
    /// A probe measured the path (the estimate is grounded).
    probed: bool,
    results: [Option<ProbeResult>; 2],
}

impl Estimator {
    pub fn new(config: CcConfig) -> Self {
        let c = config;
        Self {
            config,
            delay: DelayDetector::new(),
            rate: RateControl::new(c.start_bps as f64, c.min_bps as f64, c.max_bps as f64),
            acked: AckedRate::default(),
            probes: Probes::default(),
            twcc: false,
            remb: None,
            loss_bound: None,
            lost: 0,
            reported: 0,
            loss_since: None,
            last_loss: 0.0,
            decreased: None,
            probed: false,
            results: [None; 2],
        }
    }

    /// One status of a transport-cc feedback, in sequence order.
    pub fn on_packet(&mut self, r: PacketResult) {
        self.twcc = true;
        self.reported += 1;
        if r.probe != 0 {
            self.probes
                .on_packet(r.probe, r.send_us, r.size, r.arrival_us);
        }
        match r.arrival_us {
            Some(at) => {
                self.delay.on_packet(r.send_us, at);
                self.acked.on_packet(at, r.size);
            }
            None => self.lost += 1,
        }
    }

    /// The feedback whose statuses were just given is complete: update the estimate.
    pub fn end_feedback(&mut self, now_us: i64) {
        self.acked.end_feedback();
        let acked = self.acked.rate();
        if self.rate.update(self.delay.usage(), acked, now_us) {
            self.decreased = Some((now_us, Cause::Delay));
        }
        while let Some(result) = self.probes.poll_result(now_us) {
            if let Some(m) = result.measured_bps {
                // A measure of the path: the delay-based estimate starts from it unless the
                // path is over-used right now.
                if self.delay.usage() != Usage::Overuse && m > self.rate.estimate() {
                    self.rate.set_estimate(m, now_us);
                }
                self.probed = true;
            }
            self.results.rotate_right(1);
            self.results[0] = Some(result);
        }
        self.update_loss(now_us);
    }

    fn update_loss(&mut self, now_us: i64) {
        let since = *self.loss_since.get_or_insert(now_us);
        if self.reported < LOSS_MIN_PACKETS || now_us - since < LOSS_MIN_US {
            return;
        }
        let fraction = f64::from(self.lost) / f64::from(self.reported);
        (self.lost, self.reported, self.loss_since) = (0, 0, Some(now_us));
        self.last_loss = fraction;
        let current = self.estimate_bps() as f64;
        if fraction > LOSS_HIGH {
            // Not below what the path was seen to carry: a sender that keeps sending too much
            // loses more, but the path still delivers its rate.
            let floor = self.acked.rate().map_or(0.0, |a| 0.85 * a);
            let cut = (current * (1.0 - 0.5 * fraction)).max(floor);
            self.loss_bound = Some(cut.min(current).max(self.config.min_bps as f64));
            self.decreased = Some((now_us, Cause::Loss));
        } else if fraction < LOSS_LOW {
            // Grows 8 % per measurement; gone once the delay-based estimate is the lower.
            self.loss_bound = self
                .loss_bound
                .map(|b| b * 1.08)
                .filter(|&b| b < self.rate.estimate());
        }
    }

    /// A REMB from the receiver: its own estimate of what it can take.
    pub fn on_remb(&mut self, bps: u64, now_us: i64) {
        let bps = (bps as f64).clamp(self.config.min_bps as f64, self.config.max_bps as f64);
        if self.remb.is_none_or(|r| bps < 0.95 * r) && bps < self.estimate_bps() as f64 {
            self.decreased = Some((now_us, Cause::Remb));
        }
        self.remb = Some(bps);
    }

    /// A probe of `target_bps` to send now: `packets` packets of about `packet_size` bytes,
    /// enough for ~40 ms at the target (5 at least).
    pub fn start_probe(&mut self, target_bps: u64, packet_size: usize, now_us: i64) -> ProbePlan {
        let bytes = target_bps as f64 * 0.04 / 8.0;
        let packets = (bytes / packet_size.max(100) as f64)
            .ceil()
            .clamp(5.0, 40.0) as u16;
        self.probes.start(target_bps, packets, now_us)
    }

    /// The estimate, bit/s: the delay-based one (with transport-cc) or the start, bounded by
    /// loss and by the receiver's REMB.
    pub fn estimate_bps(&self) -> u64 {
        let mut e = if self.twcc || self.remb.is_none() {
            self.rate.estimate()
        } else {
            f64::INFINITY
        };
        if let Some(b) = self.loss_bound {
            e = e.min(b);
        }
        if let Some(r) = self.remb {
            e = e.min(r);
        }
        e.clamp(self.config.min_bps as f64, self.config.max_bps as f64) as u64
    }

    /// Whether the estimate rests on what the path did (a decrease, a probe, a REMB), not only
    /// on the start value.
    pub fn grounded(&self) -> bool {
        self.decreased.is_some() || self.probed || self.remb.is_some()
    }

    /// Whether the estimate is the delay-based one alone (transport-cc feedback, no REMB).
    pub fn delay_based(&self) -> bool {
        self.twcc && self.remb.is_none()
    }

    /// The last decrease: µs and cause.
    pub fn last_decrease(&self) -> Option<(i64, Cause)> {
        self.decreased
    }

    /// The loss share of the last loss measurement.
    pub fn loss(&self) -> f64 {
        self.last_loss
    }

    /// Finished probes since the last call, newest first.
    pub fn take_probe_results(&mut self) -> [Option<ProbeResult>; 2] {
        std::mem::take(&mut self.results)
    }
}
