//! `SrtpContext`: one direction's SRTP/SRTCP session keys plus per-SSRC sequence state, with
//! in-place protect and unprotect.
//!
//! Receive order, for every profile: read SSRC and sequence number, estimate the index, refuse a
//! replay (read-only check), verify the tag, and only then decrypt and move the replay window.
//! Nothing here allocates after construction: the SSRC tables are sized by [`SrtpConfig`].

use subtle::ConstantTimeEq;

use super::crypto::{AesCtr, AesGcm, HmacSha1};
use super::kdf::SessionKeys;
use super::replay::{estimate_index, ReplayWindow};
use super::{Profile, SrtpError};
use crate::wire::rtp;

/// A master key may protect at most 2^48 SRTP packets (RFC 3711 §9.2).
const SRTP_MAX_PACKETS: u64 = 1 << 48;
/// ... and at most 2^31 SRTCP packets (the SRTCP index is 31 bits).
const SRTCP_MAX_PACKETS: u64 = 1 << 31;
const SRTCP_E_FLAG: u32 = 0x8000_0000;
const RTCP_HEADER_LEN: usize = 8;
const GCM_TAG_LEN: usize = 16;

/// Per-context limits. `Clone`, with documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpConfig {
    /// How many SSRCs each direction may track (default 32). A packet with a new SSRC beyond
    /// this is refused with [`SrtpError::UnknownSsrc`]. Memory for them is reserved up front.
    pub max_ssrcs: usize,
    /// Refuse replayed and too-old packets on receive (default true).
    pub replay_protection: bool,
}

impl Default for SrtpConfig {
    fn default() -> Self {
        Self {
            max_ssrcs: 32,
            replay_protection: true,
        }
    }
}

/// SRTP and SRTCP state for one master key.
pub struct SrtpContext {
    profile: Profile,
    config: SrtpConfig,
    rtp: DirectionKeys,
    rtcp: DirectionKeys,
    /// Highest SRTP index sent per SSRC.
    tx_rtp: SsrcTable<Option<u64>>,
    /// Replay window (whose top is also the ROC/s_l state) per received SSRC.
    rx_rtp: SsrcTable<ReplayWindow>,
    /// Next SRTCP index to send per SSRC.
    tx_rtcp: SsrcTable<u32>,
    rx_rtcp: SsrcTable<ReplayWindow>,
    rtp_packets: u64,
    rtcp_packets: u64,
}

// One context per session direction: the size gap costs a few hundred bytes, while boxing the
// large variant would cost a pointer chase per packet.
#[allow(clippy::large_enum_variant)]
enum Cipher {
    Cm {
        ctr: AesCtr,
        mac: HmacSha1,
        tag_len: usize,
    },
    Gcm(AesGcm),
}

struct DirectionKeys {
    cipher: Cipher,
    salt: [u8; 14],
}

impl SrtpContext {
    /// Derives the session keys from a DTLS-SRTP master key and salt, with default limits.
    pub fn new(profile: Profile, master_key: &[u8], master_salt: &[u8]) -> Result<Self, SrtpError> {
        Self::with_config(profile, master_key, master_salt, SrtpConfig::default())
    }

    /// As [`SrtpContext::new`], with explicit limits.
    pub fn with_config(
        profile: Profile,
        master_key: &[u8],
        master_salt: &[u8],
        config: SrtpConfig,
    ) -> Result<Self, SrtpError> {
        let keys = SessionKeys::derive(profile, master_key, master_salt)?;
        Self::from_session_keys(&keys, config)
    }

    /// A context over already-derived session keys.
    pub fn from_session_keys(keys: &SessionKeys, config: SrtpConfig) -> Result<Self, SrtpError> {
        let profile = keys.profile;
        let klen = profile.key_len();
        let make = |key: &[u8],
                    auth: &[u8],
                    salt: [u8; 14],
                    rtcp: bool|
         -> Result<DirectionKeys, SrtpError> {
            let cipher = if profile.is_aead() {
                Cipher::Gcm(AesGcm::new(key)?)
            } else {
                let tag_len = if rtcp { 10 } else { profile.rtp_overhead() };
                Cipher::Cm {
                    ctr: AesCtr::new(key)?,
                    mac: HmacSha1::new(auth),
                    tag_len,
                }
            };
            Ok(DirectionKeys { cipher, salt })
        };
        let n = config.max_ssrcs;
        Ok(Self {
            profile,
            rtp: make(&keys.rtp_key[..klen], &keys.rtp_auth, keys.rtp_salt, false)?,
            rtcp: make(
                &keys.rtcp_key[..klen],
                &keys.rtcp_auth,
                keys.rtcp_salt,
                true,
            )?,
            tx_rtp: SsrcTable::with_capacity(n),
            rx_rtp: SsrcTable::with_capacity(n),
            tx_rtcp: SsrcTable::with_capacity(n),
            rx_rtcp: SsrcTable::with_capacity(n),
            rtp_packets: 0,
            rtcp_packets: 0,
            config,
        })
    }

