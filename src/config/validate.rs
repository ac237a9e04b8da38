//! Checks a parsed `Config` against what types cannot say: the machine's cores, the port range,
//! readable secret files, and combinations of fields. Runs once at load; every error names the
//! field and its line. Secret files are read to check them and the bytes are dropped at once.

use std::path::Path;

use super::source::Source;
use super::values::available_cores;
use super::{Config, ConfigError, IoBackend, JwtAlgorithm, MediaConfig, Workers, JWT_SECRET_ENV};

/// Validates `config` in place; also moves a top-level `drain_timeout` into `[lifecycle]`.
pub(crate) fn check(config: &mut Config, source: &Source<'_>) -> Result<(), ConfigError> {
    lifecycle(config, source)?;
    media(config, source)?;
    if let Err((field, reason)) = config.dtls_identity_pem() {
        return Err(source.error(field, reason));
    }
    auth(config, source)?;
    limits(config, source)?;
    match &config.cluster {
        Some(cluster) => super::cluster::check(cluster, source),
        None => Ok(()),
    }
}

fn lifecycle(config: &mut Config, source: &Source<'_>) -> Result<(), ConfigError> {
    if let Some(top) = config.drain_timeout.take() {
        if source.has("lifecycle.drain_timeout") {
            return Err(source.error(
                "drain_timeout",
                "set either drain_timeout at the top level or lifecycle.drain_timeout, not both",
            ));
        }
        config.lifecycle.drain_timeout = top;
    }
    let field = if source.has("drain_timeout") {
        "drain_timeout"
    } else {
        "lifecycle.drain_timeout"
    };
    if config.lifecycle.drain_timeout.is_zero() {
        return Err(source.error(field, "must be longer than 0s"));
    }
    Ok(())
}

fn media(config: &Config, source: &Source<'_>) -> Result<(), ConfigError> {
    let media = &config.media;
    if let Some(adv) = media.advertised_address {
        if adv.is_unspecified() {
            return Err(source.error(
                "media.advertised_address",
                format!("{adv} cannot be advertised to clients; give the public address"),
            ));
        }
    }
    let available = available_cores();
    let workers = match &media.workers {
        Workers::All if available.is_empty() => {
            return Err(source.error(
                "media.workers",
                "cannot list this machine's cores; give a list such as [0, 1]",
            ))
        }
        Workers::All => available.len(),
        Workers::Cores(list) if list.is_empty() => {
            return Err(source.error("media.workers", "the core list is empty"))
        }
        Workers::Cores(list) => list.len(),
    };
    if media.port_base != 0 && usize::from(media.port_base) + workers - 1 > 65535 {
        return Err(source.error(
            "media.port_base",
            format!(
                "port_base {} + {workers} workers needs ports up to {}, past 65535",
                media.port_base,
                usize::from(media.port_base) + workers - 1
            ),
        ));
    }
    if let Workers::Cores(list) = &media.workers {
        for (i, core) in list.iter().enumerate() {
            if list[..i].contains(core) {
                return Err(source.error("media.workers", format!("core {core} is listed twice")));
            }
            if !available.contains(core) {
                return Err(source.error(
                    "media.workers",
                    format!("core {core} is not present on this machine (cores: {available:?})"),
                ));
            }
        }
    }
    if media.consent_timeout.is_zero() {
        return Err(source.error("media.consent_timeout", "must be longer than 0s"));
    }
    if media.io == IoBackend::Xdp {
        xdp(media, source)?;
    }
    tcp(media, workers, source)
}

/// `io = "xdp"`: an interface that exists here and a concrete media address (the XDP program
/// matches it). Whether the driver, kernel and privileges allow it is checked at start.
fn xdp(media: &MediaConfig, source: &Source<'_>) -> Result<(), ConfigError> {
    let Some(name) = &media.interface else {
        return Err(source.error_near(
            "media.interface",
            "media.io",
            "is required with io = \"xdp\": the network interface media arrives on",
        ));
    };
    if !crate::datapath::io::interface_exists(name) {
        return Err(source.error(
            "media.interface",
            format!("no network interface {name:?} on this machine"),
        ));
    }
    if media.bind.is_unspecified() {
        return Err(source.error_near(
            "media.bind",
            "media.io",
            format!(
                "{} is a wildcard; io = \"xdp\" needs the relay's own address on {name}",
                media.bind
            ),
        ));
    }
    Ok(())
}

