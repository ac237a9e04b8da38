//! STUN messages (RFC 8489 / RFC 5389) with the ICE attributes of RFC 8445: parse, verify and
//! build over byte slices.
//!
//! `StunMessage::parse` checks the header (top bits, magic cookie, length) and frames every
//! attribute once; accessors then read attributes that precede MESSAGE-INTEGRITY (those after it,
//! other than a final FINGERPRINT, are ignored as RFC 5389 §15.4 requires). `verify_integrity`
//! compares the HMAC-SHA1 in constant time. `StunWriter` builds a message in a caller buffer.
//! Nothing here allocates, keeps state or panics on any input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::{read_u16, read_u32, write_at, WireError};

/// The fixed magic cookie of RFC 5389.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of the STUN header.
pub const HEADER_LEN: usize = 20;
/// XORed into the CRC-32 of FINGERPRINT.
pub const FINGERPRINT_XOR: u32 = 0x5354_554e;
/// The Binding method.
pub const METHOD_BINDING: u16 = 0x001;

/// USERNAME.
pub const ATTR_USERNAME: u16 = 0x0006;
/// MESSAGE-INTEGRITY (HMAC-SHA1).
pub const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
/// ERROR-CODE.
pub const ATTR_ERROR_CODE: u16 = 0x0009;
/// XOR-MAPPED-ADDRESS.
pub const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// PRIORITY (ICE).
pub const ATTR_PRIORITY: u16 = 0x0024;
/// USE-CANDIDATE (ICE).
pub const ATTR_USE_CANDIDATE: u16 = 0x0025;
/// SOFTWARE.
pub const ATTR_SOFTWARE: u16 = 0x8022;
/// FINGERPRINT.
pub const ATTR_FINGERPRINT: u16 = 0x8028;
/// ICE-CONTROLLED.
pub const ATTR_ICE_CONTROLLED: u16 = 0x8029;
/// ICE-CONTROLLING.
pub const ATTR_ICE_CONTROLLING: u16 = 0x802A;

const INTEGRITY_LEN: usize = 20;

/// The class of a STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StunClass {
    /// Request (C1 C0 = 00).
    Request,
    /// Indication (01).
    Indication,
    /// Success response (10).
    SuccessResponse,
    /// Error response (11).
    ErrorResponse,
}

/// The 14-bit message type for `class` and a 12-bit `method` (higher bits are dropped).
pub fn message_type(class: StunClass, method: u16) -> u16 {
    let c = match class {
        StunClass::Request => 0x000,
        StunClass::Indication => 0x010,
        StunClass::SuccessResponse => 0x100,
        StunClass::ErrorResponse => 0x110,
    };
    let m = method & 0x0fff;
    c | (m & 0x000f) | ((m & 0x0070) << 1) | ((m & 0x0f80) << 2)
}

/// Split a message type into class and method.
pub fn split_message_type(t: u16) -> (StunClass, u16) {
    let class = match t & 0x110 {
        0x000 => StunClass::Request,
        0x010 => StunClass::Indication,
        0x100 => StunClass::SuccessResponse,
        _ => StunClass::ErrorResponse,
    };
    let method = (t & 0x000f) | ((t >> 1) & 0x0070) | ((t >> 2) & 0x0f80);
    (class, method)
}

/// One attribute as framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    /// Attribute type.
    pub kind: u16,
    /// Value, without padding.
    pub value: &'a [u8],
}

