//! SRTP key derivation (RFC 3711 §4.3, with the AES-256 PRF of RFC 7714 §11 / RFC 6188).
//!
//! DTLS-SRTP fixes the key derivation rate at 0, so the six session keys are derived once from
//! the master key and salt when a context is made, never per packet.

use super::crypto::AesCtr;
use super::{Profile, SrtpError};

const LABEL_RTP_ENCRYPTION: u8 = 0x00;
const LABEL_RTP_AUTH: u8 = 0x01;
const LABEL_RTP_SALT: u8 = 0x02;
const LABEL_RTCP_ENCRYPTION: u8 = 0x03;
const LABEL_RTCP_AUTH: u8 = 0x04;
const LABEL_RTCP_SALT: u8 = 0x05;

/// HMAC-SHA1 session authentication key length (160 bits).
pub const AUTH_KEY_LEN: usize = 20;

/// The session keys of one direction, for SRTP and SRTCP. Unused parts (the auth keys of a GCM
/// profile) stay zero.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// The profile these keys are for.
    pub profile: Profile,
    /// SRTP encryption key (`profile.key_len()` bytes are used).
    pub rtp_key: [u8; 32],
    /// SRTP authentication key (CM profiles only).
    pub rtp_auth: [u8; AUTH_KEY_LEN],
    /// SRTP salt (`profile.salt_len()` bytes are used).
    pub rtp_salt: [u8; 14],
    /// SRTCP encryption key.
    pub rtcp_key: [u8; 32],
    /// SRTCP authentication key (CM profiles only).
    pub rtcp_auth: [u8; AUTH_KEY_LEN],
    /// SRTCP salt.
    pub rtcp_salt: [u8; 14],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys never reach a log.
        f.debug_struct("SessionKeys")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Derives the session keys from a master key and salt (RFC 3711 §4.3.1, kdr = 0).
    pub fn derive(
        profile: Profile,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<Self, SrtpError> {
        if master_key.len() != profile.key_len() || master_salt.len() != profile.salt_len() {
            return Err(SrtpError::BadKeyLength);
        }
        let prf = AesCtr::new(master_key)?;
        let key_len = profile.key_len();
        let salt_len = profile.salt_len();
        let mut keys = Self::zeroed(profile);
        prf_fill(
            &prf,
            master_salt,
            LABEL_RTP_ENCRYPTION,
            &mut keys.rtp_key[..key_len],
        )?;
        prf_fill(
            &prf,
            master_salt,
            LABEL_RTP_SALT,
            &mut keys.rtp_salt[..salt_len],
        )?;
        prf_fill(
            &prf,
            master_salt,
            LABEL_RTCP_ENCRYPTION,
            &mut keys.rtcp_key[..key_len],
        )?;
        prf_fill(
            &prf,
            master_salt,
            LABEL_RTCP_SALT,
            &mut keys.rtcp_salt[..salt_len],
        )?;
        if !profile.is_aead() {
            prf_fill(&prf, master_salt, LABEL_RTP_AUTH, &mut keys.rtp_auth)?;
            prf_fill(&prf, master_salt, LABEL_RTCP_AUTH, &mut keys.rtcp_auth)?;
        }
        Ok(keys)
    }

    /// Session keys given directly (as RFC 7714's test vectors state them): the same key, salt
    /// and auth key for SRTP and SRTCP.
    pub fn from_session(
        profile: Profile,
        key: &[u8],
        salt: &[u8],
        auth: &[u8],
    ) -> Result<Self, SrtpError> {
        let auth_len = if profile.is_aead() { 0 } else { AUTH_KEY_LEN };
        if key.len() != profile.key_len()
            || salt.len() != profile.salt_len()
            || auth.len() != auth_len
        {
            return Err(SrtpError::BadKeyLength);
        }
        let mut keys = Self::zeroed(profile);
        keys.rtp_key[..key.len()].copy_from_slice(key);
        keys.rtcp_key[..key.len()].copy_from_slice(key);
        keys.rtp_salt[..salt.len()].copy_from_slice(salt);
        keys.rtcp_salt[..salt.len()].copy_from_slice(salt);
        keys.rtp_auth[..auth.len()].copy_from_slice(auth);
        keys.rtcp_auth[..auth.len()].copy_from_slice(auth);
        Ok(keys)
    }

    fn zeroed(profile: Profile) -> Self {
        Self {
            profile,
            rtp_key: [0; 32],
            rtp_auth: [0; AUTH_KEY_LEN],
            rtp_salt: [0; 14],
            rtcp_key: [0; 32],
            rtcp_auth: [0; AUTH_KEY_LEN],
            rtcp_salt: [0; 14],
        }
    }
}

/// The AES-CM PRF: keystream from IV = (master_salt XOR label << 48) << 16.
fn prf_fill(prf: &AesCtr, master_salt: &[u8], label: u8, out: &mut [u8]) -> Result<(), SrtpError> {
    let mut iv = [0u8; 16];
    iv[..master_salt.len()].copy_from_slice(master_salt);
    iv[7] ^= label;
    out.fill(0);
    prf.apply(iv, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::hex;

    /// RFC 3711 Appendix B.3: key derivation test vectors.
    mod rfc3711_b3 {
        use super::*;

        #[test]
        fn derives_cipher_key_salt_and_auth_key() {
            let master_key = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
            let master_salt = hex("0EC675AD498AFEEBB6960B3AABE6");
            let keys = SessionKeys::derive(Profile::Aes128CmHmacSha1_80, &master_key, &master_salt)
                .unwrap();
            assert_eq!(
                keys.rtp_key[..16],
                hex("C61E7A93744F39EE10734AFE3FF7A087")[..]
            );
            assert_eq!(keys.rtp_salt[..], hex("30CBBC08863D8C85D49DB34A9AE1")[..]);
            assert_eq!(
                keys.rtp_auth[..],
                hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")[..]
            );

            // The RFC lists a longer auth key (the PRF output continues): check the tail too.
            let prf = AesCtr::new(&master_key).unwrap();
            let mut long = [0u8; 94];
            prf_fill(&prf, &master_salt, LABEL_RTP_AUTH, &mut long).unwrap();
            assert_eq!(
                long[..],
                hex(
                    "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE
                     E049646C43D9327AD175578EF72270986371C10C9A369AC2F94A8C5FBCDDDC25
                     6D6E919A48B610EF17C2041E474035766B68642C59BBFC2F34DB60DBDFB2"
                )[..]
            );
        }
    }

    #[test]
    fn wrong_lengths_are_refused() {
        assert_eq!(
            SessionKeys::derive(Profile::AeadAes128Gcm, &[0; 16], &[0; 14]).unwrap_err(),
            SrtpError::BadKeyLength
        );
        assert_eq!(
            SessionKeys::derive(Profile::AeadAes256Gcm, &[0; 16], &[0; 12]).unwrap_err(),
            SrtpError::BadKeyLength
        );
        assert!(SessionKeys::derive(Profile::AeadAes256Gcm, &[0; 32], &[0; 12]).is_ok());
    }

    #[test]
    fn labels_give_distinct_keys() {
        let keys = SessionKeys::derive(Profile::Aes128CmHmacSha1_80, &[1; 16], &[2; 14]).unwrap();
        assert_ne!(keys.rtp_key, keys.rtcp_key);
        assert_ne!(keys.rtp_salt, keys.rtcp_salt);
        assert_ne!(keys.rtp_auth, keys.rtcp_auth);
    }
}