/// The ICE-TCP fields of `[media]`, for `workers` workers.
fn tcp(media: &MediaConfig, workers: usize, source: &Source<'_>) -> Result<(), ConfigError> {
    if let Some(base) = media.tcp_port_base {
        if base != 0 && usize::from(base) + workers - 1 > 65535 {
            return Err(source.error(
                "media.tcp_port_base",
                format!("tcp_port_base {base} + {workers} workers goes past port 65535"),
            ));
        }
    }
    if !(1..=65535).contains(&media.tcp_max_connections) {
        return Err(source.error("media.tcp_max_connections", "must be from 1 to 65535"));
    }
    if media.tcp_connections_per_ip == 0 {
        return Err(source.error("media.tcp_connections_per_ip", "must be at least 1"));
    }
    if media.tcp_idle_timeout.is_zero() {
        return Err(source.error("media.tcp_idle_timeout", "must be longer than 0s"));
    }
    if !(4096..=64 << 20).contains(&media.tcp_send_buffer) {
        return Err(source.error(
            "media.tcp_send_buffer",
            "must be from 4096 to 67108864 bytes",
        ));
    }
    Ok(())
}

fn auth(config: &Config, source: &Source<'_>) -> Result<(), ConfigError> {
    let auth = &config.auth;
    match auth.algorithm {
        JwtAlgorithm::Hs256 => match &auth.jwt_secret_file {
            Some(path) => readable(source, "auth.jwt_secret_file", path)?,
            None if std::env::var_os(JWT_SECRET_ENV).is_some() => {}
            None => {
                return Err(source.error_near(
                    "auth.jwt_secret_file",
                    "auth.algorithm",
                    format!(
                        "algorithm HS256 needs a secret: set jwt_secret_file or {JWT_SECRET_ENV}"
                    ),
                ))
            }
        },
        JwtAlgorithm::EdDsa | JwtAlgorithm::Es256 => {
            if auth.public_key_files.is_empty() {
                return Err(source.error_near(
                    "auth.public_key_files",
                    "auth.algorithm",
                    "algorithms EdDSA and ES256 need at least one public key file",
                ));
            }
            if let Some(path) = &auth.jwt_secret_file {
                readable(source, "auth.jwt_secret_file", path)?;
            }
        }
    }
    for path in &auth.public_key_files {
        readable(source, "auth.public_key_files", path)?;
    }
    if let Some(path) = &auth.admin_token_file {
        readable(source, "auth.admin_token_file", path)?;
    }
    if let Some(url) = &auth.webhook_url {
        // The URL is not echoed: it may carry credentials.
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        match rest {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
            _ => {
                return Err(source.error(
                    "auth.webhook_url",
                    "must be an http:// or https:// URL with a host",
                ))
            }
        }
    }
    if auth.webhook_timeout.is_zero() {
        return Err(source.error("auth.webhook_timeout", "must be longer than 0s"));
    }
    Ok(())
}

/// The file can be opened and read and is not empty. Its contents never leave this function.
fn readable(source: &Source<'_>, field: &str, path: &Path) -> Result<(), ConfigError> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {
            Err(source.error(field, format!("{} is empty", path.display())))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(source.error(field, format!("cannot read {}: {e}", path.display()))),
    }
}

fn limits(config: &Config, source: &Source<'_>) -> Result<(), ConfigError> {
    let l = &config.limits;
    let fields = [
        ("limits.sessions_per_ip", u64::from(l.sessions_per_ip)),
        (
            "limits.requests_per_minute",
            u64::from(l.requests_per_minute),
        ),
        ("limits.max_body_bytes", l.max_body_bytes),
        (
            "limits.max_subscribers_per_stream",
            u64::from(l.max_subscribers_per_stream),
        ),
    ];
    for (field, value) in fields {
        if value == 0 {
            return Err(source.error(field, "must be at least 1"));
        }
    }
    if l.max_body_bytes < 4096 {
        return Err(source.error(
            "limits.max_body_bytes",
            "must be at least 4096: SDP offers are several KB",
        ));
    }
    Ok(())
}
