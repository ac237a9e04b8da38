//! The `tern` command line: `tern serve` (loads and checks the config; the server itself is not
//! built yet), `tern check-config`, `tern version`.

use std::path::PathBuf;
use std::process::ExitCode;

use tern::config::{Config, DEFAULT_PATH};

const USAGE: &str = "usage: tern <command>
  serve [--config FILE]   run the relay (no --config: built-in defaults on 127.0.0.1)
  check-config [FILE]     validate a config file (default /etc/tern/tern.toml)
  version                 print the version
  help                    print this help";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("check-config") => check_config(&args[1..]),
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
    eprintln!(
        "tern: config ok ({origin}): http {}, media {}:{} x{} workers",
        config.http.listen,
        config.media.bind,
        config.media.port_base,
        config.worker_count()
    );
    eprintln!(
        "tern: serving is not built yet (the datapath and signalling issues add it); \
         this build holds the wire formats, the SRTP engine and the config"
    );
    ExitCode::from(2)
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
