//! Automatic layers: the slow path's side of per-subscriber congestion control. Workers report
//! each simulcast layer's rate (from the publisher's worker, once a second) and each
//! subscriber's bandwidth estimate (from its worker, once a second and at once after a
//! decrease); for every report, the subscriber's [`Allocation`] (`crate::cc::allocate`) says
//! whether to switch its layer (through the usual keyframe-aligned switch, `Relay::reserve`)
//! or to probe for a higher one, or (`media.below_lowest_layer = "pause"`) to pause or resume
//! its video (`Command::PauseVideo`). The layer the viewer chose (`?layer=`, `POST
//! /session/{id}/layer`) is the ceiling. Also the metrics: estimates, layer changes by reason,
//! probes, paused subscribers.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use super::relay::Relay;
use super::rooms::SessionRole;
use crate::cc::allocate::{self, Allocation, EstimateReport, Reason, ALL_TEMPORAL};
use crate::datapath::{Command, SessionId, TrackId};

/// Layer rates, allocation state and counters, behind one lock (never taken by a worker).
#[derive(Debug, Default)]
pub struct AutoLayers {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Each simulcast layer's (or layered stream's) last measured rate, bit/s, in all and per
    /// temporal layer.
    rates: HashMap<TrackId, (u64, [u64; 4])>,
    subscribers: HashMap<SessionId, Subscriber>,
    /// Layer changes, by `Reason::ALL` index.
    changes: [u64; 4],
    probes: u64,
    probes_with_room: u64,
}

#[derive(Debug, Default)]
struct Subscriber {
    allocation: Allocation,
    estimate_bps: u64,
}

impl Subscriber {
    fn new(pause_below_lowest: bool) -> Self {
        Self {
            allocation: if pause_below_lowest {
                Allocation::pausing()
            } else {
                Allocation::default()
            },
            estimate_bps: 0,
        }
    }
}

impl AutoLayers {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A layer's rate over the last second, in all and per temporal layer.
    pub fn layer_rate(&self, track: TrackId, bps: u64, temporal: [u64; 4]) {
        self.state().rates.insert(track, (bps, temporal));
    }

    /// A session ended.
    pub fn forget(&self, session: SessionId) {
        self.state().subscribers.remove(&session);
    }

    /// The session's video got a new subscription (another layer), which starts unpaused.
    pub fn resumed(&self, session: SessionId) {
        if let Some(sub) = self.state().subscribers.get_mut(&session) {
            sub.allocation.resumed();
        }
    }

    /// Tracks no longer published: their rates go.
    pub fn forget_tracks(&self, tracks: &[TrackId]) {
        let mut state = self.state();
        for t in tracks {
            state.rates.remove(t);
        }
    }

    /// The session's last estimate, bit/s.
    pub fn estimate(&self, session: SessionId) -> Option<u64> {
        self.state()
            .subscribers
            .get(&session)
            .map(|s| s.estimate_bps)
    }

    /// Prometheus lines: per-session estimates, layer changes by reason, probes.
    pub fn render(&self, out: &mut String) {
        let s = self.state();
        let mut sessions: Vec<_> = s.subscribers.iter().collect();
        sessions.sort_by_key(|(id, _)| **id);
        let _ = writeln!(
            out,
            "# HELP tern_subscriber_estimate_bps bandwidth estimate of each subscriber session\n# TYPE tern_subscriber_estimate_bps gauge"
        );
        for (id, sub) in sessions {
            let _ = writeln!(
                out,
                "tern_subscriber_estimate_bps{{session=\"{id}\"}} {}",
                sub.estimate_bps
            );
        }
        let _ = writeln!(
            out,
            "# HELP tern_layer_changes_total automatic layer changes by reason\n# TYPE tern_layer_changes_total counter"
        );
        for (i, reason) in Reason::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "tern_layer_changes_total{{reason=\"{}\"}} {}",
                reason.label(),
                s.changes[i]
            );
        }
        let paused = s
            .subscribers
            .values()
            .filter(|sub| sub.allocation.paused())
            .count();
        let _ = writeln!(
            out,
            "# HELP tern_paused_subscribers subscribers whose video is paused below the lowest layer\n# TYPE tern_paused_subscribers gauge\ntern_paused_subscribers {paused}"
        );
        let _ = writeln!(
            out,
            "# HELP tern_probes_requested_total bandwidth probes asked of workers\n# TYPE tern_probes_requested_total counter\ntern_probes_requested_total {}",
            s.probes
        );
        let _ = writeln!(
            out,
            "# HELP tern_probes_with_room_total probes sent with room for them\n# TYPE tern_probes_with_room_total counter\ntern_probes_with_room_total {}",
            s.probes_with_room
        );
    }
}

