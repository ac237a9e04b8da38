//! Building the relay's answer: one codec per section, ICE-lite, passive DTLS, the owning
//! worker's UDP host candidate and, below it, its passive TCP candidate (RFC 6544).

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::{Codec, Direction, Extmap, MediaKind, MediaSection, Offer, SdpError, Setup};

/// The transport-wide sequence number extension; the relay sends transport-cc feedback for it.
pub const TRANSPORT_WIDE_CC: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// The MID header extension (RFC 8843 §15.1).
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

/// The abs-send-time extension; the relay stamps its own on what it sends subscribers.
pub const ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";

/// RTP header extensions the relay negotiates (it forwards others' payloads, not these). The
/// dependency descriptor is taken from video publishers only (below): the relay reads AV1 and
/// H.264 layers from it (`wire::dd`), and keeps it from subscribers, whose streams it thins
/// (their sequence numbers close the gaps; a forwarded descriptor would need its frame numbers
/// and templates kept consistent across simulcast switches).
const ACCEPTED_EXTENSIONS: [&str; 4] = [
    MID_URI,
    ABS_SEND_TIME,
    TRANSPORT_WIDE_CC,
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
];

/// The RTP stream id (RID) extension, and the one RTX packets carry the RID of their stream in
/// (RFC 8852): negotiated for simulcast publishers only.
pub const RTP_STREAM_ID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
pub const REPAIRED_RTP_STREAM_ID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

/// Most simulcast layers the relay takes from one section.
pub const MAX_LAYERS: usize = 4;

/// RTCP feedback the relay keeps on the chosen codec.
const ACCEPTED_RTCP_FB: [&str; 5] = ["nack", "nack pli", "ccm fir", "goog-remb", "transport-cc"];

/// Video codecs the relay forwards. The answer takes the first of these the offer lists.
const VIDEO_CODECS: [&str; 4] = ["VP8", "VP9", "H264", "AV1"];

/// What the relay puts in its side of the negotiation.
#[derive(Debug, Clone)]
pub struct AnswerParams<'a> {
    /// Our ICE ufrag for this session.
    pub ice_ufrag: &'a str,
    /// Our ICE password for this session.
    pub ice_pwd: &'a str,
    /// SHA-256 of the relay's DTLS certificate.
    pub fingerprint_sha256: [u8; 32],
    /// The owning worker's host candidate (UDP, typ host).
    pub candidate: SocketAddr,
    /// The owning worker's ICE-TCP listener, offered as a `tcptype passive` host candidate of
    /// lower priority than the UDP one (`None`: UDP only).
    pub tcp_candidate: Option<SocketAddr>,
    /// Publish or subscribe.
    pub role: Role<'a>,
    /// The `o=` session id.
    pub session_id: u64,
}

/// Which way media flows through this session.
#[derive(Debug, Clone, Copy)]
pub enum Role<'a> {
    /// WHIP publish: we receive. Each audio/video section the offer sends is answered recvonly.
    Publish,
    /// WHEP subscribe: we send the publisher's tracks.
    Subscribe {
        /// What the publisher negotiated (an earlier Publish answer's `Answer::media`).
        tracks: &'a [NegotiatedMedia],
        /// The SSRCs we send with, one `(primary, rtx)` per track, index for index.
        ssrcs: &'a [(u32, Option<u32>)],
        /// Our RTCP CNAME (also used as the msid stream id).
        cname: &'a str,
    },
}

/// The answer text and what it negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The SDP answer (CRLF line endings).
    pub sdp: String,
    /// One entry per section that carries media, in m-line order.
    pub media: Vec<NegotiatedMedia>,
}