/// An attribute decoded by type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunAttribute<'a> {
    /// USERNAME (UTF-8 bytes, unchecked).
    Username(&'a [u8]),
    /// MESSAGE-INTEGRITY: the 20-byte HMAC-SHA1.
    MessageIntegrity(&'a [u8]),
    /// FINGERPRINT value.
    Fingerprint(u32),
    /// XOR-MAPPED-ADDRESS, un-XORed.
    XorMappedAddress(SocketAddr),
    /// ERROR-CODE: code 300..=699 and reason phrase.
    ErrorCode {
        /// Class * 100 + number.
        code: u16,
        /// UTF-8 reason phrase, unchecked.
        reason: &'a [u8],
    },
    /// PRIORITY.
    Priority(u32),
    /// USE-CANDIDATE.
    UseCandidate,
    /// ICE-CONTROLLED tie-breaker.
    IceControlled(u64),
    /// ICE-CONTROLLING tie-breaker.
    IceControlling(u64),
    /// SOFTWARE.
    Software(&'a [u8]),
    /// Any other attribute.
    Other(RawAttribute<'a>),
}

fn fixed<const N: usize>(value: &[u8]) -> Result<[u8; N], WireError> {
    value.try_into().map_err(|_| WireError::BadLength)
}

impl<'a> RawAttribute<'a> {
    /// Decode by type; `transaction_id` un-XORs IPv6 addresses.
    pub fn decode(&self, transaction_id: &[u8; 12]) -> Result<StunAttribute<'a>, WireError> {
        let v = self.value;
        Ok(match self.kind {
            ATTR_USERNAME => StunAttribute::Username(v),
            ATTR_SOFTWARE => StunAttribute::Software(v),
            ATTR_MESSAGE_INTEGRITY if v.len() == INTEGRITY_LEN => {
                StunAttribute::MessageIntegrity(v)
            }
            ATTR_MESSAGE_INTEGRITY => return Err(WireError::BadLength),
            ATTR_FINGERPRINT => StunAttribute::Fingerprint(u32::from_be_bytes(fixed(v)?)),
            ATTR_PRIORITY => StunAttribute::Priority(u32::from_be_bytes(fixed(v)?)),
            ATTR_USE_CANDIDATE if v.is_empty() => StunAttribute::UseCandidate,
            ATTR_USE_CANDIDATE => return Err(WireError::BadLength),
            ATTR_ICE_CONTROLLED => StunAttribute::IceControlled(u64::from_be_bytes(fixed(v)?)),
            ATTR_ICE_CONTROLLING => StunAttribute::IceControlling(u64::from_be_bytes(fixed(v)?)),
            ATTR_XOR_MAPPED_ADDRESS => {
                StunAttribute::XorMappedAddress(decode_xor_address(v, transaction_id)?)
            }
            ATTR_ERROR_CODE => {
                let head: [u8; 4] = v.get(..4).ok_or(WireError::TooShort).and_then(fixed)?;
                let (class, number) = (u16::from(head[2] & 0x07), u16::from(head[3]));
                if !(3..=6).contains(&class) || number > 99 {
                    return Err(WireError::Malformed);
                }
                StunAttribute::ErrorCode {
                    code: class * 100 + number,
                    reason: v.get(4..).unwrap_or(&[]),
                }
            }
            _ => StunAttribute::Other(*self),
        })
    }
}

fn xor_key(transaction_id: &[u8; 12]) -> [u8; 16] {
    let mut key = [0u8; 16];
    for (k, b) in key
        .iter_mut()
        .zip(MAGIC_COOKIE.to_be_bytes().iter().chain(transaction_id))
    {
        *k = *b;
    }
    key
}

fn decode_xor_address(v: &[u8], transaction_id: &[u8; 12]) -> Result<SocketAddr, WireError> {
    let port = read_u16(v, 2).ok_or(WireError::TooShort)? ^ (MAGIC_COOKIE >> 16) as u16;
    let key = xor_key(transaction_id);
    let ip = match (v.get(1), v.len()) {
        (Some(1), 8) => {
            let mut a: [u8; 4] = v.get(4..8).ok_or(WireError::TooShort).and_then(fixed)?;
            a.iter_mut().zip(key).for_each(|(x, k)| *x ^= k);
            IpAddr::V4(Ipv4Addr::from(a))
        }
        (Some(2), 20) => {
            let mut a: [u8; 16] = v.get(4..20).ok_or(WireError::TooShort).and_then(fixed)?;
            a.iter_mut().zip(key).for_each(|(x, k)| *x ^= k);
            IpAddr::V6(Ipv6Addr::from(a))
        }
        (Some(1 | 2), _) => return Err(WireError::BadLength),
        _ => return Err(WireError::Malformed),
    };
    Ok(SocketAddr::new(ip, port))
}

/// A validated STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StunMessage<'a> {
    buf: &'a [u8],
    class: StunClass,
    method: u16,
    transaction_id: [u8; 12],
    /// Offset of the first MESSAGE-INTEGRITY attribute.
    integrity_at: Option<usize>,
    /// Offset of a FINGERPRINT that is the last attribute.
    fingerprint_at: Option<usize>,
}

/// Bytes an attribute with a `len`-byte value takes, header and padding included.
fn attr_span(len: usize) -> usize {
    4 + len.div_ceil(4) * 4
}

impl<'a> StunMessage<'a> {
    /// Check the header and frame the attributes. `buf` must hold exactly one message.
    pub fn parse(buf: &'a [u8]) -> Result<Self, WireError> {
        if buf.len() < HEADER_LEN {
            return Err(WireError::TooShort);
        }
        let msg_type = read_u16(buf, 0).ok_or(WireError::TooShort)?;
        if msg_type & 0xc000 != 0 || read_u32(buf, 4) != Some(MAGIC_COOKIE) {
            return Err(WireError::Malformed);
        }
        let length = usize::from(read_u16(buf, 2).ok_or(WireError::TooShort)?);
        if length % 4 != 0 {
            return Err(WireError::BadLength);
        }
        let end = HEADER_LEN + length;
        if end > buf.len() {
            return Err(WireError::TooShort);
        }
        if end < buf.len() {
            return Err(WireError::BadLength);
        }
        let transaction_id = buf
            .get(8..HEADER_LEN)
            .ok_or(WireError::TooShort)
            .and_then(fixed)?;
        let (class, method) = split_message_type(msg_type);
        let mut msg = Self {
            buf,
            class,
            method,
            transaction_id,
            integrity_at: None,
            fingerprint_at: None,
        };
        let mut pos = HEADER_LEN;
        while pos < end {
            let kind = read_u16(buf, pos).ok_or(WireError::BadLength)?;
            let len = usize::from(read_u16(buf, pos + 2).ok_or(WireError::BadLength)?);
            let next = pos + attr_span(len);
            if next > end {
                return Err(WireError::BadLength);
            }
            msg.fingerprint_at = None;
            match kind {
                ATTR_MESSAGE_INTEGRITY if msg.integrity_at.is_none() => {
                    if len != INTEGRITY_LEN {
                        return Err(WireError::BadLength);
                    }
                    msg.integrity_at = Some(pos);
                }
                ATTR_FINGERPRINT => {
                    if len != 4 {
                        return Err(WireError::BadLength);
                    }
                    msg.fingerprint_at = Some(pos);
                }
                _ => {}
            }
            pos = next;
        }
        Ok(msg)
    }

    /// The message class.
    pub fn class(&self) -> StunClass {
        self.class
    }
    /// The 12-bit method.
    pub fn method(&self) -> u16 {
        self.method
    }
    /// True for a Binding request.
    pub fn is_binding_request(&self) -> bool {
        self.class == StunClass::Request && self.method == METHOD_BINDING
    }
    /// The 96-bit transaction id.
    pub fn transaction_id(&self) -> &[u8; 12] {
        &self.transaction_id
    }
    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Attributes up to and including MESSAGE-INTEGRITY, then a final FINGERPRINT.
    pub fn raw_attributes(&self) -> RawAttributes<'a> {
        let stop = match self.integrity_at {
            Some(at) => at + 4 + INTEGRITY_LEN,
            None => self.buf.len(),
        };
        RawAttributes {
            buf: self.buf,
            pos: HEADER_LEN,
            stop,
            fingerprint_at: self.fingerprint_at.filter(|&fp| fp >= stop),
        }
    }

    /// Attributes decoded by type (same selection as `raw_attributes`).
    pub fn attributes(&self) -> impl Iterator<Item = Result<StunAttribute<'a>, WireError>> + 'a {
        let id = self.transaction_id;
        self.raw_attributes().map(move |a| a.decode(&id))
    }

    fn find(&self, kind: u16) -> Option<StunAttribute<'a>> {
        self.raw_attributes()
            .find(|a| a.kind == kind)
            .and_then(|a| a.decode(&self.transaction_id).ok())
    }

    /// USERNAME, if present.
    pub fn username(&self) -> Option<&'a [u8]> {
        match self.find(ATTR_USERNAME)? {
            StunAttribute::Username(u) => Some(u),
            _ => None,
        }
    }
    /// SOFTWARE, if present.
    pub fn software(&self) -> Option<&'a [u8]> {
        match self.find(ATTR_SOFTWARE)? {
            StunAttribute::Software(s) => Some(s),
            _ => None,
        }
    }
    /// PRIORITY, if present and well formed.
    pub fn priority(&self) -> Option<u32> {
        match self.find(ATTR_PRIORITY)? {
            StunAttribute::Priority(p) => Some(p),
            _ => None,
        }
    }
    /// Whether a well-formed USE-CANDIDATE is present.
    pub fn use_candidate(&self) -> bool {
        self.find(ATTR_USE_CANDIDATE) == Some(StunAttribute::UseCandidate)
    }
    /// ICE-CONTROLLED tie-breaker, if present and well formed.
    pub fn ice_controlled(&self) -> Option<u64> {
        match self.find(ATTR_ICE_CONTROLLED)? {
            StunAttribute::IceControlled(t) => Some(t),
            _ => None,
        }
    }
    /// ICE-CONTROLLING tie-breaker, if present and well formed.
    pub fn ice_controlling(&self) -> Option<u64> {
        match self.find(ATTR_ICE_CONTROLLING)? {
            StunAttribute::IceControlling(t) => Some(t),
            _ => None,
        }
    }
    /// XOR-MAPPED-ADDRESS, if present and well formed.
    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        match self.find(ATTR_XOR_MAPPED_ADDRESS)? {
            StunAttribute::XorMappedAddress(a) => Some(a),
            _ => None,
        }
    }
    /// ERROR-CODE as `(code, reason)`, if present and well formed.
    pub fn error_code(&self) -> Option<(u16, &'a [u8])> {
        match self.find(ATTR_ERROR_CODE)? {
            StunAttribute::ErrorCode { code, reason } => Some((code, reason)),
            _ => None,
        }
    }

    /// Check MESSAGE-INTEGRITY with `key` (for ICE, the peer's password), in constant time.
    /// False when the attribute is absent.
    pub fn verify_integrity(&self, key: &[u8]) -> bool {
        let Some(at) = self.integrity_at else {
            return false;
        };
        let tag = self.buf.get(at + 4..at + 4 + INTEGRITY_LEN);
        let (Some(tag), Some(expected)) = (tag, integrity(self.buf, at, key)) else {
            return false;
        };
        expected.as_slice().ct_eq(tag).into()
    }

    /// Check a FINGERPRINT that is the last attribute. False when absent.
    pub fn verify_fingerprint(&self) -> bool {
        let Some(at) = self.fingerprint_at else {
            return false;
        };
        fingerprint(self.buf, at).is_some_and(|crc| read_u32(self.buf, at + 4) == Some(crc))
    }
}

