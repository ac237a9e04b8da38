//! `tern serve` as a child process, the way systemd runs it: a config file in a fresh directory
//! (HTTP and media on free ports, the HS256 secret in a file), its log lines on a channel, and
//! signals sent with kill(1).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const TERN: &str = env!("CARGO_BIN_EXE_tern");

/// A running `tern serve`.
pub struct Served {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    lines: mpsc::Receiver<String>,
    /// Every line read so far (stderr and stdout).
    pub log: Vec<String>,
    pub dir: PathBuf,
}

/// Writes `tern.toml` (with `extra` appended) and `jwt-secret` into a fresh directory.
pub fn config_dir(name: &str, secret: &str, extra: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tern-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    write_config(&dir, secret, extra);
    dir
}

/// (Re)writes the config and secret in `dir`.
pub fn write_config(dir: &Path, secret: &str, extra: &str) {
    std::fs::write(dir.join("jwt-secret"), secret).unwrap();
    let toml = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\n[media]\nport_base = 0\nworkers = [0]\nplacement = \"unbound\"\n\n\
         [auth]\njwt_secret_file = \"{}\"\n\n{extra}",
        dir.join("jwt-secret").display()
    );
    std::fs::write(dir.join("tern.toml"), toml).unwrap();
}

impl Served {
    /// Starts `tern serve --config DIR/tern.toml` with `env` added, and waits until it says
    /// where it serves.
    pub fn start(dir: PathBuf, env: &[(&str, &str)]) -> Served {
        Served::start_with(Command::new(TERN), dir, env)
    }

    /// [`Served::start`] through `cmd`, which runs `tern` (e.g. `ip netns exec NS tern`).
    pub fn start_with(cmd: Command, dir: PathBuf, env: &[(&str, &str)]) -> Served {
        let mut served = Served::spawn_with(cmd, dir, env);
        // `INFO tern: serving … http=http://ADDR …` as text, `"http":"http://ADDR"` as JSON.
        let line = served
            .wait_line("serving", Duration::from_secs(20))
            .unwrap_or_else(|| panic!("tern serve did not start: {:?}", served.log));
        let addr: String = line
            .split("http://")
            .nth(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || ".:[]".contains(*c))
                    .collect()
            })
            .expect("serving line names the HTTP address");
        served.base = format!("http://{addr}");
        served
    }

    /// Starts `tern serve --config DIR/tern.toml` with `env` added, without waiting for it
    /// (`base` stays empty).
    pub fn spawn(dir: PathBuf, env: &[(&str, &str)]) -> Served {
        Served::spawn_with(Command::new(TERN), dir, env)
    }

    /// [`Served::spawn`] through `cmd`, which runs `tern`.
    pub fn spawn_with(mut cmd: Command, dir: PathBuf, env: &[(&str, &str)]) -> Served {
        cmd.arg("serve")
            .arg("--config")
            .arg(dir.join("tern.toml"))
            .env_remove("TERN_JWT_SECRET")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("RUST_LOG")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("tern serve starts");
        let (tx, lines) = mpsc::channel();
        for out in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Served {
            child,
            base: String::new(),
            lines,
            log: Vec::new(),
            dir,
        }
    }

    /// The first new log line containing `needle`, within `timeout`.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// Every line, once the process has closed its output (within `timeout`).
    pub fn all_lines(&mut self, timeout: Duration) -> &[String] {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => self.log.push(line),
                Err(_) => break,
            }
        }
        &self.log
    }

    /// A token from `tern token ARGS --config DIR/tern.toml` (signed with this relay's secret).
    pub fn token(&self, args: &[&str]) -> String {
        let out = Command::new(TERN)
            .arg("token")
            .args(args)
            .arg("--config")
            .arg(self.dir.join("tern.toml"))
            .env_remove("TERN_JWT_SECRET")
            .output()
            .expect("tern token runs");
        assert!(out.status.success(), "tern token {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Writes a broken config (`limits.sessions_per_ip = "many"`), sends SIGHUP and returns the
    /// log line refusing it.
    pub fn refused_reload(&mut self) -> String {
        std::fs::write(
            self.dir.join("tern.toml"),
            "[limits]\nsessions_per_ip = \"many\"\n",
        )
        .unwrap();
        self.kill("HUP");
        self.wait_line("keeping the running config", Duration::from_secs(5))
            .unwrap_or_else(|| panic!("the refused reload is logged: {:?}", self.log))
    }

    /// Sends `signal` (`TERM`, `HUP`, …) with kill(1).
    pub fn kill(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// The exit status, if the process ends within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
