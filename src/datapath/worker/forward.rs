//! Forwarding: a plaintext packet of a published track goes into the track's NACK cache, one
//! shared copy per subscribed remote worker (lock-free rings, pooled buffers), and this turn's
//! stage; the stage and the rings are then fanned out subscriber by subscriber (copy, rewrite,
//! protect, queue), with keyframe-aligned layer switches decided per packet, and for VP8/VP9
//! the temporal and spatial layers each subscriber gets (`svc`: dropped packets shift its
//! sequence numbers, PictureIDs are renumbered).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::super::command::Event;
use super::super::fanout::FanoutMsg;
use super::super::io::{SendQueue, UdpIo};
use super::super::session::{Handoff, MediaKind, Pause, Session, Subscription, Switch, Track};
use super::super::stats::Counters;
use super::super::svc::{apply, Rewrite, Verdict};
use super::super::upstream::Arrival;
use super::super::TrackId;
use super::{earliest, micros_since, Core, STAGED_PACKET_SIZE, STAGE_CAPACITY};

impl Core {
    /// A plaintext packet of a locally published track: cache, ring copies, local fan-out.
    pub(super) fn forward(
        &mut self,
        track_id: TrackId,
        packet: &[u8],
        tx: &mut SendQueue,
        now: Instant,
    ) {
        let Some(track) = self.tracks.get_mut(&track_id) else {
            return;
        };
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        track.cache.store(seq, packet);
        track.received += 1;
        track.octets += packet.len() as u64;
        if let Some(tid) = super::super::svc::temporal_layer(track.codec, track.dd.as_mut(), packet)
        {
            track.temporal_octets[usize::from(tid.min(3))] += packet.len() as u64;
        }
        if let Some(layer) = track.layer.as_mut() {
            layer.last = now;
            if layer.stalled {
                layer.stalled = false;
                let _ = self.events.try_send(Event::LayerActive {
                    track: track_id,
                    active: true,
                });
            }
        }
        let ext = crate::srtp::estimate_index(track.highest_seq, seq).unwrap_or(u64::from(seq));
        if let Some(loss) = track.loss.as_mut() {
            match loss.on_packet(ext, track.highest_seq, now) {
                Arrival::Recovered => self.counters.upstream_recovered += 1,
                Arrival::Newest if !loss.is_empty() => {
                    // New gaps are NACKed at once (this turn); see `nack_publishers`.
                    self.next_nack = earliest(self.next_nack, loss.next_due());
                }
                _ => {}
            }
        }
        if track.highest_seq.is_none_or(|h| ext > h) {
            track.highest_seq = Some(ext);
        }
        if track.remote_workers != 0 {
            match self.pool.fill(packet) {
                Some(shared) => {
                    let mut mask = track.remote_workers;
                    while mask != 0 {
                        let w = mask.trailing_zeros() as usize;
                        mask &= mask - 1;
                        let msg = FanoutMsg {
                            track: track_id,
                            packet: Arc::clone(&shared),
                            received: now,
                        };
                        if self.rings.ring(self.id, w).push(msg).is_err() {
                            self.counters.ring_full += 1;
                        } else {
                            self.pending_wake |= 1 << w;
                        }
                    }
                    self.pool.keep(shared);
                }
                None => self.counters.pool_empty += 1,
            }
        }
        if self.staged == STAGE_CAPACITY {
            self.fanout_staged(tx);
        }
        if packet.len() <= STAGED_PACKET_SIZE {
            let slot = &mut self.stage[self.staged];
            slot.track = track_id;
            slot.len = packet.len();
            slot.data[..packet.len()].copy_from_slice(packet);
            self.staged += 1;
        } else {
            self.counters.srtp_errors += 1;
        }
    }

    pub(super) fn record_latency(&mut self, sent: Instant, received: Instant, packets: u64) {
        let ns = sent.saturating_duration_since(received).as_nanos() as u64;
        let _ = self.latency.record_n(ns.max(1), packets);
    }

    /// Fans out this batch's staged packets, track by track and subscriber by subscriber, so a
    /// burst to one subscriber leaves as consecutive sends (one UDP GSO send).
    pub(super) fn fanout_staged<E: Egress>(&mut self, tx: &mut E) {
        let n = std::mem::take(&mut self.staged);
        if n == 0 {
            return;
        }
        let stage = &self.stage[..n];
        let mut fan = Fanout {
            tracks: &mut self.tracks,
            sessions: &mut self.sessions,
            counters: &mut self.counters,
            switched: &mut self.switched,
            now_us: micros_since(self.epoch),
        };
        for i in 0..n {
            let track = stage[i].track;
            if stage[..i].iter().any(|s| s.track == track) {
                continue; // already sent with the first packet of its track
            }
            let packets = stage[i..]
                .iter()
                .filter(|s| s.track == track)
                .map(|s| &s.data[..s.len]);
            self.egress += fan.send(track, packets, tx);
        }
    }

