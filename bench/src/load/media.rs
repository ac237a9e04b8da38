//! Synthetic media and the publishers that send it.
//!
//! Audio is Opus-shaped (50 packets/s of 100–160 bytes); video is VP8-shaped (one burst of
//! ≤1200-byte packets per frame at the target bitrate and frame rate, with a keyframe 3–5× the
//! size of a delta frame every keyframe interval; a PLI or FIR from the server brings the next
//! keyframe forward). Every payload starts with a 16-byte [`PayloadHeader`]: a magic, the
//! track, a per-track sequence number and the CLOCK_MONOTONIC send time in nanoseconds, which
//! the subscribers on the same host turn into one-way latency and loss.
//!
//! A sender thread owns a group of publishers: it paces them with sleeps, protects with SRTP
//! and sends on each publisher's connected socket, refreshes ICE consent and reads (and counts)
//! what the server sends back. It never blocks on a socket and never allocates per packet.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tern::srtp::SrtpContext;
use tern::wire::demux::{classify, PacketKind};
use tern::wire::rtcp::{Rtcp, RtcpIter};

use super::sdp::{TrackKind, OPUS_PT, VP8_PT};
use super::session::IceClient;

/// First two payload bytes of every generated packet.
pub const MAGIC: [u8; 2] = *b"TL";
/// Length of [`PayloadHeader`].
pub const HEADER_LEN: usize = 16;
/// Largest payload of a video packet.
pub const MAX_VIDEO_PAYLOAD: usize = 1200;
/// How often ICE consent is refreshed (RFC 7675 asks for about every 5 s).
pub const CONSENT_INTERVAL: Duration = Duration::from_secs(5);

/// Nanoseconds of CLOCK_MONOTONIC: the clock every send and receive time is read from.
pub fn now_ns() -> u64 {
    clock_ns(nix::time::ClockId::CLOCK_MONOTONIC)
}

/// Nanoseconds of `clock` (0 if the clock cannot be read, which Linux never does for the
/// clocks used here).
pub fn clock_ns(clock: nix::time::ClockId) -> u64 {
    nix::time::clock_gettime(clock)
        .map(|t| {
            (t.tv_sec() as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(t.tv_nsec() as u64)
        })
        .unwrap_or(0)
}

/// The 16 bytes at the start of every payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadHeader {
    /// Audio or video.
    pub kind: TrackKind,
    /// This packet belongs to a keyframe.
    pub keyframe: bool,
    /// Per-track sequence number, from 0, never wrapping within a run.
    pub seq: u32,
    /// [`now_ns`] just before the packet was protected and sent.
    pub sent_ns: u64,
}

impl PayloadHeader {
    /// Writes the header into the first 16 bytes of `out` (which must be that long).
    pub fn write(&self, out: &mut [u8]) {
        if out.len() < HEADER_LEN {
            return;
        }
        out[..2].copy_from_slice(&MAGIC);
        out[2] = match self.kind {
            TrackKind::Audio => 0,
            TrackKind::Video => 1,
        };
        out[3] = u8::from(self.keyframe);
        out[4..8].copy_from_slice(&self.seq.to_be_bytes());
        out[8..16].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// Reads a header, or `None` if `payload` is not one of ours.
    pub fn parse(payload: &[u8]) -> Option<PayloadHeader> {
        let h = payload.get(..HEADER_LEN)?;
        if h[..2] != MAGIC {
            return None;
        }
        let kind = match h[2] {
            0 => TrackKind::Audio,
            1 => TrackKind::Video,
            _ => return None,
        };
        Some(PayloadHeader {
            kind,
            keyframe: h[3] & 1 != 0,
            seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
            sent_ns: u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]),
        })
    }
}

/// What each publisher sends.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaShape {
    /// Send an audio track.
    pub audio: bool,
    /// Video bitrate in bits/s (0: no video track).
    pub video_bps: u64,
    /// Video frames per second.
    pub fps: u32,
    /// Time between keyframes.
    pub keyframe_interval: Duration,
    /// Pace each video frame's packets at this multiple of the bitrate, as a browser's pacer
    /// does (Chromium: 2.5); `None` sends each frame as one back-to-back burst.
    pub pacing: Option<f64>,
}

impl Default for MediaShape {
    fn default() -> Self {
        MediaShape {
            audio: true,
            video_bps: 1_500_000,
            fps: 30,
            keyframe_interval: Duration::from_secs(2),
            pacing: None,
        }
    }
}

