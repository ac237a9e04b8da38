//! `tern-load`: load a WHIP/WHEP server with synthetic media and report latency, loss and the
//! relay's CPU cost per egress packet. See `tern_bench::load` and `tern-load --help`.

use std::process::ExitCode;

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
    let report = match load::run(&parsed.config) {
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
    let mut status = if report.all_ok() {
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
