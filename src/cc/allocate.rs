//! Layer allocation for one subscriber: from its estimates and the measured rate of each
//! simulcast layer, which layer it should get, and when to probe for a higher one.
//!
//! Budget = estimate − audio − a margin (10 % of the estimate). Down at once when the layer
//! sent no longer fits a grounded estimate (the highest that fits, else the lowest: audio is
//! never given up for video). Up only with hysteresis (the new layer's rate × 1.15 must fit)
//! and either right after a probe measured room for it or after a quiet period without a
//! decrease. To find room, a probe on the subscriber's RTX stream (a few re-sent packets, paced
//! at the target, invisible to the viewer) every [`PROBE_EVERY`]; without RTX, a tentative
//! upgrade, at most every [`TENTATIVE_EVERY`] (doubling while they fail). The estimate of a
//! subscriber that is sent less than a layer's rate cannot show that the layer fits (it is
//! bounded by the rate acknowledged), so a tentative layer, and one that held for [`QUIET`], is
//! taken back only on a decrease: with transport-cc, congestion from it shows as one. The
//! viewer's chosen layer is the ceiling. Sans-IO: `now` is passed in.
//!
//! Below the lowest layer the lowest is kept, or, where configured ([`Allocation::pausing`]),
//! the video is paused once the lowest no longer fits either (audio goes on). A paused
//! subscriber is sent too little for its estimate to show room for video again, and has no
//! recent packets to probe with, so it resumes as a tentative upgrade does: after a quiet
//! period, then at the tentative interval, doubling while resumes fail.

use std::time::{Duration, Instant};

/// Share of the estimate kept free.
pub const MARGIN: f64 = 0.10;
/// A higher layer must fit this many times over.
pub const HYSTERESIS: f64 = 1.15;
/// Without a decrease for this long, a higher layer that fits the estimate is taken.
pub const QUIET: Duration = Duration::from_secs(8);
/// Probes for a higher layer at most this often.
pub const PROBE_EVERY: Duration = Duration::from_secs(6);
/// Probes aim this far above what the next layer needs: a probe measures the lower of its send
/// and receive rates, and a few milliseconds of jitter at a busy receiver put a 40 ms cluster's
/// reading well under its target (seen with Chromium viewers: 5–50 % under); through a narrow
/// path it reads the path's rate anyway.
pub const PROBE_HEADROOM: f64 = 1.5;
/// Tentative upgrades (no RTX to probe with) at most this often at first.
pub const TENTATIVE_EVERY: Duration = Duration::from_secs(30);
/// A probe's result is this long valid for an upgrade.
const PROBE_FRESH: Duration = Duration::from_secs(3);

/// A temporal layer index meaning "every temporal layer".
pub const ALL_TEMPORAL: u8 = u8::MAX;

/// One choice for a subscriber: a simulcast layer (a track id) up to a temporal layer
/// ([`ALL_TEMPORAL`]: the whole layer), and the rate it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub layer: u32,
    pub temporal: u8,
    pub bps: u64,
}

/// The steps a subscriber can be given of `layers` (track id, measured bit/s, measured bit/s of
/// each temporal layer TID 0..=3): temporal layers are finer steps below each layer's whole
/// rate, each at the rate of the TIDs up to it, as the publisher's worker measured them (a
/// layer whose TIDs above 0 carried nothing has one step). Unmeasured steps (0) are left out.
///
/// Frame rate before resolution: only the lowest layer (and a stream without simulcast) is
/// split by temporal layer; above it, a viewer short of room gets the next simulcast layer down
/// at its full frame rate, never a half- or quarter-rate picture of a bigger one (Chromium
/// sends every simulcast layer as L1T3, 40/20/40 %, so TIDs 0–1 of a 640-wide layer often cost
/// no more than the whole 320-wide one). Below the lowest layer there is nothing else to give,
/// so there its temporal layers are the steps down.
pub fn steps(layers: &[(u32, u64, [u64; 4])]) -> Vec<Step> {
    let mut out = Vec::with_capacity(layers.len() * 4);
    let lowest = layers
        .iter()
        .filter(|l| l.1 > 0)
        .min_by_key(|l| l.1)
        .map(|l| l.0);
    for &(layer, bps, per_tid) in layers {
        let top = per_tid.iter().rposition(|&r| r > 0).unwrap_or(0);
        let split = if Some(layer) == lowest { top } else { 0 };
        let mut sum = 0;
        for (tid, &r) in per_tid.iter().enumerate().take(split) {
            sum += r;
            if sum > 0 && sum < bps {
                out.push(Step {
                    layer,
                    temporal: tid as u8,
                    bps: sum,
                });
            }
        }
        out.push(Step {
            layer,
            temporal: ALL_TEMPORAL,
            bps,
        });
    }
    out
}

