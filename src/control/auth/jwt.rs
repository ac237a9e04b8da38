//! JSON Web Tokens (RFC 7519) in compact JWS form, with exactly one algorithm pinned per relay:
//! HS256 (shared secret), EdDSA (Ed25519) or ES256 (ECDSA P-256, SHA-256, fixed r‖s signature).
//!
//! The header is parsed only to compare its `alg` with the pinned one; the claims are parsed only
//! after the signature verifies. Crypto is aws-lc-rs (already the SRTP backend): HMAC tags are
//! compared in constant time. Base64url is strict (no padding, canonical trailing bits), so one
//! token has one encoding.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING, ED25519,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::keys::{self, alg_name, pem_blocks, AuthSetupError};
use super::{AuthError, Grant};
use crate::config::{AuthConfig, JwtAlgorithm};

/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(30);

/// Longest token accepted, in bytes. Tern's own are about 350; anything near this is an attack.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The claims of a token, as [`TokenMinter::sign`] writes them. Times are seconds since the Unix
/// epoch (NumericDate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// The room the token is for.
    pub room: String,
    /// Stream names it may use, or `["*"]`.
    pub streams: Vec<String>,
    /// May publish.
    pub publish: bool,
    /// May subscribe.
    pub subscribe: bool,
    /// Who holds it.
    pub identity: String,
    /// Expiry.
    pub exp: u64,
    /// Not before.
    pub nbf: u64,
    /// Issued at.
    pub iat: u64,
    /// Random token id (for revoking one token).
    pub jti: String,
}

impl Claims {
    /// Claims valid from `now` for `ttl`, with a fresh random `jti`. `stream: None` grants every
    /// stream in the room.
    pub fn new(
        room: &str,
        stream: Option<&str>,
        publish: bool,
        subscribe: bool,
        identity: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Claims {
        let now = unix_secs(now);
        Claims {
            room: room.to_string(),
            streams: vec![stream.unwrap_or("*").to_string()],
            publish,
            subscribe,
            identity: identity.to_string(),
            exp: now.saturating_add(ttl.as_secs()),
            nbf: now,
            iat: now,
            jti: random_id(),
        }
    }
}

/// What a token's payload may hold; every field optional so a missing one is named.
#[derive(Deserialize)]
struct RawClaims {
    room: Option<String>,
    streams: Option<Vec<String>>,
    publish: Option<bool>,
    subscribe: Option<bool>,
    identity: Option<String>,
    exp: Option<f64>,
    nbf: Option<f64>,
    iat: Option<f64>,
    jti: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    crit: Option<serde::de::IgnoredAny>,
}

#[derive(Serialize)]
struct HeaderOut {
    alg: &'static str,
    typ: &'static str,
}

enum VerifyKeys {
    Hs256(Box<hmac::Key>),
    EdDsa(Vec<ParsedPublicKey>),
    Es256(Vec<ParsedPublicKey>),
}

/// Verifies tokens signed with the one algorithm it was built for.
pub struct TokenVerifier {
    keys: VerifyKeys,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (alg, count) = match &self.keys {
            VerifyKeys::Hs256(_) => ("HS256", 1),
            VerifyKeys::EdDsa(k) => ("EdDSA", k.len()),
            VerifyKeys::Es256(k) => ("ES256", k.len()),
        };
        f.debug_struct("TokenVerifier")
            .field("algorithm", &alg)
            .field("keys", &count)
            .finish()
    }
}

impl TokenVerifier {
    /// HS256 with a shared secret (must not be empty).
    pub fn hs256(secret: Vec<u8>) -> Result<Self, AuthSetupError> {
        if secret.is_empty() {
            return Err(AuthSetupError::EmptySecret("the caller".into()));
        }
        Ok(Self {
            keys: VerifyKeys::Hs256(Box::new(hmac::Key::new(hmac::HMAC_SHA256, &secret))),
        })
    }

    /// EdDSA (Ed25519) with the `PUBLIC KEY` blocks in these PEM texts; a token verifies if any
    /// key accepts it.
    pub fn eddsa<S: AsRef<str>>(public_keys_pem: &[S]) -> Result<Self, AuthSetupError> {
        let keys = parse_public_keys(public_keys_pem, JwtAlgorithm::EdDsa)?;
        Ok(Self {
            keys: VerifyKeys::EdDsa(keys),
        })
    }