    /// The profile this context protects with.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Protects the RTP packet in `buf[..len]` in place and appends the tag; `buf` must have
    /// `profile().rtp_overhead()` spare bytes after `len`. Returns the SRTP packet length.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::BufferTooSmall)?;
        let hdr_len = rtp::header_len(packet).map_err(|_| SrtpError::BadHeader)?;
        let out_len = len + self.profile.rtp_overhead();
        if buf.len() < out_len {
            return Err(SrtpError::BufferTooSmall);
        }
        if self.rtp_packets >= SRTP_MAX_PACKETS {
            return Err(SrtpError::KeyExpired);
        }
        let (ssrc, seq) = rtp_ssrc_seq(buf);
        let highest = self.tx_rtp.get_or_insert(ssrc)?;
        // A packet from before the first one sent (a reordered forward) keeps ROC 0.
        let index = estimate_index(*highest, seq).unwrap_or(u64::from(seq));
        if index >= SRTP_MAX_PACKETS {
            return Err(SrtpError::KeyExpired);
        }
        if highest.is_none_or(|h| index > h) {
            *highest = Some(index);
        }
        let roc = (index >> 16) as u32;
        match &self.rtp.cipher {
            Cipher::Cm { ctr, mac, tag_len } => {
                ctr.apply(cm_iv(&self.rtp.salt, ssrc, index), &mut buf[hdr_len..len])?;
                let tag = mac.tag(&buf[..len], &roc.to_be_bytes());
                buf[len..out_len].copy_from_slice(&tag[..*tag_len]);
            }
            Cipher::Gcm(gcm) => {
                let nonce = gcm_rtp_iv(&self.rtp.salt, ssrc, roc, seq);
                let (header, rest) = buf.split_at_mut(hdr_len);
                let body = len - hdr_len;
                let tag = gcm.seal(nonce, header, &mut rest[..body])?;
                rest[body..body + GCM_TAG_LEN].copy_from_slice(&tag);
            }
        }
        self.rtp_packets += 1;
        Ok(out_len)
    }

    /// Verifies and decrypts the SRTP packet `buf` in place. Returns the length of the RTP
    /// packet now at the front of `buf`. On error nothing in the context has moved.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let len = buf.len();
        let overhead = self.profile.rtp_overhead();
        if len < rtp::FIXED_HEADER_LEN + overhead {
            return Err(SrtpError::TooShort);
        }
        if buf[0] >> 6 != 2 {
            return Err(SrtpError::BadHeader);
        }
        if self.rtp_packets >= SRTP_MAX_PACKETS {
            return Err(SrtpError::KeyExpired);
        }
        let (ssrc, seq) = rtp_ssrc_seq(buf);
        let slot = self.rx_rtp.find(ssrc);
        let window = match slot {
            Some(i) => Some(&self.rx_rtp.entries[i].1),
            None if self.rx_rtp.is_full() => return Err(SrtpError::UnknownSsrc),
            None => None,
        };
        let index = estimate_index(window.and_then(ReplayWindow::highest), seq)
            .ok_or(SrtpError::Replayed)?;
        if index >= SRTP_MAX_PACKETS {
            return Err(SrtpError::KeyExpired);
        }
        if self.config.replay_protection && window.is_some_and(|w| !w.check(index)) {
            return Err(SrtpError::Replayed);
        }
        let roc = (index >> 16) as u32;
        let auth_end = len - overhead;
        let plain_len = match &self.rtp.cipher {
            Cipher::Cm { ctr, mac, tag_len } => {
                let tag = mac.tag(&buf[..auth_end], &roc.to_be_bytes());
                if !bool::from(tag[..*tag_len].ct_eq(&buf[auth_end..])) {
                    return Err(SrtpError::AuthFailed);
                }
                let hdr_len =
                    rtp::header_len(&buf[..auth_end]).map_err(|_| SrtpError::BadHeader)?;
                ctr.apply(
                    cm_iv(&self.rtp.salt, ssrc, index),
                    &mut buf[hdr_len..auth_end],
                )?;
                auth_end
            }
            Cipher::Gcm(gcm) => {
                let hdr_len =
                    rtp::header_len(&buf[..auth_end]).map_err(|_| SrtpError::BadHeader)?;
                let nonce = gcm_rtp_iv(&self.rtp.salt, ssrc, roc, seq);
                let (header, rest) = buf.split_at_mut(hdr_len);
                hdr_len + gcm.open(nonce, header, rest)?
            }
        };
        // Authenticated: now the window may move.
        let entry = match slot {
            Some(i) => &mut self.rx_rtp.entries[i].1,
            None => self.rx_rtp.get_or_insert(ssrc)?,
        };
        entry.accept(index);
        self.rtp_packets += 1;
        Ok(plain_len)
    }

    /// Protects the RTCP compound packet in `buf[..len]` in place, appending the E flag, SRTCP
    /// index and tag; `buf` must have `profile().rtcp_overhead()` spare bytes after `len`.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::BufferTooSmall)?;
        if packet.len() < RTCP_HEADER_LEN {
            return Err(SrtpError::TooShort);
        }
        if packet[0] >> 6 != 2 {
            return Err(SrtpError::BadHeader);
        }
        let out_len = len + self.profile.rtcp_overhead();
        if buf.len() < out_len {
            return Err(SrtpError::BufferTooSmall);
        }
        if self.rtcp_packets >= SRTCP_MAX_PACKETS {
            return Err(SrtpError::KeyExpired);
        }
        let ssrc = rtcp_ssrc(buf);
        let next = self.tx_rtcp.get_or_insert(ssrc)?;
        let index = *next;
        if u64::from(index) >= SRTCP_MAX_PACKETS {
            return Err(SrtpError::KeyExpired);
        }
        *next += 1;
        let e_index = (index | SRTCP_E_FLAG).to_be_bytes();
        match &self.rtcp.cipher {
            Cipher::Cm { ctr, mac, tag_len } => {
                ctr.apply(
                    cm_iv(&self.rtcp.salt, ssrc, u64::from(index)),
                    &mut buf[RTCP_HEADER_LEN..len],
                )?;
                buf[len..len + 4].copy_from_slice(&e_index);
                let tag = mac.tag(&buf[..len + 4], &[]);
                buf[len + 4..out_len].copy_from_slice(&tag[..*tag_len]);
            }
            Cipher::Gcm(gcm) => {
                let nonce = gcm_rtcp_iv(&self.rtcp.salt, ssrc, index);
                let aad = rtcp_gcm_aad(buf, e_index);
                let tag = gcm.seal(nonce, &aad, &mut buf[RTCP_HEADER_LEN..len])?;
                buf[len..len + GCM_TAG_LEN].copy_from_slice(&tag);
                buf[len + GCM_TAG_LEN..out_len].copy_from_slice(&e_index);
            }
        }
        self.rtcp_packets += 1;
        Ok(out_len)
    }

    /// Verifies and (if the E flag is set) decrypts the SRTCP packet `buf` in place. Returns the
    /// length of the RTCP compound packet now at the front of `buf`.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let len = buf.len();
        let overhead = self.profile.rtcp_overhead();
        if len < RTCP_HEADER_LEN + overhead {
            return Err(SrtpError::TooShort);
        }
        if buf[0] >> 6 != 2 {
            return Err(SrtpError::BadHeader);
        }
        if self.rtcp_packets >= SRTCP_MAX_PACKETS {
            return Err(SrtpError::KeyExpired);
        }
        let ssrc = rtcp_ssrc(buf);
        let index_at = match self.rtcp.cipher {
            Cipher::Cm { tag_len, .. } => len - tag_len - 4,
            Cipher::Gcm(_) => len - 4,
        };
        let e_index = [
            buf[index_at],
            buf[index_at + 1],
            buf[index_at + 2],
            buf[index_at + 3],
        ];
        let word = u32::from_be_bytes(e_index);
        let encrypted = word & SRTCP_E_FLAG != 0;
        let index = word & !SRTCP_E_FLAG;
        let slot = self.rx_rtcp.find(ssrc);
        let window = match slot {
            Some(i) => Some(&self.rx_rtcp.entries[i].1),
            None if self.rx_rtcp.is_full() => return Err(SrtpError::UnknownSsrc),
            None => None,
        };
        if self.config.replay_protection && window.is_some_and(|w| !w.check(u64::from(index))) {
            return Err(SrtpError::Replayed);
        }
        let plain_len = match &self.rtcp.cipher {
            Cipher::Cm { ctr, mac, tag_len } => {
                let auth_end = len - tag_len;
                let tag = mac.tag(&buf[..auth_end], &[]);
                if !bool::from(tag[..*tag_len].ct_eq(&buf[auth_end..])) {
                    return Err(SrtpError::AuthFailed);
                }
                if encrypted {
                    ctr.apply(
                        cm_iv(&self.rtcp.salt, ssrc, u64::from(index)),
                        &mut buf[RTCP_HEADER_LEN..index_at],
                    )?;
                }
                index_at
            }
            Cipher::Gcm(gcm) => {
                let nonce = gcm_rtcp_iv(&self.rtcp.salt, ssrc, index);
                if encrypted {
                    let aad = rtcp_gcm_aad(buf, e_index);
                    RTCP_HEADER_LEN + gcm.open(nonce, &aad, &mut buf[RTCP_HEADER_LEN..index_at])?
                } else {
                    // E = 0 (RFC 7714 §9.2): the whole packet and the index word are AAD and
                    // the plaintext is empty. Swap tag and index so the AAD is contiguous.
                    let tail = &mut buf[len - GCM_TAG_LEN - 4..];
                    tail.rotate_left(GCM_TAG_LEN);
                    let (aad, tag) = buf.split_at_mut(len - GCM_TAG_LEN);
                    if let Err(e) = gcm.open(nonce, aad, tag) {
                        buf[len - GCM_TAG_LEN - 4..].rotate_right(GCM_TAG_LEN);
                        return Err(e);
                    }
                    len - GCM_TAG_LEN - 4
                }
            }
        };
        let entry = match slot {
            Some(i) => &mut self.rx_rtcp.entries[i].1,
            None => self.rx_rtcp.get_or_insert(ssrc)?,
        };
        entry.accept(u64::from(index));
        self.rtcp_packets += 1;
        Ok(plain_len)
    }
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .field("rtp_packets", &self.rtp_packets)
            .field("rtcp_packets", &self.rtcp_packets)
            .finish_non_exhaustive()
    }
}

