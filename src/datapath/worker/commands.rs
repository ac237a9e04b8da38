//! Commands from the slow path and the session table: add, restart ICE, key, publish, subscribe
//! (with layer switches), unsubscribe and remove sessions; and the end of layer switches whose
//! new layer started this turn.

use std::net::SocketAddr;
use std::time::Instant;

use crossbeam::channel::Receiver;

use super::super::arrivals::TransportArrivals;
use super::super::command::{Command, Event};
use super::super::egress::{SendHistory, SubscriberCc};
use super::super::io::SendQueue;
use super::super::session::{
    Handoff, LayerState, Origin, Pause, Session, Subscription, Switch, Track,
    PULLED_KEYFRAME_INTERVAL,
};
use super::super::svc::LayerLimit;
use super::super::upstream::LossTracker;
use super::super::{SessionId, TrackId};
use super::{Core, COMMANDS_PER_TURN};
use crate::ice::{Checker, Consent, IceCredentials};
use crate::srtp::SrtpContext;

impl Core {
    pub(super) fn handle_commands(
        &mut self,
        commands: &Receiver<Command>,
        tx: &mut SendQueue,
        now: Instant,
    ) {
        for _ in 0..COMMANDS_PER_TURN {
            let Ok(cmd) = commands.try_recv() else { break };
            self.command(cmd, tx, now);
        }
    }

