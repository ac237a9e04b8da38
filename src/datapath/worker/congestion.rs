//! Congestion control in the worker: a subscriber's transport-cc feedback is matched against
//! its send history and fed to its estimator (REMB too, for subscribers without transport-cc);
//! the estimate goes to the slow path once a second and at once after a decrease, with the
//! audio it was sent; probes the slow path asks for are sent here, paced, as RTX re-sends of
//! recent video packets; and each simulcast layer published here reports its rate once a second.
//! Nothing here allocates; a feedback that does not parse is counted and dropped.

use std::time::{Duration, Instant};

use super::super::command::Event;
use super::super::egress::ProbeRun;
use super::super::io::SendQueue;
use super::super::session::{MediaKind, Origin, Switch};
use super::super::SessionId;
use super::{micros_since, Core};
use crate::cc::allocate::EstimateReport;
use crate::cc::PacketResult;
use crate::wire::rtcp::TransportCc;
use crate::wire::twcc::TransportFeedback;

/// Reports after a decrease come at most this often.
const DECREASE_REPORT_GAP: Duration = Duration::from_millis(100);

impl Core {
    /// A subscriber's transport-cc feedback on what it was sent.
    pub(super) fn on_transport_feedback(&mut self, slot: usize, fb: &TransportCc, now: Instant) {
        let Ok(fb) = TransportFeedback::parse(fb) else {
            self.counters.feedback_malformed += 1;
            return;
        };
        let Some(session) = self.sessions[slot].as_mut() else {
            return;
        };
        let (Some(history), Some(cc)) = (session.egress.as_mut(), session.cc.as_mut()) else {
            return;
        };
        self.counters.feedback_in += 1;
        for status in fb.statuses() {
            let Some(sent) = history.take_report(status.seq) else {
                self.counters.feedback_unknown += 1;
                continue;
            };
            cc.estimator.on_packet(PacketResult {
                send_us: sent.sent_us,
                size: sent.size,
                arrival_us: status.arrival_us,
                probe: sent.probe,
            });
        }
        cc.estimator.end_feedback(micros_since(self.epoch));
        self.report_decrease(slot, now);
    }

    /// A subscriber's REMB: its own estimate of what it can receive.
    pub(super) fn on_remb(&mut self, slot: usize, bps: u64, now: Instant) {
        let Some(cc) = self.sessions[slot].as_mut().and_then(|s| s.cc.as_mut()) else {
            return;
        };
        self.counters.remb_in += 1;
        cc.estimator.on_remb(bps, micros_since(self.epoch));
        self.report_decrease(slot, now);
    }

    /// Reports at once a decrease not reported yet.
    fn report_decrease(&mut self, slot: usize, now: Instant) {
        let Some(session) = self.sessions[slot].as_mut() else {
            return;
        };
        let Some(cc) = session.cc.as_mut() else {
            return;
        };
        let fresh = cc.estimator.last_decrease().map(|d| d.0) != cc.decrease_reported;
        let due = cc
            .reported_at
            .is_none_or(|at| now.saturating_duration_since(at) >= DECREASE_REPORT_GAP);
        if fresh && due {
            let id = session.id;
            self.report_estimate(slot, id, now);
        }
    }

    /// Every subscriber's estimate (once a second).
    pub(super) fn report_estimates(&mut self, now: Instant) {
        for slot in 0..self.sessions.len() {
            let Some(id) = self.sessions[slot]
                .as_ref()
                .filter(|s| s.cc.is_some() && s.srtp_tx.is_some())
                .map(|s| s.id)
            else {
                continue;
            };
            self.report_estimate(slot, id, now);
        }
    }

    fn report_estimate(&mut self, slot: usize, id: SessionId, now: Instant) {
        let Some(cc) = self.sessions[slot].as_mut().and_then(|s| s.cc.as_mut()) else {
            return;
        };
        // The audio rate is measured over whole report intervals (~1 s); a report after a
        // decrease, sooner, repeats the last one.
        let since = now.saturating_duration_since(cc.audio_since.unwrap_or(now));
        if cc.audio_since.is_none() || since >= Duration::from_millis(900) {
            let secs = since.as_secs_f64().max(0.5);
            cc.audio_bps = (cc.audio_octets as f64 * 8.0 / secs) as u64;
            cc.audio_octets = 0;
            cc.video_octets = 0;
            cc.audio_since = Some(now);
        }
        let decrease = cc.estimator.last_decrease().map(|d| d.0);
        let probe = cc.estimator.take_probe_results()[0]
            .map(|r| (r.target_bps, r.measured_bps.map(|m| m as u64)));
        let report = EstimateReport {
            estimate_bps: cc.estimator.estimate_bps(),
            audio_bps: cc.audio_bps,
            grounded: cc.estimator.grounded(),
            decreased: decrease != cc.decrease_reported,
            delay_based: cc.estimator.delay_based(),
            probe,
        };
        cc.reported_at = Some(now);
        cc.decrease_reported = decrease;
        if self
            .events
            .try_send(Event::Estimate {
                session: id,
                report,
            })
            .is_err()
        {
            self.counters.events_dropped += 1;
        }
    }

