//! Per-worker counters and the relay-latency histogram, readable by the slow path while the
//! worker runs.
//!
//! The worker counts into a plain local struct and publishes it to atomics once per batch; it
//! records latency into a local HdrHistogram and, every 100 ms, merges it into the shared one
//! with a `try_lock` (never waiting): the reader takes a copy under the same lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use hdrhistogram::Histogram;

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident),* $(,)?) => {
        /// A worker's counters, as plain numbers.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct Counters { $($(#[doc = $doc])* pub $name: u64,)* }

        /// The published copy of a worker's counters.
        #[derive(Debug, Default)]
        pub struct SharedCounters { $($name: AtomicU64,)* }

        impl SharedCounters {
            /// Publishes `c` (relaxed stores; each counter is monotonic).
            pub fn publish(&self, c: &Counters) {
                $(self.$name.store(c.$name, Relaxed);)*
            }

            /// The last published counters.
            pub fn snapshot(&self) -> Counters {
                Counters { $($name: self.$name.load(Relaxed),)* }
            }
        }

        impl Counters {
            /// Each field's name and doc comment (its lines joined), for metrics' HELP.
            pub const DOCS: &'static [(&'static str, &'static str)] =
                &[$((stringify!($name), concat!($($doc),*)),)*];

            /// Field names and values, for metrics output.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }

            /// Adds `other` into `self` field by field.
            pub fn add(&mut self, other: &Counters) {
                $(self.$name += other.$name;)*
            }
        }
    };
}

counters! {
    /// Datagrams received.
    packets_in,
    /// Bytes received.
    bytes_in,
    /// Datagrams sent.
    packets_out,
    /// Bytes sent.
    bytes_out,
    /// Media packets relayed to subscribers (one per subscriber copy).
    media_out,
    /// Authenticated Binding requests answered.
    stun_answered,
    /// STUN datagrams dropped unanswered (unknown ufrag, bad integrity, …).
    stun_dropped,
    /// DTLS datagrams passed to the slow path.
    dtls_in,
    /// DTLS datagrams dropped (unvalidated source, full queue).
    dtls_dropped,
    /// SRTP/SRTCP packets whose tag failed.
    auth_failures,
    /// Replayed or too-old packets.
    replays,
    /// Other SRTP refusals (malformed, unknown SSRC, key expiry).
    srtp_errors,
    /// Packets from an address that has not passed STUN for any session.
    unvalidated_source,
    /// RTP/RTCP that arrived before the session had keys.
    no_keys,
    /// RTP on a session with no track for its SSRC.
    unknown_ssrc,
    /// Publisher SSRCs bound to a track by the MID their first packet carried (offers that
    /// listed no SSRCs).
    ssrcs_learned,
    /// Datagrams whose first byte is no protocol we speak.
    demux_other,
    /// Packets dropped because a fan-out ring was full.
    ring_full,
    /// Packets dropped because the shared pool had no buffer.
    pool_empty,
    /// Packets dropped because the send queue was full.
    send_queue_full,
    /// Packets received from other workers' rings.
    ring_in,
    /// Retransmissions sent in answer to NACKs.
    nack_retransmits,
    /// NACKed packets no longer in the cache.
    nack_misses,
    /// NACKs sent to publishers for packets the relay never received.
    upstream_nacks,
    /// Sequence numbers asked for in those NACKs (a packet asked for again counts again).
    upstream_nacked,
    /// Missing publisher packets that arrived after all (retransmitted or reordered).
    upstream_recovered,
    /// Missing publisher packets given up (NACKed too often, gap too wide, table full).
    upstream_lost,
    /// Transport-cc feedback packets sent to publishers.
    transport_feedback,
    /// Publisher RTX packets dropped: padding-only probes, or for packets nobody was missing.
    rtx_dropped,
    /// Simulcast layer switches completed (the new layer reached a keyframe).
    layer_switches,
    /// Packets left out for a subscriber: their spatial or temporal layer (VP8, VP9 payload
    /// descriptor) is above the one it gets.
    layer_dropped,
    /// Of those, packets that arrived late (reordered), leaving a gap in the subscriber's
    /// sequence numbers.
    layer_dropped_late,
    /// Packets left out for a subscriber whose video is paused (its path carries not even the
    /// lowest layer: `[media] below_lowest_layer = "pause"`), or waiting for the keyframe that
    /// ends the pause.
    paused_dropped,
    /// Keyframe requests (PLI/FIR) sent to publishers.
    keyframe_requests,
    /// Keyframe requests suppressed by the 500 ms limit.
    keyframe_suppressed,
    /// Binding requests sent to another node this worker pulls a stream from.
    ice_checks_sent,
    /// Authenticated answers to those requests.
    ice_checks_answered,
    /// RTCP reports (SR/RR) sent.
    reports_sent,
    /// Sessions whose consent expired.
    consent_expired,
    /// Transport-cc feedbacks from subscribers fed to their estimators.
    feedback_in,
    /// Transport-cc feedbacks from subscribers that did not parse (dropped).
    feedback_malformed,
    /// Feedback statuses for numbers no longer (or never) in the send history, or reported
    /// already.
    feedback_unknown,
    /// REMBs from subscribers fed to their estimators.
    remb_in,
    /// Probe clusters started for subscribers.
    probes,
    /// Probe packets sent (RTX re-sends at the probe's rate).
    probe_packets,
    /// Probes given up (no RTX stream, nothing cached, or the send queue full).
    probes_failed,
    /// Events to the slow path dropped on a full queue (estimates, layer rates).
    events_dropped,
    /// Sessions currently installed.
    sessions,
    /// UDP GSO sends.
    gso_sends,
    /// Send errors reported by the I/O layer.
    send_errors,
    /// xdp: frames the kernel could not receive because the fill ring was empty.
    xdp_fill_ring_empty,
    /// xdp: frames the kernel dropped on receive (RX ring full, invalid descriptors).
    xdp_rx_dropped,
    /// xdp: turns that left packets queued because the TX ring was full.
    xdp_tx_ring_full,
    /// xdp: datagrams that arrived on this worker's queue for another worker, handed over.
    xdp_handed_over,
    /// xdp: hand-overs dropped (the owner's inbox was full).
    xdp_handover_dropped,
    /// xdp: packets dropped for want of a next-hop MAC (the peer was never answered).
    xdp_no_neighbour,
    /// Loop iterations (batches).
    batches,
    /// ICE-TCP connections open now.
    tcp_connections,
    /// Sessions whose validated path is an ICE-TCP connection, now.
    tcp_sessions,
    /// ICE-TCP connections accepted.
    tcp_accepted,
    /// ICE-TCP connections refused: the worker had `tcp_max_connections`.
    tcp_rejected_worker_limit,
    /// ICE-TCP connections refused: the client address had `tcp_connections_per_ip`.
    tcp_rejected_ip_limit,
    /// ICE-TCP connections closed by the peer.
    tcp_closed_peer,
    /// ICE-TCP connections closed: a frame of no protocol Tern speaks, or an empty one.
    tcp_closed_garbage,
    /// ICE-TCP connections closed: a length prefix larger than the largest packet.
    tcp_closed_oversized,
    /// ICE-TCP connections closed: non-STUN before authentication, or nothing authenticated
    /// in time.
    tcp_closed_unauthenticated,
    /// ICE-TCP connections closed: idle.
    tcp_closed_idle,
    /// ICE-TCP connections closed: a socket error.
    tcp_closed_error,
    /// Bytes received on ICE-TCP connections (framing included).
    tcp_bytes_in,
    /// Bytes sent on ICE-TCP connections (framing included).
    tcp_bytes_out,
    /// Frames received on ICE-TCP connections.
    tcp_frames_in,
    /// Frames queued on ICE-TCP connections.
    tcp_frames_out,
    /// Packets for an ICE-TCP connection dropped: its send buffer was full (a slow reader).
    tcp_dropped_send_buffer_full,
    /// Packets for an ICE-TCP connection dropped: it was closed.
    tcp_dropped_closed,
}