    pub(super) fn command(&mut self, cmd: Command, tx: &mut SendQueue, now: Instant) {
        match cmd {
            Command::AddSession { id, ice } => {
                let ufrag: Box<[u8]> = ice.local_ufrag.as_bytes().into();
                if let Some(slot) = self.install_session(id, ice, None, now) {
                    self.by_ufrag.insert(ufrag, slot);
                }
            }
            Command::AddUpstream {
                id,
                ice,
                remote_pwd,
                remote,
                seed,
            } => {
                // No ufrag entry: nobody checks this side; it checks the origin.
                let checker = Checker::new(&ice, &remote_pwd, seed, now);
                if let Some(slot) = self.install_session(id, ice, Some((remote, checker)), now) {
                    self.upstreams.push(slot);
                    self.next_check = Some(now);
                }
            }
            Command::PulledTrack { track, layer } => {
                if let Some(t) = self.tracks.get_mut(&track) {
                    t.keyframe_interval = PULLED_KEYFRAME_INTERVAL;
                    if layer {
                        t.layer = Some(LayerState {
                            last: now,
                            stalled: false,
                        });
                    }
                }
            }
            Command::RestartIce { session, ice } => {
                let Some(&slot) = self.by_id.get(&session) else {
                    return;
                };
                let Some(s) = self.sessions[slot].as_mut() else {
                    return;
                };
                self.by_ufrag.remove(s.ice.local_ufrag.as_bytes());
                self.by_ufrag
                    .insert(ice.local_ufrag.as_bytes().into(), slot);
                s.ice = ice;
                s.consent.refresh(now);
            }
            Command::RemoveSession { id } => self.remove_session(id),
            Command::SetKeys { session, keys } => {
                let Some(s) = self.session_mut(session) else {
                    return;
                };
                let rx = SrtpContext::new(keys.profile, &keys.remote_key, &keys.remote_salt);
                let txc = SrtpContext::new(keys.profile, &keys.local_key, &keys.local_salt);
                match (rx, txc) {
                    (Ok(rx), Ok(txc)) => {
                        s.srtp_rx = Some(rx);
                        s.srtp_tx = Some(txc);
                    }
                    _ => {
                        let _ = self.events.try_send(Event::Error {
                            session,
                            reason: "bad SRTP key length",
                        });
                    }
                }
            }
            Command::Publish {
                session,
                track,
                ssrc,
                by_mid,
                kind,
                nack,
                rtx,
                transport_cc,
                codec,
                dependency_descriptor,
            } => {
                let Some(&slot) = self.by_id.get(&session) else {
                    return;
                };
                if let Some(s) = self.sessions[slot].as_mut() {
                    match transport_cc {
                        Some(id) if s.transport_cc.as_ref().is_none_or(|t| t.ext_id != id) => {
                            s.transport_cc = Some(TransportArrivals::new(id));
                        }
                        _ => {}
                    }
                    if let Some(ssrc) = ssrc {
                        s.inbound.retain(|(x, _)| *x != ssrc);
                        s.inbound.push((ssrc, track));
                    }
                    s.inbound_rtx.retain(|(_, t, _)| *t != track);
                    if let Some(rtx) = rtx {
                        s.inbound_rtx.push((rtx.ssrc, track, rtx.apt));
                    }
                    s.by_mid.retain(|(t, _)| *t != track);
                    if let Some(binding) = by_mid.clone() {
                        s.by_mid.push((track, binding));
                    }
                }
                let nack_cache = self.nack_cache;
                let t = self
                    .tracks
                    .entry(track)
                    .or_insert_with(|| Track::new(kind, Origin::Local(slot), nack_cache));
                t.origin = Origin::Local(slot);
                if ssrc.is_some() {
                    t.publisher_ssrc = ssrc;
                }
                t.kind = kind;
                t.codec = codec;
                if t.dd.map(|d| d.ext_id) != dependency_descriptor {
                    t.dd = dependency_descriptor.map(super::super::svc::DdState::new);
                }
                t.loss = nack.then(|| LossTracker::new(now));
                let layered = by_mid.is_some_and(|b| b.rid.is_some());
                t.layer = layered.then_some(LayerState {
                    last: now,
                    stalled: false,
                });
            }
            Command::Subscribe {
                session,
                track,
                origin_worker,
                kind,
                params,
                switch,
            } => {
                let Some(&slot) = self.by_id.get(&session) else {
                    return;
                };
                let mut state = None;
                if let Some(codec) = switch {
                    match self.prepare_switch(slot, track, params.ssrc) {
                        SwitchFrom::Nothing => {}
                        SwitchFrom::Same => return,
                        SwitchFrom::Layer => state = Some(Switch::Waiting(codec)),
                    }
                }
                let nack_cache = self.nack_cache;
                // Until (unless) this worker's own Publish arrives, the packets come on a ring.
                let origin = Origin::Remote(origin_worker);
                let t = self
                    .tracks
                    .entry(track)
                    .or_insert_with(|| Track::new(kind, origin, nack_cache));
                t.subscribers.retain(|s| s.session != slot);
                let stamped = params.egress.any();
                t.subscribers.push(Subscription::new(slot, params, state));
                if let Some(s) = self.sessions[slot].as_mut() {
                    if !s.subscribed.contains(&track) {
                        s.subscribed.push(track);
                    }
                    if stamped && s.egress.is_none() {
                        s.egress = Some(SendHistory::new());
                    }
                    if s.cc.is_none() {
                        s.cc = Some(Box::new(SubscriberCc::new()));
                    }
                }
                // A new subscriber needs a keyframe to start decoding.
                self.request_keyframe(track, tx, now);
            }
            Command::Unpublish { session, track } => {
                if let Some(s) = self.session_mut(session) {
                    s.inbound.retain(|(_, t)| *t != track);
                    s.inbound_rtx.retain(|(_, t, _)| *t != track);
                    s.by_mid.retain(|(t, _)| *t != track);
                }
                self.tracks.remove(&track);
            }
            Command::Unsubscribe { session, track } => {
                let Some(&slot) = self.by_id.get(&session) else {
                    return;
                };
                self.unsubscribe_slot(slot, track);
            }
            Command::SetLayerLimit {
                session,
                ssrc,
                limit,
            } => self.set_layer_limit(session, ssrc, limit, tx, now),
            Command::PauseVideo {
                session,
                ssrc,
                paused,
            } => self.pause_video(session, ssrc, paused, tx, now),
            Command::SetRemoteWorker {
                track,
                worker,
                subscribed,
            } => {
                if let Some(t) = self.tracks.get_mut(&track) {
                    if subscribed {
                        t.remote_workers |= 1 << worker;
                    } else {
                        t.remote_workers &= !(1 << worker);
                    }
                }
            }
            Command::RequestKeyframe { track } => self.request_keyframe(track, tx, now),
            Command::Probe {
                session,
                target_bps,
            } => self.start_probe(session, target_bps, now),
            Command::SendDtls { session, data } => {
                let Some(s) = self.session(session) else {
                    return;
                };
                let Some(addr) = s.addr else {
                    self.counters.dtls_dropped += 1;
                    return;
                };
                let Some(out) = tx.slot() else {
                    self.counters.send_queue_full += 1;
                    return;
                };
                if data.len() <= out.len() {
                    out[..data.len()].copy_from_slice(&data);
                    tx.commit(data.len(), addr);
                    self.counters.packets_out += 1;
                    self.counters.bytes_out += data.len() as u64;
                }
            }
        }
    }