/// The index in `steps` of `layer` up to the highest temporal layer at most `temporal`.
pub fn step_of(steps: &[Step], layer: u32, temporal: u8) -> Option<usize> {
    (0..steps.len())
        .filter(|&i| steps[i].layer == layer && steps[i].temporal <= temporal)
        .max_by_key(|&i| steps[i].temporal)
}

/// What a subscriber's worker reports of its estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EstimateReport {
    pub estimate_bps: u64,
    /// Audio sent to the subscriber over the last second.
    pub audio_bps: u64,
    /// The estimate rests on the path's behaviour, not only the start value.
    pub grounded: bool,
    /// A decrease since the previous report.
    pub decreased: bool,
    /// The estimate is the relay's own delay-based one (transport-cc, no REMB): congestion
    /// shows as a decrease.
    pub delay_based: bool,
    /// A probe finished since the previous report: its target and what it measured.
    pub probe: Option<(u64, Option<u64>)>,
}

/// Why a layer changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The layer no longer fit the estimate.
    Congestion,
    /// A probe measured room for a higher layer.
    Probe,
    /// The estimate grew with no decrease for a while.
    Quiet,
    /// Without RTX to probe with, a higher layer tried.
    Tentative,
}

impl Reason {
    pub const ALL: [Reason; 4] = [
        Reason::Congestion,
        Reason::Probe,
        Reason::Quiet,
        Reason::Tentative,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reason::Congestion => "congestion",
            Reason::Probe => "probe",
            Reason::Quiet => "quiet",
            Reason::Tentative => "tentative",
        }
    }
}

/// What to do after a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    /// Switch to this layer (a track id), and why.
    pub switch: Option<(u32, Reason)>,
    /// Pause the video (`true`), or resume it at the layer it had (`false`), and why.
    pub pause: Option<(bool, Reason)>,
    /// Probe at this rate (bit/s).
    pub probe: Option<u64>,
}

/// One subscriber's allocation state.
#[derive(Debug, Clone)]
pub struct Allocation {
    last_down: Option<Instant>,
    next_probe: Option<Instant>,
    /// When the last probe measured room, and how much (bit/s).
    probed: Option<(Instant, u64)>,
    tentative_every: Duration,
    /// A tentative upgrade under way: the layer it left, and when.
    tentative: Option<(u32, Instant)>,
    /// A layer a tentative upgrade showed the path carries (until a decrease).
    held: Option<u32>,
    /// Pause below the lowest layer rather than keep it.
    pause_below_lowest: bool,
    /// The video is paused.
    paused: bool,
}

impl Default for Allocation {
    fn default() -> Self {
        Self {
            last_down: None,
            next_probe: None,
            probed: None,
            tentative_every: TENTATIVE_EVERY,
            tentative: None,
            held: None,
            pause_below_lowest: false,
            paused: false,
        }
    }
}

impl Allocation {
    /// An allocation that pauses the video when not even the lowest layer fits.
    pub fn pausing() -> Self {
        Self {
            pause_below_lowest: true,
            ..Self::default()
        }
    }

    /// Whether the video is paused.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// The subscriber's video was resumed from outside (a new subscription, which starts
    /// unpaused: the viewer chose another layer).
    pub fn resumed(&mut self) {
        self.paused = false;
    }

