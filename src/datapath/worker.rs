//! The worker loop: one pinned thread that owns a UDP socket, its io_uring (or mmsg) I/O, its
//! sessions and tracks, and relays SRTP for them.
//!
//! Per batch: receive, demux (RFC 7983), answer authenticated STUN, pass DTLS from validated
//! addresses to the slow path, unprotect SRTP once, fan out (copy + rewrite + protect per local
//! subscriber, one shared copy per other worker), then one submit for all sends. Commands,
//! rings from other workers and timers are handled between batches. Nothing per packet
//! allocates, locks, logs or makes a syscall; every drop is counted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam::channel::{Receiver, Sender, TrySendError};
use hdrhistogram::Histogram;

use super::arrivals::TransportArrivals;
use super::command::{Command, Event};
use super::fanout::{FanoutMsg, PacketPool, Rings};
use super::io::{SendQueue, UdpIo, Waker};
use super::session::{
    Handoff, Inbound, LayerState, MediaKind, Origin, Session, Subscription, Switch, Track,
};
use super::stats::{new_latency_histogram, Counters, WorkerStats};
use super::upstream::{self, rtx_osn, unwrap_rtx, Arrival, LossTracker};
use super::{SessionId, TrackId};
use crate::ice::{self, Consent};
use crate::srtp::{SrtpContext, SrtpError};
use crate::wire::demux::{classify, PacketKind};
use crate::wire::rtcp::{self, Rtcp, RtcpIter};

const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(100);
/// A simulcast layer with no packet for this long is reported stopped.
pub const LAYER_STALL: Duration = Duration::from_secs(1);
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// Transport-cc feedback interval (libwebrtc's receivers send every 50–250 ms).
const FEEDBACK_EVERY: Duration = Duration::from_millis(50);
const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(500);
const MAX_WAIT: Duration = Duration::from_millis(100);
const COMMANDS_PER_TURN: usize = 256;
/// Packets decrypted in one batch before they are fanned out (a large video frame).
const STAGE_CAPACITY: usize = 64;
const STAGED_PACKET_SIZE: usize = 1500;

/// A decrypted packet waiting for this batch's fan-out.
struct Staged {
    track: TrackId,
    len: usize,
    data: Box<[u8; STAGED_PACKET_SIZE]>,
}

/// Everything a worker is started with.
pub(crate) struct WorkerSetup {
    pub id: usize,
    pub io: UdpIo,
    pub commands: Receiver<Command>,
    pub peers: Arc<[Sender<Command>]>,
    pub wakers: Arc<[Arc<Waker>]>,
    pub rings: Arc<Rings>,
    pub events: Sender<Event>,
    pub stats: Arc<WorkerStats>,
    pub heartbeat: Arc<AtomicU64>,
    pub stop: Arc<AtomicBool>,
    pub consent_timeout: Duration,
    pub pool_size: usize,
    pub nack_cache: usize,
    pub epoch: Instant,
    /// Fault injection (tests): panic once the loop has run this long.
    pub panic_after: Option<Duration>,
}

