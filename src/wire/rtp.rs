//! RTP (RFC 3550) header view and in-place editing, CSRCs, header extensions (RFC 8285), padding.

use super::WireError;

/// Fixed RTP header length, before CSRCs and extensions.
pub const FIXED_HEADER_LEN: usize = 12;

/// Length of the RTP header of `buf` (fixed part, CSRCs and the header extension if present),
/// checked against the buffer. This is what SRTP authenticates but does not encrypt.
pub fn header_len(buf: &[u8]) -> Result<usize, WireError> {
    if buf.len() < FIXED_HEADER_LEN {
        return Err(WireError::TooShort);
    }
    if buf[0] >> 6 != 2 {
        return Err(WireError::BadVersion);
    }
    let cc = usize::from(buf[0] & 0x0f);
    let mut len = FIXED_HEADER_LEN + 4 * cc;
    if buf[0] & 0x10 != 0 {
        if buf.len() < len + 4 {
            return Err(WireError::TooShort);
        }
        let words = usize::from(u16::from_be_bytes([buf[len + 2], buf[len + 3]]));
        len += 4 + 4 * words;
    }
    if buf.len() < len {
        return Err(WireError::TooShort);
    }
    Ok(len)
}