    /// A report for a subscriber now receiving layer `current` of `layers` (track id, measured
    /// bit/s; 0 = not measured yet), whose ceiling is `ceiling`; `can_probe` when it has RTX.
    pub fn on_report(
        &mut self,
        now: Instant,
        report: &EstimateReport,
        layers: &[(u32, u64)],
        (ceiling, current): (u32, u32),
        can_probe: bool,
    ) -> Decision {
        let rate = |t: u32| layers.iter().find(|l| l.0 == t).map_or(0, |l| l.1);
        if layers.iter().any(|l| l.1 == 0) || rate(ceiling) == 0 || rate(current) == 0 {
            return Decision::default(); // not every layer measured yet
        }
        let cap = rate(ceiling);
        let allowed = || layers.iter().filter(move |l| l.1 <= cap);
        let lowest = allowed().min_by_key(|l| l.1).map_or(current, |l| l.0);
        let est = report.estimate_bps as f64;
        let budget = est - report.audio_bps as f64 - MARGIN * est;
        let fits = |bps: u64, factor: f64| bps as f64 * factor <= budget;
        if let Some((_, Some(measured))) = report.probe {
            self.probed = Some((now, measured));
        }
        let mut decision = Decision::default();
        if report.decreased {
            self.held = None;
        }
        // A tentative or held layer is above an estimate that could not see it fit: only a
        // decrease takes it back.
        let on_trial = report.delay_based
            && !report.decreased
            && (self.tentative.is_some() || self.held == Some(current));

        // Down at once.
        let congested = report.grounded && !on_trial && rate(current) as f64 > budget;
        if !self.paused && (congested || rate(current) > cap) {
            let fitting = allowed().filter(|l| fits(l.1, 1.0)).max_by_key(|l| l.1);
            let target = fitting.map_or(lowest, |l| l.0);
            let pause = fitting.is_none() && congested && current == lowest;
            if target != current || (pause && self.pause_below_lowest) {
                self.last_down = Some(now);
                self.held = None;
                if self.tentative.take().is_some() {
                    // The tentative layer did not fit: wait longer before the next try.
                    self.tentative_every = (self.tentative_every * 2).min(TENTATIVE_EVERY * 4);
                }
                if target != current {
                    decision.switch = Some((target, Reason::Congestion));
                } else {
                    self.paused = true;
                    decision.pause = Some((true, Reason::Congestion));
                }
                return decision;
            }
        }
        if self.paused {
            // Resume as a tentative upgrade: nothing sent, nothing to probe with.
            let due = self.next_probe.is_none_or(|t| now >= t)
                && self
                    .last_down
                    .is_none_or(|d| now.duration_since(d) >= QUIET)
                && !report.decreased;
            if due {
                self.paused = false;
                self.tentative = Some((current, now));
                self.next_probe = Some(now + self.tentative_every);
                decision.pause = Some((false, Reason::Tentative));
            }
            return decision;
        }
        if self
            .tentative
            .is_some_and(|(_, at)| now.duration_since(at) > QUIET)
        {
            // The tentative layer held: it is simply the layer now.
            self.tentative = None;
            self.tentative_every = TENTATIVE_EVERY;
            self.held = report.delay_based.then_some(current);
        }

        // Up, with hysteresis, after a probe or a quiet period.
        let higher = allowed()
            .filter(|l| l.1 > rate(current))
            .min_by_key(|l| l.1);
        let best = allowed()
            .filter(|l| fits(l.1, HYSTERESIS))
            .max_by_key(|l| l.1);
        if let Some(best) = best.filter(|b| b.1 > rate(current)) {
            let fresh_probe = self
                .probed
                .is_some_and(|(at, _)| now.duration_since(at) <= PROBE_FRESH);
            let quiet = self
                .last_down
                .is_none_or(|d| now.duration_since(d) >= QUIET)
                && report.grounded
                && !report.decreased;
            if fresh_probe || quiet {
                let reason = if fresh_probe {
                    Reason::Probe
                } else {
                    Reason::Quiet
                };
                self.probed = None;
                decision.switch = Some((best.0, reason));
                return decision;
            }
        }

        // Look for room for the next layer up.
        if let Some(next) = higher {
            if self.next_probe.is_none_or(|t| now >= t) && !report.decreased {
                if can_probe {
                    let need =
                        (next.1 as f64 * HYSTERESIS + report.audio_bps as f64) / (1.0 - MARGIN);
                    decision.probe = Some((need * PROBE_HEADROOM) as u64);
                    self.next_probe = Some(now + PROBE_EVERY);
                } else if self
                    .last_down
                    .is_none_or(|d| now.duration_since(d) >= QUIET)
                {
                    self.tentative = Some((current, now));
                    self.next_probe = Some(now + self.tentative_every);
                    decision.switch = Some((next.0, Reason::Tentative));
                }
            }
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_layers_are_finer_steps_within_each_layer() {
        // A 1.2 Mbit/s L1T3 layer (TID 0: 480k, 1: 240k, 2: 480k) and a 150k one without.
        let s = steps(&[
            (HIGH, 1_200_000, [480_000, 240_000, 480_000, 0]),
            (LOW, 150_000, [150_000, 0, 0, 0]),
        ]);
        let got: Vec<(u32, u8, u64)> = s.iter().map(|s| (s.layer, s.temporal, s.bps)).collect();
        assert_eq!(
            got,
            [
                (HIGH, ALL_TEMPORAL, 1_200_000),
                (LOW, ALL_TEMPORAL, 150_000)
            ],
            "above the lowest layer, no step below the full frame rate"
        );
        assert_eq!(step_of(&s, HIGH, ALL_TEMPORAL), Some(0));
        assert_eq!(step_of(&s, HIGH, 1), None, "HIGH has no half-rate step");
        assert_eq!(step_of(&s, LOW, 0), None, "LOW has no TID-limited step");
        assert_eq!(step_of(&s, LOW, ALL_TEMPORAL), Some(1));
        // At 1 Mbit/s, HIGH's TIDs 0–1 (720k) would fit, but LOW at its full frame rate is given.
        let ids: Vec<(u32, u64)> = s
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32, s.bps))
            .collect();
        let mut a = Allocation::default();
        let d = a.on_report(Instant::now(), &report(1_000_000, true), &ids, (0, 0), true);
        assert_eq!(
            d.switch,
            Some((1, Reason::Congestion)),
            "LOW, not HIGH at half rate"
        );
    }

