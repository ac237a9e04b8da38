//! RTP (RFC 3550) header view and in-place editing, CSRCs, header extensions (RFC 8285), padding.
//!
//! `RtpPacket` is a read-only view over a received datagram, validated once by `parse`;
//! `RtpHeaderMut` rewrites the fields a relay changes (SSRC, sequence number, timestamp, marker,
//! payload type, extension values) in place; `RtpBuilder` writes a packet into a caller buffer.
//! Nothing here allocates, keeps state or panics on any input.

use std::ops::Range;

use super::{read_u16, read_u32, write_at, WireError};

/// Fixed RTP header length, before CSRCs and extensions.
pub const FIXED_HEADER_LEN: usize = 12;
/// "defined by profile" value of the RFC 8285 one-byte header extension form.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// "defined by profile" value of the RFC 8285 two-byte form; the low 4 bits are app bits.
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

/// Length of the RTP header of `buf` (fixed part, CSRCs and the header extension if present),
/// checked against the buffer. This is what SRTP authenticates but does not encrypt.
pub fn header_len(buf: &[u8]) -> Result<usize, WireError> {
    let first = match buf.first() {
        Some(&b) if buf.len() >= FIXED_HEADER_LEN => b,
        _ => return Err(WireError::TooShort),
    };
    if first >> 6 != 2 {
        return Err(WireError::BadVersion);
    }
    let cc = usize::from(first & 0x0f);
    let mut len = FIXED_HEADER_LEN + 4 * cc;
    if first & 0x10 != 0 {
        let words = read_u16(buf, len + 2).ok_or(WireError::TooShort)?;
        len += 4 + 4 * usize::from(words);
    }
    if buf.len() < len {
        return Err(WireError::TooShort);
    }
    Ok(len)
}

/// The RFC 8285 element form a header extension block uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionForm {
    /// Profile 0xBEDE: ids 1..=14, 1..=16 bytes of data each.
    OneByte,
    /// Profile 0x100X: ids 1..=255, 0..=255 bytes of data each.
    TwoByte,
}

impl ExtensionForm {
    /// The form a "defined by profile" value announces, or `None` for other profiles.
    pub fn from_profile(profile: u16) -> Option<Self> {
        if profile == ONE_BYTE_PROFILE {
            Some(Self::OneByte)
        } else if profile & 0xfff0 == TWO_BYTE_PROFILE {
            Some(Self::TwoByte)
        } else {
            None
        }
    }
}

/// The header extension block of a packet: its profile and its raw data (without the 4-byte
/// profile/length word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderExtension<'a> {
    /// The 16-bit "defined by profile" field.
    pub profile: u16,
    /// The extension data, a multiple of 4 bytes.
    pub data: &'a [u8],
}

impl<'a> HeaderExtension<'a> {
    /// RFC 8285 elements; empty for profiles other than one-byte and two-byte.
    pub fn elements(&self) -> ExtensionIter<'a> {
        ExtensionIter::new(self.profile, self.data)
    }
}

/// Iterator over RFC 8285 elements `(id, data)`. Padding bytes are skipped; a one-byte id 15
/// ends the iteration. A truncated element yields one `Err` and then the iterator is done.
#[derive(Debug, Clone)]
pub struct ExtensionIter<'a> {
    data: &'a [u8],
    form: Option<ExtensionForm>,
    pos: usize,
}

impl<'a> ExtensionIter<'a> {
    /// Iterate the elements of extension `data` announced with `profile`.
    pub fn new(profile: u16, data: &'a [u8]) -> Self {
        Self {
            data,
            form: ExtensionForm::from_profile(profile),
            pos: 0,
        }
    }

    /// Next element as an id and a byte range into the extension data.
    fn next_range(&mut self) -> Option<Result<(u8, Range<usize>), WireError>> {
        let form = self.form?;
        loop {
            let b = *self.data.get(self.pos)?;
            if b == 0 {
                self.pos += 1;
                continue;
            }
            let (id, start, len) = match form {
                ExtensionForm::OneByte if b >> 4 == 15 => {
                    self.form = None;
                    return None;
                }
                ExtensionForm::OneByte => (b >> 4, self.pos + 1, usize::from(b & 0x0f) + 1),
                ExtensionForm::TwoByte => match self.data.get(self.pos + 1) {
                    Some(&len) => (b, self.pos + 2, usize::from(len)),
                    None => return self.fail(),
                },
            };
            let end = start + len;
            if end > self.data.len() {
                return self.fail();
            }
            self.pos = end;
            return Some(Ok((id, start..end)));
        }
    }

