//! Starting the whole relay: datapath, DTLS identity, auth, the HTTP server and the background
//! tasks (datapath events, token expiry and revocation, webhook re-checks, drain).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::auth::{AuthSetupError, TokenMinter, TokenVerifier, Webhook};
use super::cluster::Cluster;
use super::dtls::DtlsIdentity;
use super::http;
use super::relay::{Policy, Relay, RelaySettings};
use crate::config::{Config, JwtAlgorithm};
use crate::datapath::{Datapath, DatapathConfig};

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The datapath could not start.
    #[error("datapath: {0}")]
    Datapath(#[from] crate::datapath::DatapathError),
    /// The HTTP listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// Keys, certificate or secrets could not be set up.
    #[error("{0}")]
    Setup(String),
}

/// A running relay.
#[derive(Debug)]
pub struct RunningServer {
    /// Where HTTP listens.
    pub http_addr: SocketAddr,
    /// The slow path's state.
    pub relay: Arc<Relay>,
    /// Mints tokens with the relay's HS256 secret (when it has one).
    pub minter: Option<TokenMinter>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    cluster_task: Option<tokio::task::JoinHandle<()>>,
    /// The config in force (start-time parts plus what reloads replaced).
    started: std::sync::Mutex<Config>,
}

impl RunningServer {
    /// Stops accepting, ends every session and waits for the HTTP server.
    pub async fn stop(self) {
        let _ = self.relay.stopping.send(true);
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        if let Some(t) = self.cluster_task {
            let _ = t.await;
        }
        // A clean stop: this node's record and streams leave the cluster now, not at lease end.
        if let Some(cluster) = &self.relay.settings.cluster {
            cluster.leave().await;
        }
    }

    /// Reloads what may change while sessions flow (auth keys, webhook, admin token, limits)
    /// from `config`. On error nothing changes. Returns the fields that differ from the running
    /// config but only take effect on restart.
    pub fn reload(
        &self,
        config: &Config,
        fallback_secret: Option<Vec<u8>>,
    ) -> Result<Vec<&'static str>, StartError> {
        let (policy, _) = policy(config, fallback_secret)?;
        self.relay.set_policy(policy);
        let mut started = self.started.lock().unwrap_or_else(|p| p.into_inner());
        let mut restart = Vec::new();
        if started.http != config.http {
            restart.push("http");
        }
        if started.media != config.media {
            restart.push("media");
        }
        if started.limits.max_body_bytes != config.limits.max_body_bytes {
            restart.push("limits.max_body_bytes");
        }
        if started.log != config.log {
            restart.push("log");
        }
        if started.cluster != config.cluster {
            restart.push("cluster");
        }
        // Everything is now in force but the parts listed above, which wait for a restart.
        let mut next = config.clone();
        next.http = started.http.clone();
        next.media = started.media.clone();
        next.limits.max_body_bytes = started.limits.max_body_bytes;
        next.log = started.log.clone();
        next.cluster = started.cluster.clone();
        *started = next;
        Ok(restart)
    }

    /// Drains: `/readyz` turns false and new sessions get 503; returns when every session has
    /// ended or `timeout` passed.
    pub async fn drain(&self, timeout: Duration) {
        self.relay.draining.store(true, Ordering::Relaxed);
        if let Some(cluster) = &self.relay.settings.cluster {
            // No new sessions are placed here; room feeds tell their clients to go elsewhere.
            cluster.set_draining().await;
            self.relay.announce_reconnect();
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self
                .relay
                .registry
                .lock()
                .map(|r| r.client_sessions() == 0)
                .unwrap_or(true)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The HS256 secret: `TERN_JWT_SECRET`, else the config's secret file, else `fallback`.
pub fn jwt_secret(
    config: &Config,
    fallback: Option<Vec<u8>>,
) -> Result<Option<Vec<u8>>, StartError> {
    if let Ok(s) = std::env::var(crate::config::JWT_SECRET_ENV) {
        if !s.is_empty() {
            return Ok(Some(s.into_bytes()));
        }
    }
    if let Some(path) = &config.auth.jwt_secret_file {
        let bytes = std::fs::read(path).map_err(|e| {
            StartError::Setup(format!("auth.jwt_secret_file {}: {e}", path.display()))
        })?;
        let trimmed = String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec();
        return Ok(Some(trimmed));
    }
    Ok(fallback)
}

/// The auth and limits part of `config`: token verifier (and, for HS256, a minter with the same
/// secret), webhook, admin token, limits. Reads the key and secret files.
pub fn policy(
    config: &Config,
    fallback_secret: Option<Vec<u8>>,
) -> Result<(Policy, Option<TokenMinter>), StartError> {
    let setup = |e: AuthSetupError| StartError::Setup(format!("auth: {e}"));
    let (verifier, minter) = match config.auth.algorithm {
        JwtAlgorithm::Hs256 => {
            let secret = jwt_secret(config, fallback_secret)?.ok_or_else(|| {
                StartError::Setup("auth: HS256 needs jwt_secret_file or TERN_JWT_SECRET".into())
            })?;
            (
                TokenVerifier::hs256(secret.clone()).map_err(setup)?,
                Some(TokenMinter::hs256(secret).map_err(setup)?),
            )
        }
        _ => (
            TokenVerifier::from_config(&config.auth).map_err(setup)?,
            None,
        ),
    };
    let webhook = Webhook::from_config(&config.auth)
        .map_err(|e| StartError::Setup(format!("auth.webhook_url: {e}")))?;
    let admin_token = match &config.auth.admin_token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| {
                    StartError::Setup(format!("auth.admin_token_file {}: {e}", p.display()))
                })?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let policy = Policy {
        webhook,
        admin_token,
        sessions_per_ip: config.limits.sessions_per_ip as usize,
        max_subscribers_per_stream: config.limits.max_subscribers_per_stream as usize,
        requests_per_minute: config.limits.requests_per_minute,
        ..Policy::new(verifier)
    };
    Ok((policy, minter))
}

/// Debug builds only: `TERN_FAULT_PANIC_WORKER=W:DURATION` makes worker W panic after
/// DURATION, so tests can watch the process notice a dead worker. Release builds: never.
fn injected_worker_panic() -> Option<(usize, Duration)> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let v = std::env::var("TERN_FAULT_PANIC_WORKER").ok()?;
    let (w, d) = v.split_once(':')?;
    Some((w.parse().ok()?, humantime::parse_duration(d).ok()?))
}