impl Counters {
    /// Takes the xdp backend's counters from the I/O layer's (all zero for other backends).
    pub(crate) fn copy_xdp(&mut self, io: &super::io::IoStats) {
        self.xdp_fill_ring_empty = io.xdp_fill_ring_empty;
        self.xdp_rx_dropped = io.xdp_rx_dropped;
        self.xdp_tx_ring_full = io.xdp_tx_ring_full;
        self.xdp_handed_over = io.xdp_handed_over;
        self.xdp_handover_dropped = io.xdp_handover_dropped;
        self.xdp_no_neighbour = io.xdp_no_neighbour;
    }
}

/// Histogram bounds: 1 ns to 10 s, 3 significant digits.
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3)
        .unwrap_or_else(|_| unreachable!("valid bounds"))
}

/// What the slow path reads: counters, the I/O mode and the latency histogram.
#[derive(Debug)]
pub struct WorkerStats {
    /// Published counters.
    pub counters: SharedCounters,
    /// Relay latency in ns (receive → send submitted), merged from the worker every 100 ms.
    pub latency: Mutex<Histogram<u64>>,
    /// "uring", "mmsg" or "xdp".
    pub io_mode: &'static str,
}

impl WorkerStats {
    /// Empty stats for a worker using `io_mode`.
    pub fn new(io_mode: &'static str) -> Self {
        Self {
            counters: SharedCounters::default(),
            latency: Mutex::new(new_latency_histogram()),
            io_mode,
        }
    }

    /// A copy of the latency histogram so far.
    pub fn latency_snapshot(&self) -> Histogram<u64> {
        match self.latency.lock() {
            Ok(h) => h.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}
