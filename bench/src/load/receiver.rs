//! The subscribers' side of the media: receiver threads that wait on many subscriber sockets at
//! once (epoll through `mio`), read them in batches (`recvmmsg`) with the kernel's receive
//! timestamp of each datagram (`SO_TIMESTAMPNS`, so the thread's own scheduling delay is not
//! counted as the server's latency), unprotect SRTP, and keep per-subscriber statistics — one-way
//! latency from the payload's send time, loss by the publisher's per-track sequence numbers
//! (late arrivals fill their gap), duplicates, reordering — and send a generic NACK (SRTCP) for
//! every gap in the RTP sequence numbers, counting the retransmissions that answer it.
//!
//! A receiver thread owns its subscribers' sockets and SRTP contexts; it shares nothing but a
//! few relaxed atomics for the live progress line. Garbage from the network is counted and
//! dropped, never a panic.

use std::collections::BTreeSet;
use std::io::{ErrorKind, IoSliceMut};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};
use nix::errno::Errno;
use nix::sys::socket::{
    recvmmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage,
};
use tern::srtp::{SrtpContext, SrtpError};
use tern::wire::demux::{classify, PacketKind};
use tern::wire::rtcp::write_nack_lost;
use tern::wire::rtp::RtpPacket;

use super::media::{clock_ns, now_ns, PayloadHeader, TrackProgress, CONSENT_INTERVAL};
use super::sdp::TrackKind;
use super::session::IceClient;

/// Highest latency recorded, in µs (larger values are clamped).
pub const MAX_LATENCY_US: u64 = 60_000_000;
/// Largest RTP sequence gap that is NACKed (a bigger jump is a restart, not loss).
const MAX_NACK_GAP: u64 = 256;
/// Bits of sequence-number history kept per track (a run longer than this stops counting).
const MAX_SEQ_HISTORY: usize = 1 << 26;
/// Datagrams read per `recvmmsg`.
const BATCH: usize = 32;
/// Bytes per receive buffer (longer datagrams are truncated and dropped).
const BUF_LEN: usize = 2048;
/// Receive buffer asked for on each subscriber socket (capped by `net.core.rmem_max` unless we
/// may force it), so a fan-out burst is not dropped in the kernel.
const RCVBUF: usize = 1 << 20;

/// CLOCK_REALTIME in ns (the clock of `SO_TIMESTAMPNS`).
fn realtime_ns() -> u64 {
    clock_ns(nix::time::ClockId::CLOCK_REALTIME)
}

/// Receive buffers and headers for one `recvmmsg`, and what it returned.
struct Batch {
    bufs: Vec<[u8; BUF_LEN]>,
    headers: MultiHeaders<SockaddrStorage>,
    /// Datagram lengths (0: truncated, drop).
    lens: [usize; BATCH],
    /// Kernel receive times, CLOCK_REALTIME ns.
    stamps: [Option<u64>; BATCH],
}

impl Batch {
    fn new() -> Batch {
        // Room for one SCM_TIMESTAMPNS (CMSG_SPACE(16) is 32 on 64-bit Linux) and then some.
        Batch {
            bufs: vec![[0; BUF_LEN]; BATCH],
            headers: MultiHeaders::preallocate(BATCH, Some(Vec::with_capacity(64))),
            lens: [0; BATCH],
            stamps: [None; BATCH],
        }
    }

