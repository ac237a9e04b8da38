//! ICE-lite (RFC 8445 §2.5): the relay side of connectivity checks and consent freshness.
//!
//! Sans-IO: `answer_binding` takes a received datagram, the session's credentials and the
//! source address, and writes the Binding success response into a caller buffer. Anything that
//! does not prove knowledge of the session's ice-pwd (wrong USERNAME, missing or bad
//! MESSAGE-INTEGRITY, bad FINGERPRINT) gets an error reason and must get no reply at all: the
//! relay never reflects traffic to an address that did not authenticate. `Consent` tracks RFC
//! 7675 consent freshness from the time the caller passes in; nothing here reads a clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::wire::stun::{StunClass, StunMessage, StunWriter, METHOD_BINDING};

/// Default consent timeout: a session with no valid Binding request for this long is closed.
pub const DEFAULT_CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The ICE credentials of one session. The relay is ICE-lite and always controlled.
#[derive(Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// Our ufrag (the first half of USERNAME in requests we receive).
    pub local_ufrag: String,
    /// Our password: the MESSAGE-INTEGRITY key of requests we receive and responses we send.
    pub local_pwd: String,
    /// The peer's ufrag (the second half of USERNAME).
    pub remote_ufrag: String,
}

impl std::fmt::Debug for IceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password is a secret: never in a log.
        f.debug_struct("IceCredentials")
            .field("local_ufrag", &self.local_ufrag)
            .field("remote_ufrag", &self.remote_ufrag)
            .finish_non_exhaustive()
    }
}

/// Why a datagram got no answer. `Copy`, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// Not a parseable STUN message.
    #[error("not a STUN message")]
    Malformed,
    /// A STUN message, but not a Binding request (responses and indications are ignored).
    #[error("not a Binding request")]
    NotBindingRequest,
    /// No USERNAME, or one not of the form `ours:theirs`.
    #[error("missing or malformed USERNAME")]
    NoUsername,
    /// USERNAME names another session (or the peer's ufrag does not match).
    #[error("USERNAME does not match the session")]
    UnknownUsername,
    /// No MESSAGE-INTEGRITY attribute.
    #[error("missing MESSAGE-INTEGRITY")]
    NoIntegrity,
    /// MESSAGE-INTEGRITY does not verify with our password.
    #[error("MESSAGE-INTEGRITY does not verify")]
    BadIntegrity,
    /// A FINGERPRINT is present and wrong.
    #[error("FINGERPRINT does not verify")]
    BadFingerprint,
    /// The peer claims the controlled role too; an ICE-lite agent needs a controlling peer.
    #[error("peer is not the controlling agent")]
    RoleConflict,
    /// The response does not fit the output buffer.
    #[error("output buffer too small")]
    BufferTooSmall,
}

/// What an authenticated Binding request told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingInfo {
    /// USE-CANDIDATE was present: the controlling peer nominates this pair.
    pub nominated: bool,
    /// The PRIORITY the peer gave (0 when absent).
    pub priority: u32,
}

/// Our ufrag from the USERNAME of a Binding request (`ours:theirs`), so the caller can find the
/// session before anything is verified. `None` when the datagram is not such a request.
pub fn local_ufrag(datagram: &[u8]) -> Option<&[u8]> {
    let msg = StunMessage::parse(datagram).ok()?;
    if !msg.is_binding_request() {
        return None;
    }
    let username = msg.username()?;
    let colon = username.iter().position(|&b| b == b':')?;
    Some(&username[..colon])
}

