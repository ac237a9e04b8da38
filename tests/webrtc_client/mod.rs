//! webrtc-rs peers for end-to-end tests: a publisher and a subscriber that talk WHIP/WHEP to an
//! in-process Tern, plus the relay starter they share.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tern::config::Config;
use tern::control::server::{self, RunningServer};
use tokio::sync::mpsc;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::media_engine::MIME_TYPE_VP8;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::APIBuilder;
use webrtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpHeaderExtensionCapability, RTPCodecType,
};
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::{TrackLocal, TrackLocalWriter};

/// A relay on 127.0.0.1 with ephemeral ports and a known HS256 secret.
pub async fn start_relay(edit: impl FnOnce(&mut Config)) -> RunningServer {
    let mut config = Config::default();
    config.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.media.port_base = 0;
    config.media.placement = tern::config::WorkerPlacement::Unbound;
    edit(&mut config);
    server::start(&config, Some(b"end-to-end-test-secret".to_vec()))
        .await
        .expect("relay starts")
}

/// Ten-minute tokens from the relay's own minter: alice may publish `room1/cam`, bob may
/// subscribe to it.
pub fn cam_tokens(running: &RunningServer) -> (String, String) {
    let minter = running.minter.as_ref().expect("HS256 minter");
    let ttl = Duration::from_secs(600);
    (
        minter.mint("room1", Some("cam"), true, false, "alice", ttl),
        minter.mint("room1", Some("cam"), false, true, "bob", ttl),
    )
}

pub async fn peer(profile: Option<SrtpProtectionProfile>) -> Arc<RTCPeerConnection> {
    peer_with_extensions(profile, &[]).await
}

