//! Receive and demux: a datagram's path from the socket to the fan-out. STUN goes to the ICE-lite
//! responder (answered only when authenticated), DTLS from validated addresses to the slow path,
//! SRTP/SRTCP is unprotected in place with the sending session's keys (auth tag first), and RTP is
//! matched to its track (by SSRC, RTX SSRC, or MID/RID binding). Subscribers' RTCP (PLI, FIR,
//! NACK) is read here and handed to `feedback`, its transport-cc and REMB to `congestion`. Every drop is counted; nothing here allocates.

use std::net::SocketAddr;
use std::time::Instant;

use crossbeam::channel::TrySendError;

use super::super::command::Event;
use super::super::io::{self, SendQueue};
use super::super::session::Inbound;
use super::super::upstream::{rtx_osn, unwrap_rtx};
use super::super::TrackId;
use super::{count_srtp_error, Core};
use crate::ice;
use crate::srtp::SrtpError;
use crate::wire::rtcp::{Rtcp, RtcpIter};

impl Core {
    pub(super) fn on_stun(
        &mut self,
        buf: &[u8],
        src: SocketAddr,
        tx: &mut SendQueue,
        now: Instant,
    ) {
        let Some(slot_idx) = ice::local_ufrag(buf)
            .and_then(|u| self.by_ufrag.get(u))
            .copied()
        else {
            if !self.on_check_response(buf, src, now) {
                self.counters.stun_dropped += 1;
            }
            return;
        };
        let Some(session) = self.sessions.get_mut(slot_idx).and_then(Option::as_mut) else {
            self.counters.stun_dropped += 1;
            return;
        };
        let Some(out) = tx.slot() else {
            self.counters.send_queue_full += 1;
            return;
        };
        // XOR-MAPPED-ADDRESS: where the peer sends from (a TCP connection's remote address).
        match ice::answer_binding(buf, &session.ice, io::peer_addr(src), out) {
            Ok((len, info)) => {
                tx.commit(len, src);
                self.counters.stun_answered += 1;
                self.counters.packets_out += 1;
                self.counters.bytes_out += len as u64;
                session.consent.refresh(now);
                // Bind the first authenticated address; a nominated check may move it (ICE
                // restart, a client changing networks).
                let moves = match session.addr {
                    None => true,
                    Some(a) => a != src && info.nominated,
                };
                if moves {
                    if let Some(old) = session.addr.replace(src) {
                        self.by_addr.remove(&old);
                    }
                    self.by_addr.insert(src, slot_idx);
                    let _ = self.events.try_send(Event::Bound {
                        session: session.id,
                        addr: src,
                    });
                }
            }
            Err(_) => self.counters.stun_dropped += 1,
        }
    }

    /// An answer to a check of a session this worker opened towards another node: if it comes
    /// from the address checked and verifies (our transaction, the far side's password), that
    /// address becomes the session's (the first time) and consent is refreshed. False for
    /// anything else, which the caller counts and drops.
    fn on_check_response(&mut self, buf: &[u8], src: SocketAddr, now: Instant) -> bool {
        let Some(&slot) = self.upstreams.iter().find(|&&slot| {
            self.sessions[slot]
                .as_ref()
                .and_then(|s| s.upstream.as_ref())
                .is_some_and(|(remote, _)| *remote == src)
        }) else {
            return false;
        };
        let Some(session) = self.sessions[slot].as_mut() else {
            return false;
        };
        let Some((_, checker)) = session.upstream.as_mut() else {
            return false;
        };
        if checker.handle_response(buf).is_err() {
            return false;
        }
        self.counters.ice_checks_answered += 1;
        session.consent.refresh(now);
        if session.addr.is_none() {
            session.addr = Some(src);
            self.by_addr.insert(src, slot);
            let _ = self.events.try_send(Event::Bound {
                session: session.id,
                addr: src,
            });
        }
        true
    }