/// Header bytes 0..4 with the length field set to end `extra` bytes after offset `at`.
fn adjusted_header(buf: &[u8], at: usize, extra: usize) -> Option<[u8; 4]> {
    let len = u16::try_from(at + extra - HEADER_LEN).ok()?.to_be_bytes();
    Some([*buf.first()?, *buf.get(1)?, len[0], len[1]])
}

/// HMAC-SHA1 of `buf[..at]` as RFC 5389 §15.4 defines it for an M-I attribute at `at`.
fn integrity(buf: &[u8], at: usize, key: &[u8]) -> Option<[u8; INTEGRITY_LEN]> {
    let header = adjusted_header(buf, at, 4 + INTEGRITY_LEN)?;
    let mut mac = Hmac::<Sha1>::new_from_slice(key).ok()?;
    mac.update(&header);
    mac.update(buf.get(4..at)?);
    mac.finalize().into_bytes().as_slice().try_into().ok()
}

/// FINGERPRINT value for an attribute at `at` (RFC 5389 §15.5).
fn fingerprint(buf: &[u8], at: usize) -> Option<u32> {
    let header = adjusted_header(buf, at, 8)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header);
    crc.update(buf.get(4..at)?);
    Some(crc.finalize() ^ FINGERPRINT_XOR)
}