    /// ES256 (ECDSA P-256) with the `PUBLIC KEY` blocks in these PEM texts.
    pub fn es256<S: AsRef<str>>(public_keys_pem: &[S]) -> Result<Self, AuthSetupError> {
        let keys = parse_public_keys(public_keys_pem, JwtAlgorithm::Es256)?;
        Ok(Self {
            keys: VerifyKeys::Es256(keys),
        })
    }

    /// The verifier `[auth]` describes: HS256 with `TERN_JWT_SECRET` (else `jwt_secret_file`), or
    /// EdDSA/ES256 with every key in `public_key_files`.
    pub fn from_config(auth: &AuthConfig) -> Result<Self, AuthSetupError> {
        match auth.algorithm {
            JwtAlgorithm::Hs256 => Self::hs256(keys::hs256_secret(auth)?),
            JwtAlgorithm::EdDsa | JwtAlgorithm::Es256 => {
                let mut texts = Vec::new();
                for path in &auth.public_key_files {
                    let bytes = keys::read(path)?;
                    let text = String::from_utf8(bytes).map_err(|_| AuthSetupError::BadKey {
                        source_name: path.display().to_string(),
                        reason: "not a PEM text file",
                    })?;
                    texts.push(text);
                }
                if auth.algorithm == JwtAlgorithm::EdDsa {
                    Self::eddsa(&texts)
                } else {
                    Self::es256(&texts)
                }
            }
        }
    }

    /// The pinned algorithm.
    pub fn algorithm(&self) -> JwtAlgorithm {
        match self.keys {
            VerifyKeys::Hs256(_) => JwtAlgorithm::Hs256,
            VerifyKeys::EdDsa(_) => JwtAlgorithm::EdDsa,
            VerifyKeys::Es256(_) => JwtAlgorithm::Es256,
        }
    }

    /// Checks `token` at time `now`: shape, pinned `alg`, signature, then the claims (`room`,
    /// `streams`, `publish`, `subscribe`, `identity` and `exp` required; `nbf`, `iat`, `jti`
    /// optional), `exp` and `nbf` with [`LEEWAY`]. Never panics, whatever `token` holds.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Grant, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Malformed("empty token"));
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed("token too long"));
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed("not three dot-separated segments"));
        };
        let header: Header = serde_json::from_slice(&b64(header_b64)?)
            .map_err(|_| AuthError::Malformed("header is not a JSON object with `alg`"))?;
        if header.alg != alg_name(self.algorithm()) {
            return Err(AuthError::WrongAlgorithm);
        }
        if header.crit.is_some() {
            return Err(AuthError::Malformed(
                "critical header extensions are not supported",
            ));
        }
        // Both remaining segments must be base64url before any crypto runs; the claims are
        // parsed only once the signature verifies.
        let payload = b64(payload_b64)?;
        let signature = b64(sig_b64)?;
        let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
        let valid = match &self.keys {
            VerifyKeys::Hs256(key) => hmac::verify(key, signed, &signature).is_ok(),
            VerifyKeys::EdDsa(keys) | VerifyKeys::Es256(keys) => keys
                .iter()
                .any(|k| k.verify_sig(signed, &signature).is_ok()),
        };
        if !valid {
            return Err(AuthError::BadSignature);
        }
        let raw: RawClaims = serde_json::from_slice(&payload)
            .map_err(|_| AuthError::Malformed("claims are not a JSON object of the right types"))?;
        grant(raw, now)
    }
}

fn grant(raw: RawClaims, now: SystemTime) -> Result<Grant, AuthError> {
    let expires_at = time(raw.exp.ok_or(AuthError::MissingClaim("exp"))?)?;
    let not_before = raw.nbf.map(time).transpose()?;
    let issued_at = raw.iat.map(time).transpose()?;
    let grant = Grant {
        room: raw.room.ok_or(AuthError::MissingClaim("room"))?,
        streams: raw.streams.ok_or(AuthError::MissingClaim("streams"))?,
        publish: raw.publish.ok_or(AuthError::MissingClaim("publish"))?,
        subscribe: raw.subscribe.ok_or(AuthError::MissingClaim("subscribe"))?,
        identity: raw.identity.ok_or(AuthError::MissingClaim("identity"))?,
        expires_at,
        issued_at,
        jti: raw.jti,
    };
    // `checked_add` fails only for times centuries away; such a token never expires in practice.
    if expires_at.checked_add(LEEWAY).is_some_and(|e| now > e) {
        return Err(AuthError::Expired);
    }
    if let Some(nbf) = not_before {
        if now.checked_add(LEEWAY).is_none_or(|n| n < nbf) {
            return Err(AuthError::NotYetValid);
        }
    }
    Ok(grant)
}