/// One media section that carries media after negotiation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NegotiatedMedia {
    /// The section's `a=mid`.
    pub mid: String,
    /// Audio or video.
    pub kind: MediaKind,
    /// The chosen codec, with this offer's payload types (`rtx` only if negotiated).
    pub codec: Codec,
    /// The accepted header extensions, with this offer's ids.
    pub extensions: Vec<Extmap>,
    /// Publish: the offer's primary SSRC, if it declared one. Subscribe: the SSRC we send.
    pub ssrc: Option<u32>,
    /// The RTX SSRC that goes with `ssrc`, when RTX is negotiated.
    pub rtx_ssrc: Option<u32>,
    /// Publish with simulcast (RFC 8853): the layers' RIDs the relay receives, in the offer's
    /// order (its preference). Empty otherwise.
    pub rids: Vec<String>,
}

impl NegotiatedMedia {
    /// The id this section negotiated for header extension `uri`.
    pub fn extension_id(&self, uri: &str) -> Option<u8> {
        self.extensions.iter().find(|e| e.uri == uri).map(|e| e.id)
    }
}

/// Payload-type rewrites for forwarding a publisher's track to a subscriber:
/// `(publisher pt, subscriber pt)` for the primary codec and, when both have it, RTX.
pub fn payload_type_map(
    publisher: &NegotiatedMedia,
    subscriber: &NegotiatedMedia,
) -> Vec<(u8, u8)> {
    let mut map = vec![(publisher.codec.payload_type, subscriber.codec.payload_type)];
    if let (Some(p), Some(s)) = (publisher.codec.rtx, subscriber.codec.rtx) {
        map.push((p, s));
    }
    map
}

/// How one offered section is answered.
#[derive(Debug)]
enum Plan {
    /// Port 0, `a=inactive`.
    Rejected,
    /// Bundled, but no media flows.
    Inactive {
        codec: Codec,
        extensions: Vec<Extmap>,
    },
    /// Media flows; `track_id` is set when we send (Subscribe).
    Active {
        media: NegotiatedMedia,
        direction: Direction,
        track_id: Option<String>,
    },
}