/// Iterator over framed attributes (see `StunMessage::raw_attributes`).
#[derive(Debug, Clone)]
pub struct RawAttributes<'a> {
    buf: &'a [u8],
    pos: usize,
    stop: usize,
    fingerprint_at: Option<usize>,
}

impl<'a> Iterator for RawAttributes<'a> {
    type Item = RawAttribute<'a>;

    fn next(&mut self) -> Option<RawAttribute<'a>> {
        let at = if self.pos < self.stop {
            self.pos
        } else {
            self.fingerprint_at.take()?
        };
        let kind = read_u16(self.buf, at)?;
        let len = usize::from(read_u16(self.buf, at + 2)?);
        let value = self.buf.get(at + 4..at + 4 + len)?;
        if self.pos < self.stop {
            self.pos = at + attr_span(len);
        }
        Some(RawAttribute { kind, value })
    }
}

/// Builds a STUN message in a caller buffer, keeping the header length field up to date.
#[derive(Debug)]
pub struct StunWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    transaction_id: [u8; 12],
    padding_byte: u8,
}

impl<'b> StunWriter<'b> {
    /// Write the header of a message of `class` and 12-bit `method`.
    pub fn new(
        buf: &'b mut [u8],
        class: StunClass,
        method: u16,
        transaction_id: &[u8; 12],
    ) -> Result<Self, WireError> {
        if method > 0x0fff {
            return Err(WireError::InvalidInput);
        }
        write_at(buf, 0, &message_type(class, method).to_be_bytes())?;
        write_at(buf, 2, &[0, 0])?;
        write_at(buf, 4, &MAGIC_COOKIE.to_be_bytes())?;
        write_at(buf, 8, transaction_id)?;
        Ok(Self {
            buf,
            len: HEADER_LEN,
            transaction_id: *transaction_id,
            padding_byte: 0,
        })
    }