    /// Reads up to `BATCH` datagrams without blocking; returns how many.
    fn recv(&mut self, fd: RawFd) -> nix::Result<usize> {
        let Batch {
            bufs,
            headers,
            lens,
            stamps,
        } = self;
        let iovs: Vec<[IoSliceMut<'_>; 1]> = bufs
            .iter_mut()
            .map(|b| [IoSliceMut::new(&mut b[..])])
            .collect();
        let results = recvmmsg(fd, headers, iovs.iter(), MsgFlags::MSG_DONTWAIT, None)?;
        let mut n = 0;
        for r in results {
            if n >= BATCH {
                break;
            }
            lens[n] = if r.flags.contains(MsgFlags::MSG_TRUNC) {
                0
            } else {
                r.bytes
            };
            stamps[n] = r.cmsgs().find_map(|c| match c {
                ControlMessageOwned::ScmTimestampns(ts) => {
                    Some((ts.tv_sec() as u64) * 1_000_000_000 + ts.tv_nsec() as u64)
                }
                _ => None,
            });
            n += 1;
        }
        Ok(n)
    }
}

/// A latency histogram in µs, 3 significant figures.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

/// Run-wide switches and the live counters the progress line reads.
#[derive(Debug, Default)]
pub struct Control {
    /// Statistics count while this is set.
    pub measuring: AtomicBool,
    /// Receivers return when this is set.
    pub stop: AtomicBool,
    /// [`now_ns`] when measuring began (the timeline's zero).
    pub window_start_ns: AtomicU64,
    /// Media packets received in the window, all subscribers.
    pub live_packets: AtomicU64,
    /// Their bytes.
    pub live_bytes: AtomicU64,
    /// p50 and p99 latency (µs) of the last second, the worst receiver thread's.
    pub live_p50_us: AtomicU64,
    /// See `live_p50_us`.
    pub live_p99_us: AtomicU64,
    /// Subscribers that have received their first media packet.
    pub with_media: AtomicU64,
    /// Simulated network loss: drop this many RTP datagrams per million on receipt, before
    /// decryption (exercises NACK and retransmission).
    pub drop_ppm: u32,
}

/// One received track of a subscriber.
#[derive(Debug)]
pub struct RxTrack {
    /// Audio or video.
    pub kind: TrackKind,
    /// The SSRC the server sends it with.
    pub server_ssrc: u32,
    /// Our SSRC for this section (sender SSRC of our RTCP).
    pub local_ssrc: u32,
    /// The publisher's progress on the matching track.
    pub progress: Arc<TrackProgress>,
    base: Option<u32>,
    bits: Vec<u64>,
    highest_rtp: Option<u64>,
    nacked: BTreeSet<u64>,
    /// Packets that carried our payload header.
    pub packets: u64,
}

impl RxTrack {
    /// A track nothing has arrived on yet.
    pub fn new(
        kind: TrackKind,
        server_ssrc: u32,
        local_ssrc: u32,
        progress: Arc<TrackProgress>,
    ) -> Self {
        RxTrack {
            kind,
            server_ssrc,
            local_ssrc,
            progress,
            base: None,
            bits: Vec::new(),
            highest_rtp: None,
            nacked: BTreeSet::new(),
            packets: 0,
        }
    }

    /// Marks payload sequence `seq` received; false if it was already.
    fn mark(&mut self, seq: u32) -> bool {
        let base = *self.base.get_or_insert(seq);
        if seq < base {
            // Sent before the first one we saw: outside any window we can judge.
            return true;
        }
        let i = (seq - base) as usize;
        if i >= MAX_SEQ_HISTORY {
            return true;
        }
        if self.bits.len() <= i / 64 {
            self.bits.resize(i / 64 + 1, 0);
        }
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        let fresh = self.bits[word] & bit == 0;
        self.bits[word] |= bit;
        fresh
    }

