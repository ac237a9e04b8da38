//! The `tern` command line: `tern serve` (the relay, with systemd's notify protocol, SIGTERM
//! drain and SIGHUP reload), `tern check-config`, `tern token`, `tern version`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::SignalKind;

use tern::config::{Config, DEFAULT_PATH};
use tern::control::notify::{self, Notifier};

const USAGE: &str = "usage: tern <command>
  serve [--config FILE]   run the relay (no --config: built-in defaults on 127.0.0.1)
  check-config [FILE]     validate a config file (default /etc/tern/tern.toml)
  token --room R [--stream S] [--publish] [--subscribe] [--identity I] [--ttl 1h] [--config F]
                          mint an access token (HS256 secret from TERN_JWT_SECRET or the config);
                          prints only the token
  version                 print the version
  help                    print this help";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `tern <command> --help` (or -h) prints the usage, like `tern help`.
    if args.len() > 1 && args[1..].iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("check-config") => check_config(&args[1..]),
        Some("token") => token(&args[1..]),
        Some("version") | Some("--version") | Some("-V") => {
            println!("tern {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("help") | Some("--help") | Some("-h") | None => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("tern: unknown command '{other}' (try 'tern help')");
            ExitCode::from(2)
        }
    }
}

/// `serve [--config FILE | --config=FILE]`: `None` means the built-in defaults.
fn parse_serve_args(args: &[String]) -> Result<Option<PathBuf>, String> {
    let mut config = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--config" || arg == "-c" {
            let path = rest.next().ok_or("--config needs a file name")?;
            config = Some(PathBuf::from(path));
        } else if let Some(path) = arg.strip_prefix("--config=") {
            config = Some(PathBuf::from(path));
        } else {
            return Err(format!("serve: unknown argument '{arg}'"));
        }
    }
    Ok(config)
}

fn serve(args: &[String]) -> ExitCode {
    let path = match parse_serve_args(args) {
        Ok(path) => path,
        Err(e) => {
            eprintln!("tern: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let quick_start = path.is_none();
    let (config, origin) = match &path {
        Some(path) => match Config::load(path) {
            Ok(config) => (config, path.display().to_string()),
            Err(e) => {
                eprintln!("tern: refusing to start: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => (Config::default(), "built-in defaults".to_string()),
    };
    eprintln!("tern: config ok ({origin})");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("tern-slow")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tern: cannot start the async runtime: {e}");
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
                eprintln!("tern: cannot start: {e}");
                return ExitCode::FAILURE;
            }
        };
        eprintln!(
            "tern: serving ({origin}): http://{} media {} worker(s) from {}",
            server.http_addr,
            server.relay.dp.worker_count(),
            server.relay.dp.local_addr(0)
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
            tokio::signal::unix::signal(kind).map_err(|e| eprintln!("tern: cannot watch signals: {e}"))
        };
        let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
            return ExitCode::FAILURE;
        };
        let notifier = match Notifier::from_env() {
            Ok(n) => n.map(Arc::new),
            Err(e) => {
                eprintln!("tern: NOTIFY_SOCKET: {e}; not talking to the service manager");
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
                    eprintln!("tern: SIGTERM: draining for up to {drain_timeout:?}");
                    notify(&notifier, "STOPPING=1\nSTATUS=draining");
                    server.drain(drain_timeout).await;
                    server.stop().await;
                    eprintln!("tern: drained; exiting");
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
                        Err(e) => eprintln!("tern: SIGHUP: keeping the running config: {e}"),
                    }
                    notify(&notifier, "READY=1\nSTATUS=serving");
                }
                _ = dead_check.tick() => {
                    let dead = server.relay.dp.dead_workers();
                    if !dead.is_empty() {
                        eprintln!("tern: worker(s) {dead:?} stopped unexpectedly (panic); exiting so the service manager restarts us");
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
            eprintln!("tern: sd_notify: {e}");
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
                            eprintln!("tern: withholding the watchdog ping: {why}");
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
    eprintln!("tern: SIGHUP: reloaded auth and limits from {origin}; live sessions kept");
    if !restart.is_empty() {
        eprintln!(
            "tern: SIGHUP: changes to {} take effect only after a restart",
            restart.join(", ")
        );
    }
    Ok(config.drain_timeout())
}

fn check_config(args: &[String]) -> ExitCode {
    let path = match args {
        [] => PathBuf::from(DEFAULT_PATH),
        [path] => PathBuf::from(path),
        _ => {
            eprintln!("tern: check-config takes one file name\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match Config::load(&path) {
        Ok(_) => {
            println!("ok: {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `tern token …`: prints only the token on stdout.
fn token(args: &[String]) -> ExitCode {
    use tern::control::auth::{mint_from_config, TokenArgs};
    let mut t = TokenArgs {
        room: String::new(),
        stream: None,
        publish: false,
        subscribe: false,
        identity: None,
        ttl: std::time::Duration::from_secs(3600),
    };
    let mut config_path = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let r = match arg.as_str() {
            "--room" => value("--room").map(|v| t.room = v),
            "--stream" => value("--stream").map(|v| t.stream = Some(v)),
            "--identity" => value("--identity").map(|v| t.identity = Some(v)),
            "--publish" => {
                t.publish = true;
                Ok(())
            }
            "--subscribe" => {
                t.subscribe = true;
                Ok(())
            }
            "--ttl" => value("--ttl").and_then(|v| {
                humantime::parse_duration(&v)
                    .map(|d| t.ttl = d)
                    .map_err(|e| format!("--ttl {v}: {e}"))
            }),
            "--config" | "-c" => value("--config").map(|v| config_path = Some(PathBuf::from(v))),
            other => Err(format!("token: unknown argument '{other}'")),
        };
        if let Err(e) = r {
            eprintln!("tern: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let config = match &config_path {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tern: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => Config::default(),
    };
    match mint_from_config(&config, &t) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tern: token: {e}");
            ExitCode::FAILURE
        }
    }
}
