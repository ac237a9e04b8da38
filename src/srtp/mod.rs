//! SRTP and SRTCP (RFC 3711, RFC 7714): key derivation, the four DTLS-SRTP profiles, replay
//! window, ROC estimation, in-place protect and unprotect.
//!
//! An [`SrtpContext`] holds one master key's session keys (one direction of a DTLS-SRTP
//! association) and the per-SSRC sequence state. Keys are derived once, when the context is
//! made; `protect_*` and `unprotect_*` then work in place on the caller's buffer and never
//! allocate, read the clock or panic. On receive the authentication tag is checked before the
//! payload is decrypted or any state moves; a bad packet comes back as a `Copy` [`SrtpError`]
//! that the caller counts and drops.

mod context;
mod crypto;
mod kdf;
mod replay;

pub use context::{SrtpConfig, SrtpContext};
pub use crypto::raw;
pub use kdf::SessionKeys;
pub use replay::{estimate_index, ReplayWindow, REPLAY_WINDOW};

/// A DTLS-SRTP protection profile (RFC 5764 §4.1.2, RFC 7714 §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Profile {
    /// SRTP_AES128_CM_HMAC_SHA1_80 (0x0001): AES-128 counter mode, 80-bit HMAC-SHA1 tag.
    Aes128CmHmacSha1_80,
    /// SRTP_AES128_CM_HMAC_SHA1_32 (0x0002): as above with a 32-bit RTP tag (SRTCP keeps 80).
    Aes128CmHmacSha1_32,
    /// SRTP_AEAD_AES_128_GCM (0x0007).
    AeadAes128Gcm,
    /// SRTP_AEAD_AES_256_GCM (0x0008).
    AeadAes256Gcm,
}

impl Profile {
    /// Every profile, in the order Tern prefers them.
    pub const ALL: [Profile; 4] = [
        Profile::AeadAes128Gcm,
        Profile::AeadAes256Gcm,
        Profile::Aes128CmHmacSha1_80,
        Profile::Aes128CmHmacSha1_32,
    ];

    /// The profile for a DTLS `use_srtp` protection profile id, if Tern supports it.
    pub fn from_id(id: u16) -> Option<Profile> {
        match id {
            0x0001 => Some(Profile::Aes128CmHmacSha1_80),
            0x0002 => Some(Profile::Aes128CmHmacSha1_32),
            0x0007 => Some(Profile::AeadAes128Gcm),
            0x0008 => Some(Profile::AeadAes256Gcm),
            _ => None,
        }
    }

    /// The DTLS `use_srtp` protection profile id.
    pub fn id(self) -> u16 {
        match self {
            Profile::Aes128CmHmacSha1_80 => 0x0001,
            Profile::Aes128CmHmacSha1_32 => 0x0002,
            Profile::AeadAes128Gcm => 0x0007,
            Profile::AeadAes256Gcm => 0x0008,
        }
    }

    /// The name used in SDP, DTLS and the benchmark output.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Aes128CmHmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Profile::Aes128CmHmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Profile::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Profile::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// Master (and session) encryption key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Profile::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Master (and session) salt length in bytes.
    pub fn salt_len(self) -> usize {
        if self.is_aead() {
            12
        } else {
            14
        }
    }

    /// Bytes `protect_rtp` appends to a packet.
    pub fn rtp_overhead(self) -> usize {
        match self {
            Profile::Aes128CmHmacSha1_80 => 10,
            Profile::Aes128CmHmacSha1_32 => 4,
            Profile::AeadAes128Gcm | Profile::AeadAes256Gcm => 16,
        }
    }

    /// Bytes `protect_rtcp` appends to a packet (tag plus the 4-byte E flag and SRTCP index).
    pub fn rtcp_overhead(self) -> usize {
        match self {
            Profile::Aes128CmHmacSha1_80 | Profile::Aes128CmHmacSha1_32 => 10 + 4,
            Profile::AeadAes128Gcm | Profile::AeadAes256Gcm => 16 + 4,
        }
    }

    /// True for the AEAD (GCM) profiles.
    pub fn is_aead(self) -> bool {
        matches!(self, Profile::AeadAes128Gcm | Profile::AeadAes256Gcm)
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why SRTP refused a packet or a key. `Copy`: the fast path counts it and drops the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// Shorter than a header plus the tag (and SRTCP index).
    #[error("packet too short")]
    TooShort,
    /// The RTP/RTCP header is not version 2, or its lengths contradict the packet.
    #[error("malformed header")]
    BadHeader,
    /// The authentication tag did not verify.
    #[error("authentication failed")]
    AuthFailed,
    /// The index was seen before, or is older than the replay window.
    #[error("replayed or too old")]
    Replayed,
    /// A new SSRC arrived and the context already tracks as many as it may.
    #[error("unknown SSRC and no room for another")]
    UnknownSsrc,
    /// The master key has protected or accepted as many packets as it may (2^48 SRTP, 2^31 SRTCP).
    #[error("master key lifetime exhausted")]
    KeyExpired,
    /// The caller's buffer has no room for the tag.
    #[error("buffer has no room for the tag")]
    BufferTooSmall,
    /// Master key or salt of the wrong length for the profile (an API misuse, not the peer).
    #[error("master key or salt has the wrong length for the profile")]
    BadKeyLength,
    /// The crypto backend refused an operation that should not fail.
    #[error("crypto backend failure")]
    Backend,
}

/// Hex (whitespace allowed) to bytes, for the RFC vectors in this module's tests.
#[cfg(test)]
fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_ids_round_trip() {
        for p in Profile::ALL {
            assert_eq!(Profile::from_id(p.id()), Some(p));
        }
        assert_eq!(Profile::from_id(0x0003), None);
    }
}