impl MediaShape {
    /// The tracks a publisher offers, in m-line order.
    pub fn kinds(&self) -> Vec<TrackKind> {
        let mut k = Vec::new();
        if self.audio {
            k.push(TrackKind::Audio);
        }
        if self.video_bps > 0 && self.fps > 0 {
            k.push(TrackKind::Video);
        }
        k
    }

    /// Bytes of a delta frame: the GOP (one keyframe of about 4 deltas, then deltas) averages
    /// the target bitrate.
    fn delta_frame_bytes(&self) -> usize {
        let fps = u64::from(self.fps.max(1));
        let per_frame = self.video_bps / 8 / fps;
        let gop = ((self.keyframe_interval.as_secs_f64() * fps as f64).round() as u64).max(1);
        let delta = per_frame * gop / (gop - 1 + 4);
        (delta as usize).max(HEADER_LEN)
    }
}

/// How far a publisher's track has got, shared with the subscribers' bookkeeping: the window
/// of sequence numbers that counts is `[window_start, window_end)`.
#[derive(Debug, Default)]
pub struct TrackProgress {
    /// Next sequence number to send.
    pub next_seq: AtomicU32,
    /// `next_seq` when the measurement began.
    pub window_start: AtomicU32,
    /// `next_seq` when the publishers stopped.
    pub window_end: AtomicU32,
}

/// Counters of one publisher.
#[derive(Debug, Default)]
pub struct PublisherCounters {
    /// RTP packets sent.
    pub packets: AtomicU64,
    /// RTP bytes sent (SRTP size).
    pub bytes: AtomicU64,
    /// Sends the kernel refused (buffer full, unreachable).
    pub send_errors: AtomicU64,
    /// RTCP packets received from the server.
    pub rtcp_received: AtomicU64,
    /// PLI/FIR received (each brings a keyframe forward).
    pub keyframe_requests: AtomicU64,
    /// NACKed sequence numbers received (the server should answer them itself).
    pub nacks_received: AtomicU64,
    /// Received datagrams that failed SRTCP or were not understood.
    pub rx_errors: AtomicU64,
}

/// One track being sent.
#[derive(Debug)]
struct TrackTx {
    kind: TrackKind,
    ssrc: u32,
    rtp_seq: u16,
    rtp_ts: u32,
    next_due_ns: u64,
    frame: u64,
    force_keyframe: bool,
    progress: Arc<TrackProgress>,
    /// Paced video: packets of the current frame still to send, their payload size, whether
    /// they belong to a keyframe, and when the next one is due.
    paced_left: usize,
    paced_size: usize,
    paced_key: bool,
    next_packet_ns: u64,
}

/// A connected publisher, ready to send.
#[derive(Debug)]
pub struct Publisher {
    /// Index in the run's publisher list.
    pub index: usize,
    socket: UdpSocket,
    tx: SrtpContext,
    rx: SrtpContext,
    ice: IceClient,
    tracks: Vec<TrackTx>,
    next_consent_ns: u64,
    /// Its counters.
    pub counters: Arc<PublisherCounters>,
}

impl Publisher {
    /// A publisher over a connected session. `tracks` are `(kind, our ssrc, progress)` in
    /// m-line order.
    pub fn new(
        index: usize,
        socket: UdpSocket,
        tx: SrtpContext,
        rx: SrtpContext,
        ice: IceClient,
        tracks: Vec<(TrackKind, u32, Arc<TrackProgress>)>,
    ) -> Publisher {
        let now = now_ns();
        Publisher {
            index,
            socket,
            tx,
            rx,
            ice,
            tracks: tracks
                .into_iter()
                .map(|(kind, ssrc, progress)| TrackTx {
                    kind,
                    ssrc,
                    rtp_seq: rand::random(),
                    rtp_ts: rand::random(),
                    // Spread publishers over the first 20 ms so their frames do not align.
                    next_due_ns: now + rand::random::<u64>() % 20_000_000,
                    frame: 0,
                    force_keyframe: false,
                    progress,
                    paced_left: 0,
                    paced_size: 0,
                    paced_key: false,
                    next_packet_ns: 0,
                })
                .collect(),
            next_consent_ns: now + CONSENT_INTERVAL.as_nanos() as u64,
            counters: Arc::default(),
        }
    }

    /// The socket (closed when the publisher is dropped).
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }
}

