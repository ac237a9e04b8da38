//! The `tern.toml` configuration file: its schema, its defaults, and the checks that run before
//! the relay starts.
//!
//! `Config` owns the whole schema as plain serde structs (`deny_unknown_fields` everywhere), each
//! with a `Default` impl that is the documented default. `Config::load` parses, then validates
//! what a type cannot express (core ids this machine has, readable secret files, port ranges).
//! Every error names the file, the line and the dotted field: `/etc/tern/tern.toml:12:
//! media.port_base: …`, so `tern check-config` and `tern serve` report the same thing.
//!
//! This module never prints or returns the contents of a secret file: it only checks that each
//! `*_file` can be read and is not empty. It does no I/O beyond reading the config and those
//! files, and it never starts anything.

mod cluster;
mod source;
mod validate;
mod values;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::datapath::{DatapathConfig, IoConfig, IoMode, Placement, TcpConfig};
pub use cluster::{valid_node_id, ClusterConfig};
use source::Source;
pub use values::Workers;

/// Where `tern serve --config` and the packaged unit look for the file.
pub const DEFAULT_PATH: &str = "/etc/tern/tern.toml";

/// Environment variable that may hold the HS256 secret instead of `auth.jwt_secret_file`.
pub const JWT_SECRET_ENV: &str = "TERN_JWT_SECRET";

/// The whole `tern.toml`. Every section and field may be left out; it then takes its default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Alias of `lifecycle.drain_timeout` at the top level (set one or the other). `Config::load`
    /// moves it into `lifecycle`, so after loading it is always `None`.
    #[serde(with = "values::opt_duration", skip_serializing_if = "Option::is_none")]
    pub drain_timeout: Option<Duration>,
    /// `[http]`: signalling, admin API and metrics.
    pub http: HttpConfig,
    /// `[media]`: the datapath workers and their sockets.
    pub media: MediaConfig,
    /// `[auth]`: how WHIP/WHEP and admin requests are authorised.
    pub auth: AuthConfig,
    /// `[limits]`: abuse limits on the slow path.
    pub limits: LimitsConfig,
    /// `[lifecycle]`: shutdown behaviour.
    pub lifecycle: LifecycleConfig,
    /// `[log]`: logging.
    pub log: LogConfig,
    /// `[cluster]`: one node of a cluster on etcd (absent: a single appliance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address and port the HTTP server listens on (default `127.0.0.1:8080`; port 0 takes a
    /// free port and the start-up log line names it).
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
        }
    }
}