/// Runs a worker until `stop` is set.
pub(crate) fn run(setup: WorkerSetup) {
    let WorkerSetup {
        id,
        mut io,
        commands,
        peers,
        wakers,
        rings,
        events,
        stats,
        heartbeat,
        stop,
        ..
    } = setup;
    let mut core = Core {
        id,
        relay_ssrc: 0x7e57_0000 | id as u32,
        sessions: Vec::new(),
        free_slots: Vec::new(),
        by_id: HashMap::new(),
        by_addr: HashMap::new(),
        by_ufrag: HashMap::new(),
        tracks: HashMap::new(),
        rings,
        wakers,
        peers,
        pending_wake: 0,
        pool: PacketPool::new(setup.pool_size),
        events,
        counters: Counters::default(),
        latency: new_latency_histogram(),
        egress: 0,
        stage: (0..STAGE_CAPACITY)
            .map(|_| Staged {
                track: 0,
                len: 0,
                data: Box::new([0; STAGED_PACKET_SIZE]),
            })
            .collect(),
        staged: 0,
        ring_batch: Vec::with_capacity(STAGE_CAPACITY),
        ring_latency: Vec::with_capacity(STAGE_CAPACITY * 8),
        consent_timeout: setup.consent_timeout,
        nack_cache: setup.nack_cache,
        next_nack: None,
        epoch: setup.epoch,
        switched: Vec::with_capacity(64),
    };
    let mut next_housekeeping = Instant::now();
    let mut next_report = Instant::now() + REPORT_EVERY;
    let mut next_feedback = Instant::now() + FEEDBACK_EVERY;
    let epoch = setup.epoch;
    let panic_at = setup.panic_after.map(|d| Instant::now() + d);
    while !stop.load(Ordering::Relaxed) {
        let mut received: Option<Instant> = None;
        core.egress = 0;
        // One submit per turn: the sends queued in the previous turn leave with this wait.
        // Idle, the wait ends in time for the next upstream NACK.
        let wait = core.next_nack.map_or(MAX_WAIT, |t| {
            t.saturating_duration_since(Instant::now()).min(MAX_WAIT)
        });
        let result = io.run_once(wait, |buf, src, tx| {
            let now = *received.get_or_insert_with(Instant::now);
            core.on_datagram(buf, src, tx, now);
        });
        if let Err(e) = result {
            core.counters.send_errors += 1;
            eprintln!("tern: worker {id}: I/O error: {e}");
        }
        let now = received.unwrap_or_else(Instant::now);
        // Workers that got packets on their rings start on them now, in parallel with this
        // worker's own fan-out, rather than after it.
        core.wake_peers();
        core.fanout_staged(&mut io);
        let local_egress = core.egress;
        core.drain_rings(&mut io);
        core.finish_switches();
        core.handle_commands(&commands, &mut io.tx, now);
        if core.next_nack.is_some_and(|t| now >= t) {
            core.nack_publishers(&mut io.tx, now);
        }
        if now >= next_feedback {
            next_feedback = now + FEEDBACK_EVERY;
            core.send_transport_feedback(&mut io.tx);
        }
        if now >= next_report {
            next_report = now + REPORT_EVERY;
            core.send_reports(&mut io.tx, now);
        }
        core.wake_peers();
        if core.egress > 0 {
            // The queued sends are submitted by the next `run_once`, right after this.
            let sent = Instant::now();
            if let (Some(rx), true) = (received, local_egress > 0) {
                core.record_latency(sent, rx, local_egress);
            }
            for i in 0..core.ring_latency.len() {
                let (rx, n) = core.ring_latency[i];
                core.record_latency(sent, rx, n);
            }
        }
        core.ring_latency.clear();
        core.counters.batches += 1;
        if panic_at.is_some_and(|at| now >= at) {
            panic!("worker {id}: injected fault (DatapathConfig::panic_after)");
        }
        if now >= next_housekeeping {
            next_housekeeping = now + HOUSEKEEPING_EVERY;
            core.housekeeping(now);
            let io_stats = io.stats();
            core.counters.gso_sends = io_stats.gso_sends;
            core.counters.send_errors = core.counters.send_errors.max(io_stats.send_errors);
            if let Ok(mut shared) = stats.latency.try_lock() {
                let _ = shared.add(&core.latency);
                core.latency.reset();
            }
        }
        stats.counters.publish(&core.counters);
        heartbeat.store(
            now.duration_since(epoch).as_millis() as u64,
            Ordering::Relaxed,
        );
    }
}

