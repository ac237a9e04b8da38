//! Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01
//! §3.1): RTPFB FMT 15, telling a sender when each of its packets (by transport-wide sequence
//! number) arrived. A browser's send-side bandwidth estimate is built on it; a receiver that
//! negotiates `transport-cc` and never sends it leaves the sender at its start rate.
//!
//! A builder into a caller's buffer, and a parser ([`TransportFeedback`]) that walks a received
//! feedback's statuses without allocating; no state. Arrival times are microseconds on any clock.
//!
//! ```text
//!  0                   1                   2                   3
//! |V=2|P|  FMT=15 |    PT=205     |           length              |
//! |                     SSRC of packet sender                     |
//! |                      SSRC of media source                     |
//! |      base sequence number     |      packet status count      |
//! |                 reference time                | fb pkt. count |
//! |          packet chunk         |         packet chunk          |  ...
//! | recv delta    |  recv delta   | ...  (1 byte small, 2 bytes large/negative; 250 µs units)
//! ```

use super::rtcp::TransportCc;
use super::{write_at, WireError};

/// Receive deltas are in multiples of 250 µs.
const DELTA_UNIT_US: i64 = 250;
/// The reference time is in multiples of 64 ms (= 256 delta units).
const REFERENCE_UNIT_US: i64 = 64_000;
const HEADER_LEN: usize = 20;
/// Most packets one run-length chunk describes.
const MAX_RUN: usize = 0x1fff;
/// Symbols in one two-bit status vector chunk.
const VECTOR_SYMBOLS: usize = 7;

const NOT_RECEIVED: u8 = 0;
const SMALL_DELTA: u8 = 1;
const LARGE_DELTA: u8 = 2;

/// Most packet statuses one feedback packet may describe through [`write_transport_feedback`]:
/// at 2 delta bytes each plus chunks this stays under 1,200 bytes.
pub const MAX_STATUSES: usize = 384;

/// What [`write_transport_feedback`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Bytes of the RTCP packet.
    pub len: usize,
    /// How many of the given packets it describes, from the first. Fewer than given when a
    /// delta would not fit 16 bits (over 8 s between two arrivals) or past [`MAX_STATUSES`];
    /// the rest belong in the next feedback.
    pub covered: usize,
}

