//! Certificate and private-key PEM as the relay's DTLS identity takes them: parsed and checked
//! (the key is ECDSA P-256 and belongs to the certificate) without building the identity, so
//! that `config` can check the files at load and `control::dtls` builds from the same parts.
//!
//! Owns nothing and keeps nothing: the key bytes live only in the returned `KeyPair`.

/// A certificate (DER) and the private key it certifies.
pub struct CertifiedKey {
    pub der: Vec<u8>,
    pub key: rcgen::KeyPair,
}

impl std::fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CertifiedKey")
            .field("der_len", &self.der.len())
            .finish_non_exhaustive()
    }
}

/// Why a certificate/key pair was refused (a reason to show the operator; never key bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PemError(pub String);

/// The first `CERTIFICATE` block of `cert_pem` and the PKCS#8 key of `key_pem`, which must be
/// ECDSA P-256 and the certificate's own key.
pub fn certified_key(cert_pem: &str, key_pem: &str) -> Result<CertifiedKey, PemError> {
    let blocks =
        pem::parse_many(cert_pem).map_err(|e| PemError(format!("certificate PEM: {e}")))?;
    let der = blocks
        .into_iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .ok_or_else(|| PemError("no CERTIFICATE block in the PEM".to_owned()))?
        .into_contents();
    let key =
        rcgen::KeyPair::from_pem(key_pem).map_err(|e| PemError(format!("private key PEM: {e}")))?;
    if key.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
        return Err(PemError("the private key is not ECDSA P-256".to_owned()));
    }
    let (_, parsed) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| PemError(format!("certificate DER: {e}")))?;
    if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(PemError(
            "the private key does not belong to the certificate".to_owned(),
        ));
    }
    Ok(CertifiedKey { der, key })
}
