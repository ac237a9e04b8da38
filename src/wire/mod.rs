//! Packet formats: RFC 7983 demux, RTP, RTCP and STUN, parsed and built over byte slices.
//!
//! `wire` owns no state, does no I/O and reads no clock. Every parser is bounds-checked and
//! returns a `WireError` reason for bad input; nothing here may panic on any byte sequence.

pub mod dd;
pub mod demux;
pub mod keyframe;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod stun;
pub mod twcc;
pub mod vp8;
pub mod vp9;

/// What an RTP stream carries: audio or video. Decides the relay's retransmission cache and
/// keyframe handling; SDP's `m=` lines map onto it (`sdp::MediaKind::track_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// Audio track.
    Audio,
    /// Video track.
    Video,
}

/// Why a packet could not be parsed or built. `Copy`, so the fast path can count it and drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The buffer ends before the structure it announces.
    #[error("packet too short")]
    TooShort,
    /// A version field is not the one this format uses.
    #[error("bad version")]
    BadVersion,
    /// A length, count or padding field contradicts the buffer.
    #[error("bad length field")]
    BadLength,
    /// A field holds a value the format forbids.
    #[error("malformed field")]
    Malformed,
    /// The output buffer cannot hold what is being built.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// A builder was given an argument the format cannot carry (API misuse, not peer input).
    #[error("invalid builder argument")]
    InvalidInput,
}

/// Big-endian `u16` at `at`, or `None` past the end of `buf`.
pub(crate) fn read_u16(buf: &[u8], at: usize) -> Option<u16> {
    let bytes = buf.get(at..at.checked_add(2)?)?;
    bytes.try_into().ok().map(u16::from_be_bytes)
}

/// Big-endian `u32` at `at`, or `None` past the end of `buf`.
pub(crate) fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    bytes.try_into().ok().map(u32::from_be_bytes)
}

/// Copy `bytes` into `buf` at `at`, or `BufferTooSmall` if they do not fit.
pub(crate) fn write_at(buf: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), WireError> {
    let end = at
        .checked_add(bytes.len())
        .ok_or(WireError::BufferTooSmall)?;
    buf.get_mut(at..end)
        .ok_or(WireError::BufferTooSmall)?
        .copy_from_slice(bytes);
    Ok(())
}
