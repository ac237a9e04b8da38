//! Auth for "no open URLs": every WHIP publish, WHEP subscribe, PATCH and DELETE carries a
//! `Authorization: Bearer <JWT>`, and the relay may also ask the owner's webhook.
//!
//! This module owns the token format (claims, signing, verification with a pinned algorithm and
//! 30 s of clock leeway), the grant check for one request ([`authorize`]), revocation bookkeeping
//! ([`Revocations`]), the round-trip webhook ([`Webhook`]) and `tern token` ([`mint_from_config`]).
//! A request is allowed only when all of these pass, in this order: [`bearer`] finds the token,
//! [`TokenVerifier::verify`] turns it into a [`Grant`], [`Revocations::is_revoked`] is false,
//! [`authorize`] accepts the action, room and stream, and the webhook (if configured) says yes.
//!
//! It must never let the token text out: no error, `Debug` or `Display` output here contains it,
//! and neither secrets, private keys nor the webhook URL (which may carry credentials) are ever
//! formatted. It takes `now` as an argument wherever time matters, so tests control the clock.

mod cli;
mod jwt;
mod keys;
mod revocation;
mod webhook;

use std::fmt;
use std::time::SystemTime;

use serde::Serialize;

pub use cli::{mint_from_config, MintError, TokenArgs};
pub use jwt::{Claims, TokenMinter, TokenVerifier, LEEWAY, MAX_TOKEN_LEN};
pub use keys::{pem_encode, AuthSetupError};
pub use revocation::Revocations;
pub use webhook::{Webhook, WebhookRequest, DEFAULT_CACHE_TTL};

/// What a request wants to do with a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// WHIP: send a stream into the room.
    Publish,
    /// WHEP: receive a stream from the room.
    Subscribe,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
        })
    }
}

/// What a verified token allows. Built only by [`TokenVerifier::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The one room the token is for.
    pub room: String,
    /// Stream names the token may use in that room; `"*"` anywhere in the list means all.
    pub streams: Vec<String>,
    /// May publish (WHIP).
    pub publish: bool,
    /// May subscribe (WHEP).
    pub subscribe: bool,
    /// Who the holder is, as the token issuer named them (revocation and webhook key on it).
    pub identity: String,
    /// The token's `exp`: a session must end by then.
    pub expires_at: SystemTime,
    /// The token's `iat`, if it had one (identity revocation compares against it).
    pub issued_at: Option<SystemTime>,
    /// The token's `jti`, if it had one (for revoking one token).
    pub jti: Option<String>,
}

/// Why a request is refused. `Display` is safe to send to the client and to log: it never holds
/// the token, a secret or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization: Bearer` token on the request.
    #[error("a bearer token is required")]
    Missing,
    /// The token is not a well-formed JWT (segments, base64url, JSON, size or time values).
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The token is well formed but lacks a claim Tern requires.
    #[error("token lacks the required claim `{0}`")]
    MissingClaim(&'static str),
    /// The signature does not verify with any configured key.
    #[error("token signature does not verify")]
    BadSignature,
    /// The token's header names an algorithm other than the one this relay pins.
    #[error("token is not signed with the algorithm this relay accepts")]
    WrongAlgorithm,
    /// `exp` (plus leeway) is in the past.
    #[error("token has expired")]
    Expired,
    /// `nbf` (minus leeway) is in the future.
    #[error("token is not valid yet")]
    NotYetValid,
    /// The token's identity or `jti` has been revoked.
    #[error("token has been revoked")]
    Revoked,
    /// A valid token for another room.
    #[error("token is for another room")]
    WrongRoom,
    /// A valid token that does not grant this action.
    #[error("token does not grant {0}")]
    NotGranted(Action),
    /// A valid token whose stream list does not include this stream.
    #[error("token does not grant this stream")]
    StreamNotGranted,
    /// The webhook answered with a non-2xx status.
    #[error("the auth webhook denied the request (HTTP {status})")]
    WebhookDenied {
        /// The webhook's HTTP status.
        status: u16,
    },
    /// The webhook could not be reached, failed, or did not answer within its timeout.
    #[error("the auth webhook did not allow the request in time")]
    WebhookUnavailable,
}

impl AuthError {
    /// The HTTP status for this refusal: 401 when the token is missing, invalid, expired, signed
    /// the wrong way or revoked; 403 when a valid token lacks the grant or the webhook says no (or
    /// does not answer).
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Missing
            | AuthError::Malformed(_)
            | AuthError::MissingClaim(_)
            | AuthError::BadSignature
            | AuthError::WrongAlgorithm
            | AuthError::Expired
            | AuthError::NotYetValid
            | AuthError::Revoked => 401,
            AuthError::WrongRoom
            | AuthError::NotGranted(_)
            | AuthError::StreamNotGranted
            | AuthError::WebhookDenied { .. }
            | AuthError::WebhookUnavailable => 403,
        }
    }
}