/// Starts the relay described by `config`. `fallback_secret` is used for HS256 when neither the
/// environment nor the config names a secret (the no-config quick start passes a random one).
pub async fn start(
    config: &Config,
    fallback_secret: Option<Vec<u8>>,
) -> Result<RunningServer, StartError> {
    super::dtls::install_crypto_provider();
    let dp_config = DatapathConfig {
        panic_after: injected_worker_panic(),
        ..config.datapath()
    };
    let dp = Arc::new(Datapath::start(dp_config)?);
    let identity = match DtlsIdentity::from_config(config) {
        Ok(Some(loaded)) => loaded,
        Ok(None) => DtlsIdentity::generate()
            .map_err(|e| StartError::Setup(format!("DTLS certificate: {e}")))?,
        Err((field, reason)) => return Err(StartError::Setup(format!("{field}: {reason}"))),
    };
    let identity = Arc::new(identity);
    let (policy, minter) = policy(config, fallback_secret)?;
    let listener = TcpListener::bind(config.http.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.http.listen,
            source,
        })?;
    let http_addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.http.listen,
        source,
    })?;
    let cluster = match &config.cluster {
        Some(c) => {
            let media_ip = config
                .media
                .advertised_address
                .unwrap_or_else(|| dp.local_addr(0).ip());
            Some(Cluster::new(c, http_addr, media_ip).map_err(StartError::Setup)?)
        }
        None => None,
    };
    let settings = RelaySettings {
        advertised: config.media.advertised_address,
        cluster: cluster.clone(),
        pause_below_lowest: config.media.below_lowest_layer
            == crate::config::BelowLowestLayer::Pause,
        ..RelaySettings::default()
    };
    let relay = Relay::new(dp, identity, policy, settings);

    // Datapath events arrive on a crossbeam channel: a plain thread forwards them.
    {
        let relay = Arc::clone(&relay);
        let events = relay.dp.events().clone();
        std::thread::Builder::new()
            .name("tern-events".into())
            .spawn(move || {
                while let Ok(ev) = events.recv() {
                    relay.on_event(ev);
                }
            })
            .map_err(|e| StartError::Setup(format!("event thread: {e}")))?;
    }
    let (shutdown, mut stop_rx) = watch::channel(false);
    // Token expiry and revocation end media within a second; the webhook is asked again.
    {
        let relay = Arc::clone(&relay);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let mut last_recheck = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => break,
                }
                relay.expire_sessions(SystemTime::now());
                if let Some(every) = relay.settings.webhook_recheck {
                    if last_recheck.elapsed() >= every {
                        last_recheck = tokio::time::Instant::now();
                        relay.recheck_webhook().await;
                    }
                }
            }
        });
    }
    // The cluster: lease, node record, watch (changes go to the relay).
    let cluster_task = cluster.map(|cluster| {
        let (r1, r2, r3) = (Arc::clone(&relay), Arc::clone(&relay), Arc::clone(&relay));
        tokio::spawn(super::cluster::run(
            cluster,
            move || r1.registry.lock().map_or(0, |r| r.client_sessions() as u32),
            move || r2.originated(),
            move |change| r3.on_cluster_change(change),
            stop_rx.clone(),
        ))
    });
    let max_body = usize::try_from(config.limits.max_body_bytes).unwrap_or(usize::MAX);
    let app = http::router(Arc::clone(&relay), max_body);
    let task = tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.changed().await;
            })
            .await;
    });
    Ok(RunningServer {
        http_addr,
        relay,
        minter,
        shutdown,
        task,
        cluster_task,
        started: std::sync::Mutex::new(config.clone()),
    })
}
