//! Bad use of `tern-load` ends quickly with a clear reason, never a hang: a token the server
//! refuses (401 and the server's reason), a server nobody listens on, and a server that answers
//! the offer and ICE but never completes DTLS.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tern::config::Config;
use tern::control::server;
use tern::ice::{answer_binding, IceCredentials};
use tern::wire::sdp;
use tern::wire::stun::StunMessage;
use tern_bench::load::{self, LoadConfig, Progress, Report, Scenario};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(url: String, token: &str) -> LoadConfig {
    LoadConfig {
        url,
        token: token.into(),
        scenario: Scenario::Broadcast {
            publishers: 1,
            subscribers: 2,
        },
        duration: Duration::from_secs(2),
        warmup: Duration::ZERO,
        connect_timeout: Duration::from_secs(2),
        progress: Progress::Off,
        ..LoadConfig::default()
    }
}

/// Runs and checks the common shape: the publisher failed in `phase`, both subscribers were
/// skipped, and the whole run took well under the time a hang would.
fn run_expecting(cfg: &LoadConfig, phase: &str) -> Report {
    let started = Instant::now();
    let report = load::run(cfg).expect("the run itself works");
    let took = started.elapsed();
    println!("{}", report.summary());
    assert!(took < Duration::from_secs(12), "took {took:?}");
    assert!(!report.all_ok());
    assert_eq!(report.publishers_ok, 0);
    assert_eq!(report.subscribers_ok(), 0);
    assert_eq!(report.subscribers_failed, 2);
    let publisher = report
        .failures
        .iter()
        .find(|f| f.role == "publisher")
        .expect("the publisher's failure is reported");
    assert_eq!(publisher.phase, phase, "{publisher:?}");
    assert_eq!(
        report
            .failures
            .iter()
            .filter(|f| f.role == "subscriber" && f.phase == "skipped")
            .count(),
        2
    );
    let json = report.to_json();
    assert_eq!(json["subscribers_failed"].as_u64(), Some(2));
    assert_eq!(json["failures"].as_array().map(Vec::len), Some(3));
    report
}

#[test]
fn a_refused_token_is_a_401_with_the_servers_reason() {
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.media.port_base = 0;
    config.media.placement = tern::config::WorkerPlacement::Unbound;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let running = rt
        .block_on(server::start(
            &config,
            Some(b"tern-load-test-secret".to_vec()),
        ))
        .expect("relay starts");
    let report = run_expecting(&config_for(&running.http_addr, "not-a-token"), "http");
    let reason = &report.failures[0].reason;
    assert!(reason.starts_with("HTTP 401: "), "{reason}");
    assert!(
        reason.len() > "HTTP 401: ".len(),
        "the server's reason is kept: {reason}"
    );
    assert!(report.summary().contains("HTTP 401"));
    rt.block_on(running.stop());
}

fn config_for(addr: &SocketAddr, token: &str) -> LoadConfig {
    config(format!("http://{addr}"), token)
}

#[test]
fn an_unreachable_server_is_named() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let report = run_expecting(&config(format!("http://127.0.0.1:{port}"), "t"), "http");
    let reason = &report.failures[0].reason;
    assert!(reason.starts_with("server unreachable"), "{reason}");
    assert!(reason.contains(&port.to_string()), "{reason}");
}

#[test]
fn a_server_that_never_completes_dtls_times_out() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let media = udp.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let dtls_seen = Arc::new(AtomicBool::new(false));
    // Answers every Binding request (ICE works) and ignores DTLS (the handshake never ends).
    let responder = std::thread::spawn({
        let (stop, dtls_seen) = (Arc::clone(&stop), Arc::clone(&dtls_seen));
        move || {
            let mut buf = [0u8; 2048];
            let mut out = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, src)) = udp.recv_from(&mut buf) else {
                    continue;
                };
                if (20..=63).contains(&buf[0]) {
                    dtls_seen.store(true, Ordering::Relaxed);
                    continue;
                }
                let Some(theirs) = StunMessage::parse(&buf[..n])
                    .ok()
                    .and_then(|m| m.username().map(|u| u.to_vec()))
                    .and_then(|u| {
                        let s = String::from_utf8(u).ok()?;
                        Some(s.split_once(':')?.1.to_string())
                    })
                else {
                    continue;
                };
                let creds = IceCredentials {
                    local_ufrag: "fakeufrag".into(),
                    local_pwd: "fakepasswordfakepassword".into(),
                    remote_ufrag: theirs,
                };
                if let Ok((len, _)) = answer_binding(&buf[..n], &creds, src, &mut out) {
                    let _ = udp.send_to(&out[..len], src);
                }
            }
        }
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let http = listener.local_addr().unwrap();
    rt.spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then Content-Length bytes of offer.
                loop {
                    let Ok(n) = conn.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    req.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&req).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if req.len() >= end + 4 + len {
                            let offer = String::from_utf8_lossy(&req[end + 4..]).to_string();
                            let answer = fake_answer(&offer, media);
                            let resp = format!(
                                "HTTP/1.1 201 Created\r\nContent-Type: application/sdp\r\n\
                                 Location: /session/1\r\nContent-Length: {}\r\n\
                                 Connection: close\r\n\r\n{answer}",
                                answer.len()
                            );
                            let _ = conn.write_all(resp.as_bytes()).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    let report = run_expecting(&config(format!("http://{http}"), "t"), "dtls");
    let reason = &report.failures[0].reason;
    assert!(
        reason.contains("DTLS handshake did not complete"),
        "{reason}"
    );
    assert!(
        dtls_seen.load(Ordering::Relaxed),
        "ICE worked and DTLS was attempted"
    );
    stop.store(true, Ordering::Relaxed);
    responder.join().unwrap();
}

/// The relay's own answer builder, pointing at the fake media socket.
fn fake_answer(offer: &str, media: SocketAddr) -> String {
    let offer = sdp::parse_offer(offer).expect("tern-load's offer parses");
    let params = sdp::AnswerParams {
        ice_ufrag: "fakeufrag",
        ice_pwd: "fakepasswordfakepassword",
        fingerprint_sha256: [0x42; 32],
        candidate: media,
        tcp_candidate: None,
        role: sdp::Role::Publish,
        session_id: 1,
    };
    sdp::answer(&offer, &params).expect("answerable").sdp
}
