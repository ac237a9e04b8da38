//! Packet formats: RFC 7983 demux, RTP, RTCP and STUN, parsed and built over byte slices.
//!
//! `wire` owns no state, does no I/O and reads no clock. Every parser is bounds-checked and
//! returns a `WireError` reason for bad input; nothing here may panic on any byte sequence.

pub mod demux;
pub mod rtcp;
pub mod rtp;
pub mod stun;

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