struct Core {
    id: usize,
    relay_ssrc: u32,
    sessions: Vec<Option<Session>>,
    free_slots: Vec<usize>,
    by_id: HashMap<SessionId, usize>,
    by_addr: HashMap<SocketAddr, usize>,
    by_ufrag: HashMap<Box<[u8]>, usize>,
    tracks: HashMap<TrackId, Track>,
    rings: Arc<Rings>,
    wakers: Arc<[Arc<Waker>]>,
    peers: Arc<[Sender<Command>]>,
    pending_wake: u64,
    pool: PacketPool,
    events: Sender<Event>,
    counters: Counters,
    latency: Histogram<u64>,
    /// Media packets queued for sending in this batch.
    egress: u64,
    /// This batch's decrypted packets, fanned out subscriber by subscriber once the batch is in.
    stage: Vec<Staged>,
    staged: usize,
    /// Messages taken from the rings, fanned out the same way.
    ring_batch: Vec<FanoutMsg>,
    /// (receive time at the origin worker, egress packets) for ring-delivered media this turn.
    ring_latency: Vec<(Instant, u64)>,
    consent_timeout: Duration,
    nack_cache: usize,
    /// When some published track next has packets to NACK (or give up).
    next_nack: Option<Instant>,
    /// Arrival times for transport-cc are µs since this instant.
    epoch: Instant,
    /// Layer switches whose new layer started this turn (see `finish_switches`).
    switched: Vec<(usize, u32)>,
}

impl Core {
    fn on_datagram(&mut self, buf: &mut [u8], src: SocketAddr, tx: &mut SendQueue, now: Instant) {
        self.counters.packets_in += 1;
        self.counters.bytes_in += buf.len() as u64;
        match classify(buf) {
            PacketKind::Stun => self.on_stun(buf, src, tx, now),
            PacketKind::Dtls => self.on_dtls(buf, src),
            PacketKind::Rtp => self.on_rtp(buf, src, tx, now),
            PacketKind::Rtcp => self.on_rtcp(buf, src, tx, now),
            _ => self.counters.demux_other += 1,
        }
    }

