//! Key material for tokens: the HS256 secret (from `TERN_JWT_SECRET` or `auth.jwt_secret_file`),
//! PEM public and private keys, and the error that says why auth cannot start.
//!
//! Nothing here formats key bytes: errors name the file or the source, never the contents.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::config::{AuthConfig, JwtAlgorithm, JWT_SECRET_ENV};

/// Why the token verifier, minter or webhook cannot be built from what was configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthSetupError {
    /// HS256 without `TERN_JWT_SECRET` or `auth.jwt_secret_file`.
    #[error("algorithm HS256 needs a secret: set auth.jwt_secret_file or {JWT_SECRET_ENV}")]
    NoSecret,
    /// The HS256 secret is empty (or only whitespace).
    #[error("the HS256 secret from {0} is empty")]
    EmptySecret(String),
    /// EdDSA or ES256 verification without public keys.
    #[error("algorithms EdDSA and ES256 need at least one key in auth.public_key_files")]
    NoPublicKeys,
    /// EdDSA or ES256 minting without a private key.
    #[error("minting {0} tokens needs the private key PEM in auth.jwt_secret_file")]
    NoPrivateKey(&'static str),
    /// A key or secret file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// A key file or PEM text does not hold a usable key for the algorithm.
    #[error("{source_name}: {reason}")]
    BadKey {
        /// The file, or a description of where the key came from.
        source_name: String,
        /// What is wrong (never the key itself).
        reason: &'static str,
    },
    /// The webhook URL or its HTTP client is unusable (the URL itself is not shown).
    #[error("auth.webhook_url: {0}")]
    Webhook(&'static str),
}

/// The algorithm's name as it appears in a JWT header.
pub(super) fn alg_name(algorithm: JwtAlgorithm) -> &'static str {
    match algorithm {
        JwtAlgorithm::Hs256 => "HS256",
        JwtAlgorithm::EdDsa => "EdDSA",
        JwtAlgorithm::Es256 => "ES256",
    }
}

/// The HS256 secret: `TERN_JWT_SECRET` if set and not empty, else the contents of
/// `auth.jwt_secret_file`. Leading and trailing ASCII whitespace is removed from either (so
/// `openssl rand -hex 32 > file` works), and what remains must not be empty.
pub(super) fn hs256_secret(auth: &AuthConfig) -> Result<Vec<u8>, AuthSetupError> {
    if let Some(value) = std::env::var_os(JWT_SECRET_ENV) {
        let secret = trim(value.as_encoded_bytes());
        if !secret.is_empty() {
            return Ok(secret.to_vec());
        }
    }
    let path = auth
        .jwt_secret_file
        .as_deref()
        .ok_or(AuthSetupError::NoSecret)?;
    let bytes = read(path)?;
    let secret = trim(&bytes);
    if secret.is_empty() {
        return Err(AuthSetupError::EmptySecret(path.display().to_string()));
    }
    Ok(secret.to_vec())
}

pub(super) fn read(path: &Path) -> Result<Vec<u8>, AuthSetupError> {
    std::fs::read(path).map_err(|e| AuthSetupError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// One `-----BEGIN <label>-----` … `-----END <label>-----` block, decoded.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct PemBlock {
    pub label: String,
    pub der: Vec<u8>,
}

/// Every PEM block in `text`, in order. Text outside blocks is ignored (OpenSSL writes comments
/// there); a block without its END line or with bad base64 is an error.
pub(super) fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, &'static str> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for line in lines.by_ref() {
            if line == end {
                closed = true;
                break;
            }
            if line.contains(':') {
                return Err("encrypted or annotated PEM blocks are not supported");
            }
            body.push_str(line);
        }
        if !closed {
            return Err("PEM block has no END line");
        }
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|_| "PEM block is not valid base64")?;
        blocks.push(PemBlock {
            label: label.to_string(),
            der,
        });
    }
    if blocks.is_empty() {
        return Err("no PEM block found");
    }
    Ok(blocks)
}

/// PEM-encodes `der` under `label` (64-column lines), as OpenSSL writes it.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_and_several_blocks() {
        let der: Vec<u8> = (0..=255).collect();
        let text = format!(
            "comment\n{}{}",
            pem_encode("PUBLIC KEY", &der),
            pem_encode("PUBLIC KEY", &der[..3])
        );
        let blocks = pem_blocks(&text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "PUBLIC KEY");
        assert_eq!(blocks[0].der, der);
        assert_eq!(blocks[1].der, &der[..3]);
    }

    #[test]
    fn pem_errors() {
        assert!(pem_blocks("").is_err());
        assert!(pem_blocks("-----BEGIN X-----\nAAAA\n").is_err());
        assert!(pem_blocks("-----BEGIN X-----\n!!!!\n-----END X-----\n").is_err());
        assert!(pem_blocks("-----BEGIN X-----\nProc-Type: 4\n-----END X-----\n").is_err());
    }

    #[test]
    fn trim_strips_whitespace_both_ends() {
        assert_eq!(trim(b"  s3cret\n"), b"s3cret");
        assert_eq!(trim(b" \n\t"), b"");
        assert_eq!(trim(b""), b"");
    }
}
