//! `tern-load`: a WHIP/WHEP load generator that speaks the standard protocol, so it can load any
//! WHIP/WHEP server, not only Tern.
//!
//! [`run`] plans the sessions of a [`Scenario`] (`plan`), brings publishers up first and
//! subscribers after them (`session`: signalling, ICE, DTLS on a small tokio runtime, a bounded
//! number at a time), then hands the connected sockets to plain threads: sender threads that
//! pace synthetic media (`media`) and receiver threads that measure it (`receiver`). After a
//! warm-up it measures for the configured duration, stops the publishers, waits a moment for
//! late packets and retransmissions, ends every session with DELETE and returns a [`Report`]
//! (`report`, `html`).
//!
//! It never hangs on a bad server: every phase has a deadline, and a session that fails is
//! reported with its phase and reason instead of stopping the run.

pub mod cli;
mod html;
pub mod media;
mod plan;
mod progress;
pub mod receiver;
pub mod report;
mod run;
pub mod sdp;
pub mod session;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tern::srtp::Profile;

use media::MediaShape;
pub use plan::Scenario;
pub use progress::Progress;
pub use report::{Failure, Report};
pub use run::run;

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Server base URL, e.g. `http://127.0.0.1:8080`, or a comma-separated list of a cluster's
    /// nodes: sessions are spread over them in turn.
    pub url: String,
    /// Where subscribers go instead (a list too), e.g. the edges of a cluster while publishers
    /// go to the origin.
    pub subscribe_url: Option<String>,
    /// Bearer token for every session.
    pub token: String,
    /// Which sessions.
    pub scenario: Scenario,
    /// Signalling room (default `load`).
    pub room: String,
    /// What each publisher sends.
    pub media: MediaShape,
    /// Measurement duration (default 20 s).
    pub duration: Duration,
    /// Time between all sessions being up and the measurement starting (default 1 s).
    pub warmup: Duration,
    /// SRTP profile offered (default AES-128-GCM).
    pub profile: Profile,
    /// Deadline of each setup phase and of the first media packet (default 10 s).
    pub connect_timeout: Duration,
    /// Sessions set up at once (default 16).
    pub setup_concurrency: usize,
    /// Receiver threads (default 1).
    pub rx_threads: usize,
    /// Sender threads (default 1).
    pub tx_threads: usize,
    /// Relay process whose CPU time is read from `/proc`.
    pub relay_pid: Option<u32>,
    /// Fraction of received RTP datagrams the subscribers drop on purpose (0 to 0.5), to
    /// exercise NACK and retransmission (default 0).
    pub simulate_loss: f64,
    /// Live progress.
    pub progress: Progress,
    /// When set (e.g. by a Ctrl-C handler), the measurement ends early and the run reports
    /// what it has, marked as interrupted.
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            url: "http://127.0.0.1:8080".into(),
            subscribe_url: None,
            token: String::new(),
            scenario: Scenario::Broadcast {
                publishers: 1,
                subscribers: 10,
            },
            room: "load".into(),
            media: MediaShape::default(),
            duration: Duration::from_secs(20),
            warmup: Duration::from_secs(1),
            profile: Profile::AeadAes128Gcm,
            connect_timeout: Duration::from_secs(10),
            setup_concurrency: 16,
            rx_threads: 1,
            tx_threads: 1,
            relay_pid: None,
            simulate_loss: 0.0,
            progress: Progress::Auto,
            interrupt: None,
        }
    }
}

/// Why a run could not happen at all (session failures are in the [`Report`] instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The configuration is unusable; the text names the option.
    #[error("{0}")]
    Config(String),
    /// A local resource (runtime, thread, socket poller, certificate) could not be set up.
    #[error("{0}")]
    Setup(String),
}

/// The URLs of a comma-separated list (at least one entry: an empty list is one empty URL,
/// which validation refuses).
pub fn url_list(list: &str) -> Vec<String> {
    let urls: Vec<String> = list
        .split(',')
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        vec![String::new()]
    } else {
        urls
    }
}

