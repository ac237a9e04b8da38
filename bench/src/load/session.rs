//! Bringing up one WHIP or WHEP session the way a browser would: POST the offer with a Bearer
//! token, read the answer, run ICE as the controlling agent (Binding requests with USE-CANDIDATE
//! until one succeeds), run the DTLS client handshake, check the server's certificate against
//! the answer's fingerprint and derive the SRTP contexts (RFC 5764).
//!
//! It owns the session's UDP socket until the handshake is done, then hands it, connected and
//! non-blocking, to the media threads. Every phase has a deadline, and every failure comes back
//! as a [`SetupError`] that says which phase failed and why; nothing here panics on what the
//! server sends.

use std::fmt;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dtls::config::{Config as DtlsConfig, ExtendedMasterSecretType};
use dtls::conn::DTLSConn;
use dtls::crypto::Certificate;
use tern::control::dtls::{profile_to_dtls, Fingerprint, FingerprintAlgorithm, CIPHER_SUITES};
use tern::ice::write_binding_request;
use tern::srtp::{Profile, SrtpContext};
use tern::wire::demux::{classify, PacketKind};
use tern::wire::stun::{StunClass, StunMessage};
use tokio::sync::{mpsc, Mutex};
use webrtc_util::KeyingMaterialExporter;

use super::sdp::{self, OfferParams, OfferTrack, ParsedAnswer, TrackKind};

/// The RFC 5764 §4.2 exporter label.
const EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";
/// Interval between ICE connectivity checks while none has succeeded.
const ICE_RETRY: Duration = Duration::from_millis(100);

/// Where and how to signal.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Base URL, e.g. `http://127.0.0.1:8080` (no trailing slash needed).
    pub url: String,
    /// Bearer token.
    pub token: String,
    /// Deadline of each setup phase (HTTP, ICE, DTLS).
    pub phase_timeout: Duration,
    /// The SRTP profile offered in `use_srtp` (only this one).
    pub profile: Profile,
}

/// Which session to open.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// WHIP (publish) or WHEP (subscribe).
    pub publish: bool,
    /// Room name.
    pub room: String,
    /// Stream name.
    pub stream: String,
    /// The media sections, in order.
    pub kinds: Vec<TrackKind>,
}

/// Why a session did not come up. The `Display` text is what the summary prints.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetupError {
    /// The HTTP request did not get a response (connection refused, DNS, timeout).
    Unreachable(String),
    /// The server answered with a status other than 201.
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's reason (first line of the body), if any.
        reason: String,
    },
    /// The 201 answer is not usable SDP.
    BadAnswer(String),
    /// No ICE check succeeded in time.
    IceTimeout(Duration),
    /// The DTLS handshake did not finish in time.
    DtlsTimeout(Duration),
    /// The DTLS handshake failed, or its result is unusable.
    Dtls(String),
    /// A local socket operation failed.
    Io(String),
}

impl SetupError {
    /// A short machine-readable phase name for the JSON report.
    pub fn phase(&self) -> &'static str {
        match self {
            SetupError::Unreachable(_) | SetupError::Rejected { .. } => "http",
            SetupError::BadAnswer(_) => "sdp",
            SetupError::IceTimeout(_) => "ice",
            SetupError::DtlsTimeout(_) | SetupError::Dtls(_) => "dtls",
            SetupError::Io(_) => "io",
        }
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Unreachable(e) => write!(f, "server unreachable: {e}"),
            SetupError::Rejected { status, reason } if reason.is_empty() => {
                write!(f, "HTTP {status}")
            }
            SetupError::Rejected { status, reason } => write!(f, "HTTP {status}: {reason}"),
            SetupError::BadAnswer(e) => write!(f, "bad SDP answer: {e}"),
            SetupError::IceTimeout(t) => {
                write!(f, "ICE: no Binding success response within {t:?}")
            }
            SetupError::DtlsTimeout(t) => write!(f, "DTLS handshake did not complete within {t:?}"),
            SetupError::Dtls(e) => write!(f, "DTLS: {e}"),
            SetupError::Io(e) => write!(f, "socket: {e}"),
        }
    }
}

impl std::error::Error for SetupError {}

/// The controlling agent's half of ICE for one session: builds authenticated Binding requests
/// and recognises the server's success responses. Also used for consent refresh.
#[derive(Debug, Clone)]
pub struct IceClient {
    username: Vec<u8>,
    pwd: Vec<u8>,
    tie_breaker: u64,
    last_tid: [u8; 12],
}