    fn fail<T>(&mut self) -> Option<Result<T, WireError>> {
        self.form = None;
        Some(Err(WireError::BadLength))
    }
}

impl<'a> Iterator for ExtensionIter<'a> {
    type Item = Result<(u8, &'a [u8]), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        let data = self.data;
        Some(
            self.next_range()?
                .and_then(|(id, r)| Ok((id, data.get(r).ok_or(WireError::BadLength)?))),
        )
    }
}

/// A validated, read-only view of one RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    marker: bool,
    payload_type: u8,
    sequence_number: u16,
    timestamp: u32,
    ssrc: u32,
    csrcs: &'a [u8],
    extension: Option<HeaderExtension<'a>>,
    header_len: usize,
    payload: &'a [u8],
    padding_len: u8,
}

impl<'a> RtpPacket<'a> {
    /// Validate the header, CSRC list, extension length and padding of `buf`.
    pub fn parse(buf: &'a [u8]) -> Result<Self, WireError> {
        let header_len = header_len(buf)?;
        let first = *buf.first().ok_or(WireError::TooShort)?;
        let second = *buf.get(1).ok_or(WireError::TooShort)?;
        let cc = usize::from(first & 0x0f);
        let csrc_end = FIXED_HEADER_LEN + 4 * cc;
        let csrcs = buf
            .get(FIXED_HEADER_LEN..csrc_end)
            .ok_or(WireError::TooShort)?;
        let extension = if first & 0x10 != 0 {
            Some(HeaderExtension {
                profile: read_u16(buf, csrc_end).ok_or(WireError::TooShort)?,
                data: buf
                    .get(csrc_end + 4..header_len)
                    .ok_or(WireError::TooShort)?,
            })
        } else {
            None
        };
        let padding_len = if first & 0x20 != 0 {
            let pad = *buf.last().ok_or(WireError::TooShort)?;
            if pad == 0 || usize::from(pad) > buf.len() - header_len {
                return Err(WireError::BadLength);
            }
            pad
        } else {
            0
        };
        let payload_end = buf.len() - usize::from(padding_len);
        Ok(Self {
            buf,
            marker: second & 0x80 != 0,
            payload_type: second & 0x7f,
            sequence_number: read_u16(buf, 2).ok_or(WireError::TooShort)?,
            timestamp: read_u32(buf, 4).ok_or(WireError::TooShort)?,
            ssrc: read_u32(buf, 8).ok_or(WireError::TooShort)?,
            csrcs,
            extension,
            header_len,
            payload: buf
                .get(header_len..payload_end)
                .ok_or(WireError::BadLength)?,
            padding_len,
        })
    }

    /// Always 2 for a parsed packet.
    pub fn version(&self) -> u8 {
        2
    }
    /// The P bit.
    pub fn padding(&self) -> bool {
        self.padding_len != 0
    }
    /// The X bit.
    pub fn has_extension(&self) -> bool {
        self.extension.is_some()
    }
    /// The CC field.
    pub fn csrc_count(&self) -> u8 {
        (self.csrcs.len() / 4) as u8
    }
    /// The M bit.
    pub fn marker(&self) -> bool {
        self.marker
    }
    /// The 7-bit payload type.
    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }
    /// The sequence number.
    pub fn sequence_number(&self) -> u16 {
        self.sequence_number
    }
    /// The RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }
    /// The synchronisation source.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }
    /// The contributing sources.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.csrcs
            .chunks_exact(4)
            .filter_map(|c| c.try_into().ok().map(u32::from_be_bytes))
    }
    /// The header extension block, if the X bit is set.
    pub fn extension(&self) -> Option<HeaderExtension<'a>> {
        self.extension
    }
    /// RFC 8285 elements of the extension block (empty if none or an unknown profile).
    pub fn extensions(&self) -> ExtensionIter<'a> {
        match self.extension {
            Some(ext) => ext.elements(),
            None => ExtensionIter::new(0, &[]),
        }
    }
    /// Length of the header (fixed part, CSRCs, extension).
    pub fn header_len(&self) -> usize {
        self.header_len
    }
    /// The payload, without padding.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
    /// Number of padding bytes at the end (0 when the P bit is clear).
    pub fn padding_len(&self) -> u8 {
        self.padding_len
    }
    /// The whole packet.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
}

