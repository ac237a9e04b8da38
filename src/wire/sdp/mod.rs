//! SDP (RFC 8866) for WHIP and WHEP: parse a client's offer, build the relay's answer, and parse
//! trickle-ICE fragments (RFC 8840).
//!
//! Sans-IO like the rest of `wire`: text in, values and text out; no state, no clock, no I/O.
//! The text comes from the network, so every entry point is bounded (`MAX_SDP_LEN`,
//! `MAX_LINE_LEN`, `MAX_MEDIA_SECTIONS`), rejects control characters that could smuggle lines
//! into the answer, and returns an [`SdpError`] naming the offending line — never a panic.
//!
//! The answer is always ICE-lite, `a=setup:passive`, BUNDLE + rtcp-mux, one UDP host candidate
//! (and a passive TCP one below it when the worker serves ICE-TCP), and
//! exactly one codec per accepted media section.

mod answer;
mod parse;
#[cfg(test)]
mod tests;

pub use answer::{
    answer, candidate_lines, payload_type_map, Answer, AnswerParams, NegotiatedMedia, Role,
    ABS_SEND_TIME, MAX_LAYERS, MID_URI, REPAIRED_RTP_STREAM_ID, RTP_STREAM_ID,
    TCP_PASSIVE_HOST_PRIORITY, TRANSPORT_WIDE_CC, UDP_HOST_PRIORITY,
};
pub use parse::{parse_offer, parse_trickle_fragment};

/// Largest SDP body accepted, in bytes.
pub const MAX_SDP_LEN: usize = 64 * 1024;
/// Longest line accepted, in bytes.
pub const MAX_LINE_LEN: usize = 4 * 1024;
/// Most `m=` sections accepted in one offer.
pub const MAX_MEDIA_SECTIONS: usize = 64;

/// Why an offer or fragment was refused, or an answer could not be built.
///
/// `Offer` is the peer's fault (the HTTP layer answers 400 with the `Display` text);
/// `ApiMisuse` is ours (inconsistent `AnswerParams`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The offer is malformed or cannot be answered. `line` is 1-based; 0 means the document as a
    /// whole.
    #[error("line {line}: {reason}")]
    Offer {
        /// 1-based line number, or 0 for the whole document.
        line: usize,
        /// What is wrong, in words fit for an HTTP 400 body.
        reason: String,
    },
    /// The caller passed parameters that contradict each other.
    #[error("sdp api misuse: {0}")]
    ApiMisuse(&'static str),
}

impl SdpError {
    pub(crate) fn at(line: usize, reason: impl Into<String>) -> Self {
        SdpError::Offer {
            line,
            reason: reason.into(),
        }
    }

    /// The offending line (0 for the whole document), or `None` for API misuse.
    pub fn line(&self) -> Option<usize> {
        match self {
            SdpError::Offer { line, .. } => Some(*line),
            SdpError::ApiMisuse(_) => None,
        }
    }
}

/// A parsed SDP offer from a WHIP publisher or WHEP subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The peer's ICE username fragment (one for the whole BUNDLE).
    pub ice_ufrag: String,
    /// The peer's ICE password.
    pub ice_pwd: String,
    /// Every distinct `a=fingerprint`, session- or media-level.
    pub fingerprints: Vec<Fingerprint>,
    /// The peer's DTLS role offer.
    pub setup: Setup,
    /// The mids of the first `a=group:BUNDLE`, in order (empty when there is none).
    pub bundle: Vec<String>,
    /// `a=ice-options` tokens (e.g. `trickle`).
    pub ice_options: Vec<String>,
    /// The `m=` sections, in offer order.
    pub media: Vec<MediaSection>,
    /// `a=extmap-allow-mixed` (RFC 8285 §6), session- or media-level: the peer takes (and may
    /// send) the two-byte header extension form beside the one-byte one.
    pub extmap_allow_mixed: bool,
}

/// `a=fingerprint`: the hash of the peer's DTLS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash function name, lowercase (`sha-256`).
    pub algorithm: String,
    /// The digest bytes.
    pub value: Vec<u8>,
}

/// `a=setup` (RFC 4145 / 5763).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The offerer lets the answerer choose.
    ActPass,
    /// The offerer will be the DTLS client.
    Active,
    /// The offerer wants to be the DTLS server (the relay refuses: it is always passive).
    Passive,
}

/// The media type of an `m=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// `m=audio`.
    Audio,
    /// `m=video`.
    Video,
    /// `m=application` (data channels; always rejected by the relay).
    Application,
}

impl MediaKind {
    /// What an RTP stream of this section carries, or `None` for `Application`.
    pub fn track_kind(self) -> Option<crate::wire::MediaKind> {
        match self {
            MediaKind::Audio => Some(crate::wire::MediaKind::Audio),
            MediaKind::Video => Some(crate::wire::MediaKind::Video),
            MediaKind::Application => None,
        }
    }

    /// The token used on the `m=` line.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Application => "application",
        }
    }
}

impl From<crate::wire::MediaKind> for MediaKind {
    fn from(kind: crate::wire::MediaKind) -> Self {
        match kind {
            crate::wire::MediaKind::Audio => MediaKind::Audio,
            crate::wire::MediaKind::Video => MediaKind::Video,
        }
    }
}

