//! The `tern` command line: `tern serve` runs the relay (not built yet), `tern version`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("serve") => {
            eprintln!(
                "tern: serving is not built yet (the datapath and signalling issues add it); \
                 this build holds the wire formats and the SRTP engine"
            );
            ExitCode::from(2)
        }
        Some("version") | Some("--version") | Some("-V") => {
            println!("tern {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("help") | Some("--help") | Some("-h") | None => {
            println!("usage: tern <serve|version|help>");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("tern: unknown command '{other}' (try 'tern help')");
            ExitCode::from(2)
        }
    }
}