/// Byte range of extension element `id` within an RTP packet `buf`, if present and well formed.
pub fn find_extension_range(buf: &[u8], id: u8) -> Option<Range<usize>> {
    let hlen = header_len(buf).ok()?;
    let first = *buf.first()?;
    if first & 0x10 == 0 {
        return None;
    }
    let ext_start = FIXED_HEADER_LEN + 4 * usize::from(first & 0x0f);
    let profile = read_u16(buf, ext_start)?;
    let data_start = ext_start + 4;
    let mut iter = ExtensionIter::new(profile, buf.get(data_start..hlen)?);
    loop {
        let (found, r) = iter.next_range()?.ok()?;
        if found == id {
            return Some(data_start + r.start..data_start + r.end);
        }
    }
}

/// The data of extension element `id` in RTP packet `buf`, if present and well formed.
pub fn find_extension(buf: &[u8], id: u8) -> Option<&[u8]> {
    buf.get(find_extension_range(buf, id)?)
}

/// In-place editor of an RTP header whose length has been checked.
#[derive(Debug)]
pub struct RtpHeaderMut<'a> {
    buf: &'a mut [u8],
}

impl<'a> RtpHeaderMut<'a> {
    /// Check that `buf` holds a complete RTP header and wrap it for editing.
    pub fn new(buf: &'a mut [u8]) -> Result<Self, WireError> {
        header_len(buf)?;
        Ok(Self { buf })
    }

    fn set_byte(&mut self, at: usize, keep_mask: u8, bits: u8) {
        if let Some(b) = self.buf.get_mut(at) {
            *b = (*b & keep_mask) | bits;
        }
    }

    /// Set the M bit.
    pub fn set_marker(&mut self, marker: bool) {
        self.set_byte(1, 0x7f, u8::from(marker) << 7);
    }
    /// Set the payload type (its low 7 bits; the marker is kept).
    pub fn set_payload_type(&mut self, payload_type: u8) {
        self.set_byte(1, 0x80, payload_type & 0x7f);
    }
    /// Set the sequence number.
    pub fn set_sequence_number(&mut self, seq: u16) {
        // The header length was checked in `new`, so these writes cannot fail.
        let _ = write_at(self.buf, 2, &seq.to_be_bytes());
    }
    /// Set the RTP timestamp.
    pub fn set_timestamp(&mut self, timestamp: u32) {
        let _ = write_at(self.buf, 4, &timestamp.to_be_bytes());
    }
    /// Set the SSRC.
    pub fn set_ssrc(&mut self, ssrc: u32) {
        let _ = write_at(self.buf, 8, &ssrc.to_be_bytes());
    }
    /// Mutable data of extension element `id`, to rewrite a value of the same length in place.
    pub fn extension_mut(&mut self, id: u8) -> Option<&mut [u8]> {
        let range = find_extension_range(self.buf, id)?;
        self.buf.get_mut(range)
    }
}

/// Copies `packet` into `out` with its header extension elements translated by `map`:
/// `map(id, data)` returns the element to write instead (new id, new data) or `None` to drop it.
/// The block is written in the one-byte form when every element fits it, else the two-byte
/// form; with no elements left the X bit is cleared. Fixed header, CSRCs, payload and padding
/// are copied unchanged. A packet with no extension block (or an unknown profile) is copied as
/// it is. Returns the length written.
pub fn copy_translating_extensions<'a: 'b, 'b>(
    packet: &'a [u8],
    out: &mut [u8],
    map: impl FnMut(u8, &'a [u8]) -> Option<(u8, &'b [u8])>,
) -> Result<usize, WireError> {
    copy_translating_extensions_adding(packet, out, map, &[])
}

