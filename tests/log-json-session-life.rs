//! `[log] format = "json"`: every line `tern serve` writes is one JSON object with timestamp,
//! level, target and message; a session's life (admitted, DTLS connected, ended with a reason)
//! is logged at info with its ids as fields (`session`, `room`, `stream`, `identity`,
//! `worker`, `remote`, `reason`); and nothing in the whole output carries a token, the relay's
//! ICE password or an SDP.

mod serve_support;
mod webrtc_client;

use std::time::Duration;

use serde_json::Value;
use serve_support::{config_dir, Served};
use webrtc_client::{check_payload, media_flow};

/// The parsed lines whose message is `message`.
fn events<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["message"] == message).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn json_lines_carry_a_sessions_life_and_no_secret() {
    let dir = config_dir("log-json", "log-json-secret", "[log]\nformat = \"json\"\n");
    let mut served = tokio::task::block_in_place(|| Served::start(dir, &[]));
    let alice = served.token(&[
        "--room",
        "room1",
        "--stream",
        "cam",
        "--publish",
        "--identity",
        "alice",
    ]);
    let bob = served.token(&[
        "--room",
        "room1",
        "--stream",
        "cam",
        "--subscribe",
        "--identity",
        "bob",
    ]);
    let mut flow = media_flow(&served.base, &alice, &bob, None).await;
    let mut received = 0;
    while received < 20 {
        let p = tokio::time::timeout(Duration::from_secs(10), flow.rx.recv())
            .await
            .expect("media flows")
            .expect("subscriber open");
        check_payload(&p);
        received += 1;
    }
    let answer = flow
        .publisher
        .remote_description()
        .await
        .expect("the relay's answer")
        .sdp;
    let ice_pwd = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-pwd:"))
        .expect("a=ice-pwd in the answer")
        .trim()
        .to_string();
    flow.close().await; // close_notify ends both sessions
    tokio::time::sleep(Duration::from_millis(700)).await;
    let lines = tokio::task::block_in_place(|| {
        served.kill("TERM");
        assert!(served.wait_exit(Duration::from_secs(10)).is_some());
        served.all_lines(Duration::from_secs(5)).to_vec()
    });

    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for (line, v) in lines.iter().zip(&parsed) {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(v.get(key).is_some(), "{key} missing: {line}");
        }
    }
    let admitted = events(&parsed, "session admitted");
    assert_eq!(admitted.len(), 2, "{lines:#?}");
    let mut ids = Vec::new();
    for (kind, identity) in [("publisher", "alice"), ("subscriber", "bob")] {
        let a = admitted
            .iter()
            .find(|a| a["kind"] == kind)
            .unwrap_or_else(|| panic!("{kind} admitted: {lines:#?}"));
        assert_eq!(a["level"], "INFO");
        assert_eq!(a["room"], "room1");
        assert_eq!(a["stream"], "cam");
        assert_eq!(a["identity"], identity);
        assert_eq!(a["worker"], 0);
        assert_eq!(a["remote"], "127.0.0.1");
        ids.push(a["session"].as_u64().expect("numeric session id"));
    }
    for id in ids {
        let of = |message| {
            events(&parsed, message)
                .into_iter()
                .find(|e| e["session"] == id)
                .unwrap_or_else(|| panic!("{message} for session {id}: {lines:#?}"))
        };
        assert_eq!(of("DTLS connected; media keys installed")["level"], "INFO");
        let ended = of("session ended");
        assert_eq!(ended["level"], "INFO");
        assert_eq!(ended["room"], "room1");
        let reason = ended["reason"].as_str().expect("a reason");
        assert!(
            ["DTLS close_notify", "publisher left"].contains(&reason),
            "{ended}"
        );
    }
    let all = lines.join("\n");
    for (what, secret) in [
        ("alice's token", alice.as_str()),
        ("bob's token", bob.as_str()),
        ("the JWT secret", "log-json-secret"),
        ("the relay's ICE password", ice_pwd.as_str()),
    ] {
        assert!(!all.contains(secret), "{what} in the log:\n{all}");
    }
    // Nor any part of a token that would do (its signature), nor an SDP.
    let signature = alice.rsplit('.').next().unwrap();
    assert!(!all.contains(signature), "a token signature in the log");
    assert!(
        !all.contains("v=0") && !all.contains("a=fingerprint"),
        "{all}"
    );
}