/// `[media]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Address the worker UDP sockets bind (default `127.0.0.1`; `::` binds dual-stack).
    pub bind: IpAddr,
    /// Address put in SDP candidates when the host is behind NAT (default: unset, use `bind`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertised_address: Option<IpAddr>,
    /// Worker `i` listens on `port_base + i` (default 40000; 0 = any free port, for tests).
    pub port_base: u16,
    /// `"all"` (one worker per core, the default) or a list of core ids, one worker on each.
    pub workers: Workers,
    /// `pinned` (each worker bound to its core, the default) or `unbound`.
    pub placement: WorkerPlacement,
    /// I/O backend: `auto` (io_uring, falling back to recvmmsg/sendmmsg; default), `uring`,
    /// `mmsg`, or `xdp` (AF_XDP sockets on `interface`, bypassing the kernel's UDP stack).
    pub io: IoBackend,
    /// The network interface media arrives on; required with `io = "xdp"`, unused otherwise
    /// (default: unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// How the `xdp` backend runs its XDP program: `native` (in the driver; default) or
    /// `generic` (in the kernel after the driver, for interfaces without native XDP; slower).
    pub xdp_mode: XdpMode,
    /// A session with no authenticated STUN binding for this long is closed (default `30s`).
    #[serde(with = "values::duration")]
    pub consent_timeout: Duration,
    /// PEM file with the relay's DTLS certificate, ECDSA P-256 (default: unset, a fresh
    /// self-signed certificate at each start). Needs `dtls_key_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtls_certificate_file: Option<PathBuf>,
    /// PEM file with the PKCS#8 private key of `dtls_certificate_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtls_key_file: Option<PathBuf>,
    /// ICE-TCP (RFC 6544 passive candidates) beside UDP, for viewers whose network blocks UDP
    /// (default true). Clients use it only when UDP fails.
    pub tcp: bool,
    /// Worker `i` listens on TCP `tcp_port_base + i` (default: unset, `port_base`; 443 for a
    /// single-worker edge behind a firewall that allows only HTTPS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_port_base: Option<u16>,
    /// Open ICE-TCP connections per worker; more are refused (default 1024).
    pub tcp_max_connections: u32,
    /// Open ICE-TCP connections per client address, per worker (default 20).
    pub tcp_connections_per_ip: u32,
    /// An ICE-TCP connection that sends nothing for this long is closed (default `30s`).
    #[serde(with = "values::duration")]
    pub tcp_idle_timeout: Duration,
    /// Bytes queued per ICE-TCP connection; a slow reader's packets beyond it are dropped
    /// (default 262144).
    pub tcp_send_buffer: u32,
    /// What a subscriber whose path carries not even the stream's lowest layer gets: `keep`
    /// (that layer, the default: video over a congested path) or `pause` (its video stops,
    /// audio goes on, and the relay tries it again after a quiet period, then less often).
    pub below_lowest_layer: BelowLowestLayer,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            advertised_address: None,
            port_base: 40000,
            workers: Workers::All,
            placement: WorkerPlacement::Pinned,
            io: IoBackend::Auto,
            interface: None,
            xdp_mode: XdpMode::Native,
            consent_timeout: crate::ice::DEFAULT_CONSENT_TIMEOUT,
            dtls_certificate_file: None,
            dtls_key_file: None,
            tcp: true,
            tcp_port_base: None,
            tcp_max_connections: 1024,
            tcp_connections_per_ip: 20,
            tcp_idle_timeout: Duration::from_secs(30),
            tcp_send_buffer: 256 << 10,
            below_lowest_layer: BelowLowestLayer::Keep,
        }
    }
}

/// `media.below_lowest_layer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BelowLowestLayer {
    /// The lowest layer goes on.
    #[default]
    Keep,
    /// The video pauses until the path has room again.
    Pause,
}

/// Whether workers are pinned to their cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerPlacement {
    /// One worker pinned to each core in `workers`.
    #[default]
    Pinned,
    /// As many workers as `workers` names, left to the scheduler (containers with a CPU quota).
    Unbound,
}

/// The datapath I/O backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IoBackend {
    /// io_uring when the kernel allows it, else recvmmsg/sendmmsg.
    #[default]
    Auto,
    /// io_uring only; workers fail to start without it.
    Uring,
    /// recvmmsg/sendmmsg only.
    Mmsg,
    /// AF_XDP on `media.interface`; the relay refuses to start if this machine cannot do it.
    Xdp,
}

/// Where the `xdp` backend's XDP program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// In the NIC driver, before any socket buffer is allocated.
    #[default]
    Native,
    /// In the kernel's generic hook, for drivers without native XDP (slower; for trying it out).
    Generic,
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// JWT signature algorithm: `HS256` (shared secret, default), `EdDSA` or `ES256` (public keys).
    pub algorithm: JwtAlgorithm,
    /// File holding the HS256 secret (default: unset; then `TERN_JWT_SECRET` must be set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_secret_file: Option<PathBuf>,
    /// PEM public keys that may sign tokens, for `EdDSA` and `ES256` (default: none).
    pub public_key_files: Vec<PathBuf>,
    /// Optional webhook that must allow each WHIP/WHEP request (default: unset, no webhook).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// How long to wait for the webhook before refusing the request (default `2s`).
    #[serde(with = "values::duration")]
    pub webhook_timeout: Duration,
    /// File holding the admin API bearer token (default: unset, admin API disabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token_file: Option<PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            algorithm: JwtAlgorithm::Hs256,
            jwt_secret_file: None,
            public_key_files: Vec::new(),
            webhook_url: None,
            webhook_timeout: Duration::from_secs(2),
            admin_token_file: None,
        }
    }
}