    /// Each video track (simulcast layer or whole stream) published here: its rate over the
    /// last `span`, in all and per temporal layer. A stream of one layer is a step too: the
    /// only one, below which automatic layers may pause a viewer's video.
    pub(super) fn report_layer_rates(&mut self, span: Duration) {
        let secs = span.as_secs_f64().max(0.1);
        for (&track, t) in self.tracks.iter_mut() {
            let octets = std::mem::take(&mut t.octets);
            let per_tid = std::mem::take(&mut t.temporal_octets);
            if t.kind != MediaKind::Video || !matches!(t.origin, Origin::Local(_)) {
                continue;
            }
            let bps = (octets as f64 * 8.0 / secs) as u64;
            let temporal = per_tid.map(|o| (o as f64 * 8.0 / secs) as u64);
            if self
                .events
                .try_send(Event::LayerRate {
                    track,
                    bps,
                    temporal,
                })
                .is_err()
            {
                self.counters.events_dropped += 1;
            }
        }
    }

    /// The slow path asks for a probe of `session`'s path at `target_bps`.
    pub(super) fn start_probe(&mut self, session: SessionId, target_bps: u64, now: Instant) {
        let Some(&slot) = self.by_id.get(&session) else {
            return;
        };
        let Some(cc) = self.sessions[slot].as_mut().and_then(|s| s.cc.as_mut()) else {
            return;
        };
        if cc.probe.is_some() {
            return;
        }
        let plan = cc
            .estimator
            .start_probe(target_bps, 1200, micros_since(self.epoch));
        cc.probe = Some(ProbeRun {
            plan,
            sent: 0,
            next_at: now,
        });
        self.counters.probes += 1;
        self.next_probe = super::earliest(self.next_probe, Some(now));
    }

    /// Sends the probe packets that are due: recent packets of the session's video track,
    /// re-sent on its RTX stream and numbered in the probe's cluster.
    pub(super) fn send_probes(&mut self, tx: &mut SendQueue, now: Instant) {
        self.next_probe = None;
        let now_us = micros_since(self.epoch);
        for slot in 0..self.sessions.len() {
            while let Some(session) = self.sessions[slot].as_mut() {
                let Some(run) = session.cc.as_ref().and_then(|c| c.probe) else {
                    break;
                };
                if run.next_at > now {
                    self.next_probe = super::earliest(self.next_probe, Some(run.next_at));
                    break;
                }
                let sent = probe_one(
                    session,
                    slot,
                    &mut self.tracks,
                    tx,
                    (run.plan.cluster, run.sent),
                    now_us,
                );
                let Some(cc) = session.cc.as_mut() else {
                    break;
                };
                match sent {
                    Some(bytes) => {
                        self.counters.probe_packets += 1;
                        self.counters.packets_out += 1;
                        self.counters.bytes_out += bytes as u64;
                        let next = ProbeRun {
                            sent: run.sent + 1,
                            next_at: run.next_at + run.gap(bytes),
                            ..run
                        };
                        cc.probe = (next.sent < run.plan.packets).then_some(next);
                    }
                    None => {
                        // Nothing to probe with (no RTX, no video cached, queue full): give up.
                        self.counters.probes_failed += 1;
                        cc.probe = None;
                    }
                }
            }
        }
    }
}

/// Sends one probe packet to `session` (slot `slot`): the `nth` most recent cached packet of
/// its video track, as an RTX retransmission stamped in probe cluster `cluster`. Its size on
/// the wire, or `None` if there is nothing to send it with.
fn probe_one(
    session: &mut super::super::session::Session,
    slot: usize,
    tracks: &mut std::collections::HashMap<super::super::TrackId, super::super::session::Track>,
    tx: &mut SendQueue,
    (cluster, nth): (u16, u16),
    now_us: i64,
) -> Option<usize> {
    let (addr, ctx) = (session.addr?, session.srtp_tx.as_mut()?);
    let track = session.subscribed.iter().find_map(|t| {
        let track = tracks.get(t)?;
        let ok = track.kind == MediaKind::Video
            && track.subscribers.iter().any(|s| {
                s.session == slot
                    && s.params.rtx.is_some()
                    && matches!(s.switch, None | Some(Switch::Started { .. }))
            });
        ok.then_some(*t)
    })?;
    let track = tracks.get_mut(&track)?;
    let sub = track
        .subscribers
        .iter_mut()
        .find(|s| s.session == slot && s.params.rtx.is_some())?;
    // The packets the subscriber got last, newest first (the publisher's numbers).
    let last = sub.publisher_seq(sub.last_seq)?;
    let cached = (0..32u16)
        .map(|k| last.wrapping_sub(k.wrapping_add(nth) % 32))
        .filter(|&seq| sub.seq.lookup(seq).is_some()) // not a dropped layer's
        .find_map(|seq| track.cache.get(seq))?;
    let history = session.egress.as_mut()?;
    let out = tx.slot()?;
    let room = out.len().saturating_sub(ctx.profile().rtp_overhead());
    let copied = sub.copy_resent(cached, &mut out[..room], Some(history.stamp(now_us)))?;
    let len = sub.rewrite_as_rtx(&mut out[..room], copied)?;
    let n = ctx.protect_rtp(out, len).ok()?;
    tx.commit(n, addr);
    history.record(n, now_us, cluster);
    Some(n)
}