/// Verifies a Binding request against `creds` and writes the success response (XOR-MAPPED-
/// ADDRESS = `src`, MESSAGE-INTEGRITY with our password, FINGERPRINT) into `out`. Returns the
/// response length and what the request said. On any error, send nothing.
pub fn answer_binding(
    datagram: &[u8],
    creds: &IceCredentials,
    src: SocketAddr,
    out: &mut [u8],
) -> Result<(usize, BindingInfo), BindingError> {
    let msg = StunMessage::parse(datagram).map_err(|_| BindingError::Malformed)?;
    if !msg.is_binding_request() {
        return Err(BindingError::NotBindingRequest);
    }
    let username = msg.username().ok_or(BindingError::NoUsername)?;
    let colon = username
        .iter()
        .position(|&b| b == b':')
        .ok_or(BindingError::NoUsername)?;
    let (ours, theirs) = (&username[..colon], &username[colon + 1..]);
    if ours != creds.local_ufrag.as_bytes() || theirs != creds.remote_ufrag.as_bytes() {
        return Err(BindingError::UnknownUsername);
    }
    if !msg
        .raw_attributes()
        .any(|a| a.kind == crate::wire::stun::ATTR_MESSAGE_INTEGRITY)
    {
        return Err(BindingError::NoIntegrity);
    }
    if !msg.verify_integrity(creds.local_pwd.as_bytes()) {
        return Err(BindingError::BadIntegrity);
    }
    let has_fingerprint = msg
        .raw_attributes()
        .any(|a| a.kind == crate::wire::stun::ATTR_FINGERPRINT);
    if has_fingerprint && !msg.verify_fingerprint() {
        return Err(BindingError::BadFingerprint);
    }
    if msg.ice_controlled().is_some() {
        return Err(BindingError::RoleConflict);
    }
    let info = BindingInfo {
        nominated: msg.use_candidate(),
        priority: msg.priority().unwrap_or(0),
    };
    let mut w = StunWriter::new(
        out,
        StunClass::SuccessResponse,
        METHOD_BINDING,
        msg.transaction_id(),
    )
    .map_err(|_| BindingError::BufferTooSmall)?;
    w.xor_mapped_address(src)
        .map_err(|_| BindingError::BufferTooSmall)?;
    let len = w
        .finish_with_integrity(creds.local_pwd.as_bytes())
        .map_err(|_| BindingError::BufferTooSmall)?;
    Ok((len, info))
}

/// The controlling side of a check, for clients of a relay (tests, benchmarks, the load
/// generator): a Binding request with USERNAME `remote_ufrag:local_ufrag`, PRIORITY,
/// ICE-CONTROLLING, USE-CANDIDATE when `nominate`, MESSAGE-INTEGRITY keyed with the relay's
/// password (omitted when `pwd` is `None`) and FINGERPRINT.
pub fn write_binding_request(
    out: &mut [u8],
    transaction_id: &[u8; 12],
    username: &[u8],
    pwd: Option<&[u8]>,
    nominate: bool,
    tie_breaker: u64,
) -> Result<usize, BindingError> {
    let too_small = |_| BindingError::BufferTooSmall;
    let mut w = StunWriter::new(out, StunClass::Request, METHOD_BINDING, transaction_id)
        .map_err(too_small)?;
    w.username(username).map_err(too_small)?;
    w.priority(0x6e00_1eff).map_err(too_small)?;
    w.ice_controlling(tie_breaker).map_err(too_small)?;
    if nominate {
        w.use_candidate().map_err(too_small)?;
    }
    match pwd {
        Some(p) => w.finish_with_integrity(p).map_err(too_small),
        None => w.finish_with_fingerprint().map_err(too_small),
    }
}

/// Checks while no answer has come: how often a Binding request goes out.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// Checks once answered: consent freshness (RFC 7675 sends one every 4–6 s; more often here, so
/// that the far side's 30 s consent never comes close and a dead peer shows soon).
pub const CONSENT_INTERVAL: Duration = Duration::from_secs(2);

/// The controlling side of one candidate pair, for the relay's own pulls from another node
/// (the far side is an ICE-lite relay, so this side is controlling and nominates at once).
/// Sans-IO: [`Checker::poll_transmit`] writes a Binding request when one is due,
/// [`Checker::handle_response`] verifies an answer; the caller owns sockets and the clock.
#[derive(Clone)]
pub struct Checker {
    /// `remote_ufrag:local_ufrag`.
    username: Box<[u8]>,
    remote_pwd: Box<[u8]>,
    tie_breaker: u64,
    /// The outstanding request's transaction id (the last sent; earlier ones are forgotten).
    transaction: Option<[u8; 12]>,
    next: Instant,
    /// When the outstanding request went out.
    sent: Instant,
    answered: bool,
    /// xorshift state for transaction ids.
    rng: u64,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Checker")
            .field("answered", &self.answered)
            .finish_non_exhaustive()
    }
}