impl IceClient {
    /// USERNAME `remote_ufrag:local_ufrag`, keyed with the server's password.
    pub fn new(remote_ufrag: &str, local_ufrag: &str, remote_pwd: &str) -> Self {
        IceClient {
            username: format!("{remote_ufrag}:{local_ufrag}").into_bytes(),
            pwd: remote_pwd.as_bytes().to_vec(),
            tie_breaker: rand::random(),
            last_tid: [0; 12],
        }
    }

    /// Writes a fresh Binding request with USE-CANDIDATE into `out`; returns its length.
    pub fn request(&mut self, out: &mut [u8]) -> usize {
        self.last_tid = rand::random();
        write_binding_request(
            out,
            &self.last_tid,
            &self.username,
            Some(&self.pwd),
            true,
            self.tie_breaker,
        )
        .unwrap_or(0)
    }

    /// True if `datagram` is an authenticated success response to one of our requests.
    pub fn is_success(&self, datagram: &[u8]) -> bool {
        let Ok(msg) = StunMessage::parse(datagram) else {
            return false;
        };
        msg.class() == StunClass::SuccessResponse && msg.verify_integrity(&self.pwd)
    }
}

/// A session whose handshake is done: ready for media.
#[derive(Debug)]
pub struct Connected {
    /// The UDP socket, connected to the server's candidate, non-blocking.
    pub socket: UdpSocket,
    /// The session resource (absolute URL) to DELETE at the end, if the server gave one.
    pub location: Option<String>,
    /// For consent refreshes.
    pub ice: IceClient,
    /// Protects what we send (client write key).
    pub tx: SrtpContext,
    /// Unprotects what the server sends (server write key).
    pub rx: SrtpContext,
    /// The SSRCs we offered, section by section.
    pub local: Vec<OfferTrack>,
    /// What the answer said.
    pub answer: ParsedAnswer,
    /// Time from the POST to usable keys.
    pub setup_time: Duration,
}

/// The DTLS certificate the whole run uses, and its SHA-256 fingerprint.
#[derive(Clone)]
pub struct ClientIdentity {
    certificate: Certificate,
    fingerprint: Vec<u8>,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity").finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// A fresh self-signed ECDSA P-256 certificate.
    pub fn generate() -> Result<Self, String> {
        tern::control::dtls::install_crypto_provider();
        let certificate = Certificate::generate_self_signed(vec!["tern-load".to_owned()])
            .map_err(|e| format!("DTLS certificate: {e}"))?;
        let der = certificate
            .certificate
            .first()
            .ok_or("DTLS certificate: empty chain")?;
        let fingerprint = Fingerprint::of_certificate(FingerprintAlgorithm::Sha256, der.as_ref());
        Ok(ClientIdentity {
            certificate,
            fingerprint: fingerprint.value,
        })
    }
}

/// An HTTP client for signalling with the phase timeout.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// Opens one session: signalling, ICE, DTLS, keys.
pub async fn connect(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    identity: &ClientIdentity,
    spec: &SessionSpec,
) -> Result<Connected, SetupError> {
    let started = Instant::now();
    let local_ufrag = random_token(8);
    let local_pwd = random_token(24);
    let cname = random_token(12);
    let local: Vec<OfferTrack> = spec
        .kinds
        .iter()
        .map(|&kind| OfferTrack {
            kind,
            ssrc: rand::random::<u32>() | 1,
        })
        .collect();
    let offer = sdp::write_offer(&OfferParams {
        ice_ufrag: &local_ufrag,
        ice_pwd: &local_pwd,
        fingerprint_sha256: &identity.fingerprint,
        publish: spec.publish,
        tracks: &local,
        cname: &cname,
    });
    let (answer, location) = post_offer(http, endpoint, spec, offer).await?;
    let mut ice = IceClient::new(&answer.ice_ufrag, &local_ufrag, &answer.ice_pwd);

    let std_socket = bind_connected(answer.candidate).map_err(|e| SetupError::Io(e.to_string()))?;
    let io = |e: std::io::Error| SetupError::Io(e.to_string());
    let socket =
        Arc::new(tokio::net::UdpSocket::from_std(std_socket.try_clone().map_err(io)?).map_err(io)?);
    run_ice(&socket, &mut ice, endpoint.phase_timeout).await?;
    let (tx, rx) = run_dtls(&socket, endpoint, identity, &answer).await?;
    drop(socket);
    Ok(Connected {
        socket: std_socket,
        location,
        ice,
        tx,
        rx,
        local,
        answer,
        setup_time: started.elapsed(),
    })
}

/// Ends a session with DELETE on its resource; best effort, errors ignored.
pub async fn delete(http: &reqwest::Client, token: &str, location: &str) {
    let _ = http.delete(location).bearer_auth(token).send().await;
}

