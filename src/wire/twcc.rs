//! Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01
//! §3.1): RTPFB FMT 15, telling a sender when each of its packets (by transport-wide sequence
//! number) arrived. A browser's send-side bandwidth estimate is built on it; a receiver that
//! negotiates `transport-cc` and never sends it leaves the sender at its start rate.
//!
//! Builder only, into a caller's buffer; no state. Arrival times are microseconds on any clock.
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
}
