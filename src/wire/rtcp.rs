//! RTCP (RFC 3550, RFC 4585, RFC 5104): compound packet iteration, typed views for routing, and
//! builders for the reports and feedback the relay sends.
//!
//! `RtcpIter` walks a compound packet and checks each header (version 2, length within the
//! buffer, padding); `RtcpPacket::typed` decodes SR, RR, SDES, BYE, APP, generic NACK,
//! transport-wide CC (header fields only), PLI, FIR and REMB. Builders write into caller buffers
//! and return the bytes written. No state, no allocation, no panics on any input.

use super::{read_u16, read_u32, write_at, WireError};

/// Sender report.
pub const PT_SR: u8 = 200;
/// Receiver report.
pub const PT_RR: u8 = 201;
/// Source description.
pub const PT_SDES: u8 = 202;
/// Goodbye.
pub const PT_BYE: u8 = 203;
/// Application-defined.
pub const PT_APP: u8 = 204;
/// Transport-layer feedback (RFC 4585).
pub const PT_RTPFB: u8 = 205;
/// Payload-specific feedback (RFC 4585).
pub const PT_PSFB: u8 = 206;
/// Length of the common RTCP header.
pub const HEADER_LEN: usize = 4;
/// Length of one report block in an SR or RR.
pub const REPORT_BLOCK_LEN: usize = 24;

/// The common 4-byte header of one RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpHeader {
    /// Always 2 once parsed.
    pub version: u8,
    /// The P bit.
    pub padding: bool,
    /// Reception report count, source count, subtype or feedback FMT (5 bits).
    pub count: u8,
    /// Packet type.
    pub packet_type: u8,
    /// Length in 32-bit words minus one.
    pub length: u16,
}

impl RtcpHeader {
    /// Parse and check the version of the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let head = buf.get(..HEADER_LEN).ok_or(WireError::TooShort)?;
        let (first, packet_type) = match head {
            [a, b, ..] => (*a, *b),
            _ => return Err(WireError::TooShort),
        };
        if first >> 6 != 2 {
            return Err(WireError::BadVersion);
        }
        Ok(Self {
            version: 2,
            padding: first & 0x20 != 0,
            count: first & 0x1f,
            packet_type,
            length: read_u16(buf, 2).ok_or(WireError::TooShort)?,
        })
    }

    /// Length of the whole packet in bytes, header included.
    pub fn packet_len(&self) -> usize {
        (usize::from(self.length) + 1) * 4
    }
}

/// One RTCP packet of a compound packet: its header, raw bytes and body (padding removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpPacket<'a> {
    header: RtcpHeader,
    raw: &'a [u8],
    body: &'a [u8],
}

impl<'a> RtcpPacket<'a> {
    /// Parse the first RTCP packet in `buf` (which may hold more after it).
    pub fn parse(buf: &'a [u8]) -> Result<Self, WireError> {
        let header = RtcpHeader::parse(buf)?;
        let raw = buf.get(..header.packet_len()).ok_or(WireError::BadLength)?;
        let mut body_end = raw.len();
        if header.padding {
            let pad = usize::from(*raw.last().ok_or(WireError::TooShort)?);
            if pad == 0 || pad > raw.len() - HEADER_LEN {
                return Err(WireError::BadLength);
            }
            body_end -= pad;
        }
        let body = raw.get(HEADER_LEN..body_end).ok_or(WireError::BadLength)?;
        Ok(Self { header, raw, body })
    }

    /// The common header.
    pub fn header(&self) -> RtcpHeader {
        self.header
    }
    /// The whole packet, header and padding included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }
    /// The bytes after the header, without padding.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The SSRC of the packet's sender: the first SSRC of SR, RR, APP, feedback and most other
    /// types; the first chunk or source of SDES and BYE (`None` when they list none).
    pub fn sender_ssrc(&self) -> Option<u32> {
        let pt = self.header.packet_type;
        if (pt == PT_SDES || pt == PT_BYE) && self.header.count == 0 {
            return None;
        }
        read_u32(self.body, 0)
    }

    /// The media source a feedback packet (RTPFB, PSFB) is about; `None` for other types.
    /// FIR and REMB carry their targets in the FCI; this is the header field (often 0).
    pub fn media_ssrc(&self) -> Option<u32> {
        match self.header.packet_type {
            PT_RTPFB | PT_PSFB => read_u32(self.body, 4),
            _ => None,
        }
    }