/// Media direction attribute, from the offerer's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Whether the offerer sends media in this direction.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the offerer receives media in this direction.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// One `m=` section of an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    /// Line number of the `m=` line (for error messages).
    pub line: usize,
    /// `m=` media type.
    pub kind: MediaKind,
    /// `a=mid`.
    pub mid: String,
    /// `m=` port (0 means disabled, unless `bundle_only`).
    pub port: u16,
    /// `a=bundle-only` (RFC 8843): port 0 but live inside the BUNDLE group.
    pub bundle_only: bool,
    /// `m=` transport protocol, as written.
    pub proto: String,
    /// The `m=` format list, as written (payload types, or `webrtc-datachannel`).
    pub formats: Vec<String>,
    /// Media direction (media-level, else session-level, else sendrecv).
    pub direction: Direction,
    /// Codecs with an `a=rtpmap`, in `m=` line (preference) order; RTX folded into `Codec::rtx`.
    pub codecs: Vec<Codec>,
    /// `a=extmap` entries (media-level, then session-level).
    pub extensions: Vec<Extmap>,
    /// `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// `a=rtcp-rsize`.
    pub rtcp_rsize: bool,
    /// `a=ssrc` lines, grouped by SSRC in first-seen order.
    pub ssrcs: Vec<SsrcInfo>,
    /// `a=ssrc-group:FID primary rtx` pairs.
    pub fid_groups: Vec<(u32, u32)>,
    /// `a=ssrc-group:SIM` groups (recorded, not used).
    pub sim_groups: Vec<Vec<u32>>,
    /// `a=msid` value (`stream track`).
    pub msid: Option<String>,
    /// `a=rid` lines: id and direction (`send` or `recv`); restrictions are not kept.
    pub rids: Vec<(String, String)>,
    /// `a=simulcast` value.
    pub simulcast: Option<String>,
    /// `a=candidate` values (recorded; the ICE-lite relay does not use them).
    pub candidates: Vec<String>,
    /// `a=end-of-candidates` seen.
    pub end_of_candidates: bool,
}

impl MediaSection {
    /// The ids of the section's `a=rid:<id> send` lines.
    pub fn send_rids(&self) -> impl Iterator<Item = &str> {
        self.rids
            .iter()
            .filter(|(_, dir)| dir == "send")
            .map(|(id, _)| id.as_str())
    }

    /// Whether the offerer wants this section used: a non-zero port, or `a=bundle-only`.
    pub fn is_live(&self) -> bool {
        self.port != 0 || self.bundle_only
    }

    /// The offer's primary SSRC and its RTX SSRC: the first SIM group's first SSRC, else the
    /// first FID group's, else the first `a=ssrc`; RTX from the FID group that starts with it.
    pub fn primary_ssrcs(&self) -> (Option<u32>, Option<u32>) {
        let primary = self
            .sim_groups
            .first()
            .and_then(|g| g.first().copied())
            .or_else(|| self.fid_groups.first().map(|g| g.0))
            .or_else(|| self.ssrcs.first().map(|s| s.ssrc));
        let rtx = primary.and_then(|p| self.fid_groups.iter().find(|g| g.0 == p).map(|g| g.1));
        (primary, rtx)
    }
}

/// One payload type of a media section.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Codec {
    /// RTP payload type.
    pub payload_type: u8,
    /// Encoding name as written (compare case-insensitively).
    pub name: String,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Channel count (audio).
    pub channels: Option<u8>,
    /// `a=fmtp` parameters, as written.
    pub fmtp: Option<String>,
    /// `a=rtcp-fb` values for this payload type (including `*` ones).
    pub rtcp_fb: Vec<String>,
    /// The RTX payload type whose `apt=` points here.
    pub rtx: Option<u8>,
}

impl Codec {
    /// Whether `name` matches case-insensitively.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The value of one `key=value` fmtp parameter.
    pub fn fmtp_param(&self, key: &str) -> Option<&str> {
        fmtp_param(self.fmtp.as_deref()?, key)
    }
}

/// The value of `key` in an fmtp string (`k=v;k=v`), case-insensitive key.
pub(crate) fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

/// `a=extmap`: an RTP header extension and its id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Extmap {
    /// Extension id (1–255).
    pub id: u8,
    /// Extension URI.
    pub uri: String,
}

/// What the `a=ssrc` lines say about one SSRC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrcInfo {
    /// The SSRC.
    pub ssrc: u32,
    /// `cname:` attribute.
    pub cname: Option<String>,
    /// `msid:` attribute.
    pub msid: Option<String>,
}

/// A parsed `application/trickle-ice-sdpfrag` body (RFC 8840).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrickleFragment {
    /// `a=ice-ufrag`, when present.
    pub ice_ufrag: Option<String>,
    /// `a=ice-pwd`, when present.
    pub ice_pwd: Option<String>,
    /// The candidates, in order.
    pub candidates: Vec<TrickleCandidate>,
    /// `a=end-of-candidates` seen.
    pub end_of_candidates: bool,
}

impl TrickleFragment {
    /// Whether this fragment restarts ICE: it carries a ufrag different from the current one.
    pub fn is_ice_restart(&self, current_ufrag: &str) -> bool {
        self.ice_ufrag
            .as_deref()
            .is_some_and(|u| u != current_ufrag)
    }
}

/// One `a=candidate` of a trickle fragment and the `a=mid` it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrickleCandidate {
    /// The `a=mid` of the enclosing `m=` section, if any.
    pub mid: Option<String>,
    /// The candidate attribute value (after `a=candidate:`).
    pub candidate: String,
}