fn b64(segment: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| AuthError::Malformed("segment is not base64url"))
}

fn time(secs: f64) -> Result<SystemTime, AuthError> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .and_then(|d| UNIX_EPOCH.checked_add(d))
        .ok_or(AuthError::Malformed("time claim out of range"))
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// 128 random bits, base64url: a `jti` or a default identity.
pub(super) fn random_id() -> String {
    let mut bytes = [0u8; 16];
    // The system RNG failing is not recoverable for a relay that makes keys.
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("system random number generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn parse_public_keys<S: AsRef<str>>(
    pems: &[S],
    algorithm: JwtAlgorithm,
) -> Result<Vec<ParsedPublicKey>, AuthSetupError> {
    let alg: &'static dyn aws_lc_rs::signature::VerificationAlgorithm = match algorithm {
        JwtAlgorithm::EdDsa => &ED25519,
        _ => &ECDSA_P256_SHA256_FIXED,
    };
    let source_name = format!("{} public key", alg_name(algorithm));
    let bad = |reason| AuthSetupError::BadKey {
        source_name: source_name.clone(),
        reason,
    };
    let mut keys = Vec::new();
    for pem in pems {
        for block in pem_blocks(pem.as_ref()).map_err(bad)? {
            if block.label != "PUBLIC KEY" {
                return Err(bad("expected only `PUBLIC KEY` PEM blocks"));
            }
            let key = ParsedPublicKey::new(alg, &block.der)
                .map_err(|_| bad("not a public key for this algorithm"))?;
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err(AuthSetupError::NoPublicKeys);
    }
    Ok(keys)
}

enum SignKey {
    Hs256(Box<hmac::Key>),
    EdDsa(Ed25519KeyPair),
    Es256(EcdsaKeyPair),
}

/// Signs tokens: HS256 with the shared secret, or EdDSA/ES256 with a private key.
pub struct TokenMinter {
    key: SignKey,
}

impl fmt::Debug for TokenMinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenMinter")
            .field("algorithm", &self.alg())
            .finish_non_exhaustive()
    }
}

impl TokenMinter {
    /// HS256 with a shared secret (must not be empty).
    pub fn hs256(secret: Vec<u8>) -> Result<Self, AuthSetupError> {
        if secret.is_empty() {
            return Err(AuthSetupError::EmptySecret("the caller".into()));
        }
        Ok(Self {
            key: SignKey::Hs256(Box::new(hmac::Key::new(hmac::HMAC_SHA256, &secret))),
        })
    }

    /// EdDSA with an Ed25519 `PRIVATE KEY` (PKCS#8, as `openssl genpkey -algorithm ed25519`).
    pub fn eddsa(private_key_pem: &str) -> Result<Self, AuthSetupError> {
        let der = private_der(private_key_pem, &["PRIVATE KEY"])?;
        let pair =
            Ed25519KeyPair::from_pkcs8(&der).map_err(|_| bad_private("not an Ed25519 key"))?;
        Ok(Self {
            key: SignKey::EdDsa(pair),
        })
    }

    /// ES256 with a P-256 `PRIVATE KEY` (PKCS#8) or `EC PRIVATE KEY` (SEC1).
    pub fn es256(private_key_pem: &str) -> Result<Self, AuthSetupError> {
        let der = private_der(private_key_pem, &["PRIVATE KEY", "EC PRIVATE KEY"])?;
        let pair = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .map_err(|_| bad_private("not a P-256 key"))?;
        Ok(Self {
            key: SignKey::Es256(pair),
        })
    }

    /// The minter `[auth]` describes: HS256 with `TERN_JWT_SECRET` (else `jwt_secret_file`), or
    /// EdDSA/ES256 with the private key PEM in `jwt_secret_file`.
    pub fn from_config(auth: &AuthConfig) -> Result<Self, AuthSetupError> {
        match auth.algorithm {
            JwtAlgorithm::Hs256 => Self::hs256(keys::hs256_secret(auth)?),
            algorithm => {
                let name = alg_name(algorithm);
                let path = auth
                    .jwt_secret_file
                    .as_deref()
                    .ok_or(AuthSetupError::NoPrivateKey(name))?;
                let text =
                    String::from_utf8(keys::read(path)?).map_err(|_| AuthSetupError::BadKey {
                        source_name: path.display().to_string(),
                        reason: "not a PEM text file",
                    })?;
                if algorithm == JwtAlgorithm::EdDsa {
                    Self::eddsa(&text)
                } else {
                    Self::es256(&text)
                }
            }
        }
    }