    /// Decode the packet by type for routing. Unknown types come back as `Rtcp::Other`.
    pub fn typed(&self) -> Result<Rtcp<'a>, WireError> {
        let body = self.body;
        let count = self.header.count;
        let pt = self.header.packet_type;
        match pt {
            PT_SR => {
                let info = SenderInfo::parse(body).ok_or(WireError::TooShort)?;
                let blocks = report_blocks(body, 24, count)?;
                Ok(Rtcp::SenderReport(SenderReport {
                    info,
                    report_blocks: blocks,
                }))
            }
            PT_RR => {
                let ssrc = read_u32(body, 0).ok_or(WireError::TooShort)?;
                let report_blocks = report_blocks(body, 4, count)?;
                Ok(Rtcp::ReceiverReport(ReceiverReport {
                    ssrc,
                    report_blocks,
                }))
            }
            PT_SDES => {
                let sdes = SourceDescription { count, body };
                let mut pos = 0;
                for _ in 0..count {
                    pos = sdes_chunk(body, pos)?.1;
                }
                Ok(Rtcp::SourceDescription(sdes))
            }
            PT_BYE => {
                let ssrc_end = 4 * usize::from(count);
                let ssrcs = body.get(..ssrc_end).ok_or(WireError::BadLength)?;
                let reason = match body.get(ssrc_end) {
                    Some(&len) if len > 0 => Some(
                        body.get(ssrc_end + 1..ssrc_end + 1 + usize::from(len))
                            .ok_or(WireError::BadLength)?,
                    ),
                    _ => None,
                };
                Ok(Rtcp::Bye(Bye { ssrcs, reason }))
            }
            PT_APP => {
                let name = body.get(4..8).ok_or(WireError::TooShort)?;
                Ok(Rtcp::App(App {
                    subtype: count,
                    ssrc: read_u32(body, 0).ok_or(WireError::TooShort)?,
                    name: name.try_into().map_err(|_| WireError::TooShort)?,
                    data: body.get(8..).unwrap_or(&[]),
                }))
            }
            PT_RTPFB | PT_PSFB => feedback(pt, count, body),
            _ => Ok(Rtcp::Other(*self)),
        }
    }
}

/// Iterator over the packets of a compound RTCP packet. A bad header yields one `Err` and ends
/// the iteration, since the rest cannot be framed.
#[derive(Debug, Clone)]
pub struct RtcpIter<'a> {
    rest: &'a [u8],
}

impl<'a> RtcpIter<'a> {
    /// Iterate the packets of compound packet `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }
}

