//! The relay's DTLS identity (an ECDSA P-256 certificate and its key) and certificate
//! fingerprints as SDP carries them (`a=fingerprint:sha-256 AB:CD:…`, RFC 8122).
//!
//! The private key never leaves this module except through `to_pem`, and never reaches `Debug`.

use std::fmt;

use aws_lc_rs::digest;
use dtls::crypto::{Certificate, CryptoPrivateKey};
use rustls_pki_types::CertificateDer;

use super::DtlsError;

/// The relay's certificate and private key: ECDSA P-256, self-signed.
#[derive(Clone)]
pub struct DtlsIdentity {
    pub(super) certificate: Certificate,
    fingerprint_sha256: [u8; 32],
}

impl DtlsIdentity {
    /// A fresh ECDSA P-256 key and a self-signed certificate for it (subject "tern").
    pub fn generate() -> Result<Self, DtlsError> {
        super::install_crypto_provider();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| DtlsError::Identity(format!("key generation: {e}")))?;
        let mut params = rcgen::CertificateParams::new(vec!["tern".to_owned()])
            .map_err(|e| DtlsError::Identity(format!("certificate parameters: {e}")))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "tern");
        let cert = params
            .self_signed(&key)
            .map_err(|e| DtlsError::Identity(format!("self-signing: {e}")))?;
        Self::from_parts(cert.der().to_vec(), &key)
    }

    /// Load a certificate (the first `CERTIFICATE` block of `cert_pem`) and its PKCS#8 private key
    /// (`key_pem`). The key must be ECDSA P-256 and must be the certificate's key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, DtlsError> {
        super::install_crypto_provider();
        let pair = crate::pki::certified_key(cert_pem, key_pem)
            .map_err(|e| DtlsError::Identity(e.to_string()))?;
        Self::from_parts(pair.der, &pair.key)
    }

    /// The identity a config names (`media.dtls_certificate_file` and `dtls_key_file`), or
    /// `None` when it names none (generate one). The error names the field.
    pub fn from_config(
        config: &crate::config::Config,
    ) -> Result<Option<Self>, (&'static str, String)> {
        let Some((cert_pem, key_pem)) = config.dtls_identity_pem()? else {
            return Ok(None);
        };
        Self::from_pem(&cert_pem, &key_pem)
            .map(Some)
            .map_err(|e| ("media.dtls_key_file", e.to_string()))
    }

    fn from_parts(der: Vec<u8>, key: &rcgen::KeyPair) -> Result<Self, DtlsError> {
        let private_key = CryptoPrivateKey::from_key_pair(key)
            .map_err(|e| DtlsError::Identity(format!("private key: {e}")))?;
        let mut fingerprint_sha256 = [0u8; 32];
        fingerprint_sha256.copy_from_slice(digest::digest(&digest::SHA256, &der).as_ref());
        Ok(DtlsIdentity {
            certificate: Certificate {
                certificate: vec![CertificateDer::from(der)],
                private_key,
            },
            fingerprint_sha256,
        })
    }

    /// SHA-256 of the DER certificate: what the SDP answer's `a=fingerprint:sha-256` carries.
    pub fn fingerprint_sha256(&self) -> [u8; 32] {
        self.fingerprint_sha256
    }

    /// The SHA-256 fingerprint as a [`Fingerprint`].
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            algorithm: FingerprintAlgorithm::Sha256,
            value: self.fingerprint_sha256.to_vec(),
        }
    }

    /// The DER certificate.
    pub fn certificate_der(&self) -> &[u8] {
        self.certificate.certificate[0].as_ref()
    }

    /// The certificate and the PKCS#8 private key as PEM, to persist a generated identity.
    pub fn to_pem(&self) -> (String, String) {
        let cert = pem::encode(&pem::Pem::new("CERTIFICATE", self.certificate_der()));
        let key = pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            self.certificate.private_key.serialized_der.clone(),
        ));
        (cert, key)
    }
}