    #[test]
    fn the_lowest_layer_and_a_single_layer_keep_every_temporal_step() {
        // Both simulcast layers L1T3: LOW keeps its temporal steps (nothing is below it), HIGH
        // does not.
        let s = steps(&[
            (HIGH, 1_200_000, [480_000, 240_000, 480_000, 0]),
            (LOW, 150_000, [60_000, 30_000, 60_000, 0]),
        ]);
        assert_eq!(step_of(&s, HIGH, 1), None);
        assert!(step_of(&s, LOW, 0).is_some_and(|i| s[i].bps == 60_000));
        assert!(step_of(&s, LOW, 1).is_some_and(|i| s[i].bps == 90_000));
        // One L1T3 stream (no simulcast): all of its temporal layers are steps.
        let s = steps(&[(HIGH, 1_200_000, [480_000, 240_000, 480_000, 0])]);
        let got: Vec<u8> = s.iter().map(|s| s.temporal).collect();
        assert_eq!(got, [0, 1, ALL_TEMPORAL]);
    }

    const LOW: u32 = 1;
    const HIGH: u32 = 2;
    const LAYERS: [(u32, u64); 2] = [(HIGH, 1_200_000), (LOW, 150_000)];

    fn report(estimate_bps: u64, decreased: bool) -> EstimateReport {
        EstimateReport {
            estimate_bps,
            audio_bps: 50_000,
            grounded: true,
            decreased,
            delay_based: true,
            probe: None,
        }
    }

    #[test]
    fn congestion_moves_down_at_once_and_a_probe_brings_it_back_up() {
        let t0 = Instant::now();
        let mut a = Allocation::default();
        let d = a.on_report(t0, &report(450_000, true), &LAYERS, (HIGH, HIGH), true);
        assert_eq!(d.switch, Some((LOW, Reason::Congestion)));
        // On the low layer at 450k: no upgrade; a probe (1.2M × 1.15 + 50k, / 0.9, × 1.5).
        let t1 = t0 + Duration::from_secs(1);
        let d = a.on_report(t1, &report(450_000, false), &LAYERS, (HIGH, LOW), true);
        assert_eq!(d.switch, None);
        let target = d.probe.expect("a probe");
        assert!((2_300_000..2_450_000).contains(&target), "{target}");
        // Not again before PROBE_EVERY.
        let d = a.on_report(
            t1 + Duration::from_secs(2),
            &report(450_000, false),
            &LAYERS,
            (HIGH, LOW),
            true,
        );
        assert_eq!(d, Decision::default());
        // The probe measured room: up at once.
        let mut r = report(2_000_000, false);
        r.probe = Some((target, Some(2_000_000)));
        let d = a.on_report(t1 + Duration::from_secs(3), &r, &LAYERS, (HIGH, LOW), true);
        assert_eq!(d.switch, Some((HIGH, Reason::Probe)));
    }