    /// Byte used to pad attribute values to 4 bytes (0 by default; any value is legal).
    pub fn set_padding_byte(&mut self, byte: u8) {
        self.padding_byte = byte;
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: the header is there from the start.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn set_length(&mut self, len: usize) -> Result<(), WireError> {
        let field = u16::try_from(len - HEADER_LEN).map_err(|_| WireError::InvalidInput)?;
        write_at(self.buf, 2, &field.to_be_bytes())
    }

    /// Append an attribute with padding.
    pub fn attribute(&mut self, kind: u16, value: &[u8]) -> Result<(), WireError> {
        let vlen = u16::try_from(value.len()).map_err(|_| WireError::InvalidInput)?;
        let end = self.len + attr_span(value.len());
        if end > self.buf.len() {
            return Err(WireError::BufferTooSmall);
        }
        self.set_length(end)?;
        write_at(self.buf, self.len, &kind.to_be_bytes())?;
        write_at(self.buf, self.len + 2, &vlen.to_be_bytes())?;
        write_at(self.buf, self.len + 4, value)?;
        for at in self.len + 4 + value.len()..end {
            write_at(self.buf, at, &[self.padding_byte])?;
        }
        self.len = end;
        Ok(())
    }

    /// USERNAME.
    pub fn username(&mut self, username: &[u8]) -> Result<(), WireError> {
        self.attribute(ATTR_USERNAME, username)
    }
    /// SOFTWARE.
    pub fn software(&mut self, software: &[u8]) -> Result<(), WireError> {
        self.attribute(ATTR_SOFTWARE, software)
    }
    /// PRIORITY.
    pub fn priority(&mut self, priority: u32) -> Result<(), WireError> {
        self.attribute(ATTR_PRIORITY, &priority.to_be_bytes())
    }
    /// USE-CANDIDATE.
    pub fn use_candidate(&mut self) -> Result<(), WireError> {
        self.attribute(ATTR_USE_CANDIDATE, &[])
    }
    /// ICE-CONTROLLED with a tie-breaker.
    pub fn ice_controlled(&mut self, tie_breaker: u64) -> Result<(), WireError> {
        self.attribute(ATTR_ICE_CONTROLLED, &tie_breaker.to_be_bytes())
    }
    /// ICE-CONTROLLING with a tie-breaker.
    pub fn ice_controlling(&mut self, tie_breaker: u64) -> Result<(), WireError> {
        self.attribute(ATTR_ICE_CONTROLLING, &tie_breaker.to_be_bytes())
    }
    /// ERROR-CODE with a code in 300..=699 and a reason phrase.
    pub fn error_code(&mut self, code: u16, reason: &[u8]) -> Result<(), WireError> {
        if !(300..=699).contains(&code) {
            return Err(WireError::InvalidInput);
        }
        let mut value = [0u8; 4 + 763];
        let head = [0, 0, (code / 100) as u8, (code % 100) as u8];
        write_at(&mut value, 0, &head)?;
        write_at(&mut value, 4, reason).map_err(|_| WireError::InvalidInput)?;
        let value = value
            .get(..4 + reason.len())
            .ok_or(WireError::InvalidInput)?;
        self.attribute(ATTR_ERROR_CODE, value)
    }
    /// XOR-MAPPED-ADDRESS.
    pub fn xor_mapped_address(&mut self, addr: SocketAddr) -> Result<(), WireError> {
        let key = xor_key(&self.transaction_id);
        let port = (addr.port() ^ (MAGIC_COOKIE >> 16) as u16).to_be_bytes();
        let mut value = [0u8; 20];
        let len = match addr.ip() {
            IpAddr::V4(ip) => {
                write_at(&mut value, 0, &[0, 1, port[0], port[1]])?;
                write_at(&mut value, 4, &ip.octets())?;
                8
            }
            IpAddr::V6(ip) => {
                write_at(&mut value, 0, &[0, 2, port[0], port[1]])?;
                write_at(&mut value, 4, &ip.octets())?;
                20
            }
        };
        if let Some(addr_bytes) = value.get_mut(4..len) {
            addr_bytes.iter_mut().zip(key).for_each(|(x, k)| *x ^= k);
        }
        self.attribute(ATTR_XOR_MAPPED_ADDRESS, value.get(..len).unwrap_or(&[]))
    }

    /// MESSAGE-INTEGRITY over everything written so far, keyed with `key`.
    pub fn message_integrity(&mut self, key: &[u8]) -> Result<(), WireError> {
        let at = self.len;
        if at + 4 + INTEGRITY_LEN > self.buf.len() {
            return Err(WireError::BufferTooSmall);
        }
        let mac = integrity(self.buf, at, key).ok_or(WireError::InvalidInput)?;
        self.attribute(ATTR_MESSAGE_INTEGRITY, &mac)
    }

    /// FINGERPRINT over everything written so far.
    pub fn fingerprint(&mut self) -> Result<(), WireError> {
        let at = self.len;
        if at + 8 > self.buf.len() {
            return Err(WireError::BufferTooSmall);
        }
        let crc = fingerprint(self.buf, at).ok_or(WireError::InvalidInput)?;
        self.attribute(ATTR_FINGERPRINT, &crc.to_be_bytes())
    }

    /// The message length, without adding anything.
    pub fn finish(self) -> usize {
        self.len
    }

    /// Append MESSAGE-INTEGRITY keyed with `key` and FINGERPRINT; returns the message length.
    pub fn finish_with_integrity(mut self, key: &[u8]) -> Result<usize, WireError> {
        self.message_integrity(key)?;
        self.fingerprint()?;
        Ok(self.len)
    }

    /// Append FINGERPRINT only; returns the message length.
    pub fn finish_with_fingerprint(mut self) -> Result<usize, WireError> {
        self.fingerprint()?;
        Ok(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: [u8; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

    #[test]
    fn message_type_encoding_round_trips() {
        assert_eq!(message_type(StunClass::Request, METHOD_BINDING), 0x0001);
        assert_eq!(
            message_type(StunClass::SuccessResponse, METHOD_BINDING),
            0x0101
        );
        assert_eq!(
            message_type(StunClass::ErrorResponse, METHOD_BINDING),
            0x0111
        );
        assert_eq!(message_type(StunClass::Indication, METHOD_BINDING), 0x0011);
        for class in [
            StunClass::Request,
            StunClass::Indication,
            StunClass::SuccessResponse,
            StunClass::ErrorResponse,
        ] {
            for method in [0, 1, 0x00f, 0x010, 0x07f, 0x080, 0xabc, 0xfff] {
                assert_eq!(
                    split_message_type(message_type(class, method)),
                    (class, method)
                );
            }
        }
    }

    #[test]
    fn header_checks() {
        let mut buf = [0u8; 64];
        let n = StunWriter::new(&mut buf, StunClass::Request, METHOD_BINDING, &TID)
            .unwrap()
            .finish();
        assert_eq!(n, HEADER_LEN);
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        assert!(msg.is_binding_request());
        assert_eq!(msg.transaction_id(), &TID);
        assert_eq!(StunMessage::parse(&buf[..19]), Err(WireError::TooShort));
        assert_eq!(StunMessage::parse(&buf[..24]), Err(WireError::BadLength));
        let mut bad = buf;
        bad[0] = 0x40;
        assert_eq!(StunMessage::parse(&bad[..20]), Err(WireError::Malformed));
        let mut bad = buf;
        bad[4] = 0x22;
        assert_eq!(StunMessage::parse(&bad[..20]), Err(WireError::Malformed));
        let mut bad = buf;
        bad[3] = 2;
        assert_eq!(StunMessage::parse(&bad[..24]), Err(WireError::BadLength));
        bad[3] = 8;
        assert_eq!(StunMessage::parse(&bad[..24]), Err(WireError::TooShort));
        // One attribute whose value overruns the message.
        let mut bad = buf;
        bad[3] = 4;
        bad[20..24].copy_from_slice(&[0x00, 0x06, 0x00, 0x05]);
        assert_eq!(StunMessage::parse(&bad[..24]), Err(WireError::BadLength));
    }

    #[test]
    fn ice_request_round_trip() {
        let mut buf = [0u8; 256];
        let mut w = StunWriter::new(&mut buf, StunClass::Request, METHOD_BINDING, &TID).unwrap();
        w.username(b"relay:peer").unwrap();
        w.priority(0x6e00_01ff).unwrap();
        w.ice_controlling(0x0102_0304_0506_0708).unwrap();
        w.use_candidate().unwrap();
        let n = w.finish_with_integrity(b"secret").unwrap();
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        assert_eq!(msg.username(), Some(&b"relay:peer"[..]));
        assert_eq!(msg.priority(), Some(0x6e00_01ff));
        assert_eq!(msg.ice_controlling(), Some(0x0102_0304_0506_0708));
        assert_eq!(msg.ice_controlled(), None);
        assert!(msg.use_candidate());
        assert!(msg.verify_integrity(b"secret"));
        assert!(!msg.verify_integrity(b"secreT"));
        assert!(!msg.verify_integrity(b""));
        assert!(msg.verify_fingerprint());
        assert!(msg.attributes().all(|a| a.is_ok()));
        // Any flipped bit breaks the fingerprint; in the authenticated part, integrity too.
        for i in 0..n {
            let mut copy = buf;
            copy[i] ^= 0x01;
            if let Ok(m) = StunMessage::parse(&copy[..n]) {
                assert!(!m.verify_fingerprint(), "byte {i}");
                if i < n - 8 {
                    assert!(!m.verify_integrity(b"secret"), "byte {i}");
                }
            }
        }
    }

    #[test]
    fn attributes_after_integrity_are_ignored() {
        let mut buf = [0u8; 256];
        let mut w = StunWriter::new(&mut buf, StunClass::Request, METHOD_BINDING, &TID).unwrap();
        w.username(b"a:b").unwrap();
        w.message_integrity(b"pw").unwrap();
        w.priority(7).unwrap();
        w.use_candidate().unwrap();
        let n = w.finish_with_fingerprint().unwrap();
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        assert!(msg.verify_integrity(b"pw"));
        assert!(msg.verify_fingerprint());
        assert_eq!(msg.priority(), None);
        assert!(!msg.use_candidate());
        let kinds: Vec<u16> = msg.raw_attributes().map(|a| a.kind).collect();
        assert_eq!(
            kinds,
            [ATTR_USERNAME, ATTR_MESSAGE_INTEGRITY, ATTR_FINGERPRINT]
        );
    }

    #[test]
    fn fingerprint_must_be_last() {
        let mut buf = [0u8; 128];
        let mut w = StunWriter::new(&mut buf, StunClass::Request, METHOD_BINDING, &TID).unwrap();
        w.fingerprint().unwrap();
        w.priority(1).unwrap();
        let n = w.finish();
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        assert!(!msg.verify_fingerprint());
        assert!(!msg.verify_integrity(b"x"), "no M-I means not verified");
    }

    #[test]
    fn error_response_round_trip() {
        let mut buf = [0u8; 128];
        let mut w =
            StunWriter::new(&mut buf, StunClass::ErrorResponse, METHOD_BINDING, &TID).unwrap();
        w.error_code(487, b"Role Conflict").unwrap();
        assert_eq!(w.error_code(700, b""), Err(WireError::InvalidInput));
        let n = w.finish_with_fingerprint().unwrap();
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        assert_eq!(msg.class(), StunClass::ErrorResponse);
        assert_eq!(msg.error_code(), Some((487, &b"Role Conflict"[..])));
        assert!(msg.verify_fingerprint());
    }

    #[test]
    fn writer_reports_buffer_too_small() {
        let mut buf = [0u8; 31];
        assert!(StunWriter::new(&mut buf[..19], StunClass::Request, 1, &TID).is_err());
        let mut w = StunWriter::new(&mut buf, StunClass::Request, 1, &TID).unwrap();
        w.priority(1).unwrap();
        assert_eq!(w.priority(2), Err(WireError::BufferTooSmall));
        assert_eq!(
            w.finish_with_integrity(b"k"),
            Err(WireError::BufferTooSmall)
        );
    }

    #[test]
    fn malformed_attribute_values_decode_to_errors() {
        let raw = |kind, value| RawAttribute { kind, value };
        assert_eq!(
            raw(ATTR_PRIORITY, &[1, 2, 3][..]).decode(&TID),
            Err(WireError::BadLength)
        );
        assert_eq!(
            raw(ATTR_USE_CANDIDATE, &[1][..]).decode(&TID),
            Err(WireError::BadLength)
        );
        assert_eq!(
            raw(ATTR_XOR_MAPPED_ADDRESS, &[0, 3, 0, 0, 0, 0, 0, 0][..]).decode(&TID),
            Err(WireError::Malformed)
        );
        assert_eq!(
            raw(ATTR_XOR_MAPPED_ADDRESS, &[0, 2, 0, 0, 0, 0, 0, 0][..]).decode(&TID),
            Err(WireError::BadLength)
        );
        assert_eq!(
            raw(ATTR_ERROR_CODE, &[0, 0, 7, 0][..]).decode(&TID),
            Err(WireError::Malformed)
        );
        assert_eq!(
            raw(ATTR_ERROR_CODE, &[0, 0][..]).decode(&TID),
            Err(WireError::TooShort)
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..120)) {
            // A valid header followed by random attributes reaches the attribute walk.
            let mut buf = vec![0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
            buf.extend_from_slice(&TID);
            buf.extend_from_slice(&tail);
            let len = (tail.len() as u16).to_be_bytes();
            buf[2] = len[0];
            buf[3] = len[1];
            if let Ok(m) = StunMessage::parse(&buf) {
                for a in m.attributes() { let _ = a; }
                let _ = (m.verify_integrity(b"k"), m.verify_fingerprint(), m.username(), m.xor_mapped_address());
            }
            let _ = StunMessage::parse(&tail);
        }
    }

    /// RFC 5769 test vectors, byte for byte.
    mod rfc5769 {
        use super::super::*;

        const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";
        const TID: [u8; 12] = [
            0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
        ];

        /// §2.1 Sample Request.
        #[rustfmt::skip]
        const REQUEST: [u8; 108] = [
            0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42,
            0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
            0x80, 0x22, 0x00, 0x10, // SOFTWARE
            0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74,
            0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, // PRIORITY
            0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, // ICE-CONTROLLED
            0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20,
            0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY
            0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
            0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2,
            0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf, // FINGERPRINT
        ];

        /// §2.2 Sample IPv4 Response.
        #[rustfmt::skip]
        const IPV4_RESPONSE: [u8; 80] = [
            0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42,
            0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
            0x80, 0x22, 0x00, 0x0b, // SOFTWARE "test vector" + 0x20 padding
            0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
            0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, // XOR-MAPPED-ADDRESS
            0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY
            0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74,
            0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
            0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96, // FINGERPRINT
        ];

        /// §2.3 Sample IPv6 Response.
        #[rustfmt::skip]
        const IPV6_RESPONSE: [u8; 92] = [
            0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42,
            0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
            0x80, 0x22, 0x00, 0x0b, // SOFTWARE "test vector" + 0x20 padding
            0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
            0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, // XOR-MAPPED-ADDRESS
            0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
            0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY
            0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84,
            0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
            0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c, // FINGERPRINT
        ];

        fn v4() -> SocketAddr {
            "192.0.2.1:32853".parse().unwrap()
        }

        fn v6() -> SocketAddr {
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                .parse()
                .unwrap()
        }

        #[test]
        fn sample_request_parses_and_verifies() {
            let msg = StunMessage::parse(&REQUEST).unwrap();
            assert!(msg.is_binding_request());
            assert_eq!(msg.transaction_id(), &TID);
            assert_eq!(msg.software(), Some(&b"STUN test client"[..]));
            assert_eq!(msg.priority(), Some(0x6e00_01ff));
            assert_eq!(msg.ice_controlled(), Some(0x932f_f9b1_5126_3b36));
            assert_eq!(msg.username(), Some(&b"evtj:h6vY"[..]));
            assert!(msg.verify_integrity(PASSWORD));
            assert!(!msg.verify_integrity(b"VOkJxbRl1RmTxUk/WvJxBT"));
            assert!(msg.verify_fingerprint());
        }

        #[test]
        fn ipv4_response_parses_and_verifies() {
            let msg = StunMessage::parse(&IPV4_RESPONSE).unwrap();
            assert_eq!(msg.class(), StunClass::SuccessResponse);
            assert_eq!(msg.method(), METHOD_BINDING);
            assert_eq!(msg.software(), Some(&b"test vector"[..]));
            assert_eq!(msg.xor_mapped_address(), Some(v4()));
            assert!(msg.verify_integrity(PASSWORD));
            assert!(msg.verify_fingerprint());
        }

        #[test]
        fn ipv6_response_parses_and_verifies() {
            let msg = StunMessage::parse(&IPV6_RESPONSE).unwrap();
            assert_eq!(msg.xor_mapped_address(), Some(v6()));
            assert!(msg.verify_integrity(PASSWORD));
            assert!(msg.verify_fingerprint());
        }

        #[test]
        fn writer_reproduces_sample_request() {
            let mut buf = [0u8; 200];
            let mut w =
                StunWriter::new(&mut buf, StunClass::Request, METHOD_BINDING, &TID).unwrap();
            w.set_padding_byte(0x20);
            w.software(b"STUN test client").unwrap();
            w.priority(0x6e00_01ff).unwrap();
            w.ice_controlled(0x932f_f9b1_5126_3b36).unwrap();
            w.username(b"evtj:h6vY").unwrap();
            let n = w.finish_with_integrity(PASSWORD).unwrap();
            assert_eq!(&buf[..n], &REQUEST[..]);
        }

        #[test]
        fn writer_reproduces_ipv4_and_ipv6_responses() {
            for (addr, want) in [(v4(), &IPV4_RESPONSE[..]), (v6(), &IPV6_RESPONSE[..])] {
                let mut buf = [0u8; 200];
                let mut w =
                    StunWriter::new(&mut buf, StunClass::SuccessResponse, METHOD_BINDING, &TID)
                        .unwrap();
                w.set_padding_byte(0x20);
                w.software(b"test vector").unwrap();
                w.xor_mapped_address(addr).unwrap();
                let n = w.finish_with_integrity(PASSWORD).unwrap();
                assert_eq!(&buf[..n], want, "{addr}");
            }
        }

        #[test]
        fn every_truncation_is_rejected() {
            for vector in [&REQUEST[..], &IPV4_RESPONSE[..], &IPV6_RESPONSE[..]] {
                for n in 0..vector.len() {
                    assert!(StunMessage::parse(&vector[..n]).is_err(), "len {n}");
                }
            }
        }
    }
}
