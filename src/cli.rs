//! The `tern` command line as `clap` types: `serve`, `check-config`, `token`, `version`,
//! `completions <shell>` and the hidden `man DIR`, which writes the man pages (`tern.1` and one
//! per subcommand, `tern-serve.1` …) that the `.deb` installs from `man/`, where they are
//! committed; `tests/cli-man-page.rs` fails when they differ from what `tern man` writes.
//!
//! Parsing only: `src/main.rs` runs the commands. Usage errors exit 2 with clap's message.

use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::DEFAULT_PATH;

/// Tern: a self-hosted, thread-per-core WebRTC media relay (WHIP/WHEP SFU).
#[derive(Debug, Parser)]
#[command(
    name = "tern",
    version,
    arg_required_else_help = true,
    after_help = "Logging: [log] level and format in the config; RUST_LOG (an EnvFilter directive) \
                  overrides the level."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Commands,
}

/// `tern <command>`.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Run the relay (no --config: built-in defaults on 127.0.0.1 and a demo link).
    Serve {
        /// The config file.
        #[arg(short, long, value_name = "FILE", env = "TERN_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Validate a config file: prints `ok: FILE`, or `FILE:LINE: field: reason` and exits 1.
    CheckConfig {
        /// The config file.
        #[arg(value_name = "FILE", env = "TERN_CONFIG", default_value = DEFAULT_PATH)]
        file: PathBuf,
    },
    /// Mint an access token (HS256 secret from TERN_JWT_SECRET or the config); prints only the
    /// token.
    Token(TokenCommand),
    /// Print the version.
    Version,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (roff) into DIR.
    #[command(hide = true)]
    Man {
        /// Where to write `tern.1` and `tern-<command>.1`.
        dir: PathBuf,
    },
}

/// `tern token …`.
#[derive(Debug, clap::Args)]
pub struct TokenCommand {
    /// The room the token admits to.
    #[arg(long, value_name = "R")]
    pub room: String,
    /// Only this stream of the room (default: any).
    #[arg(long, value_name = "S")]
    pub stream: Option<String>,
    /// Grant publishing (WHIP).
    #[arg(long)]
    pub publish: bool,
    /// Grant subscribing (WHEP).
    #[arg(long)]
    pub subscribe: bool,
    /// Who the holder is (shown to the room, logged as `identity`).
    #[arg(long, value_name = "I")]
    pub identity: Option<String>,
    /// Lifetime, e.g. 90s, 1h, 2days.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// Config file whose [auth] secret signs the token.
    #[arg(short, long, value_name = "FILE", env = "TERN_CONFIG")]
    pub config: Option<PathBuf>,
}

fn parse_ttl(v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v).map_err(|e| e.to_string())
}

/// Writes the man pages into `dir`.
pub fn man_pages(dir: &std::path::Path) -> std::io::Result<()> {
    clap_mangen::generate_to(Cli::command(), dir)
}

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tern", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn token_options_keep_their_names() {
        let cli = Cli::try_parse_from([
            "tern",
            "token",
            "--room",
            "r",
            "--stream",
            "s",
            "--publish",
            "--identity",
            "i",
            "--ttl",
            "90s",
            "-c",
            "f.toml",
        ])
        .expect("parses");
        let Commands::Token(t) = cli.command else {
            panic!("token")
        };
        assert_eq!(t.room, "r");
        assert_eq!(t.stream.as_deref(), Some("s"));
        assert!(t.publish && !t.subscribe);
        assert_eq!(t.ttl, Duration::from_secs(90));
        assert_eq!(t.config, Some(PathBuf::from("f.toml")));
        assert!(Cli::try_parse_from(["tern", "token", "--room", "r", "--ttl", "soon"]).is_err());
    }

    #[test]
    fn serve_takes_config_in_every_spelling() {
        for args in [
            &["tern", "serve", "--config", "a.toml"][..],
            &["tern", "serve", "--config=a.toml"],
            &["tern", "serve", "-c", "a.toml"],
        ] {
            let cli = Cli::try_parse_from(args).expect("parses");
            let Commands::Serve { config } = cli.command else {
                panic!("serve")
            };
            assert_eq!(config, Some(PathBuf::from("a.toml")), "{args:?}");
        }
    }
}
