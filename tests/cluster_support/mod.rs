//! A Tern cluster for tests: Debian's `etcd` started by the test (one per test binary, shared;
//! each test has its own key prefix), and `tern serve` nodes as child processes with media on
//! 127.0.0.1, 127.0.0.2, 127.0.0.3 … and HTTP on free ports. Everything a test starts ends with
//! it: nodes when dropped (also on panic), etcd when the test process exits (its wrapper shell
//! reads the test's end from a pipe, then kills etcd and removes its data directory).
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use webrtc::api::media_engine::MIME_TYPE_VP8;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::{TrackLocal, TrackLocalWriter};

use super::serve_support::Served;
use super::webrtc_client::{payload, peer, signal, subscriber_peer, wait_connected};

use crate::metrics_support;

/// The HS256 secret every node of a test cluster shares.
pub const SECRET: &str = "cluster-test-jwt-secret";

/// The admin API token of every node of a test cluster.
pub const ADMIN_TOKEN: &str = "cluster-test-admin-token";

/// Debian's etcd server binary.
pub const ETCD: &str = "/usr/bin/etcd";

/// A free TCP port on 127.0.0.1 (bound, read back, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unique(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An etcd server for the test.
pub struct Etcd {
    wrapper: Child,
    /// Closing it (or this process ending) stops etcd.
    stdin: Option<ChildStdin>,
    /// etcd's own pid (to kill it without its wrapper, for an outage).
    pub pid: u32,
    pub url: String,
    pub dir: PathBuf,
    peer_port: u16,
    client_port: u16,
}

impl Etcd {
    /// Starts etcd in a fresh data directory; panics (the test fails) if it is missing.
    pub fn start() -> Etcd {
        assert!(
            std::path::Path::new(ETCD).exists(),
            "{ETCD} is missing: cluster tests need Debian's etcd-server (scripts/test-all.sh installs it)"
        );
        let dir = std::env::temp_dir().join(unique("tern-etcd"));
        Self::start_in(dir, free_port(), free_port())
    }

    fn start_in(dir: PathBuf, client_port: u16, peer_port: u16) -> Etcd {
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        // The wrapper starts etcd, says its pid, and when its stdin closes (the test ended or
        // dropped this), kills etcd and removes the data directory.
        let script = r#"
            "$ETCD" --name t --data-dir "$DIR" --listen-client-urls "$CLIENT" \
                --advertise-client-urls "$CLIENT" --listen-peer-urls "$PEER" \
                --initial-advertise-peer-urls "$PEER" --initial-cluster "t=$PEER" \
                --log-level error > "$DIR.log" 2>&1 &
            e=$!
            echo "$e"
            cat > /dev/null
            kill -9 "$e" 2>/dev/null
            wait "$e" 2>/dev/null
            rm -rf "$DIR" "$DIR.log"
        "#;
        let mut wrapper = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("ETCD", ETCD)
            .env("DIR", &dir)
            .env("CLIENT", &client)
            .env("PEER", &peer)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh starts");
        let mut pid = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(wrapper.stdout.take().unwrap()),
            &mut pid,
        )
        .unwrap();
        let etcd = Etcd {
            stdin: wrapper.stdin.take(),
            wrapper,
            pid: pid.trim().parse().expect("the wrapper prints etcd's pid"),
            url: client,
            dir,
            peer_port,
            client_port,
        };
        etcd.wait_healthy(Duration::from_secs(20));
        etcd
    }

    /// One etcd for every test of this binary.
    pub fn shared() -> &'static Etcd {
        static SHARED: OnceLock<Etcd> = OnceLock::new();
        SHARED.get_or_init(Etcd::start)
    }

    /// Waits until etcd answers `/health`.
    pub fn wait_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.health_by_tcp() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log =
            std::fs::read_to_string(format!("{}.log", self.dir.display())).unwrap_or_default();
        panic!("etcd at {} did not become healthy: {log}", self.url);
    }

    fn health_by_tcp(&self) -> bool {
        use std::io::Read;
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.client_port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let req = "GET /health HTTP/1.0\r\nHost: x\r\n\r\n";
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.contains("\"health\":\"true\"")
    }

    /// Kills etcd (SIGKILL), as an outage.
    pub fn kill(&self) {
        let _ = Command::new("kill")
            .args(["-9", &self.pid.to_string()])
            .status();
    }

    /// Starts etcd again on the same ports and data directory (after `kill`).
    pub fn restart(&mut self) {
        // The old wrapper removes the directory when its stdin closes: keep it open, and move
        // the data aside for the new one to take over.
        let dir = self.dir.clone();
        let moved = std::env::temp_dir().join(unique("tern-etcd-restarted"));
        std::fs::rename(&dir, &moved).expect("etcd data directory moves");
        let next = Etcd::start_in(moved, self.client_port, self.peer_port);
        let old = std::mem::replace(self, next);
        drop(old);
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.wrapper.wait();
    }
}