    fn on_stun(&mut self, buf: &[u8], src: SocketAddr, tx: &mut SendQueue, now: Instant) {
        let Some(slot_idx) = ice::local_ufrag(buf)
            .and_then(|u| self.by_ufrag.get(u))
            .copied()
        else {
            self.counters.stun_dropped += 1;
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
        match ice::answer_binding(buf, &session.ice, src, out) {
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

    fn on_dtls(&mut self, buf: &[u8], src: SocketAddr) {
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

    fn count_srtp_error(&mut self, e: SrtpError) {
        count_srtp_error(&mut self.counters, e);
    }

    /// The slot of the session whose ICE check `src` passed, after unprotecting `buf` in place
    /// with that session's keys, and the plaintext length. Anything else is counted and `None`.
    fn unprotect_from(
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

    fn on_rtp(&mut self, buf: &mut [u8], src: SocketAddr, tx: &mut SendQueue, now: Instant) {
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
    fn on_publisher_rtx(
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

    /// A plaintext packet of a locally published track: cache, ring copies, local fan-out.
    fn forward(&mut self, track_id: TrackId, packet: &[u8], tx: &mut SendQueue, now: Instant) {
        let Some(track) = self.tracks.get_mut(&track_id) else {
            return;
        };
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        track.cache.store(seq, packet);
        track.received += 1;
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

    fn record_latency(&mut self, sent: Instant, received: Instant, packets: u64) {
        let ns = sent.saturating_duration_since(received).as_nanos() as u64;
        let _ = self.latency.record_n(ns.max(1), packets);
    }

    /// Fans out this batch's staged packets, track by track and subscriber by subscriber, so a
    /// burst to one subscriber leaves as consecutive sends (one UDP GSO send).
    fn fanout_staged<E: Egress>(&mut self, tx: &mut E) {
        let n = std::mem::take(&mut self.staged);
        let stage = &self.stage[..n];
        let mut fan = Fanout {
            tracks: &mut self.tracks,
            sessions: &mut self.sessions,
            counters: &mut self.counters,
            switched: &mut self.switched,
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
    fn drain_rings<E: Egress>(&mut self, tx: &mut E) {
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

    fn wake_peers(&mut self) {
        let mut mask = std::mem::take(&mut self.pending_wake);
        while mask != 0 {
            let w = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            self.wakers[w].wake();
        }
    }

    fn on_rtcp(&mut self, buf: &mut [u8], src: SocketAddr, tx: &mut SendQueue, now: Instant) {
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
                _ => {}
            }
        }
    }

    /// The track a subscriber session receives under `ssrc`.
    fn subscribed_track(&self, slot_idx: usize, ssrc: u32) -> Option<TrackId> {
        let session = self.sessions[slot_idx].as_ref()?;
        session.subscribed.iter().copied().find(|t| {
            self.tracks
                .get(t)
                .is_some_and(|tr| tr.subscription(slot_idx, ssrc).is_some())
        })
    }

    fn retransmit(
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
        let publisher_seq = sub.publisher_seq(subscriber_seq);
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
        let Some(copied) = sub.copy_rewritten(cached, &mut out[..room]) else {
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
                self.counters.nack_retransmits += 1;
                self.counters.packets_out += 1;
                self.counters.bytes_out += n as u64;
            }
            Err(e) => self.count_srtp_error(e),
        }
    }

    /// Transport-cc feedback to every publisher with arrivals not yet reported.
    fn send_transport_feedback(&mut self, tx: &mut SendQueue) {
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
    fn nack_publishers(&mut self, tx: &mut SendQueue, now: Instant) {
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

    /// Asks a track's publisher for a keyframe, at most once per 500 ms per track.
    fn request_keyframe(&mut self, track_id: TrackId, tx: &mut SendQueue, now: Instant) {
        let Some(track) = self.tracks.get_mut(&track_id) else {
            return;
        };
        if track.kind != MediaKind::Video {
            return;
        }
        if track
            .last_keyframe_request
            .is_some_and(|t| now.duration_since(t) < KEYFRAME_MIN_INTERVAL)
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
    fn send_reports(&mut self, tx: &mut SendQueue, _now: Instant) {
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

    fn housekeeping(&mut self, now: Instant) {
        for (&track, t) in self.tracks.iter_mut() {
            let Some(layer) = t.layer.as_mut() else {
                continue;
            };
            if !layer.stalled && now.saturating_duration_since(layer.last) >= LAYER_STALL {
                layer.stalled = true;
                let _ = self.events.try_send(Event::LayerActive {
                    track,
                    active: false,
                });
            }
        }
        let mut expired = Vec::new();
        for s in self.sessions.iter().flatten() {
            if s.consent.expired(now) {
                expired.push(s.id);
            }
        }
        for id in expired {
            self.counters.consent_expired += 1;
            self.remove_session(id);
            let _ = self.events.try_send(Event::ConsentExpired { session: id });
        }
        self.counters.sessions = self.by_id.len() as u64;
    }

    fn handle_commands(&mut self, commands: &Receiver<Command>, tx: &mut SendQueue, now: Instant) {
        for _ in 0..COMMANDS_PER_TURN {
            let Ok(cmd) = commands.try_recv() else { break };
            self.command(cmd, tx, now);
        }
    }

    fn command(&mut self, cmd: Command, tx: &mut SendQueue, now: Instant) {
        match cmd {
            Command::AddSession { id, ice } => {
                if self.by_id.contains_key(&id) {
                    return;
                }
                let ufrag: Box<[u8]> = ice.local_ufrag.as_bytes().into();
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
                self.by_ufrag.insert(ufrag, slot);
                self.counters.sessions = self.by_id.len() as u64;
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
                // RTX numbering starts at a value derived from the (random) RTX SSRC.
                let rtx_seq = params.rtx.map_or(0, |(ssrc, _)| (ssrc >> 8) as u16);
                t.subscribers.push(Subscription {
                    session: slot,
                    params,
                    packets: 0,
                    octets: 0,
                    last_rtp_ts: 0,
                    last_seq: 0,
                    rtx_seq,
                    switch: state,
                });
                if let Some(s) = self.sessions[slot].as_mut() {
                    if !s.subscribed.contains(&track) {
                        s.subscribed.push(track);
                    }
                }
                // A new subscriber needs a keyframe to start decoding.
                self.request_keyframe(track, tx, now);
            }
            Command::Unsubscribe { session, track } => {
                let Some(&slot) = self.by_id.get(&session) else {
                    return;
                };
                self.unsubscribe_slot(slot, track);
            }
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

    fn session(&self, id: SessionId) -> Option<&Session> {
        self.by_id.get(&id).and_then(|&i| self.sessions[i].as_ref())
    }

    fn session_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        let i = *self.by_id.get(&id)?;
        self.sessions[i].as_mut()
    }

    /// Ends the layer switches whose new layer started this turn: the replaced subscriptions
    /// and their handoffs go, so that the subscriber's RTCP (PLI, NACK) finds the new layer.
    fn finish_switches(&mut self) {
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
    fn prepare_switch(&mut self, slot: usize, to: TrackId, ssrc: u32) -> SwitchFrom {
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
            started: false,
        };
        if let Some(session) = self.sessions[slot].as_mut() {
            session.handoffs.push(handoff);
        }
        SwitchFrom::Layer
    }

    fn unsubscribe_slot(&mut self, slot: usize, track: TrackId) {
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

    fn remove_session(&mut self, id: SessionId) {
        let Some(slot) = self.by_id.remove(&id) else {
            return;
        };
        let Some(session) = self.sessions[slot].take() else {
            return;
        };
        self.free_slots.push(slot);
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
enum SwitchFrom {
    /// The session receives nothing under that SSRC: a plain subscription.
    Nothing,
    /// It already receives that layer.
    Same,
    /// Another layer, now marked as replaced.
    Layer,
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        _ => a.or(b),
    }
}

fn count_srtp_error(counters: &mut Counters, e: SrtpError) {
    match e {
        SrtpError::AuthFailed => counters.auth_failures += 1,
        SrtpError::Replayed => counters.replays += 1,
        _ => counters.srtp_errors += 1,
    }
}

/// Protects the RTCP compound of `len` bytes written into `tx`'s current slot and queues it for
/// `addr`; counts a refusal. True when queued.
fn commit_rtcp(
    tx: &mut SendQueue,
    ctx: &mut SrtpContext,
    addr: SocketAddr,
    len: usize,
    counters: &mut Counters,
) -> bool {
    // An uncommitted slot is handed out again: it still holds what the caller wrote.
    let Some(out) = tx.slot() else {
        counters.send_queue_full += 1;
        return false;
    };
    match ctx.protect_rtcp(out, len) {
        Ok(n) => {
            tx.commit(n, addr);
            counters.packets_out += 1;
            counters.bytes_out += n as u64;
            true
        }
        Err(e) => {
            count_srtp_error(counters, e);
            false
        }
    }
}

/// Sends queued beyond this many leave (one submit) before the fan-out goes on.
const FLUSH_EVERY: usize = 64;

/// Where fan-out queues its sends: the queue alone (inside a receive callback, where the I/O
/// is busy), or the whole I/O, which can also submit what is queued mid-fan-out.
trait Egress {
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
struct Fanout<'a> {
    tracks: &'a mut HashMap<TrackId, Track>,
    sessions: &'a mut [Option<Session>],
    counters: &'a mut Counters,
    /// `(session slot, subscriber SSRC)` of layer switches whose new layer started.
    switched: &'a mut Vec<(usize, u32)>,
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
                let Some(out) = tx.slot() else {
                    self.counters.send_queue_full += 1;
                    continue;
                };
                let room = out.len().saturating_sub(overhead);
                let Some(len) = sub.copy_rewritten(packet, &mut out[..room]) else {
                    self.counters.srtp_errors += 1;
                    continue;
                };
                let rtp_ts = u32::from_be_bytes([out[4], out[5], out[6], out[7]]);
                let rtp_seq = u16::from_be_bytes([out[2], out[3]]);
                match ctx.protect_rtp(out, len) {
                    Ok(n) => {
                        tx.commit(n, addr);
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

/// Whether a subscription in a layer switch sends the publisher's plaintext `packet`, moving
/// the switch along: the new layer starts at a keyframe, numbered on from where the old one
/// stopped; the old layer sends until then.
fn switch_admits(sub: &mut Subscription, packet: &[u8], handoffs: &mut [Handoff]) -> bool {
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
            sub.params.seq_offset = h.last_seq.wrapping_add(1).wrapping_sub(seq);
            sub.params.ts_offset = h.last_ts.wrapping_add(TS_STEP).wrapping_sub(ts);
            h.started = true;
            sub.switch = Some(Switch::Started { start: seq });
            true
        }
    }
}

/// The current wall-clock time as a 64-bit NTP timestamp (for sender reports).
fn ntp_now() -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}
