//! For the automatic-layer tests: a synthetic simulcast publisher (webrtc-rs, VP8 layers "h"
//! at 1.2 Mbit/s and "l" at 150 kbit/s, keyframes every half second, and 50 kbit/s of audio),
//! a webrtc-rs subscriber that says which layer each packet came from, and a shaping proxy
//! for the relay → subscriber direction: a rate limit with a drop-tail queue that counts what
//! it forwards and drops per SSRC (RTP headers are in the clear under SRTP).
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use webrtc::api::interceptor_registry::{configure_nack, configure_rtcp_reports};
use webrtc::api::media_engine::{MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::APIBuilder;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpHeaderExtensionCapability, RTPCodecType,
};
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::{TrackLocal, TrackLocalWriter};

use super::webrtc_client::{signal, signal_edited, wait_connected, Edits};

/// A peer with the MID (and for `simulcast` the RID) extension; with `twcc`, webrtc-rs's
/// transport-cc receiver (it negotiates the extension and sends feedback).
pub async fn peer(simulcast: bool, twcc: bool) -> Arc<RTCPeerConnection> {
    peer_with(simulcast, twcc, true).await
}

/// `peer`, with RTX for VP8 or (`rtx == false`) without.
pub async fn peer_with(simulcast: bool, twcc: bool, rtx: bool) -> Arc<RTCPeerConnection> {
    tern::control::dtls::install_crypto_provider();
    let mut media = MediaEngine::default();
    media.register_default_codecs().unwrap();
    // RTX for VP8 (webrtc-rs does not register it): the relay probes on it, and webrtc-rs
    // reads a declared repair stream through its interceptors, transport-cc included.
    if rtx {
        media
            .register_codec(
                webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecParameters {
                    capability: RTCRtpCodecCapability {
                        mime_type: "video/rtx".to_owned(),
                        clock_rate: 90000,
                        sdp_fmtp_line: "apt=96".to_owned(),
                        ..Default::default()
                    },
                    payload_type: 97,
                    ..Default::default()
                },
                RTPCodecType::Video,
            )
            .unwrap();
    }
    let mut uris = vec![webrtc::sdp::extmap::SDES_MID_URI];
    if simulcast {
        uris.push(webrtc::sdp::extmap::SDES_RTP_STREAM_ID_URI);
    }
    for uri in uris {
        for kind in [RTPCodecType::Audio, RTPCodecType::Video] {
            media
                .register_header_extension(
                    RTCRtpHeaderExtensionCapability {
                        uri: uri.to_owned(),
                    },
                    kind,
                    None,
                )
                .unwrap();
        }
    }
    let mut registry = configure_nack(Registry::new(), &mut media);
    registry = configure_rtcp_reports(registry);
    if twcc {
        registry =
            webrtc::api::interceptor_registry::configure_twcc_receiver_only(registry, &mut media)
                .unwrap();
    }
    let mut settings = SettingEngine::default();
    settings.set_include_loopback_candidate(true);
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    let api = APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build();
    Arc::new(
        api.new_peer_connection(RTCConfiguration::default())
            .await
            .unwrap(),
    )
}

pub const HIGH_BPS: usize = 1_200_000;
pub const LOW_BPS: usize = 150_000;
pub const AUDIO_BPS: usize = 50_000;

/// The publisher and its sending task.
pub struct Publisher {
    pub pc: Arc<RTCPeerConnection>,
    pub sending: tokio::task::JoinHandle<()>,
}

/// A VP8 track of stream "cam": a simulcast layer with `rid`, or (`None`) a whole stream.
pub fn vp8(rid: Option<&str>) -> Arc<TrackLocalStaticRTP> {
    let codec = RTCRtpCodecCapability {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90000,
        ..Default::default()
    };
    let (id, stream) = ("video".to_owned(), "cam".to_owned());
    Arc::new(match rid {
        Some(rid) => TrackLocalStaticRTP::new_with_rid(codec, id, rid.to_owned(), stream),
        None => TrackLocalStaticRTP::new(codec, id, stream),
    })
}