impl<'a> Iterator for RtcpIter<'a> {
    type Item = Result<RtcpPacket<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match RtcpPacket::parse(self.rest) {
            Ok(p) => {
                self.rest = self.rest.get(p.raw.len()..).unwrap_or(&[]);
                Some(Ok(p))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// An RTCP packet decoded by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rtcp<'a> {
    /// SR (200).
    SenderReport(SenderReport<'a>),
    /// RR (201).
    ReceiverReport(ReceiverReport<'a>),
    /// SDES (202).
    SourceDescription(SourceDescription<'a>),
    /// BYE (203).
    Bye(Bye<'a>),
    /// APP (204).
    App(App<'a>),
    /// RTPFB FMT 1, generic NACK (RFC 4585 §6.2.1).
    Nack(Nack<'a>),
    /// RTPFB FMT 15, transport-wide congestion control feedback (header fields only).
    TransportCc(TransportCc<'a>),
    /// PSFB FMT 1, picture loss indication.
    Pli(Pli),
    /// PSFB FMT 4, full intra request (RFC 5104).
    Fir(Fir<'a>),
    /// PSFB FMT 15 with the "REMB" identifier.
    Remb(Remb<'a>),
    /// Any other RTPFB or PSFB format.
    Feedback(Feedback<'a>),
    /// Any other packet type.
    Other(RtcpPacket<'a>),
}

/// The sender information of an SR; also the input of `write_sender_report`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderInfo {
    /// SSRC of the sender.
    pub ssrc: u32,
    /// 64-bit NTP timestamp.
    pub ntp_timestamp: u64,
    /// RTP timestamp matching the NTP timestamp.
    pub rtp_timestamp: u32,
    /// Sender's packet count.
    pub packet_count: u32,
    /// Sender's octet count.
    pub octet_count: u32,
}

impl SenderInfo {
    fn parse(body: &[u8]) -> Option<Self> {
        let ntp_hi = u64::from(read_u32(body, 4)?);
        let ntp_lo = u64::from(read_u32(body, 8)?);
        Some(Self {
            ssrc: read_u32(body, 0)?,
            ntp_timestamp: (ntp_hi << 32) | ntp_lo,
            rtp_timestamp: read_u32(body, 12)?,
            packet_count: read_u32(body, 16)?,
            octet_count: read_u32(body, 20)?,
        })
    }
}

/// One reception report block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// Source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (signed 24-bit).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP timestamp.
    pub last_sr: u32,
    /// Delay since the last SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn parse(b: &[u8]) -> Option<Self> {
        let lost = read_u32(b, 4)?;
        Some(Self {
            ssrc: read_u32(b, 0)?,
            fraction_lost: (lost >> 24) as u8,
            cumulative_lost: ((lost << 8) as i32) >> 8,
            highest_seq: read_u32(b, 8)?,
            jitter: read_u32(b, 12)?,
            last_sr: read_u32(b, 16)?,
            delay_since_last_sr: read_u32(b, 20)?,
        })
    }

    fn write(&self, buf: &mut [u8], at: usize) -> Result<(), WireError> {
        let lost =
            (u32::from(self.fraction_lost) << 24) | (self.cumulative_lost as u32 & 0x00ff_ffff);
        let words = [
            self.ssrc,
            lost,
            self.highest_seq,
            self.jitter,
            self.last_sr,
            self.delay_since_last_sr,
        ];
        for (i, w) in words.iter().enumerate() {
            write_at(buf, at + 4 * i, &w.to_be_bytes())?;
        }
        Ok(())
    }
}

/// Iterator over the report blocks of an SR or RR (length checked when typed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportBlocks<'a> {
    data: &'a [u8],
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        let block = ReportBlock::parse(self.data)?;
        self.data = self.data.get(REPORT_BLOCK_LEN..).unwrap_or(&[]);
        Some(block)
    }
}

fn report_blocks(body: &[u8], at: usize, count: u8) -> Result<ReportBlocks<'_>, WireError> {
    let end = at + REPORT_BLOCK_LEN * usize::from(count);
    let data = body.get(at..end).ok_or(WireError::BadLength)?;
    Ok(ReportBlocks { data })
}

/// SR: sender information and report blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderReport<'a> {
    /// Sender information.
    pub info: SenderInfo,
    /// Report blocks (RC of them).
    pub report_blocks: ReportBlocks<'a>,
}

/// RR: reporter SSRC and report blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    /// SSRC of the reporter.
    pub ssrc: u32,
    /// Report blocks (RC of them).
    pub report_blocks: ReportBlocks<'a>,
}

/// SDES: `count` chunks, each an SSRC and items (checked when typed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceDescription<'a> {
    count: u8,
    body: &'a [u8],
}

/// One SDES chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    /// SSRC or CSRC described.
    pub ssrc: u32,
    items: &'a [u8],
}

/// SDES CNAME item type.
pub const SDES_CNAME: u8 = 1;

/// Parse the chunk at `pos`; returns it and where the next chunk starts.
fn sdes_chunk(body: &[u8], pos: usize) -> Result<(SdesChunk<'_>, usize), WireError> {
    let ssrc = read_u32(body, pos).ok_or(WireError::TooShort)?;
    let mut p = pos + 4;
    loop {
        match body.get(p) {
            None => return Err(WireError::BadLength),
            Some(0) => {
                let items = body.get(pos + 4..p).ok_or(WireError::BadLength)?;
                let next = (p + 1).div_ceil(4) * 4;
                if next > body.len() {
                    return Err(WireError::BadLength);
                }
                return Ok((SdesChunk { ssrc, items }, next));
            }
            Some(_) => {
                let len = *body.get(p + 1).ok_or(WireError::BadLength)?;
                p += 2 + usize::from(len);
            }
        }
    }
}

impl<'a> SourceDescription<'a> {
    /// The chunks.
    pub fn chunks(&self) -> impl Iterator<Item = SdesChunk<'a>> + 'a {
        let body = self.body;
        let mut pos = 0;
        (0..self.count).map_while(move |_| {
            let (chunk, next) = sdes_chunk(body, pos).ok()?;
            pos = next;
            Some(chunk)
        })
    }
}

impl<'a> SdesChunk<'a> {
    /// Items as `(type, value)`.
    pub fn items(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let mut rest = self.items;
        std::iter::from_fn(move || {
            let (&kind, tail) = rest.split_first()?;
            let (&len, tail) = tail.split_first()?;
            let value = tail.get(..usize::from(len))?;
            rest = tail.get(usize::from(len)..).unwrap_or(&[]);
            Some((kind, value))
        })
    }
    /// The CNAME item, if present.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items().find(|(k, _)| *k == SDES_CNAME).map(|(_, v)| v)
    }
}

/// Iterator over a list of big-endian SSRCs.
fn ssrc_list(data: &[u8]) -> impl Iterator<Item = u32> + '_ {
    data.chunks_exact(4)
        .filter_map(|c| c.try_into().ok().map(u32::from_be_bytes))
}

/// BYE: sources leaving and an optional reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bye<'a> {
    ssrcs: &'a [u8],
    /// Reason for leaving, if given.
    pub reason: Option<&'a [u8]>,
}

impl<'a> Bye<'a> {
    /// The sources leaving.
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + 'a {
        ssrc_list(self.ssrcs)
    }
}

/// APP: application-defined packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct App<'a> {
    /// The 5-bit subtype.
    pub subtype: u8,
    /// SSRC of the sender.
    pub ssrc: u32,
    /// Four ASCII characters.
    pub name: [u8; 4],
    /// Application data.
    pub data: &'a [u8],
}

/// Any RTPFB/PSFB packet: sender, media source and raw feedback control information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feedback<'a> {
    /// 205 or 206.
    pub packet_type: u8,
    /// Feedback message type.
    pub fmt: u8,
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// SSRC of the media source.
    pub media_ssrc: u32,
    /// Feedback control information.
    pub fci: &'a [u8],
}

/// Generic NACK: `(pid, blp)` pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nack<'a> {
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// SSRC of the media source.
    pub media_ssrc: u32,
    fci: &'a [u8],
}

