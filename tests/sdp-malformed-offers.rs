//! Malformed SDP never panics: every truncation and line deletion of every client fixture,
//! random bytes, random SDP-shaped lines and random mutations give `Err` or `Ok` (and an `Ok`
//! offer gets an answer or an `Err`), and oversized input is refused.

use proptest::prelude::*;

use tern::wire::sdp::{
    answer, parse_offer, parse_trickle_fragment, AnswerParams, NegotiatedMedia, Role, MAX_LINE_LEN,
    MAX_MEDIA_SECTIONS, MAX_SDP_LEN,
};

const FIXTURES: [&str; 6] = [
    "chromium",
    "firefox",
    "gstreamer-webrtcbin",
    "pion-v4",
    "aiortc",
    "webrtc-rs",
];

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
        ice_ufrag: "relay",
        ice_pwd: "relaypasswordrelaypass",
        fingerprint_sha256: [7; 32],
        candidate: "192.0.2.10:40000".parse().unwrap(),
        tcp_candidate: None,
        role,
        session_id: 1,
    }
}

/// Tracks a publisher might have negotiated, to exercise the subscribe path too.
fn tracks() -> Vec<NegotiatedMedia> {
    let offer = parse_offer(&fixture("chromium")).unwrap();
    answer(&offer, &params(Role::Publish)).unwrap().media
}

/// Parse, and when that succeeds answer as publisher and as subscriber: none may panic.
fn exercise(text: &str, tracks: &[NegotiatedMedia]) {
    let _ = parse_trickle_fragment(text);
    let Ok(offer) = parse_offer(text) else {
        return;
    };
    let _ = answer(&offer, &params(Role::Publish));
    let ssrcs: Vec<(u32, Option<u32>)> = (0..tracks.len() as u32)
        .map(|i| (i, Some(i + 100)))
        .collect();
    let role = Role::Subscribe {
        tracks,
        ssrcs: &ssrcs,
        cname: "c",
    };
    let _ = answer(&offer, &params(role));
}

#[test]
fn every_truncation_of_every_fixture() {
    let tracks = tracks();
    for name in FIXTURES {
        let text = fixture(name);
        for end in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
            exercise(&text[..end], &tracks);
        }
    }
}

#[test]
fn every_line_deletion_of_every_fixture() {
    let tracks = tracks();
    for name in FIXTURES {
        let text = fixture(name);
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        for skip in 0..lines.len() {
            let cut: String = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| *l)
                .collect();
            exercise(&cut, &tracks);
        }
    }
}

#[test]
fn oversized_input_is_refused() {
    let base = fixture("chromium");
    let padded = format!("{base}{}", "a=x-pad:0\r\n".repeat(MAX_SDP_LEN / 11 + 1));
    assert!(padded.len() > MAX_SDP_LEN);
    let err = parse_offer(&padded).unwrap_err();
    assert_eq!(err.line(), Some(0));
    assert!(parse_trickle_fragment(&padded).is_err());

    let long = format!("{base}a=x-long:{}\r\n", "z".repeat(MAX_LINE_LEN));
    assert!(parse_offer(&long)
        .unwrap_err()
        .to_string()
        .contains("4 KiB"));

    let mut many = base.clone();
    for i in 0..MAX_MEDIA_SECTIONS {
        many.push_str(&format!(
            "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:extra{i}\r\n"
        ));
    }
    assert!(many.len() <= MAX_SDP_LEN);
    assert!(parse_offer(&many).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&String::from_utf8_lossy(&bytes), &[]);
    }

    #[test]
    fn random_sdp_shaped_lines_never_panic(
        lines in proptest::collection::vec(
            prop_oneof![
                "[vosctm]=[ -~]{0,40}",
                "m=(audio|video|application) [0-9]{1,6} (UDP/TLS/RTP/SAVPF|UDP/DTLS/SCTP) [0-9 ]{0,20}",
                "a=(mid|ice-ufrag|ice-pwd|setup|rtcp-mux|sendonly|recvonly|bundle-only):[ -~]{0,20}",
                "a=(rtpmap|fmtp|rtcp-fb|extmap|ssrc|ssrc-group|fingerprint|group):[ -~]{0,40}",
            ],
            0..40,
        )
    ) {
        let mut text = String::from("v=0\r\n");
        for l in &lines {
            text.push_str(l);
            text.push_str("\r\n");
        }
        exercise(&text, &[]);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0..FIXTURES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..8),
    ) {
        let mut chars: Vec<char> = fixture(FIXTURES[which]).chars().collect();
        for (at, c) in edits {
            let i = at.index(chars.len());
            chars[i] = c;
        }
        let text: String = chars.into_iter().collect();
        exercise(&text, &tracks());
    }
}
