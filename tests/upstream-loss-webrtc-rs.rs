//! A real publisher on a lossy uplink: webrtc-rs (its default interceptors: NACK responder)
//! reaches the relay through a UDP proxy that drops, once each, the publisher's RTP packets
//! with a sequence number ending in 5 — one in ten. The relay NACKs them upstream, the
//! publisher retransmits, and the subscriber (webrtc-rs) gets every payload. Before upstream
//! recovery the subscriber lost one in ten for good: its own NACKs found nothing in the cache.

mod webrtc_client;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use webrtc_client::{cam_tokens, check_payload, media_flow_edited, start_relay, Edits};

/// The proxy's address for the publisher, the relay media address it forwards to (learnt from
/// the answer), and how many packets it dropped.
struct LossyProxy {
    front: SocketAddr,
    relay: Arc<Mutex<Option<SocketAddr>>>,
    dropped: Arc<AtomicU64>,
}

fn is_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && d[0] >> 6 == 2 && !(192..=223).contains(&d[1])
}

/// A NAT-like proxy: each publisher address gets its own socket towards the relay.
async fn lossy_proxy(primary_pt: u8) -> LossyProxy {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let proxy = LossyProxy {
        front: front.local_addr().unwrap(),
        relay: Arc::new(Mutex::new(None)),
        dropped: Arc::new(AtomicU64::new(0)),
    };
    let (relay, dropped) = (Arc::clone(&proxy.relay), Arc::clone(&proxy.dropped));
    tokio::spawn(async move {
        let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
        let mut once: HashSet<(u32, u16)> = HashSet::new();
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, client)) = front.recv_from(&mut buf).await else {
                return;
            };
            let Some(relay) = *relay.lock().unwrap() else {
                continue;
            };
            let d = &buf[..n];
            if is_rtp(d) && d[1] & 0x7f == primary_pt {
                let seq = u16::from_be_bytes([d[2], d[3]]);
                let ssrc = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
                if seq % 10 == 5 && once.insert((ssrc, seq)) {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            let back = match backs.get(&client) {
                Some(b) => Arc::clone(b),
                None => {
                    let b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                    b.connect(relay).await.unwrap();
                    let (b2, f2) = (Arc::clone(&b), Arc::clone(&front));
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 2048];
                        while let Ok(n) = b2.recv(&mut buf).await {
                            let _ = f2.send_to(&buf[..n], client).await;
                        }
                    });
                    backs.insert(client, Arc::clone(&b));
                    b
                }
            };
            let _ = back.send(d).await;
        }
    });
    proxy
}

/// Points the answer's UDP host candidate at the proxy, and tells the proxy where the relay is;
/// leaves out the TCP candidate, which would go around the proxy.
fn via_proxy(answer: &str, proxy: &LossyProxy) -> String {
    answer
        .lines()
        .filter(|line| !(line.starts_with("a=candidate:") && line.contains(" tcp ")))
        .map(|line| {
            let Some(rest) = line.strip_prefix("a=candidate:") else {
                return line.to_owned();
            };
            let f: Vec<&str> = rest.split(' ').collect();
            let relay: SocketAddr = format!("{}:{}", f[4], f[5]).parse().unwrap();
            *proxy.relay.lock().unwrap() = Some(relay);
            let mut f = f.clone();
            let port = proxy.front.port().to_string();
            f[5] = &port;
            format!("a=candidate:{}", f.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn packets_lost_on_the_uplink_reach_the_subscriber_anyway() {
    let running = start_relay(|_| {}).await;
    let base = format!("http://{}", running.http_addr);
    let (pub_token, sub_token) = cam_tokens(&running);
    // webrtc-rs registers VP8 as payload type 96.
    let proxy = lossy_proxy(96).await;
    let to_proxy = |answer: &str| via_proxy(answer, &proxy);
    let edits = Edits {
        offer: None,
        answer: Some(&to_proxy),
    };
    let mut flow = media_flow_edited(&base, &pub_token, &sub_token, None, &edits).await;

    let mut got = BTreeSet::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(p)) = tokio::time::timeout_at(until, flow.rx.recv()).await {
        got.insert(check_payload(&p));
    }
    let (first, last) = (*got.first().unwrap(), *got.last().unwrap());
    assert!(last - first > 300, "media flowed: {first}..{last}");
    // The newest few may still be on their way back; everything older must be there.
    let missing: Vec<u32> = (first..last - 20).filter(|i| !got.contains(i)).collect();
    let dropped = proxy.dropped.load(Ordering::Relaxed);
    let c = running.relay.dp.total_counters();
    assert!(dropped >= 30, "the proxy dropped {dropped}");
    assert!(
        missing.is_empty(),
        "the subscriber never got {} of the payloads the proxy dropped ({dropped}): {missing:?}; \
         relay: {} NACKs upstream, {} recovered, {} lost",
        missing.len(),
        c.upstream_nacks,
        c.upstream_recovered,
        c.upstream_lost
    );
    assert!(c.upstream_recovered >= 30, "{c:?}");
    flow.close().await;
    running.stop().await;
}