/// [`copy_translating_extensions`], then `added` elements `(id, data)` after the translated
/// ones (a packet without an extension block gets one). A packet whose block has an unknown
/// profile is copied as it is, without them.
pub fn copy_translating_extensions_adding<'a: 'b, 'b>(
    packet: &'a [u8],
    out: &mut [u8],
    mut map: impl FnMut(u8, &'a [u8]) -> Option<(u8, &'b [u8])>,
    added: &[(u8, &'b [u8])],
) -> Result<usize, WireError> {
    let header = header_len(packet)?;
    let csrc_end = FIXED_HEADER_LEN + 4 * usize::from(packet[0] & 0x0f);
    let has_block = packet[0] & 0x10 != 0;
    let profile = if has_block {
        read_u16(packet, csrc_end).ok_or(WireError::TooShort)?
    } else {
        ONE_BYTE_PROFILE
    };
    if (!has_block && added.is_empty()) || ExtensionForm::from_profile(profile).is_none() {
        let dst = out
            .get_mut(..packet.len())
            .ok_or(WireError::BufferTooSmall)?;
        dst.copy_from_slice(packet);
        return Ok(packet.len());
    }
    let data = if has_block {
        &packet[csrc_end + 4..header]
    } else {
        &[]
    };
    write_at(out, 0, &packet[..csrc_end])?;
    // The one-byte form in one pass; the two-byte form only if an element does not fit it.
    let block = match write_elements(
        ExtensionForm::OneByte,
        (profile, data, added),
        out,
        csrc_end,
        &mut map,
    )? {
        Some(end) => Some((end, ONE_BYTE_PROFILE)),
        None => write_elements(
            ExtensionForm::TwoByte,
            (profile, data, added),
            out,
            csrc_end,
            &mut map,
        )?
        .map(|end| (end, TWO_BYTE_PROFILE)),
    };
    let pos = match block {
        Some((end, form)) if end > csrc_end + 4 => {
            let padded = csrc_end + 4 + (end - csrc_end - 4).div_ceil(4) * 4;
            out.get_mut(end..padded)
                .ok_or(WireError::BufferTooSmall)?
                .fill(0);
            let words = ((padded - csrc_end - 4) / 4) as u16;
            write_at(out, csrc_end, &form.to_be_bytes())?;
            write_at(out, csrc_end + 2, &words.to_be_bytes())?;
            out[0] |= 0x10;
            padded
        }
        _ => {
            out[0] &= !0x10;
            csrc_end
        }
    };
    write_at(out, pos, &packet[header..])?;
    Ok(pos + packet.len() - header)
}

/// A block's profile and data, and the elements to add after its own.
type Elements<'a, 'c, 'b> = (u16, &'a [u8], &'c [(u8, &'b [u8])]);

/// Writes the translated elements of extension `data` (announced with `profile`), then the
/// `added` ones, in `form` after a 4-byte block header at `block`; the end of the last element,
/// or `None` if `form` is one-byte and an element does not fit it.
fn write_elements<'a: 'b, 'b>(
    form: ExtensionForm,
    (profile, data, added): Elements<'a, '_, 'b>,
    out: &mut [u8],
    block: usize,
    map: &mut impl FnMut(u8, &'a [u8]) -> Option<(u8, &'b [u8])>,
) -> Result<Option<usize>, WireError> {
    let mut pos = block + 4;
    let mut translated = ExtensionIter::new(profile, data);
    let mut added = added.iter();
    loop {
        let (to, value) = match translated.next() {
            Some(element) => {
                let (id, data) = element?;
                let Some(mapped) = map(id, data) else {
                    continue;
                };
                mapped
            }
            None => match added.next() {
                Some(&element) => element,
                None => break,
            },
        };
        if to == 0 || value.len() > 255 {
            return Err(WireError::InvalidInput);
        }
        let len = value.len() as u8;
        let dst = match form {
            ExtensionForm::OneByte => {
                if to > 14 || !(1..=16).contains(&len) {
                    return Ok(None);
                }
                let dst = out
                    .get_mut(pos..pos + 1 + value.len())
                    .ok_or(WireError::BufferTooSmall)?;
                dst[0] = (to << 4) | (len - 1);
                &mut dst[1..]
            }
            ExtensionForm::TwoByte => {
                let dst = out
                    .get_mut(pos..pos + 2 + value.len())
                    .ok_or(WireError::BufferTooSmall)?;
                dst[0] = to;
                dst[1] = len;
                &mut dst[2..]
            }
        };
        dst.copy_from_slice(value);
        pos += value.len() + if form == ExtensionForm::OneByte { 1 } else { 2 };
    }
    Ok(Some(pos))
}