/// Build the relay's answer to `offer`.
pub fn answer(offer: &Offer, params: &AnswerParams<'_>) -> Result<Answer, SdpError> {
    check_params(params)?;
    if offer.ice_ufrag.is_empty() || offer.ice_pwd.is_empty() {
        return Err(SdpError::at(0, "offer has no ICE credentials"));
    }
    if offer.fingerprints.is_empty() {
        return Err(SdpError::at(0, "offer has no a=fingerprint"));
    }
    if offer.setup == Setup::Passive {
        return Err(SdpError::at(
            0,
            "a=setup:passive offered; the relay is always passive, offer actpass or active",
        ));
    }

    let mut used_tracks: Vec<bool> = match params.role {
        Role::Publish => Vec::new(),
        Role::Subscribe { tracks, .. } => vec![false; tracks.len()],
    };
    let mut plans = Vec::with_capacity(offer.media.len());
    let mut unbundled_taken = false;
    for section in &offer.media {
        let chosen = match section.kind {
            MediaKind::Application => None,
            _ if !section.is_live() => None,
            _ => choose_codec(section),
        };
        let Some(chosen) = chosen else {
            plans.push(Plan::Rejected);
            continue;
        };
        // One transport for everything: a section outside the offer's BUNDLE group (or, with no
        // group, any section after the first) cannot share it.
        let bundled = if offer.bundle.is_empty() {
            !std::mem::replace(&mut unbundled_taken, true)
        } else {
            offer.bundle.contains(&section.mid)
        };
        if !bundled {
            plans.push(Plan::Rejected);
            continue;
        }
        if !section.rtcp_mux {
            return Err(SdpError::at(
                section.line,
                format!(
                    "mid {} has no a=rtcp-mux; the relay requires it",
                    section.mid
                ),
            ));
        }
        let extensions = accepted_extensions(&section.extensions);
        let plan = match params.role {
            Role::Publish if section.direction.sends() => {
                let codec = filtered(&chosen);
                let rids = simulcast_layers(section);
                let (ssrc, rtx) = if rids.is_empty() {
                    section.primary_ssrcs()
                } else {
                    // Each layer's SSRCs are found by its RID.
                    (None, None)
                };
                let rtx_ssrc = if codec.rtx.is_some() { rtx } else { None };
                let mut extensions = extensions;
                if section.kind == MediaKind::Video {
                    extensions.extend(
                        section
                            .extensions
                            .iter()
                            .filter(|e| e.uri == crate::wire::dd::URI)
                            .cloned(),
                    );
                }
                if !rids.is_empty() {
                    extensions.extend(
                        section
                            .extensions
                            .iter()
                            .filter(|e| {
                                e.uri == RTP_STREAM_ID
                                    || (e.uri == REPAIRED_RTP_STREAM_ID && codec.rtx.is_some())
                            })
                            .cloned(),
                    );
                }
                Plan::Active {
                    media: NegotiatedMedia {
                        mid: section.mid.clone(),
                        kind: section.kind,
                        codec,
                        extensions,
                        ssrc,
                        rtx_ssrc,
                        rids,
                    },
                    direction: Direction::RecvOnly,
                    track_id: None,
                }
            }
            Role::Publish => Plan::Inactive {
                codec: filtered(&chosen),
                extensions,
            },
            Role::Subscribe { .. } if section.direction == Direction::SendOnly => {
                return Err(SdpError::at(
                    section.line,
                    format!(
                        "mid {} is sendonly; a WHEP subscriber must receive",
                        section.mid
                    ),
                ));
            }
            Role::Subscribe {
                tracks,
                ssrcs,
                cname,
            } if section.direction.receives() => match match_track(section, tracks, &used_tracks) {
                Some((index, track, sub_codec)) => {
                    if let Some(used) = used_tracks.get_mut(index) {
                        *used = true;
                    }
                    let (ssrc, rtx_ssrc) = ssrcs.get(index).copied().unwrap_or((0, None));
                    let mut codec = filtered(&sub_codec);
                    if track.codec.rtx.is_none() || rtx_ssrc.is_none() {
                        codec.rtx = None;
                    }
                    let rtx_ssrc = codec.rtx.and(rtx_ssrc);
                    Plan::Active {
                        media: NegotiatedMedia {
                            mid: section.mid.clone(),
                            kind: section.kind,
                            codec,
                            extensions,
                            ssrc: Some(ssrc),
                            rtx_ssrc,
                            rids: Vec::new(),
                        },
                        direction: Direction::SendOnly,
                        track_id: Some(format!("{cname}-{}", track.mid)),
                    }
                }
                None => Plan::Inactive {
                    codec: filtered(&chosen),
                    extensions,
                },
            },
            Role::Subscribe { .. } => Plan::Inactive {
                codec: filtered(&chosen),
                extensions,
            },
        };
        plans.push(plan);
    }

    let media: Vec<NegotiatedMedia> = plans
        .iter()
        .filter_map(|p| match p {
            Plan::Active { media, .. } => Some(media.clone()),
            _ => None,
        })
        .collect();
    if media.is_empty() {
        return Err(SdpError::at(0, "no media section could be accepted"));
    }
    let sdp = write_answer(offer, params, &plans);
    Ok(Answer { sdp, media })
}

fn check_params(params: &AnswerParams<'_>) -> Result<(), SdpError> {
    let token =
        |s: &str| !s.is_empty() && s.len() <= 256 && s.chars().all(|c| c.is_ascii_graphic());
    if !token(params.ice_ufrag) || params.ice_ufrag.contains(':') || !token(params.ice_pwd) {
        return Err(SdpError::ApiMisuse(
            "ICE ufrag/pwd must be printable tokens",
        ));
    }
    if let Role::Subscribe {
        tracks,
        ssrcs,
        cname,
    } = params.role
    {
        if tracks.len() != ssrcs.len() {
            return Err(SdpError::ApiMisuse(
                "Subscribe needs one ssrc entry per track",
            ));
        }
        if !token(cname) {
            return Err(SdpError::ApiMisuse("cname must be a printable token"));
        }
    }
    Ok(())
}

