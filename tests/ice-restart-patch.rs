//! ICE restart over WHIP (RFC 9725 §4.3.2): a PATCH whose fragment carries a new client ufrag
//! gets 200 with the relay's new ufrag/pwd, the same UDP and passive TCP candidates and a new
//! ETag; from then on the relay answers connectivity checks only with the new credentials. A
//! PATCH naming a stale ETag gets 412; a plain trickle fragment with the current one gets 204.

mod webrtc_client;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use webrtc_client::{chromium_offer as offer, start_relay};

fn attr<'a>(sdp: &'a str, name: &str) -> &'a str {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix(name))
        .unwrap_or_else(|| panic!("{name} in {sdp}"))
}

fn host_candidate(sdp: &str) -> SocketAddr {
    let c: Vec<&str> = attr(sdp, "a=candidate:").split_whitespace().collect();
    format!("{}:{}", c[4], c[5]).parse().unwrap()
}

/// The `tcptype passive` candidate, whole.
fn tcp_candidate(sdp: &str) -> &str {
    sdp.lines()
        .find(|l| l.starts_with("a=candidate:") && l.contains(" tcp "))
        .unwrap_or_else(|| panic!("a TCP candidate in {sdp}"))
        .trim_end()
}

/// Sends a nominating Binding request; true if a success response comes back.
fn check(sock: &UdpSocket, relay: SocketAddr, username: &str, pwd: &str) -> bool {
    let mut req = [0u8; 256];
    let n = tern::ice::write_binding_request(
        &mut req,
        &[7; 12],
        username.as_bytes(),
        Some(pwd.as_bytes()),
        true,
        42,
    )
    .unwrap();
    let mut buf = [0u8; 1500];
    for _ in 0..3 {
        sock.send_to(&req[..n], relay).unwrap();
        if let Ok((m, _)) = sock.recv_from(&mut buf) {
            return m >= 20 && buf[0..2] == [0x01, 0x01];
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_restarts_ice_with_fresh_relay_credentials() {
    let running = start_relay(|_| {}).await;
    let base = format!("http://{}", running.http_addr);
    let token = running.minter.as_ref().unwrap().mint(
        "room1",
        Some("cam"),
        true,
        false,
        "alice",
        Duration::from_secs(600),
    );
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/whip/room1/cam"))
        .bearer_auth(&token)
        .header("Content-Type", "application/sdp")
        .body(offer())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_string();
    let etag = created.headers()["etag"].to_str().unwrap().to_string();
    let answer = created.text().await.unwrap();
    let (old_ufrag, old_pwd) = (attr(&answer, "a=ice-ufrag:"), attr(&answer, "a=ice-pwd:"));
    let relay = host_candidate(&answer);

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let s = sock.try_clone().unwrap();
    let (u, p) = (format!("{old_ufrag}:Vx3q"), old_pwd.to_string());
    assert!(
        tokio::task::spawn_blocking(move || check(&s, relay, &u, &p))
            .await
            .unwrap(),
        "checks pass with the first credentials"
    );

    let url = format!("{base}{location}");
    let restart = http
        .patch(&url)
        .bearer_auth(&token)
        .header("Content-Type", "application/trickle-ice-sdpfrag")
        .header("If-Match", "*")
        .body("a=ice-ufrag:N3wU\r\na=ice-pwd:n3wclientpasswordvalue00\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(restart.status(), 200, "ICE restart answered");
    assert_eq!(
        restart.headers()["content-type"],
        "application/trickle-ice-sdpfrag"
    );
    let new_etag = restart.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(new_etag, etag, "a restart changes the ETag");
    let frag = restart.text().await.unwrap();
    let (new_ufrag, new_pwd) = (attr(&frag, "a=ice-ufrag:"), attr(&frag, "a=ice-pwd:"));
    assert_ne!(new_ufrag, old_ufrag);
    assert_ne!(new_pwd, old_pwd);
    assert_eq!(host_candidate(&frag), relay, "same host candidate");
    assert_eq!(
        tcp_candidate(&frag),
        tcp_candidate(&answer),
        "and the same passive TCP candidate below it"
    );
    assert!(tcp_candidate(&answer).ends_with(" typ host tcptype passive"));
    assert!(frag.contains("a=ice-lite") && frag.contains("a=end-of-candidates"));

    let s = sock.try_clone().unwrap();
    let (u, p) = (format!("{old_ufrag}:Vx3q"), old_pwd.to_string());
    assert!(
        !tokio::task::spawn_blocking(move || check(&s, relay, &u, &p))
            .await
            .unwrap(),
        "old credentials are no longer answered"
    );
    let s = sock.try_clone().unwrap();
    let (u, p) = (format!("{new_ufrag}:N3wU"), new_pwd.to_string());
    assert!(
        tokio::task::spawn_blocking(move || check(&s, relay, &u, &p))
            .await
            .unwrap(),
        "new credentials are answered"
    );

    // A stale ETag: 412. The current one with a trickled candidate: 204.
    let stale = http
        .patch(&url)
        .bearer_auth(&token)
        .header("Content-Type", "application/trickle-ice-sdpfrag")
        .header("If-Match", &etag)
        .body("a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let trickle = http
        .patch(&url)
        .bearer_auth(&token)
        .header("Content-Type", "application/trickle-ice-sdpfrag")
        .header("If-Match", &new_etag)
        .body("a=ice-ufrag:N3wU\r\na=ice-pwd:n3wclientpasswordvalue00\r\na=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(
        trickle.status(),
        204,
        "same ufrag: a trickle, not a restart"
    );
    running.stop().await;
}