/// Publishes `room1/cam` with layers "h" (first: the default) and "l", and audio, until
/// aborted. Each video payload: a VP8 descriptor (start of a keyframe every 15th frame), then
/// the layer's RID byte.
pub async fn simulcast_publisher(base: &str, token: &str) -> Publisher {
    publisher(base, token, true).await
}

/// [`simulcast_publisher`], or without `simulcast` one video stream of the low layer's rate
/// (its payloads tagged "l"), and audio.
pub async fn publisher(base: &str, token: &str, simulcast: bool) -> Publisher {
    let pc = peer(simulcast, false).await;
    let (high, low) = (vp8(Some("h")), vp8(Some("l")));
    let first = if simulcast {
        Arc::clone(&high)
    } else {
        vp8(None)
    };
    let sender = pc
        .add_track(Arc::clone(&first) as Arc<dyn TrackLocal + Send + Sync>)
        .await
        .unwrap();
    if simulcast {
        sender
            .add_encoding(Arc::clone(&low) as Arc<dyn TrackLocal + Send + Sync>)
            .await
            .unwrap();
    }
    tokio::spawn(async move { while sender.read_rtcp().await.is_ok() {} });
    let audio = Arc::new(TrackLocalStaticRTP::new(
        RTCRtpCodecCapability {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48000,
            channels: 2,
            ..Default::default()
        },
        "audio".to_owned(),
        "cam".to_owned(),
    ));
    let audio_sender = pc
        .add_track(Arc::clone(&audio) as Arc<dyn TrackLocal + Send + Sync>)
        .await
        .unwrap();
    tokio::spawn(async move { while audio_sender.read_rtcp().await.is_ok() {} });
    let (status, body) = signal(&pc, &format!("{base}/whip/room1/cam"), token).await;
    assert_eq!(status, 201, "WHIP: {body}");
    wait_connected(&pc, "publisher").await;
    let sending = tokio::spawn(async move {
        let start = Instant::now();
        let mut seqs = [0u16; 3];
        for frame in 0u32.. {
            let key = frame % 15 == 0;
            let layers = if simulcast {
                [(&high, HIGH_BPS, b'h'), (&low, LOW_BPS, b'l')]
            } else {
                [(&first, LOW_BPS, b'l'), (&low, 0, b'l')] // one stream, the low layer's rate
            };
            for (i, (track, bps, tag)) in layers.into_iter().enumerate() {
                let mut left = bps / 8 / 30;
                let mut first = true;
                while left > 0 {
                    let size = left.min(1100);
                    left -= size;
                    let mut payload = vec![0u8; size.max(8)];
                    payload[..5].copy_from_slice(&[
                        if first { 0x10 } else { 0x00 },
                        if key { 0x10 } else { 0x11 },
                        0x02,
                        0x00,
                        tag,
                    ]);
                    first = false;
                    let packet = webrtc::rtp::packet::Packet {
                        header: webrtc::rtp::header::Header {
                            version: 2,
                            marker: left == 0,
                            payload_type: 96,
                            sequence_number: seqs[i],
                            timestamp: frame * 3000,
                            ..Default::default()
                        },
                        payload: Bytes::from(payload),
                    };
                    seqs[i] = seqs[i].wrapping_add(1);
                    let _ = track.write_rtp(&packet).await;
                }
            }
            // Audio: 50 packets/s of AUDIO_BPS / 50 bytes, interleaved with the frames.
            for _ in 0..(if frame % 3 == 2 { 1 } else { 2 }) {
                let packet = webrtc::rtp::packet::Packet {
                    header: webrtc::rtp::header::Header {
                        version: 2,
                        payload_type: 111,
                        sequence_number: seqs[2],
                        timestamp: u32::from(seqs[2]) * 960,
                        ..Default::default()
                    },
                    payload: Bytes::from(vec![0xa5u8; AUDIO_BPS / 8 / 50]),
                };
                seqs[2] = seqs[2].wrapping_add(1);
                let _ = audio.write_rtp(&packet).await;
            }
            tokio::time::sleep_until(start + Duration::from_micros(33_333 * u64::from(frame + 1)))
                .await;
        }
    });
    Publisher { pc, sending }
}

/// A received video packet: when, and its layer's RID byte.
pub type Layered = (Instant, u8);