/// One `tern serve` of a cluster.
pub struct Node {
    pub served: Served,
    pub id: String,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The media address (127.0.0.N).
    pub media: String,
}

impl Node {
    /// Every log line so far (waits 100 ms for more).
    pub fn log(&mut self) -> Vec<String> {
        self.served
            .wait_line("\u{0}never", Duration::from_millis(100));
        self.served.log.clone()
    }
}

/// A cluster's common settings: its etcd, key prefix and secrets directory.
pub struct ClusterSpec {
    pub etcd_url: String,
    pub prefix: String,
    pub dir: PathBuf,
}

impl ClusterSpec {
    /// A fresh cluster (own key prefix) on `etcd`.
    pub fn new(etcd: &Etcd) -> ClusterSpec {
        let name = unique("tern-cluster");
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("jwt-secret"), SECRET).unwrap();
        std::fs::write(
            dir.join("cluster-secret"),
            "cluster-secret-of-this-test-0123",
        )
        .unwrap();
        std::fs::write(dir.join("admin-token"), ADMIN_TOKEN).unwrap();
        ClusterSpec {
            etcd_url: etcd.url.clone(),
            prefix: format!("/{name}"),
            dir,
        }
    }

    /// Starts node `id` with media on `media` (127.0.0.N); `extra` is appended to its config
    /// (inside `[cluster]`, which comes last).
    pub fn node(&self, id: &str, media: &str, extra: &str) -> Node {
        let node_dir = self.dir.join(id);
        std::fs::create_dir_all(&node_dir).unwrap();
        let toml = format!(
            "[http]\nlisten = \"127.0.0.1:0\"\n\n\
             [media]\nbind = \"{media}\"\nport_base = 0\nworkers = [0]\nplacement = \"unbound\"\n\n\
             [auth]\njwt_secret_file = \"{}\"\nadmin_token_file = \"{}\"\n\n\
             [limits]\nsessions_per_ip = 1000\nrequests_per_minute = 100000\n\n\
             [cluster]\netcd = [\"{}\"]\nnode_id = \"{id}\"\ncluster_secret_file = \"{}\"\n\
             prefix = \"{}\"\n{extra}\n",
            self.dir.join("jwt-secret").display(),
            self.dir.join("admin-token").display(),
            self.etcd_url,
            self.dir.join("cluster-secret").display(),
            self.prefix,
        );
        std::fs::write(node_dir.join("tern.toml"), toml).unwrap();
        let served = Served::start(node_dir, &[]);
        let base = served.base.clone();
        Node {
            served,
            id: id.to_string(),
            base,
            media: media.to_string(),
        }
    }
}

