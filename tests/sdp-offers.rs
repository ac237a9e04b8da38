//! Real client offers (tests/fixtures/sdp/) parse and get a valid answer: WHIP publish answers
//! round-trip through our own parser, and WHEP subscribe answers map payload types from every
//! publisher to every subscriber.

use std::net::SocketAddr;

use tern::wire::sdp::{
    answer, parse_offer, payload_type_map, Answer, AnswerParams, Direction, MediaKind, Offer, Role,
    Setup, MAX_LAYERS, REPAIRED_RTP_STREAM_ID, RTP_STREAM_ID,
};

/// `(kind, payload type, rtx payload type)` of one accepted section.
type Chosen = (MediaKind, u8, Option<u8>);

/// Fixture name, expected codec per accepted section.
const FIXTURES: &[(&str, &[Chosen])] = &[
    (
        "chromium",
        &[
            (MediaKind::Audio, 111, None),
            (MediaKind::Video, 96, Some(97)),
        ],
    ),
    (
        "firefox",
        &[
            (MediaKind::Audio, 109, None),
            (MediaKind::Video, 120, Some(124)),
        ],
    ),
    (
        "gstreamer-webrtcbin",
        &[(MediaKind::Video, 96, None), (MediaKind::Audio, 97, None)],
    ),
    (
        "pion-v4",
        &[
            (MediaKind::Video, 96, Some(97)),
            (MediaKind::Audio, 111, None),
        ],
    ),
    (
        "aiortc",
        &[
            (MediaKind::Audio, 96, None),
            (MediaKind::Video, 97, Some(98)),
        ],
    ),
    (
        "webrtc-rs",
        &[
            (MediaKind::Audio, 111, None),
            (MediaKind::Video, 96, Some(97)),
        ],
    ),
];

const CANDIDATE: &str = "198.51.100.4:40003";
const FINGERPRINT: [u8; 32] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];

/// The fixture text without its leading `#` comment block, with CRLF line endings as sent.
fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/sdp/{name}.sdp",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\r\n"))
        .collect()
}

