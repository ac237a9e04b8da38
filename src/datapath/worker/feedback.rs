//! Feedback and reports: what the relay sends on its own account. NACK answers from the track
//! cache (on the RTX stream when negotiated), transport-cc feedback and NACKs to publishers, rate-
//! limited keyframe requests (PLI) upstream or to the publishing worker, and SR/RR once a second.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::super::command::Command;
use super::super::io::SendQueue;
use super::super::session::{MediaKind, Origin, Switch};
use super::super::upstream;
use super::super::TrackId;
use super::{commit_rtcp, earliest, Core};
use crate::wire::rtcp;

impl Core {
    pub(super) fn retransmit(
        &mut self,
        slot_idx: usize,
        media_ssrc: u32,
        subscriber_seq: u16,
        tx: &mut SendQueue,
    ) {
        let Some(track_id) = self.subscribed_track(slot_idx, media_ssrc) else {
            return;
        };
        let Some(track) = self.tracks.get_mut(&track_id) else {
            return;
        };
        // Not `subscription_mut`: the cache is borrowed beside the subscription.
        let Some(sub) = track
            .subscribers
            .iter_mut()
            .find(|s| s.session == slot_idx && s.params.ssrc == media_ssrc)
        else {
            return;
        };
        let Some(publisher_seq) = sub.publisher_seq(subscriber_seq) else {
            self.counters.nack_misses += 1; // a number it never sent (a dropped layer's gap)
            return;
        };
        if let Some(Switch::Started { start }) = sub.switch {
            // Before the switch, that number was another layer's packet.
            if (publisher_seq.wrapping_sub(start) as i16) < 0 {
                self.counters.nack_misses += 1;
                return;
            }
        }
        let Some(cached) = track.cache.get(publisher_seq) else {
            self.counters.nack_misses += 1;
            return;
        };
        let Some(session) = self.sessions[slot_idx].as_mut() else {
            return;
        };
        let (Some(addr), Some(ctx)) = (session.addr, session.srtp_tx.as_mut()) else {
            return;
        };
        let Some(out) = tx.slot() else {
            self.counters.send_queue_full += 1;
            return;
        };
        let room = out.len().saturating_sub(ctx.profile().rtp_overhead());
        let now_us = super::micros_since(self.epoch);
        let numbered = sub.params.egress.transport_cc.is_some();
        let stamp = session.egress.as_ref().map(|h| h.stamp(now_us));
        let Some(copied) = sub.copy_resent(cached, &mut out[..room], stamp) else {
            self.counters.nack_misses += 1;
            return;
        };
        // With RTX negotiated, the packet goes on the RTX stream with its own sequence number
        // (RFC 4588), so no SRTP packet index is ever used twice. Without, it goes as it was:
        // the index is that of the lost original, which the subscriber never decrypted.
        let len = if sub.params.rtx.is_some() {
            match sub.rewrite_as_rtx(&mut out[..room], copied) {
                Some(n) => n,
                None => {
                    self.counters.nack_misses += 1;
                    return;
                }
            }
        } else {
            copied
        };
        match ctx.protect_rtp(out, len) {
            Ok(n) => {
                tx.commit(n, addr);
                if let Some(h) = session.egress.as_mut().filter(|_| numbered) {
                    h.record(n, now_us, 0);
                }
                self.counters.nack_retransmits += 1;
                self.counters.packets_out += 1;
                self.counters.bytes_out += n as u64;
            }
            Err(e) => self.count_srtp_error(e),
        }
    }

    /// Transport-cc feedback to every publisher with arrivals not yet reported.
    pub(super) fn send_transport_feedback(&mut self, tx: &mut SendQueue) {
        for session in self.sessions.iter_mut().flatten() {
            let (Some(addr), Some(ctx), Some(arrivals)) = (
                session.addr,
                session.srtp_tx.as_mut(),
                session.transport_cc.as_mut(),
            ) else {
                continue;
            };
            let media = session.inbound.first().map_or(0, |(ssrc, _)| *ssrc);
            // A few packets at most per session and tick; what is left goes with the next.
            for _ in 0..4 {
                if !arrivals.pending() {
                    break;
                }
                let Some(out) = tx.slot() else {
                    self.counters.send_queue_full += 1;
                    return;
                };
                let Ok(len) = arrivals.write_feedback(out, self.relay_ssrc, media) else {
                    break;
                };
                if commit_rtcp(tx, ctx, addr, len, &mut self.counters) {
                    self.counters.transport_feedback += 1;
                }
            }
        }
    }

    /// NACKs to publishers for the packets of theirs that are due (new gaps, and retries).
    pub(super) fn nack_publishers(&mut self, tx: &mut SendQueue, now: Instant) {
        self.next_nack = None;
        let mut seqs = [0u16; upstream::CAPACITY];
        for track in self.tracks.values_mut() {
            let (Origin::Local(slot), Some(loss)) = (track.origin, track.loss.as_mut()) else {
                continue;
            };
            if loss.is_empty() {
                continue;
            }
            let n = loss.due(now, &mut seqs);
            self.counters.upstream_lost += loss.take_lost();
            self.next_nack = earliest(self.next_nack, loss.next_due());
            if n == 0 {
                continue;
            }
            let (Some(session), Some(media)) = (self.sessions[slot].as_mut(), track.publisher_ssrc)
            else {
                continue;
            };
            let (Some(addr), Some(ctx)) = (session.addr, session.srtp_tx.as_mut()) else {
                continue;
            };
            let Some(out) = tx.slot() else {
                // The rest next turn, once this turn's sends are out.
                self.counters.send_queue_full += 1;
                self.next_nack = Some(now);
                return;
            };
            let Ok(len) = rtcp::write_nack_lost(out, self.relay_ssrc, media, &seqs[..n]) else {
                continue;
            };
            if commit_rtcp(tx, ctx, addr, len, &mut self.counters) {
                self.counters.upstream_nacks += 1;
                self.counters.upstream_nacked += n as u64;
            }
        }
    }