/// Writes one transport-cc feedback for packets `base_seq, base_seq + 1, …`: `arrivals[i]` is
/// when packet `base_seq + i` arrived (µs), or `None` if it did not.
pub fn write_transport_feedback(
    buf: &mut [u8],
    sender_ssrc: u32,
    media_ssrc: u32,
    base_seq: u16,
    fb_count: u8,
    arrivals: &[Option<i64>],
) -> Result<Written, WireError> {
    let arrivals = &arrivals[..arrivals.len().min(MAX_STATUSES)];
    if arrivals.is_empty() {
        return Err(WireError::InvalidInput);
    }
    // The reference time is the first arrival, rounded down to 64 ms; deltas count from it.
    let reference = arrivals
        .iter()
        .flatten()
        .next()
        .map_or(0, |&t| t.div_euclid(REFERENCE_UNIT_US));
    let mut symbols = [NOT_RECEIVED; MAX_STATUSES];
    let mut deltas = [0i16; MAX_STATUSES];
    let mut previous = reference * (REFERENCE_UNIT_US / DELTA_UNIT_US);
    let mut covered = arrivals.len();
    for (i, arrival) in arrivals.iter().enumerate() {
        let Some(t) = arrival else { continue };
        let units = t.div_euclid(DELTA_UNIT_US);
        let delta = units - previous;
        let Ok(d) = i16::try_from(delta) else {
            covered = i;
            break;
        };
        symbols[i] = if (0..=255).contains(&d) {
            SMALL_DELTA
        } else {
            LARGE_DELTA
        };
        deltas[i] = d;
        previous = units;
    }
    if covered == 0 {
        return Err(WireError::InvalidInput);
    }
    let symbols = &symbols[..covered];

    let header = buf.get_mut(..HEADER_LEN).ok_or(WireError::BufferTooSmall)?;
    header[0] = 0x80 | 15;
    header[1] = 205;
    header[4..8].copy_from_slice(&sender_ssrc.to_be_bytes());
    header[8..12].copy_from_slice(&media_ssrc.to_be_bytes());
    header[12..14].copy_from_slice(&base_seq.to_be_bytes());
    header[14..16].copy_from_slice(&(covered as u16).to_be_bytes());
    let reference = (reference as u32) & 0x00ff_ffff;
    header[16..19].copy_from_slice(&reference.to_be_bytes()[1..]);
    header[19] = fb_count;
    let mut pos = HEADER_LEN;

    // Chunks: a run-length chunk for runs of 7 or more equal symbols, else a two-bit vector.
    let mut i = 0;
    while i < symbols.len() {
        let symbol = symbols[i];
        let run = symbols[i..]
            .iter()
            .take(MAX_RUN)
            .take_while(|&&s| s == symbol)
            .count();
        let chunk: u16 = if run >= VECTOR_SYMBOLS {
            i += run;
            (u16::from(symbol) << 13) | run as u16
        } else {
            let mut c = 0xc000u16;
            for (k, &s) in symbols[i..].iter().take(VECTOR_SYMBOLS).enumerate() {
                c |= u16::from(s) << (12 - 2 * k);
            }
            i += VECTOR_SYMBOLS;
            c
        };
        write_at(buf, pos, &chunk.to_be_bytes())?;
        pos += 2;
    }
    for (&symbol, &delta) in symbols.iter().zip(&deltas) {
        match symbol {
            SMALL_DELTA => {
                write_at(buf, pos, &[delta as u8])?;
                pos += 1;
            }
            LARGE_DELTA => {
                write_at(buf, pos, &delta.to_be_bytes())?;
                pos += 2;
            }
            _ => {}
        }
    }
    // Padding to a 32-bit boundary, as libwebrtc writes it: P bit, zeros, then the count.
    let padding = (4 - pos % 4) % 4;
    if padding > 0 {
        let pad = buf
            .get_mut(pos..pos + padding)
            .ok_or(WireError::BufferTooSmall)?;
        pad.fill(0);
        pad[padding - 1] = padding as u8;
        pos += padding;
        buf[0] |= 0x20;
    }
    let words = (pos / 4 - 1) as u16;
    buf[2..4].copy_from_slice(&words.to_be_bytes());
    Ok(Written { len: pos, covered })
}

/// A received transport-cc feedback, checked once: every status has its delta in the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportFeedback<'a> {
    /// SSRC of the feedback's sender.
    pub sender_ssrc: u32,
    /// Transport-wide sequence number of the first status.
    pub base_seq: u16,
    /// Statuses reported.
    pub status_count: u16,
    /// The reference time in µs (a multiple of 64 ms, on the receiver's clock).
    pub reference_us: i64,
    /// The feedback packet count (wraps at 256).
    pub fb_count: u8,
    /// The status chunks, then the receive deltas.
    chunks: &'a [u8],
    /// Where the receive deltas start in `chunks`.
    deltas_at: usize,
}

/// One packet a feedback reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketStatus {
    /// Its transport-wide sequence number.
    pub seq: u16,
    /// When it arrived (µs on the receiver's clock, reference time plus deltas), or `None` if
    /// it did not.
    pub arrival_us: Option<i64>,
}

impl<'a> TransportFeedback<'a> {
    /// Checks a parsed RTPFB FMT 15: its chunks must describe `status_count` statuses with valid
    /// symbols, and every received one must have its delta in the packet.
    pub fn parse(fb: &TransportCc<'a>) -> Result<Self, WireError> {
        let mut chunks = Chunks::new(fb.chunks, fb.status_count);
        let mut delta_bytes = 0usize;
        for symbol in &mut chunks {
            delta_bytes += match symbol? {
                NOT_RECEIVED => 0,
                SMALL_DELTA => 1,
                _ => 2,
            };
        }
        let deltas_at = chunks.pos;
        if deltas_at + delta_bytes > fb.chunks.len() {
            return Err(WireError::TooShort);
        }
        Ok(Self {
            sender_ssrc: fb.sender_ssrc,
            base_seq: fb.base_sequence,
            status_count: fb.status_count,
            reference_us: i64::from(fb.reference_time) * REFERENCE_UNIT_US,
            fb_count: fb.feedback_count,
            chunks: fb.chunks,
            deltas_at,
        })
    }