/// One generic NACK entry: packet id and bitmask of the 16 following lost packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NackPair {
    /// Lost packet id.
    pub pid: u16,
    /// Bit i set: `pid + i + 1` lost too.
    pub blp: u16,
}

impl<'a> Nack<'a> {
    /// The `(pid, blp)` pairs.
    pub fn pairs(&self) -> impl Iterator<Item = NackPair> + 'a {
        self.fci.chunks_exact(4).filter_map(|c| match c {
            [a, b, c, d] => Some(NackPair {
                pid: u16::from_be_bytes([*a, *b]),
                blp: u16::from_be_bytes([*c, *d]),
            }),
            _ => None,
        })
    }
    /// Every lost sequence number, in the order the pairs list them.
    pub fn lost(&self) -> impl Iterator<Item = u16> + 'a {
        self.pairs().flat_map(|p| {
            std::iter::once(p.pid).chain(
                (0..16u16)
                    .filter(move |i| p.blp & (1 << i) != 0)
                    .map(move |i| p.pid.wrapping_add(i + 1)),
            )
        })
    }
}

/// Transport-wide CC feedback header fields (draft-holmer-rmcat-transport-wide-cc-extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportCc<'a> {
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// SSRC of the media source.
    pub media_ssrc: u32,
    /// Transport-wide sequence number of the first packet reported.
    pub base_sequence: u16,
    /// Number of packets this feedback reports on.
    pub status_count: u16,
    /// Raw 24-bit reference time, in multiples of 64 ms.
    pub reference_time: u32,
    /// Feedback packet count.
    pub feedback_count: u8,
    /// Packet status chunks and receive deltas, undecoded.
    pub chunks: &'a [u8],
}

/// Picture loss indication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pli {
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// SSRC of the media source.
    pub media_ssrc: u32,
}

/// Full intra request: entries of target SSRC and command sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fir<'a> {
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// Header media SSRC (0 by RFC 5104).
    pub media_ssrc: u32,
    fci: &'a [u8],
}

/// One FIR entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirEntry {
    /// The media sender asked for a decoder refresh point.
    pub ssrc: u32,
    /// Command sequence number.
    pub seq_nr: u8,
}

impl<'a> Fir<'a> {
    /// The entries.
    pub fn entries(&self) -> impl Iterator<Item = FirEntry> + 'a {
        self.fci.chunks_exact(8).filter_map(|c| {
            Some(FirEntry {
                ssrc: read_u32(c, 0)?,
                seq_nr: *c.get(4)?,
            })
        })
    }
}

/// Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remb<'a> {
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// Header media SSRC (0 by the draft).
    pub media_ssrc: u32,
    /// Estimated bitrate in bits per second, `mantissa << exp` (saturating).
    pub bitrate: u64,
    ssrcs: &'a [u8],
}

impl<'a> Remb<'a> {
    /// The SSRCs the estimate applies to.
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + 'a {
        ssrc_list(self.ssrcs)
    }
}

fn feedback(pt: u8, fmt: u8, body: &[u8]) -> Result<Rtcp<'_>, WireError> {
    let sender_ssrc = read_u32(body, 0).ok_or(WireError::TooShort)?;
    let media_ssrc = read_u32(body, 4).ok_or(WireError::TooShort)?;
    let fci = body.get(8..).unwrap_or(&[]);
    let list = |unit: usize| {
        if fci.is_empty() || fci.len() % unit != 0 {
            Err(WireError::BadLength)
        } else {
            Ok(fci)
        }
    };
    Ok(match (pt, fmt) {
        (PT_RTPFB, 1) => Rtcp::Nack(Nack {
            sender_ssrc,
            media_ssrc,
            fci: list(4)?,
        }),
        (PT_RTPFB, 15) => {
            let reference = read_u32(fci, 4).ok_or(WireError::TooShort)?;
            Rtcp::TransportCc(TransportCc {
                sender_ssrc,
                media_ssrc,
                base_sequence: read_u16(fci, 0).ok_or(WireError::TooShort)?,
                status_count: read_u16(fci, 2).ok_or(WireError::TooShort)?,
                reference_time: reference >> 8,
                feedback_count: (reference & 0xff) as u8,
                chunks: fci.get(8..).unwrap_or(&[]),
            })
        }
        (PT_PSFB, 1) => Rtcp::Pli(Pli {
            sender_ssrc,
            media_ssrc,
        }),
        (PT_PSFB, 4) => Rtcp::Fir(Fir {
            sender_ssrc,
            media_ssrc,
            fci: list(8)?,
        }),
        (PT_PSFB, 15) if fci.get(..4) == Some(b"REMB") => {
            let num = usize::from(*fci.get(4).ok_or(WireError::TooShort)?);
            let word = read_u32(fci, 4).ok_or(WireError::TooShort)?;
            let exp = (word >> 18) & 0x3f;
            let mantissa = u128::from(word & 0x3_ffff);
            let ssrcs = fci.get(8..8 + 4 * num).ok_or(WireError::BadLength)?;
            let bitrate = u64::try_from(mantissa << exp).unwrap_or(u64::MAX);
            Rtcp::Remb(Remb {
                sender_ssrc,
                media_ssrc,
                bitrate,
                ssrcs,
            })
        }
        _ => Rtcp::Feedback(Feedback {
            packet_type: pt,
            fmt,
            sender_ssrc,
            media_ssrc,
            fci,
        }),
    })
}

