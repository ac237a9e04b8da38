//! The client's first ClientHello, read before the `dtls` crate sees it: just far enough to learn
//! which SRTP protection profiles its `use_srtp` extension (RFC 5764 §4.1.1) offers, so that Tern
//! can choose among them by its own preference. The crate (0.17) would choose by the client's
//! order, and Chromium lists AES_CM_128_HMAC_SHA1_80 before the GCM profiles.
//!
//! Sans-IO: datagrams in, a verdict out. It owns one reassembly buffer of at most
//! `MAX_CLIENT_HELLO` bytes, because a post-quantum hello (Chromium's X25519MLKEM768 share)
//! arrives as two handshake fragments in two datagrams. Every length is checked; no input makes
//! it panic; whatever it cannot read is a `HelloError`, and the caller leaves the choice to the
//! crate. It never decides whether a handshake is acceptable: the crate parses the hello again.

use super::channel::{records, HANDSHAKE};
use crate::srtp::Profile;

/// A ClientHello longer than this is not reassembled (Chromium's post-quantum one is 1,413).
pub const MAX_CLIENT_HELLO: usize = 8192;

/// Datagrams looked at before giving up on a hello whose fragments never all arrive.
pub const MAX_DATAGRAMS: usize = 16;

const HANDSHAKE_HEADER: usize = 12;
/// Handshake message type.
const CLIENT_HELLO: u8 = 1;
/// The `use_srtp` extension (RFC 5764 §9).
const USE_SRTP: u16 = 14;

/// Why the hello gave no profile for Tern to choose: counted, and the crate chooses instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HelloError {
    /// Lengths that do not add up, fragments that disagree, or a duplicate extension.
    #[error("malformed ClientHello")]
    Malformed,
    /// The hello is longer than `MAX_CLIENT_HELLO`.
    #[error("ClientHello too long")]
    TooLong,
    /// `MAX_DATAGRAMS` datagrams came and the hello was still not whole.
    #[error("ClientHello incomplete")]
    Incomplete,
    /// The hello has no `use_srtp` extension.
    #[error("ClientHello without use_srtp")]
    NoUseSrtp,
    /// The `use_srtp` extension lists no profile Tern supports.
    #[error("no supported SRTP protection profile offered")]
    NoSupportedProfile,
}

impl HelloError {
    /// Every reason, in the order of `index`.
    pub const ALL: [HelloError; 5] = [
        HelloError::Malformed,
        HelloError::TooLong,
        HelloError::Incomplete,
        HelloError::NoUseSrtp,
        HelloError::NoSupportedProfile,
    ];

    /// The reason's position in `ALL` (for a counter array).
    pub fn index(self) -> usize {
        match self {
            HelloError::Malformed => 0,
            HelloError::TooLong => 1,
            HelloError::Incomplete => 2,
            HelloError::NoUseSrtp => 3,
            HelloError::NoSupportedProfile => 4,
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            HelloError::Malformed => "malformed",
            HelloError::TooLong => "too_long",
            HelloError::Incomplete => "incomplete",
            HelloError::NoUseSrtp => "no_use_srtp",
            HelloError::NoSupportedProfile => "no_supported_profile",
        }
    }
}

/// The first profile of `Profile::ALL` (Tern's preference) that `offered` contains.
pub fn preferred_profile(offered: &[Profile]) -> Option<Profile> {
    Profile::ALL.into_iter().find(|p| offered.contains(p))
}

/// Reassembles the handshake fragments of the first ClientHello (message sequence 0: RFC 6347
/// §4.2.2, "the first message each side transmits in each handshake always has message_seq =
/// 0") from the client's datagrams, then reads its `use_srtp` extension.
#[derive(Debug, Default)]
pub struct ClientHelloReader {
    /// The hello's length, from the first fragment seen.
    length: Option<usize>,
    body: Vec<u8>,
    /// Which bytes of `body` a fragment has filled.
    filled: Vec<bool>,
    missing: usize,
    datagrams: usize,
    verdict: Option<Result<Profile, HelloError>>,
}