/// [`peer`], negotiating the video header extensions `video_uris` too (the RID extensions, for
/// a simulcast sender).
pub async fn peer_with_extensions(
    profile: Option<SrtpProtectionProfile>,
    video_uris: &[&str],
) -> Arc<RTCPeerConnection> {
    // The relay may run in another process: pick the rustls provider here too.
    tern::control::dtls::install_crypto_provider();
    let mut media = MediaEngine::default();
    media.register_default_codecs().unwrap();
    // The MID header extension, as browsers negotiate it (webrtc-rs does not by default).
    let mid = [webrtc::sdp::extmap::SDES_MID_URI];
    let uris = mid.iter().map(|u| (*u, RTPCodecType::Audio));
    let uris = uris.chain(
        mid.iter()
            .chain(video_uris)
            .map(|u| (*u, RTPCodecType::Video)),
    );
    for (uri, kind) in uris {
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
    let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
    let mut settings = SettingEngine::default();
    settings.set_include_loopback_candidate(true);
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    if let Some(p) = profile {
        settings.set_srtp_protection_profiles(vec![p]);
    }
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

/// The Chromium offer fixture (comment lines dropped, CRLF line ends): a valid WHIP offer for
/// tests that POST SDP without a live client.
pub fn chromium_offer() -> String {
    std::fs::read_to_string("tests/fixtures/sdp/chromium.sdp")
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n"
}

/// Offer → POST → answer; returns the HTTP status and body.
pub async fn signal(pc: &RTCPeerConnection, url: &str, token: &str) -> (u16, String) {
    signal_edited(pc, url, token, &Edits::default()).await
}

/// Rewrites of the SDP on its way: the offer before it is POSTed, the answer before the peer
/// applies it (to point the peer at a proxy, say). `None` leaves it as it is.
#[derive(Default)]
pub struct Edits<'a> {
    pub offer: Option<&'a (dyn Fn(&str) -> String + Sync)>,
    pub answer: Option<&'a (dyn Fn(&str) -> String + Sync)>,
}

/// [`signal`], with `edits` applied. The returned body is the relay's, unedited.
pub async fn signal_edited(
    pc: &RTCPeerConnection,
    url: &str,
    token: &str,
    edits: &Edits<'_>,
) -> (u16, String) {
    let offer = pc.create_offer(None).await.unwrap();
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await.unwrap();
    let _ = gathered.recv().await;
    let local = pc.local_description().await.unwrap().sdp;
    let sdp = edits.offer.map_or(local.clone(), |edit| edit(&local));
    let resp = reqwest::Client::new()
        .post(url)
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/sdp")
        .body(sdp)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    if status == 201 {
        let answer = edits.answer.map_or(body.clone(), |edit| edit(&body));
        pc.set_remote_description(RTCSessionDescription::answer(answer).unwrap())
            .await
            .unwrap();
    }
    (status, body)
}

pub async fn wait_connected(pc: &RTCPeerConnection, what: &str) {
    for _ in 0..200 {
        match pc.connection_state() {
            RTCPeerConnectionState::Connected => return,
            RTCPeerConnectionState::Failed => panic!("{what}: connection failed"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!(
        "{what}: not connected within 10 s (state {:?})",
        pc.connection_state()
    );
}

pub fn payload(i: u32) -> Vec<u8> {
    // A VP8 payload descriptor byte, then a recognisable body.
    let mut p = vec![0x10];
    p.extend_from_slice(format!("tern frame {i:05} ").as_bytes());
    p.resize(200 + (i as usize % 700), (i % 251) as u8);
    p
}

/// What `media_pair` sets up.
pub struct MediaPair {
    pub running: RunningServer,
    pub publisher: Arc<RTCPeerConnection>,
    pub subscriber: Arc<RTCPeerConnection>,
    pub rx: mpsc::Receiver<Vec<u8>>,
    pub sending: tokio::task::JoinHandle<()>,
}

impl MediaPair {
    /// Closes both peers and stops the relay.
    pub async fn close(self) {
        self.sending.abort();
        let _ = self.publisher.close().await;
        let _ = self.subscriber.close().await;
        self.running.stop().await;
    }
}

/// Checks a received payload is one `payload(i)` produced; returns `i`.
pub fn check_payload(p: &[u8]) -> u32 {
    let text = String::from_utf8_lossy(&p[1..17]).to_string();
    let i: u32 = text
        .trim_start_matches("tern frame ")
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("not ours: {text:?}"));
    assert_eq!(p, payload(i), "payload {i} arrives unchanged");
    i
}

/// A publisher and a subscriber of `room1/cam` connected through a fresh relay, media flowing
/// at 100 packets/s; the subscriber's received payloads arrive on `rx`.
pub async fn media_pair(profile: Option<SrtpProtectionProfile>) -> MediaPair {
    let running = start_relay(|_| {}).await;
    let base = format!("http://{}", running.http_addr);
    let (pub_token, sub_token) = cam_tokens(&running);
    let flow = media_flow(&base, &pub_token, &sub_token, profile).await;
    MediaPair {
        running,
        publisher: flow.publisher,
        subscriber: flow.subscriber,
        rx: flow.rx,
        sending: flow.sending,
    }
}

/// A peer with one receive-only video transceiver; the payloads it receives arrive on the
/// channel.
pub async fn subscriber_peer(
    profile: Option<SrtpProtectionProfile>,
) -> (Arc<RTCPeerConnection>, mpsc::Receiver<Vec<u8>>) {
    let subscriber = peer(profile).await;
    subscriber
        .add_transceiver_from_kind(
            RTPCodecType::Video,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                send_encodings: vec![],
            }),
        )
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel::<Vec<u8>>(1024);
    subscriber.on_track(Box::new(move |remote, _, _| {
        let tx = tx.clone();
        Box::pin(async move {
            tokio::spawn(async move {
                while let Ok((packet, _)) = remote.read_rtp().await {
                    if tx.send(packet.payload.to_vec()).await.is_err() {
                        break;
                    }
                }
            });
        })
    }));
    (subscriber, rx)
}

/// A publisher and a subscriber (tokens for `room1/cam`) of the relay at `base`.
pub struct Flow {
    pub publisher: Arc<RTCPeerConnection>,
    pub subscriber: Arc<RTCPeerConnection>,
    pub rx: mpsc::Receiver<Vec<u8>>,
    pub sending: tokio::task::JoinHandle<()>,
}

impl Flow {
    /// Closes both peers (DTLS close_notify ends their sessions on the relay).
    pub async fn close(self) {
        self.sending.abort();
        let _ = self.publisher.close().await;
        let _ = self.subscriber.close().await;
    }
}

/// Connects a publisher and a subscriber of `room1/cam` through the relay at `base` (any relay:
/// in this process or another), media flowing at 100 packets/s for 15 s.
pub async fn media_flow(
    base: &str,
    pub_token: &str,
    sub_token: &str,
    profile: Option<SrtpProtectionProfile>,
) -> Flow {
    media_flow_edited(base, pub_token, sub_token, profile, &Edits::default()).await
}

/// [`media_flow`], with the publisher's offer and answer rewritten by `publisher_edits`.
pub async fn media_flow_edited(
    base: &str,
    pub_token: &str,
    sub_token: &str,
    profile: Option<SrtpProtectionProfile>,
    publisher_edits: &Edits<'_>,
) -> Flow {
    // Publisher.
    let publisher = peer(profile).await;
    let track = Arc::new(TrackLocalStaticRTP::new(
        RTCRtpCodecCapability {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90000,
            ..Default::default()
        },
        "video".to_owned(),
        "alice-cam".to_owned(),
    ));
    let sender = publisher
        .add_track(Arc::clone(&track) as Arc<dyn TrackLocal + Send + Sync>)
        .await
        .unwrap();
    tokio::spawn(async move { while sender.read_rtcp().await.is_ok() {} });
    let (status, body) = signal_edited(
        &publisher,
        &format!("{base}/whip/room1/cam"),
        pub_token,
        publisher_edits,
    )
    .await;
    assert_eq!(status, 201, "WHIP: {body}");
    wait_connected(&publisher, "publisher").await;

    // Media flows from now on, 100 packets/s.
    let writer = Arc::clone(&track);
    let sending = tokio::spawn(async move {
        for i in 0..1500u32 {
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
            if writer.write_rtp(&packet).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });

    // Subscriber: retry until the publisher's DTLS is done and the stream is announced.
    let (subscriber, rx) = subscriber_peer(profile).await;
    let mut status = 0;
    for _ in 0..50 {
        let (s, body) = signal(&subscriber, &format!("{base}/whep/room1/cam"), sub_token).await;
        status = s;
        if s == 201 {
            break;
        }
        assert_eq!(s, 404, "WHEP before the stream is up: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 201, "WHEP eventually succeeds");
    wait_connected(&subscriber, "subscriber").await;
    Flow {
        publisher,
        subscriber,
        rx,
        sending,
    }
}