    fn has(&self, seq: u32) -> bool {
        let Some(base) = self.base else { return false };
        if seq < base {
            return false;
        }
        let i = (seq - base) as usize;
        self.bits
            .get(i / 64)
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    /// `(expected, received)` payload sequence numbers in the publisher's measurement window.
    pub fn window_counts(&self) -> (u64, u64) {
        let start = self.progress.window_start.load(Ordering::Relaxed);
        let end = self.progress.window_end.load(Ordering::Relaxed);
        let expected = u64::from(end.saturating_sub(start));
        let received = (start..end).filter(|&s| self.has(s)).count() as u64;
        (expected, received)
    }
}

/// What one subscriber measured (window only, except where noted).
#[derive(Debug)]
pub struct SubscriberStats {
    /// Media packets received.
    pub packets: u64,
    /// Their bytes (SRTP size).
    pub bytes: u64,
    /// One-way latency, µs (first arrivals only; retransmissions are counted, not timed).
    pub latency: Histogram<u64>,
    /// Packets received twice (including SRTP replays).
    pub duplicates: u64,
    /// Packets that arrived after a later one, not as a retransmission.
    pub reordered: u64,
    /// Packets that filled a gap we had NACKed.
    pub retransmissions: u64,
    /// NACK packets sent (whole run).
    pub nacks_sent: u64,
    /// Sequence numbers NACKed (whole run).
    pub nacked_packets: u64,
    /// SRTP failures other than replays (whole run).
    pub srtp_errors: u64,
    /// RTCP packets received (whole run).
    pub rtcp_received: u64,
    /// Datagrams that were not ours: unknown SSRC, no payload header, other protocols.
    pub foreign: u64,
    /// [`now_ns`] of the first media packet (whole run).
    pub first_packet_ns: Option<u64>,
    /// Datagrams without a kernel receive timestamp (timed in user space instead).
    pub user_timestamps: u64,
    /// RTP datagrams dropped on purpose (`Control::drop_ppm`) while measuring.
    pub simulated_drops: u64,
}

impl Default for SubscriberStats {
    fn default() -> Self {
        SubscriberStats {
            packets: 0,
            bytes: 0,
            latency: new_histogram(),
            duplicates: 0,
            reordered: 0,
            retransmissions: 0,
            nacks_sent: 0,
            nacked_packets: 0,
            srtp_errors: 0,
            rtcp_received: 0,
            foreign: 0,
            first_packet_ns: None,
            user_timestamps: 0,
            simulated_drops: 0,
        }
    }
}

/// A connected subscriber.
#[derive(Debug)]
pub struct Subscriber {
    /// Index in the run's subscriber list.
    pub index: usize,
    socket: mio::net::UdpSocket,
    rx: SrtpContext,
    tx: SrtpContext,
    ice: IceClient,
    next_consent_ns: u64,
    /// The tracks it receives.
    pub tracks: Vec<RxTrack>,
    /// What it measured.
    pub stats: SubscriberStats,
}

impl Subscriber {
    /// Wraps a connected, non-blocking socket.
    pub fn new(
        index: usize,
        socket: std::net::UdpSocket,
        tx: SrtpContext,
        rx: SrtpContext,
        ice: IceClient,
        tracks: Vec<RxTrack>,
    ) -> Subscriber {
        // Best effort: without them latency falls back to user-space receive times, and a burst
        // may overflow the default buffer.
        let fd = socket.as_raw_fd();
        let _ = setsockopt(fd, sockopt::ReceiveTimestampns, &true);
        if setsockopt(fd, sockopt::RcvBufForce, &RCVBUF).is_err() {
            let _ = setsockopt(fd, sockopt::RcvBuf, &RCVBUF);
        }
        Subscriber {
            index,
            socket: mio::net::UdpSocket::from_std(socket),
            rx,
            tx,
            ice,
            next_consent_ns: now_ns() + CONSENT_INTERVAL.as_nanos() as u64,
            tracks,
            stats: SubscriberStats::default(),
        }
    }
}

/// Packets, bytes and latency of one second of the window.
#[derive(Debug)]
pub struct Second {
    /// Media packets received.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Their latency, µs.
    pub latency: Histogram<u64>,
}

impl Default for Second {
    fn default() -> Self {
        Second {
            packets: 0,
            bytes: 0,
            latency: new_histogram(),
        }
    }
}

/// What a receiver thread hands back.
#[derive(Debug)]
pub struct ReceiverOutput {
    /// Its subscribers, with their statistics.
    pub subscribers: Vec<Subscriber>,
    /// Per second of the window.
    pub timeline: Vec<Second>,
}

/// Receives for `subscribers` until `control.stop` is set.
pub fn run_receiver(
    mut subscribers: Vec<Subscriber>,
    control: &Control,
) -> std::io::Result<ReceiverOutput> {
    let mut poll = Poll::new()?;
    for (i, s) in subscribers.iter_mut().enumerate() {
        poll.registry()
            .register(&mut s.socket, Token(i), Interest::READABLE)?;
    }
    let mut events = Events::with_capacity(256);
    let mut batch = Batch::new();
    let mut out = vec![0u8; 1500];
    let mut state = ThreadState {
        timeline: Vec::new(),
        interval: new_histogram(),
        pending_packets: 0,
        pending_bytes: 0,
        first_arrivals: 0,
        drop_ppm: control.drop_ppm,
    };
    let mut next_tick = now_ns() + 1_000_000_000;
    while !control.stop.load(Ordering::Relaxed) {
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(20))) {
            if e.kind() != ErrorKind::Interrupted {
                return Err(e);
            }
        }
        let measuring = control.measuring.load(Ordering::Relaxed);
        let window = measuring.then(|| control.window_start_ns.load(Ordering::Relaxed));
        // Kernel timestamps are CLOCK_REALTIME; payloads carry CLOCK_MONOTONIC.
        let offset = i128::from(realtime_ns()) - i128::from(now_ns());
        for ev in events.iter() {
            let Some(sub) = subscribers.get_mut(ev.token().0) else {
                continue;
            };
            let fd = sub.socket.as_raw_fd();
            loop {
                let n = match batch.recv(fd) {
                    Ok(n) => n,
                    Err(Errno::EINTR) => continue,
                    Err(Errno::EAGAIN) => break,
                    // ICMP errors on a connected socket (server gone): counted, not fatal.
                    Err(_) => {
                        sub.stats.foreign += 1;
                        break;
                    }
                };
                let fallback = now_ns();
                for i in 0..n {
                    let len = batch.lens[i];
                    if len == 0 {
                        sub.stats.foreign += 1;
                        continue;
                    }
                    let at = match batch.stamps[i] {
                        Some(rt) => (i128::from(rt) - offset).max(0) as u64,
                        None => {
                            sub.stats.user_timestamps += 1;
                            fallback
                        }
                    };
                    on_datagram(
                        sub,
                        &mut batch.bufs[i][..len],
                        at,
                        window,
                        &mut state,
                        &mut out,
                    );
                }
                // Fewer than a full batch: the queue is empty, and the next arrival raises a
                // new edge.
                if n < BATCH {
                    break;
                }
            }
        }
        control.live_packets.fetch_add(
            std::mem::take(&mut state.pending_packets),
            Ordering::Relaxed,
        );
        control
            .live_bytes
            .fetch_add(std::mem::take(&mut state.pending_bytes), Ordering::Relaxed);
        control
            .with_media
            .fetch_add(std::mem::take(&mut state.first_arrivals), Ordering::Relaxed);
        let now = now_ns();
        if now >= next_tick {
            next_tick = now + 1_000_000_000;
            if !state.interval.is_empty() {
                control
                    .live_p50_us
                    .fetch_max(state.interval.value_at_quantile(0.5), Ordering::Relaxed);
                control
                    .live_p99_us
                    .fetch_max(state.interval.value_at_quantile(0.99), Ordering::Relaxed);
            }
            state.interval.reset();
            for sub in subscribers.iter_mut() {
                if sub.next_consent_ns <= now {
                    let n = sub.ice.request(&mut out);
                    let _ = sub.socket.send(&out[..n]);
                    sub.next_consent_ns = now + CONSENT_INTERVAL.as_nanos() as u64;
                }
            }
        }
    }
    Ok(ReceiverOutput {
        subscribers,
        timeline: state.timeline,
    })
}

