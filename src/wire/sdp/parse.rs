//! Offer and trickle-fragment parsing. Bounded, line-numbered, panic-free.

use std::collections::BTreeMap;

use super::{
    fmtp_param, Codec, Direction, Extmap, Fingerprint, MediaKind, MediaSection, Offer, SdpError,
    Setup, SsrcInfo, TrickleCandidate, TrickleFragment, MAX_LINE_LEN, MAX_MEDIA_SECTIONS,
    MAX_SDP_LEN,
};

/// Most `a=rtcp-fb` values kept per codec.
const MAX_RTCP_FB: usize = 32;
/// Most SSRCs in one `a=ssrc-group`.
const MAX_GROUP_SSRCS: usize = 16;
/// Longest digest accepted in `a=fingerprint` (sha-512).
const MAX_FINGERPRINT_BYTES: usize = 64;
/// Longest ICE ufrag/pwd (RFC 8839: 256 characters).
const MAX_ICE_CRED_LEN: usize = 256;
/// Longest `a=mid` value.
const MAX_MID_LEN: usize = 64;

/// Parse an SDP offer. See the module docs for what is accepted.
pub fn parse_offer(text: &str) -> Result<Offer, SdpError> {
    let lines = split_lines(text)?;
    let Some(&(first_no, first_type, first_value)) = lines.first() else {
        return Err(SdpError::at(0, "empty SDP"));
    };
    if first_type != 'v' || first_value != "0" {
        return Err(SdpError::at(first_no, "SDP must start with v=0"));
    }
    let mut session = Common::default();
    let mut bundle: Option<Vec<String>> = None;
    let mut ice_options: Vec<String> = Vec::new();
    let mut extmap_allow_mixed = false;
    let mut sections: Vec<SectionBuilder> = Vec::new();
    for &(n, kind, value) in &lines[1..] {
        match kind {
            'm' => {
                if sections.len() >= MAX_MEDIA_SECTIONS {
                    return Err(SdpError::at(n, "too many media sections"));
                }
                sections.push(SectionBuilder::new(n, value)?);
            }
            'a' => {
                let (name, val) = value.split_once(':').unwrap_or((value, ""));
                if name == "ice-options" {
                    for opt in val.split_ascii_whitespace() {
                        if !ice_options.iter().any(|o| o == opt) {
                            ice_options.push(opt.to_owned());
                        }
                    }
                    continue;
                }
                if name == "extmap-allow-mixed" {
                    extmap_allow_mixed = true;
                    continue;
                }
                match sections.last_mut() {
                    Some(section) => section.attr(n, name, val)?,
                    None if name == "group" => {
                        let mut tokens = val.split_ascii_whitespace();
                        if tokens.next() == Some("BUNDLE") && bundle.is_none() {
                            let mids: Vec<String> = tokens.map(str::to_owned).collect();
                            if mids.len() > MAX_MEDIA_SECTIONS {
                                return Err(SdpError::at(n, "BUNDLE group too large"));
                            }
                            bundle = Some(mids);
                        }
                    }
                    None => {
                        session.attr(n, name, val)?;
                    }
                }
            }
            _ => {}
        }
    }

    let media = sections
        .into_iter()
        .map(|s| s.finish(&session))
        .collect::<Result<Vec<(MediaSection, Common)>, _>>()?;
    for (i, (m, _)) in media.iter().enumerate() {
        if media[..i].iter().any(|(o, _)| o.mid == m.mid) {
            return Err(SdpError::at(m.line, format!("duplicate a=mid:{}", m.mid)));
        }
    }

    let ice_ufrag = one_value(&media, &session, |c| c.ufrag.as_ref(), "a=ice-ufrag")?;
    let ice_pwd = one_value(&media, &session, |c| c.pwd.as_ref(), "a=ice-pwd")?;
    if let Some(err) = conflict(&media, &session, |c| c.setup.as_ref(), "a=setup") {
        return Err(err);
    }
    // RFC 4145 §4: an absent a=setup means active.
    let setup =
        one_value(&media, &session, |c| c.setup.as_ref(), "a=setup").unwrap_or(Setup::Active);

    let mut fingerprints: Vec<Fingerprint> = Vec::new();
    for fp in session
        .fingerprints
        .iter()
        .chain(media.iter().flat_map(|(_, c)| c.fingerprints.iter()))
    {
        if !fingerprints.contains(fp) {
            fingerprints.push(fp.clone());
        }
    }
    if fingerprints.is_empty() {
        return Err(SdpError::at(0, "no a=fingerprint"));
    }

    Ok(Offer {
        ice_ufrag,
        ice_pwd,
        fingerprints,
        setup,
        bundle: bundle.unwrap_or_default(),
        ice_options,
        media: media.into_iter().map(|(m, _)| m).collect(),
        extmap_allow_mixed,
    })
}