    /// Packets other workers sent us: cache them, then fan out as a batch.
    pub(super) fn drain_rings<E: Egress>(&mut self, tx: &mut E) {
        for from in 0..self.wakers.len() {
            if from == self.id {
                continue;
            }
            loop {
                while self.ring_batch.len() < STAGE_CAPACITY {
                    let Some(msg) = self.rings.ring(from, self.id).pop() else {
                        break;
                    };
                    self.counters.ring_in += 1;
                    let packet = msg.packet.bytes();
                    if let Some(track) = self.tracks.get_mut(&msg.track) {
                        track
                            .cache
                            .store(u16::from_be_bytes([packet[2], packet[3]]), packet);
                    }
                    self.ring_batch.push(msg);
                }
                if self.ring_batch.is_empty() {
                    break;
                }
                let batch = &self.ring_batch;
                let mut fan = Fanout {
                    tracks: &mut self.tracks,
                    sessions: &mut self.sessions,
                    counters: &mut self.counters,
                    switched: &mut self.switched,
                    now_us: micros_since(self.epoch),
                };
                for i in 0..batch.len() {
                    let track = batch[i].track;
                    if batch[..i].iter().any(|m| m.track == track) {
                        continue;
                    }
                    let packets = batch[i..]
                        .iter()
                        .filter(|m| m.track == track)
                        .map(|m| m.packet.bytes());
                    let sent = fan.send(track, packets, tx);
                    self.egress += sent;
                    if sent > 0 && self.ring_latency.len() < self.ring_latency.capacity() {
                        self.ring_latency.push((batch[i].received, sent));
                    }
                }
                // Dropping the messages releases our references to the shared buffers.
                self.ring_batch.clear();
            }
        }
        self.pool.reclaim();
    }

    pub(super) fn wake_peers(&mut self) {
        let mut mask = std::mem::take(&mut self.pending_wake);
        while mask != 0 {
            let w = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            self.wakers[w].wake();
        }
    }
}

/// Sends queued beyond this many leave (one submit) before the fan-out goes on.
pub(super) const FLUSH_EVERY: usize = 64;

/// Where fan-out queues its sends: the queue alone (inside a receive callback, where the I/O
/// is busy), or the whole I/O, which can also submit what is queued mid-fan-out.
pub(super) trait Egress {
    fn queue(&mut self) -> &mut SendQueue;
    /// Submits the queued sends if there are at least `FLUSH_EVERY`.
    fn flush_some(&mut self, counters: &mut Counters);
}

impl Egress for SendQueue {
    fn queue(&mut self) -> &mut SendQueue {
        self
    }
    fn flush_some(&mut self, _: &mut Counters) {}
}

impl Egress for UdpIo {
    fn queue(&mut self) -> &mut SendQueue {
        &mut self.tx
    }
    fn flush_some(&mut self, counters: &mut Counters) {
        if self.tx.queued() >= FLUSH_EVERY && self.flush().is_err() {
            counters.send_errors += 1;
        }
    }
}

/// The parts of a worker that fan-out touches, borrowed apart from the packets being sent.
pub(super) struct Fanout<'a> {
    tracks: &'a mut HashMap<TrackId, Track>,
    sessions: &'a mut [Option<Session>],
    counters: &'a mut Counters,
    /// `(session slot, subscriber SSRC)` of layer switches whose new layer started.
    switched: &'a mut Vec<(usize, u32)>,
    /// Send time stamped on (and remembered for) this fan-out's packets, µs since the epoch.
    now_us: i64,
}