struct ThreadState {
    timeline: Vec<Second>,
    interval: Histogram<u64>,
    pending_packets: u64,
    pending_bytes: u64,
    first_arrivals: u64,
    drop_ppm: u32,
}

/// One datagram for `sub`. `window` is the measurement start when measuring.
fn on_datagram(
    sub: &mut Subscriber,
    buf: &mut [u8],
    now: u64,
    window: Option<u64>,
    state: &mut ThreadState,
    out: &mut [u8],
) {
    let wire_len = buf.len() as u64;
    match classify(buf) {
        PacketKind::Rtp
            if state.drop_ppm > 0 && rand::random::<u32>() % 1_000_000 < state.drop_ppm =>
        {
            sub.stats.simulated_drops += u64::from(window.is_some());
            return;
        }
        PacketKind::Rtp => {}
        PacketKind::Rtcp => {
            sub.stats.rtcp_received += 1;
            return;
        }
        PacketKind::Stun | PacketKind::Dtls => return,
        PacketKind::Other => {
            sub.stats.foreign += 1;
            return;
        }
    }
    let len = match sub.rx.unprotect_rtp(buf) {
        Ok(len) => len,
        Err(SrtpError::Replayed) => {
            if window.is_some() {
                sub.stats.duplicates += 1;
            }
            return;
        }
        Err(_) => {
            sub.stats.srtp_errors += 1;
            return;
        }
    };
    let Ok(rtp) = RtpPacket::parse(&buf[..len]) else {
        sub.stats.foreign += 1;
        return;
    };
    let Some(t) = sub.tracks.iter().position(|t| t.server_ssrc == rtp.ssrc()) else {
        sub.stats.foreign += 1;
        return;
    };
    let Some(header) = PayloadHeader::parse(rtp.payload()) else {
        sub.stats.foreign += 1;
        return;
    };
    let rtp_seq = rtp.sequence_number();
    if sub.stats.first_packet_ns.is_none() {
        sub.stats.first_packet_ns = Some(now);
        state.first_arrivals += 1;
    }
    let retransmission = track_rtp_seq(sub, t, rtp_seq, out);
    let track = &mut sub.tracks[t];
    let fresh = track.mark(header.seq);
    track.packets += 1;
    let Some(window_start) = window else {
        return;
    };
    let stats = &mut sub.stats;
    if !fresh {
        stats.duplicates += 1;
        return;
    }
    stats.packets += 1;
    stats.bytes += wire_len;
    state.pending_packets += 1;
    state.pending_bytes += wire_len;
    let second = (now.saturating_sub(window_start) / 1_000_000_000) as usize;
    if state.timeline.len() <= second && second < 3600 {
        state.timeline.resize_with(second + 1, Second::default);
    }
    match retransmission {
        RtpOrder::Retransmission => {
            stats.retransmissions += 1;
            if let Some(s) = state.timeline.get_mut(second) {
                s.packets += 1;
                s.bytes += wire_len;
            }
            return;
        }
        RtpOrder::Reordered => stats.reordered += 1,
        RtpOrder::InOrder => {}
    }
    let us = (now.saturating_sub(header.sent_ns) / 1000).clamp(1, MAX_LATENCY_US);
    stats.latency.saturating_record(us);
    state.interval.saturating_record(us);
    if let Some(s) = state.timeline.get_mut(second) {
        s.packets += 1;
        s.bytes += wire_len;
        s.latency.saturating_record(us);
    }
}