/// Writes an RTP packet into a caller buffer. Fields are public; start from `Default`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RtpBuilder<'a> {
    /// The M bit.
    pub marker: bool,
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence_number: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
    /// Up to 15 CSRCs.
    pub csrcs: &'a [u32],
    /// RFC 8285 elements `(id, data)`; none means no extension block.
    pub extensions: &'a [(u8, &'a [u8])],
    /// Force a form; `None` picks one-byte when every element fits it, else two-byte.
    pub extension_form: Option<ExtensionForm>,
    /// Padding bytes to append after the payload (0 for none; the last one holds the count).
    pub padding: u8,
}

impl RtpBuilder<'_> {
    fn pick_form(&self) -> Result<ExtensionForm, WireError> {
        let one_ok = self
            .extensions
            .iter()
            .all(|(id, d)| (1..=14).contains(id) && (1..=16).contains(&d.len()));
        let two_ok = self
            .extensions
            .iter()
            .all(|(id, d)| *id != 0 && d.len() <= 255);
        match self.extension_form {
            Some(ExtensionForm::OneByte) | None if one_ok => Ok(ExtensionForm::OneByte),
            Some(ExtensionForm::TwoByte) | None if two_ok => Ok(ExtensionForm::TwoByte),
            _ => Err(WireError::InvalidInput),
        }
    }

    /// Write header, `payload` and padding into `buf`; returns the packet length.
    pub fn write(&self, buf: &mut [u8], payload: &[u8]) -> Result<usize, WireError> {
        if self.csrcs.len() > 15 || self.payload_type > 127 {
            return Err(WireError::InvalidInput);
        }
        let has_ext = !self.extensions.is_empty();
        let first = 0x80
            | (u8::from(self.padding != 0) << 5)
            | (u8::from(has_ext) << 4)
            | self.csrcs.len() as u8;
        let second = (u8::from(self.marker) << 7) | self.payload_type;
        write_at(buf, 0, &[first, second])?;
        write_at(buf, 2, &self.sequence_number.to_be_bytes())?;
        write_at(buf, 4, &self.timestamp.to_be_bytes())?;
        write_at(buf, 8, &self.ssrc.to_be_bytes())?;
        let mut pos = FIXED_HEADER_LEN;
        for csrc in self.csrcs {
            write_at(buf, pos, &csrc.to_be_bytes())?;
            pos += 4;
        }
        if has_ext {
            let form = self.pick_form()?;
            let ext_start = pos;
            pos += 4;
            for (id, data) in self.extensions {
                match form {
                    ExtensionForm::OneByte => {
                        write_at(buf, pos, &[(id << 4) | (data.len() - 1) as u8])?
                    }
                    ExtensionForm::TwoByte => write_at(buf, pos, &[*id, data.len() as u8])?,
                }
                pos += if form == ExtensionForm::OneByte { 1 } else { 2 };
                write_at(buf, pos, data)?;
                pos += data.len();
            }
            while (pos - ext_start) % 4 != 0 {
                write_at(buf, pos, &[0])?;
                pos += 1;
            }
            let words =
                u16::try_from((pos - ext_start - 4) / 4).map_err(|_| WireError::InvalidInput)?;
            let profile = match form {
                ExtensionForm::OneByte => ONE_BYTE_PROFILE,
                ExtensionForm::TwoByte => TWO_BYTE_PROFILE,
            };
            write_at(buf, ext_start, &profile.to_be_bytes())?;
            write_at(buf, ext_start + 2, &words.to_be_bytes())?;
        }
        write_at(buf, pos, payload)?;
        pos += payload.len();
        if self.padding != 0 {
            for _ in 1..self.padding {
                write_at(buf, pos, &[0])?;
                pos += 1;
            }
            write_at(buf, pos, &[self.padding])?;
            pos += 1;
        }
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// V=2 P=1 X=1 CC=2, M=1 PT=96, seq 0x1234, ts 0xdeadbeef, ssrc 0x01020304, csrcs 5 and 6,
    /// one-byte extension (id 1 len 1, pad, id 2 len 3), payload "abc", 3 bytes padding.
    const SAMPLE: [u8; 38] = [
        0xb2, 0xe0, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, //
        0, 0, 0, 5, 0, 0, 0, 6, //
        0xbe, 0xde, 0x00, 0x02, 0x10, 0xaa, 0x00, 0x22, 0x01, 0x02, 0x03, 0x00, //
        b'a', b'b', b'c', 0, 0, 3,
    ];

    fn sample() -> Vec<u8> {
        SAMPLE.to_vec()
    }

    #[test]
    fn parses_every_field() {
        let buf = sample();
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(p.version(), 2);
        assert!(p.padding() && p.has_extension() && p.marker());
        assert_eq!(p.csrc_count(), 2);
        assert_eq!(p.payload_type(), 96);
        assert_eq!(p.sequence_number(), 0x1234);
        assert_eq!(p.timestamp(), 0xdead_beef);
        assert_eq!(p.ssrc(), 0x0102_0304);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![5, 6]);
        assert_eq!(p.extension().unwrap().profile, ONE_BYTE_PROFILE);
        assert_eq!(p.header_len(), 32);
        assert_eq!(header_len(&buf), Ok(32));
        assert_eq!(p.payload(), b"abc");
        assert_eq!(p.padding_len(), 3);
        let ext: Vec<_> = p.extensions().collect();
        assert_eq!(ext, vec![Ok((1, &[0xaa][..])), Ok((2, &[1, 2, 3][..]))]);
    }

    #[test]
    fn header_len_rejects_short_and_bad_version() {
        assert_eq!(header_len(&[]), Err(WireError::TooShort));
        assert_eq!(header_len(&[0x80; 11]), Err(WireError::TooShort));
        assert_eq!(header_len(&[0x40; 12]), Err(WireError::BadVersion));
        // X bit set but no room for the extension header.
        assert_eq!(header_len(&[0x90; 12]), Err(WireError::TooShort));
        let buf = sample();
        for n in 0..32 {
            assert!(header_len(&buf[..n]).is_err(), "len {n}");
        }
    }

    #[test]
    fn padding_is_validated() {
        let mut buf = sample();
        *buf.last_mut().unwrap() = 0;
        assert_eq!(RtpPacket::parse(&buf).unwrap_err(), WireError::BadLength);
        *buf.last_mut().unwrap() = 7; // 6 bytes after the header
        assert_eq!(RtpPacket::parse(&buf).unwrap_err(), WireError::BadLength);
        *buf.last_mut().unwrap() = 6; // all of it padding: empty payload is fine
        assert_eq!(RtpPacket::parse(&buf).unwrap().payload(), b"");
        // P bit with nothing after the header.
        let hdr = [0xa0, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
        assert_eq!(RtpPacket::parse(&hdr).unwrap_err(), WireError::BadLength);
    }

    #[test]
    fn one_byte_id_15_stops_and_truncation_errors_once() {
        let data = [0x10, 0xaa, 0xf0, 0x20, 0xbb, 0x00, 0x00, 0x00];
        let got: Vec<_> = ExtensionIter::new(ONE_BYTE_PROFILE, &data).collect();
        assert_eq!(got, vec![Ok((1, &[0xaa][..]))]);
        let data = [0x10, 0xaa, 0x23, 0x01];
        let got: Vec<_> = ExtensionIter::new(ONE_BYTE_PROFILE, &data).collect();
        assert_eq!(got, vec![Ok((1, &[0xaa][..])), Err(WireError::BadLength)]);
    }

    #[test]
    fn two_byte_elements_with_padding_and_empty_values() {
        let data = [0x05, 0x00, 0x00, 0x07, 0x02, 0x11, 0x22, 0x00];
        let got: Vec<_> = ExtensionIter::new(0x1003, &data).collect();
        assert_eq!(got, vec![Ok((5, &[][..])), Ok((7, &[0x11, 0x22][..]))]);
        let got: Vec<_> = ExtensionIter::new(0x1000, &[0x07]).collect();
        assert_eq!(got, vec![Err(WireError::BadLength)]);
        assert_eq!(ExtensionIter::new(0x1234, &data).count(), 0);
    }

    #[test]
    fn builder_round_trip_one_and_two_byte() {
        let exts: [(u8, &[u8]); 2] = [(3, &[1, 2, 3]), (9, &[7])];
        let long = [0x55u8; 20];
        let exts2: [(u8, &[u8]); 2] = [(200, &long), (3, &[])];
        for (exts, form) in [
            (&exts[..], ONE_BYTE_PROFILE),
            (&exts2[..], TWO_BYTE_PROFILE),
        ] {
            let b = RtpBuilder {
                marker: true,
                payload_type: 111,
                sequence_number: 65535,
                timestamp: 90_000,
                ssrc: 0xcafe_f00d,
                csrcs: &[1, 2, 3],
                extensions: exts,
                padding: 4,
                ..Default::default()
            };
            let mut buf = [0u8; 128];
            let n = b.write(&mut buf, b"payload").unwrap();
            let p = RtpPacket::parse(&buf[..n]).unwrap();
            assert_eq!(p.extension().unwrap().profile, form);
            assert_eq!(
                p.extensions().collect::<Result<Vec<_>, _>>().unwrap(),
                exts.to_vec()
            );
            assert_eq!(p.payload(), b"payload");
            assert_eq!(p.padding_len(), 4);
            assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![1, 2, 3]);
            assert_eq!(
                (p.marker(), p.payload_type(), p.ssrc()),
                (true, 111, 0xcafe_f00d)
            );
            assert_eq!(
                b.write(&mut buf[..n - 1], b"payload"),
                Err(WireError::BufferTooSmall)
            );
        }
    }

    #[test]
    fn builder_rejects_what_the_format_cannot_carry() {
        let mut buf = [0u8; 128];
        let bad_pt = RtpBuilder {
            payload_type: 128,
            ..Default::default()
        };
        assert_eq!(bad_pt.write(&mut buf, &[]), Err(WireError::InvalidInput));
        let exts: [(u8, &[u8]); 1] = [(0, &[1])];
        let bad_id = RtpBuilder {
            extensions: &exts,
            ..Default::default()
        };
        assert_eq!(bad_id.write(&mut buf, &[]), Err(WireError::InvalidInput));
        let exts: [(u8, &[u8]); 1] = [(20, &[1])];
        let forced = RtpBuilder {
            extensions: &exts,
            extension_form: Some(ExtensionForm::OneByte),
            ..Default::default()
        };
        assert_eq!(forced.write(&mut buf, &[]), Err(WireError::InvalidInput));
    }

    #[test]
    fn header_mut_rewrites_in_place() {
        let mut buf = sample();
        let mut h = RtpHeaderMut::new(&mut buf).unwrap();
        h.set_ssrc(0x1111_2222);
        h.set_sequence_number(7);
        h.set_timestamp(8);
        h.set_marker(false);
        h.set_payload_type(100);
        h.extension_mut(2).unwrap().copy_from_slice(&[9, 9, 9]);
        assert!(h.extension_mut(4).is_none());
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(
            (p.ssrc(), p.sequence_number(), p.timestamp()),
            (0x1111_2222, 7, 8)
        );
        assert_eq!((p.marker(), p.payload_type()), (false, 100));
        assert_eq!(find_extension(&buf, 2), Some(&[9, 9, 9][..]));
        assert_eq!(find_extension(&buf, 1), Some(&[0xaa][..]));
        assert!(RtpHeaderMut::new(&mut [0x80; 5]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(buf in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Ok(p) = RtpPacket::parse(&buf) {
                proptest::prop_assert!(p.header_len() + p.payload().len() <= buf.len());
                for _ in p.extensions() {}
            }
            let _ = find_extension(&buf, 1);
            let _ = ExtensionIter::new(ONE_BYTE_PROFILE, &buf).count();
            let _ = ExtensionIter::new(TWO_BYTE_PROFILE, &buf).count();
        }
    }

    #[test]
    fn translating_extensions_renumbers_replaces_and_drops() {
        // One-byte block: id 3 = mid "1", id 4 = 3 bytes, id 5 = 2 bytes; CSRC; padding.
        let mut p = vec![
            0xb1, 0x60, 0, 9, 0, 0, 0, 7, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd,
        ];
        p.extend_from_slice(&[
            0xbe, 0xde, 0, 3, 0x30, b'1', 0x42, 1, 2, 3, 0x51, 8, 9, 0, 0, 0,
        ]);
        p.extend_from_slice(b"payload");
        p.extend_from_slice(&[0, 0, 3]);
        let mut out = [0u8; 64];
        let n = copy_translating_extensions(&p, &mut out, |id, data| match id {
            3 => Some((9, &b"video-0"[..])),
            4 => Some((2, data)),
            _ => None,
        })
        .unwrap();
        let q = RtpPacket::parse(&out[..n]).unwrap();
        assert_eq!(q.csrcs().collect::<Vec<_>>(), [0xaabb_ccdd]);
        let ext: Vec<_> = q.extensions().map(|e| e.unwrap()).collect();
        assert_eq!(ext, [(9, &b"video-0"[..]), (2, &[1, 2, 3][..])]);
        assert_eq!(q.extension().unwrap().profile, ONE_BYTE_PROFILE);
        assert_eq!(q.payload(), b"payload");
        assert_eq!(q.padding_len(), 3);
        assert_eq!(
            &out[..12],
            &{
                let mut h = p[..12].to_vec();
                h[0] = 0xb1;
                h
            }[..]
        );

        // An id over 14 needs the two-byte form.
        let n =
            copy_translating_extensions(&p, &mut out, |id, data| (id == 4).then_some((20, data)))
                .unwrap();
        let q = RtpPacket::parse(&out[..n]).unwrap();
        assert_eq!(q.extension().unwrap().profile, TWO_BYTE_PROFILE);
        assert_eq!(
            q.extensions().map(|e| e.unwrap()).collect::<Vec<_>>(),
            [(20, &[1, 2, 3][..])]
        );

        // Nothing kept: no block, X cleared.
        let n = copy_translating_extensions(&p, &mut out, |_, _| None).unwrap();
        let q = RtpPacket::parse(&out[..n]).unwrap();
        assert!(!q.has_extension());
        assert_eq!(n, 16 + 7 + 3);
        assert_eq!(q.payload(), b"payload");
    }

    #[test]
    fn added_elements_follow_the_translated_ones_or_make_a_block() {
        let mut p = vec![0x90, 0x60, 0, 9, 0, 0, 0, 7, 0, 0, 0, 1];
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x30, b'1', 0, 0]);
        p.extend_from_slice(b"xy");
        let mut out = [0u8; 64];
        let added: [(u8, &[u8]); 2] = [(5, &[0, 7]), (2, &[1, 2, 3])];
        let n = copy_translating_extensions_adding(&p, &mut out, |id, d| Some((id, d)), &added)
            .unwrap();
        let q = RtpPacket::parse(&out[..n]).unwrap();
        let ext: Vec<_> = q.extensions().map(|e| e.unwrap()).collect();
        assert_eq!(ext, [(3, &b"1"[..]), (5, &[0, 7][..]), (2, &[1, 2, 3][..])]);
        assert_eq!(q.payload(), b"xy");
        // No block at all: one is made, and the X bit set.
        let bare = [0x80, 0x60, 0, 9, 0, 0, 0, 7, 0, 0, 0, 1, b'z'];
        let n = copy_translating_extensions_adding(&bare, &mut out, |id, d| Some((id, d)), &added)
            .unwrap();
        let q = RtpPacket::parse(&out[..n]).unwrap();
        assert!(q.has_extension());
        let ext: Vec<_> = q.extensions().map(|e| e.unwrap()).collect();
        assert_eq!(ext, [(5, &[0, 7][..]), (2, &[1, 2, 3][..])]);
        assert_eq!(q.payload(), b"z");
        for room in 0..n {
            assert!(copy_translating_extensions_adding(
                &bare,
                &mut out[..room],
                |id, d| Some((id, d)),
                &added
            )
            .is_err());
        }
    }

    #[test]
    fn translating_extensions_never_panics() {
        let mut p = vec![0x90, 0x60, 0, 9, 0, 0, 0, 7, 0, 0, 0, 1];
        p.extend_from_slice(&[0xbe, 0xde, 0, 2, 0x32, 1, 2, 3, 0x10, 5, 0, 0]);
        p.extend_from_slice(b"xy");
        let mut out = [0u8; 64];
        for cut in 0..=p.len() {
            let _ = copy_translating_extensions(&p[..cut], &mut out, |id, d| Some((id, d)));
        }
        for room in 0..p.len() {
            assert!(
                copy_translating_extensions(&p, &mut out[..room], |id, d| Some((id, d))).is_err()
            );
        }
        let n = copy_translating_extensions(&p, &mut out, |id, d| Some((id, d))).unwrap();
        assert_eq!(&out[..n], &p[..], "identity map copies the packet");
    }
}
