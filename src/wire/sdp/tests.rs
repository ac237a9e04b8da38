//! Unit tests for the SDP parser and answer builder.

use super::*;

const MINIMAL: &str = "v=0\r
o=- 1 2 IN IP4 127.0.0.1\r
s=-\r
t=0 0\r
a=group:BUNDLE a v\r
a=ice-options:trickle\r
a=fingerprint:sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9\r
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r
c=IN IP4 0.0.0.0\r
a=ice-ufrag:abcd\r
a=ice-pwd:0123456789abcdefghijkl\r
a=setup:actpass\r
a=mid:a\r
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r
a=extmap:9/sendonly urn:example:unknown\r
a=sendonly\r
a=rtcp-mux\r
a=rtpmap:111 opus/48000/2\r
a=fmtp:111 minptime=10;useinbandfec=1\r
a=rtcp-fb:111 transport-cc\r
a=ssrc:11 cname:c\r
m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100\r
c=IN IP4 0.0.0.0\r
a=ice-ufrag:abcd\r
a=ice-pwd:0123456789abcdefghijkl\r
a=setup:actpass\r
a=mid:v\r
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r
a=sendonly\r
a=msid:s t\r
a=rtcp-mux\r
a=rtcp-rsize\r
a=fmtp:97 apt=96\r
a=rtpmap:96 VP8/90000\r
a=rtpmap:97 rtx/90000\r
a=rtcp-fb:96 nack\r
a=rtcp-fb:96 nack pli\r
a=rtcp-fb:96 goog-lntf\r
a=rtcp-fb:* ccm fir\r
a=rtpmap:98 red/90000\r
a=rtpmap:99 ulpfec/90000\r
a=rtpmap:100 rtx/90000\r
a=fmtp:100 apt=98\r
a=ssrc-group:FID 21 22\r
a=ssrc-group:SIM 21 23 25\r
a=ssrc:21 cname:c\r
a=ssrc:21 msid:s t\r
a=ssrc:22 cname:c\r
a=rid:hi send\r
a=simulcast:send hi\r
a=candidate:1 1 udp 2122260223 192.0.2.1 5000 typ host\r
a=end-of-candidates\r
";

fn err_line(r: Result<Offer, SdpError>) -> usize {
    r.expect_err("should fail").line().expect("offer error")
}

fn params<'a>(role: Role<'a>) -> AnswerParams<'a> {
    AnswerParams {
        ice_ufrag: "tern",
        ice_pwd: "ternternternternternte",
        fingerprint_sha256: [0xab; 32],
        candidate: "203.0.113.9:40001".parse().unwrap(),
        tcp_candidate: None,
        role,
        session_id: 42,
    }
}

#[test]
fn parse_offer_reads_session_and_media() {
    let o = parse_offer(MINIMAL).unwrap();
    assert_eq!(o.ice_ufrag, "abcd");
    assert_eq!(o.ice_pwd, "0123456789abcdefghijkl");
    assert_eq!(o.setup, Setup::ActPass);
    assert_eq!(o.bundle, ["a", "v"]);
    assert_eq!(o.ice_options, ["trickle"]);
    assert_eq!(o.fingerprints.len(), 1);
    assert_eq!(o.fingerprints[0].algorithm, "sha-256");
    assert_eq!(o.fingerprints[0].value.len(), 32);
    assert_eq!(o.fingerprints[0].value[0], 0x0a);
    assert_eq!(o.media.len(), 2);

    let a = &o.media[0];
    assert_eq!((a.kind, a.mid.as_str(), a.port), (MediaKind::Audio, "a", 9));
    assert_eq!(a.direction, Direction::SendOnly);
    assert!(a.rtcp_mux && !a.rtcp_rsize);
    assert_eq!(a.codecs.len(), 1, "static pt 0 has no rtpmap");
    assert_eq!(a.codecs[0].channels, Some(2));
    assert_eq!(a.codecs[0].fmtp_param("useinbandfec"), Some("1"));
    assert_eq!(a.extensions[1].id, 9, "extmap direction is stripped");
    assert_eq!(a.ssrcs[0].cname.as_deref(), Some("c"));

    let v = &o.media[1];
    let names: Vec<&str> = v.codecs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["VP8", "red", "ulpfec"],
        "rtx folded, red/ulpfec kept"
    );
    assert_eq!(v.codecs[0].rtx, Some(97));
    assert_eq!(v.codecs[1].rtx, Some(100));
    assert_eq!(
        v.codecs[0].rtcp_fb,
        ["nack", "nack pli", "goog-lntf", "ccm fir"]
    );
    assert_eq!(v.fid_groups, [(21, 22)]);
    assert_eq!(v.sim_groups, [vec![21, 23, 25]]);
    assert_eq!(v.msid.as_deref(), Some("s t"));
    assert_eq!(v.ssrcs.len(), 2);
    assert_eq!(v.ssrcs[0].msid.as_deref(), Some("s t"));
    assert_eq!(v.rids, [("hi".to_owned(), "send".to_owned())]);
    assert_eq!(v.simulcast.as_deref(), Some("send hi"));
    assert_eq!(v.candidates.len(), 1);
    assert!(v.end_of_candidates);
    assert_eq!(v.primary_ssrcs(), (Some(21), Some(22)));
}

