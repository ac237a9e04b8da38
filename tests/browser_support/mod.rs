//! Real-browser tests: an in-process Tern on 127.0.0.1 with ephemeral ports, demo-page URLs
//! carrying fresh tokens, and the node scripts in `tests/browser/` that drive Debian's Chromium
//! headless through playwright-core. A missing tool fails the test loudly; nothing here skips.
//! `scripts/test-all.sh` installs Chromium and runs `npm ci --prefix tests/browser`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tern::config::{Config, WorkerPlacement};
use tern::control::server::{self, RunningServer};

use crate::metrics_support;

/// How long a node script may run before it is killed (its own deadline is 30 s).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// A relay with HTTP and media on 127.0.0.1, every port picked by the kernel.
pub async fn start_relay() -> RunningServer {
    start_relay_with(|_| {}).await
}

/// `start_relay` with `edit` applied to the configuration first.
pub async fn start_relay_with(edit: impl FnOnce(&mut Config)) -> RunningServer {
    let mut config = Config::default();
    config.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.media.port_base = 0;
    config.media.placement = WorkerPlacement::Unbound;
    edit(&mut config);
    server::start(&config, Some(b"browser-test-secret".to_vec()))
        .await
        .expect("relay starts")
}

/// The demo page for participant `name` in `room`, joining on load, with a token that may
/// publish and subscribe to every stream of the room, and optionally an E2EE passphrase.
pub fn page_url(
    running: &RunningServer,
    room: &str,
    name: &str,
    passphrase: Option<&str>,
) -> String {
    let token = token(running, room, None, true, true, name);
    let mut url = format!(
        "http://{}/?room={room}&name={name}&token={token}&autojoin=1",
        running.http_addr
    );
    if let Some(p) = passphrase {
        url.push_str(&format!("&passphrase={p}"));
    }
    url
}

/// A ten-minute token for `identity` in `room`: one stream or (`None`) all of them.
pub fn token(
    running: &RunningServer,
    room: &str,
    stream: Option<&str>,
    publish: bool,
    subscribe: bool,
    identity: &str,
) -> String {
    let Some(minter) = &running.minter else {
        panic!("the test relay has an HS256 secret, so it mints tokens");
    };
    let ttl = Duration::from_secs(600);
    minter.mint(room, stream, publish, subscribe, identity, ttl)
}

/// What a script printed.
#[derive(Debug)]
pub struct ScriptOutput {
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Panics, naming the fix, unless Chromium, node and playwright-core are installed.
fn require_tools() {
    let chromium =
        std::env::var("TERN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: `apt-get install chromium` (scripts/test-all.sh does it)"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "`node` is not on PATH: install Node.js 18 or later"
    );
    assert!(
        browser_dir()
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is missing: `npm ci --prefix tests/browser` (scripts/test-all.sh does it)"
    );
}

/// Runs `node tests/browser/<script> <args…>` off the async runtime (the relay keeps running on
/// it) and panics with everything the script printed unless it exits 0.
pub async fn run_script(script: &str, args: Vec<String>) -> ScriptOutput {
    run_script_with_flags(script, args, "").await
}

/// `run_script` with more Chromium flags (space-separated, `TERN_CHROMIUM_ARGS`).
pub async fn run_script_with_flags(
    script: &str,
    args: Vec<String>,
    chromium_flags: &str,
) -> ScriptOutput {
    spawn_script(script, args, chromium_flags, None).await
}

/// `run_script_with_flags` inside network namespace `netns` (`ip netns exec`): node and its
/// Chromium see only that namespace's interfaces.
pub async fn run_script_in_netns(
    netns: &str,
    script: &str,
    args: Vec<String>,
    chromium_flags: &str,
) -> ScriptOutput {
    spawn_script(script, args, chromium_flags, Some(netns)).await
}

async fn spawn_script(
    script: &str,
    args: Vec<String>,
    chromium_flags: &str,
    netns: Option<&str>,
) -> ScriptOutput {
    require_tools();
    let script = browser_dir().join(script);
    let (flags, netns) = (chromium_flags.to_string(), netns.map(str::to_string));
    tokio::task::spawn_blocking(move || run_blocking(&script, &args, &flags, netns.as_deref()))
        .await
        .expect("script runner")
}

fn run_blocking(
    script: &Path,
    args: &[String],
    chromium_flags: &str,
    netns: Option<&str>,
) -> ScriptOutput {
    // Output goes to files: a pipe nobody reads while we wait could fill and stall the script.
    let out = tempfile::tempfile().expect("stdout file");
    let err = tempfile::tempfile().expect("stderr file");
    let started = Instant::now();
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "node"]);
            c
        }
        None => Command::new("node"),
    };
    let mut child = command
        .arg(script)
        .args(args)
        .current_dir(browser_dir())
        .env("TERN_CHROMIUM_ARGS", chromium_flags)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("stdout file"))
        .stderr(err.try_clone().expect("stderr file"))
        .spawn()
        .expect("node starts");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = ScriptOutput {
        stdout: read_all(out),
        stderr: read_all(err),
        elapsed: started.elapsed(),
    };
    match status {
        Some(s) if s.success() => output,
        Some(s) => panic!(
            "{} exited with {s}\n--- stdout\n{}\n--- stderr\n{}",
            script.display(),
            output.stdout,
            output.stderr
        ),
        None => panic!(
            "{} killed after {SCRIPT_TIMEOUT:?}\n--- stdout\n{}\n--- stderr\n{}",
            script.display(),
            output.stdout,
            output.stderr
        ),
    }
}

fn read_all(mut file: std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut s = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut s);
    s
}

/// Freezes of the four steps a layer-limit script prints (whole, limited, limited again,
/// lifted): at most one at the step down (Chromium counts a freeze when a frame comes
/// max(3 × mean, mean + 150 ms) after the last, and the frame gap grows there), none while
/// limited.
pub fn assert_no_freeze_while_limited(steps: &[serde_json::Value], line: &str) {
    let freezes: Vec<u64> = steps
        .iter()
        .map(|s| s["freezes"].as_u64().unwrap_or(u64::MAX))
        .collect();
    assert!(
        freezes[1] <= freezes[0] + 1,
        "at most one going down: {line}"
    );
    assert_eq!(freezes[2], freezes[1], "none on the lower layers: {line}");
}

/// One `/metrics` figure summed over its series (PromQL's `sum`), e.g.
/// `metric(&running, "tern_media_out_total")` over every worker, or one labelled series.
pub async fn metric(running: &RunningServer, selector: &str) -> u64 {
    let text = metrics_support::scrape(&format!("http://{}", running.http_addr)).await;
    metrics_support::sum(&text, selector)
        .unwrap_or_else(|| panic!("{selector} in /metrics:\n{text}")) as u64
}