/// Reads layers until `deadline`; returns the first time `want` was seen, if it was.
pub async fn until_layer(
    rx: &mut mpsc::UnboundedReceiver<Layered>,
    want: u8,
    deadline: Instant,
) -> Option<Instant> {
    while let Ok(Some((at, tag))) = tokio::time::timeout_at(deadline, rx.recv()).await {
        if tag == want {
            return Some(at);
        }
    }
    None
}

/// A subscriber of `room1/cam` (receive-only video and audio); video packets' layers arrive on
/// the channel. `answer` may rewrite the relay's answer (to go through a proxy).
pub async fn layer_subscriber(
    base: &str,
    token: &str,
    twcc: bool,
    answer: Option<&(dyn Fn(&str) -> String + Sync)>,
) -> (Arc<RTCPeerConnection>, mpsc::UnboundedReceiver<Layered>) {
    layer_subscriber_with(base, token, (twcc, true), answer).await
}

/// `layer_subscriber` with transport-cc and RTX each on or off.
pub async fn layer_subscriber_with(
    base: &str,
    token: &str,
    (twcc, rtx): (bool, bool),
    answer: Option<&(dyn Fn(&str) -> String + Sync)>,
) -> (Arc<RTCPeerConnection>, mpsc::UnboundedReceiver<Layered>) {
    let pc = peer_with(false, twcc, rtx).await;
    for kind in [RTPCodecType::Video, RTPCodecType::Audio] {
        pc.add_transceiver_from_kind(
            kind,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                send_encodings: vec![],
            }),
        )
        .await
        .unwrap();
    }
    let (tx, rx) = mpsc::unbounded_channel();
    pc.on_track(Box::new(move |remote, _, _| {
        let tx = tx.clone();
        Box::pin(async move {
            if remote.kind() != RTPCodecType::Video {
                tokio::spawn(async move { while remote.read_rtp().await.is_ok() {} });
                return;
            }
            tokio::spawn(async move {
                while let Ok((packet, _)) = remote.read_rtp().await {
                    if let Some(&tag) = packet.payload.get(4) {
                        let _ = tx.send((Instant::now(), tag));
                    }
                }
            });
        })
    }));
    let edits = Edits {
        offer: None,
        answer,
    };
    let mut status = 0;
    for _ in 0..50 {
        let (s, _) = signal_edited(&pc, &format!("{base}/whep/room1/cam"), token, &edits).await;
        status = s;
        if s == 201 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 201, "WHEP");
    wait_connected(&pc, "subscriber").await;
    (pc, rx)
}

/// Per SSRC: packets forwarded and dropped by the shaper.
pub type ShaperCounts = HashMap<u32, (u64, u64)>;

/// A proxy between the subscriber and the relay; what the relay sends goes through a rate
/// limit (`rate_bps`, changeable) and a drop-tail queue of `queue_bytes`.
pub struct Shaper {
    pub front: SocketAddr,
    pub relay: Arc<Mutex<Option<SocketAddr>>>,
    pub rate_bps: Arc<AtomicU64>,
    pub counts: Arc<Mutex<ShaperCounts>>,
}

impl Shaper {
    pub async fn start(rate_bps: u64, queue_bytes: usize) -> Shaper {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let shaper = Shaper {
            front: front.local_addr().unwrap(),
            relay: Arc::new(Mutex::new(None)),
            rate_bps: Arc::new(AtomicU64::new(rate_bps)),
            counts: Arc::new(Mutex::new(HashMap::new())),
        };
        let (relay, rate, counts) = (
            Arc::clone(&shaper.relay),
            Arc::clone(&shaper.rate_bps),
            Arc::clone(&shaper.counts),
        );
        tokio::spawn(async move {
            let mut back: Option<(Arc<UdpSocket>, SocketAddr)> = None;
            let mut buf = vec![0u8; 2048];
            loop {
                let Ok((n, client)) = front.recv_from(&mut buf).await else {
                    return;
                };
                let Some(relay) = *relay.lock().unwrap() else {
                    continue;
                };
                if back.is_none() {
                    let b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                    b.connect(relay).await.unwrap();
                    let (b2, f2) = (Arc::clone(&b), Arc::clone(&front));
                    let (rate, counts) = (Arc::clone(&rate), Arc::clone(&counts));
                    tokio::spawn(shape(b2, f2, client, rate, counts, queue_bytes));
                    back = Some((b, client));
                }
                if let Some((b, _)) = &back {
                    let _ = b.send(&buf[..n]).await;
                }
            }
        });
        shaper
    }

