//! The load generator's side of the SDP offer/answer: it writes the offer a WHIP publisher or
//! WHEP subscriber sends (BUNDLE, rtcp-mux, active DTLS, Opus pt 111 and VP8 pt 96) and reads
//! back what it needs from the server's answer.
//!
//! The answer is parsed with `tern::wire::sdp::parse_offer` (an answer has the same grammar);
//! this module only picks out ICE credentials, the fingerprint, the host candidate and, per
//! media section, the payload type and SSRC. It does no I/O.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use tern::wire::sdp::{self, MediaKind};

/// Audio payload type offered (Opus/48000/2).
pub const OPUS_PT: u8 = 111;
/// Video payload type offered (VP8/90000).
pub const VP8_PT: u8 = 96;

/// One media section of an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferTrack {
    /// Audio or video.
    pub kind: TrackKind,
    /// Our SSRC: the one we send with (publisher) or put in RTCP as sender (subscriber).
    pub ssrc: u32,
}

/// The two kinds of media the generator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// Opus-shaped audio.
    Audio,
    /// VP8-shaped video.
    Video,
}

impl TrackKind {
    /// `audio` or `video`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Audio => "audio",
            TrackKind::Video => "video",
        }
    }
}

/// What an offer says about us.
#[derive(Debug, Clone)]
pub struct OfferParams<'a> {
    /// Our ICE ufrag.
    pub ice_ufrag: &'a str,
    /// Our ICE password.
    pub ice_pwd: &'a str,
    /// SHA-256 of our DTLS certificate.
    pub fingerprint_sha256: &'a [u8],
    /// True: sendonly sections with `a=ssrc` (WHIP); false: recvonly (WHEP).
    pub publish: bool,
    /// The sections, in order.
    pub tracks: &'a [OfferTrack],
    /// Our RTCP CNAME.
    pub cname: &'a str,
}

/// Writes the offer (CRLF line endings).
pub fn write_offer(p: &OfferParams<'_>) -> String {
    let mut out = String::with_capacity(1024);
    let mids: Vec<String> = (0..p.tracks.len()).map(|i| i.to_string()).collect();
    let fingerprint = p
        .fingerprint_sha256
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    // `write!` to a String cannot fail.
    let _ = write!(
        out,
        "v=0\r\no=tern-load {} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {}\r\n\
         a=msid-semantic: WMS {}\r\n",
        rand::random::<u32>(),
        mids.join(" "),
        p.cname
    );
    let direction = if p.publish { "sendonly" } else { "recvonly" };
    for (mid, t) in mids.iter().zip(p.tracks) {
        let (pt, rtpmap, fb) = match t.kind {
            TrackKind::Audio => (OPUS_PT, "opus/48000/2", "a=rtcp-fb:111 nack\r\n"),
            TrackKind::Video => (
                VP8_PT,
                "VP8/90000",
                "a=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\n",
            ),
        };
        let _ = write!(
            out,
            "m={} 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:{}\r\n\
             a=ice-pwd:{}\r\na=ice-options:ice2\r\na=fingerprint:sha-256 {fingerprint}\r\n\
             a=setup:active\r\na=mid:{mid}\r\na={direction}\r\na=rtcp-mux\r\na=rtcp-rsize\r\n\
             a=rtpmap:{pt} {rtpmap}\r\n{fb}",
            t.kind.as_str(),
            p.ice_ufrag,
            p.ice_pwd,
        );
        if p.publish {
            let _ = write!(
                out,
                "a=msid:{} {}-{mid}\r\na=ssrc:{} cname:{}\r\na=ssrc:{} msid:{} {}-{mid}\r\n",
                p.cname, p.cname, t.ssrc, p.cname, t.ssrc, p.cname, p.cname
            );
        }
    }
    out
}

/// What the server's answer told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAnswer {
    /// The server's ICE ufrag.
    pub ice_ufrag: String,
    /// The server's ICE password.
    pub ice_pwd: String,
    /// The server certificate's SHA-256 fingerprint, if it gave one.
    pub fingerprint_sha256: Option<Vec<u8>>,
    /// The first UDP host candidate (or the connection address of the first live section).
    pub candidate: SocketAddr,
    /// One entry per live (non-rejected) media section, in order.
    pub tracks: Vec<AnswerTrack>,
}

/// One live section of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerTrack {
    /// Audio or video.
    pub kind: TrackKind,
    /// The mid.
    pub mid: String,
    /// The payload type the server chose.
    pub payload_type: u8,
    /// The SSRC the server sends with (subscriber answers), if signalled.
    pub ssrc: Option<u32>,
    /// Whether the server sends on this section.
    pub server_sends: bool,
}