impl ClientHelloReader {
    /// A reader that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Look at one datagram from the client. `None`: the hello is not whole yet, send the next
    /// one. `Some`: the profile Tern prefers among those offered, or why there is none. Once it
    /// has answered, it answers the same for every later datagram.
    pub fn push(&mut self, datagram: &[u8]) -> Option<Result<Profile, HelloError>> {
        if self.verdict.is_none() {
            self.datagrams += 1;
            self.verdict =
                match self.add_datagram(datagram) {
                    Err(e) => Some(Err(e)),
                    Ok(()) if self.length.is_some() && self.missing == 0 => {
                        let offered = offered_profiles(&self.body);
                        Some(offered.and_then(|o| {
                            preferred_profile(&o).ok_or(HelloError::NoSupportedProfile)
                        }))
                    }
                    Ok(()) if self.datagrams >= MAX_DATAGRAMS => Some(Err(HelloError::Incomplete)),
                    Ok(()) => None,
                };
        }
        self.verdict
    }

    /// Adds the ClientHello fragments of every epoch-0 handshake record; skips other records,
    /// and stops at a truncated one (the crate drops those too).
    fn add_datagram(&mut self, d: &[u8]) -> Result<(), HelloError> {
        for record in records(d) {
            if record.content_type == HANDSHAKE && record.epoch == 0 {
                self.add_record(record.body)?;
            }
        }
        Ok(())
    }

    /// A handshake record may carry several messages (or fragments of them).
    fn add_record(&mut self, mut body: &[u8]) -> Result<(), HelloError> {
        while !body.is_empty() {
            let (h, rest) = body
                .split_first_chunk::<HANDSHAKE_HEADER>()
                .ok_or(HelloError::Malformed)?;
            let u24 =
                |b: &[u8]| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]);
            let (msg_type, length, seq) = (h[0], u24(&h[1..4]), u16::from_be_bytes([h[4], h[5]]));
            let (offset, fragment_length) = (u24(&h[6..9]), u24(&h[9..12]));
            let (fragment, rest) = rest
                .split_at_checked(fragment_length)
                .ok_or(HelloError::Malformed)?;
            if msg_type == CLIENT_HELLO && seq == 0 {
                self.add_fragment(length, offset, fragment)?;
            }
            body = rest;
        }
        Ok(())
    }

    fn add_fragment(
        &mut self,
        length: usize,
        offset: usize,
        fragment: &[u8],
    ) -> Result<(), HelloError> {
        if length > MAX_CLIENT_HELLO {
            return Err(HelloError::TooLong);
        }
        match self.length {
            Some(l) if l != length => return Err(HelloError::Malformed),
            Some(_) => {}
            None => {
                self.length = Some(length);
                self.body = vec![0; length];
                self.filled = vec![false; length];
                self.missing = length;
            }
        }
        let end = offset
            .checked_add(fragment.len())
            .filter(|end| *end <= length)
            .ok_or(HelloError::Malformed)?;
        let (Some(dst), Some(filled)) = (
            self.body.get_mut(offset..end),
            self.filled.get_mut(offset..end),
        ) else {
            return Err(HelloError::Malformed);
        };
        dst.copy_from_slice(fragment);
        for f in filled.iter_mut().filter(|f| !**f) {
            *f = true;
            self.missing -= 1;
        }
        Ok(())
    }
}