impl Fanout<'_> {
    /// Sends every packet of `packets` (all of track `track_id`) to each local subscriber:
    /// copy, rewrite, protect with the subscriber's key, queue. Returns the packets queued.
    fn send<'p, E: Egress>(
        &mut self,
        track_id: TrackId,
        packets: impl Iterator<Item = &'p [u8]> + Clone,
        out: &mut E,
    ) -> u64 {
        let Some(track) = self.tracks.get_mut(&track_id) else {
            return 0;
        };
        let mut queued = 0;
        let audio = track.kind == MediaKind::Audio;
        for sub in &mut track.subscribers {
            // Sends leave in chunks while the fan-out runs, so the first subscribers' copies do
            // not wait for the last ones to be encrypted.
            out.flush_some(self.counters);
            let tx = out.queue();
            let Some(session) = self.sessions[sub.session].as_mut() else {
                continue;
            };
            let (Some(addr), Some(ctx)) = (session.addr, session.srtp_tx.as_mut()) else {
                self.counters.no_keys += 1;
                continue;
            };
            let overhead = ctx.profile().rtp_overhead();
            // Only packets that carry the sequence number are remembered: a gap in it would
            // read as loss in the subscriber's feedback.
            let numbered = sub.params.egress.transport_cc.is_some();
            for packet in packets.clone() {
                if let Some(before) = sub.switch {
                    if !switch_admits(sub, packet, &mut session.handoffs) {
                        continue;
                    }
                    if matches!(before, Switch::Waiting(_)) {
                        // The new layer's first packet: the old one goes after this turn.
                        self.switched.push((sub.session, sub.params.ssrc));
                    }
                }
                let pub_seq = u16::from_be_bytes([packet[2], packet[3]]);
                if sub.pause != Pause::Off && !pause_admits(sub, packet) {
                    self.counters.paused_dropped += 1;
                    continue;
                }
                let mut rewrite = Rewrite::default();
                if sub.select.active() {
                    match sub.select.admit_packet(packet) {
                        Verdict::Forward(r) => rewrite = r,
                        Verdict::Drop => {
                            // In order, the numbers after it close the gap.
                            if !sub.seq.drop(pub_seq) {
                                self.counters.layer_dropped_late += 1;
                            }
                            self.counters.layer_dropped += 1;
                            continue;
                        }
                    }
                }
                sub.seq.forward(pub_seq);
                let Some(out) = tx.slot() else {
                    self.counters.send_queue_full += 1;
                    continue;
                };
                let room = out.len().saturating_sub(overhead);
                let stamp = session.egress.as_ref().map(|h| h.stamp(self.now_us));
                let Some(len) = sub.copy_rewritten(packet, &mut out[..room], stamp) else {
                    self.counters.srtp_errors += 1;
                    continue;
                };
                apply(&mut out[..len], sub.params.codec, rewrite);
                let rtp_ts = u32::from_be_bytes([out[4], out[5], out[6], out[7]]);
                let rtp_seq = u16::from_be_bytes([out[2], out[3]]);
                match ctx.protect_rtp(out, len) {
                    Ok(n) => {
                        tx.commit(n, addr);
                        if let Some(h) = session.egress.as_mut().filter(|_| numbered) {
                            h.record(n, self.now_us, 0);
                        }
                        if let Some(cc) = session.cc.as_mut() {
                            if audio {
                                cc.audio_octets += n as u64;
                            } else {
                                cc.video_octets += n as u64;
                            }
                        }
                        sub.packets += 1;
                        sub.octets += (len - crate::wire::rtp::FIXED_HEADER_LEN) as u64;
                        sub.last_rtp_ts = rtp_ts;
                        sub.last_seq = rtp_seq;
                        if sub.switch == Some(Switch::Replaced) {
                            if let Some(h) = session
                                .handoffs
                                .iter_mut()
                                .find(|h| h.ssrc == sub.params.ssrc)
                            {
                                (h.last_seq, h.last_ts) = (rtp_seq, rtp_ts);
                                h.picture = sub.select.last_forwarded();
                            }
                        }
                        self.counters.media_out += 1;
                        self.counters.packets_out += 1;
                        self.counters.bytes_out += n as u64;
                        queued += 1;
                    }
                    Err(_) => self.counters.srtp_errors += 1,
                }
            }
        }
        queued
    }
}

/// Whether a paused subscription sends the publisher's plaintext `packet`: once resuming, from a
/// packet that starts a keyframe on, numbered on from the last packet sent before the pause
/// (the publisher's timestamps ran on meanwhile, so the offset to them holds).
fn pause_admits(sub: &mut Subscription, packet: &[u8]) -> bool {
    let Pause::Resuming(codec) = sub.pause else {
        return false;
    };
    let Ok(parsed) = crate::wire::rtp::RtpPacket::parse(packet) else {
        return false;
    };
    if !codec.starts_keyframe(parsed.payload()) {
        return false;
    }
    let seq = parsed.sequence_number();
    sub.seq
        .restart(seq, sub.last_seq.wrapping_add(1).wrapping_sub(seq));
    sub.select.continue_from(sub.select.last_forwarded());
    sub.pause = Pause::Off;
    true
}

/// Whether a subscription in a layer switch sends the publisher's plaintext `packet`, moving
/// the switch along: the new layer starts at a keyframe, numbered on from where the old one
/// stopped; the old layer sends until then.
pub(super) fn switch_admits(
    sub: &mut Subscription,
    packet: &[u8],
    handoffs: &mut [Handoff],
) -> bool {
    let ssrc = sub.params.ssrc;
    let seq = u16::from_be_bytes([packet[2], packet[3]]);
    match sub.switch {
        None => true,
        Some(Switch::Started { start }) => {
            let since = seq.wrapping_sub(start) as i16;
            if since > 1000 {
                sub.switch = None; // long past the switch: the comparison would wrap
            }
            since >= 0
        }
        Some(Switch::Replaced) => handoffs.iter().any(|h| h.ssrc == ssrc && !h.started),
        Some(Switch::Waiting(codec)) => {
            let Some(h) = handoffs.iter_mut().find(|h| h.ssrc == ssrc && !h.started) else {
                return false;
            };
            let Ok(parsed) = crate::wire::rtp::RtpPacket::parse(packet) else {
                return false;
            };
            if !codec.starts_keyframe(parsed.payload()) {
                return false;
            }
            // One 90 kHz frame interval (30 fps) after the old layer's last timestamp.
            const TS_STEP: u32 = 3000;
            let ts = parsed.timestamp();
            sub.seq
                .restart(seq, h.last_seq.wrapping_add(1).wrapping_sub(seq));
            sub.params.ts_offset = h.last_ts.wrapping_add(TS_STEP).wrapping_sub(ts);
            sub.select.continue_from(h.picture);
            h.started = true;
            sub.switch = Some(Switch::Started { start: seq });
            true
        }
    }
}