    /// Each packet's status, in sequence order.
    pub fn statuses(&self) -> impl Iterator<Item = PacketStatus> + 'a {
        let mut chunks = Chunks::new(self.chunks, self.status_count);
        let deltas = self.chunks;
        let mut at = self.deltas_at;
        let mut time = self.reference_us;
        let mut seq = self.base_seq;
        std::iter::from_fn(move || {
            // `parse` checked every symbol and delta, so nothing below fails.
            let symbol = chunks.next()?.ok()?;
            let arrival_us = match symbol {
                NOT_RECEIVED => None,
                SMALL_DELTA => {
                    time += i64::from(*deltas.get(at)?) * DELTA_UNIT_US;
                    at += 1;
                    Some(time)
                }
                _ => {
                    let d = i16::from_be_bytes([*deltas.get(at)?, *deltas.get(at + 1)?]);
                    time += i64::from(d) * DELTA_UNIT_US;
                    at += 2;
                    Some(time)
                }
            };
            let status = PacketStatus { seq, arrival_us };
            seq = seq.wrapping_add(1);
            Some(status)
        })
    }
}

/// The status symbols of a feedback's chunks, `count` of them; `pos` ends after the last chunk
/// read.
struct Chunks<'a> {
    data: &'a [u8],
    pos: usize,
    left: u16,
    /// The chunk being read: its symbols still to give, and how.
    chunk: u16,
    in_chunk: u16,
    kind: ChunkKind,
}

#[derive(Clone, Copy)]
enum ChunkKind {
    Run(u8),
    OneBit,
    TwoBit,
}

impl<'a> Chunks<'a> {
    fn new(data: &'a [u8], count: u16) -> Self {
        Self {
            data,
            pos: 0,
            left: count,
            chunk: 0,
            in_chunk: 0,
            kind: ChunkKind::Run(0),
        }
    }
}

