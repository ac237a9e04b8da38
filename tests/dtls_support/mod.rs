//! A DTLS client (the `dtls` crate in client mode, its own self-signed certificate) wired to
//! `tern::control::dtls::accept` through in-memory channels, with a filter on the wire that can
//! drop datagrams. Shared by the `dtls-*` tests.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dtls::cipher_suite::CipherSuiteId;
use dtls::config::{Config, ExtendedMasterSecretType};
use dtls::conn::DTLSConn;
use dtls::crypto::Certificate;
use tern::control::dtls::{
    accept_with_stats, datagram_queue, profile_to_dtls, DtlsError, DtlsIdentity, DtlsOutcome,
    DtlsStats, Fingerprint, FingerprintAlgorithm,
};
use tern::srtp::{Profile, SrtpContext};
use tokio::sync::{mpsc, Mutex};
use webrtc_srtp::protection_profile::ProtectionProfile;

/// Which way a datagram travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ToServer,
    ToClient,
}

/// Decides per datagram: true delivers it, false drops it.
pub type Filter = Box<dyn FnMut(Dir, &[u8]) -> bool + Send>;

/// A `Conn` over two channels, for the client.
struct PipeConn {
    rx: Mutex<mpsc::Receiver<Vec<u8>>>,
    tx: mpsc::Sender<Vec<u8>>,
}

type UtilResult<T> = Result<T, webrtc_util::Error>;

fn addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 5000))
}

#[async_trait]
impl webrtc_util::Conn for PipeConn {
    async fn connect(&self, _addr: SocketAddr) -> UtilResult<()> {
        Ok(())
    }
    async fn recv(&self, buf: &mut [u8]) -> UtilResult<usize> {
        match self.rx.lock().await.recv().await {
            Some(d) => {
                buf[..d.len()].copy_from_slice(&d);
                Ok(d.len())
            }
            None => std::future::pending().await,
        }
    }
    async fn recv_from(&self, buf: &mut [u8]) -> UtilResult<(usize, SocketAddr)> {
        Ok((self.recv(buf).await?, addr()))
    }
    async fn send(&self, buf: &[u8]) -> UtilResult<usize> {
        let _ = self.tx.send(buf.to_vec()).await;
        Ok(buf.len())
    }
    async fn send_to(&self, buf: &[u8], _target: SocketAddr) -> UtilResult<usize> {
        self.send(buf).await
    }
    fn local_addr(&self) -> UtilResult<SocketAddr> {
        Ok(addr())
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(addr())
    }
    async fn close(&self) -> UtilResult<()> {
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// How the client behaves.
pub struct ClientOptions {
    /// Profiles offered, in preference order.
    pub profiles: Vec<Profile>,
    /// Cipher suites offered (empty: the crate's defaults).
    pub cipher_suites: Vec<CipherSuiteId>,
    /// Handshake fragment size (0: the crate's 1200).
    pub mtu: usize,
    /// Retransmission interval.
    pub flight_interval: Duration,
    /// Give the server this fingerprint instead of the client's real one.
    pub wrong_fingerprint: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            profiles: vec![
                Profile::AeadAes128Gcm,
                Profile::AeadAes256Gcm,
                Profile::Aes128CmHmacSha1_80,
                Profile::Aes128CmHmacSha1_32,
            ],
            cipher_suites: vec![],
            mtu: 0,
            flight_interval: Duration::from_millis(300),
            wrong_fingerprint: false,
        }
    }
}

/// What a run produced.
pub struct Run {
    pub server: Result<DtlsOutcome, DtlsError>,
    pub client: Result<DTLSConn, String>,
    pub stats: Arc<DtlsStats>,
    /// Datagrams the filter dropped.
    pub dropped: usize,
}