    #[test]
    fn a_failed_probe_brings_no_upgrade_and_the_ceiling_is_respected() {
        let t0 = Instant::now();
        let mut a = Allocation::default();
        let mut r = report(1_100_000, false);
        r.probe = Some((1_750_000, Some(1_050_000)));
        for s in 0..30 {
            let d = a.on_report(t0 + Duration::from_secs(s), &r, &LAYERS, (HIGH, LOW), true);
            assert_eq!(d.switch, None, "second {s}");
        }
        // Plenty of room, but the viewer asked for the low layer: it stays there, no probes.
        let mut a = Allocation::default();
        for s in 0..20 {
            let d = a.on_report(
                t0 + Duration::from_secs(s),
                &report(10_000_000, false),
                &LAYERS,
                (LOW, LOW),
                true,
            );
            assert_eq!(d, Decision::default());
        }
        // A lowered ceiling takes the layer down even with room.
        let d = a.on_report(t0, &report(10_000_000, false), &LAYERS, (LOW, HIGH), true);
        assert_eq!(d.switch, Some((LOW, Reason::Congestion)));
    }

    #[test]
    fn below_the_lowest_layer_the_lowest_stays_and_an_ungrounded_estimate_moves_nothing() {
        let t0 = Instant::now();
        let mut a = Allocation::default();
        let d = a.on_report(t0, &report(100_000, true), &LAYERS, (HIGH, LOW), true);
        assert_eq!(d.switch, None);
        let mut r = report(300_000, false);
        r.grounded = false;
        let mut a = Allocation::default();
        assert_eq!(
            a.on_report(t0, &r, &LAYERS, (HIGH, HIGH), true).switch,
            None
        );
        // Layer rates not measured yet: no decision at all.
        let unmeasured = [(HIGH, 0), (LOW, 150_000)];
        assert_eq!(
            a.on_report(t0, &report(100_000, true), &unmeasured, (HIGH, HIGH), true),
            Decision::default()
        );
    }