fn params(role: Role<'_>) -> AnswerParams<'_> {
    AnswerParams {
        ice_ufrag: "tErN",
        ice_pwd: "relaypasswordrelaypass",
        fingerprint_sha256: FINGERPRINT,
        candidate: CANDIDATE.parse().unwrap(),
        tcp_candidate: None,
        role,
        session_id: 7_000_000_001,
    }
}

/// What every answer must satisfy, checked by re-parsing it with our own parser.
fn check_answer(name: &str, offer: &Offer, answer: &Answer) -> Offer {
    let sdp = &answer.sdp;
    assert!(sdp.starts_with("v=0\r\no=- 7000000001 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"));
    assert!(sdp.contains("\r\na=ice-lite\r\n"), "{name}: ice-lite");
    assert!(sdp.contains("\r\na=msid-semantic: WMS *\r\n"), "{name}");
    assert!(!sdp.contains("\n\n") && sdp.ends_with("\r\n"), "{name}");
    let back =
        parse_offer(sdp).unwrap_or_else(|e| panic!("{name}: answer does not parse: {e}\n{sdp}"));

    let mids: Vec<&str> = offer.media.iter().map(|m| m.mid.as_str()).collect();
    let back_mids: Vec<&str> = back.media.iter().map(|m| m.mid.as_str()).collect();
    assert_eq!(mids, back_mids, "{name}: m-lines and mids in offer order");
    for (o, a) in offer.media.iter().zip(&back.media) {
        assert_eq!(o.kind, a.kind, "{name}: kind of mid {}", o.mid);
    }

    let live: Vec<&str> = back
        .media
        .iter()
        .filter(|m| m.port != 0)
        .map(|m| m.mid.as_str())
        .collect();
    assert_eq!(back.bundle, live, "{name}: BUNDLE lists the accepted mids");
    assert_eq!(back.setup, Setup::Passive, "{name}");
    assert_eq!(back.ice_ufrag, "tErN");
    assert_eq!(back.ice_pwd, "relaypasswordrelaypass");
    assert_eq!(back.fingerprints.len(), 1);
    assert_eq!(back.fingerprints[0].algorithm, "sha-256");
    assert_eq!(back.fingerprints[0].value, FINGERPRINT);

    let addr: SocketAddr = CANDIDATE.parse().unwrap();
    let candidate = format!("1 1 udp 2130706431 {} {} typ host", addr.ip(), addr.port());
    for m in &back.media {
        if m.port == 0 {
            assert_eq!(
                m.direction,
                Direction::Inactive,
                "{name}: rejected mid {}",
                m.mid
            );
            continue;
        }
        assert_eq!(m.port, 9);
        assert_eq!(
            m.codecs.len(),
            1,
            "{name}: exactly one codec in mid {}",
            m.mid
        );
        assert!(m.rtcp_mux, "{name}: rtcp-mux in mid {}", m.mid);
        assert_eq!(
            m.candidates,
            std::slice::from_ref(&candidate),
            "{name}: one host candidate"
        );
        assert!(m.end_of_candidates);
        let offered = offer.media.iter().find(|o| o.mid == m.mid).unwrap();
        assert_eq!(
            m.rtcp_rsize, offered.rtcp_rsize,
            "{name}: rtcp-rsize only if offered"
        );
        let c = &m.codecs[0];
        let oc = offered
            .codecs
            .iter()
            .find(|o| o.payload_type == c.payload_type)
            .unwrap();
        assert!(oc.name.eq_ignore_ascii_case(&c.name) && oc.clock_rate == c.clock_rate);
        for e in &m.extensions {
            assert!(
                offered.extensions.contains(e),
                "{name}: extmap {e:?} keeps the offer's id"
            );
        }
    }
    back
}

#[test]
fn client_offers_get_valid_publish_answers() {
    for (name, expected) in FIXTURES {
        let text = fixture(name);
        let offer = parse_offer(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            parse_offer(&text.replace("\r\n", "\n")).unwrap(),
            offer,
            "{name}: LF"
        );
        assert!(
            !offer.fingerprints.is_empty() && offer.setup == Setup::ActPass,
            "{name}"
        );

        let a = answer(&offer, &params(Role::Publish)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let back = check_answer(name, &offer, &a);
        let got: Vec<Chosen> = a
            .media
            .iter()
            .map(|m| (m.kind, m.codec.payload_type, m.codec.rtx))
            .collect();
        assert_eq!(&got, expected, "{name}: chosen codecs");
        for m in &a.media {
            assert!(m.ssrc.is_some(), "{name}: every fixture declares its SSRCs");
            // webrtc-rs (like pion v3) negotiates RTX without declaring an FID group.
            let fid = !offer
                .media
                .iter()
                .find(|o| o.mid == m.mid)
                .unwrap()
                .fid_groups
                .is_empty();
            let rtx = m.codec.rtx.is_some() && fid;
            assert_eq!(m.rtx_ssrc.is_some(), rtx, "{name}: mid {}", m.mid);
            let dir = back
                .media
                .iter()
                .find(|b| b.mid == m.mid)
                .unwrap()
                .direction;
            assert_eq!(dir, Direction::RecvOnly, "{name}");
        }
    }
}

#[test]
fn chromium_offer_details() {
    let offer = parse_offer(&fixture("chromium")).unwrap();
    let video = &offer.media[1];
    assert!(video.codecs.iter().all(|c| !c.is("rtx")), "RTX folded away");
    assert!(
        video.codecs.iter().any(|c| c.is("red")) && video.codecs.iter().any(|c| c.is("ulpfec"))
    );
    assert_eq!(video.codecs.iter().filter(|c| c.is("H264")).count(), 7);
    assert_eq!(video.fid_groups, [(1739462854, 2847001635)]);
    assert_eq!(offer.media[0].candidates.len(), 3);
    let a = answer(&offer, &params(Role::Publish)).unwrap();
    assert_eq!(
        (a.media[1].ssrc, a.media[1].rtx_ssrc),
        (Some(1739462854), Some(2847001635))
    );
    let uris: Vec<&str> = a.media[1]
        .extensions
        .iter()
        .map(|e| e.uri.as_str())
        .collect();
    assert_eq!(
        uris.len(),
        3,
        "abs-send-time, transport-cc, sdes:mid: {uris:?}"
    );
}

#[test]
fn firefox_and_webrtc_rs_details() {
    let ff = parse_offer(&fixture("firefox")).unwrap();
    assert_eq!(ff.fingerprints.len(), 1, "session-level fingerprint");
    assert!(ff.media[0].fid_groups.is_empty() && ff.media[0].ssrcs.len() == 1);
    assert_eq!(
        ff.media[0].codecs[0].fmtp.as_deref(),
        Some("maxplaybackrate=48000;stereo=1;useinbandfec=1")
    );
    assert!(ff.media[1].extensions.iter().any(|e| e.id == 6));

    let aio = parse_offer(&fixture("aiortc")).unwrap();
    assert_eq!(aio.fingerprints.len(), 3, "sha-256, sha-384, sha-512");

    let rs = parse_offer(&fixture("webrtc-rs")).unwrap();
    assert_eq!(rs.media[2].kind, MediaKind::Application);
    let a = answer(&rs, &params(Role::Publish)).unwrap();
    assert!(a
        .sdp
        .contains("m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n"));
    assert!(a.sdp.contains("a=group:BUNDLE 0 1\r\n"));
}

/// A WHEP-style offer from a client's publish offer: every section recvonly, no SSRCs.
fn whep_offer(name: &str) -> Offer {
    let text: String = fixture(name)
        .lines()
        .filter(|l| !l.starts_with("a=ssrc") && !l.starts_with("a=msid:"))
        .map(|l| match l {
            "a=sendonly" | "a=sendrecv" => "a=recvonly\r\n".to_owned(),
            _ => format!("{l}\r\n"),
        })
        .collect();
    let offer = parse_offer(&text).unwrap();
    assert!(offer
        .media
        .iter()
        .all(|m| m.direction == Direction::RecvOnly));
    offer
}

#[test]
fn whep_subscribers_map_payload_types_from_every_publisher() {
    for (pub_name, _) in FIXTURES {
        let publish = answer(
            &parse_offer(&fixture(pub_name)).unwrap(),
            &params(Role::Publish),
        )
        .unwrap();
        let ssrcs: Vec<(u32, Option<u32>)> = (0..publish.media.len() as u32)
            .map(|i| (0x1000 + i, Some(0x2000 + i)))
            .collect();
        for (sub_name, _) in FIXTURES {
            let what = format!("{pub_name} -> {sub_name}");
            let offer = whep_offer(sub_name);
            let role = Role::Subscribe {
                tracks: &publish.media,
                ssrcs: &ssrcs,
                cname: "tern-relay",
            };
            let a = answer(&offer, &params(role)).unwrap_or_else(|e| panic!("{what}: {e}"));
            let back = check_answer(&what, &offer, &a);
            let mut used = Vec::new();
            for m in &a.media {
                // Which publisher track this is: the one whose SSRC we were told to send with.
                let i = ssrcs
                    .iter()
                    .position(|s| Some(s.0) == m.ssrc)
                    .expect("our ssrc");
                assert!(!used.contains(&i), "{what}: a track is sent once");
                used.push(i);
                let track = &publish.media[i];
                assert_eq!(track.kind, m.kind);
                assert!(
                    track.codec.name.eq_ignore_ascii_case(&m.codec.name),
                    "{what}"
                );
                let map = payload_type_map(track, m);
                assert_eq!(
                    map[0],
                    (track.codec.payload_type, m.codec.payload_type),
                    "{what}"
                );
                let sub_section = offer.media.iter().find(|s| s.mid == m.mid).unwrap();
                let offered = sub_section
                    .codecs
                    .iter()
                    .find(|c| c.payload_type == m.codec.payload_type);
                assert!(
                    offered.is_some(),
                    "{what}: answer uses the subscriber's payload type"
                );
                let rtx = track.codec.rtx.is_some() && offered.unwrap().rtx.is_some();
                assert_eq!(
                    map.len(),
                    1 + usize::from(rtx),
                    "{what}: rtx mapped iff both have it"
                );
                if rtx {
                    assert_eq!(
                        map[1],
                        (track.codec.rtx.unwrap(), offered.unwrap().rtx.unwrap())
                    );
                    assert_eq!(m.rtx_ssrc, ssrcs[i].1);
                }
                let answered = back.media.iter().find(|b| b.mid == m.mid).unwrap();
                assert_eq!(answered.direction, Direction::SendOnly, "{what}");
                assert_eq!(answered.ssrcs[0].ssrc, ssrcs[i].0);
                assert_eq!(answered.ssrcs[0].cname.as_deref(), Some("tern-relay"));
                assert!(answered.ssrcs[0].msid.is_some());
                assert_eq!(answered.fid_groups.len(), usize::from(rtx), "{what}");
            }
            // Every subscriber offers audio + video and every publisher sends Opus. Video maps
            // unless the codecs do not meet: GStreamer offers only H264, webrtc-rs no H264, and
            // the other publishers choose VP8.
            let gst = "gstreamer-webrtcbin";
            let video_meets = match (*pub_name, *sub_name) {
                (p, s) if p == gst => s != "webrtc-rs",
                (_, s) => s != gst,
            };
            let expect = 1 + usize::from(video_meets);
            assert_eq!(a.media.len(), expect, "{what}: {:?}", a.media);
        }
    }
}

/// Chromium's offer for a camera sent as simulcast layers (`sendEncodings` with RIDs): the
/// video section declares `a=rid:<id> send` for each and `a=simulcast:send <list>`, and lists
/// no SSRCs.
fn simulcast_offer(simulcast: &str, rids: &[&str]) -> Offer {
    let text: String = fixture("chromium")
        .lines()
        .filter(|l| !l.starts_with("a=ssrc"))
        .map(|l| {
            let mut out = format!("{l}\r\n");
            if l == "a=mid:1" {
                for rid in rids {
                    out.push_str(&format!("a=rid:{rid} send\r\n"));
                }
                out.push_str(&format!("a=simulcast:{simulcast}\r\n"));
            }
            out
        })
        .collect();
    parse_offer(&text).unwrap()
}

#[test]
fn a_simulcast_publisher_gets_its_layers_back_in_the_answer() {
    let offer = simulcast_offer("send q;h;f", &["q", "h", "f"]);
    let a = answer(&offer, &params(Role::Publish)).unwrap();
    let video = &a.media[1];
    assert_eq!(video.rids, ["q", "h", "f"]);
    assert_eq!((video.ssrc, video.rtx_ssrc), (None, None));
    let ids: Vec<(u8, &str)> = video
        .extensions
        .iter()
        .map(|e| (e.id, e.uri.as_str()))
        .collect();
    assert!(ids.contains(&(10, RTP_STREAM_ID)), "{ids:?}");
    assert!(ids.contains(&(11, REPAIRED_RTP_STREAM_ID)), "{ids:?}");
    assert!(ids
        .iter()
        .any(|(_, u)| *u == "urn:ietf:params:rtp-hdrext:sdes:mid"));
    assert!(
        a.sdp
            .contains("a=rid:q recv\r\na=rid:h recv\r\na=rid:f recv\r\na=simulcast:recv q;h;f\r\n"),
        "{}",
        a.sdp
    );
    // Audio does not simulcast, and never gets the RID extensions.
    assert!(a.media[0].rids.is_empty());
    assert!(!a.media[0].extensions.iter().any(|e| e.uri == RTP_STREAM_ID));
}

#[test]
fn simulcast_takes_first_alternatives_and_skips_paused_or_undeclared_layers() {
    let offer = simulcast_offer("send a,b;~c;d;e recv z", &["a", "b", "c", "d"]);
    let a = answer(&offer, &params(Role::Publish)).unwrap();
    assert_eq!(
        a.media[1].rids,
        ["a", "d"],
        "e has no a=rid line, c is paused"
    );
    assert!(a.sdp.contains("a=simulcast:recv a;d\r\n"));

    // One layer left is not simulcast; nor is a list with no RID extension to tell layers by.
    let one = simulcast_offer("send a;~b", &["a", "b"]);
    let a = answer(&one, &params(Role::Publish)).unwrap();
    assert!(a.media[1].rids.is_empty());
    assert!(!a.sdp.contains("a=simulcast"));
    assert!(!a.media[1].extensions.iter().any(|e| e.uri == RTP_STREAM_ID));
    let mut no_ext = simulcast_offer("send q;h", &["q", "h"]);
    no_ext.media[1]
        .extensions
        .retain(|e| e.uri != RTP_STREAM_ID);
    let a = answer(&no_ext, &params(Role::Publish)).unwrap();
    assert!(a.media[1].rids.is_empty());
    assert!(!a.sdp.contains("a=rid"));

    // At most MAX_LAYERS.
    let many = simulcast_offer("send a;b;c;d;e;f", &["a", "b", "c", "d", "e", "f"]);
    let a = answer(&many, &params(Role::Publish)).unwrap();
    assert_eq!(a.media[1].rids.len(), MAX_LAYERS);
}