    pub(super) fn on_dtls(&mut self, buf: &[u8], src: SocketAddr) {
        let Some(session) = self
            .by_addr
            .get(&src)
            .and_then(|&i| self.sessions[i].as_ref())
        else {
            self.counters.unvalidated_source += 1;
            self.counters.dtls_dropped += 1;
            return;
        };
        // The slow path's DTLS is not per-media-packet: an owned copy is fine here.
        match self.events.try_send(Event::Dtls {
            session: session.id,
            worker: self.id,
            data: buf.to_vec(),
        }) {
            Ok(()) => self.counters.dtls_in += 1,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dtls_dropped += 1
            }
        }
    }

    pub(super) fn count_srtp_error(&mut self, e: SrtpError) {
        count_srtp_error(&mut self.counters, e);
    }

    /// The slot of the session whose ICE check `src` passed, after unprotecting `buf` in place
    /// with that session's keys, and the plaintext length. Anything else is counted and `None`.
    pub(super) fn unprotect_from(
        &mut self,
        buf: &mut [u8],
        src: SocketAddr,
        rtcp: bool,
    ) -> Option<(usize, usize)> {
        let Some(&slot_idx) = self.by_addr.get(&src) else {
            self.counters.unvalidated_source += 1;
            return None;
        };
        let Some(rx) = self.sessions[slot_idx].as_mut()?.srtp_rx.as_mut() else {
            self.counters.no_keys += 1;
            return None;
        };
        let result = if rtcp {
            rx.unprotect_rtcp(buf)
        } else {
            rx.unprotect_rtp(buf)
        };
        match result {
            Ok(len) => Some((slot_idx, len)),
            Err(e) => {
                self.count_srtp_error(e);
                None
            }
        }
    }

    pub(super) fn on_rtp(
        &mut self,
        buf: &mut [u8],
        src: SocketAddr,
        tx: &mut SendQueue,
        now: Instant,
    ) {
        let Some((slot_idx, len)) = self.unprotect_from(buf, src, false) else {
            return;
        };
        let Some(session) = self.sessions[slot_idx].as_mut() else {
            return;
        };
        if let Some(arrivals) = session.transport_cc.as_mut() {
            if let Some(&[a, b]) = crate::wire::rtp::find_extension(&buf[..len], arrivals.ext_id) {
                let at = now.saturating_duration_since(self.epoch).as_micros() as i64;
                arrivals.record(u16::from_be_bytes([a, b]), at);
            }
        }
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let inbound = if let Some(track) = session.track_for(ssrc) {
            Inbound::Primary(track)
        } else if let Some((track, apt)) = session.rtx_track_for(ssrc) {
            Inbound::Rtx(track, apt)
        } else if let Some(bound) = session.bind_by_mid(&buf[..len], ssrc) {
            self.counters.ssrcs_learned += 1;
            if let Inbound::Primary(track) = bound {
                if let Some(t) = self.tracks.get_mut(&track) {
                    t.publisher_ssrc = Some(ssrc);
                }
            }
            bound
        } else {
            self.counters.unknown_ssrc += 1;
            return;
        };
        match inbound {
            Inbound::Primary(track) => self.forward(track, &buf[..len], tx, now),
            Inbound::Rtx(track, apt) => self.on_publisher_rtx(track, apt, buf, len, tx, now),
        }
    }

    /// A publisher's retransmission on its RTX stream: forwarded as the original if the relay
    /// is missing that packet; padding-only bandwidth probes and anything else are dropped.
    pub(super) fn on_publisher_rtx(
        &mut self,
        track_id: TrackId,
        apt: u8,
        buf: &mut [u8],
        len: usize,
        tx: &mut SendQueue,
        now: Instant,
    ) {
        let Some(track) = self.tracks.get(&track_id) else {
            return;
        };
        let wanted = match (rtx_osn(&buf[..len]), &track.loss) {
            (Some(osn), Some(loss)) => track
                .highest_seq
                .and_then(|h| crate::srtp::estimate_index(Some(h), osn))
                .is_some_and(|ext| loss.is_missing(ext)),
            _ => false,
        };
        if !wanted {
            self.counters.rtx_dropped += 1;
            return;
        }
        match track
            .publisher_ssrc
            .and_then(|ssrc| unwrap_rtx(buf, len, ssrc, apt))
        {
            Some(n) => self.forward(track_id, &buf[..n], tx, now),
            None => self.counters.rtx_dropped += 1,
        }
    }

    pub(super) fn on_rtcp(
        &mut self,
        buf: &mut [u8],
        src: SocketAddr,
        tx: &mut SendQueue,
        now: Instant,
    ) {
        let Some((slot_idx, len)) = self.unprotect_from(buf, src, true) else {
            return;
        };
        for packet in RtcpIter::new(&buf[..len]) {
            let Ok(packet) = packet else { break };
            match packet.typed() {
                Ok(Rtcp::Pli(_) | Rtcp::Fir(_)) => {
                    if let Some(track) = packet
                        .media_ssrc()
                        .and_then(|m| self.subscribed_track(slot_idx, m))
                    {
                        self.request_keyframe(track, tx, now);
                    } else if let Ok(Rtcp::Fir(fir)) = packet.typed() {
                        for entry in fir.entries() {
                            if let Some(track) = self.subscribed_track(slot_idx, entry.ssrc) {
                                self.request_keyframe(track, tx, now);
                            }
                        }
                    }
                }
                Ok(Rtcp::Nack(nack)) => {
                    if let Some(media) = packet.media_ssrc() {
                        for lost in nack.lost() {
                            self.retransmit(slot_idx, media, lost, tx);
                        }
                    }
                }
                Ok(Rtcp::TransportCc(fb)) => self.on_transport_feedback(slot_idx, &fb, now),
                Ok(Rtcp::Remb(remb)) => self.on_remb(slot_idx, remb.bitrate, now),
                _ => {}
            }
        }
    }

    /// The track a subscriber session receives under `ssrc`.
    pub(super) fn subscribed_track(&self, slot_idx: usize, ssrc: u32) -> Option<TrackId> {
        let session = self.sessions[slot_idx].as_ref()?;
        session.subscribed.iter().copied().find(|t| {
            self.tracks
                .get(t)
                .is_some_and(|tr| tr.subscription(slot_idx, ssrc).is_some())
        })
    }
}
