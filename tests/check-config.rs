//! `tern check-config FILE` (and `tern serve --config FILE`) reject each class of config error
//! with exit code 1 and a message that names the file, the line and the field.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TERN: &str = env!("CARGO_BIN_EXE_tern");

struct Case {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

/// Writes `text` to `tern.toml` in a fresh directory; `SECRET` in it becomes the path of a
/// readable secret file in the same directory.
fn case(text: &str) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("jwt-secret");
    fs::write(&secret, "correct-horse-battery-staple\n").unwrap();
    let path = dir.path().join("tern.toml");
    fs::write(&path, text.replace("SECRET", secret.to_str().unwrap())).unwrap();
    Case { _dir: dir, path }
}

fn tern(args: &[&str]) -> Output {
    Command::new(TERN)
        .args(args)
        .env_remove("TERN_JWT_SECRET")
        .output()
        .unwrap()
}

fn check(path: &Path) -> Output {
    tern(&["check-config", path.to_str().unwrap()])
}

/// Asserts `check-config` fails and its message names `path:line: field:`; returns it.
fn assert_rejected(text: &str, line: usize, field: &str) -> String {
    let case = case(text);
    let out = check(&case.path);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "accepted:\n{text}\nstderr: {stderr}"
    );
    let want = format!("{}:{line}: {field}: ", case.path.display());
    assert!(stderr.contains(&want), "want {want:?} in {stderr:?}");
    assert!(
        out.stdout.is_empty(),
        "printed ok: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

const AUTH: &str = "[auth]\njwt_secret_file = \"SECRET\"\n";

#[test]
fn unknown_field() {
    let msg = assert_rejected(
        &format!("{AUTH}\n[media]\nbind = \"0.0.0.0\"\nworker = [0]\n"),
        6,
        "media.worker",
    );
    assert!(msg.contains("unknown field"), "{msg}");
    assert_rejected(
        &format!("{AUTH}[htttp]\nlisten = \"0.0.0.0:80\"\n"),
        3,
        "htttp",
    );
}

#[test]
fn bad_address() {
    assert_rejected(
        &format!("[http]\nlisten = \"127.0.0.1\"\n{AUTH}"),
        2,
        "http.listen",
    );
    assert_rejected(
        &format!("{AUTH}[media]\nport_base = 40000\nbind = \"localhost:1\"\n"),
        5,
        "media.bind",
    );
    assert_rejected(
        &format!("{AUTH}[media]\nadvertised_address = \"0.0.0.0\"\n"),
        4,
        "media.advertised_address",
    );
}

#[test]
fn core_id_not_present() {
    let msg = assert_rejected(
        &format!("{AUTH}[media]\nworkers = [0, 4095]\n"),
        4,
        "media.workers",
    );
    assert!(msg.contains("core 4095 is not present"), "{msg}");
    assert_rejected(
        &format!("{AUTH}[media]\nworkers = []\n"),
        4,
        "media.workers",
    );
    assert_rejected(
        &format!("{AUTH}[media]\nworkers = \"most\"\n"),
        4,
        "media.workers",
    );
}

#[test]
fn unreadable_key_file() {
    let msg = assert_rejected(
        "[auth]\nalgorithm = \"EdDSA\"\npublic_key_files = [\"/nonexistent/tern/key.pem\"]\n",
        3,
        "auth.public_key_files",
    );
    assert!(msg.contains("/nonexistent/tern/key.pem"), "{msg}");
    assert_rejected(
        "[auth]\njwt_secret_file = \"/nonexistent/tern/jwt-secret\"\n",
        2,
        "auth.jwt_secret_file",
    );
    assert_rejected(
        &format!("{AUTH}admin_token_file = \"/nonexistent/tern/admin\"\n"),
        3,
        "auth.admin_token_file",
    );
    // EdDSA with no key at all, and HS256 with no secret (TERN_JWT_SECRET is unset here).
    assert_rejected(
        "[auth]\nalgorithm = \"ES256\"\n",
        2,
        "auth.public_key_files",
    );
    assert_rejected("[log]\nlevel = \"info\"\n", 1, "auth.jwt_secret_file");
}

#[test]
fn bad_value_type_or_duration() {
    let msg = assert_rejected(
        &format!("{AUTH}[media]\nconsent_timeout = \"soon\"\n"),
        4,
        "media.consent_timeout",
    );
    assert!(msg.contains("soon"), "{msg}");
    assert_rejected(
        &format!("{AUTH}[media]\nconsent_timeout = 30\n"),
        4,
        "media.consent_timeout",
    );
    assert_rejected(
        &format!("{AUTH}[media]\nport_base = \"40000\"\n"),
        4,
        "media.port_base",
    );
    assert_rejected(&format!("{AUTH}[media]\nio = \"epoll\"\n"), 4, "media.io");
    assert_rejected(
        &format!("{AUTH}[limits]\nsessions_per_ip = -1\n"),
        4,
        "limits.sessions_per_ip",
    );
    assert_rejected(&format!("{AUTH}[log]\nformat = \"xml\"\n"), 4, "log.format");
    assert_rejected(
        &format!("drain_timeout = \"1 fortnight\"\n{AUTH}"),
        1,
        "drain_timeout",
    );
    assert_rejected(
        &format!("{AUTH}webhook_url = \"ftp://example.com/\"\n"),
        3,
        "auth.webhook_url",
    );
    // Broken TOML syntax still names the line and the key.
    assert_rejected(
        &format!("{AUTH}[media]\nport_base = 40000 x\n"),
        4,
        "media.port_base",
    );
}

#[test]
fn xdp_fields() {
    let msg = assert_rejected(
        &format!("{AUTH}[media]\nbind = \"127.0.0.1\"\nio = \"xdp\"\n"),
        5,
        "media.interface",
    );
    assert!(msg.contains("required with io = \"xdp\""), "{msg}");
    let msg = assert_rejected(
        &format!("{AUTH}[media]\nbind = \"127.0.0.1\"\nio = \"xdp\"\ninterface = \"nosuchif13\"\n"),
        6,
        "media.interface",
    );
    assert!(msg.contains("no network interface \"nosuchif13\""), "{msg}");
    let msg = assert_rejected(
        &format!("{AUTH}[media]\nbind = \"0.0.0.0\"\nio = \"xdp\"\ninterface = \"lo\"\n"),
        4,
        "media.bind",
    );
    assert!(msg.contains("wildcard"), "{msg}");
    assert_rejected(
        &format!("{AUTH}[media]\nxdp_mode = \"turbo\"\n"),
        4,
        "media.xdp_mode",
    );
    // Whether the driver and privileges allow it is for `serve` to find out (xdp-config-errors).
    let case = case(&format!(
        "{AUTH}[media]\nbind = \"127.0.0.1\"\nio = \"xdp\"\ninterface = \"lo\"\nxdp_mode = \"generic\"\n"
    ));
    let out = check(&case.path);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn port_overflow() {
    let msg = assert_rejected(
        &format!("{AUTH}[media]\nworkers = [0, 1]\nport_base = 65535\n"),
        5,
        "media.port_base",
    );
    assert!(msg.contains("65535"), "{msg}");
    assert_rejected(
        &format!("{AUTH}[media]\nport_base = 70000\n"),
        4,
        "media.port_base",
    );
}

#[test]
fn ice_tcp_fields_are_checked() {
    let msg = assert_rejected(
        &format!("{AUTH}[media]\nworkers = [0, 1]\ntcp_port_base = 65535\n"),
        5,
        "media.tcp_port_base",
    );
    assert!(msg.contains("65535"), "{msg}");
    assert_rejected(&format!("{AUTH}[media]\ntcp = \"yes\"\n"), 4, "media.tcp");
    assert_rejected(
        &format!("{AUTH}[media]\ntcp_max_connections = 0\n"),
        4,
        "media.tcp_max_connections",
    );
    assert_rejected(
        &format!("{AUTH}[media]\ntcp = true\ntcp_send_buffer = 100\n"),
        5,
        "media.tcp_send_buffer",
    );
    assert_rejected(
        &format!("{AUTH}[media]\ntcp_idle_timeout = \"0s\"\n"),
        4,
        "media.tcp_idle_timeout",
    );
}

#[test]
fn secrets_are_never_printed() {
    let case = case(&format!("{AUTH}[limits]\nmax_body_bytes = 0\n"));
    let out = check(&case.path);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(all.contains("limits.max_body_bytes"), "{all}");
    assert!(!all.contains("correct-horse"), "secret leaked: {all}");
}

#[test]
fn missing_file_is_an_error() {
    let out = tern(&["check-config", "/nonexistent/tern.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tern.toml"));
}

fn example_with_secret() -> Case {
    let example = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/tern.toml.example"
    ))
    .unwrap();
    assert!(example.contains("\"/etc/tern/jwt-secret\""));
    case(&example.replace("/etc/tern/jwt-secret", "SECRET"))
}

