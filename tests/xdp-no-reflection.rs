//! `io = "xdp"` never answers what it has not authenticated: STUN with a wrong password, an
//! unknown username or no MESSAGE-INTEGRITY, DTLS, RTP and RTCP from an address that never
//! passed a check, and garbage, sent to both workers' media ports from the far end of the veth
//! pair, get no reply at all, while the counters show the relay received and dropped each one
//! (so they did reach the AF_XDP sockets).

mod metrics_support;
mod serve_support;
mod webrtc_client;
mod xdp_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use tern::control::auth::TokenMinter;
use webrtc_client::chromium_offer;
use xdp_support::{require_root, serve_xdp, VethPair};

const SECRET: &str = "xdp-no-reflection-secret";

/// (relay candidate, relay ufrag) from a WHIP answer.
fn candidate_and_ufrag(answer: &str) -> (SocketAddr, String) {
    let cand = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=candidate:"))
        .expect("a candidate");
    let f: Vec<&str> = cand.split_whitespace().collect();
    let addr = SocketAddr::new(f[4].parse().unwrap(), f[5].parse().unwrap());
    let ufrag = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .expect("ice-ufrag")
        .trim()
        .to_string();
    (addr, ufrag)
}

/// Everything an attacker who knows the relay's ufrag (it is in every answer) might send.
fn probes(ufrag: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stun = |name, user: String, pwd: Option<&[u8]>| {
        let mut b = [0u8; 256];
        let n = tern::ice::write_binding_request(&mut b, &[7; 12], user.as_bytes(), pwd, true, 9)
            .unwrap();
        out.push((name, b[..n].to_vec()));
    };
    stun(
        "STUN with a wrong password",
        format!("{ufrag}:Vx3q"),
        Some(b"not-the-ice-password-at-all"),
    );
    stun(
        "STUN for an unknown ufrag",
        "nobody:Vx3q".into(),
        Some(b"whatever-password-0123"),
    );
    stun("STUN without integrity", format!("{ufrag}:Vx3q"), None);
    let mut dtls = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 60, 1, 0, 0, 48];
    dtls.resize(73, 0x42);
    out.push(("a DTLS ClientHello", dtls));
    let mut rtp = vec![0x80, 96, 0, 1, 0, 0, 0, 9, 0xab, 0xcd, 0, 1];
    rtp.resize(200, 0x5a);
    out.push(("RTP", rtp));
    let mut rtcp = vec![0x80, 201, 0, 7, 0xab, 0xcd, 0, 1];
    rtcp.resize(32, 0);
    out.push(("RTCP", rtcp));
    out.push(("garbage", vec![0xff; 64]));
    out.push(("a one-byte datagram", vec![0x40]));
    out
}

#[test]
fn unauthenticated_packets_get_no_reply() {
    require_root();
    let pair = VethPair::new(2, false);
    let served = serve_xdp(&pair, 2, SECRET, "");
    let base = served.base.clone();
    let minter = TokenMinter::hs256(SECRET.as_bytes().to_vec()).unwrap();
    let token = minter.mint(
        "room1",
        None,
        true,
        false,
        "alice",
        Duration::from_secs(600),
    );
    let client_ip = pair.client_ip;
    let (sent, m) = pair.client.block_on(async move {
        // Two sessions, so both workers (both ports) are targets.
        let mut targets = Vec::new();
        for stream in ["cam1", "cam2"] {
            let resp = reqwest::Client::new()
                .post(format!("{base}/whip/room1/{stream}"))
                .bearer_auth(&token)
                .header("Content-Type", "application/sdp")
                .body(chromium_offer())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 201);
            targets.push(candidate_and_ufrag(&resp.text().await.unwrap()));
        }
        assert_ne!(targets[0].0, targets[1].0, "sessions on both workers");
        let before = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let sock = UdpSocket::bind(SocketAddr::new(client_ip, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let mut sent = 0;
        for (addr, ufrag) in &targets {
            for _ in 0..3 {
                for (_, p) in probes(ufrag) {
                    sock.send_to(&p, addr).unwrap();
                    sent += 1;
                }
            }
        }
        let mut buf = [0u8; 2048];
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => panic!(
                "the relay answered {n} bytes from {from}: {:02x?}",
                &buf[..n]
            ),
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "{e}"
            ),
        }
        let after = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (sent, (before, after))
    });
    let (before, after) = m;
    let delta =
        |s: &str| metrics_support::require(&after, s) - metrics_support::require(&before, s);
    assert_eq!(
        delta("tern_packets_in_total"),
        sent,
        "every probe reached a worker"
    );
    assert_eq!(delta("tern_packets_out_total"), 0, "and none was answered");
    assert_eq!(
        delta("tern_stun_dropped_total"),
        2 * 3 * 3,
        "the STUN probes"
    );
    assert_eq!(
        delta("tern_unvalidated_source_total"),
        2 * 3 * 3,
        "DTLS, RTP and RTCP from an unvalidated address"
    );
    assert_eq!(delta("tern_demux_other_total"), 2 * 3 * 2, "garbage");
    assert_eq!(
        metrics_support::require(&after, "tern_xdp_no_neighbour_total"),
        0,
        "nothing was even queued"
    );
    drop(served);
}