    /// Points the answer's UDP candidate at the proxy and the proxy at the relay; the passive
    /// TCP candidate is left out (the shaped path is UDP only).
    pub fn via(&self, answer: &str) -> String {
        answer
            .lines()
            .filter(|line| !(line.starts_with("a=candidate:") && line.contains(" tcp ")))
            .map(|line| {
                let Some(rest) = line.strip_prefix("a=candidate:") else {
                    return line.to_owned();
                };
                let mut f: Vec<String> = rest.split(' ').map(str::to_owned).collect();
                let relay: SocketAddr = format!("{}:{}", f[4], f[5]).parse().unwrap();
                *self.relay.lock().unwrap() = Some(relay);
                f[5] = self.front.port().to_string();
                format!("a=candidate:{}", f.join(" "))
            })
            .collect::<Vec<_>>()
            .join("\r\n")
            + "\r\n"
    }

    /// Forwarded and dropped packets of `ssrcs` so far.
    pub fn counted(&self, ssrcs: &[u32]) -> (u64, u64) {
        let c = self.counts.lock().unwrap();
        ssrcs
            .iter()
            .filter_map(|s| c.get(s))
            .fold((0, 0), |(f, d), (f2, d2)| (f + f2, d + d2))
    }

    /// Every SSRC seen.
    pub fn ssrcs(&self) -> Vec<u32> {
        self.counts.lock().unwrap().keys().copied().collect()
    }
}

/// Datagrams waiting in the shaper, with their departure times.
type Queue = VecDeque<(Instant, Vec<u8>)>;

/// The relay → subscriber direction: serialised at the current rate, dropped past the queue.
async fn shape(
    from_relay: Arc<UdpSocket>,
    to_client: Arc<UdpSocket>,
    client: SocketAddr,
    rate: Arc<AtomicU64>,
    counts: Arc<Mutex<ShaperCounts>>,
    queue_bytes: usize,
) {
    let queue: Arc<Mutex<Queue>> = Arc::new(Mutex::new(VecDeque::new()));
    let (wake_tx, mut wake_rx) = mpsc::unbounded_channel::<()>();
    let q = Arc::clone(&queue);
    tokio::spawn(async move {
        loop {
            let next = q.lock().unwrap().front().map(|(at, _)| *at);
            match next {
                Some(at) => {
                    tokio::time::sleep_until(at).await;
                    let d = q.lock().unwrap().pop_front();
                    if let Some((_, d)) = d {
                        let _ = to_client.send_to(&d, client).await;
                    }
                }
                None => {
                    if wake_rx.recv().await.is_none() {
                        return;
                    }
                }
            }
        }
    });
    let mut last_departure = Instant::now();
    let mut buf = vec![0u8; 2048];
    while let Ok(n) = from_relay.recv(&mut buf).await {
        let d = buf[..n].to_vec();
        let rtp = n >= 12 && d[0] >> 6 == 2 && !(192..=223).contains(&d[1]);
        let ssrc = if rtp {
            u32::from_be_bytes([d[8], d[9], d[10], d[11]])
        } else {
            0
        };
        let now = Instant::now();
        let mut q = queue.lock().unwrap();
        let queued: usize = q.iter().map(|(_, d)| d.len()).sum();
        if queued + n > queue_bytes {
            if rtp {
                counts.lock().unwrap().entry(ssrc).or_default().1 += 1;
            }
            continue;
        }
        if rtp {
            counts.lock().unwrap().entry(ssrc).or_default().0 += 1;
        }
        let bps = rate.load(Ordering::Relaxed).max(1);
        let departure = last_departure.max(now)
            + Duration::from_nanos((n as u64 + 28) * 8 * 1_000_000_000 / bps);
        last_departure = departure;
        q.push_back((departure, d));
        let _ = wake_tx.send(());
    }
}