#[test]
fn parse_offer_accepts_lf_and_crlf_alike() {
    let lf = MINIMAL.replace("\r\n", "\n");
    assert_eq!(parse_offer(&lf).unwrap(), parse_offer(MINIMAL).unwrap());
}

#[test]
fn session_level_direction_and_extmap_apply_to_media() {
    let text = MINIMAL
        .replace(
            "a=ice-options:trickle\r\n",
            "a=ice-options:trickle\r\na=recvonly\r\na=extmap:7 urn:x\r\n",
        )
        .replace("a=sendonly\r\n", "");
    let o = parse_offer(&text).unwrap();
    assert!(o.media.iter().all(|m| m.direction == Direction::RecvOnly));
    assert!(o
        .media
        .iter()
        .all(|m| m.extensions.iter().any(|e| e.id == 7)));
}

#[test]
fn parse_offer_errors_name_the_line() {
    assert_eq!(err_line(parse_offer("")), 0);
    assert_eq!(err_line(parse_offer("o=- 1 1 IN IP4 0.0.0.0\n")), 1);
    let bad = |from: &str, to: &str| parse_offer(&MINIMAL.replacen(from, to, 1));
    assert_eq!(err_line(bad("s=-", "garbage")), 3);
    assert_eq!(err_line(bad("s=-", "s=\u{1b}")), 3);
    assert_eq!(err_line(bad("a=mid:a\r\n", "a=mid:a\rb=x\r\n")), 13);
    assert_eq!(
        err_line(bad("m=audio 9 UDP/TLS/RTP/SAVPF", "m=audio 9 RTP/AVP")),
        8
    );
    assert_eq!(err_line(bad("m=audio 9", "m=text 9")), 8);
    assert_eq!(err_line(bad("m=audio 9", "m=audio 70000")), 8);
    assert_eq!(err_line(bad("SAVPF 111 0", "SAVPF 111 200")), 8);
    assert_eq!(
        err_line(bad("a=mid:a\r\n", "")),
        8,
        "missing mid names the m= line"
    );
    assert_eq!(
        err_line(bad("a=mid:v", "a=mid:a")),
        22,
        "duplicate mid names its m= line"
    );
    assert_eq!(
        err_line(bad("a=fingerprint:sha-256 0A", "a=fingerprint:sha-256 0G")),
        7
    );
    assert_eq!(err_line(bad("a=setup:actpass", "a=setup:holdconn")), 12);
    assert_eq!(
        err_line(bad("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 opus/x")),
        18
    );
    assert_eq!(
        err_line(bad("a=ssrc-group:FID 21 22", "a=ssrc-group:FID 21")),
        45
    );
    assert_eq!(err_line(bad("a=extmap:1 ", "a=extmap:0 ")), 14);
    assert_eq!(err_line(bad("a=ice-ufrag:abcd", "a=ice-ufrag:ab:cd")), 10);
    // The second section's ufrag differs: that line is named.
    let text = MINIMAL
        .replacen("a=ice-ufrag:abcd", "a=ice-ufrag:wxyz", 2)
        .replacen("a=ice-ufrag:wxyz", "a=ice-ufrag:abcd", 1);
    assert_eq!(err_line(parse_offer(&text)), 24);
    let no_fp = MINIMAL
        .lines()
        .filter(|l| !l.starts_with("a=fingerprint"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(err_line(parse_offer(&no_fp)), 0);
    let no_pwd = MINIMAL.replace("a=ice-pwd:0123456789abcdefghijkl\r\n", "");
    assert_eq!(err_line(parse_offer(&no_pwd)), 0);
}

#[test]
fn parse_offer_enforces_bounds() {
    let big = format!("{MINIMAL}a={}\r\n", "x".repeat(MAX_SDP_LEN));
    assert_eq!(err_line(parse_offer(&big)), 0);
    let long_line = format!("{MINIMAL}a=x:{}\r\n", "y".repeat(MAX_LINE_LEN));
    assert!(err_line(parse_offer(&long_line)) > 50);
    let mut many = MINIMAL.to_owned();
    for i in 0..MAX_MEDIA_SECTIONS {
        many.push_str(&format!("m=audio 0 UDP/TLS/RTP/SAVPF 0\r\na=mid:x{i}\r\n"));
    }
    assert!(parse_offer(&many)
        .unwrap_err()
        .to_string()
        .contains("too many media sections"));
}

#[test]
fn bundle_only_sections_are_live() {
    let text = MINIMAL.replacen("m=video 9", "m=video 0", 1).replacen(
        "a=mid:v\r\n",
        "a=mid:v\r\na=bundle-only\r\n",
        1,
    );
    let o = parse_offer(&text).unwrap();
    assert!(o.media[1].bundle_only && o.media[1].is_live());
    let a = answer(&o, &params(Role::Publish)).unwrap();
    assert_eq!(a.media.len(), 2);
}

#[test]
fn sdp_error_display_is_line_and_reason() {
    assert_eq!(SdpError::at(7, "bad").to_string(), "line 7: bad");
    assert_eq!(SdpError::ApiMisuse("x").line(), None);
}

#[test]
fn media_kind_converts_to_and_from_the_track_kind() {
    use crate::wire::MediaKind as Dp;
    assert_eq!(MediaKind::Audio.track_kind(), Some(Dp::Audio));
    assert_eq!(MediaKind::Video.track_kind(), Some(Dp::Video));
    assert_eq!(MediaKind::Application.track_kind(), None);
    assert_eq!(MediaKind::from(Dp::Video), MediaKind::Video);
}

#[test]
fn publish_answer_is_ice_lite_passive_with_one_codec() {
    let o = parse_offer(MINIMAL).unwrap();
    let a = answer(&o, &params(Role::Publish)).unwrap();
    let sdp = &a.sdp;
    for needle in [
        "v=0\r\no=- 42 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\na=group:BUNDLE a v\r\n",
        "a=msid-semantic: WMS *\r\n",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 203.0.113.9\r\n",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n",
        "a=setup:passive\r\n",
        "a=recvonly\r\n",
        "a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n",
        "a=candidate:1 1 udp 2130706431 203.0.113.9 40001 typ host\r\na=end-of-candidates\r\n",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n",
    ] {
        assert!(sdp.contains(needle), "missing {needle:?} in\n{sdp}");
    }
    assert!(sdp.contains(&format!(
        "a=fingerprint:sha-256 {}\r\n",
        ["AB"; 32].join(":")
    )));
    assert!(!sdp.contains("goog-lntf") && !sdp.contains("urn:example:unknown"));
    assert!(!sdp.contains("red/") && !sdp.contains("ulpfec"));
    assert_eq!(sdp.matches("a=rtcp-rsize").count(), 1, "only where offered");

    assert_eq!(a.media.len(), 2);
    assert_eq!(a.media[0].codec.payload_type, 111);
    assert_eq!((a.media[0].ssrc, a.media[0].rtx_ssrc), (Some(11), None));
    assert_eq!(a.media[1].codec.rtcp_fb, ["nack", "nack pli", "ccm fir"]);
    assert_eq!((a.media[1].ssrc, a.media[1].rtx_ssrc), (Some(21), Some(22)));
    assert_eq!(a.media[1].extensions.len(), 2);
}

#[test]
fn answer_refuses_unanswerable_offers() {
    let o = parse_offer(MINIMAL).unwrap();
    let mut passive = o.clone();
    passive.setup = Setup::Passive;
    assert!(answer(&passive, &params(Role::Publish)).is_err());
    let mut no_fp = o.clone();
    no_fp.fingerprints.clear();
    assert!(answer(&no_fp, &params(Role::Publish)).is_err());
    let mut no_mux = o.clone();
    no_mux.media[1].rtcp_mux = false;
    assert_eq!(
        answer(&no_mux, &params(Role::Publish)).unwrap_err().line(),
        Some(22)
    );
    let mut recv_only = o.clone();
    recv_only
        .media
        .iter_mut()
        .for_each(|m| m.direction = Direction::RecvOnly);
    assert!(
        answer(&recv_only, &params(Role::Publish)).is_err(),
        "nothing to receive"
    );
    let mut bad = params(Role::Publish);
    bad.ice_ufrag = "a:b";
    assert!(matches!(answer(&o, &bad), Err(SdpError::ApiMisuse(_))));
}

#[test]
fn unsupported_sections_are_rejected_in_place() {
    let mut o = parse_offer(MINIMAL).unwrap();
    o.media[0].codecs.retain(|c| !c.is("opus")); // no supported audio codec
    o.media[0].direction = Direction::SendRecv;
    let a = answer(&o, &params(Role::Publish)).unwrap();
    assert!(a.sdp.contains(
        "m=audio 0 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:a\r\na=inactive\r\n"
    ));
    assert!(a.sdp.contains("a=group:BUNDLE v\r\n"));
    assert_eq!(a.media.len(), 1);

    // A sendonly audio section on a publish is fine; a recvonly one is answered inactive.
    let mut o = parse_offer(MINIMAL).unwrap();
    o.media[0].direction = Direction::RecvOnly;
    let a = answer(&o, &params(Role::Publish)).unwrap();
    assert!(a.sdp.contains(
        "a=mid:a\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=inactive\r\n"
    ));
    assert!(a.sdp.contains("a=group:BUNDLE a v\r\n"));

    // Outside the BUNDLE group: rejected.
    let mut o = parse_offer(MINIMAL).unwrap();
    o.bundle = vec!["v".into()];
    let a = answer(&o, &params(Role::Publish)).unwrap();
    assert!(a.sdp.starts_with("v=0") && a.sdp.contains("m=audio 0 "));
    // No BUNDLE group at all: only the first acceptable section.
    o.bundle.clear();
    let a = answer(&o, &params(Role::Publish)).unwrap();
    assert!(a.sdp.contains("m=video 0 ") && a.media.len() == 1);
}

fn video_offer(codecs: &str) -> Offer {
    let mut text = String::from(
        "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\na=group:BUNDLE 0\na=ice-ufrag:u1u1\na=ice-pwd:p1p1p1p1p1p1p1p1p1p1p1\na=fingerprint:sha-256 00:11\na=setup:active\n",
    );
    let pts: Vec<&str> = codecs
        .lines()
        .filter_map(|l| l.strip_prefix("a=rtpmap:")?.split(' ').next())
        .collect();
    text.push_str(&format!(
        "m=video 9 UDP/TLS/RTP/SAVPF {}\na=mid:0\na=rtcp-mux\na=recvonly\n{codecs}",
        pts.join(" ")
    ));
    parse_offer(&text).unwrap()
}

#[test]
fn video_codec_choice_follows_offer_order_and_h264_variants() {
    let pick = |codecs: &str| {
        let o = video_offer(codecs);
        choose_for_test(&o)
    };
    assert_eq!(
        pick("a=rtpmap:100 H264/90000\na=rtpmap:96 VP8/90000\n"),
        100
    );
    assert_eq!(pick("a=rtpmap:35 AV1/90000\n"), 35);
    assert_eq!(
        pick(
            "a=rtpmap:102 H264/90000\na=fmtp:102 packetization-mode=0;profile-level-id=42e01f\n\
              a=rtpmap:104 H264/90000\na=fmtp:104 packetization-mode=1;profile-level-id=640c1f\n\
              a=rtpmap:106 H264/90000\na=fmtp:106 packetization-mode=1;profile-level-id=42E01F\n"
        ),
        106
    );
    assert_eq!(pick("a=rtpmap:98 VP9/90000\na=fmtp:98 profile-id=2\na=rtpmap:100 VP9/90000\na=fmtp:100 profile-id=0\n"), 100);
}

/// Answer a WHEP-style offer as a publish would, to see which codec the section gets.
fn choose_for_test(o: &Offer) -> u8 {
    let mut o = o.clone();
    o.media[0].direction = Direction::SendOnly;
    answer(&o, &params(Role::Publish)).unwrap().media[0]
        .codec
        .payload_type
}

#[test]
fn subscribe_maps_tracks_to_subscriber_payload_types() {
    let publisher = answer(&parse_offer(MINIMAL).unwrap(), &params(Role::Publish)).unwrap();
    let mut sub = parse_offer(
        &MINIMAL
            .replace("a=sendonly", "a=recvonly")
            .replace("111 0\r\n", "109 0\r\n")
            .replace(":111 ", ":109 ")
            .replace("SAVPF 96 97 98 99 100", "SAVPF 120 121 98 99 100")
            .replace(":96 ", ":120 ")
            .replace(":97 ", ":121 ")
            .replace("apt=96", "apt=120"),
    )
    .unwrap();
    sub.media.iter_mut().for_each(|m| m.ssrcs.clear());
    let ssrcs = [(1000, None), (2000, Some(2001))];
    let role = Role::Subscribe {
        tracks: &publisher.media,
        ssrcs: &ssrcs,
        cname: "tern",
    };
    let a = answer(&sub, &params(role)).unwrap();
    assert_eq!(a.media.len(), 2);
    assert_eq!(
        payload_type_map(&publisher.media[0], &a.media[0]),
        [(111, 109)]
    );
    assert_eq!(
        payload_type_map(&publisher.media[1], &a.media[1]),
        [(96, 120), (97, 121)]
    );
    assert_eq!(
        (a.media[1].ssrc, a.media[1].rtx_ssrc),
        (Some(2000), Some(2001))
    );
    for needle in [
        "a=sendonly\r\na=msid:tern tern-v\r\n",
        "a=ssrc-group:FID 2000 2001\r\na=ssrc:2000 cname:tern\r\na=ssrc:2000 msid:tern tern-v\r\n",
        "a=ssrc:2001 cname:tern\r\n",
        "a=ssrc:1000 cname:tern\r\na=ssrc:1000 msid:tern tern-a\r\n",
    ] {
        assert!(a.sdp.contains(needle), "missing {needle:?} in\n{}", a.sdp);
    }

    // Without an RTX SSRC, RTX is not negotiated.
    let ssrcs = [(1000, None), (2000, None)];
    let role = Role::Subscribe {
        tracks: &publisher.media,
        ssrcs: &ssrcs,
        cname: "tern",
    };
    let a = answer(&sub, &params(role)).unwrap();
    assert_eq!(
        payload_type_map(&publisher.media[1], &a.media[1]),
        [(96, 120)]
    );
    assert!(!a.sdp.contains("rtx/"));

    // Only a video track published: the audio section is answered inactive.
    let ssrcs = [(2000, None)];
    let role = Role::Subscribe {
        tracks: &publisher.media[1..],
        ssrcs: &ssrcs,
        cname: "tern",
    };
    let a = answer(&sub, &params(role)).unwrap();
    assert_eq!(a.media.len(), 1);
    assert!(a.sdp.contains("a=inactive\r\n"));

    // A subscriber that only sends, or mismatched parameters.
    let mut sendonly = sub.clone();
    sendonly.media[0].direction = Direction::SendOnly;
    let role = Role::Subscribe {
        tracks: &publisher.media,
        ssrcs: &[(1, None), (2, None)],
        cname: "tern",
    };
    assert!(answer(&sendonly, &params(role))
        .unwrap_err()
        .line()
        .is_some());
    let role = Role::Subscribe {
        tracks: &publisher.media,
        ssrcs: &[(1, None)],
        cname: "tern",
    };
    assert!(matches!(
        answer(&sub, &params(role)),
        Err(SdpError::ApiMisuse(_))
    ));
}

#[test]
fn subscribe_h264_needs_same_packetization_mode() {
    let pub_offer = video_offer(
        "a=rtpmap:96 H264/90000\na=fmtp:96 packetization-mode=1;profile-level-id=42c01f\n",
    );
    let mut pub_offer = pub_offer;
    pub_offer.media[0].direction = Direction::SendOnly;
    let publisher = answer(&pub_offer, &params(Role::Publish)).unwrap();
    let ssrcs = [(5, None)];
    let role = Role::Subscribe {
        tracks: &publisher.media,
        ssrcs: &ssrcs,
        cname: "c",
    };
    let pm0 = video_offer(
        "a=rtpmap:102 H264/90000\na=fmtp:102 packetization-mode=0;profile-level-id=42c01f\n",
    );
    assert!(
        answer(&pm0, &params(role)).is_err(),
        "no compatible section"
    );
    let both = video_offer(
        "a=rtpmap:102 H264/90000\na=fmtp:102 packetization-mode=0;profile-level-id=42c01f\n\
         a=rtpmap:104 H264/90000\na=fmtp:104 packetization-mode=1;profile-level-id=42e01f\n",
    );
    let a = answer(&both, &params(role)).unwrap();
    assert_eq!(
        payload_type_map(&publisher.media[0], &a.media[0]),
        [(96, 104)]
    );
}

#[test]
fn answer_lists_the_passive_tcp_candidate_after_udp_with_lower_priority() {
    let o = parse_offer(MINIMAL).unwrap();
    let mut p = params(Role::Publish);
    p.tcp_candidate = Some("203.0.113.9:443".parse().unwrap());
    let sdp = answer(&o, &p).unwrap().sdp;
    let lines = "a=candidate:1 1 udp 2130706431 203.0.113.9 40001 typ host\r\n\
                 a=candidate:2 1 tcp 1520435199 203.0.113.9 443 typ host tcptype passive\r\n\
                 a=end-of-candidates\r\n";
    assert_eq!(sdp.matches(lines).count(), 2, "in each section:\n{sdp}");
    // RFC 6544 §4.2: (2^24)·type-pref + (2^8)·((2^13)·direction-pref + other-pref) + (256 −
    // component), with direction-pref 4 for a passive host candidate.
    assert_eq!(
        TCP_PASSIVE_HOST_PRIORITY,
        (90 << 24) + (1 << 8) * ((1 << 13) * 4 + 8191) + 255
    );
    const { assert!(TCP_PASSIVE_HOST_PRIORITY < UDP_HOST_PRIORITY) };
    assert_eq!(
        candidate_lines("[2001:db8::5]:40002".parse().unwrap(), None),
        "a=candidate:1 1 udp 2130706431 2001:db8::5 40002 typ host\r\na=end-of-candidates\r\n"
    );
}

#[test]
fn answer_uses_ip6_for_ipv6_candidates() {
    let o = parse_offer(MINIMAL).unwrap();
    let mut p = params(Role::Publish);
    p.candidate = "[2001:db8::5]:40002".parse().unwrap();
    let a = answer(&o, &p).unwrap();
    assert!(a.sdp.contains("c=IN IP6 2001:db8::5\r\n"));
    assert!(a
        .sdp
        .contains("a=candidate:1 1 udp 2130706431 2001:db8::5 40002 typ host\r\n"));
}

#[test]
fn trickle_fragment_reads_credentials_and_candidates() {
    let frag = parse_trickle_fragment(
        "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
         a=mid:0\r\na=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0\r\n\
         a=end-of-candidates\r\n",
    )
    .unwrap();
    assert_eq!(frag.ice_ufrag.as_deref(), Some("EsAw"));
    assert_eq!(frag.ice_pwd.as_deref(), Some("P2uYro0UCOQ4zxjKXaWCBui1"));
    assert_eq!(frag.candidates.len(), 1);
    assert_eq!(frag.candidates[0].mid.as_deref(), Some("0"));
    assert!(frag.candidates[0].candidate.starts_with("1387637174 1 udp"));
    assert!(frag.end_of_candidates);
    assert!(frag.is_ice_restart("other") && !frag.is_ice_restart("EsAw"));

    let no_creds = parse_trickle_fragment("a=candidate:1 1 udp 1 192.0.2.1 1 typ host\n").unwrap();
    assert!(no_creds.ice_ufrag.is_none() && no_creds.candidates[0].mid.is_none());
    assert!(!no_creds.is_ice_restart("x"));
    assert_eq!(
        parse_trickle_fragment("a=candidate:\n").unwrap_err().line(),
        Some(1)
    );
    assert!(parse_trickle_fragment(&"a=x\n".repeat(20_000)).is_err());
}

#[test]
fn setup_defaults_to_active_and_must_agree() {
    let none = MINIMAL.replace("a=setup:actpass\r\n", "");
    assert_eq!(parse_offer(&none).unwrap().setup, Setup::Active);
    let mixed = MINIMAL.replacen("a=setup:actpass", "a=setup:active", 1);
    assert_eq!(err_line(parse_offer(&mixed)), 26);
}

/// The dependency descriptor (AV1 and H.264 layers; VP8/VP9 when a browser offers it) is taken
/// from a video publisher, whose layers the relay reads from it, and never given to a
/// subscriber: the relay thins its stream, and a forwarded descriptor would reach it stale
/// after a layer change. The video layers allocation extension stays out of both.
#[test]
fn the_dependency_descriptor_is_taken_from_publishers_only() {
    const DD: &str =
        "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";
    const VLA: &str = "http://www.webrtc.org/experiments/rtp-hdrext/video-layers-allocation00";
    let offered = MINIMAL.replace(
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n",
        &format!("a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=extmap:12 {DD}\r\na=extmap:13 {VLA}\r\n"),
    );
    assert_ne!(offered, MINIMAL, "the offer carries the extension");
    let publish = parse_offer(&offered).unwrap();
    assert!(publish.media[1].extensions.iter().any(|e| e.uri == DD));
    let published = answer(&publish, &params(Role::Publish)).unwrap();
    assert!(
        published.sdp.contains(&format!("a=extmap:12 {DD}\r\n")),
        "{}",
        published.sdp
    );
    assert!(!published.sdp.contains(VLA));
    let video = published
        .media
        .iter()
        .find(|m| m.kind == MediaKind::Video)
        .unwrap();
    assert_eq!(video.extension_id(DD), Some(12));
    let audio = published
        .media
        .iter()
        .find(|m| m.kind == MediaKind::Audio)
        .unwrap();
    assert_eq!(audio.extension_id(DD), None, "audio has no layers");

    let mut view = parse_offer(&offered.replace("a=sendonly", "a=recvonly")).unwrap();
    view.media.iter_mut().for_each(|m| m.ssrcs.clear());
    let ssrcs = [(1000, None), (2000, Some(2001))];
    let role = Role::Subscribe {
        tracks: &published.media,
        ssrcs: &ssrcs,
        cname: "tern",
    };
    let viewed = answer(&view, &params(role)).unwrap();
    assert!(!viewed.sdp.contains(DD), "{}", viewed.sdp);
    assert!(viewed.sdp.contains("m=video"));
}

/// `a=extmap-allow-mixed` is answered when offered (session or media level), so that a
/// publisher may send a keyframe's dependency descriptor in the two-byte form; never unasked.
#[test]
fn extmap_allow_mixed_is_answered_only_when_offered() {
    let plain = parse_offer(MINIMAL).unwrap();
    assert!(!plain.extmap_allow_mixed);
    let answered = answer(&plain, &params(Role::Publish)).unwrap();
    assert!(
        !answered.sdp.contains("extmap-allow-mixed"),
        "{}",
        answered.sdp
    );

    let session_level = MINIMAL.replacen("t=0 0\r\n", "t=0 0\r\na=extmap-allow-mixed\r\n", 1);
    let media_level = MINIMAL.replacen(
        "a=rtcp-mux\r\n",
        "a=rtcp-mux\r\na=extmap-allow-mixed\r\n",
        1,
    );
    for offered in [session_level, media_level] {
        assert_ne!(offered, MINIMAL);
        let offer = parse_offer(&offered).unwrap();
        assert!(offer.extmap_allow_mixed);
        let answered = answer(&offer, &params(Role::Publish)).unwrap();
        assert_eq!(
            answered.sdp.matches("a=extmap-allow-mixed\r\n").count(),
            1,
            "{}",
            answered.sdp
        );
    }
}
