//! `tern-load`: load a WHIP/WHEP server with synthetic media and report latency, loss and the
//! relay's CPU cost per egress packet. See `tern_bench::load` and `tern-load --help`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tern_bench::load::{self, cli};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match cli::parse(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tern-load: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    if parsed.help {
        println!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    // Ctrl-C ends the measurement early (sessions are still deleted and the report written);
    // a second Ctrl-C exits at once.
    let mut config = parsed.config.clone();
    let interrupt = Arc::new(AtomicBool::new(false));
    config.interrupt = Some(Arc::clone(&interrupt));
    watch_ctrl_c(interrupt);
    let report = match load::run(&config) {
        Ok(r) => r,
        Err(load::LoadError::Config(e)) => {
            eprintln!("tern-load: {e}\n(try tern-load --help)");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("tern-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", report.summary());
    let mut status = if report.all_ok() && !report.interrupted {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if let Some(path) = &parsed.json {
        match load::write_json(&report, path) {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => {
                eprintln!("tern-load: --json {}: {e}", path.display());
                status = ExitCode::FAILURE;
            }
        }
    }
    if let Some(path) = &parsed.html {
        match load::write_html(&report, path) {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => {
                eprintln!("tern-load: --html {}: {e}", path.display());
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}

fn watch_ctrl_c(flag: Arc<AtomicBool>) {
    let _ = std::thread::Builder::new()
        .name("tern-load-signal".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!(
                        "\ntern-load: interrupted; stopping and reporting (Ctrl-C again to quit)"
                    );
                    flag.store(true, Ordering::Relaxed);
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(130);
                    }
                }
            });
        });
}
