//! The `tern` command line: `tern serve` (the relay, with systemd's notify protocol, SIGTERM
//! drain and SIGHUP reload), `tern check-config`, `tern token`, `tern version`,
//! `tern completions <shell>`. Parsing is `tern::cli` (clap); `serve` logs through `tracing`
//! (`tern::logging`), the other commands print their result on stdout and their error on stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::signal::unix::SignalKind;
use tracing::{error, info, warn};

use tern::cli::{Cli, Commands, TokenCommand};
use tern::config::{Config, LogConfig};
use tern::control::notify::{self, Notifier};

fn main() -> ExitCode {
    match Cli::parse().command {
        Commands::Serve { config } => serve(config),
        Commands::CheckConfig { file } => check_config(file),
        Commands::Token(t) => token(t),
        Commands::Version => print(format!("tern {}\n", env!("CARGO_PKG_VERSION")).as_bytes()),
        Commands::Completions { shell } => print(&tern::cli::completions(shell)),
        Commands::Man { dir } => match tern::cli::man_pages(&dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("tern: {}: {e}", dir.display())),
        },
    }
}

/// Writes a command's output to stdout.
fn print(bytes: &[u8]) -> ExitCode {
    match std::io::stdout().write_all(bytes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// A command's error on stderr (a result, not a log line).
fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "{message}");
    ExitCode::FAILURE
}

fn serve(path: Option<PathBuf>) -> ExitCode {
    let quick_start = path.is_none();
    let (config, origin) = match &path {
        Some(path) => match Config::load(path) {
            Ok(config) => (config, path.display().to_string()),
            Err(e) => {
                tern::logging::init(&LogConfig::default());
                error!("refusing to start: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => (Config::default(), "built-in defaults".to_string()),
    };
    tern::logging::init(&config.log);
    info!(%origin, "config ok");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("tern-slow")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        // The quick start signs tokens with a random secret unless TERN_JWT_SECRET is set.
        let fallback = quick_start.then(|| {
            use rand::RngCore;
            let mut s = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut s);
            s.to_vec()
        });
        let server = match tern::control::server::start(&config, fallback.clone()).await {
            Ok(s) => s,
            Err(e) => {
                error!("cannot start: {e}");
                return ExitCode::FAILURE;
            }
        };
        info!(
            %origin,
            http = %format_args!("http://{}", server.http_addr),
            workers = server.relay.dp.worker_count(),
            media = %server.relay.dp.local_addr(0),
            io_mode = server.relay.dp.stats(0).io_mode,
            "serving"
        );
        if quick_start {
            if let Some(minter) = &server.minter {
                let token = minter.mint("demo", None, true, true, "demo-user", Duration::from_secs(12 * 3600));
                println!(
                    "Open this link in two browser tabs to see them talk (valid 12 h):\n  http://{}/?room=demo&token={token}&autojoin=1",
                    server.http_addr
                );
            }
        }
        let mut drain_timeout = config.drain_timeout();
        let signal = |kind: SignalKind| {
            tokio::signal::unix::signal(kind).map_err(|e| error!("cannot watch signals: {e}"))
        };
        let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
            return ExitCode::FAILURE;
        };
        let notifier = match Notifier::from_env() {
            Ok(n) => n.map(Arc::new),
            Err(e) => {
                warn!("NOTIFY_SOCKET: {e}; not talking to the service manager");
                None
            }
        };
        // HTTP listens and `start` waited for every worker: ready.
        notify(&notifier, "READY=1\nSTATUS=serving");
        if let Some(n) = &notifier {
            tokio::spawn(report_health(Arc::clone(n), Arc::clone(&server.relay)));
        }
        let mut dead_check = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = term.recv() => {
                    info!(timeout = ?drain_timeout, "SIGTERM: draining");
                    notify(&notifier, "STOPPING=1\nSTATUS=draining");
                    server.drain(drain_timeout).await;
                    server.stop().await;
                    info!("drained; exiting");
                    return ExitCode::SUCCESS;
                }
                _ = tokio::signal::ctrl_c() => {
                    server.stop().await;
                    return ExitCode::SUCCESS;
                }
                _ = hup.recv() => {
                    notify(&notifier, "RELOADING=1");
                    match reload(&server, path.as_deref(), fallback.clone()) {
                        Ok(new_drain) => drain_timeout = new_drain,
                        Err(e) => error!("SIGHUP: keeping the running config: {e}"),
                    }
                    notify(&notifier, "READY=1\nSTATUS=serving");
                }
                _ = dead_check.tick() => {
                    let dead = server.relay.dp.dead_workers();
                    if !dead.is_empty() {
                        error!(workers = ?dead, "worker(s) {dead:?} stopped unexpectedly (panic); exiting so the service manager restarts us");
                        return ExitCode::from(70);
                    }
                }
            }
        }
    })
}