impl fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsIdentity")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// The hash function of an `a=fingerprint` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FingerprintAlgorithm {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl FingerprintAlgorithm {
    /// The algorithm for an SDP hash name (`sha-256`, case-insensitive), if supported.
    pub fn from_sdp_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "sha-1" => Some(FingerprintAlgorithm::Sha1),
            "sha-256" => Some(FingerprintAlgorithm::Sha256),
            "sha-384" => Some(FingerprintAlgorithm::Sha384),
            "sha-512" => Some(FingerprintAlgorithm::Sha512),
            _ => None,
        }
    }

    /// The SDP hash name.
    pub fn sdp_name(self) -> &'static str {
        match self {
            FingerprintAlgorithm::Sha1 => "sha-1",
            FingerprintAlgorithm::Sha256 => "sha-256",
            FingerprintAlgorithm::Sha384 => "sha-384",
            FingerprintAlgorithm::Sha512 => "sha-512",
        }
    }

    /// The digest of `der` under this algorithm.
    pub fn digest(self, der: &[u8]) -> Vec<u8> {
        let alg = match self {
            FingerprintAlgorithm::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            FingerprintAlgorithm::Sha256 => &digest::SHA256,
            FingerprintAlgorithm::Sha384 => &digest::SHA384,
            FingerprintAlgorithm::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, der).as_ref().to_vec()
    }
}

/// A certificate fingerprint: what an offer's `a=fingerprint` says the peer's certificate is.
#[derive(Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub algorithm: FingerprintAlgorithm,
    pub value: Vec<u8>,
}

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of_certificate(algorithm: FingerprintAlgorithm, der: &[u8]) -> Self {
        Fingerprint {
            algorithm,
            value: algorithm.digest(der),
        }
    }

    /// Parse the two halves of `a=fingerprint:<hash> <hex pairs separated by ':'>`.
    pub fn parse(algorithm: &str, value: &str) -> Option<Self> {
        let algorithm = FingerprintAlgorithm::from_sdp_name(algorithm)?;
        let value = value
            .split(':')
            .map(|pair| {
                if pair.len() == 2 {
                    u8::from_str_radix(pair, 16).ok()
                } else {
                    None
                }
            })
            .collect::<Option<Vec<u8>>>()?;
        if value.len() != algorithm.digest(&[]).len() {
            return None;
        }
        Some(Fingerprint { algorithm, value })
    }

    /// True if `der` hashes to this fingerprint (compared in constant time).
    pub fn matches(&self, der: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        let actual = self.algorithm.digest(der);
        actual.len() == self.value.len() && bool::from(actual.ct_eq(&self.value))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.algorithm.sdp_name())?;
        for (i, b) in self.value.iter().enumerate() {
            let sep = if i == 0 { " " } else { ":" };
            write!(f, "{sep}{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identity_fingerprint_is_sha256_of_der() {
        let id = DtlsIdentity::generate().unwrap();
        let fp = id.fingerprint();
        assert_eq!(
            fp.value,
            FingerprintAlgorithm::Sha256.digest(id.certificate_der())
        );
        assert!(fp.matches(id.certificate_der()));
        assert_eq!(
            id.fingerprint_sha256().to_vec(),
            Fingerprint::of_certificate(FingerprintAlgorithm::Sha256, id.certificate_der()).value
        );
    }

    #[test]
    fn pem_round_trip_keeps_the_fingerprint() {
        let id = DtlsIdentity::generate().unwrap();
        let (cert, key) = id.to_pem();
        let back = DtlsIdentity::from_pem(&cert, &key).unwrap();
        assert_eq!(back.fingerprint_sha256(), id.fingerprint_sha256());
    }

    #[test]
    fn pem_with_someone_elses_key_is_refused() {
        let a = DtlsIdentity::generate().unwrap();
        let b = DtlsIdentity::generate().unwrap();
        let (cert, _) = a.to_pem();
        let (_, key) = b.to_pem();
        assert!(matches!(
            DtlsIdentity::from_pem(&cert, &key),
            Err(DtlsError::Identity(_))
        ));
        assert!(DtlsIdentity::from_pem("garbage", "garbage").is_err());
    }

    #[test]
    fn fingerprint_parse_and_display_round_trip() {
        let id = DtlsIdentity::generate().unwrap();
        for alg in [
            FingerprintAlgorithm::Sha1,
            FingerprintAlgorithm::Sha256,
            FingerprintAlgorithm::Sha384,
            FingerprintAlgorithm::Sha512,
        ] {
            let fp = Fingerprint::of_certificate(alg, id.certificate_der());
            let text = fp.to_string();
            let (name, value) = text.split_once(' ').unwrap();
            assert_eq!(Fingerprint::parse(name, value), Some(fp.clone()));
            assert_eq!(
                Fingerprint::parse(&name.to_uppercase(), &value.to_lowercase()),
                Some(fp)
            );
        }
        assert_eq!(Fingerprint::parse("md5", "AB"), None);
        assert_eq!(Fingerprint::parse("sha-256", "AB:CD"), None);
        assert_eq!(Fingerprint::parse("sha-1", "zz"), None);
    }
}