/// Parse an `application/trickle-ice-sdpfrag` body (RFC 8840): ICE credentials, if present, and
/// the candidates with the mid of the `m=` section they follow.
pub fn parse_trickle_fragment(text: &str) -> Result<TrickleFragment, SdpError> {
    let lines = split_lines(text)?;
    let mut frag = TrickleFragment::default();
    let mut mid: Option<String> = None;
    for (n, kind, value) in lines {
        match kind {
            'm' => mid = None,
            'a' => {
                let (name, val) = value.split_once(':').unwrap_or((value, ""));
                match name {
                    "ice-ufrag" => frag.ice_ufrag = Some(ice_cred(n, val, true)?),
                    "ice-pwd" => frag.ice_pwd = Some(ice_cred(n, val, false)?),
                    "mid" => mid = Some(mid_value(n, val)?),
                    "candidate" => {
                        if val.trim().is_empty() {
                            return Err(SdpError::at(n, "empty a=candidate"));
                        }
                        frag.candidates.push(TrickleCandidate {
                            mid: mid.clone(),
                            candidate: val.trim().to_owned(),
                        });
                    }
                    "end-of-candidates" => frag.end_of_candidates = true,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(frag)
}

/// Split into `(line number, type, value)`, enforcing the size bounds and rejecting control
/// characters (an embedded CR could otherwise smuggle a line into the answer). Blank lines are
/// skipped.
fn split_lines(text: &str) -> Result<Vec<(usize, char, &str)>, SdpError> {
    if text.len() > MAX_SDP_LEN {
        return Err(SdpError::at(0, "SDP larger than 64 KiB"));
    }
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.len() > MAX_LINE_LEN {
            return Err(SdpError::at(n, "line longer than 4 KiB"));
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(SdpError::at(n, "control character in line"));
        }
        if line.trim().is_empty() {
            continue;
        }
        let mut chars = line.chars();
        match (chars.next(), chars.next()) {
            (Some(t), Some('=')) if t.is_ascii_lowercase() => out.push((n, t, chars.as_str())),
            _ => return Err(SdpError::at(n, "not a <type>=<value> line")),
        }
    }
    Ok(out)
}

/// Attributes that may appear at session or media level.
#[derive(Debug, Default)]
struct Common {
    ufrag: Option<(usize, String)>,
    pwd: Option<(usize, String)>,
    setup: Option<(usize, Setup)>,
    direction: Option<Direction>,
    fingerprints: Vec<Fingerprint>,
    extensions: Vec<Extmap>,
}

impl Common {
    /// Handle a common attribute; `Ok(false)` if `name` is not one.
    fn attr(&mut self, n: usize, name: &str, val: &str) -> Result<bool, SdpError> {
        match name {
            "ice-ufrag" => self.ufrag = Some((n, ice_cred(n, val, true)?)),
            "ice-pwd" => self.pwd = Some((n, ice_cred(n, val, false)?)),
            "fingerprint" => {
                let fp = fingerprint(n, val)?;
                if !self.fingerprints.contains(&fp) {
                    self.fingerprints.push(fp);
                }
            }
            "setup" => {
                let setup = match val.trim() {
                    "actpass" => Setup::ActPass,
                    "active" => Setup::Active,
                    "passive" => Setup::Passive,
                    other => return Err(SdpError::at(n, format!("unsupported a=setup:{other}"))),
                };
                self.setup = Some((n, setup));
            }
            "sendrecv" => self.direction = Some(Direction::SendRecv),
            "sendonly" => self.direction = Some(Direction::SendOnly),
            "recvonly" => self.direction = Some(Direction::RecvOnly),
            "inactive" => self.direction = Some(Direction::Inactive),
            "extmap" => {
                let ext = extmap(n, val)?;
                if self.extensions.iter().any(|e| e.id == ext.id) {
                    return Err(SdpError::at(n, format!("duplicate a=extmap id {}", ext.id)));
                }
                self.extensions.push(ext);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The one value of a session-or-media attribute across all live sections, media
/// level overriding session level.
fn one_value<T: Clone + PartialEq>(
    media: &[(MediaSection, Common)],
    session: &Common,
    get: impl Fn(&Common) -> Option<&(usize, T)>,
    what: &str,
) -> Result<T, SdpError> {
    if let Some(err) = conflict(media, session, &get, what) {
        return Err(err);
    }
    media
        .iter()
        .filter(|(m, _)| m.is_live())
        .find_map(|(_, c)| get(c).or(get(session)))
        .or_else(|| get(session))
        .map(|(_, v)| v.clone())
        .ok_or_else(|| SdpError::at(0, format!("no {what}")))
}

/// An error naming the first live section whose effective value differs from the first one's.
fn conflict<T: PartialEq>(
    media: &[(MediaSection, Common)],
    session: &Common,
    get: impl Fn(&Common) -> Option<&(usize, T)>,
    what: &str,
) -> Option<SdpError> {
    let mut first: Option<&T> = None;
    for (m, c) in media.iter().filter(|(m, _)| m.is_live()) {
        let Some((line, v)) = get(c).or(get(session)) else {
            continue;
        };
        match first {
            None => first = Some(v),
            Some(f) if f != v => {
                return Some(SdpError::at(
                    *line,
                    format!(
                        "{what} of mid {} differs from the other bundled sections",
                        m.mid
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    None
}

/// One `m=` section being read.
#[derive(Debug)]
struct SectionBuilder {
    section: MediaSection,
    common: Common,
    mid_seen: bool,
    payload_types: Vec<u8>,
    rtpmaps: BTreeMap<u8, (String, u32, Option<u8>)>,
    fmtps: BTreeMap<u8, String>,
    rtcp_fb: BTreeMap<u8, Vec<String>>,
    rtcp_fb_any: Vec<String>,
}

impl SectionBuilder {
    fn new(n: usize, value: &str) -> Result<Self, SdpError> {
        let mut fields = value.split_ascii_whitespace();
        let (Some(kind), Some(port), Some(proto)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(SdpError::at(
                n,
                "m= line needs media, port, proto and formats",
            ));
        };
        let kind = match kind {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            "application" => MediaKind::Application,
            other => return Err(SdpError::at(n, format!("unsupported media type {other}"))),
        };
        // `port/count` is legal SDP; the count is meaningless here.
        let port = port.split('/').next().unwrap_or(port);
        let port: u16 = port
            .parse()
            .map_err(|_| SdpError::at(n, "bad port on m= line"))?;
        let proto_ok = match kind {
            MediaKind::Application => matches!(
                proto,
                "UDP/DTLS/SCTP" | "DTLS/SCTP" | "TCP/DTLS/SCTP" | "UDP/TLS/RTP/SAVPF"
            ),
            _ => proto == "UDP/TLS/RTP/SAVPF",
        };
        if !proto_ok {
            return Err(SdpError::at(n, format!("unsupported protocol {proto}")));
        }
        let formats: Vec<String> = fields.map(str::to_owned).collect();
        if formats.is_empty() {
            return Err(SdpError::at(n, "m= line has no formats"));
        }
        let mut payload_types = Vec::new();
        if kind != MediaKind::Application {
            for f in &formats {
                let pt = payload_type(n, f)?;
                if !payload_types.contains(&pt) {
                    payload_types.push(pt);
                }
            }
        }
        Ok(SectionBuilder {
            section: MediaSection {
                line: n,
                kind,
                mid: String::new(),
                port,
                bundle_only: false,
                proto: proto.to_owned(),
                formats,
                direction: Direction::SendRecv,
                codecs: Vec::new(),
                extensions: Vec::new(),
                rtcp_mux: false,
                rtcp_rsize: false,
                ssrcs: Vec::new(),
                fid_groups: Vec::new(),
                sim_groups: Vec::new(),
                msid: None,
                rids: Vec::new(),
                simulcast: None,
                candidates: Vec::new(),
                end_of_candidates: false,
            },
            common: Common::default(),
            mid_seen: false,
            payload_types,
            rtpmaps: BTreeMap::new(),
            fmtps: BTreeMap::new(),
            rtcp_fb: BTreeMap::new(),
            rtcp_fb_any: Vec::new(),
        })
    }

    fn attr(&mut self, n: usize, name: &str, val: &str) -> Result<(), SdpError> {
        if self.common.attr(n, name, val)? {
            return Ok(());
        }
        let rtp = self.section.kind != MediaKind::Application;
        let s = &mut self.section;
        match name {
            "mid" => {
                if self.mid_seen {
                    return Err(SdpError::at(n, "second a=mid in one section"));
                }
                s.mid = mid_value(n, val)?;
                self.mid_seen = true;
            }
            "rtcp-mux" => s.rtcp_mux = true,
            "rtcp-rsize" => s.rtcp_rsize = true,
            "bundle-only" => s.bundle_only = true,
            "rtpmap" if rtp => {
                let (pt, rest) = pt_and_rest(n, val)?;
                let mut parts = rest.split('/');
                let name = parts.next().unwrap_or("").trim();
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_graphic()) {
                    return Err(SdpError::at(n, "bad encoding name in a=rtpmap"));
                }
                let clock: u32 = parts
                    .next()
                    .and_then(|c| c.trim().parse().ok())
                    .filter(|&c| c > 0)
                    .ok_or_else(|| SdpError::at(n, "bad clock rate in a=rtpmap"))?;
                let channels = match parts.next() {
                    None => None,
                    Some(ch) => Some(
                        ch.trim()
                            .parse::<u8>()
                            .ok()
                            .filter(|&c| c > 0)
                            .ok_or_else(|| SdpError::at(n, "bad channel count in a=rtpmap"))?,
                    ),
                };
                self.rtpmaps.insert(pt, (name.to_owned(), clock, channels));
            }
            "fmtp" if rtp => {
                let (pt, rest) = pt_and_rest(n, val)?;
                self.fmtps.insert(pt, rest.trim().to_owned());
            }
            "rtcp-fb" if rtp => {
                let (pt, rest) = val
                    .split_once(' ')
                    .ok_or_else(|| SdpError::at(n, "a=rtcp-fb needs a payload type and a value"))?;
                let fb = rest.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
                let list = if pt == "*" {
                    &mut self.rtcp_fb_any
                } else {
                    self.rtcp_fb.entry(payload_type(n, pt)?).or_default()
                };
                if list.len() >= MAX_RTCP_FB {
                    return Err(SdpError::at(n, "too many a=rtcp-fb for one payload type"));
                }
                if !fb.is_empty() && !list.contains(&fb) {
                    list.push(fb);
                }
            }
            "ssrc" => {
                let (id, rest) = val.split_once(' ').unwrap_or((val, ""));
                let ssrc = ssrc_value(n, id)?;
                let (attr, value) = rest.trim().split_once(':').unwrap_or((rest.trim(), ""));
                let idx = match s.ssrcs.iter().position(|i| i.ssrc == ssrc) {
                    Some(i) => i,
                    None => {
                        s.ssrcs.push(SsrcInfo {
                            ssrc,
                            cname: None,
                            msid: None,
                        });
                        s.ssrcs.len() - 1
                    }
                };
                if let Some(info) = s.ssrcs.get_mut(idx) {
                    match attr {
                        "cname" => info.cname = Some(value.trim().to_owned()),
                        "msid" => info.msid = Some(value.trim().to_owned()),
                        _ => {}
                    }
                }
            }
            "ssrc-group" => {
                let mut tokens = val.split_ascii_whitespace();
                let semantics = tokens.next().unwrap_or("");
                let ssrcs = tokens
                    .map(|t| ssrc_value(n, t))
                    .collect::<Result<Vec<u32>, _>>()?;
                if ssrcs.is_empty() || ssrcs.len() > MAX_GROUP_SSRCS {
                    return Err(SdpError::at(n, "bad SSRC count in a=ssrc-group"));
                }
                match (semantics, ssrcs.as_slice()) {
                    ("FID", &[a, b]) => s.fid_groups.push((a, b)),
                    ("FID", _) => return Err(SdpError::at(n, "a=ssrc-group:FID needs two SSRCs")),
                    ("SIM", _) => s.sim_groups.push(ssrcs),
                    _ => {}
                }
            }
            "msid" => s.msid = Some(val.trim().to_owned()),
            "rid" => {
                let mut words = val.split_ascii_whitespace();
                if let (Some(id), Some(dir)) = (words.next(), words.next()) {
                    s.rids.push((id.to_owned(), dir.to_owned()));
                }
            }
            "simulcast" => s.simulcast = Some(val.trim().to_owned()),
            "candidate" => s.candidates.push(val.trim().to_owned()),
            "end-of-candidates" => s.end_of_candidates = true,
            _ => {}
        }
        Ok(())
    }

    /// Resolve codecs, fold RTX, apply session-level defaults.
    fn finish(self, session: &Common) -> Result<(MediaSection, Common), SdpError> {
        let mut s = self.section;
        if !self.mid_seen {
            return Err(SdpError::at(s.line, "media section has no a=mid"));
        }
        s.direction = self
            .common
            .direction
            .or(session.direction)
            .unwrap_or(Direction::SendRecv);
        s.extensions = self.common.extensions.clone();
        for ext in &session.extensions {
            if !s.extensions.iter().any(|e| e.id == ext.id) {
                s.extensions.push(ext.clone());
            }
        }
        let mut codecs: Vec<Codec> = Vec::new();
        for pt in &self.payload_types {
            let Some((name, clock_rate, channels)) = self.rtpmaps.get(pt) else {
                continue; // static or undescribed payload type: not something we negotiate
            };
            let mut rtcp_fb = self.rtcp_fb.get(pt).cloned().unwrap_or_default();
            for fb in &self.rtcp_fb_any {
                if !rtcp_fb.contains(fb) && rtcp_fb.len() < MAX_RTCP_FB {
                    rtcp_fb.push(fb.clone());
                }
            }
            codecs.push(Codec {
                payload_type: *pt,
                name: name.clone(),
                clock_rate: *clock_rate,
                channels: *channels,
                fmtp: self.fmtps.get(pt).cloned(),
                rtcp_fb,
                rtx: None,
            });
        }
        let rtx_pairs: Vec<(u8, u8)> = codecs
            .iter()
            .filter(|c| c.is("rtx"))
            .filter_map(|c| {
                let apt = fmtp_param(c.fmtp.as_deref()?, "apt")?.parse().ok()?;
                Some((c.payload_type, apt))
            })
            .collect();
        for (rtx_pt, apt) in rtx_pairs {
            if let Some(primary) = codecs
                .iter_mut()
                .find(|c| c.payload_type == apt && !c.is("rtx"))
            {
                primary.rtx.get_or_insert(rtx_pt);
            }
        }
        codecs.retain(|c| !c.is("rtx"));
        s.codecs = codecs;
        Ok((s, self.common))
    }
}

fn payload_type(n: usize, s: &str) -> Result<u8, SdpError> {
    s.trim()
        .parse::<u8>()
        .ok()
        .filter(|&pt| pt <= 127)
        .ok_or_else(|| SdpError::at(n, format!("bad payload type {s:?}")))
}

fn pt_and_rest(n: usize, val: &str) -> Result<(u8, &str), SdpError> {
    let (pt, rest) = val
        .split_once(' ')
        .ok_or_else(|| SdpError::at(n, "attribute needs a payload type and a value"))?;
    Ok((payload_type(n, pt)?, rest))
}

fn ssrc_value(n: usize, s: &str) -> Result<u32, SdpError> {
    s.trim()
        .parse::<u32>()
        .map_err(|_| SdpError::at(n, format!("bad SSRC {s:?}")))
}

fn mid_value(n: usize, val: &str) -> Result<String, SdpError> {
    let mid = val.trim();
    if mid.is_empty() || mid.len() > MAX_MID_LEN || !mid.chars().all(|c| c.is_ascii_graphic()) {
        return Err(SdpError::at(n, "bad a=mid value"));
    }
    Ok(mid.to_owned())
}

/// An ICE ufrag or password: printable ASCII, no spaces, at most 256 characters; a ufrag may
/// not contain `:` (it is joined with ours by a colon in STUN USERNAME).
fn ice_cred(n: usize, val: &str, ufrag: bool) -> Result<String, SdpError> {
    let v = val.trim();
    let ok = !v.is_empty()
        && v.len() <= MAX_ICE_CRED_LEN
        && v.chars()
            .all(|c| c.is_ascii_graphic() && !(ufrag && c == ':'));
    if !ok {
        let what = if ufrag { "a=ice-ufrag" } else { "a=ice-pwd" };
        return Err(SdpError::at(n, format!("bad {what} value")));
    }
    Ok(v.to_owned())
}

fn fingerprint(n: usize, val: &str) -> Result<Fingerprint, SdpError> {
    let (alg, hex) = val
        .trim()
        .split_once(' ')
        .ok_or_else(|| SdpError::at(n, "a=fingerprint needs an algorithm and a value"))?;
    let alg = alg.to_ascii_lowercase();
    if alg.is_empty() || !alg.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(SdpError::at(n, "bad a=fingerprint algorithm"));
    }
    let mut value = Vec::new();
    for part in hex.trim().split(':') {
        let byte = (part.len() == 2)
            .then(|| u8::from_str_radix(part, 16).ok())
            .flatten()
            .ok_or_else(|| SdpError::at(n, "bad hex in a=fingerprint"))?;
        if value.len() >= MAX_FINGERPRINT_BYTES {
            return Err(SdpError::at(n, "a=fingerprint too long"));
        }
        value.push(byte);
    }
    Ok(Fingerprint {
        algorithm: alg,
        value,
    })
}

fn extmap(n: usize, val: &str) -> Result<Extmap, SdpError> {
    let mut fields = val.split_ascii_whitespace();
    let (Some(id_dir), Some(uri)) = (fields.next(), fields.next()) else {
        return Err(SdpError::at(n, "a=extmap needs an id and a URI"));
    };
    let id = id_dir.split('/').next().unwrap_or(id_dir);
    let id = id
        .parse::<u8>()
        .ok()
        .filter(|&id| id >= 1)
        .ok_or_else(|| SdpError::at(n, "bad a=extmap id"))?;
    Ok(Extmap {
        id,
        uri: uri.to_owned(),
    })
}