/// SSRC → state, with room reserved up front and linear search: a session has a handful of
/// SSRCs, for which a scan of a small contiguous array beats hashing.
struct SsrcTable<T> {
    entries: Vec<(u32, T)>,
    capacity: usize,
}

impl<T: Default> SsrcTable<T> {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Vec::with_capacity(capacity),
            capacity,
        }
    }

    fn find(&self, ssrc: u32) -> Option<usize> {
        self.entries.iter().position(|(s, _)| *s == ssrc)
    }

    fn is_full(&self) -> bool {
        self.entries.len() >= self.capacity
    }

    fn get_or_insert(&mut self, ssrc: u32) -> Result<&mut T, SrtpError> {
        let i = match self.find(ssrc) {
            Some(i) => i,
            None if self.is_full() => return Err(SrtpError::UnknownSsrc),
            None => {
                self.entries.push((ssrc, T::default()));
                self.entries.len() - 1
            }
        };
        Ok(&mut self.entries[i].1)
    }
}

fn rtp_ssrc_seq(buf: &[u8]) -> (u32, u16) {
    (
        u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        u16::from_be_bytes([buf[2], buf[3]]),
    )
}

fn rtcp_ssrc(buf: &[u8]) -> u32 {
    u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]])
}

/// AES-CM IV (RFC 3711 §4.1.1): (salt << 16) XOR (SSRC << 64) XOR (index << 16).
fn cm_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    for (d, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *d ^= s;
    }
    for (d, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *d ^= s;
    }
    iv
}

/// GCM SRTP IV (RFC 7714 §8.1): (00 00 || SSRC || ROC || SEQ) XOR salt.
fn gcm_rtp_iv(salt: &[u8; 14], ssrc: u32, roc: u32, seq: u16) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[6..10].copy_from_slice(&roc.to_be_bytes());
    iv[10..12].copy_from_slice(&seq.to_be_bytes());
    for (d, s) in iv.iter_mut().zip(salt) {
        *d ^= s;
    }
    iv
}

/// GCM SRTCP IV (RFC 7714 §9.1): (00 00 || SSRC || 00 00 || 0 || index) XOR salt.
fn gcm_rtcp_iv(salt: &[u8; 14], ssrc: u32, index: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[8..12].copy_from_slice(&index.to_be_bytes());
    for (d, s) in iv.iter_mut().zip(salt) {
        *d ^= s;
    }
    iv
}

/// GCM SRTCP AAD with E = 1: the 8-byte header then the E flag and index.
fn rtcp_gcm_aad(buf: &[u8], e_index: [u8; 4]) -> [u8; 12] {
    let mut aad = [0u8; 12];
    aad[..8].copy_from_slice(&buf[..8]);
    aad[8..].copy_from_slice(&e_index);
    aad
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