    /// Every subscription of `session` under `ssrc` (also both sides of a layer switch) gets
    /// `limit`; a higher spatial layer needs a keyframe, so one is asked for.
    fn set_layer_limit(
        &mut self,
        session: SessionId,
        ssrc: u32,
        limit: LayerLimit,
        tx: &mut SendQueue,
        now: Instant,
    ) {
        self.each_subscription(session, ssrc, tx, now, |sub| {
            sub.params.limit = limit;
            sub.select.target = limit;
            let vp9 = sub.params.codec == Some(crate::wire::keyframe::VideoCodec::Vp9);
            vp9 && limit.spatial > sub.select.current().spatial
        });
    }

    /// Every subscription of `session` under `ssrc` stops, or starts again at a keyframe (asked
    /// for; a stream of unknown codec starts at once).
    fn pause_video(
        &mut self,
        session: SessionId,
        ssrc: u32,
        paused: bool,
        tx: &mut SendQueue,
        now: Instant,
    ) {
        self.each_subscription(session, ssrc, tx, now, |sub| {
            sub.pause = match (paused, sub.pause, sub.params.codec) {
                (true, _, _) => Pause::Paused,
                (false, Pause::Off, _) | (false, _, None) => Pause::Off,
                (false, _, Some(codec)) => Pause::Resuming(codec),
            };
            matches!(sub.pause, Pause::Resuming(_))
        });
    }

    /// Applies `change` to every subscription of `session` under `ssrc`; asks for a keyframe of
    /// each track where it says one is needed.
    fn each_subscription(
        &mut self,
        session: SessionId,
        ssrc: u32,
        tx: &mut SendQueue,
        now: Instant,
        mut change: impl FnMut(&mut Subscription) -> bool,
    ) {
        let Some(&slot) = self.by_id.get(&session) else {
            return;
        };
        let mut keyframe = Vec::new();
        for (&t, track) in self.tracks.iter_mut() {
            if let Some(sub) = track.subscription_mut(slot, ssrc) {
                if change(sub) {
                    keyframe.push(t);
                }
            }
        }
        for t in keyframe {
            self.request_keyframe(t, tx, now);
        }
    }

    pub(super) fn session(&self, id: SessionId) -> Option<&Session> {
        self.by_id.get(&id).and_then(|&i| self.sessions[i].as_ref())
    }