/// The codec the relay answers with, or `None` when the section offers nothing it forwards.
/// Audio: Opus/48000/2. Video: the first of VP8, VP9, H264, AV1 in the offer's order, then the
/// best variant of that codec (H264 packetization-mode=1 with 42e01f/42001f, VP9/AV1 profile 0).
fn choose_codec(section: &MediaSection) -> Option<Codec> {
    match section.kind {
        MediaKind::Audio => section
            .codecs
            .iter()
            .find(|c| c.is("opus") && c.clock_rate == 48000 && c.channels == Some(2))
            .cloned(),
        MediaKind::Video => {
            let first = section
                .codecs
                .iter()
                .find(|c| c.clock_rate == 90000 && VIDEO_CODECS.iter().any(|v| c.is(v)))?;
            let mut best = first;
            for c in section.codecs.iter().filter(|c| c.is(&first.name)) {
                if variant_rank(c) > variant_rank(best) {
                    best = c;
                }
            }
            Some(best.clone())
        }
        MediaKind::Application => None,
    }
}

fn variant_rank(c: &Codec) -> u8 {
    if c.is("H264") {
        let pm1 = packetization_mode(c) == "1";
        let baseline = c
            .fmtp_param("profile-level-id")
            .is_some_and(|p| p.eq_ignore_ascii_case("42e01f") || p.eq_ignore_ascii_case("42001f"));
        u8::from(pm1) * 2 + u8::from(pm1 && baseline)
    } else if c.is("VP9") {
        u8::from(c.fmtp_param("profile-id").is_none_or(|p| p == "0"))
    } else if c.is("AV1") {
        u8::from(c.fmtp_param("profile").is_none_or(|p| p == "0"))
    } else {
        0
    }
}

fn packetization_mode(c: &Codec) -> &str {
    c.fmtp_param("packetization-mode").unwrap_or("0")
}

/// Whether the subscriber's codec `sub` can carry the publisher's codec `publ` unchanged.
fn compatible(sub: &Codec, publ: &Codec) -> bool {
    sub.is(&publ.name)
        && sub.clock_rate == publ.clock_rate
        && sub.channels.unwrap_or(1) == publ.channels.unwrap_or(1)
        && (!publ.is("H264") || packetization_mode(sub) == packetization_mode(publ))
        && (!publ.is("VP9")
            || sub.fmtp_param("profile-id").unwrap_or("0")
                == publ.fmtp_param("profile-id").unwrap_or("0"))
}

/// The next unused publisher track of the section's kind that the subscriber can receive, and
/// the subscriber's codec for it (the exact H264 profile if offered, else the best variant).
fn match_track<'t>(
    section: &MediaSection,
    tracks: &'t [NegotiatedMedia],
    used: &[bool],
) -> Option<(usize, &'t NegotiatedMedia, Codec)> {
    tracks.iter().enumerate().find_map(|(i, track)| {
        if used.get(i).copied().unwrap_or(true) || track.kind != section.kind {
            return None;
        }
        let candidates = section
            .codecs
            .iter()
            .filter(|c| compatible(c, &track.codec));
        let mut best: Option<&Codec> = None;
        let rank = |c: &Codec| {
            let same_profile = c.fmtp_param("profile-level-id").is_some()
                && c.fmtp_param("profile-level-id") == track.codec.fmtp_param("profile-level-id");
            (u8::from(same_profile), variant_rank(c))
        };
        for c in candidates {
            if best.is_none_or(|b| rank(c) > rank(b)) {
                best = Some(c);
            }
        }
        best.map(|c| (i, track, c.clone()))
    })
}

/// The codec with only the RTCP feedback the relay implements.
fn filtered(codec: &Codec) -> Codec {
    let mut c = codec.clone();
    c.rtcp_fb
        .retain(|fb| ACCEPTED_RTCP_FB.contains(&fb.as_str()));
    c
}