/// Checks the configuration before anything connects.
pub fn validate(cfg: &LoadConfig) -> Result<(), LoadError> {
    let bad = |m: &str| Err(LoadError::Config(m.to_string()));
    let lists = [Some(&cfg.url), cfg.subscribe_url.as_ref()];
    for url in lists.into_iter().flatten().flat_map(|l| url_list(l)) {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return bad("--url and --subscribe-url take http:// or https:// URLs");
        }
    }
    if cfg.token.trim().is_empty() {
        return bad("--token is required (e.g. $(tern token --room load --publish --subscribe))");
    }
    let sizes_ok = match cfg.scenario {
        Scenario::Broadcast {
            publishers,
            subscribers,
        } => publishers > 0 && subscribers > 0,
        Scenario::Conference { participants } => participants >= 2,
        Scenario::AudioRooms {
            rooms,
            participants,
        } => rooms > 0 && participants >= 2,
    };
    if !sizes_ok {
        return bad("the scenario needs at least one publisher and one subscriber (conference and audio-rooms: --participants 2 or more)");
    }
    if cfg.media.kinds().is_empty() && !matches!(cfg.scenario, Scenario::AudioRooms { .. }) {
        return bad("nothing to send: --no-audio with --video 0");
    }
    if cfg.duration.is_zero() {
        return bad("--duration must be more than 0");
    }
    if !(0.0..=0.5).contains(&cfg.simulate_loss) {
        return bad("--simulate-loss must be from 0 to 0.5");
    }
    if cfg.connect_timeout.is_zero() {
        return bad("--connect-timeout must be more than 0");
    }
    if cfg.room.is_empty() || cfg.room.contains(['/', '?', '#', ' ']) {
        return bad("--room must be a non-empty name without '/', '?', '#' or spaces");
    }
    if let Some(pid) = cfg.relay_pid {
        if relay_cpu_ns(pid).is_none() {
            return Err(LoadError::Config(format!(
                "--relay-pid {pid}: cannot read /proc/{pid}/stat (no such process?)"
            )));
        }
    }
    Ok(())
}

/// CPU time (user + system) of process `pid` in ns, from `/proc/PID/stat`.
pub fn relay_cpu_ns(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // After ')': state is field 3, utime 14, stime 15 (1-based in proc(5)).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&v| v > 0)
        .unwrap_or(100) as u64;
    Some((utime + stime) * (1_000_000_000 / hz))
}

/// Writes the JSON report to `path`.
pub fn write_json(report: &Report, path: &PathBuf) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(&report.to_json()).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")
}

/// Writes the HTML report to `path`.
pub fn write_html(report: &Report, path: &PathBuf) -> std::io::Result<()> {
    std::fs::write(path, report.to_html())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configs_are_refused_with_the_option_named() {
        let cfg = LoadConfig::default();
        assert!(validate(&cfg).unwrap_err().to_string().contains("--token"));
        let cfg = LoadConfig {
            token: "t".into(),
            url: "127.0.0.1:8080".into(),
            ..LoadConfig::default()
        };
        assert!(validate(&cfg).unwrap_err().to_string().contains("--url"));
        let cfg = LoadConfig {
            token: "t".into(),
            relay_pid: Some(u32::MAX - 1),
            ..LoadConfig::default()
        };
        assert!(validate(&cfg)
            .unwrap_err()
            .to_string()
            .contains("--relay-pid"));
    }

    #[test]
    fn url_lists_are_split_and_each_entry_checked() {
        assert_eq!(
            url_list("http://a:1/, http://b:2"),
            vec!["http://a:1".to_string(), "http://b:2".to_string()]
        );
        assert_eq!(url_list(""), vec![String::new()]);
        let cfg = LoadConfig {
            token: "t".into(),
            url: "http://a:1,http://b:2".into(),
            subscribe_url: Some("http://c:3,d:4".into()),
            ..LoadConfig::default()
        };
        assert!(validate(&cfg)
            .unwrap_err()
            .to_string()
            .contains("--subscribe-url"));
        let cfg = LoadConfig {
            subscribe_url: Some("http://c:3".into()),
            ..cfg
        };
        assert!(validate(&cfg).is_ok());
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(relay_cpu_ns(std::process::id()).is_some());
    }
}