/// Handshake a client against `accept`, every datagram passing `filter`.
pub async fn run(options: ClientOptions, mut filter: Filter, timeout: Duration) -> Run {
    let identity = DtlsIdentity::generate().unwrap();
    let client_cert = Certificate::generate_self_signed(vec!["client".to_owned()]).unwrap();
    let expected = if options.wrong_fingerprint {
        let other = Certificate::generate_self_signed(vec!["other".to_owned()]).unwrap();
        Fingerprint::of_certificate(FingerprintAlgorithm::Sha256, other.certificate[0].as_ref())
    } else {
        Fingerprint::of_certificate(
            FingerprintAlgorithm::Sha256,
            client_cert.certificate[0].as_ref(),
        )
    };

    let stats = Arc::new(DtlsStats::default());
    let (inbox, server_in) = datagram_queue(Arc::clone(&stats));
    let (server_out_tx, mut server_out) = mpsc::channel::<Vec<u8>>(64);
    let (client_in_tx, client_in) = mpsc::channel::<Vec<u8>>(64);
    let (client_out_tx, mut client_out) = mpsc::channel::<Vec<u8>>(64);
    let (dropped_tx, mut dropped_rx) = mpsc::unbounded_channel::<()>();

    // The wire.
    let wire = tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(d) = client_out.recv() => {
                    if filter(Dir::ToServer, &d) { inbox.push(d); } else { let _ = dropped_tx.send(()); }
                }
                Some(d) = server_out.recv() => {
                    if filter(Dir::ToClient, &d) { let _ = client_in_tx.send(d).await; } else { let _ = dropped_tx.send(()); }
                }
                else => break,
            }
        }
    });

    let client_conn = Arc::new(PipeConn {
        rx: Mutex::new(client_in),
        tx: client_out_tx,
    });
    let client_config = Config {
        certificates: vec![client_cert],
        cipher_suites: options.cipher_suites,
        srtp_protection_profiles: options
            .profiles
            .iter()
            .map(|p| profile_to_dtls(*p))
            .collect(),
        extended_master_secret: ExtendedMasterSecretType::Require,
        // WebRTC checks the server by fingerprint, not by a CA.
        insecure_skip_verify: true,
        mtu: options.mtu,
        flight_interval: options.flight_interval,
        ..Config::default()
    };
    let client = async {
        match tokio::time::timeout(
            timeout + Duration::from_secs(2),
            DTLSConn::new(client_conn, client_config, true, None),
        )
        .await
        {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("client timed out".to_owned()),
        }
    };
    let server = accept_with_stats(
        &identity,
        server_in,
        server_out_tx,
        expected,
        timeout,
        Arc::clone(&stats),
    );
    let (server, client) = tokio::join!(server, client);
    // The wire lives on (for close_notify and data after the handshake) until both ends drop.
    drop(wire);
    let mut dropped = 0;
    while dropped_rx.try_recv().is_ok() {
        dropped += 1;
    }
    Run {
        server,
        client,
        stats,
        dropped,
    }
}

/// One record: content type, epoch, and for epoch-0 handshakes the message type and sequence.
pub type Record = (u8, u16, Option<(u8, u16)>);

/// The records of a datagram.
pub fn records(mut d: &[u8]) -> Vec<Record> {
    let mut out = vec![];
    while d.len() >= 13 {
        let len = usize::from(u16::from_be_bytes([d[11], d[12]]));
        let Some(body) = d.get(13..13 + len) else {
            break;
        };
        let epoch = u16::from_be_bytes([d[3], d[4]]);
        let hs = (d[0] == 22 && epoch == 0 && body.len() >= 12)
            .then(|| (body[0], u16::from_be_bytes([body[4], body[5]])));
        out.push((d[0], epoch, hs));
        d = &d[13 + len..];
    }
    out
}

/// True if the datagram carries an epoch-0 handshake message of one of `types`.
pub fn has_handshake(d: &[u8], types: &[u8]) -> bool {
    records(d)
        .iter()
        .any(|(_, _, hs)| matches!(hs, Some((t, _)) if types.contains(t)))
}

/// webrtc-srtp's name for a profile.
pub fn oracle_profile(p: Profile) -> ProtectionProfile {
    match p {
        Profile::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        Profile::Aes128CmHmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        Profile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        Profile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
        other => panic!("no webrtc-srtp profile for {other}"),
    }
}

/// The client's SRTP keys as webrtc-srtp derives them from the client's DTLS state: an
/// independent split of the RFC 5764 keying material.
pub async fn client_keys(client: &DTLSConn, profile: Profile) -> webrtc_srtp::config::SessionKeys {
    let mut config = webrtc_srtp::config::Config {
        profile: oracle_profile(profile),
        ..Default::default()
    };
    config
        .extract_session_keys_from_dtls(client.connection_state().await, true)
        .await
        .unwrap();
    config.keys
}

/// Protect an RTP packet with `(key, salt)` and unprotect it with the same master key on the
/// other side: true if it comes back intact.
pub fn srtp_round_trip(profile: Profile, tx: (&[u8], &[u8]), rx: (&[u8], &[u8])) -> bool {
    let mut sender = SrtpContext::new(profile, tx.0, tx.1).unwrap();
    let mut receiver = SrtpContext::new(profile, rx.0, rx.1).unwrap();
    let mut plain = vec![0x80, 96, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef];
    plain.extend_from_slice(b"a media payload");
    let mut buf = plain.clone();
    buf.resize(plain.len() + profile.rtp_overhead(), 0);
    let n = sender.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    match receiver.unprotect_rtp(&mut buf) {
        Ok(m) => buf[..m] == plain[..],
        Err(_) => false,
    }
}

/// Pass everything.
pub fn no_loss() -> Filter {
    Box::new(|_, _| true)
}