/// The simulcast layers a publishing section offers (`a=simulcast:send`, RFC 8853), as RIDs
/// that an `a=rid:<id> send` line declares: the first of each group of alternatives, paused
/// ones (`~`) left out, at most [`MAX_LAYERS`]. Empty when the section does not simulcast, or
/// needs the RID extension to tell its layers apart and did not offer it.
fn simulcast_layers(section: &MediaSection) -> Vec<String> {
    let Some(value) = section.simulcast.as_deref() else {
        return Vec::new();
    };
    if !section.extensions.iter().any(|e| e.uri == RTP_STREAM_ID) {
        return Vec::new();
    }
    let mut words = value.split_ascii_whitespace();
    let mut list = None;
    while let Some(w) = words.next() {
        let next = words.next();
        if w == "send" {
            list = next;
        }
    }
    let mut rids: Vec<String> = Vec::new();
    for group in list.unwrap_or("").split(';') {
        let Some(first) = group.split(',').next() else {
            continue;
        };
        if first.starts_with('~') || first.is_empty() {
            continue;
        }
        if section.send_rids().any(|r| r == first) && !rids.iter().any(|r| r == first) {
            rids.push(first.to_owned());
        }
        if rids.len() == MAX_LAYERS {
            break;
        }
    }
    // One layer is no simulcast: it is found like any stream.
    if rids.len() < 2 {
        rids.clear();
    }
    rids
}

fn accepted_extensions(offered: &[Extmap]) -> Vec<Extmap> {
    offered
        .iter()
        .filter(|e| ACCEPTED_EXTENSIONS.contains(&e.uri.as_str()))
        .cloned()
        .collect()
}

