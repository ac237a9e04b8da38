//! The tokens nodes present to each other: a JSON claim set and its HMAC-SHA-256 under the
//! cluster secret, `base64url(claims).base64url(mac)`. A pull token names the edge, the stream
//! and the edge's DTLS certificate fingerprint (so the origin's DTLS server accepts only that
//! certificate); a forward token lets a node pass a client's request on with the client's
//! address. Both live a minute. Tokens are never logged.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// How long a node token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// What a node token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// Pull one stream from its origin.
    Pull,
    /// Pass a client's WHIP/WHEP or session request on to the node it belongs to.
    Forward,
}

/// The claims of a node token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeClaims {
    /// The node that made the token.
    pub node: String,
    pub purpose: Purpose,
    /// Pull: the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Pull: the SHA-256 fingerprint of the edge's DTLS certificate (hex, as SDP writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// Why a node token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeTokenError {
    #[error("malformed node token")]
    Malformed,
    #[error("node token signature does not verify")]
    BadSignature,
    #[error("node token expired")]
    Expired,
    #[error("node token is not for this request")]
    WrongPurpose,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Signs `claims` (with `exp` set to `now` + `TOKEN_LIFETIME`).
pub fn sign(secret: &[u8], mut claims: NodeClaims, now: SystemTime) -> String {
    claims.exp = unix(now + TOKEN_LIFETIME);
    let body = B64.encode(serde_json::to_vec(&claims).unwrap_or_default());
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, body.as_bytes());
    format!("{body}.{}", B64.encode(tag.as_ref()))
}

/// The claims of `token` if its MAC verifies (constant time), it has not expired by `now`, and
/// it is for `purpose`.
pub fn verify(
    secret: &[u8],
    token: &str,
    purpose: Purpose,
    now: SystemTime,
) -> Result<NodeClaims, NodeTokenError> {
    let (body, tag) = token.split_once('.').ok_or(NodeTokenError::Malformed)?;
    let tag = B64.decode(tag).map_err(|_| NodeTokenError::Malformed)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, body.as_bytes(), &tag).map_err(|_| NodeTokenError::BadSignature)?;
    let json = B64.decode(body).map_err(|_| NodeTokenError::Malformed)?;
    let claims: NodeClaims =
        serde_json::from_slice(&json).map_err(|_| NodeTokenError::Malformed)?;
    if claims.exp < unix(now) {
        return Err(NodeTokenError::Expired);
    }
    if claims.purpose != purpose {
        return Err(NodeTokenError::WrongPurpose);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(purpose: Purpose) -> NodeClaims {
        NodeClaims {
            node: "edge-1".into(),
            purpose,
            room: Some("r".into()),
            stream: Some("s".into()),
            fingerprint: Some("AB:CD".into()),
            exp: 0,
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires_and_only_for_its_purpose() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let t = sign(b"0123456789abcdef", claims(Purpose::Pull), now);
        let got = verify(b"0123456789abcdef", &t, Purpose::Pull, now).unwrap();
        assert_eq!(got.fingerprint.as_deref(), Some("AB:CD"));
        assert_eq!(got.exp, 1_000_060);
        assert_eq!(
            verify(b"0123456789abcdef", &t, Purpose::Forward, now),
            Err(NodeTokenError::WrongPurpose)
        );
        let later = now + TOKEN_LIFETIME + Duration::from_secs(1);
        assert_eq!(
            verify(b"0123456789abcdef", &t, Purpose::Pull, later),
            Err(NodeTokenError::Expired)
        );
        assert_eq!(
            verify(b"another secret!!", &t, Purpose::Pull, now),
            Err(NodeTokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_and_malformed_tokens_are_refused() {
        let now = UNIX_EPOCH + Duration::from_secs(5);
        let t = sign(b"0123456789abcdef", claims(Purpose::Forward), now);
        let (body, tag) = t.split_once('.').unwrap();
        let mut c = claims(Purpose::Forward);
        c.node = "intruder".into();
        c.exp = 99;
        let forged = format!("{}.{tag}", B64.encode(serde_json::to_vec(&c).unwrap()));
        assert_eq!(
            verify(b"0123456789abcdef", &forged, Purpose::Forward, now),
            Err(NodeTokenError::BadSignature)
        );
        for bad in ["", "x", "x.y", &format!("{body}.!!"), body] {
            assert!(verify(b"0123456789abcdef", bad, Purpose::Forward, now).is_err());
        }
    }
}