impl Checker {
    /// A checker for `creds` (ours, and the far side's ufrag) with the far side's password
    /// `remote_pwd`; `seed` (random, non-zero) makes the tie-breaker and transaction ids. The
    /// first check is due at `now`.
    pub fn new(creds: &IceCredentials, remote_pwd: &str, seed: u64, now: Instant) -> Self {
        let username = format!("{}:{}", creds.remote_ufrag, creds.local_ufrag);
        Self {
            username: username.into_bytes().into(),
            remote_pwd: remote_pwd.as_bytes().into(),
            tie_breaker: seed,
            transaction: None,
            next: now,
            sent: now,
            answered: false,
            rng: seed | 1,
        }
    }

    /// When the next check is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        self.next
    }

    /// Whether an authenticated answer has come.
    pub fn answered(&self) -> bool {
        self.answered
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Writes the Binding request that is due by `now` into `out` and returns its length;
    /// `None` when none is due (or `out` is too small).
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        if now < self.next {
            return None;
        }
        let mut id = [0u8; 12];
        id[..8].copy_from_slice(&self.next_random().to_be_bytes());
        id[8..].copy_from_slice(&(self.next_random() as u32).to_be_bytes());
        let len = write_binding_request(
            out,
            &id,
            &self.username,
            Some(&self.remote_pwd),
            true,
            self.tie_breaker,
        )
        .ok()?;
        self.transaction = Some(id);
        self.sent = now;
        self.next = now
            + if self.answered {
                CONSENT_INTERVAL
            } else {
                CHECK_INTERVAL
            };
        Some(len)
    }

    /// Verifies a Binding success response to our outstanding request: our transaction id and
    /// MESSAGE-INTEGRITY keyed with the far side's password. Anything else is an error.
    pub fn handle_response(&mut self, datagram: &[u8]) -> Result<(), BindingError> {
        let msg = StunMessage::parse(datagram).map_err(|_| BindingError::Malformed)?;
        if msg.class() != StunClass::SuccessResponse || msg.method() != METHOD_BINDING {
            return Err(BindingError::NotBindingRequest);
        }
        if self.transaction.as_ref() != Some(msg.transaction_id()) {
            return Err(BindingError::UnknownUsername);
        }
        if !msg.verify_integrity(&self.remote_pwd) {
            return Err(BindingError::BadIntegrity);
        }
        let has_fingerprint = msg
            .raw_attributes()
            .any(|a| a.kind == crate::wire::stun::ATTR_FINGERPRINT);
        if has_fingerprint && !msg.verify_fingerprint() {
            return Err(BindingError::BadFingerprint);
        }
        self.transaction = None;
        self.answered = true;
        // Answered: the next check is for consent, an interval after this one.
        self.next = self.next.max(self.sent + CONSENT_INTERVAL);
        Ok(())
    }
}

/// Consent freshness (RFC 7675): alive while authenticated Binding requests keep arriving.
#[derive(Debug, Clone, Copy)]
pub struct Consent {
    last: Instant,
    timeout: Duration,
}

impl Consent {
    /// Consent starts when the session is installed, so a peer that never checks still expires.
    pub fn new(now: Instant, timeout: Duration) -> Self {
        Self { last: now, timeout }
    }

    /// An authenticated Binding request arrived.
    pub fn refresh(&mut self, now: Instant) {
        self.last = self.last.max(now);
    }

    /// When consent runs out unless refreshed.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.last + self.timeout
    }

    /// True once `now` is past the deadline.
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.deadline()
    }
}

#[cfg(test)]
mod tests;