/// Checks that `grant` allows `action` on `stream` in `room`. Expiry and signature were checked by
/// [`TokenVerifier::verify`]; revocation is [`Revocations::is_revoked`].
pub fn authorize(grant: &Grant, action: Action, room: &str, stream: &str) -> Result<(), AuthError> {
    if grant.room != room {
        return Err(AuthError::WrongRoom);
    }
    let allowed = match action {
        Action::Publish => grant.publish,
        Action::Subscribe => grant.subscribe,
    };
    if !allowed {
        return Err(AuthError::NotGranted(action));
    }
    if grant.streams.iter().any(|s| s == "*" || s == stream) {
        Ok(())
    } else {
        Err(AuthError::StreamNotGranted)
    }
}

/// The token in an `Authorization` header value of the form `Bearer <token>` (scheme
/// case-insensitive, RFC 9110 §11.1). `None` for any other scheme, an empty token, or a value with
/// more than one word after the scheme.
pub fn bearer(header_value: &str) -> Option<&str> {
    let value = header_value.trim_matches([' ', '\t']);
    let (scheme, rest) = value.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_start_matches([' ', '\t']);
    if token.is_empty() || token.contains(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    Some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn grant(streams: &[&str], publish: bool, subscribe: bool) -> Grant {
        Grant {
            room: "r".into(),
            streams: streams.iter().map(|s| s.to_string()).collect(),
            publish,
            subscribe,
            identity: "alice".into(),
            expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(100),
            issued_at: None,
            jti: None,
        }
    }

    #[test]
    fn bearer_takes_the_token_and_nothing_else() {
        assert_eq!(bearer("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer("bearer  abc"), Some("abc"));
        assert_eq!(bearer("  BEARER\tabc  "), Some("abc"));
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer a b"), None);
        assert_eq!(bearer("Bearerabc"), None);
        assert_eq!(bearer(""), None);
    }

    #[test]
    fn authorize_checks_room_action_and_stream() {
        let g = grant(&["cam"], true, false);
        assert_eq!(authorize(&g, Action::Publish, "r", "cam"), Ok(()));
        assert_eq!(
            authorize(&g, Action::Publish, "other", "cam"),
            Err(AuthError::WrongRoom)
        );
        assert_eq!(
            authorize(&g, Action::Subscribe, "r", "cam"),
            Err(AuthError::NotGranted(Action::Subscribe))
        );
        assert_eq!(
            authorize(&g, Action::Publish, "r", "screen"),
            Err(AuthError::StreamNotGranted)
        );
        let any = grant(&["*"], true, true);
        assert_eq!(authorize(&any, Action::Subscribe, "r", "screen"), Ok(()));
    }

    /// One of each variant; the `match` makes a new variant a compile error until it is added.
    fn every_error() -> Vec<AuthError> {
        let all = vec![
            AuthError::Missing,
            AuthError::Malformed("segment is not base64url"),
            AuthError::MissingClaim("room"),
            AuthError::BadSignature,
            AuthError::WrongAlgorithm,
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::Revoked,
            AuthError::WrongRoom,
            AuthError::NotGranted(Action::Publish),
            AuthError::StreamNotGranted,
            AuthError::WebhookDenied { status: 403 },
            AuthError::WebhookUnavailable,
        ];
        for e in &all {
            match e {
                AuthError::Missing
                | AuthError::Malformed(_)
                | AuthError::MissingClaim(_)
                | AuthError::BadSignature
                | AuthError::WrongAlgorithm
                | AuthError::Expired
                | AuthError::NotYetValid
                | AuthError::Revoked
                | AuthError::WrongRoom
                | AuthError::NotGranted(_)
                | AuthError::StreamNotGranted
                | AuthError::WebhookDenied { .. }
                | AuthError::WebhookUnavailable => {}
            }
        }
        all
    }

    #[test]
    fn no_error_formats_the_token() {
        let minter = TokenMinter::hs256(b"k".to_vec()).unwrap();
        let token = minter.mint("r", None, true, true, "a", Duration::from_secs(60));
        let signature = token.rsplit('.').next().unwrap();
        for e in every_error() {
            for text in [e.to_string(), format!("{e:?}"), format!("{e:#?}")] {
                assert!(
                    !text.contains(&token) && !text.contains(signature),
                    "{text}"
                );
            }
            assert!(matches!(e.status(), 401 | 403));
        }
    }

    #[test]
    fn statuses_split_invalid_from_not_granted() {
        assert_eq!(AuthError::Missing.status(), 401);
        assert_eq!(AuthError::Expired.status(), 401);
        assert_eq!(AuthError::WrongAlgorithm.status(), 401);
        assert_eq!(AuthError::Revoked.status(), 401);
        assert_eq!(AuthError::WrongRoom.status(), 403);
        assert_eq!(AuthError::NotGranted(Action::Publish).status(), 403);
        assert_eq!(AuthError::WebhookDenied { status: 500 }.status(), 403);
        assert_eq!(AuthError::WebhookUnavailable.status(), 403);
    }
}
