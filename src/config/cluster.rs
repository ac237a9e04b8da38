//! `[cluster]`: running Tern as one node of a cluster coordinated through etcd. Absent, Tern is
//! the single appliance it always was and needs no etcd.
//!
//! Validation checks what the types cannot: URLs with a scheme and host, a node id that can be
//! part of an etcd key and a URL path, a readable cluster secret of useful length (never echoed),
//! a lease TTL etcd accepts, and a key prefix.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::source::Source;
use super::{values, ConfigError};

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// etcd client URLs (`["http://10.0.0.5:2379", …]`); the first that answers is used.
    pub etcd: Vec<String>,
    /// This node's name: letters, digits, `.`, `_` and `-`, at most 64 (unique in the cluster).
    pub node_id: String,
    /// The URL other nodes reach this node's HTTP API at (default: `http://` and the address
    /// `[http] listen` bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_http: Option<String>,
    /// The address other nodes send this node's media to when they pull a stream from it
    /// (default: `media.advertised_address`, else `media.bind`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_media: Option<IpAddr>,
    /// The node's etcd lease: its record and the streams it originates vanish this long after
    /// it stops renewing (default `3s`; at least `2s`, etcd's minimum).
    #[serde(default = "default_lease_ttl", with = "values::duration")]
    pub lease_ttl: Duration,
    /// File with the secret every node shares (at least 16 bytes): it signs the tokens nodes
    /// present to each other.
    pub cluster_secret_file: PathBuf,
    /// Every key lives under this prefix (default `/tern`), so clusters can share an etcd.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// How long an edge keeps pulling a stream after its last local viewer left (default `10s`).
    #[serde(default = "default_pull_linger", with = "values::duration")]
    pub pull_linger: Duration,
    /// Sessions this node takes before it places new ones on other nodes (default 0: no limit).
    #[serde(default)]
    pub max_sessions: u32,
}

fn default_lease_ttl() -> Duration {
    Duration::from_secs(3)
}

fn default_prefix() -> String {
    "/tern".to_string()
}

fn default_pull_linger() -> Duration {
    Duration::from_secs(10)
}

/// Whether `id` can name a node in keys and URL paths.
pub fn valid_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `http://host[:port][/…]` or `https://…` with a host.
fn http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    matches!(rest, Some(r) if !r.is_empty() && !r.starts_with('/'))
}

pub(super) fn check(cluster: &ClusterConfig, source: &Source<'_>) -> Result<(), ConfigError> {
    if cluster.etcd.is_empty() {
        return Err(source.error("cluster.etcd", "list at least one etcd client URL"));
    }
    if let Some(bad) = cluster.etcd.iter().find(|u| !http_url(u)) {
        return Err(source.error(
            "cluster.etcd",
            format!("'{bad}' is not an http:// or https:// URL with a host"),
        ));
    }
    if !valid_node_id(&cluster.node_id) {
        return Err(source.error(
            "cluster.node_id",
            "must be 1 to 64 letters, digits, '.', '_' or '-'",
        ));
    }
    if let Some(url) = &cluster.advertise_http {
        if !http_url(url) {
            return Err(source.error(
                "cluster.advertise_http",
                "must be an http:// or https:// URL with a host",
            ));
        }
    }
    if let Some(ip) = cluster.advertise_media {
        if ip.is_unspecified() {
            return Err(source.error(
                "cluster.advertise_media",
                format!("{ip} cannot be reached by other nodes; give this node's address"),
            ));
        }
    }
    if cluster.lease_ttl < Duration::from_secs(2) {
        return Err(source.error(
            "cluster.lease_ttl",
            "must be at least 2s (etcd's minimum lease)",
        ));
    }
    let prefix = &cluster.prefix;
    if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains("//") {
        return Err(source.error(
            "cluster.prefix",
            "must start with '/' and not end with one, e.g. \"/tern\"",
        ));
    }
    let path = &cluster.cluster_secret_file;
    match std::fs::read(path) {
        Ok(bytes) if bytes.trim_ascii().len() < 16 => Err(source.error(
            "cluster.cluster_secret_file",
            format!("{} holds fewer than 16 bytes", path.display()),
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(source.error(
            "cluster.cluster_secret_file",
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}