/// Binds an ephemeral UDP port on the family of `server` and connects it there.
fn bind_connected(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: SocketAddr = if server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(any)?;
    socket.connect(server)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

async fn post_offer(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    spec: &SessionSpec,
    offer: String,
) -> Result<(ParsedAnswer, Option<String>), SetupError> {
    let base = endpoint.url.trim_end_matches('/');
    let verb = if spec.publish { "whip" } else { "whep" };
    let url = format!("{base}/{verb}/{}/{}", spec.room, spec.stream);
    let response = http
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/sdp")
        .bearer_auth(&endpoint.token)
        .body(offer)
        .send()
        .await
        .map_err(|e| SetupError::Unreachable(describe_reqwest(&url, &e)))?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|loc| response.url().join(loc).ok())
        .map(|u| u.to_string());
    let body = response
        .text()
        .await
        .map_err(|e| SetupError::Unreachable(describe_reqwest(&url, &e)))?;
    if status != 201 {
        let reason: String = body
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .chars()
            .take(200)
            .collect();
        return Err(SetupError::Rejected { status, reason });
    }
    let answer = sdp::parse_answer(&body).map_err(SetupError::BadAnswer)?;
    if answer.tracks.is_empty() {
        return Err(SetupError::BadAnswer(
            "the answer accepts no media section".into(),
        ));
    }
    Ok((answer, location))
}

/// reqwest's error with its causes ("error sending request" alone says little).
fn describe_reqwest(url: &str, e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        format!("POST {url}: timed out")
    } else if e.is_connect() {
        format!("POST {url}: cannot connect")
    } else {
        format!("POST {url}: {e}")
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn run_ice(
    socket: &tokio::net::UdpSocket,
    ice: &mut IceClient,
    timeout: Duration,
) -> Result<(), SetupError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut out = [0u8; 256];
    let mut buf = vec![0u8; 2048];
    while tokio::time::Instant::now() < deadline {
        let n = ice.request(&mut out);
        // A send error (ICMP unreachable from an earlier attempt) is retried like a lost check.
        let _ = socket.send(&out[..n]).await;
        let wait = tokio::time::Instant::now() + ICE_RETRY;
        while let Ok(r) = tokio::time::timeout_at(wait.min(deadline), socket.recv(&mut buf)).await {
            if let Ok(len) = r {
                if ice.is_success(&buf[..len]) {
                    return Ok(());
                }
            }
        }
    }
    Err(SetupError::IceTimeout(timeout))
}

/// The DTLS client's view of the UDP socket: DTLS records from the demultiplexer, sends
/// straight to the socket.
struct DtlsPipe {
    rx: Mutex<mpsc::Receiver<Vec<u8>>>,
    socket: Arc<tokio::net::UdpSocket>,
    peer: SocketAddr,
}

type UtilResult<T> = Result<T, webrtc_util::Error>;

