//! The crypto backends behind SRTP, one per primitive, chosen by measurement
//! (perf-reports/2026-11-26-srtp-backend.md): AES-CTR and AES-GCM from aws-lc-rs, HMAC-SHA1 from
//! RustCrypto (`sha1` uses SHA-NI where the CPU has it).
//!
//! Every key is expanded once, when the context is made; the per-packet calls take `&self`, work
//! in place and allocate nothing.

use aws_lc_rs::{aead, cipher};
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::SrtpError;

/// AES in counter mode (the SRTP "AES-CM" cipher), 128- or 256-bit key.
pub struct AesCtr {
    key: cipher::EncryptingKey,
}

impl AesCtr {
    /// Expands `key` (16 or 32 bytes).
    pub fn new(key: &[u8]) -> Result<Self, SrtpError> {
        let alg = match key.len() {
            16 => &cipher::AES_128,
            32 => &cipher::AES_256,
            _ => return Err(SrtpError::BadKeyLength),
        };
        let unbound =
            cipher::UnboundCipherKey::new(alg, key).map_err(|_| SrtpError::BadKeyLength)?;
        let key = cipher::EncryptingKey::ctr(unbound).map_err(|_| SrtpError::BadKeyLength)?;
        Ok(Self { key })
    }

    /// XORs `data` with the keystream that starts at counter block `iv`.
    pub fn apply(&self, iv: [u8; 16], data: &mut [u8]) -> Result<(), SrtpError> {
        self.key
            .less_safe_encrypt(data, cipher::EncryptionContext::Iv128(iv.into()))
            .map(|_| ())
            .map_err(|_| SrtpError::Backend)
    }
}

/// HMAC-SHA1 with the key schedule (inner and outer pads) computed once.
#[derive(Clone)]
pub struct HmacSha1 {
    keyed: Hmac<Sha1>,
}

impl HmacSha1 {
    /// Keys the MAC.
    pub fn new(key: &[u8]) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        let keyed = <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        Self { keyed }
    }

    /// The full 20-byte tag of `a || b`.
    pub fn tag(&self, a: &[u8], b: &[u8]) -> [u8; 20] {
        let mut mac = self.keyed.clone();
        mac.update(a);
        mac.update(b);
        mac.finalize().into_bytes().into()
    }
}

/// AES-GCM with a 16-byte tag, 128- or 256-bit key.
pub struct AesGcm {
    key: aead::LessSafeKey,
}

impl AesGcm {
    /// Expands `key` (16 or 32 bytes).
    pub fn new(key: &[u8]) -> Result<Self, SrtpError> {
        let alg = match key.len() {
            16 => &aead::AES_128_GCM,
            32 => &aead::AES_256_GCM,
            _ => return Err(SrtpError::BadKeyLength),
        };
        let unbound = aead::UnboundKey::new(alg, key).map_err(|_| SrtpError::BadKeyLength)?;
        Ok(Self {
            key: aead::LessSafeKey::new(unbound),
        })
    }

    /// Encrypts `data` in place and returns the tag.
    pub fn seal(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; 16], SrtpError> {
        let tag = self
            .key
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                data,
            )
            .map_err(|_| SrtpError::Backend)?;
        let mut out = [0u8; 16];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Verifies the tag at the end of `data_and_tag` and decrypts the rest in place; returns the
    /// plaintext length. Nothing is written unless the tag verifies.
    pub fn open(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        data_and_tag: &mut [u8],
    ) -> Result<usize, SrtpError> {
        self.key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                data_and_tag,
            )
            .map(|plain| plain.len())
            .map_err(|_| SrtpError::AuthFailed)
    }
}

impl std::fmt::Debug for AesCtr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesCtr(..)")
    }
}

impl std::fmt::Debug for HmacSha1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSha1(..)")
    }
}

impl std::fmt::Debug for AesGcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesGcm(..)")
    }
}

/// The bare backend primitives, exported so benchmarks can time them beside the SRTP engine
/// ("raw" rows of `srtp-bench`). Not for protocol use: nothing here builds an IV or checks replay.
pub mod raw {
    pub use super::{AesCtr, AesGcm, HmacSha1};
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::hex;

    /// RFC 3711 Appendix B.2: the AES-CM keystream for a known key and counter.
    mod rfc3711_b2 {
        use super::*;

        #[test]
        fn aes_cm_keystream() {
            let ctr = AesCtr::new(&hex("2B7E151628AED2A6ABF7158809CF4F3C")).unwrap();
            let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
            let mut stream = vec![0u8; 65282 * 16];
            ctr.apply(iv, &mut stream).unwrap();
            assert_eq!(
                stream[..48],
                hex(
                    "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB
                     41E95B3BB0A2E8DD477901E4FCA894C0"
                )[..]
            );
            assert_eq!(
                stream[stream.len() - 48..],
                hex(
                    "EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE
                     6A2CC3787889374FBEB4C81B17BA6C44"
                )[..]
            );
        }
    }

    #[test]
    fn hmac_sha1_matches_rfc2202_case_2() {
        let mac = HmacSha1::new(b"Jefe");
        let tag = mac.tag(b"what do ya want ", b"for nothing?");
        assert_eq!(tag[..], hex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")[..]);
    }

    #[test]
    fn gcm_refuses_a_flipped_bit() {
        let gcm = AesGcm::new(&[7u8; 16]).unwrap();
        let mut buf = *b"sixteen byte msg\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        let tag = gcm.seal([1; 12], b"hdr", &mut buf[..16]).unwrap();
        buf[16..].copy_from_slice(&tag);
        let sealed = buf;
        buf[3] ^= 1;
        assert_eq!(
            gcm.open([1; 12], b"hdr", &mut buf),
            Err(SrtpError::AuthFailed)
        );
        let mut buf = sealed;
        assert_eq!(
            gcm.open([1; 12], b"other", &mut buf),
            Err(SrtpError::AuthFailed)
        );
        let mut buf = sealed;
        assert_eq!(gcm.open([1; 12], b"hdr", &mut buf), Ok(16));
        assert_eq!(&buf[..16], b"sixteen byte msg");
    }
}