    /// Binding requests from the sessions this worker opened towards other nodes (pulls) whose
    /// check is due: to nominate the pair at first, then for consent.
    pub(super) fn send_checks(&mut self, tx: &mut SendQueue, now: Instant) {
        self.next_check = None;
        for &slot in &self.upstreams {
            let Some((remote, checker)) = self.sessions[slot]
                .as_mut()
                .and_then(|s| s.upstream.as_mut())
            else {
                continue;
            };
            if now >= checker.poll_timeout() {
                let Some(out) = tx.slot() else {
                    self.counters.send_queue_full += 1;
                    self.next_check = Some(now);
                    return;
                };
                if let Some(len) = checker.poll_transmit(now, out) {
                    tx.commit(len, *remote);
                    self.counters.ice_checks_sent += 1;
                    self.counters.packets_out += 1;
                    self.counters.bytes_out += len as u64;
                }
            }
            self.next_check = earliest(self.next_check, Some(checker.poll_timeout()));
        }
    }

    /// Asks a track's publisher for a keyframe, at most once per `keyframe_interval` per track
    /// (500 ms; a second for a stream pulled from another node).
    pub(super) fn request_keyframe(&mut self, track_id: TrackId, tx: &mut SendQueue, now: Instant) {
        let Some(track) = self.tracks.get_mut(&track_id) else {
            return;
        };
        if track.kind != MediaKind::Video {
            return;
        }
        if track
            .last_keyframe_request
            .is_some_and(|t| now.duration_since(t) < track.keyframe_interval)
        {
            self.counters.keyframe_suppressed += 1;
            return;
        }
        track.last_keyframe_request = Some(now);
        match track.origin {
            Origin::Remote(w) => {
                if self.peers[w]
                    .try_send(Command::RequestKeyframe { track: track_id })
                    .is_ok()
                {
                    self.pending_wake |= 1 << w;
                }
            }
            Origin::Local(publisher) => {
                // Not before the first packet of a publisher that signalled no SSRC: it sends
                // a keyframe first anyway.
                let Some(media) = track.publisher_ssrc else {
                    return;
                };
                let Some(session) = self.sessions[publisher].as_mut() else {
                    return;
                };
                let (Some(addr), Some(ctx)) = (session.addr, session.srtp_tx.as_mut()) else {
                    return;
                };
                let Some(out) = tx.slot() else {
                    self.counters.send_queue_full += 1;
                    return;
                };
                let Ok(len) = rtcp::write_pli(out, self.relay_ssrc, media) else {
                    return;
                };
                if commit_rtcp(tx, ctx, addr, len, &mut self.counters) {
                    self.counters.keyframe_requests += 1;
                }
            }
        }
    }

    /// Sender reports to subscribers and receiver reports to publishers, once a second.
    pub(super) fn send_reports(&mut self, tx: &mut SendQueue, _now: Instant) {
        let ntp = ntp_now();
        for slot_idx in 0..self.sessions.len() {
            let Some(session) = self.sessions[slot_idx].as_ref() else {
                continue;
            };
            if session.addr.is_none() || session.srtp_tx.is_none() {
                continue;
            }
            let Some(out) = tx.slot() else {
                self.counters.send_queue_full += 1;
                return;
            };
            let mut len = 0;
            // SRs for what we send this session.
            for t in &session.subscribed {
                let Some(track) = self.tracks.get(t) else {
                    continue;
                };
                for sub in track.subscribers.iter().filter(|s| s.session == slot_idx) {
                    let info = rtcp::SenderInfo {
                        ssrc: sub.params.ssrc,
                        ntp_timestamp: ntp,
                        rtp_timestamp: sub.last_rtp_ts,
                        packet_count: sub.packets as u32,
                        octet_count: sub.octets as u32,
                    };
                    if let Ok(n) = rtcp::write_sender_report(&mut out[len..1200], &info, &[]) {
                        len += n;
                    }
                }
            }
            // An RR for what this session publishes to us.
            let mut blocks = [rtcp::ReportBlock::default(); 8];
            let mut nblocks = 0;
            for (ssrc, t) in session.inbound.iter().take(8) {
                let Some(track) = self.tracks.get(t) else {
                    continue;
                };
                blocks[nblocks] = rtcp::ReportBlock {
                    ssrc: *ssrc,
                    highest_seq: track.highest_seq.unwrap_or(0) as u32,
                    ..rtcp::ReportBlock::default()
                };
                nblocks += 1;
            }
            if nblocks > 0 || len == 0 {
                if let Ok(n) = rtcp::write_receiver_report(
                    &mut out[len..1200],
                    self.relay_ssrc,
                    &blocks[..nblocks],
                ) {
                    len += n;
                }
            }
            if let Ok(n) = rtcp::write_sdes_cname(&mut out[len..1200], self.relay_ssrc, b"tern") {
                len += n;
            }
            let Some(session) = self.sessions[slot_idx].as_mut() else {
                continue;
            };
            let (Some(addr), Some(ctx)) = (session.addr, session.srtp_tx.as_mut()) else {
                continue;
            };
            if commit_rtcp(tx, ctx, addr, len, &mut self.counters) {
                self.counters.reports_sent += 1;
            }
        }
    }
}

/// The current wall-clock time as a 64-bit NTP timestamp (for sender reports).
pub(super) fn ntp_now() -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}