#[async_trait]
impl webrtc_util::Conn for DtlsPipe {
    async fn connect(&self, _addr: SocketAddr) -> UtilResult<()> {
        Ok(())
    }
    async fn recv(&self, buf: &mut [u8]) -> UtilResult<usize> {
        match self.rx.lock().await.recv().await {
            Some(d) if d.len() <= buf.len() => {
                buf[..d.len()].copy_from_slice(&d);
                Ok(d.len())
            }
            Some(_) => Err(webrtc_util::Error::Other("oversize DTLS datagram".into())),
            None => Err(webrtc_util::Error::ErrClosedListener),
        }
    }
    async fn recv_from(&self, buf: &mut [u8]) -> UtilResult<(usize, SocketAddr)> {
        Ok((self.recv(buf).await?, self.peer))
    }
    async fn send(&self, buf: &[u8]) -> UtilResult<usize> {
        self.socket
            .send(buf)
            .await
            .map_err(|e| webrtc_util::Error::Other(e.to_string()))
    }
    async fn send_to(&self, buf: &[u8], _target: SocketAddr) -> UtilResult<usize> {
        self.send(buf).await
    }
    fn local_addr(&self) -> UtilResult<SocketAddr> {
        self.socket
            .local_addr()
            .map_err(|e| webrtc_util::Error::Other(e.to_string()))
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(self.peer)
    }
    async fn close(&self) -> UtilResult<()> {
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

async fn run_dtls(
    socket: &Arc<tokio::net::UdpSocket>,
    endpoint: &Endpoint,
    identity: &ClientIdentity,
    answer: &ParsedAnswer,
) -> Result<(SrtpContext, SrtpContext), SetupError> {
    let (dtls_tx, dtls_rx) = mpsc::channel::<Vec<u8>>(64);
    // Demultiplexer: DTLS records to the handshake; late STUN responses and early media dropped.
    let reader = tokio::spawn({
        let socket = Arc::clone(socket);
        async move {
            let mut buf = vec![0u8; 2048];
            loop {
                let Ok(n) = socket.recv(&mut buf).await else {
                    continue;
                };
                if classify(&buf[..n]) == PacketKind::Dtls
                    && dtls_tx.send(buf[..n].to_vec()).await.is_err()
                {
                    break;
                }
            }
        }
    });
    let pipe = Arc::new(DtlsPipe {
        rx: Mutex::new(dtls_rx),
        socket: Arc::clone(socket),
        peer: answer.candidate,
    });
    let config = DtlsConfig {
        certificates: vec![identity.certificate.clone()],
        cipher_suites: CIPHER_SUITES.to_vec(),
        srtp_protection_profiles: vec![profile_to_dtls(endpoint.profile)],
        extended_master_secret: ExtendedMasterSecretType::Require,
        // WebRTC authenticates the server by the answer's fingerprint, checked below.
        insecure_skip_verify: true,
        flight_interval: Duration::from_millis(250),
        ..DtlsConfig::default()
    };
    let timeout = endpoint.phase_timeout;
    let result = tokio::time::timeout(timeout, DTLSConn::new(pipe, config, true, None)).await;
    let outcome = match result {
        Err(_) => Err(SetupError::DtlsTimeout(timeout)),
        Ok(Err(e)) => Err(SetupError::Dtls(format!("handshake failed: {e}"))),
        Ok(Ok(conn)) => keys_from(&conn, endpoint.profile, answer).await,
    };
    reader.abort();
    let _ = reader.await;
    outcome
}

async fn keys_from(
    conn: &DTLSConn,
    profile: Profile,
    answer: &ParsedAnswer,
) -> Result<(SrtpContext, SrtpContext), SetupError> {
    let state = conn.connection_state().await;
    let Some(cert) = state.peer_certificates.first() else {
        return Err(SetupError::Dtls("the server sent no certificate".into()));
    };
    if let Some(expected) = &answer.fingerprint_sha256 {
        let actual = Fingerprint::of_certificate(FingerprintAlgorithm::Sha256, cert);
        if &actual.value != expected {
            return Err(SetupError::Dtls(
                "the server's certificate does not match the answer's a=fingerprint".into(),
            ));
        }
    }
    if conn.selected_srtpprotection_profile() != profile_to_dtls(profile) {
        return Err(SetupError::Dtls(format!(
            "the server did not select SRTP profile {profile}"
        )));
    }
    let (k, s) = (profile.key_len(), profile.salt_len());
    let material = state
        .export_keying_material(EXPORTER_LABEL, &[], 2 * (k + s))
        .await
        .map_err(|e| SetupError::Dtls(format!("exporting keying material: {e}")))?;
    // RFC 5764 §4.2: client key | server key | client salt | server salt. We are the client.
    let srtp = |key: &[u8], salt: &[u8]| {
        SrtpContext::new(profile, key, salt).map_err(|e| SetupError::Dtls(format!("SRTP: {e}")))
    };
    let tx = srtp(&material[..k], &material[2 * k..2 * k + s])?;
    let rx = srtp(&material[k..2 * k], &material[2 * k + s..2 * (k + s)])?;
    Ok((tx, rx))
}

/// A random alphanumeric token (ICE credentials, CNAME).
pub fn random_token(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_request_round_trips_through_the_relay_side() {
        let mut client = IceClient::new("relayufrag", "ours", "relaypassword");
        let mut out = [0u8; 256];
        let n = client.request(&mut out);
        let creds = tern::ice::IceCredentials {
            local_ufrag: "relayufrag".into(),
            local_pwd: "relaypassword".into(),
            remote_ufrag: "ours".into(),
        };
        let mut resp = [0u8; 256];
        let src: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let (len, info) = tern::ice::answer_binding(&out[..n], &creds, src, &mut resp).unwrap();
        assert!(info.nominated);
        assert!(client.is_success(&resp[..len]));
        assert!(!client.is_success(&out[..n]));
        assert!(!client.is_success(&[0, 1, 2]));
    }

    #[test]
    fn errors_say_which_phase() {
        let e = SetupError::Rejected {
            status: 401,
            reason: "token expired".into(),
        };
        assert_eq!(e.to_string(), "HTTP 401: token expired");
        assert_eq!(e.phase(), "http");
        assert_eq!(
            SetupError::DtlsTimeout(Duration::from_secs(2)).phase(),
            "dtls"
        );
    }
}