fn notify(notifier: &Option<Arc<Notifier>>, message: &str) {
    if let Some(n) = notifier {
        if let Err(e) = n.send(message) {
            warn!("sd_notify: {e}");
        }
    }
}

/// `WATCHDOG=1` while every worker makes progress (at half of `WatchdogSec`), `STATUS=` with
/// sessions and packet rates every two seconds. Runs through the drain too.
async fn report_health(notifier: Arc<Notifier>, relay: Arc<tern::control::relay::Relay>) {
    let watchdog = notify::watchdog_interval();
    let mut meter = notify::RateMeter::default();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_ping: Option<tokio::time::Instant> = None;
    let mut last_status: Option<tokio::time::Instant> = None;
    let mut withheld = false;
    loop {
        tick.tick().await;
        let now = tokio::time::Instant::now();
        if let Some(every) = watchdog {
            if last_ping.is_none_or(|t| now - t >= every) {
                match notify::datapath_healthy(&relay.dp) {
                    Ok(()) => {
                        let _ = notifier.send("WATCHDOG=1");
                        last_ping = Some(now);
                        withheld = false;
                    }
                    Err(why) => {
                        if !withheld {
                            warn!("withholding the watchdog ping: {why}");
                            withheld = true;
                        }
                    }
                }
            }
        }
        if last_status.is_none_or(|t| now - t >= Duration::from_secs(2)) {
            last_status = Some(now);
            let sessions = relay.registry.lock().map(|r| r.sessions.len()).unwrap_or(0);
            let c = relay.dp.total_counters();
            let status = meter.status(sessions, c.packets_in, c.packets_out);
            let _ = notifier.send(&format!("STATUS={status}"));
        }
    }
}

/// SIGHUP: re-reads the config (or the defaults) and swaps in its auth and limits. Returns the
/// new drain timeout; on any error the running config stays.
fn reload(
    server: &tern::control::server::RunningServer,
    path: Option<&std::path::Path>,
    fallback: Option<Vec<u8>>,
) -> Result<Duration, String> {
    let config = match path {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    let restart = server
        .reload(&config, fallback)
        .map_err(|e| e.to_string())?;
    let origin = path.map_or("built-in defaults".into(), |p| p.display().to_string());
    info!(%origin, "SIGHUP: reloaded auth and limits; live sessions kept");
    if !restart.is_empty() {
        warn!(
            "SIGHUP: changes to {} take effect only after a restart",
            restart.join(", ")
        );
    }
    Ok(config.drain_timeout())
}

fn check_config(path: PathBuf) -> ExitCode {
    match Config::load(&path) {
        Ok(_) => print(format!("ok: {}\n", path.display()).as_bytes()),
        Err(e) => fail(&e.to_string()),
    }
}

/// `tern token …`: prints only the token on stdout.
fn token(t: TokenCommand) -> ExitCode {
    use tern::control::auth::{mint_from_config, TokenArgs};
    let config = match &t.config {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => return fail(&format!("tern: {e}")),
        },
        None => Config::default(),
    };
    let args = TokenArgs {
        room: t.room,
        stream: t.stream,
        publish: t.publish,
        subscribe: t.subscribe,
        identity: t.identity,
        ttl: t.ttl,
    };
    match mint_from_config(&config, &args) {
        Ok(token) => print(format!("{token}\n").as_bytes()),
        Err(e) => fail(&format!("tern: token: {e}")),
    }
}