    pub(super) fn session_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        let i = *self.by_id.get(&id)?;
        self.sessions[i].as_mut()
    }

    /// Ends the layer switches whose new layer started this turn: the replaced subscriptions
    /// and their handoffs go, so that the subscriber's RTCP (PLI, NACK) finds the new layer.
    pub(super) fn finish_switches(&mut self) {
        while let Some((slot, ssrc)) = self.switched.pop() {
            self.counters.layer_switches += 1;
            let Some(session) = self.sessions[slot].as_mut() else {
                continue;
            };
            session.handoffs.retain(|h| h.ssrc != ssrc);
            for t in session.subscribed.clone() {
                let replaced = self.tracks.get(&t).is_some_and(|track| {
                    track
                        .subscription(slot, ssrc)
                        .is_some_and(|s| s.switch == Some(Switch::Replaced))
                });
                if replaced {
                    self.unsubscribe_slot(slot, t);
                }
            }
        }
    }

    /// Before session `slot` subscribes to layer `to` in place of what it receives under
    /// `ssrc`: undoes a switch of that stream still waiting for its keyframe (a started one was
    /// ended by `finish_switches` in its turn), then marks the current subscription as the one
    /// being replaced and opens the session's handoff for it.
    pub(super) fn prepare_switch(&mut self, slot: usize, to: TrackId, ssrc: u32) -> SwitchFrom {
        let Some(session) = self.sessions[slot].as_mut() else {
            return SwitchFrom::Nothing;
        };
        session.handoffs.retain(|h| h.ssrc != ssrc);
        let subscribed = session.subscribed.clone();
        let mut current = None;
        for t in subscribed {
            let Some(sub) = self
                .tracks
                .get_mut(&t)
                .and_then(|track| track.subscription_mut(slot, ssrc))
            else {
                continue;
            };
            match sub.switch {
                // The unfinished switch's target: gone.
                Some(Switch::Waiting(_)) => self.unsubscribe_slot(slot, t),
                // Its source is the stream again.
                Some(Switch::Replaced) => {
                    sub.switch = None;
                    current = Some(t);
                }
                _ => current = Some(t),
            }
        }
        let Some(from) = current else {
            return SwitchFrom::Nothing;
        };
        if from == to {
            return SwitchFrom::Same;
        }
        let Some(sub) = self
            .tracks
            .get_mut(&from)
            .and_then(|track| track.subscription_mut(slot, ssrc))
        else {
            return SwitchFrom::Nothing;
        };
        sub.switch = Some(Switch::Replaced);
        let handoff = Handoff {
            ssrc,
            last_seq: sub.last_seq,
            last_ts: sub.last_rtp_ts,
            picture: sub.select.last_forwarded(),
            started: false,
        };
        if let Some(session) = self.sessions[slot].as_mut() {
            session.handoffs.push(handoff);
        }
        SwitchFrom::Layer
    }

    pub(super) fn unsubscribe_slot(&mut self, slot: usize, track: TrackId) {
        if let Some(t) = self.tracks.get_mut(&track) {
            t.subscribers.retain(|s| s.session != slot);
            if t.subscribers.is_empty() && matches!(t.origin, Origin::Remote(_)) {
                self.tracks.remove(&track);
            }
        }
        if let Some(s) = self.sessions[slot].as_mut() {
            s.subscribed.retain(|t| *t != track);
        }
    }

    /// Puts a new session in a free slot: its slot, or `None` if `id` is installed already.
    fn install_session(
        &mut self,
        id: SessionId,
        ice: IceCredentials,
        upstream: Option<(SocketAddr, Checker)>,
        now: Instant,
    ) -> Option<usize> {
        if self.by_id.contains_key(&id) {
            return None;
        }
        let session = Session {
            id,
            ice,
            consent: Consent::new(now, self.consent_timeout),
            addr: None,
            srtp_rx: None,
            srtp_tx: None,
            inbound: Vec::new(),
            inbound_rtx: Vec::new(),
            by_mid: Vec::new(),
            transport_cc: None,
            subscribed: Vec::new(),
            handoffs: Vec::new(),
            egress: None,
            cc: None,
            upstream,
        };
        let slot = match self.free_slots.pop() {
            Some(i) => {
                self.sessions[i] = Some(session);
                i
            }
            None => {
                self.sessions.push(Some(session));
                self.sessions.len() - 1
            }
        };
        self.by_id.insert(id, slot);
        self.counters.sessions = self.by_id.len() as u64;
        Some(slot)
    }

    pub(super) fn remove_session(&mut self, id: SessionId) {
        let Some(slot) = self.by_id.remove(&id) else {
            return;
        };
        let Some(session) = self.sessions[slot].take() else {
            return;
        };
        self.free_slots.push(slot);
        self.upstreams.retain(|s| *s != slot);
        if let Some(addr) = session.addr {
            self.by_addr.remove(&addr);
        }
        self.by_ufrag.remove(session.ice.local_ufrag.as_bytes());
        for t in &session.subscribed {
            self.unsubscribe_slot(slot, *t);
        }
        // Tracks found by MID are listed there whether or not their SSRC was bound yet.
        let tracks = session.inbound.iter().map(|(_, t)| t);
        for t in tracks.chain(session.by_mid.iter().map(|(t, _)| t)) {
            self.tracks.remove(t);
        }
        self.counters.sessions = self.by_id.len() as u64;
    }
}

/// What a layer switch starts from.
pub(super) enum SwitchFrom {
    /// The session receives nothing under that SSRC: a plain subscription.
    Nothing,
    /// It already receives that layer.
    Same,
    /// Another layer, now marked as replaced.
    Layer,
}