/// Write a common header for a packet of `total` bytes (a multiple of 4) at the start of `buf`.
fn write_header(buf: &mut [u8], count: u8, pt: u8, total: usize) -> Result<usize, WireError> {
    if count > 31 {
        return Err(WireError::InvalidInput);
    }
    let words = u16::try_from(total / 4 - 1).map_err(|_| WireError::InvalidInput)?;
    if buf.len() < total {
        return Err(WireError::BufferTooSmall);
    }
    write_at(buf, 0, &[0x80 | count, pt])?;
    write_at(buf, 2, &words.to_be_bytes())?;
    Ok(total)
}

/// Write an SR with up to 31 report blocks; returns the bytes written.
pub fn write_sender_report(
    buf: &mut [u8],
    info: &SenderInfo,
    blocks: &[ReportBlock],
) -> Result<usize, WireError> {
    let count = u8::try_from(blocks.len()).map_err(|_| WireError::InvalidInput)?;
    let total = write_header(buf, count, PT_SR, 28 + REPORT_BLOCK_LEN * blocks.len())?;
    write_at(buf, 4, &info.ssrc.to_be_bytes())?;
    write_at(buf, 8, &info.ntp_timestamp.to_be_bytes())?;
    write_at(buf, 16, &info.rtp_timestamp.to_be_bytes())?;
    write_at(buf, 20, &info.packet_count.to_be_bytes())?;
    write_at(buf, 24, &info.octet_count.to_be_bytes())?;
    for (i, b) in blocks.iter().enumerate() {
        b.write(buf, 28 + REPORT_BLOCK_LEN * i)?;
    }
    Ok(total)
}

/// Write an RR with up to 31 report blocks; returns the bytes written.
pub fn write_receiver_report(
    buf: &mut [u8],
    ssrc: u32,
    blocks: &[ReportBlock],
) -> Result<usize, WireError> {
    let count = u8::try_from(blocks.len()).map_err(|_| WireError::InvalidInput)?;
    let total = write_header(buf, count, PT_RR, 8 + REPORT_BLOCK_LEN * blocks.len())?;
    write_at(buf, 4, &ssrc.to_be_bytes())?;
    for (i, b) in blocks.iter().enumerate() {
        b.write(buf, 8 + REPORT_BLOCK_LEN * i)?;
    }
    Ok(total)
}

/// Write an SDES with one chunk holding a CNAME item; returns the bytes written.
pub fn write_sdes_cname(buf: &mut [u8], ssrc: u32, cname: &[u8]) -> Result<usize, WireError> {
    let len = u8::try_from(cname.len()).map_err(|_| WireError::InvalidInput)?;
    // SSRC, type, length, text, then 1..=4 null octets up to a word boundary.
    let total = HEADER_LEN + (4 + 2 + cname.len() + 1).div_ceil(4) * 4;
    write_header(buf, 1, PT_SDES, total)?;
    write_at(buf, 4, &ssrc.to_be_bytes())?;
    write_at(buf, 8, &[SDES_CNAME, len])?;
    write_at(buf, 10, cname)?;
    for at in 10 + cname.len()..total {
        write_at(buf, at, &[0])?;
    }
    Ok(total)
}

fn write_feedback_header(
    buf: &mut [u8],
    fmt: u8,
    pt: u8,
    fci_len: usize,
    ssrcs: [u32; 2],
) -> Result<usize, WireError> {
    let total = write_header(buf, fmt, pt, 12 + fci_len)?;
    write_at(buf, 4, &ssrcs[0].to_be_bytes())?;
    write_at(buf, 8, &ssrcs[1].to_be_bytes())?;
    Ok(total)
}

/// Write a generic NACK from `(pid, blp)` pairs (at least one); returns the bytes written.
pub fn write_nack(
    buf: &mut [u8],
    sender_ssrc: u32,
    media_ssrc: u32,
    pairs: &[NackPair],
) -> Result<usize, WireError> {
    if pairs.is_empty() {
        return Err(WireError::InvalidInput);
    }
    let total =
        write_feedback_header(buf, 1, PT_RTPFB, 4 * pairs.len(), [sender_ssrc, media_ssrc])?;
    for (i, p) in pairs.iter().enumerate() {
        write_at(buf, 12 + 4 * i, &p.pid.to_be_bytes())?;
        write_at(buf, 14 + 4 * i, &p.blp.to_be_bytes())?;
    }
    Ok(total)
}

