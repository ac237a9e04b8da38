//! What the cluster keeps in etcd, and where: one prefix (`cluster.prefix`, default `/tern`), then
//!
//! - `<prefix>/nodes/<node>` → [`NodeRecord`] (JSON), on the node's lease: who is up, where its
//!   HTTP API and media are, whether it drains, how full it is;
//! - `<prefix>/streams/<room>/<stream>` → [`StreamRecord`], on the origin's lease: the one node
//!   that took the stream's WHIP (created only if absent: one origin per stream);
//! - `<prefix>/revocations/<id>` → [`RevocationRecord`], on a day-long lease of its own: an admin
//!   revocation every node applies.
//!
//! Room and stream names are percent-encoded where they would break the key's shape (`/`, `%`).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A node, as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    /// Base URL of its HTTP API (`http://10.0.0.1:8080`).
    pub http: String,
    /// Where its media is reached (the address of its candidates for other nodes).
    pub media: IpAddr,
    #[serde(default)]
    pub draining: bool,
    /// Sessions it holds (refreshed at most every few seconds).
    #[serde(default)]
    pub sessions: u32,
    /// Sessions it takes at most (0: no limit).
    #[serde(default)]
    pub max_sessions: u32,
}

impl NodeRecord {
    /// Whether new sessions may be placed there.
    pub fn has_room(&self) -> bool {
        !self.draining && (self.max_sessions == 0 || self.sessions < self.max_sessions)
    }
}

/// The origin of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// The node that took the stream's WHIP.
    pub node: String,
    /// Who publishes it (the token's identity): the same identity may take the stream over.
    pub identity: String,
    /// The publisher's session on that node.
    pub session: u64,
    /// The publisher is connected (DTLS done, tracks known): edges may pull it, viewers hear of
    /// it. A record is claimed unready at the WHIP request.
    #[serde(default)]
    pub ready: bool,
}

/// An admin revocation: tokens of `identity` issued at or before `at` (seconds since the Unix
/// epoch), in `room` or every room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationRecord {
    pub identity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    pub at: u64,
}

/// What a key under the prefix is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Node(String),
    Stream { room: String, stream: String },
    Revocation(String),
}

/// Keys under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

fn encode(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

fn decode(part: &str) -> String {
    part.replace("%2F", "/").replace("%25", "%")
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    /// Everything the cluster keeps: `<prefix>/`.
    pub fn all(&self) -> Vec<u8> {
        format!("{}/", self.prefix).into_bytes()
    }

    pub fn node(&self, id: &str) -> Vec<u8> {
        format!("{}/nodes/{}", self.prefix, encode(id)).into_bytes()
    }

    pub fn stream(&self, room: &str, stream: &str) -> Vec<u8> {
        format!(
            "{}/streams/{}/{}",
            self.prefix,
            encode(room),
            encode(stream)
        )
        .into_bytes()
    }

    pub fn revocation(&self, id: &str) -> Vec<u8> {
        format!("{}/revocations/{}", self.prefix, encode(id)).into_bytes()
    }

    /// What `key` names, or `None` for a key this version does not know.
    pub fn parse(&self, key: &[u8]) -> Option<Key> {
        let key = std::str::from_utf8(key).ok()?;
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        let (kind, rest) = rest.split_once('/')?;
        match kind {
            "nodes" if !rest.contains('/') => Some(Key::Node(decode(rest))),
            "streams" => {
                let (room, stream) = rest.split_once('/')?;
                (!stream.contains('/')).then(|| Key::Stream {
                    room: decode(room),
                    stream: decode(stream),
                })
            }
            "revocations" if !rest.contains('/') => Some(Key::Revocation(decode(rest))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_even_with_slashes_in_names() {
        let k = Keys::new("/tern");
        assert_eq!(k.node("n1"), b"/tern/nodes/n1".to_vec());
        let key = k.stream("a/b", "50%/x");
        assert_eq!(key, b"/tern/streams/a%2Fb/50%25%2Fx".to_vec());
        assert_eq!(
            k.parse(&key),
            Some(Key::Stream {
                room: "a/b".into(),
                stream: "50%/x".into()
            })
        );
        assert_eq!(k.parse(&k.node("n1")), Some(Key::Node("n1".into())));
        assert_eq!(
            k.parse(&k.revocation("r1")),
            Some(Key::Revocation("r1".into()))
        );
        assert_eq!(k.parse(b"/ternx/nodes/n1"), None);
        assert_eq!(k.parse(b"/tern/other/x"), None);
        assert_eq!(k.parse(b"/tern/streams/onlyroom"), None);
        assert_eq!(k.parse(&[0xff, 0xfe]), None);
    }

    #[test]
    fn a_draining_or_full_node_has_no_room() {
        let mut n = NodeRecord {
            id: "n".into(),
            http: "http://h".into(),
            media: "127.0.0.1".parse().unwrap(),
            draining: false,
            sessions: 3,
            max_sessions: 0,
        };
        assert!(n.has_room());
        n.max_sessions = 3;
        assert!(!n.has_room());
        n.max_sessions = 4;
        n.draining = true;
        assert!(!n.has_room());
    }
}
