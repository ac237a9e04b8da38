//! A publisher whose offer lists no SSRCs (no `a=ssrc`, no `a=ssrc-group`), as WHIP allows:
//! the relay accepts it when the MID header extension was negotiated, binds the SSRC of the
//! first authenticated packet carrying the section's MID, and the subscriber gets the media.
//! An offer with neither is refused with 400 and a reason that names the section.

mod webrtc_client;

use std::collections::BTreeSet;
use std::time::Duration;

use webrtc_client::{cam_tokens, check_payload, media_flow_edited, signal_edited, start_relay};
use webrtc_client::{peer, Edits};

const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

fn without_ssrcs(offer: &str) -> String {
    let kept: String = offer
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("a=ssrc"))
        .collect();
    assert!(kept.len() < offer.len(), "the client's offer listed SSRCs");
    kept
}

fn without_ssrcs_or_mid_extension(offer: &str) -> String {
    without_ssrcs(offer)
        .split_inclusive('\n')
        .filter(|l| !(l.starts_with("a=extmap:") && l.contains(MID_URI)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_relay_finds_the_stream_by_its_mid() {
    let running = start_relay(|_| {}).await;
    let base = format!("http://{}", running.http_addr);
    let (pub_token, sub_token) = cam_tokens(&running);
    let edits = Edits {
        offer: Some(&without_ssrcs),
        answer: None,
    };
    let mut flow = media_flow_edited(&base, &pub_token, &sub_token, None, &edits).await;

    let mut got = BTreeSet::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(p)) = tokio::time::timeout_at(until, flow.rx.recv()).await {
        got.insert(check_payload(&p));
    }
    let c = running.relay.dp.total_counters();
    assert!(
        got.len() > 100,
        "the subscriber got {} payloads; relay: {} SSRCs learned, {} packets of unknown SSRC",
        got.len(),
        c.ssrcs_learned,
        c.unknown_ssrc
    );
    assert_eq!(c.ssrcs_learned, 1, "one stream, bound once");
    assert_eq!(c.unknown_ssrc, 0);
    flow.close().await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_offer_with_neither_ssrc_nor_mid_extension_is_refused() {
    let running = start_relay(|_| {}).await;
    let base = format!("http://{}", running.http_addr);
    let (pub_token, _) = cam_tokens(&running);
    let publisher = peer(None).await;
    publisher
        .add_transceiver_from_kind(
            webrtc::rtp_transceiver::rtp_codec::RTPCodecType::Video,
            None,
        )
        .await
        .unwrap();
    let edits = Edits {
        offer: Some(&without_ssrcs_or_mid_extension),
        answer: None,
    };
    let (status, body) = signal_edited(
        &publisher,
        &format!("{base}/whip/room1/cam"),
        &pub_token,
        &edits,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("media section '0' signals neither its SSRC"),
        "{body}"
    );
    let _ = publisher.close().await;
    running.stop().await;
}