/// Write a generic NACK for lost sequence numbers given in ascending (wrapping) order, packing
/// them into as few pairs as that order allows; returns the bytes written.
pub fn write_nack_lost(
    buf: &mut [u8],
    sender_ssrc: u32,
    media_ssrc: u32,
    lost: &[u16],
) -> Result<usize, WireError> {
    let mut pos = 12;
    let mut current: Option<NackPair> = None;
    for &seq in lost {
        if let Some(pair) = current.as_mut() {
            let d = seq.wrapping_sub(pair.pid);
            if (1..=16).contains(&d) {
                pair.blp |= 1 << (d - 1);
                continue;
            }
            write_at(buf, pos, &pair.pid.to_be_bytes())?;
            write_at(buf, pos + 2, &pair.blp.to_be_bytes())?;
            pos += 4;
        }
        current = Some(NackPair { pid: seq, blp: 0 });
    }
    let last = current.ok_or(WireError::InvalidInput)?;
    write_at(buf, pos, &last.pid.to_be_bytes())?;
    write_at(buf, pos + 2, &last.blp.to_be_bytes())?;
    write_feedback_header(buf, 1, PT_RTPFB, pos + 4 - 12, [sender_ssrc, media_ssrc])
}

/// Write a PLI; returns the bytes written (12).
pub fn write_pli(buf: &mut [u8], sender_ssrc: u32, media_ssrc: u32) -> Result<usize, WireError> {
    write_feedback_header(buf, 1, PT_PSFB, 0, [sender_ssrc, media_ssrc])
}

/// Write a FIR with at least one entry; returns the bytes written.
pub fn write_fir(
    buf: &mut [u8],
    sender_ssrc: u32,
    entries: &[FirEntry],
) -> Result<usize, WireError> {
    if entries.is_empty() {
        return Err(WireError::InvalidInput);
    }
    let total = write_feedback_header(buf, 4, PT_PSFB, 8 * entries.len(), [sender_ssrc, 0])?;
    for (i, e) in entries.iter().enumerate() {
        write_at(buf, 12 + 8 * i, &e.ssrc.to_be_bytes())?;
        write_at(buf, 16 + 8 * i, &[e.seq_nr, 0, 0, 0])?;
    }
    Ok(total)
}