impl Drop for ClusterSpec {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A token for `room` (all streams) signed with the cluster's HS256 secret.
pub fn token(room: &str, publish: bool, subscribe: bool, identity: &str) -> String {
    tern::control::auth::TokenMinter::hs256(SECRET.as_bytes().to_vec())
        .unwrap()
        .mint(
            room,
            None,
            publish,
            subscribe,
            identity,
            Duration::from_secs(600),
        )
}

/// `series` in `base`'s `/metrics`: one series with its labels, or a bare name summed over its
/// series (PromQL's `sum`, e.g. a per-worker counter).
pub async fn metric(base: &str, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    metrics_support::sum(&text, series)
}

/// Waits until `f` holds, polling every 100 ms; false if `timeout` passes first.
pub async fn until<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every node in `bases` sees `n` nodes up.
pub async fn until_nodes(bases: &[&str], n: f64) {
    for base in bases {
        assert!(
            until(Duration::from_secs(15), || async move {
                metric(base, "tern_cluster_nodes").await == Some(n)
                    && metric(base, "tern_cluster_healthy").await == Some(1.0)
            })
            .await,
            "{base} never saw {n} healthy nodes"
        );
    }
}

/// A webrtc-rs publisher of `room/stream` (VP8, packets `payload(i)` at 100/s from the moment
/// it connects).
pub struct Publisher {
    pub pc: Arc<RTCPeerConnection>,
    pub sending: tokio::task::JoinHandle<()>,
    /// Where the WHIP answer said the session is.
    pub location: String,
}

impl Publisher {
    pub async fn close(self) {
        self.sending.abort();
        let _ = self.pc.close().await;
    }
}

/// Publishes with WHIP to `base`; `Err` carries the HTTP status and body if it is refused.
pub async fn publish(
    base: &str,
    (room, stream): (&str, &str),
    token: &str,
) -> Result<Publisher, (u16, String)> {
    let pc = peer(None).await;
    let track = Arc::new(TrackLocalStaticRTP::new(
        RTCRtpCodecCapability {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90000,
            ..Default::default()
        },
        "video".to_owned(),
        format!("{room}-{stream}"),
    ));
    let sender = pc
        .add_track(Arc::clone(&track) as Arc<dyn TrackLocal + Send + Sync>)
        .await
        .unwrap();
    tokio::spawn(async move { while sender.read_rtcp().await.is_ok() {} });
    let (status, body, location) =
        signal_located(&pc, &format!("{base}/whip/{room}/{stream}"), token).await;
    if status != 201 {
        let _ = pc.close().await;
        return Err((status, body));
    }
    wait_connected(&pc, "publisher").await;
    let sending = tokio::spawn(async move {
        for i in 0..6000u32 {
            let packet = webrtc::rtp::packet::Packet {
                header: webrtc::rtp::header::Header {
                    version: 2,
                    marker: true,
                    payload_type: 96,
                    sequence_number: i as u16,
                    timestamp: i * 3000,
                    ..Default::default()
                },
                payload: Bytes::from(payload(i)),
            };
            if track.write_rtp(&packet).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    Ok(Publisher {
        pc,
        sending,
        location,
    })
}

/// Offer → POST → answer, keeping the `Location` header.
pub async fn signal_located(
    pc: &RTCPeerConnection,
    url: &str,
    token: &str,
) -> (u16, String, String) {
    use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
    let offer = pc.create_offer(None).await.unwrap();
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await.unwrap();
    let _ = gathered.recv().await;
    let sdp = pc.local_description().await.unwrap().sdp;
    let resp = reqwest::Client::new()
        .post(url)
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/sdp")
        .body(sdp)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = resp.text().await.unwrap();
    if status == 201 {
        pc.set_remote_description(RTCSessionDescription::answer(body.clone()).unwrap())
            .await
            .unwrap();
    }
    (status, body, location)
}

/// A webrtc-rs viewer; the payloads it receives arrive on `rx`.
pub struct Viewer {
    pub pc: Arc<RTCPeerConnection>,
    pub rx: mpsc::Receiver<Vec<u8>>,
    pub location: String,
}

impl Viewer {
    /// Receives payloads until `n` arrived or `timeout` passed; returns their indexes.
    pub async fn receive(&mut self, n: usize, timeout: Duration) -> Vec<u32> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(p)) => got.push(super::webrtc_client::check_payload(&p)),
                _ => break,
            }
        }
        got
    }