/// Parses an answer. The error is a sentence for the failure report.
pub fn parse_answer(text: &str) -> Result<ParsedAnswer, String> {
    let parsed = sdp::parse_offer(text).map_err(|e| format!("unparseable SDP answer: {e}"))?;
    let fingerprint_sha256 = parsed
        .fingerprints
        .iter()
        .find(|f| f.algorithm == "sha-256")
        .map(|f| f.value.clone());
    let mut candidate = None;
    let mut tracks = Vec::new();
    for m in &parsed.media {
        if !m.is_live() {
            continue;
        }
        if candidate.is_none() {
            candidate = m.candidates.iter().find_map(|c| host_candidate(c));
        }
        let kind = match m.kind {
            MediaKind::Audio => TrackKind::Audio,
            MediaKind::Video => TrackKind::Video,
            _ => continue,
        };
        let Some(codec) = m.codecs.first() else {
            continue;
        };
        tracks.push(AnswerTrack {
            kind,
            mid: m.mid.clone(),
            payload_type: codec.payload_type,
            ssrc: m.primary_ssrcs().0,
            server_sends: m.direction.sends(),
        });
    }
    let candidate = candidate.ok_or("the answer has no UDP host candidate")?;
    Ok(ParsedAnswer {
        ice_ufrag: parsed.ice_ufrag,
        ice_pwd: parsed.ice_pwd,
        fingerprint_sha256,
        candidate,
        tracks,
    })
}

/// `foundation component udp priority ip port typ host …` → `ip:port` (UDP only).
fn host_candidate(value: &str) -> Option<SocketAddr> {
    let f: Vec<&str> = value.split_ascii_whitespace().collect();
    if f.len() < 8 || !f[2].eq_ignore_ascii_case("udp") || f[1] != "1" {
        return None;
    }
    let ip: IpAddr = f[4].parse().ok()?;
    let port: u16 = f[5].parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_offer_parses_with_ssrcs() {
        let tracks = [
            OfferTrack {
                kind: TrackKind::Audio,
                ssrc: 1111,
            },
            OfferTrack {
                kind: TrackKind::Video,
                ssrc: 2222,
            },
        ];
        let fp = [0xabu8; 32];
        let text = write_offer(&OfferParams {
            ice_ufrag: "ufrag1",
            ice_pwd: "passwordpasswordpassword",
            fingerprint_sha256: &fp,
            publish: true,
            tracks: &tracks,
            cname: "c1",
        });
        let o = sdp::parse_offer(&text).unwrap();
        assert_eq!(o.ice_ufrag, "ufrag1");
        assert_eq!(o.bundle, vec!["0", "1"]);
        assert_eq!(o.media[0].ssrcs[0].ssrc, 1111);
        assert_eq!(o.media[1].codecs[0].payload_type, VP8_PT);
        assert!(o.media[1].direction.sends());
    }

    #[test]
    fn relay_answer_is_understood() {
        let tracks = [
            OfferTrack {
                kind: TrackKind::Audio,
                ssrc: 5,
            },
            OfferTrack {
                kind: TrackKind::Video,
                ssrc: 6,
            },
        ];
        let fp = [1u8; 32];
        let offer_text = write_offer(&OfferParams {
            ice_ufrag: "u",
            ice_pwd: "passwordpasswordpassword",
            fingerprint_sha256: &fp,
            publish: true,
            tracks: &tracks,
            cname: "c",
        });
        let offer = sdp::parse_offer(&offer_text).unwrap();
        let params = sdp::AnswerParams {
            ice_ufrag: "relayu",
            ice_pwd: "relaypwdrelaypwdrelaypwd",
            fingerprint_sha256: [7; 32],
            candidate: "127.0.0.1:40000".parse().unwrap(),
            tcp_candidate: None,
            role: sdp::Role::Publish,
            session_id: 1,
        };
        let answer = sdp::answer(&offer, &params).unwrap();
        let a = parse_answer(&answer.sdp).unwrap();
        assert_eq!(a.ice_ufrag, "relayu");
        assert_eq!(a.ice_pwd, "relaypwdrelaypwdrelaypwd");
        assert_eq!(a.fingerprint_sha256, Some(vec![7; 32]));
        assert_eq!(
            a.candidate,
            "127.0.0.1:40000".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(a.tracks.len(), 2);
        assert_eq!(a.tracks[1].payload_type, VP8_PT);
        assert!(!a.tracks[0].server_sends);
    }

    #[test]
    fn garbage_answers_are_errors_not_panics() {
        for text in [
            "",
            "v=0",
            "hello",
            "v=0\r\nm=audio x",
            "v=0\r\na=ice-ufrag:x\r\n",
        ] {
            assert!(parse_answer(text).is_err());
        }
        assert_eq!(host_candidate("1 1 udp 1 nonsense 5 typ host"), None);
        assert_eq!(host_candidate("1 1 tcp 1 127.0.0.1 5 typ host"), None);
    }
}