/// The profiles Tern supports that a whole ClientHello body (after the handshake header) offers
/// in `use_srtp`, in the client's order. RFC 6347 §4.2.1 / RFC 5246 §7.4.1.2: client_version,
/// random, session_id, cookie, cipher_suites, compression_methods, extensions.
pub fn offered_profiles(body: &[u8]) -> Result<Vec<Profile>, HelloError> {
    let mut r = Reader(body);
    r.take(2 + 32)?;
    let session_id = r.u8()?;
    r.take(session_id)?;
    let cookie = r.u8()?;
    r.take(cookie)?;
    let cipher_suites = r.u16()?;
    r.take(cipher_suites)?;
    let compression = r.u8()?;
    r.take(compression)?;
    if r.0.is_empty() {
        return Err(HelloError::NoUseSrtp);
    }
    let extensions_len = r.u16()?;
    let mut extensions = Reader(r.take(extensions_len)?);
    if !r.0.is_empty() {
        return Err(HelloError::Malformed);
    }
    let mut use_srtp = None;
    while !extensions.0.is_empty() {
        let ext_type = extensions.u16()?;
        let len = extensions.u16()?;
        let data = extensions.take(len)?;
        if ext_type == usize::from(USE_SRTP) {
            if use_srtp.is_some() {
                // RFC 5246 §7.4.1.4: at most one extension of each type.
                return Err(HelloError::Malformed);
            }
            use_srtp = Some(use_srtp_profiles(data)?);
        }
    }
    use_srtp.ok_or(HelloError::NoUseSrtp)
}

/// RFC 5764 §4.1.1: `SRTPProtectionProfile SRTPProtectionProfiles<2..2^16-1>; opaque
/// srtp_mki<0..255>;`, nothing after.
fn use_srtp_profiles(data: &[u8]) -> Result<Vec<Profile>, HelloError> {
    let mut r = Reader(data);
    let list_len = r.u16()?;
    if list_len < 2 || list_len % 2 != 0 {
        return Err(HelloError::Malformed);
    }
    let list = r.take(list_len)?;
    let mki = r.u8()?;
    r.take(mki)?;
    if !r.0.is_empty() {
        return Err(HelloError::Malformed);
    }
    let mut offered = Vec::new();
    for id in list.chunks_exact(2) {
        if let Some(p) = Profile::from_id(u16::from_be_bytes([id[0], id[1]])) {
            if !offered.contains(&p) {
                offered.push(p);
            }
        }
    }
    Ok(offered)
}