/// Runs `publishers` until `stop` is set; returns them (for teardown).
pub fn run_senders(
    mut publishers: Vec<Publisher>,
    shape: &MediaShape,
    stop: &AtomicBool,
) -> Vec<Publisher> {
    let mut buf = vec![0u8; 1600];
    let mut rxbuf = vec![0u8; 2048];
    let delta_bytes = shape.delta_frame_bytes();
    let frame_ns = 1_000_000_000 / u64::from(shape.fps.max(1));
    let gop =
        ((shape.keyframe_interval.as_secs_f64() * f64::from(shape.fps)).round() as u64).max(1);
    let pace_bps = shape
        .pacing
        .map(|factor| (shape.video_bps as f64 * factor).max(1.0));
    while !stop.load(Ordering::Relaxed) {
        let now = now_ns();
        let mut next_wake = now + 5_000_000;
        for p in publishers.iter_mut() {
            drain_incoming(p, &mut rxbuf);
            for t in 0..p.tracks.len() {
                while p.tracks[t].next_due_ns <= now {
                    match p.tracks[t].kind {
                        TrackKind::Audio => {
                            send_audio(p, t, &mut buf);
                            p.tracks[t].next_due_ns += 20_000_000;
                        }
                        TrackKind::Video => {
                            let ts_step = 90_000 / shape.fps.max(1);
                            send_frame(p, t, &mut buf, delta_bytes, gop, ts_step, pace_bps, now);
                            p.tracks[t].next_due_ns += frame_ns;
                        }
                    }
                }
                if let Some(bps) = pace_bps {
                    send_paced(p, t, &mut buf, now, bps);
                    if p.tracks[t].paced_left > 0 {
                        next_wake = next_wake.min(p.tracks[t].next_packet_ns);
                    }
                }
                next_wake = next_wake.min(p.tracks[t].next_due_ns);
            }
            if p.next_consent_ns <= now {
                let n = p.ice.request(&mut buf);
                let _ = p.socket.send(&buf[..n]);
                p.next_consent_ns = now + CONSENT_INTERVAL.as_nanos() as u64;
            }
        }
        let after = now_ns();
        if next_wake > after {
            std::thread::sleep(Duration::from_nanos(next_wake - after));
        }
    }
    for p in &publishers {
        for t in &p.tracks {
            let end = t.progress.next_seq.load(Ordering::Relaxed);
            t.progress.window_end.store(end, Ordering::Relaxed);
        }
    }
    publishers
}

fn send_audio(p: &mut Publisher, t: usize, buf: &mut [u8]) {
    let size = 100 + (rand::random::<u32>() % 61) as usize;
    let track = &mut p.tracks[t];
    track.rtp_ts = track.rtp_ts.wrapping_add(960);
    send_packet(p, t, buf, size, false, false);
}

#[allow(clippy::too_many_arguments)]
fn send_frame(
    p: &mut Publisher,
    t: usize,
    buf: &mut [u8],
    delta_bytes: usize,
    gop: u64,
    ts_step: u32,
    pace_bps: Option<f64>,
    now: u64,
) {
    // A frame still being paced when the next one is due goes out at once (the pacer is
    // behind; a real one would drain its queue too).
    while p.tracks[t].paced_left > 0 {
        send_paced_packet(p, t, buf);
    }
    let track = &mut p.tracks[t];
    let keyframe = track.frame % gop == 0 || std::mem::take(&mut track.force_keyframe);
    if keyframe {
        // Restart the GOP so keyframes stay one interval apart.
        track.frame = 0;
    }
    track.frame += 1;
    track.rtp_ts = track.rtp_ts.wrapping_add(ts_step);
    let bytes = if keyframe {
        delta_bytes * (3 + (rand::random::<u32>() % 3) as usize)
    } else {
        delta_bytes
    };
    let packets = bytes.div_ceil(MAX_VIDEO_PAYLOAD).max(1);
    let size = (bytes / packets).clamp(HEADER_LEN, MAX_VIDEO_PAYLOAD);
    if pace_bps.is_some() {
        track.paced_left = packets;
        track.paced_size = size;
        track.paced_key = keyframe;
        track.next_packet_ns = now;
        return;
    }
    for i in 0..packets {
        send_packet(p, t, buf, size, keyframe, i + 1 == packets);
    }
}

/// Sends the paced packets of track `t` that are due, one every `size × 8 / bps` seconds.
fn send_paced(p: &mut Publisher, t: usize, buf: &mut [u8], now: u64, bps: f64) {
    while p.tracks[t].paced_left > 0 && p.tracks[t].next_packet_ns <= now {
        send_paced_packet(p, t, buf);
        let track = &mut p.tracks[t];
        let gap_ns = (track.paced_size as f64 * 8.0 * 1e9 / bps) as u64;
        track.next_packet_ns += gap_ns.max(1);
    }
}

