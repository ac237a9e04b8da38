//! `tern token`: mint a token from the same key material `tern serve` verifies with.

use std::time::Duration;

use super::jwt::{random_id, TokenMinter};
use super::keys::AuthSetupError;
use crate::config::Config;

/// The arguments of `tern token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenArgs {
    /// `--room R` (required).
    pub room: String,
    /// `--stream S`; `None` grants every stream in the room.
    pub stream: Option<String>,
    /// `--publish`.
    pub publish: bool,
    /// `--subscribe`.
    pub subscribe: bool,
    /// `--identity I`; `None` makes a random `anon-…` identity.
    pub identity: Option<String>,
    /// `--ttl` (e.g. `1h`).
    pub ttl: Duration,
}

/// Why `tern token` cannot mint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MintError {
    /// No usable signing key.
    #[error(transparent)]
    Key(#[from] AuthSetupError),
    /// An argument is unusable; the text names it.
    #[error("{0}")]
    Args(&'static str),
}

/// Mints the token `tern token` prints.
///
/// CLI contract (`src/main.rs` wires it): `tern token --room R [--stream S] [--publish]
/// [--subscribe] [--identity I] [--ttl 1h] [--config F]`
/// - Without `--config`, pass `Config::default()` (algorithm HS256, no files); with it, the
///   loaded file. The signing key is chosen by `auth.algorithm`:
///   - HS256: the secret is `TERN_JWT_SECRET` if it is set and not blank, else the contents of
///     `auth.jwt_secret_file`; surrounding whitespace is trimmed from either. This is the same
///     lookup `tern serve` uses ([`super::TokenVerifier::from_config`]), so
///     `TERN_JWT_SECRET=s tern serve & TERN_JWT_SECRET=s tern token --room r --publish` works.
///   - EdDSA / ES256: the private key PEM in `auth.jwt_secret_file` (PKCS#8 `PRIVATE KEY`, or
///     SEC1 `EC PRIVATE KEY` for ES256); the relay verifies with `auth.public_key_files`.
/// - `--stream` limits the token to one stream (`streams: [S]`); without it, `streams: ["*"]`.
/// - At least one of `--publish` and `--subscribe` is required; `--room` must not be empty; the
///   TTL must be at least one second. `--identity` defaults to a random `anon-<22 chars>`.
/// - Each call makes a fresh random `jti`; `iat` and `nbf` are now, `exp` is now + TTL.
/// - `main` prints only the returned token and a newline on stdout, and on error prints the
///   error's `Display` on stderr and exits with status 1. Errors never contain the secret.
pub fn mint_from_config(cfg: &Config, args: &TokenArgs) -> Result<String, MintError> {
    if args.room.is_empty() {
        return Err(MintError::Args("--room must not be empty"));
    }
    if !args.publish && !args.subscribe {
        return Err(MintError::Args(
            "give --publish, --subscribe or both: a token that grants nothing is useless",
        ));
    }
    if args.ttl < Duration::from_secs(1) {
        return Err(MintError::Args("--ttl must be at least 1s"));
    }
    let minter = TokenMinter::from_config(&cfg.auth)?;
    let identity = match &args.identity {
        Some(identity) => identity.clone(),
        None => format!("anon-{}", random_id()),
    };
    Ok(minter.mint(
        &args.room,
        args.stream.as_deref(),
        args.publish,
        args.subscribe,
        &identity,
        args.ttl,
    ))
}