/// A cursor over a byte slice whose every read is checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], HelloError> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(HelloError::Malformed)?;
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<usize, HelloError> {
        Ok(usize::from(self.take(1)?[0]))
    }

    fn u16(&mut self) -> Result<usize, HelloError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::dtls::channel::RECORD_HEADER;

    /// Datagrams as captured at `DtlsInbox::push`, one per line, hex (tests/fixtures/dtls).
    fn datagrams(hex: &str) -> Vec<Vec<u8>> {
        hex.lines()
            .map(|l| {
                (0..l.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&l[i..i + 2], 16).expect("hex"))
                    .collect()
            })
            .collect()
    }

    /// Chromium 148.0.7778.167 (Debian), default field trials: one datagram, one record.
    fn chromium() -> Vec<Vec<u8>> {
        datagrams(include_str!(
            "../../../tests/fixtures/dtls/chromium-148-client-hello.hex"
        ))
    }

    /// The same Chromium with `WebRTC-EnableDtlsPqc/Enabled/`: a 1,413-byte hello (an
    /// X25519MLKEM768 key share) in two fragments of 1,175 and 238 bytes, one datagram each.
    fn chromium_post_quantum() -> Vec<Vec<u8>> {
        datagrams(include_str!(
            "../../../tests/fixtures/dtls/chromium-148-pq-client-hello.hex"
        ))
    }

    /// The `dtls` crate's client (0.17.2) offering AEAD_AES_128_GCM alone.
    fn dtls_crate() -> Vec<Vec<u8>> {
        datagrams(include_str!(
            "../../../tests/fixtures/dtls/dtls-0.17-client-hello.hex"
        ))
    }

    /// One epoch-0 handshake record carrying `fragment` of a ClientHello `length` bytes long.
    fn record(seq: u16, length: usize, offset: usize, fragment: &[u8]) -> Vec<u8> {
        let u24 = |n: usize| (n as u32).to_be_bytes()[1..].to_vec();
        let mut hs = vec![CLIENT_HELLO];
        hs.extend(u24(length));
        hs.extend(seq.to_be_bytes());
        hs.extend(u24(offset));
        hs.extend(u24(fragment.len()));
        hs.extend_from_slice(fragment);
        let mut r = vec![HANDSHAKE, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0];
        r.extend((hs.len() as u16).to_be_bytes());
        r.extend(hs);
        r
    }

    /// A ClientHello body with these extensions (type, data).
    fn hello_body(extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut b = vec![0xfe, 0xfd];
        b.extend([7; 32]);
        b.push(0); // session_id
        b.extend([3, 1, 2, 3]); // cookie
        b.extend([0, 2, 0xc0, 0x2b]); // cipher_suites
        b.extend([1, 0]); // compression_methods
        let mut ext = Vec::new();
        for (t, data) in extensions {
            ext.extend(t.to_be_bytes());
            ext.extend((data.len() as u16).to_be_bytes());
            ext.extend(data);
        }
        b.extend((ext.len() as u16).to_be_bytes());
        b.extend(ext);
        b
    }

    fn use_srtp(ids: &[u16], mki: &[u8]) -> (u16, Vec<u8>) {
        let mut d = ((ids.len() * 2) as u16).to_be_bytes().to_vec();
        for id in ids {
            d.extend(id.to_be_bytes());
        }
        d.push(mki.len() as u8);
        d.extend(mki);
        (USE_SRTP, d)
    }

    /// The verdict on a whole hello sent as one record.
    fn verdict(body: &[u8]) -> Option<Result<Profile, HelloError>> {
        ClientHelloReader::new().push(&record(0, body.len(), 0, body))
    }

    /// The ClientHello body of one-record datagrams (their handshake fragments, joined).
    fn body_of(datagrams: &[Vec<u8>]) -> Vec<u8> {
        datagrams
            .iter()
            .flat_map(|d| d[RECORD_HEADER + HANDSHAKE_HEADER..].to_vec())
            .collect()
    }

    #[test]
    fn chromium_offers_cm_80_first_and_tern_picks_aes_128_gcm() {
        let hello = chromium();
        assert_eq!(hello.len(), 1);
        assert_eq!(
            offered_profiles(&body_of(&hello)),
            Ok(vec![
                Profile::Aes128CmHmacSha1_80,
                Profile::AeadAes256Gcm,
                Profile::AeadAes128Gcm,
            ])
        );
        let mut reader = ClientHelloReader::new();
        assert_eq!(reader.push(&hello[0]), Some(Ok(Profile::AeadAes128Gcm)));
        // The verdict stands, whatever comes next.
        assert_eq!(reader.push(&[0xff; 40]), Some(Ok(Profile::AeadAes128Gcm)));
    }

    #[test]
    fn dtls_crate_hello_is_read() {
        let hello = dtls_crate();
        assert_eq!(
            offered_profiles(&body_of(&hello)),
            Ok(vec![Profile::AeadAes128Gcm])
        );
        assert_eq!(
            ClientHelloReader::new().push(&hello[0]),
            Some(Ok(Profile::AeadAes128Gcm))
        );
    }

    #[test]
    fn post_quantum_hello_is_reassembled_from_two_datagrams_in_any_order() {
        let hello = chromium_post_quantum();
        assert_eq!(
            hello.iter().map(Vec::len).collect::<Vec<_>>(),
            [1200, 263],
            "fixture"
        );
        assert_eq!(body_of(&hello).len(), 1413);
        for order in [[0, 1], [1, 0]] {
            let mut reader = ClientHelloReader::new();
            assert_eq!(reader.push(&hello[order[0]]), None);
            // A retransmitted fragment changes nothing.
            assert_eq!(reader.push(&hello[order[0]]), None);
            assert_eq!(
                reader.push(&hello[order[1]]),
                Some(Ok(Profile::AeadAes128Gcm))
            );
        }
    }

    #[test]
    fn fragments_may_overlap_and_share_a_record() {
        let body = body_of(&chromium());
        let n = body.len();
        let mut reader = ClientHelloReader::new();
        assert_eq!(reader.push(&record(0, n, 0, &body[..100])), None);
        // Bytes 50..150 again and 150..170, as two handshake messages in one record.
        let mut both = record(0, n, 50, &body[50..150]);
        let second = record(0, n, 150, &body[150..170]);
        both.extend_from_slice(&second[RECORD_HEADER..]);
        let len = (both.len() - RECORD_HEADER) as u16;
        both[11..13].copy_from_slice(&len.to_be_bytes());
        assert_eq!(reader.push(&both), None);
        // Another record in the same datagram, after one of another content type.
        let mut last = vec![21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0];
        last.extend(record(0, n, 170, &body[170..]));
        assert_eq!(reader.push(&last), Some(Ok(Profile::AeadAes128Gcm)));
    }

    #[test]
    fn other_messages_sequences_and_epochs_are_ignored() {
        let body = body_of(&chromium());
        let mut reader = ClientHelloReader::new();
        assert_eq!(reader.push(&record(1, body.len(), 0, &body)), None);
        let mut epoch1 = record(0, body.len(), 0, &body);
        epoch1[4] = 1;
        assert_eq!(reader.push(&epoch1), None);
        let mut certificate = record(0, body.len(), 0, &body);
        certificate[RECORD_HEADER] = 11;
        assert_eq!(reader.push(&certificate), None);
        assert_eq!(
            reader.push(&record(0, body.len(), 0, &body)),
            Some(Ok(Profile::AeadAes128Gcm))
        );
    }

    #[test]
    fn tern_prefers_its_own_order() {
        use Profile::*;
        let cases = [
            (vec![1, 7], AeadAes128Gcm),
            (vec![8, 1, 7], AeadAes128Gcm),
            (vec![2, 8, 1], AeadAes256Gcm),
            (vec![2, 1], Aes128CmHmacSha1_80),
            (vec![0x0005, 2], Aes128CmHmacSha1_32),
            (vec![1], Aes128CmHmacSha1_80),
        ];
        for (ids, want) in cases {
            let body = hello_body(&[(10, vec![0, 2, 0, 29]), use_srtp(&ids, &[])]);
            assert_eq!(verdict(&body), Some(Ok(want)), "{ids:?}");
        }
        assert_eq!(preferred_profile(&[]), None);
    }

    #[test]
    fn mki_is_skipped() {
        let body = hello_body(&[use_srtp(&[1, 7], &[9, 9, 9])]);
        assert_eq!(verdict(&body), Some(Ok(Profile::AeadAes128Gcm)));
    }

    #[test]
    fn what_cannot_be_used_is_named() {
        let cases = [
            (
                hello_body(&[(10, vec![0, 2, 0, 29])]),
                HelloError::NoUseSrtp,
            ),
            (
                hello_body(&[use_srtp(&[5, 6], &[])]),
                HelloError::NoSupportedProfile,
            ),
            (hello_body(&[use_srtp(&[], &[])]), HelloError::Malformed),
            (
                hello_body(&[use_srtp(&[1], &[]), use_srtp(&[7], &[])]),
                HelloError::Malformed,
            ),
            (
                hello_body(&[(USE_SRTP, vec![0, 3, 0, 1, 0, 0])]),
                HelloError::Malformed,
            ),
            (
                hello_body(&[(USE_SRTP, vec![0, 2, 0, 1, 0, 0xee])]),
                HelloError::Malformed,
            ),
        ];
        for (body, want) in cases {
            assert_eq!(verdict(&body), Some(Err(want)), "{body:02x?}");
        }
        // No extensions block at all.
        let mut bare = hello_body(&[]);
        bare.truncate(bare.len() - 2);
        assert_eq!(verdict(&bare), Some(Err(HelloError::NoUseSrtp)));
        // Bytes after the extensions.
        let mut trailing = hello_body(&[use_srtp(&[7], &[])]);
        trailing.push(0);
        assert_eq!(verdict(&trailing), Some(Err(HelloError::Malformed)));
    }

    #[test]
    fn fragments_that_disagree_or_overflow_are_malformed() {
        let body = body_of(&chromium());
        let n = body.len();
        let mut reader = ClientHelloReader::new();
        assert_eq!(reader.push(&record(0, n, 0, &body[..50])), None);
        assert_eq!(
            reader.push(&record(0, n + 1, 50, &body[50..])),
            Some(Err(HelloError::Malformed))
        );
        let mut reader = ClientHelloReader::new();
        assert_eq!(
            reader.push(&record(0, n, 10, &body)),
            Some(Err(HelloError::Malformed))
        );
        // A handshake header whose fragment runs past its record.
        let mut short = record(0, n, 0, &body);
        let len = RECORD_HEADER + HANDSHAKE_HEADER + 10;
        short[11..13].copy_from_slice(&((len - RECORD_HEADER) as u16).to_be_bytes());
        short.truncate(len);
        assert_eq!(
            ClientHelloReader::new().push(&short),
            Some(Err(HelloError::Malformed))
        );
    }

    #[test]
    fn a_hello_too_long_to_buffer_is_refused_before_any_allocation() {
        let mut reader = ClientHelloReader::new();
        assert_eq!(
            reader.push(&record(0, 0xff_ffff, 0, &[1; 100])),
            Some(Err(HelloError::TooLong))
        );
        assert!(reader.body.is_empty());
        assert_eq!(
            verdict(&vec![0; MAX_CLIENT_HELLO + 1]),
            Some(Err(HelloError::TooLong))
        );
    }

    #[test]
    fn a_hello_that_never_completes_is_given_up() {
        let hello = chromium_post_quantum();
        let mut reader = ClientHelloReader::new();
        for _ in 1..MAX_DATAGRAMS {
            assert_eq!(reader.push(&hello[0]), None);
        }
        assert_eq!(reader.push(&hello[0]), Some(Err(HelloError::Incomplete)));
        assert_eq!(reader.push(&hello[1]), Some(Err(HelloError::Incomplete)));
    }

    #[test]
    fn every_truncation_is_survived() {
        for hello in [chromium(), chromium_post_quantum(), dtls_crate()] {
            let body = body_of(&hello);
            // A truncated datagram: its record is cut, so it is not read at all.
            for d in &hello {
                for n in 0..d.len() {
                    assert_eq!(ClientHelloReader::new().push(&d[..n]), None, "{n}");
                }
            }
            // A truncated hello with consistent headers: never a profile.
            for n in 0..body.len() {
                assert!(offered_profiles(&body[..n]).is_err(), "{n}");
                assert!(matches!(verdict(&body[..n]), Some(Err(_))), "{n}");
            }
            assert_eq!(verdict(&body), Some(Ok(Profile::AeadAes128Gcm)));
        }
    }

    #[test]
    fn corrupted_and_random_bytes_never_panic() {
        let hello = chromium();
        for i in 0..hello[0].len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut d = hello[0].clone();
                d[i] ^= flip;
                let _ = ClientHelloReader::new().push(&d);
                let _ = offered_profiles(&d[RECORD_HEADER + HANDSHAKE_HEADER..]);
            }
        }
        // xorshift: reproducible garbage, some of it shaped like handshake records.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 300) as usize;
            let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if d.len() > 13 && next() % 2 == 0 {
                d[0] = HANDSHAKE;
                d[3] = 0;
                d[4] = 0;
                d[RECORD_HEADER] = CLIENT_HELLO;
            }
            let mut reader = ClientHelloReader::new();
            let _ = reader.push(&d);
            let _ = reader.push(&d);
            let _ = offered_profiles(&d);
        }
    }
}