/// JWT signature algorithms the relay accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    /// HMAC-SHA-256 with a shared secret.
    #[default]
    #[serde(rename = "HS256")]
    Hs256,
    /// Ed25519 signatures.
    #[serde(rename = "EdDSA")]
    EdDsa,
    /// ECDSA P-256 with SHA-256.
    #[serde(rename = "ES256")]
    Es256,
}

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Concurrent sessions one client IP may hold (default 20).
    pub sessions_per_ip: u32,
    /// HTTP requests per minute per client IP (default 120).
    pub requests_per_minute: u32,
    /// Largest accepted request body, SDP included (default 65536).
    pub max_body_bytes: u64,
    /// Subscribers one published stream may have (default 500).
    pub max_subscribers_per_stream: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            sessions_per_ip: 20,
            requests_per_minute: 120,
            max_body_bytes: 65536,
            max_subscribers_per_stream: 500,
        }
    }
}

/// `[lifecycle]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    /// On SIGTERM, how long existing sessions may continue before the process exits (default
    /// `30s`). The unit's `TimeoutStopSec` must be longer.
    #[serde(with = "values::duration")]
    pub drain_timeout: Duration,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info` (default), `debug` or `trace`.
    pub level: LogLevel,
    /// `text` (default; journald adds timestamps) or `json`.
    pub format: LogFormat,
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A config that cannot be used. `Display` is the message `check-config` prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file itself could not be read.
    #[error("{file}: cannot read the config file: {reason}")]
    Read {
        /// The config file.
        file: String,
        /// The operating system's reason.
        reason: String,
    },
    /// A field (or the TOML syntax around it) is wrong.
    #[error("{file}:{line}: {field}: {reason}")]
    Field {
        /// The config file (or the name given to `from_str_named`).
        file: String,
        /// 1-based line of the field, or of its section when the field is absent.
        line: usize,
        /// Dotted field name, e.g. `media.port_base`.
        field: String,
        /// What is wrong; never contains a secret.
        reason: String,
    },
}

impl ConfigError {
    /// The dotted field name, if the error is about a field.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Field { field, .. } => Some(field),
            ConfigError::Read { .. } => None,
        }
    }
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: name.clone(),
            reason: e.to_string(),
        })?;
        Self::from_str_named(&text, &name)
    }

    /// Parses and validates config text; `name` is the file name used in error messages.
    pub fn from_str_named(text: &str, name: &str) -> Result<Config, ConfigError> {
        let source = Source::parse(text, name)?;
        let mut config: Config = toml::from_str(text).map_err(|e| source.de_error(&e))?;
        validate::check(&mut config, &source)?;
        Ok(config)
    }

    /// How many datapath workers this config starts on this machine.
    pub fn worker_count(&self) -> usize {
        match &self.media.workers {
            Workers::All => values::available_cores().len().max(1),
            Workers::Cores(list) => list.len(),
        }
    }

    /// The drain timeout, wherever the file set it.
    pub fn drain_timeout(&self) -> Duration {
        self.drain_timeout.unwrap_or(self.lifecycle.drain_timeout)
    }

    /// The PEM texts of the DTLS identity the config names (`media.dtls_certificate_file` and
    /// `dtls_key_file`), checked as a pair (ECDSA P-256, the key is the certificate's), or `None`
    /// when it names none. The error names the field.
    pub fn dtls_identity_pem(&self) -> Result<Option<(String, String)>, (&'static str, String)> {
        let (cert, key) = match (&self.media.dtls_certificate_file, &self.media.dtls_key_file) {
            (None, None) => return Ok(None),
            (Some(c), Some(k)) => (c, k),
            (Some(_), None) => {
                return Err((
                    "media.dtls_key_file",
                    "is needed with dtls_certificate_file".into(),
                ))
            }
            (None, Some(_)) => {
                return Err((
                    "media.dtls_certificate_file",
                    "is needed with dtls_key_file".into(),
                ))
            }
        };
        let read = |field: &'static str, path: &PathBuf| {
            std::fs::read_to_string(path)
                .map_err(|e| (field, format!("cannot read {}: {e}", path.display())))
        };
        let cert_pem = read("media.dtls_certificate_file", cert)?;
        let key_pem = read("media.dtls_key_file", key)?;
        crate::pki::certified_key(&cert_pem, &key_pem)
            .map_err(|e| ("media.dtls_key_file", e.to_string()))?;
        Ok(Some((cert_pem, key_pem)))
    }

    /// The `[media]` section as the datapath's own config (other datapath fields keep their
    /// defaults).
    pub fn datapath(&self) -> DatapathConfig {
        let media = &self.media;
        let placement = match (media.placement, &media.workers) {
            (WorkerPlacement::Pinned, Workers::All) => Placement::AllCores,
            (WorkerPlacement::Pinned, Workers::Cores(list)) => Placement::Fixed(list.clone()),
            (WorkerPlacement::Unbound, _) => Placement::Unbound(self.worker_count()),
        };
        let mode = match media.io {
            IoBackend::Auto => IoMode::Auto,
            IoBackend::Uring => IoMode::Uring,
            IoBackend::Mmsg => IoMode::Mmsg,
            IoBackend::Xdp => IoMode::Xdp,
        };
        DatapathConfig {
            placement,
            port_base: media.port_base,
            bind: media.bind,
            advertised: media.advertised_address,
            io: IoConfig {
                mode,
                interface: media.interface.clone(),
                xdp_mode: match media.xdp_mode {
                    XdpMode::Native => crate::datapath::io::XdpMode::Native,
                    XdpMode::Generic => crate::datapath::io::XdpMode::Generic,
                },
                ..IoConfig::default()
            },
            consent_timeout: media.consent_timeout,
            tcp: media.tcp.then(|| TcpConfig {
                port_base: media.tcp_port_base,
                max_connections: media.tcp_max_connections as usize,
                connections_per_ip: media.tcp_connections_per_ip as usize,
                idle_timeout: media.tcp_idle_timeout,
                send_buffer: media.tcp_send_buffer as usize,
                ..TcpConfig::default()
            }),
            ..DatapathConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults_apart_from_the_secret() {
        std::env::set_var(JWT_SECRET_ENV, "x");
        let config = Config::from_str_named("", "t.toml").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.drain_timeout(), Duration::from_secs(30));
    }

    #[test]
    fn top_level_drain_timeout_moves_into_lifecycle() {
        std::env::set_var(JWT_SECRET_ENV, "x");
        let config = Config::from_str_named("drain_timeout = \"45s\"\n", "t.toml").unwrap();
        assert_eq!(config.drain_timeout, None);
        assert_eq!(config.lifecycle.drain_timeout, Duration::from_secs(45));
    }

    #[test]
    fn datapath_maps_placement_and_io() {
        let mut config = Config::default();
        config.media.workers = Workers::Cores(vec![0]);
        config.media.io = IoBackend::Mmsg;
        config.media.port_base = 41000;
        let dp = config.datapath();
        assert_eq!(dp.placement, Placement::Fixed(vec![0]));
        assert_eq!(dp.io.mode, IoMode::Mmsg);
        assert_eq!(dp.port_base, 41000);
        let tcp = dp.tcp.expect("ICE-TCP is on by default");
        assert_eq!(tcp.port_base, None, "on the UDP ports");
        config.media.tcp_port_base = Some(443);
        assert_eq!(config.datapath().tcp.unwrap().port_base, Some(443));
        config.media.tcp = false;
        assert!(config.datapath().tcp.is_none());
        config.media.placement = WorkerPlacement::Unbound;
        assert_eq!(config.datapath().placement, Placement::Unbound(1));
        config.media.io = IoBackend::Xdp;
        config.media.interface = Some("eth1".into());
        config.media.xdp_mode = XdpMode::Generic;
        let dp = config.datapath();
        assert_eq!(dp.io.mode, IoMode::Xdp);
        assert_eq!(dp.io.interface.as_deref(), Some("eth1"));
        assert_eq!(dp.io.xdp_mode, crate::datapath::io::XdpMode::Generic);
        assert_eq!(Config::default().datapath().placement, Placement::AllCores);
    }

    #[test]
    fn defaults_round_trip_through_toml() {
        let text = toml::to_string(&Config::default()).unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back, Config::default());
    }
}
