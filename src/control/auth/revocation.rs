//! Revoked identities and token ids, shared by the HTTP handlers (which check every request) and
//! housekeeping (which ends live sessions whose grant became revoked).
//!
//! Revoking an identity revokes the tokens issued to it up to that moment (`iat` at or before the
//! revocation, or no `iat`), in one room or in all rooms; a token minted afterwards works again,
//! so "kick" does not mean "ban forever" — a ban is the token issuer's decision. Revoking a `jti`
//! revokes that one token until its expiry, after which [`Revocations::prune`] forgets it.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::SystemTime;

use super::jwt::LEEWAY;
use super::Grant;

/// The revocation lists. Thread-safe; cheap to check (one read lock, two hash lookups).
#[derive(Debug, Default)]
pub struct Revocations {
    inner: RwLock<Lists>,
}

#[derive(Debug, Default)]
struct Lists {
    /// identity → (room, or `None` for every room; when it was revoked).
    identities: HashMap<String, Vec<(Option<String>, SystemTime)>>,
    /// jti → the revoked token's expiry.
    jtis: HashMap<String, SystemTime>,
}

impl Revocations {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Revokes every token issued to `identity` at or before `now`, in `room` (or every room
    /// with `None`).
    pub fn revoke_identity(&self, room: Option<&str>, identity: &str, now: SystemTime) {
        let mut lists = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let scopes = lists.identities.entry(identity.to_string()).or_default();
        match scopes.iter_mut().find(|(r, _)| r.as_deref() == room) {
            Some((_, at)) => *at = (*at).max(now),
            None => scopes.push((room.map(str::to_string), now)),
        }
    }

    /// Revokes the token with this `jti`; `expires_at` is its expiry, after which the entry may
    /// be pruned.
    pub fn revoke_jti(&self, jti: &str, expires_at: SystemTime) {
        let mut lists = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let until = lists.jtis.entry(jti.to_string()).or_insert(expires_at);
        *until = (*until).max(expires_at);
    }

    /// Whether `grant` has been revoked, by its `jti` or by its identity.
    pub fn is_revoked(&self, grant: &Grant) -> bool {
        let lists = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(jti) = &grant.jti {
            if lists.jtis.contains_key(jti) {
                return true;
            }
        }
        let Some(scopes) = lists.identities.get(&grant.identity) else {
            return false;
        };
        scopes.iter().any(|(room, revoked_at)| {
            room.as_ref().is_none_or(|r| *r == grant.room)
                && grant.issued_at.is_none_or(|iat| iat <= *revoked_at)
        })
    }

    /// Forgets `jti` revocations whose token has expired (with leeway) by `now`.
    pub fn prune(&self, now: SystemTime) {
        let mut lists = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        lists
            .jtis
            .retain(|_, until| until.checked_add(LEEWAY).is_none_or(|u| u >= now));
    }

    /// How many entries are held: (identity scopes, jtis).
    pub fn counts(&self) -> (usize, usize) {
        let lists = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        (
            lists.identities.values().map(Vec::len).sum(),
            lists.jtis.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn grant(room: &str, identity: &str, iat: Option<u64>, jti: Option<&str>) -> Grant {
        Grant {
            room: room.into(),
            streams: vec!["*".into()],
            publish: true,
            subscribe: true,
            identity: identity.into(),
            expires_at: at(1000),
            issued_at: iat.map(at),
            jti: jti.map(str::to_string),
        }
    }

    #[test]
    fn identity_revocation_covers_earlier_tokens_in_its_scope() {
        let r = Revocations::new();
        r.revoke_identity(Some("r1"), "alice", at(100));
        assert!(r.is_revoked(&grant("r1", "alice", Some(100), None)));
        assert!(r.is_revoked(&grant("r1", "alice", None, None)));
        assert!(!r.is_revoked(&grant("r1", "alice", Some(101), None)));
        assert!(!r.is_revoked(&grant("r2", "alice", Some(50), None)));
        assert!(!r.is_revoked(&grant("r1", "bob", Some(50), None)));
        r.revoke_identity(None, "bob", at(100));
        assert!(r.is_revoked(&grant("r9", "bob", Some(50), None)));
    }

    #[test]
    fn jti_revocation_is_pruned_after_expiry() {
        let r = Revocations::new();
        r.revoke_jti("t1", at(1000));
        assert!(r.is_revoked(&grant("r", "a", Some(1), Some("t1"))));
        assert!(!r.is_revoked(&grant("r", "a", Some(1), Some("t2"))));
        r.prune(at(1000));
        assert_eq!(r.counts(), (0, 1));
        r.prune(at(1031));
        assert_eq!(r.counts(), (0, 0));
    }
}