/// Write a REMB (bitrate rounded down to 18 bits of mantissa); returns the bytes written.
pub fn write_remb(
    buf: &mut [u8],
    sender_ssrc: u32,
    bitrate: u64,
    ssrcs: &[u32],
) -> Result<usize, WireError> {
    let num = u8::try_from(ssrcs.len()).map_err(|_| WireError::InvalidInput)?;
    let total = write_feedback_header(buf, 15, PT_PSFB, 8 + 4 * ssrcs.len(), [sender_ssrc, 0])?;
    let mut exp = 0u32;
    let mut mantissa = bitrate;
    while mantissa >= 1 << 18 {
        mantissa >>= 1;
        exp += 1;
    }
    let word = (u32::from(num) << 24) | (exp << 18) | mantissa as u32;
    write_at(buf, 12, b"REMB")?;
    write_at(buf, 16, &word.to_be_bytes())?;
    for (i, s) in ssrcs.iter().enumerate() {
        write_at(buf, 20 + 4 * i, &s.to_be_bytes())?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(buf: &[u8]) -> Rtcp<'_> {
        let mut it = RtcpIter::new(buf);
        let p = it.next().unwrap().unwrap();
        assert!(it.next().is_none());
        p.typed().unwrap()
    }

    const BLOCK: ReportBlock = ReportBlock {
        ssrc: 0x0a0b_0c0d,
        fraction_lost: 25,
        cumulative_lost: -3,
        highest_seq: 0x0001_0203,
        jitter: 17,
        last_sr: 0x1234_5678,
        delay_since_last_sr: 65536,
    };

    #[test]
    fn sender_report_hand_bytes() {
        #[rustfmt::skip]
        let buf = [
            0x81, 200, 0x00, 0x0c,
            0, 0, 0, 1,                                 // sender ssrc
            0xe0, 0, 0, 1, 0x80, 0, 0, 0,               // ntp
            0, 0, 0x30, 0x39,                           // rtp ts 12345
            0, 0, 0, 10, 0, 0, 0x04, 0,                 // 10 packets, 1024 octets
            0, 0, 0, 2, 0x40, 0xff, 0xff, 0xfe,         // block: ssrc 2, 25%, lost -2
            0, 1, 0, 5, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let Rtcp::SenderReport(sr) = only(&buf) else {
            panic!("not an SR")
        };
        assert_eq!(sr.info.ssrc, 1);
        assert_eq!(sr.info.ntp_timestamp, 0xe000_0001_8000_0000);
        assert_eq!(sr.info.rtp_timestamp, 12345);
        assert_eq!((sr.info.packet_count, sr.info.octet_count), (10, 1024));
        let blocks: Vec<_> = sr.report_blocks.collect();
        assert_eq!(blocks.len(), 1);
        assert_eq!((blocks[0].ssrc, blocks[0].fraction_lost), (2, 0x40));
        assert_eq!(blocks[0].cumulative_lost, -2);
        assert_eq!((blocks[0].highest_seq, blocks[0].jitter), (0x0001_0005, 9));
    }

    #[test]
    fn sr_rr_sdes_round_trip_as_compound() {
        let mut buf = [0u8; 256];
        let info = SenderInfo {
            ssrc: 7,
            ntp_timestamp: 0x0102_0304_0506_0708,
            rtp_timestamp: 90_000,
            packet_count: 3,
            octet_count: 3000,
        };
        let mut n = write_sender_report(&mut buf, &info, &[BLOCK, BLOCK]).unwrap();
        assert_eq!(n, 28 + 48);
        n += write_receiver_report(&mut buf[n..], 8, &[BLOCK]).unwrap();
        n += write_sdes_cname(&mut buf[n..], 7, b"tern-relay").unwrap();
        let packets: Vec<_> = RtcpIter::new(&buf[..n]).map(|p| p.unwrap()).collect();
        assert_eq!(packets.len(), 3);
        assert_eq!(
            packets.iter().map(|p| p.sender_ssrc()).collect::<Vec<_>>(),
            [Some(7), Some(8), Some(7)]
        );
        assert!(packets.iter().all(|p| p.media_ssrc().is_none()));
        let Rtcp::SenderReport(sr) = packets[0].typed().unwrap() else {
            panic!()
        };
        assert_eq!(sr.info, info);
        assert_eq!(sr.report_blocks.collect::<Vec<_>>(), [BLOCK, BLOCK]);
        let Rtcp::ReceiverReport(rr) = packets[1].typed().unwrap() else {
            panic!()
        };
        assert_eq!(
            (rr.ssrc, rr.report_blocks.collect::<Vec<_>>()),
            (8, vec![BLOCK])
        );
        let Rtcp::SourceDescription(sdes) = packets[2].typed().unwrap() else {
            panic!()
        };
        let chunks: Vec<_> = sdes.chunks().collect();
        assert_eq!(chunks.len(), 1);
        assert_eq!(
            (chunks[0].ssrc, chunks[0].cname()),
            (7, Some(&b"tern-relay"[..]))
        );
        assert_eq!(
            write_sender_report(&mut buf[..75], &info, &[BLOCK, BLOCK]),
            Err(WireError::BufferTooSmall)
        );
        assert_eq!(
            write_receiver_report(&mut buf, 1, &[BLOCK; 32]),
            Err(WireError::InvalidInput)
        );
    }

    #[test]
    fn iteration_stops_on_bad_header() {
        let mut buf = [0u8; 64];
        let n = write_pli(&mut buf, 1, 2).unwrap();
        // Second packet with version 1.
        buf[n] = 0x41;
        buf[n + 1] = 201;
        let got: Vec<_> = RtcpIter::new(&buf[..n + 4]).collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        assert_eq!(got[1], Err(WireError::BadVersion));
        // Length beyond the buffer.
        assert_eq!(
            RtcpIter::new(&buf[..n - 1]).collect::<Vec<_>>(),
            vec![Err(WireError::BadLength)]
        );
        // Trailing bytes shorter than a header.
        assert_eq!(
            RtcpIter::new(&buf[..n + 2]).nth(1),
            Some(Err(WireError::TooShort))
        );
    }

    #[test]
    fn padding_is_removed_and_checked() {
        // RR with no blocks padded by 4 bytes.
        let mut buf = [0xa0, 201, 0, 2, 0, 0, 0, 9, 0, 0, 0, 4];
        let p = RtcpPacket::parse(&buf).unwrap();
        assert_eq!(p.body(), &[0, 0, 0, 9]);
        buf[11] = 0;
        assert_eq!(RtcpPacket::parse(&buf), Err(WireError::BadLength));
        buf[11] = 9;
        assert_eq!(RtcpPacket::parse(&buf), Err(WireError::BadLength));
    }

    #[test]
    fn nack_pairs_and_lost_sequence_numbers() {
        let mut buf = [0u8; 64];
        let lost = [65534, 65535, 0, 15, 14, 40];
        let n = write_nack_lost(&mut buf, 1, 2, &lost).unwrap();
        let Rtcp::Nack(nack) = only(&buf[..n]) else {
            panic!()
        };
        assert_eq!((nack.sender_ssrc, nack.media_ssrc), (1, 2));
        let pairs: Vec<_> = nack.pairs().collect();
        assert_eq!(
            pairs[0],
            NackPair {
                pid: 65534,
                blp: 0b11
            }
        );
        assert_eq!(
            pairs.len(),
            4,
            "15 is 17 past 65534; 14 after 15 starts a pair"
        );
        assert_eq!(nack.lost().collect::<Vec<_>>(), lost);
        let n = write_nack(
            &mut buf,
            3,
            4,
            &[NackPair {
                pid: 100,
                blp: 0b101,
            }],
        )
        .unwrap();
        let Rtcp::Nack(nack) = only(&buf[..n]) else {
            panic!()
        };
        assert_eq!(nack.lost().collect::<Vec<_>>(), [100, 101, 103]);
        assert_eq!(
            write_nack_lost(&mut buf, 1, 2, &[]),
            Err(WireError::InvalidInput)
        );
    }

    #[test]
    fn pli_fir_remb_round_trip() {
        let mut buf = [0u8; 64];
        let n = write_pli(&mut buf, 5, 6).unwrap();
        assert_eq!(n, 12);
        assert_eq!(
            only(&buf[..n]),
            Rtcp::Pli(Pli {
                sender_ssrc: 5,
                media_ssrc: 6
            })
        );
        let entries = [
            FirEntry { ssrc: 9, seq_nr: 3 },
            FirEntry {
                ssrc: 10,
                seq_nr: 255,
            },
        ];
        let n = write_fir(&mut buf, 5, &entries).unwrap();
        let Rtcp::Fir(fir) = only(&buf[..n]) else {
            panic!()
        };
        assert_eq!(fir.entries().collect::<Vec<_>>(), entries);
        let n = write_remb(&mut buf, 5, 1_000_000, &[11, 12]).unwrap();
        assert_eq!(buf[12..20], [b'R', b'E', b'M', b'B', 2, 0x0b, 0xd0, 0x90]);
        let Rtcp::Remb(remb) = only(&buf[..n]) else {
            panic!()
        };
        assert_eq!(remb.bitrate, 1_000_000);
        assert_eq!(remb.ssrcs().collect::<Vec<_>>(), [11, 12]);
        assert_eq!(RtcpPacket::parse(&buf[..n]).unwrap().media_ssrc(), Some(0));
    }

    #[test]
    fn remb_bitrate_saturates() {
        let buf = [
            0x8f, 206, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, b'R', b'E', b'M', b'B', 0, 0xff, 0xff, 0xff,
        ];
        let Rtcp::Remb(remb) = only(&buf) else {
            panic!()
        };
        assert_eq!(remb.bitrate, u64::MAX);
    }

    #[test]
    fn transport_cc_header_fields() {
        #[rustfmt::skip]
        let buf = [
            0x8f, 205, 0, 5, 0, 0, 0, 1, 0, 0, 0, 2,
            0x01, 0x00, 0x00, 0x03, 0x12, 0x34, 0x56, 0x07,
            0x20, 0x03, 0x04, 0x00,
        ];
        let Rtcp::TransportCc(t) = only(&buf) else {
            panic!()
        };
        assert_eq!(
            (t.sender_ssrc, t.media_ssrc, t.base_sequence, t.status_count),
            (1, 2, 256, 3)
        );
        assert_eq!((t.reference_time, t.feedback_count), (0x12_3456, 7));
        assert_eq!(t.chunks, &[0x20, 0x03, 0x04, 0x00]);
    }

    #[test]
    fn bye_app_and_unknown_feedback() {
        let buf = [
            0x82, 203, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2, 3, b'b', b'y', b'e', 0, 0, 0, 0,
        ];
        let Rtcp::Bye(bye) = only(&buf) else { panic!() };
        assert_eq!(bye.ssrcs().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(bye.reason, Some(&b"bye"[..]));
        let bad = [0x82, 203, 0, 1, 0, 0, 0, 1];
        assert_eq!(
            RtcpPacket::parse(&bad).unwrap().typed(),
            Err(WireError::BadLength)
        );
        let app = [
            0x83, 204, 0, 3, 0, 0, 0, 1, b't', b'e', b'r', b'n', 1, 2, 3, 4,
        ];
        let Rtcp::App(app) = only(&app) else { panic!() };
        assert_eq!(
            (app.subtype, app.ssrc, &app.name, app.data),
            (3, 1, b"tern", &[1, 2, 3, 4][..])
        );
        let fb = [0x83, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        let Rtcp::Feedback(fb) = only(&fb) else {
            panic!()
        };
        assert_eq!((fb.packet_type, fb.fmt, fb.media_ssrc), (206, 3, 2));
    }

    #[test]
    fn sdes_chunk_overrun_is_rejected() {
        // Two chunks announced, one present.
        let mut buf = [0u8; 64];
        let n = write_sdes_cname(&mut buf, 7, b"x").unwrap();
        buf[0] = 0x82;
        assert_eq!(
            RtcpPacket::parse(&buf[..n]).unwrap().typed(),
            Err(WireError::TooShort)
        );
        // Item length running past the body.
        buf[0] = 0x81;
        buf[9] = 200;
        assert_eq!(
            RtcpPacket::parse(&buf[..n]).unwrap().typed(),
            Err(WireError::BadLength)
        );
    }

    proptest::proptest! {
        #[test]
        fn iteration_never_panics(buf in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            for p in RtcpIter::new(&buf).flatten() {
                let _ = (p.sender_ssrc(), p.media_ssrc());
                if let Ok(Rtcp::Nack(n)) = p.typed() {
                    proptest::prop_assert!(n.lost().count() <= 17 * buf.len());
                }
            }
        }
    }
}
