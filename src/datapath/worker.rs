//! The worker loop: one pinned thread that owns a UDP socket, its io_uring (or mmsg) I/O, its
//! sessions and tracks, and relays SRTP for them.
//!
//! Per batch: receive, demux (RFC 7983), answer authenticated STUN, pass DTLS from validated
//! addresses to the slow path, unprotect SRTP once, fan out (copy + rewrite + protect per local
//! subscriber, one shared copy per other worker), then one submit for all sends. Commands,
//! rings from other workers and timers are handled between batches. Nothing per packet
//! allocates, locks, logs or makes a syscall; every drop is counted.

//!
//! The loop and the state it owns are here; what it does with them is split by concern, as
//! str0m splits its session: `receive` (demux, STUN, DTLS hand-off, unprotect, RTCP in),
//! `forward` (cache, rings, fan-out, layer switches per packet), `feedback` (NACK answers,
//! transport-cc and NACKs upstream, keyframe requests, SR/RR) and `commands` (the session table
//! and what the slow path asks of it).

mod commands;
mod congestion;
mod feedback;
mod forward;
mod receive;
mod tcp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};
use hdrhistogram::Histogram;

use super::command::{Command, Event};
use super::fanout::{FanoutMsg, PacketPool, Rings};
use super::io::{SendQueue, UdpIo, Waker};
use super::session::{Session, Track};
use super::stats::{new_latency_histogram, Counters, WorkerStats};
use super::throttle::{DropWarning, Throttle};
use super::{SessionId, TrackId};
use crate::srtp::{SrtpContext, SrtpError};
use crate::wire::demux::{classify, PacketKind};

const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(100);
/// A simulcast layer with no packet for this long is reported stopped.
pub const LAYER_STALL: Duration = Duration::from_secs(1);
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// Transport-cc feedback interval (libwebrtc's receivers send every 50–250 ms).
const FEEDBACK_EVERY: Duration = Duration::from_millis(50);
const MAX_WAIT: Duration = Duration::from_millis(100);
/// At most one log line per this long about a failing socket (the counter counts each error).
const IO_WARN_EVERY: Duration = Duration::from_secs(10);
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
        next_probe: None,
        epoch: setup.epoch,
        switched: Vec::with_capacity(64),
        upstreams: Vec::new(),
        next_check: None,
    };
    let mut next_housekeeping = Instant::now();
    let mut next_report = Instant::now() + REPORT_EVERY;
    let mut next_feedback = Instant::now() + FEEDBACK_EVERY;
    let epoch = setup.epoch;
    let panic_at = setup.panic_after.map(|d| Instant::now() + d);
    let (mut io_warning, mut drop_warning) = (Throttle::new(IO_WARN_EVERY), DropWarning::new());
    while !stop.load(Ordering::Relaxed) {
        let mut received: Option<Instant> = None;
        core.egress = 0;
        // One submit per turn: the sends queued in the previous turn leave with this wait.
        // Idle, the wait ends in time for the next upstream NACK.
        let wait = earliest(earliest(core.next_nack, core.next_probe), core.next_check)
            .map_or(MAX_WAIT, |t| {
                t.saturating_duration_since(Instant::now()).min(MAX_WAIT)
            });
        let result = io.run_once(wait, |buf, src, tx| {
            let now = *received.get_or_insert_with(Instant::now);
            core.on_datagram(buf, src, tx, now);
        });
        if let Err(e) = result {
            core.counters.send_errors += 1;
            if let Some(held_back) = io_warning.allow(Instant::now()) {
                tracing::warn!(worker = id, held_back, "worker I/O error: {e}");
            }
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
        if core.next_probe.is_some_and(|t| Instant::now() >= t) {
            core.send_probes(&mut io.tx, Instant::now());
        }
        if core.next_check.is_some_and(|t| now >= t) {
            core.send_checks(&mut io.tx, now);
        }
        if now >= next_feedback {
            next_feedback = now + FEEDBACK_EVERY;
            core.send_transport_feedback(&mut io.tx);
        }
        if now >= next_report {
            let span = now.saturating_duration_since(next_report) + REPORT_EVERY;
            next_report = now + REPORT_EVERY;
            core.send_reports(&mut io.tx, now);
            core.report_estimates(now);
            core.report_layer_rates(span);
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
            drop_warning.check(id, &core.counters, now);
            io.housekeeping(now);
            let io_stats = io.stats();
            core.count_tcp(&io_stats.tcp);
            core.counters.gso_sends = io_stats.gso_sends;
            core.counters.copy_xdp(&io_stats);
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
    /// When some subscriber's probe has its next packet due.
    next_probe: Option<Instant>,
    /// Arrival times for transport-cc are µs since this instant.
    epoch: Instant,
    /// Layer switches whose new layer started this turn (see `finish_switches`).
    switched: Vec<(usize, u32)>,
    /// Slots of the sessions this worker opened towards other nodes (pulls), which it checks.
    upstreams: Vec<usize>,
    /// When the next of their checks is due.
    next_check: Option<Instant>,
}

impl Core {
    pub(super) fn on_datagram(
        &mut self,
        buf: &mut [u8],
        src: SocketAddr,
        tx: &mut SendQueue,
        now: Instant,
    ) {
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

    pub(super) fn housekeeping(&mut self, now: Instant) {
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
}

/// Microseconds from `epoch` to now: the worker's clock for send times and arrivals.
fn micros_since(epoch: Instant) -> i64 {
    Instant::now().saturating_duration_since(epoch).as_micros() as i64
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