fn send_paced_packet(p: &mut Publisher, t: usize, buf: &mut [u8]) {
    let (size, key, last) = {
        let track = &mut p.tracks[t];
        track.paced_left -= 1;
        (track.paced_size, track.paced_key, track.paced_left == 0)
    };
    send_packet(p, t, buf, size, key, last);
}

/// Builds, protects and sends one RTP packet with a `payload_len`-byte payload.
fn send_packet(
    p: &mut Publisher,
    t: usize,
    buf: &mut [u8],
    payload_len: usize,
    keyframe: bool,
    marker: bool,
) {
    let track = &mut p.tracks[t];
    let pt = match track.kind {
        TrackKind::Audio => OPUS_PT,
        TrackKind::Video => VP8_PT,
    };
    let seq = track.progress.next_seq.load(Ordering::Relaxed);
    buf[0] = 0x80;
    buf[1] = pt | if marker { 0x80 } else { 0 };
    buf[2..4].copy_from_slice(&track.rtp_seq.to_be_bytes());
    buf[4..8].copy_from_slice(&track.rtp_ts.to_be_bytes());
    buf[8..12].copy_from_slice(&track.ssrc.to_be_bytes());
    let len = 12 + payload_len;
    // Filler: cheap and not all zeros.
    for (i, b) in buf[12 + HEADER_LEN..len].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31);
    }
    PayloadHeader {
        kind: track.kind,
        keyframe,
        seq,
        sent_ns: now_ns(),
    }
    .write(&mut buf[12..12 + HEADER_LEN]);
    track.rtp_seq = track.rtp_seq.wrapping_add(1);
    track.progress.next_seq.store(seq + 1, Ordering::Relaxed);
    match p.tx.protect_rtp(buf, len) {
        Ok(n) => match p.socket.send(&buf[..n]) {
            Ok(_) => {
                p.counters.packets.fetch_add(1, Ordering::Relaxed);
                p.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(_) => {
                p.counters.send_errors.fetch_add(1, Ordering::Relaxed);
            }
        },
        Err(_) => {
            p.counters.send_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Reads whatever the server sent (RTCP, STUN responses) without blocking.
fn drain_incoming(p: &mut Publisher, buf: &mut [u8]) {
    while let Ok(n) = p.socket.recv(buf) {
        match classify(&buf[..n]) {
            PacketKind::Rtcp => {
                p.counters.rtcp_received.fetch_add(1, Ordering::Relaxed);
                let Ok(len) = p.rx.unprotect_rtcp(&mut buf[..n]) else {
                    p.counters.rx_errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                for packet in RtcpIter::new(&buf[..len]) {
                    let Ok(packet) = packet else { break };
                    match packet.typed() {
                        Ok(Rtcp::Pli(_) | Rtcp::Fir(_)) => {
                            p.counters.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                            for t in p.tracks.iter_mut() {
                                if t.kind == TrackKind::Video {
                                    t.force_keyframe = true;
                                }
                            }
                        }
                        Ok(Rtcp::Nack(nack)) => {
                            let n = nack.lost().count() as u64;
                            p.counters.nacks_received.fetch_add(n, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            }
            PacketKind::Stun | PacketKind::Dtls => {}
            _ => {
                p.counters.rx_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_foreign_payloads() {
        let h = PayloadHeader {
            kind: TrackKind::Video,
            keyframe: true,
            seq: 0xdead_beef,
            sent_ns: 0x0123_4567_89ab_cdef,
        };
        let mut b = [0u8; 20];
        h.write(&mut b);
        assert_eq!(PayloadHeader::parse(&b), Some(h));
        assert_eq!(PayloadHeader::parse(&b[..15]), None);
        b[0] = b'X';
        assert_eq!(PayloadHeader::parse(&b), None);
        assert_eq!(PayloadHeader::parse(&[]), None);
    }

    #[test]
    fn video_averages_the_target_bitrate() {
        let shape = MediaShape::default();
        let delta = shape.delta_frame_bytes() as f64;
        let gop = 60.0;
        let avg_bps = (delta * (gop - 1.0) + 4.0 * delta) / gop * 30.0 * 8.0;
        assert!(
            (avg_bps - 1_500_000.0).abs() / 1_500_000.0 < 0.01,
            "{avg_bps}"
        );
        assert_eq!(shape.kinds(), vec![TrackKind::Audio, TrackKind::Video]);
    }

    #[test]
    fn clock_moves_forward() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a && a > 0);
    }
}