enum RtpOrder {
    InOrder,
    Reordered,
    Retransmission,
}

/// Extends the RTP sequence number, NACKs any gap it opens, and says how this one arrived.
fn track_rtp_seq(sub: &mut Subscriber, t: usize, seq: u16, out: &mut [u8]) -> RtpOrder {
    let track = &mut sub.tracks[t];
    let Some(highest) = track.highest_rtp else {
        track.highest_rtp = Some(u64::from(seq) + (1 << 16));
        return RtpOrder::InOrder;
    };
    let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
    let ext = (highest as i64 + delta).max(0) as u64;
    if ext <= highest {
        if track.nacked.remove(&ext) {
            return RtpOrder::Retransmission;
        }
        return RtpOrder::Reordered;
    }
    track.highest_rtp = Some(ext);
    let gap = ext - highest - 1;
    if gap > 0 && gap <= MAX_NACK_GAP {
        let mut lost = [0u16; MAX_NACK_GAP as usize];
        for (i, s) in (highest + 1..ext).enumerate() {
            track.nacked.insert(s);
            lost[i] = s as u16;
        }
        let (sender, media) = (track.local_ssrc, track.server_ssrc);
        // Forget NACKs too old to be answered.
        while track.nacked.first().is_some_and(|&s| s + 4096 < ext) {
            track.nacked.pop_first();
        }
        send_nack(sub, sender, media, &lost[..gap as usize], out);
    }
    RtpOrder::InOrder
}

fn send_nack(sub: &mut Subscriber, sender: u32, media: u32, lost: &[u16], out: &mut [u8]) {
    let overhead = sub.tx.profile().rtcp_overhead();
    let Some(room) = out.len().checked_sub(overhead) else {
        return;
    };
    let Ok(n) = write_nack_lost(&mut out[..room], sender, media, lost) else {
        return;
    };
    if let Ok(m) = sub.tx.protect_rtcp(out, n) {
        if sub.socket.send(&out[..m]).is_ok() {
            sub.stats.nacks_sent += 1;
            sub.stats.nacked_packets += lost.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track() -> RxTrack {
        RxTrack::new(TrackKind::Audio, 1, 2, Arc::default())
    }

    #[test]
    fn late_arrivals_fill_gaps_and_repeats_are_duplicates() {
        let mut t = track();
        assert!(t.mark(10));
        assert!(t.mark(12));
        assert!(!t.mark(12));
        t.progress.window_start.store(10, Ordering::Relaxed);
        t.progress.window_end.store(14, Ordering::Relaxed);
        assert_eq!(t.window_counts(), (4, 2));
        assert!(t.mark(11));
        assert!(t.mark(13));
        assert_eq!(t.window_counts(), (4, 4));
        // Before the first one seen: ignored, never counted as received.
        assert!(t.mark(3));
        assert!(!t.has(3));
    }

    #[test]
    fn window_before_the_first_arrival_counts_as_lost() {
        let mut t = track();
        t.mark(100);
        t.progress.window_start.store(90, Ordering::Relaxed);
        t.progress.window_end.store(101, Ordering::Relaxed);
        assert_eq!(t.window_counts(), (11, 1));
    }
}