    pub async fn close(self) {
        let _ = self.pc.close().await;
    }
}

/// Subscribes with WHEP at `base`, retrying while the stream is not (yet) known there.
pub async fn view(base: &str, (room, stream): (&str, &str), token: &str) -> Viewer {
    let url = format!("{base}/whep/{room}/{stream}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (pc, rx) = subscriber_peer(None).await;
        let (status, body, location) = signal_located(&pc, &url, token).await;
        if status == 201 {
            wait_connected(&pc, "viewer").await;
            return Viewer { pc, rx, location };
        }
        let _ = pc.close().await;
        assert!(
            status == 404 && Instant::now() < deadline,
            "WHEP {url}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a client does when its media stops: subscribe again (at `base`) until media flows,
/// within `timeout`; each attempt waits a second for its first payload.
pub async fn view_until_media(
    base: &str,
    stream: (&str, &str),
    token: &str,
    timeout: Duration,
) -> Viewer {
    let deadline = Instant::now() + timeout;
    loop {
        let mut v = view(base, stream, token).await;
        if !v.receive(1, Duration::from_secs(1)).await.is_empty() {
            return v;
        }
        v.close().await;
        assert!(
            Instant::now() < deadline,
            "no media at {base} within {timeout:?}"
        );
    }
}

/// `signal` with no retry, for tests that expect a refusal.
pub async fn offer_once(base: &str, path: &str, token: &str) -> (u16, String) {
    let (pc, _rx) = subscriber_peer(None).await;
    let r = signal(&pc, &format!("{base}{path}"), token).await;
    let _ = pc.close().await;
    r
}

/// A simulcast payload: VP8 descriptor (start of partition 0), a keyframe every 30th packet
/// (else an inter frame), the layer's letter and the index.
pub fn layer_payload(layer: u8, i: u32) -> Vec<u8> {
    let mut p = vec![0x10, if i % 30 == 0 { 0x10 } else { 0x11 }, layer];
    p.extend_from_slice(&i.to_be_bytes());
    p.resize(300, layer);
    p
}

/// `(layer letter, index)` of a [`layer_payload`].
pub fn parse_layer_payload(p: &[u8]) -> (u8, u32) {
    assert!(p.len() >= 7, "not a layer payload: {p:?}");
    (p[2], u32::from_be_bytes([p[3], p[4], p[5], p[6]]))
}

/// A webrtc-rs simulcast publisher: layers `h` (first: the default) and `l`, each 100 packets/s
/// of [`layer_payload`]; `plis` collects when each keyframe request for layer `h` arrived.
pub struct SimulcastPublisher {
    pub pc: Arc<RTCPeerConnection>,
    pub sending: tokio::task::JoinHandle<()>,
    pub plis: Arc<std::sync::Mutex<Vec<Instant>>>,
}

impl SimulcastPublisher {
    pub async fn close(self) {
        self.sending.abort();
        let _ = self.pc.close().await;
    }
}

/// Publishes layers `h` and `l` with WHIP at `base`.
pub async fn publish_simulcast(
    base: &str,
    (room, stream): (&str, &str),
    token: &str,
) -> SimulcastPublisher {
    use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
    let pc = super::webrtc_client::peer_with_extensions(
        None,
        &[
            webrtc::sdp::extmap::SDES_RTP_STREAM_ID_URI,
            "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
        ],
    )
    .await;
    let codec = RTCRtpCodecCapability {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90000,
        ..Default::default()
    };
    let layer = |rid: &str| {
        Arc::new(TrackLocalStaticRTP::new_with_rid(
            codec.clone(),
            "video".to_owned(),
            rid.to_owned(),
            format!("{room}-{stream}"),
        ))
    };
    let (h, l) = (layer("h"), layer("l"));
    let sender = pc
        .add_track(Arc::clone(&h) as Arc<dyn TrackLocal + Send + Sync>)
        .await
        .unwrap();
    sender
        .add_encoding(Arc::clone(&l) as Arc<dyn TrackLocal + Send + Sync>)
        .await
        .unwrap();
    let plis = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&plis);
    tokio::spawn(async move {
        while let Ok((packets, _)) = sender.read_rtcp().await {
            for p in packets {
                if p.as_any().downcast_ref::<PictureLossIndication>().is_some() {
                    seen.lock().unwrap().push(Instant::now());
                }
            }
        }
    });
    let (status, body, _) =
        signal_located(&pc, &format!("{base}/whip/{room}/{stream}"), token).await;
    assert_eq!(status, 201, "simulcast WHIP: {body}");
    wait_connected(&pc, "simulcast publisher").await;
    let sending = tokio::spawn(async move {
        for i in 0..6000u32 {
            for (track, letter) in [(&h, b'h'), (&l, b'l')] {
                let packet = webrtc::rtp::packet::Packet {
                    header: webrtc::rtp::header::Header {
                        version: 2,
                        marker: true,
                        payload_type: 96,
                        sequence_number: i as u16,
                        timestamp: i * 3000,
                        ..Default::default()
                    },
                    payload: Bytes::from(layer_payload(letter, i)),
                };
                if track.write_rtp(&packet).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    SimulcastPublisher { pc, sending, plis }
}

impl Viewer {
    /// Like [`Viewer::receive`], for any payload.
    pub async fn receive_raw(&mut self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(p)) => got.push(p),
                _ => break,
            }
        }
        got
    }
}

/// A UDP relay at `front` for the media of `back` that drops every `nth` RTP packet on its
/// way back to whoever sent to `front` (RTCP, STUN and DTLS pass), as a lossy link between
/// nodes; returns how many it dropped so far.
pub async fn lossy_relay(
    front: std::net::SocketAddr,
    back: std::net::SocketAddr,
    nth: u64,
) -> Arc<AtomicU64> {
    use std::collections::HashMap;
    use tokio::net::UdpSocket;
    let dropped = Arc::new(AtomicU64::new(0));
    let front_sock = Arc::new(UdpSocket::bind(front).await.expect("lossy relay binds"));
    let counter = Arc::clone(&dropped);
    tokio::spawn(async move {
        let mut legs: HashMap<std::net::SocketAddr, Arc<UdpSocket>> = HashMap::new();
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = front_sock.recv_from(&mut buf).await {
            let leg = match legs.get(&from) {
                Some(l) => Arc::clone(l),
                None => {
                    let leg = Arc::new(UdpSocket::bind((front.ip(), 0)).await.unwrap());
                    leg.connect(back).await.unwrap();
                    legs.insert(from, Arc::clone(&leg));
                    let (leg2, front2, counter) = (
                        Arc::clone(&leg),
                        Arc::clone(&front_sock),
                        Arc::clone(&counter),
                    );
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 2048];
                        let mut rtp = 0u64;
                        while let Ok(n) = leg2.recv(&mut buf).await {
                            // RFC 5761: RTCP packet types 200–207 in the second byte.
                            let is_rtp = n > 12
                                && (128..192).contains(&buf[0])
                                && !(200..=207).contains(&buf[1]);
                            if is_rtp {
                                rtp += 1;
                                if rtp % nth == 0 {
                                    counter.fetch_add(1, Ordering::Relaxed);
                                    continue;
                                }
                            }
                            let _ = front2.send_to(&buf[..n], from).await;
                        }
                    });
                    leg
                }
            };
            let _ = leg.send(&buf[..n]).await;
        }
    });
    dropped
}