    /// The public key as a `PUBLIC KEY` PEM, for `auth.public_key_files`; `None` for HS256.
    pub fn public_key_pem(&self) -> Option<String> {
        let der = match &self.key {
            SignKey::Hs256(_) => return None,
            SignKey::EdDsa(pair) => pair.public_key().as_der().ok()?.as_ref().to_vec(),
            SignKey::Es256(pair) => pair.public_key().as_der().ok()?.as_ref().to_vec(),
        };
        Some(keys::pem_encode("PUBLIC KEY", &der))
    }

    /// A token for `identity` in `room`, valid from now for `ttl`, for one stream (or every stream
    /// with `None`), with a fresh random `jti`.
    pub fn mint(
        &self,
        room: &str,
        stream: Option<&str>,
        publish: bool,
        subscribe: bool,
        identity: &str,
        ttl: Duration,
    ) -> String {
        let claims = Claims::new(
            room,
            stream,
            publish,
            subscribe,
            identity,
            ttl,
            SystemTime::now(),
        );
        self.sign(&claims)
    }

    /// Signs arbitrary claims (tests use it for expired and not-yet-valid tokens).
    pub fn sign(&self, claims: &Claims) -> String {
        let header = HeaderOut {
            alg: self.alg(),
            typ: "JWT",
        };
        // Serialising these plain structs cannot fail.
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let signature = match &self.key {
            SignKey::Hs256(key) => hmac::sign(key, token.as_bytes()).as_ref().to_vec(),
            SignKey::EdDsa(pair) => pair.sign(token.as_bytes()).as_ref().to_vec(),
            SignKey::Es256(pair) => pair
                .sign(&SystemRandom::new(), token.as_bytes())
                .expect("ECDSA signing failed (system random number generator)")
                .as_ref()
                .to_vec(),
        };
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        token
    }

    fn alg(&self) -> &'static str {
        match self.key {
            SignKey::Hs256(_) => "HS256",
            SignKey::EdDsa(_) => "EdDSA",
            SignKey::Es256(_) => "ES256",
        }
    }
}

fn bad_private(reason: &'static str) -> AuthSetupError {
    AuthSetupError::BadKey {
        source_name: "private key".into(),
        reason,
    }
}

fn private_der(pem: &str, labels: &[&str]) -> Result<Vec<u8>, AuthSetupError> {
    let mut blocks = pem_blocks(pem).map_err(bad_private)?;
    if blocks.len() != 1 || !labels.contains(&blocks[0].label.as_str()) {
        return Err(bad_private(
            "expected exactly one unencrypted private key block",
        ));
    }
    Ok(blocks.remove(0).der)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn leeway_applies_to_exp_and_nbf() {
        let minter = TokenMinter::hs256(b"k".to_vec()).unwrap();
        let verifier = TokenVerifier::hs256(b"k".to_vec()).unwrap();
        let claims = Claims::new(
            "r",
            None,
            true,
            false,
            "a",
            Duration::from_secs(60),
            at(1000),
        );
        let token = minter.sign(&claims);
        assert!(verifier.verify(&token, at(1000 + 60 + 30)).is_ok());
        assert_eq!(
            verifier.verify(&token, at(1000 + 60 + 31)),
            Err(AuthError::Expired)
        );
        assert!(verifier.verify(&token, at(1000 - 30)).is_ok());
        assert_eq!(
            verifier.verify(&token, at(1000 - 31)),
            Err(AuthError::NotYetValid)
        );
    }

    #[test]
    fn missing_claims_are_named() {
        let verifier = TokenVerifier::hs256(b"k".to_vec()).unwrap();
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let payload =
            br#"{"room":"r","streams":["*"],"publish":true,"subscribe":false,"exp":9999999999}"#;
        let mut token = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let tag = hmac::sign(&key, token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(tag.as_ref()));
        assert_eq!(
            verifier.verify(&token, at(0)),
            Err(AuthError::MissingClaim("identity"))
        );
    }

    #[test]
    fn debug_never_shows_key_material() {
        let minter = TokenMinter::hs256(b"topsecret".to_vec()).unwrap();
        let verifier = TokenVerifier::hs256(b"topsecret".to_vec()).unwrap();
        assert!(!format!("{minter:?}{verifier:?}").contains("topsecret"));
    }
}