#[test]
fn example_config_passes() {
    let case = example_with_secret();
    let out = check(&case.path);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("ok: {}", case.path.display())
    );
}

#[test]
fn the_cluster_examples_pass() {
    for n in 1..=3 {
        let node = fs::read_to_string(format!(
            "{}/docs/cluster/node{n}.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert!(node.contains("\"/tmp/tern-cluster.secret\""));
        let case = case(&format!(
            "{AUTH}{}",
            node.replace("/tmp/tern-cluster.secret", "SECRET")
        ));
        let out = check(&case.path);
        assert_eq!(
            out.status.code(),
            Some(0),
            "node{n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn serve_refuses_a_bad_config_with_the_same_message() {
    let case = case(&format!("{AUTH}[media]\nworkers = [0, 4095]\n"));
    let checked = check(&case.path);
    let served = tern(&["serve", "--config", case.path.to_str().unwrap()]);
    assert_eq!(served.status.code(), Some(1));
    let check_msg = String::from_utf8_lossy(&checked.stderr).trim().to_string();
    let serve_msg = String::from_utf8_lossy(&served.stderr);
    assert!(
        serve_msg.contains(&check_msg),
        "serve said {serve_msg:?}, check-config said {check_msg:?}"
    );
    assert!(serve_msg.contains("refusing to start"), "{serve_msg}");
}