fn write_answer(offer: &Offer, params: &AnswerParams<'_>, plans: &[Plan]) -> String {
    let mut out = String::with_capacity(1024 + 1024 * plans.len());
    let ip = params.candidate.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let bundled: Vec<&str> = offer
        .media
        .iter()
        .zip(plans)
        .filter(|(_, p)| !matches!(p, Plan::Rejected))
        .map(|(m, _)| m.mid.as_str())
        .collect();
    // `write!` to a String cannot fail; the results are ignored on purpose.
    let _ = write!(
        out,
        "v=0\r\no=- {} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
         a=group:BUNDLE {}\r\na=msid-semantic: WMS *\r\n",
        params.session_id,
        bundled.join(" ")
    );
    if offer.extmap_allow_mixed {
        // The two-byte form: a keyframe's dependency descriptor (its template structure) is
        // longer than the one-byte form's 16 bytes. The relay reads both forms, and writes a
        // subscriber's block in the one-byte form whenever its elements fit.
        out.push_str("a=extmap-allow-mixed\r\n");
    }
    let fingerprint = params
        .fingerprint_sha256
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    for (section, plan) in offer.media.iter().zip(plans) {
        let (codec, extensions, direction, send) = match plan {
            Plan::Rejected => {
                let _ = write!(
                    out,
                    "m={} 0 {} {}\r\nc=IN IP4 0.0.0.0\r\na=mid:{}\r\na=inactive\r\n",
                    section.kind.as_str(),
                    section.proto,
                    section.formats.join(" "),
                    section.mid
                );
                continue;
            }
            Plan::Inactive { codec, extensions } => (codec, extensions, Direction::Inactive, None),
            Plan::Active {
                media,
                direction,
                track_id,
            } => (
                &media.codec,
                &media.extensions,
                *direction,
                track_id.as_deref().map(|t| (t, media.ssrc, media.rtx_ssrc)),
            ),
        };
        let pt = codec.payload_type;
        let _ = write!(out, "m={} 9 UDP/TLS/RTP/SAVPF {pt}", section.kind.as_str());
        if let Some(rtx) = codec.rtx {
            let _ = write!(out, " {rtx}");
        }
        let _ = write!(
            out,
            "\r\nc=IN {family} {ip}\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\n\
             a=fingerprint:sha-256 {fingerprint}\r\na=setup:passive\r\na=mid:{}\r\n",
            params.ice_ufrag, params.ice_pwd, section.mid
        );
        for ext in extensions {
            let _ = write!(out, "a=extmap:{} {}\r\n", ext.id, ext.uri);
        }
        let _ = write!(out, "a={}\r\n", direction.as_str());
        if let Plan::Active { media, .. } = plan {
            if !media.rids.is_empty() {
                for rid in &media.rids {
                    let _ = write!(out, "a=rid:{rid} recv\r\n");
                }
                let _ = write!(out, "a=simulcast:recv {}\r\n", media.rids.join(";"));
            }
        }
        let cname = match params.role {
            Role::Subscribe { cname, .. } => cname,
            Role::Publish => "",
        };
        if let Some((track, _, _)) = send {
            let _ = write!(out, "a=msid:{cname} {track}\r\n");
        }
        out.push_str("a=rtcp-mux\r\n");
        if section.rtcp_rsize {
            out.push_str("a=rtcp-rsize\r\n");
        }
        let _ = write!(out, "a=rtpmap:{pt} {}/{}", codec.name, codec.clock_rate);
        if let Some(ch) = codec.channels {
            let _ = write!(out, "/{ch}");
        }
        out.push_str("\r\n");
        for fb in &codec.rtcp_fb {
            let _ = write!(out, "a=rtcp-fb:{pt} {fb}\r\n");
        }
        if let Some(fmtp) = &codec.fmtp {
            let _ = write!(out, "a=fmtp:{pt} {fmtp}\r\n");
        }
        if let Some(rtx) = codec.rtx {
            let _ = write!(
                out,
                "a=rtpmap:{rtx} rtx/{}\r\na=fmtp:{rtx} apt={pt}\r\n",
                codec.clock_rate
            );
        }
        if let Some((track, Some(ssrc), rtx_ssrc)) = send {
            if let Some(rtx) = rtx_ssrc {
                let _ = write!(out, "a=ssrc-group:FID {ssrc} {rtx}\r\n");
            }
            for s in std::iter::once(ssrc).chain(rtx_ssrc) {
                let _ = write!(
                    out,
                    "a=ssrc:{s} cname:{cname}\r\na=ssrc:{s} msid:{cname} {track}\r\n"
                );
            }
        }
        out.push_str(&candidate_lines(params.candidate, params.tcp_candidate));
    }
    out
}

/// Priority of the UDP host candidate: type preference 126, local preference 65535, component 1
/// (RFC 8445 §5.1.2.1).
pub const UDP_HOST_PRIORITY: u32 = (126 << 24) | (65535 << 8) | 255;

/// Priority of the passive TCP host candidate (RFC 6544 §4.2): type preference 90 (below UDP's
/// 126, as libwebrtc ranks host TCP, so clients use TCP only when UDP fails), local preference
/// direction-pref 4 (passive host) << 13 | other-pref 8191, component 1.
pub const TCP_PASSIVE_HOST_PRIORITY: u32 = (90 << 24) | (((4 << 13) | 8191) << 8) | 255;

/// The `a=candidate` lines of an answer section (or an ICE restart's fragment): the UDP host
/// candidate, then the passive TCP one, then `a=end-of-candidates`.
pub fn candidate_lines(udp: SocketAddr, tcp: Option<SocketAddr>) -> String {
    let mut out = format!(
        "a=candidate:1 1 udp {UDP_HOST_PRIORITY} {} {} typ host\r\n",
        udp.ip(),
        udp.port()
    );
    if let Some(tcp) = tcp {
        let _ = write!(
            out,
            "a=candidate:2 1 tcp {TCP_PASSIVE_HOST_PRIORITY} {} {} typ host tcptype passive\r\n",
            tcp.ip(),
            tcp.port()
        );
    }
    out.push_str("a=end-of-candidates\r\n");
    out
}
