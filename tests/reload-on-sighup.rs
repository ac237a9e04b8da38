//! SIGHUP reloads auth and limits without dropping sessions: after the JWT secret changes,
//! the session admitted with an old token keeps its media, new tokens work and old ones no
//! longer do; a broken config is rejected with a log line naming the field and the running
//! config stays.

mod serve_support;
mod webrtc_client;

use std::time::Duration;

use serve_support::{config_dir, write_config, Served};
use tern::control::auth::TokenMinter;
use webrtc_client::{check_payload, media_flow, signal, subscriber_peer, wait_connected};

const OLD: &str = "reload-test-old-secret";
const NEW: &str = "reload-test-new-secret";

/// Waits (off the async threads) for a log line.
async fn wait_line(served: Served, needle: &'static str) -> (Served, Option<String>) {
    tokio::task::spawn_blocking(move || {
        let mut served = served;
        let line = served.wait_line(needle, Duration::from_secs(5));
        (served, line)
    })
    .await
    .unwrap()
}

/// Packets the old flow receives in one second (100 are sent).
async fn flowing(rx: &mut tokio::sync::mpsc::Receiver<Vec<u8>>) -> usize {
    while rx.try_recv().is_ok() {}
    let mut n = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(1000);
    while let Ok(Some(p)) = tokio::time::timeout_at(until, rx.recv()).await {
        check_payload(&p);
        n += 1;
    }
    n
}

/// The status of a WHEP POST with a junk offer: 401 when the token is refused, 400 (bad
/// offer) once it is accepted.
async fn whep_status(base: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/whep/room1/cam"))
        .bearer_auth(token)
        .header("Content-Type", "application/sdp")
        .body("v=0\r\n")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sighup_swaps_the_secret_and_keeps_sessions_and_rejects_a_broken_config() {
    let dir = config_dir("reload", OLD, "");
    let served = tokio::task::spawn_blocking(move || Served::start(dir, &[]))
        .await
        .unwrap();
    let base = served.base.clone();
    let ttl = Duration::from_secs(600);
    let old = TokenMinter::hs256(OLD.as_bytes().to_vec()).unwrap();
    let new = TokenMinter::hs256(NEW.as_bytes().to_vec()).unwrap();
    let old_pub = old.mint("room1", Some("cam"), true, false, "alice", ttl);
    let old_sub = old.mint("room1", None, false, true, "bob", ttl);
    let new_sub = new.mint("room1", None, false, true, "carol", ttl);
    let mut flow = media_flow(&base, &old_pub, &old_sub, None).await;
    assert!(flowing(&mut flow.rx).await >= 50, "media before the reload");
    assert_eq!(
        whep_status(&base, &new_sub).await,
        401,
        "new secret not yet"
    );

    // New secret, SIGHUP.
    write_config(&served.dir, NEW, "");
    served.kill("HUP");
    let (served, line) = wait_line(served, "SIGHUP").await;
    let line = line.expect("reload is logged");
    assert!(line.contains("reloaded"), "{line}");
    assert!(
        !line.contains(NEW) && !line.contains(OLD),
        "no secret in the log"
    );
    let during = flowing(&mut flow.rx).await;
    assert!(
        during >= 50,
        "old session keeps flowing: {during} packets/s"
    );
    assert_eq!(
        whep_status(&base, &old_sub).await,
        401,
        "old tokens refused"
    );
    // A real subscriber with a new token connects and gets the old publisher's media.
    let (carol, mut carol_rx) = subscriber_peer(None).await;
    let (status, body) = signal(&carol, &format!("{base}/whep/room1/cam"), &new_sub).await;
    assert_eq!(status, 201, "new token works: {body}");
    wait_connected(&carol, "carol").await;
    let got = tokio::time::timeout(Duration::from_secs(10), carol_rx.recv())
        .await
        .expect("media reaches the new subscriber")
        .unwrap();
    check_payload(&got);

    // A broken config: rejected, named, and the running one kept.
    std::fs::write(
        served.dir.join("tern.toml"),
        "[limits]\nsessions_per_ip = \"many\"\n",
    )
    .unwrap();
    served.kill("HUP");
    let (mut served, line) = wait_line(served, "keeping the running config").await;
    let line = line.expect("a broken config is refused in the log");
    assert!(line.contains("sessions_per_ip"), "names the field: {line}");
    assert_eq!(
        whep_status(&base, &new_sub).await,
        400,
        "new secret still in force"
    );
    assert_eq!(whep_status(&base, &old_sub).await, 401);
    assert!(flowing(&mut flow.rx).await >= 50, "old session unharmed");
    assert!(served.wait_exit(Duration::ZERO).is_none(), "still serving");

    let _ = carol.close().await;
    flow.close().await;
}