impl Iterator for Chunks<'_> {
    type Item = Result<u8, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        if self.in_chunk == 0 {
            let Some(c) = super::read_u16(self.data, self.pos) else {
                self.left = 0;
                return Some(Err(WireError::TooShort));
            };
            self.pos += 2;
            self.chunk = c;
            (self.kind, self.in_chunk) = if c & 0x8000 == 0 {
                (ChunkKind::Run(((c >> 13) & 0x3) as u8), c & 0x1fff)
            } else if c & 0x4000 == 0 {
                (ChunkKind::OneBit, 14)
            } else {
                (ChunkKind::TwoBit, VECTOR_SYMBOLS as u16)
            };
            if self.in_chunk == 0 {
                self.left = 0;
                return Some(Err(WireError::Malformed)); // an empty run
            }
        }
        let symbol = match self.kind {
            ChunkKind::Run(s) => s,
            ChunkKind::OneBit => ((self.chunk >> (self.in_chunk - 1)) & 1) as u8,
            ChunkKind::TwoBit => ((self.chunk >> (2 * (self.in_chunk - 1))) & 3) as u8,
        };
        self.in_chunk -= 1;
        self.left -= 1;
        if self.left == 0 {
            self.in_chunk = 0; // the rest of the last chunk is padding
        }
        if symbol > LARGE_DELTA {
            self.left = 0;
            return Some(Err(WireError::Malformed));
        }
        Some(Ok(symbol))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webrtc::rtcp::transport_feedbacks::transport_layer_cc::{
        PacketStatusChunk, SymbolTypeTcc, TransportLayerCc,
    };
    use webrtc::util::Unmarshal;

    /// Parses with webrtc-rs (an independent implementation) and returns, per status, the
    /// arrival time it implies in µs (reference + running sum of deltas), or `None`.
    fn decode(packet: &[u8]) -> (TransportLayerCc, Vec<Option<i64>>) {
        let mut b = bytes::Bytes::copy_from_slice(packet);
        let fb = TransportLayerCc::unmarshal(&mut b).expect("webrtc-rs parses it");
        let mut symbols = Vec::new();
        for chunk in &fb.packet_chunks {
            match chunk {
                PacketStatusChunk::RunLengthChunk(r) => symbols.extend(std::iter::repeat_n(
                    r.packet_status_symbol,
                    r.run_length.into(),
                )),
                PacketStatusChunk::StatusVectorChunk(v) => symbols.extend(v.symbol_list.iter()),
            }
        }
        symbols.truncate(fb.packet_status_count.into());
        let mut t = i64::from(fb.reference_time) * REFERENCE_UNIT_US;
        let mut deltas = fb.recv_deltas.iter();
        let times = symbols
            .iter()
            .map(|s| match s {
                SymbolTypeTcc::PacketReceivedSmallDelta
                | SymbolTypeTcc::PacketReceivedLargeDelta => {
                    t += deltas.next().expect("a delta per received packet").delta;
                    Some(t)
                }
                _ => None,
            })
            .collect();
        (fb, times)
    }

    fn quantised(a: &[Option<i64>]) -> Vec<Option<i64>> {
        a.iter()
            .map(|t| t.map(|t| t.div_euclid(DELTA_UNIT_US) * DELTA_UNIT_US))
            .collect()
    }

    #[test]
    fn a_mixed_feedback_round_trips_through_webrtc_rs() {
        let start = 5_000_123_456i64;
        let mut arrivals = Vec::new();
        for i in 0..40i64 {
            arrivals.push(match i {
                3 | 4 => None,                          // lost
                10 => Some(start + i * 1_000 - 9_000),  // reordered: negative delta
                20 => Some(start + i * 1_000 + 90_000), // late: large delta
                _ => Some(start + i * 1_000),
            });
        }
        // A long run of losses: a run-length chunk.
        arrivals.extend(std::iter::repeat_n(None, 20));
        arrivals.push(Some(start + 200_000));
        let mut buf = [0u8; 1500];
        let w = write_transport_feedback(&mut buf, 0x1111, 0x2222, 65_530, 9, &arrivals).unwrap();
        assert_eq!(w.covered, arrivals.len());
        assert_eq!(w.len % 4, 0);
        let (fb, times) = decode(&buf[..w.len]);
        assert_eq!((fb.sender_ssrc, fb.media_ssrc), (0x1111, 0x2222));
        assert_eq!(fb.base_sequence_number, 65_530);
        assert_eq!(usize::from(fb.packet_status_count), arrivals.len());
        assert_eq!(fb.fb_pkt_count, 9);
        assert_eq!(times, quantised(&arrivals));
    }

    #[test]
    fn all_received_in_order_is_small_deltas() {
        let arrivals: Vec<_> = (0..100).map(|i| Some(1_000_000 + i * 300)).collect();
        let mut buf = [0u8; 1500];
        let w = write_transport_feedback(&mut buf, 1, 2, 7, 0, &arrivals).unwrap();
        // 100 statuses in 15 chunks (one run-length chunk: all "small"), 100 one-byte deltas.
        assert_eq!(w.len, 20 + 2 + 100 + 2);
        let (_, times) = decode(&buf[..w.len]);
        assert_eq!(times, quantised(&arrivals));
    }

    #[test]
    fn a_gap_longer_than_sixteen_bits_ends_the_feedback() {
        let arrivals = [Some(0), Some(1_000), Some(10_000_000), Some(10_001_000)];
        let mut buf = [0u8; 200];
        let w = write_transport_feedback(&mut buf, 1, 2, 0, 0, &arrivals).unwrap();
        assert_eq!(w.covered, 2);
        let (fb, times) = decode(&buf[..w.len]);
        assert_eq!(fb.packet_status_count, 2);
        assert_eq!(times, quantised(&arrivals[..2]));
    }

    #[test]
    fn too_many_statuses_are_cut_and_small_buffers_refused() {
        let arrivals: Vec<_> = (0..1000).map(|i| Some(i * 100_000)).collect();
        let mut buf = [0u8; 1500];
        let w = write_transport_feedback(&mut buf, 1, 2, 0, 0, &arrivals).unwrap();
        assert_eq!(w.covered, MAX_STATUSES);
        assert!(w.len <= 1200, "{}", w.len);
        decode(&buf[..w.len]);
        for n in 0..w.len {
            assert!(write_transport_feedback(&mut buf[..n], 1, 2, 0, 0, &arrivals).is_err());
        }
        assert!(write_transport_feedback(&mut buf, 1, 2, 0, 0, &[]).is_err());
        let lost = [None, None, Some(5)];
        let w = write_transport_feedback(&mut buf, 1, 2, 0, 0, &lost).unwrap();
        assert_eq!(decode(&buf[..w.len]).1, quantised(&lost));
    }

    /// Our builder's output read back with our parser: `(seq, arrival)` per status.
    fn read_back(packet: &[u8]) -> Result<Vec<(u16, Option<i64>)>, WireError> {
        let parsed = crate::wire::rtcp::RtcpPacket::parse(packet)?;
        let crate::wire::rtcp::Rtcp::TransportCc(fb) = parsed.typed()? else {
            panic!("not a transport-cc feedback");
        };
        let fb = TransportFeedback::parse(&fb)?;
        Ok(fb.statuses().map(|s| (s.seq, s.arrival_us)).collect())
    }

    #[test]
    fn the_parser_reads_back_what_the_builder_wrote() {
        let start = 5_000_123_456i64;
        let mut arrivals: Vec<Option<i64>> = (0..40i64)
            .map(|i| match i {
                3 | 4 => None,
                10 => Some(start + i * 1_000 - 9_000),
                20 => Some(start + i * 1_000 + 90_000),
                _ => Some(start + i * 1_000),
            })
            .collect();
        arrivals.extend(std::iter::repeat_n(None, 20));
        arrivals.push(Some(start + 200_000));
        let mut buf = [0u8; 1500];
        let w = write_transport_feedback(&mut buf, 1, 2, 65_530, 3, &arrivals).unwrap();
        let got = read_back(&buf[..w.len]).unwrap();
        let want: Vec<(u16, Option<i64>)> = quantised(&arrivals)
            .into_iter()
            .enumerate()
            .map(|(i, a)| (65_530u16.wrapping_add(i as u16), a))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_parser_reads_one_bit_vectors_from_webrtc_rs() {
        use webrtc::rtcp::transport_feedbacks::transport_layer_cc::{
            RecvDelta, StatusChunkTypeTcc, StatusVectorChunk, SymbolSizeTypeTcc,
        };
        use webrtc::util::Marshal;
        // 14 one-bit symbols: received, lost, received …
        let symbols: Vec<SymbolTypeTcc> = (0..14)
            .map(|i| {
                if i % 2 == 0 {
                    SymbolTypeTcc::PacketReceivedSmallDelta
                } else {
                    SymbolTypeTcc::PacketNotReceived
                }
            })
            .collect();
        let fb = TransportLayerCc {
            sender_ssrc: 1,
            media_ssrc: 2,
            base_sequence_number: 100,
            packet_status_count: 14,
            reference_time: 10,
            fb_pkt_count: 0,
            packet_chunks: vec![PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                symbol_size: SymbolSizeTypeTcc::OneBit,
                symbol_list: symbols,
            })],
            recv_deltas: (0..7)
                .map(|i| RecvDelta {
                    type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
                    delta: 250 * i,
                })
                .collect(),
        };
        let bytes = fb.marshal().unwrap();
        let got = read_back(&bytes).unwrap();
        let mut t = 10 * REFERENCE_UNIT_US;
        let want: Vec<(u16, Option<i64>)> = (0..14u16)
            .map(|i| {
                if i % 2 == 0 {
                    t += 250 * i64::from(i / 2);
                    (100 + i, Some(t))
                } else {
                    (100 + i, None)
                }
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn truncated_or_malformed_feedback_is_refused_without_panic() {
        let arrivals: Vec<_> = (0..30).map(|i| Some(1_000_000 + i * 700)).collect();
        let mut buf = [0u8; 1500];
        let w = write_transport_feedback(&mut buf, 1, 2, 7, 0, &arrivals).unwrap();
        let full = &mut buf[..w.len];
        // Claim more statuses than the chunks and deltas hold.
        let mut more = full.to_vec();
        more[14..16].copy_from_slice(&200u16.to_be_bytes());
        assert!(read_back(&more).is_err());
        // A reserved symbol (3) in a two-bit vector.
        let mut bad = full.to_vec();
        bad[20..22].copy_from_slice(&0xffffu16.to_be_bytes());
        assert_eq!(read_back(&bad), Err(WireError::Malformed));
        // Every cut of the packet, with its length field fixed up, errs or parses.
        for cut in (20..full.len()).step_by(4) {
            let mut p = full[..cut].to_vec();
            p[0] &= !0x20;
            p[2..4].copy_from_slice(&((cut / 4 - 1) as u16).to_be_bytes());
            let _ = read_back(&p);
        }
    }
}