    #[test]
    fn where_configured_the_video_pauses_below_the_lowest_layer_and_resumes_tentatively() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // 100 kbit/s leaves 40 kbit/s after audio and margin: not even the low layer fits.
        let narrow = |decreased| report(100_000, decreased);
        let mut keep = Allocation::default();
        assert_eq!(
            keep.on_report(at(0), &narrow(true), &LAYERS, (HIGH, LOW), true),
            Decision::default(),
            "by default the lowest layer stays"
        );
        let mut a = Allocation::pausing();
        let d = a.on_report(at(0), &narrow(true), &LAYERS, (HIGH, HIGH), true);
        assert_eq!(
            d.switch,
            Some((LOW, Reason::Congestion)),
            "first the lowest"
        );
        assert!(!a.paused());
        let d = a.on_report(at(1), &narrow(true), &LAYERS, (HIGH, LOW), true);
        assert_eq!(d.pause, Some((true, Reason::Congestion)));
        assert_eq!(d.switch, None);
        assert!(a.paused());
        // Paused: no probe (nothing recent to probe with), no switch, until a quiet period.
        for s in 2..9 {
            let d = a.on_report(at(s), &narrow(false), &LAYERS, (HIGH, LOW), true);
            assert_eq!(d, Decision::default(), "at {s} s");
        }
        let d = a.on_report(at(9), &narrow(false), &LAYERS, (HIGH, LOW), true);
        assert_eq!(d.pause, Some((false, Reason::Tentative)));
        assert!(!a.paused());
        // The resumed video held no decrease yet: it stays.
        let d = a.on_report(at(9), &narrow(false), &LAYERS, (HIGH, LOW), true);
        assert_eq!(d.pause, None);
        // It congests the path: paused again; the next try waits 30 s, the one after 60 s.
        let d = a.on_report(at(10), &narrow(true), &LAYERS, (HIGH, LOW), true);
        assert_eq!(d.pause, Some((true, Reason::Congestion)));
        assert_eq!(
            a.on_report(at(38), &narrow(false), &LAYERS, (HIGH, LOW), true)
                .pause,
            None
        );
        let d = a.on_report(at(39), &narrow(false), &LAYERS, (HIGH, LOW), true);
        assert_eq!(d.pause, Some((false, Reason::Tentative)));
        let d = a.on_report(at(40), &narrow(true), &LAYERS, (HIGH, LOW), true);
        assert_eq!(d.pause, Some((true, Reason::Congestion)));
        assert_eq!(
            a.on_report(at(98), &narrow(false), &LAYERS, (HIGH, LOW), true)
                .pause,
            None
        );
        let d = a.on_report(at(99), &narrow(false), &LAYERS, (HIGH, LOW), true);
        assert_eq!(d.pause, Some((false, Reason::Tentative)));
        // Room again, and no decrease since the last pause (60 s): up as from any layer.
        let d = a.on_report(
            at(100),
            &report(3_000_000, false),
            &LAYERS,
            (HIGH, LOW),
            true,
        );
        assert_eq!(d.switch, Some((HIGH, Reason::Quiet)));
        assert_eq!(d.pause, None);
        // A viewer's new layer starts unpaused: the allocation follows.
        let mut b = Allocation::pausing();
        b.on_report(at(0), &narrow(true), &LAYERS, (HIGH, LOW), true);
        assert!(b.paused());
        b.resumed();
        assert!(!b.paused());
    }

    #[test]
    fn without_rtx_upgrades_are_tentative_and_back_off_when_they_fail() {
        let t0 = Instant::now();
        let mut a = Allocation::default();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(
            a.on_report(at(0), &report(600_000, true), &LAYERS, (HIGH, HIGH), false)
                .switch,
            Some((LOW, Reason::Congestion))
        );
        // Quiet for QUIET: one tentative try, then congestion takes it back.
        let mut tries = Vec::new();
        let mut current = LOW;
        for s in 1..120 {
            let congested = current == HIGH;
            let d = a.on_report(
                at(s),
                &report(600_000, congested),
                &LAYERS,
                (HIGH, current),
                false,
            );
            if let Some((to, reason)) = d.switch {
                if reason == Reason::Tentative {
                    tries.push(s);
                }
                current = to;
            }
        }
        assert_eq!(current, LOW);
        assert!(tries.len() >= 2, "{tries:?}");
        for w in tries.windows(2) {
            assert!(w[1] - w[0] >= 30, "at most one try per 30 s: {tries:?}");
        }
    }

    #[test]
    fn a_tentative_layer_holds_until_a_decrease_and_a_remb_takes_it_back_at_once() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut a = Allocation::default();
        let d = a.on_report(at(0), &report(400_000, true), &LAYERS, (HIGH, HIGH), false);
        assert_eq!(d.switch, Some((LOW, Reason::Congestion)));
        // The estimate stays near what the low layer acknowledges; after QUIET, a try.
        let mut current = LOW;
        let mut tried = None;
        for s in 1..40 {
            let d = a.on_report(
                at(s),
                &report(400_000, false),
                &LAYERS,
                (HIGH, current),
                false,
            );
            if let Some((to, reason)) = d.switch {
                assert_eq!((to, reason), (HIGH, Reason::Tentative), "second {s}");
                assert!(tried.is_none(), "one try, then it holds (second {s})");
                (current, tried) = (to, Some(s));
            }
        }
        assert_eq!(current, HIGH);
        assert!(tried.is_some_and(|s| s >= 8), "{tried:?}");
        // A decrease takes the held layer back.
        let d = a.on_report(at(40), &report(400_000, true), &LAYERS, (HIGH, HIGH), false);
        assert_eq!(d.switch, Some((LOW, Reason::Congestion)));
        // A REMB-bound estimate says what the receiver takes: no trial against it.
        let mut a = Allocation::default();
        let mut r = report(400_000, false);
        r.delay_based = false;
        let _ = a.on_report(at(0), &report(400_000, true), &LAYERS, (HIGH, HIGH), false);
        let d = a.on_report(at(9), &r, &LAYERS, (HIGH, LOW), false);
        assert_eq!(d.switch, Some((HIGH, Reason::Tentative)));
        let d = a.on_report(at(10), &r, &LAYERS, (HIGH, HIGH), false);
        assert_eq!(d.switch, Some((LOW, Reason::Congestion)));
    }
}