impl Relay {
    /// A subscriber's estimate: switch its layer or probe, as its allocation says.
    pub(super) fn on_estimate(&self, session: SessionId, report: EstimateReport) {
        let now = Instant::now();
        let mut reg = super::relay::lock(&self.registry);
        let Some(info) = reg.sessions.get(&session) else {
            return;
        };
        if info.role != SessionRole::Subscriber || !info.connected {
            return;
        }
        let worker = info.worker;
        let Some(stream) = reg
            .rooms
            .get(&info.room)
            .and_then(|r| r.streams.get(&info.stream))
        else {
            return;
        };
        let (tracks, stalled) = (stream.tracks.clone(), stream.stalled.clone());
        let mut state = self.auto_layers.state();
        // The first feed with layers to choose from: simulcast, or temporal layers measured (a
        // WHEP session has one video section in practice).
        let found = info.feeds.iter().enumerate().find_map(|(i, f)| {
            let t = tracks.iter().find(|t| t.id == f.published)?;
            let layered = !t.layers.is_empty() || state.rates.contains_key(&f.track.id);
            layered.then_some((i, t))
        });
        let pausing = self.settings.pause_below_lowest;
        let Some((index, t)) = found else {
            let sub = state.subscribers.entry(session);
            sub.or_insert_with(|| Subscriber::new(pausing)).estimate_bps = report.estimate_bps;
            return;
        };
        let feed = &info.feeds[index];
        // Steps: each layer the publisher sends (the one stream without simulcast), split by
        // temporal layer where they were measured.
        let candidates: Vec<TrackId> = if t.layers.is_empty() {
            vec![feed.track.id]
        } else {
            let sent = t.layers.iter().filter(|(_, id)| !stalled.contains(id));
            sent.map(|(_, id)| *id).collect()
        };
        let rates: Vec<(TrackId, u64, [u64; 4])> = candidates
            .iter()
            .map(|id| {
                let (bps, per_tid) = state.rates.get(id).copied().unwrap_or_default();
                (*id, bps, per_tid)
            })
            .collect();
        let steps = allocate::steps(&rates);
        let ids: Vec<(u32, u64)> = (0..steps.len()).map(|i| (i as u32, steps[i].bps)).collect();
        let step_id = |layer, temporal| {
            allocate::step_of(&steps, layer, temporal).map_or(u32::MAX, |i| i as u32)
        };
        let ceiling_layer = if t.layers.is_empty() {
            feed.track.id
        } else {
            t.serving(feed.wanted, &stalled)
        };
        let ceiling = step_id(ceiling_layer, feed.params.limit.temporal);
        let current = step_id(feed.track.id, feed.limit().temporal);
        let sub = state
            .subscribers
            .entry(session)
            .or_insert_with(|| Subscriber::new(pausing));
        sub.estimate_bps = report.estimate_bps;
        let ssrc = feed.params.ssrc;
        let can_probe = feed.params.rtx.is_some() && feed.params.egress.transport_cc.is_some();
        let decision = sub
            .allocation
            .on_report(now, &report, &ids, (ceiling, current), can_probe);
        if let Some((_, Some(measured))) = report.probe {
            let need = rates.iter().map(|l| l.1).filter(|&r| r > 0).max();
            if need.is_some_and(|n| measured >= n) {
                state.probes_with_room += 1;
            }
        }
        if let Some((_, reason)) = decision.switch.or(decision.pause.map(|p| (0, p.1))) {
            if let Some(i) = Reason::ALL.iter().position(|r| *r == reason) {
                state.changes[i] += 1;
            }
        }
        if decision.probe.is_some() {
            state.probes += 1;
        }
        drop(state);
        if let Some(target_bps) = decision.probe {
            let _ = self.dp.send(
                worker,
                Command::Probe {
                    session,
                    target_bps,
                },
            );
        }
        if let Some((paused, reason)) = decision.pause {
            tracing::info!(
                session = %session,
                reason = reason.label(),
                estimate_bps = report.estimate_bps,
                paused,
                "video pause changed (not even the lowest layer fits)"
            );
            let command = Command::PauseVideo {
                session,
                ssrc,
                paused,
            };
            if let Err(e) = self.dp.send(worker, command) {
                tracing::warn!(session = %session, reason = %e, "pause not sent");
            }
            return;
        }
        let Some((step, reason)) = decision
            .switch
            .and_then(|(i, reason)| Some((steps.get(i as usize)?, reason)))
        else {
            return;
        };
        tracing::info!(
            session = %session,
            reason = reason.label(),
            estimate_bps = report.estimate_bps,
            layer = %step.layer,
            temporal = step.temporal,
            layer_bps = step.bps,
            "layer change"
        );
        let simulcast = !t.layers.is_empty();
        let Some(feed) = reg
            .sessions
            .get_mut(&session)
            .map(|info| &mut info.feeds[index])
        else {
            return;
        };
        let before = feed.limit();
        if simulcast {
            feed.auto = Some(step.layer);
        }
        feed.auto_temporal = (step.temporal != ALL_TEMPORAL).then_some(step.temporal);
        let limit = feed.limit();
        if simulcast && step.layer != feed.track.id {
            // The new layer's subscription takes the limit with it.
            if let Err(e) = self.reserve(&mut reg, session, &tracks, &stalled) {
                tracing::warn!(session = %session, reason = %e, "layer change not sent");
            }
        } else if limit != before {
            let command = Command::SetLayerLimit {
                session,
                ssrc,
                limit,
            };
            if let Err(e) = self.dp.send(worker, command) {
                tracing::warn!(session = %session, reason = %e, "layer change not sent");
            }
        }
    }
}
