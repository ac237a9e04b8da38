//! DTLS-SRTP, server side (RFC 5763, RFC 5764): the handshake that turns a session's first
//! DTLS datagrams into SRTP keys for its worker.
//!
//! It owns the relay's certificate (`DtlsIdentity`), a virtual connection per session over the
//! worker's DTLS queue, and the `dtls` crate's association once the handshake is done. It checks
//! the peer's certificate against the offer's `a=fingerprint` before any key leaves it, and it
//! never logs, prints or `Debug`-formats key material.
//!
//! The crate chooses the SRTP protection profile in the client's order; Tern reads the client's
//! first ClientHello before the crate does (`client_hello`) and offers the crate only the profile
//! Tern prefers among those the client lists, so the choice is Tern's (RFC 5764 §4.1.1 lets the
//! server pick any profile the client offered).
//!
//! The `dtls` crate (0.17) never answers a client that retransmits its last flight after the
//! server's final flight (ChangeCipherSpec + Finished) was lost; the virtual connection keeps
//! that flight and resends it (see `channel::FlightLog`).

mod channel;
pub mod client_hello;
mod identity;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dtls::cipher_suite::CipherSuiteId;
use dtls::config::{ClientAuthType, Config, ExtendedMasterSecretType};
use dtls::conn::DTLSConn;
use dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use webrtc_util::KeyingMaterialExporter;

use crate::datapath::SessionKeys;
use crate::srtp::Profile;
use channel::ChannelConn;
use client_hello::{ClientHelloReader, HelloError};
pub use identity::{DtlsIdentity, Fingerprint, FingerprintAlgorithm};

/// Datagrams longer than this are dropped before the crate sees them (bounds its fragment
/// buffer by what one Ethernet frame can carry).
pub const MAX_DATAGRAM: usize = 1500;

/// Datagrams queued for one session's handshake; beyond this they are dropped and counted.
pub const INCOMING_QUEUE: usize = 64;

/// The cipher suites offered. The client's preference decides, so only these are listed.
pub const CIPHER_SUITES: [CipherSuiteId; 2] = [
    CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256,
    CipherSuiteId::Tls_Ecdhe_Ecdsa_With_ChaCha20_Poly1305_Sha256,
];

/// The RFC 5764 §4.2 exporter label.
const EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// Why a handshake produced no keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DtlsError {
    /// The handshake did not finish within its time limit.
    #[error("DTLS handshake timed out")]
    Timeout,
    /// The peer's certificate is not the one the offer's `a=fingerprint` names.
    #[error("peer certificate does not match the offer's fingerprint")]
    FingerprintMismatch,
    /// The peer finished without a certificate.
    #[error("peer sent no certificate")]
    NoPeerCertificate,
    /// The peer did not offer any SRTP protection profile Tern supports.
    #[error("no supported SRTP protection profile negotiated")]
    UnsupportedProfile,
    /// The handshake failed (the peer misbehaved, sent an alert, or offered nothing usable).
    #[error("DTLS handshake failed: {0}")]
    Handshake(String),
    /// The session's datagram queue closed (before the handshake finished, or before a
    /// close_notify could be sent).
    #[error("the session's DTLS queue closed")]
    Closed,
    /// Exporting keying material failed.
    #[error("exporting SRTP keying material failed: {0}")]
    Export(String),
    /// The certificate or key given to `DtlsIdentity` is unusable (a configuration error).
    #[error("DTLS identity: {0}")]
    Identity(String),
}

/// Counters, shared by every session of a relay (or one per session): all monotonic but
/// `in_flight`.
#[derive(Debug, Default)]
pub struct DtlsStats {
    /// Datagrams dropped because a session's queue held `INCOMING_QUEUE` already.
    pub queue_full_dropped: AtomicU64,
    /// Datagrams dropped for being longer than `MAX_DATAGRAM`.
    pub oversize_dropped: AtomicU64,
    /// Times the server's final flight was resent for a retransmitting client (the crate bug).
    pub final_flight_resent: AtomicU64,
    /// HelloVerifyRequests the crate sent twice for one (fragmented) ClientHello.
    pub duplicate_hello_verify: AtomicU64,
    /// Application data records after the handshake (Tern carries no data channels).
    pub application_data_dropped: AtomicU64,
    /// Finished handshakes per negotiated SRTP profile, indexed like `Profile::ALL`.
    pub srtp_sessions: [AtomicU64; Profile::ALL.len()],
    /// Handshakes started without Tern's choice of SRTP profile, because the ClientHello gave it
    /// none (the crate then chooses by the client's order, or fails); indexed like
    /// `HelloError::ALL`.
    pub srtp_fallback: [AtomicU64; HelloError::ALL.len()],
    /// Handshakes between their first ClientHello and their end (a gauge, not monotonic).
    pub in_flight: AtomicU64,
}

/// Counts one handshake in `DtlsStats::in_flight` while it lives.
struct InFlight(Arc<DtlsStats>);

impl InFlight {
    fn new(stats: &Arc<DtlsStats>) -> Self {
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(stats))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl DtlsStats {
    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// `final_flight_resent`, read.
    pub fn final_flight_resends(&self) -> u64 {
        Self::get(&self.final_flight_resent)
    }

    /// `duplicate_hello_verify`, read.
    pub fn duplicate_hello_verifies(&self) -> u64 {
        Self::get(&self.duplicate_hello_verify)
    }

    /// Finished handshakes that negotiated `profile`.
    pub fn srtp_sessions(&self, profile: Profile) -> u64 {
        profile_index(profile).map_or(0, |i| Self::get(&self.srtp_sessions[i]))
    }

    /// Handshakes started without Tern's choice of profile, for `reason`.
    pub fn srtp_fallbacks(&self, reason: HelloError) -> u64 {
        Self::get(&self.srtp_fallback[reason.index()])
    }

    /// Handshakes under way now.
    pub fn handshakes_in_flight(&self) -> u64 {
        Self::get(&self.in_flight)
    }

    /// `queue_full_dropped + oversize_dropped`, read.
    pub fn dropped(&self) -> u64 {
        Self::get(&self.queue_full_dropped) + Self::get(&self.oversize_dropped)
    }
}

/// The sending half of a session's DTLS queue: where the slow path puts each `Event::Dtls`.
#[derive(Debug, Clone)]
pub struct DtlsInbox {
    tx: mpsc::Sender<Vec<u8>>,
    stats: Arc<DtlsStats>,
}

impl DtlsInbox {
    /// Queue a datagram for the handshake. Returns false (and counts it) if it was dropped: too
    /// long, the queue full, or the handshake gone.
    pub fn push(&self, data: Vec<u8>) -> bool {
        if data.len() > MAX_DATAGRAM {
            self.stats.oversize_dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        match self.tx.try_send(data) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats
                    .queue_full_dropped
                    .fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// A session's DTLS queue: the inbox for the slow path's event loop and the receiver for
/// [`accept`].
pub fn datagram_queue(stats: Arc<DtlsStats>) -> (DtlsInbox, mpsc::Receiver<Vec<u8>>) {
    let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
    (DtlsInbox { tx, stats }, rx)
}

/// A finished handshake.
#[derive(Debug)]
pub struct DtlsOutcome {
    /// The SRTP keys for `Command::SetKeys`: local = server write, remote = client write.
    pub keys: SessionKeys,
    /// The negotiated SRTP protection profile: Tern's preference (`Profile::ALL` order) among
    /// those the client offered.
    pub profile: Profile,
    /// The live association: keep it while the session lives (it answers retransmissions and
    /// sends close_notify).
    pub association: DtlsAssociation,
}

/// The DTLS association after the handshake. Dropping it stops its tasks without a
/// close_notify; call [`DtlsAssociation::close`] first for a clean end.
pub struct DtlsAssociation {
    conn: Arc<DTLSConn>,
    stats: Arc<DtlsStats>,
    peer_certificate: Vec<u8>,
    closed: watch::Receiver<bool>,
    drain: JoinHandle<()>,
}

impl DtlsAssociation {
    fn new(conn: DTLSConn, stats: Arc<DtlsStats>, peer_certificate: Vec<u8>) -> Self {
        let conn = Arc::new(conn);
        let (closed_tx, closed) = watch::channel(false);
        // The crate's reader blocks once a decrypted record is left unread: drain them. The
        // read fails when the peer closes (close_notify or a fatal alert).
        let drain = tokio::spawn({
            let conn = Arc::clone(&conn);
            let stats = Arc::clone(&stats);
            async move {
                let mut buf = vec![0u8; 8192];
                while conn.read(&mut buf, None).await.is_ok() {
                    stats
                        .application_data_dropped
                        .fetch_add(1, Ordering::Relaxed);
                }
                let _ = closed_tx.send(true);
            }
        });
        DtlsAssociation {
            conn,
            stats,
            peer_certificate,
            closed,
            drain,
        }
    }

    /// Send close_notify. Fails with `Closed` if the session's outgoing queue is gone.
    pub async fn close(&self) -> Result<(), DtlsError> {
        self.conn.close().await.map_err(|_| DtlsError::Closed)
    }

    /// Resolves when the peer has closed the association (close_notify or a fatal alert).
    pub async fn closed(&self) {
        let mut closed = self.closed.clone();
        let _ = closed.wait_for(|c| *c).await;
    }

    /// The peer's DER certificate (already checked against the offer).
    pub fn peer_certificate(&self) -> &[u8] {
        &self.peer_certificate
    }

    /// The counters this association reports into.
    pub fn stats(&self) -> &Arc<DtlsStats> {
        &self.stats
    }
}

impl Drop for DtlsAssociation {
    fn drop(&mut self) {
        self.drain.abort();
    }
}

impl fmt::Debug for DtlsAssociation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsAssociation")
            .field("closed", &*self.closed.borrow())
            .finish_non_exhaustive()
    }
}

/// Makes aws-lc-rs the process-wide rustls crypto provider, once. rustls cannot choose by
/// itself when the dependency graph enables more than one provider (a test client pulling in
/// ring, say), and the dtls crate verifies certificates through it.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// Run a DTLS 1.2 server handshake for one session, with fresh counters. See
/// [`accept_with_stats`].
pub async fn accept(
    identity: &DtlsIdentity,
    incoming: mpsc::Receiver<Vec<u8>>,
    outgoing: mpsc::Sender<Vec<u8>>,
    expected_fingerprint: Fingerprint,
    timeout: Duration,
) -> Result<DtlsOutcome, DtlsError> {
    let stats = Arc::new(DtlsStats::default());
    accept_with_stats(
        identity,
        incoming,
        outgoing,
        expected_fingerprint,
        timeout,
        stats,
    )
    .await
}

/// Run a DTLS 1.2 server handshake for one session: datagrams from the peer arrive on
/// `incoming`, ours leave on `outgoing`. ECDHE-ECDSA with AES-128-GCM (or ChaCha20-Poly1305),
/// extended master secret and a client certificate required; the client's certificate must
/// match `expected_fingerprint` (the offer's `a=fingerprint`), else no keys. The SRTP profile
/// is the first of `Profile::ALL` the client offers. The whole handshake must finish within
/// `timeout`.
pub async fn accept_with_stats(
    identity: &DtlsIdentity,
    mut incoming: mpsc::Receiver<Vec<u8>>,
    outgoing: mpsc::Sender<Vec<u8>>,
    expected_fingerprint: Fingerprint,
    timeout: Duration,
    stats: Arc<DtlsStats>,
) -> Result<DtlsOutcome, DtlsError> {
    install_crypto_provider();
    let deadline = Instant::now() + timeout;
    let (first_flight, choice) =
        match tokio::time::timeout_at(deadline, read_client_hello(&mut incoming)).await {
            Err(_) => return Err(DtlsError::Timeout),
            Ok(None) => return Err(DtlsError::Closed),
            Ok(Some(read)) => read,
        };
    let _in_flight = InFlight::new(&stats);
    let profiles = match choice {
        Ok(profile) => vec![profile],
        Err(reason) => {
            stats.srtp_fallback[reason.index()].fetch_add(1, Ordering::Relaxed);
            Profile::ALL.to_vec()
        }
    };
    let conn = Arc::new(ChannelConn::new(
        first_flight,
        incoming,
        outgoing,
        Arc::clone(&stats),
    ));
    let input_closed = Arc::clone(&conn.input_closed);
    let mismatch = Arc::new(AtomicBool::new(false));
    let config = server_config(
        identity,
        &expected_fingerprint,
        &profiles,
        Arc::clone(&mismatch),
    );

    let (dtls, peer_certificate, keys) = handshake(
        DTLSConn::new(conn, config, false, None),
        deadline,
        &input_closed,
        (&mismatch, &expected_fingerprint),
        &stats,
    )
    .await?;
    let profile = keys.profile;
    Ok(DtlsOutcome {
        keys,
        profile,
        association: DtlsAssociation::new(dtls, stats, peer_certificate),
    })
}

/// Run a DTLS 1.2 client handshake, for a pull from another node of the cluster (the origin is
/// the server, as for every other session of its). Same suites and extended master secret as
/// the server side; it offers `Profile::ALL` in Tern's order (the origin's server picks the first
/// it supports), presents `identity`, and refuses a server whose certificate is not
/// `expected_fingerprint` (signalled by the origin over the cluster's authenticated HTTP).
pub async fn connect(
    identity: &DtlsIdentity,
    incoming: mpsc::Receiver<Vec<u8>>,
    outgoing: mpsc::Sender<Vec<u8>>,
    expected_fingerprint: Fingerprint,
    timeout: Duration,
    stats: Arc<DtlsStats>,
) -> Result<DtlsOutcome, DtlsError> {
    install_crypto_provider();
    let conn = Arc::new(ChannelConn::new(
        Vec::new(),
        incoming,
        outgoing,
        Arc::clone(&stats),
    ));
    let input_closed = Arc::clone(&conn.input_closed);
    let mismatch = Arc::new(AtomicBool::new(false));
    let expected = expected_fingerprint.clone();
    let flag = Arc::clone(&mismatch);
    let config = Config {
        certificates: vec![identity.certificate.clone()],
        cipher_suites: CIPHER_SUITES.to_vec(),
        srtp_protection_profiles: Profile::ALL.iter().map(|p| profile_to_dtls(*p)).collect(),
        extended_master_secret: ExtendedMasterSecretType::Require,
        // The server's certificate is self-signed: it is checked against the fingerprint, not
        // a CA.
        insecure_skip_verify: true,
        verify_peer_certificate: Some(Arc::new(move |certs: &[Vec<u8>], _| match certs.first() {
            Some(der) if expected.matches(der) => Ok(()),
            _ => {
                flag.store(true, Ordering::SeqCst);
                Err(dtls::Error::Other(
                    "certificate fingerprint mismatch".to_owned(),
                ))
            }
        })),
        ..Config::default()
    };
    let deadline = Instant::now() + timeout;
    let (dtls, peer_certificate, server_side) = handshake(
        DTLSConn::new(conn, config, true, None),
        deadline,
        &input_closed,
        (&mismatch, &expected_fingerprint),
        &stats,
    )
    .await?;
    let profile = server_side.profile;
    // We are the client: what we protect with is the client's half.
    let keys = SessionKeys {
        profile,
        local_key: server_side.remote_key,
        local_salt: server_side.remote_salt,
        remote_key: server_side.local_key,
        remote_salt: server_side.local_salt,
    };
    Ok(DtlsOutcome {
        keys,
        profile,
        association: DtlsAssociation::new(dtls, stats, peer_certificate),
    })
}

/// Either side's handshake, until `deadline` or the input closes; then the peer's certificate is
/// checked against `expected` once more (the callback did during the handshake; no path hands
/// out keys for a certificate nobody compared) and the SRTP keys are exported, as the server
/// sees them, and counted by profile.
async fn handshake(
    conn: impl std::future::Future<Output = Result<DTLSConn, dtls::Error>>,
    deadline: Instant,
    input_closed: &tokio::sync::Notify,
    (mismatch, expected): (&AtomicBool, &Fingerprint),
    stats: &DtlsStats,
) -> Result<(DTLSConn, Vec<u8>, SessionKeys), DtlsError> {
    let dtls = tokio::select! {
        r = conn => r.map_err(|e| {
            if mismatch.load(Ordering::SeqCst) {
                DtlsError::FingerprintMismatch
            } else {
                DtlsError::Handshake(e.to_string())
            }
        })?,
        _ = tokio::time::sleep_until(deadline) => return Err(DtlsError::Timeout),
        _ = input_closed.notified() => return Err(DtlsError::Closed),
    };
    let state = dtls.connection_state().await;
    let peer_certificate = state
        .peer_certificates
        .first()
        .cloned()
        .ok_or(DtlsError::NoPeerCertificate)?;
    if !expected.matches(&peer_certificate) {
        return Err(DtlsError::FingerprintMismatch);
    }
    let profile = profile_from_dtls(dtls.selected_srtpprotection_profile())
        .ok_or(DtlsError::UnsupportedProfile)?;
    let material = state
        .export_keying_material(
            EXPORTER_LABEL,
            &[],
            2 * (profile.key_len() + profile.salt_len()),
        )
        .await
        .map_err(|e| DtlsError::Export(e.to_string()))?;
    if let Some(i) = profile_index(profile) {
        stats.srtp_sessions[i].fetch_add(1, Ordering::Relaxed);
    }
    Ok((
        dtls,
        peer_certificate,
        split_keying_material(profile, &material),
    ))
}

/// Reads the client's datagrams until its first ClientHello says which SRTP profile Tern wants
/// (or why it cannot), keeping every datagram for the crate. `None` if the queue closed first.
async fn read_client_hello(
    incoming: &mut mpsc::Receiver<Vec<u8>>,
) -> Option<(Vec<Vec<u8>>, Result<Profile, HelloError>)> {
    let mut reader = ClientHelloReader::new();
    let mut first_flight = Vec::new();
    loop {
        let datagram = incoming.recv().await?;
        let verdict = reader.push(&datagram);
        first_flight.push(datagram);
        if let Some(choice) = verdict {
            return Some((first_flight, choice));
        }
    }
}

/// The crate's configuration for one session: it may only pick among `profiles`.
fn server_config(
    identity: &DtlsIdentity,
    expected: &Fingerprint,
    profiles: &[Profile],
    mismatch: Arc<AtomicBool>,
) -> Config {
    let expected = expected.clone();
    Config {
        certificates: vec![identity.certificate.clone()],
        cipher_suites: CIPHER_SUITES.to_vec(),
        srtp_protection_profiles: profiles.iter().map(|p| profile_to_dtls(*p)).collect(),
        client_auth: ClientAuthType::RequireAnyClientCert,
        extended_master_secret: ExtendedMasterSecretType::Require,
        // Runs on the CertificateVerify, before our Finished: a wrong certificate ends the
        // handshake with bad_certificate and the client never believes it is connected.
        verify_peer_certificate: Some(Arc::new(move |certs: &[Vec<u8>], _| match certs.first() {
            Some(der) if expected.matches(der) => Ok(()),
            _ => {
                mismatch.store(true, Ordering::SeqCst);
                Err(dtls::Error::Other(
                    "certificate fingerprint mismatch".to_owned(),
                ))
            }
        })),
        ..Config::default()
    }
}

/// RFC 5764 §4.2: client_write_key | server_write_key | client_write_salt | server_write_salt.
/// We are the server: local (what we protect with) is the server's half.
fn split_keying_material(profile: Profile, material: &[u8]) -> SessionKeys {
    let (k, s) = (profile.key_len(), profile.salt_len());
    SessionKeys {
        profile,
        remote_key: material[..k].to_vec(),
        local_key: material[k..2 * k].to_vec(),
        remote_salt: material[2 * k..2 * k + s].to_vec(),
        local_salt: material[2 * k + s..2 * (k + s)].to_vec(),
    }
}

/// `profile`'s position in `Profile::ALL`.
fn profile_index(profile: Profile) -> Option<usize> {
    Profile::ALL.iter().position(|p| *p == profile)
}

fn profile_from_dtls(p: SrtpProtectionProfile) -> Option<Profile> {
    match p {
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => Some(Profile::Aes128CmHmacSha1_80),
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32 => Some(Profile::Aes128CmHmacSha1_32),
        SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => Some(Profile::AeadAes128Gcm),
        SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm => Some(Profile::AeadAes256Gcm),
        SrtpProtectionProfile::Unsupported => None,
    }
}

/// The `dtls` crate's name for a profile.
pub fn profile_to_dtls(p: Profile) -> SrtpProtectionProfile {
    match p {
        Profile::Aes128CmHmacSha1_80 => SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
        Profile::Aes128CmHmacSha1_32 => SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32,
        Profile::AeadAes128Gcm => SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
        Profile::AeadAes256Gcm => SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_map_both_ways() {
        for p in Profile::ALL {
            assert_eq!(profile_from_dtls(profile_to_dtls(p)), Some(p));
            assert_eq!(profile_to_dtls(p) as u16, p.id());
        }
        assert_eq!(profile_from_dtls(SrtpProtectionProfile::Unsupported), None);
    }

    #[test]
    fn keying_material_splits_server_side() {
        for p in Profile::ALL {
            let (k, s) = (p.key_len(), p.salt_len());
            let material: Vec<u8> = (0..2 * (k + s)).map(|i| i as u8).collect();
            let keys = split_keying_material(p, &material);
            assert_eq!(keys.remote_key, material[..k]);
            assert_eq!(keys.local_key, material[k..2 * k]);
            assert_eq!(keys.remote_salt, material[2 * k..2 * k + s]);
            assert_eq!(keys.local_salt, material[2 * k + s..]);
        }
    }

    #[test]
    fn inbox_drops_oversize_and_overflow_and_counts() {
        let stats = Arc::new(DtlsStats::default());
        let (inbox, mut rx) = datagram_queue(Arc::clone(&stats));
        assert!(!inbox.push(vec![22; MAX_DATAGRAM + 1]));
        for _ in 0..INCOMING_QUEUE {
            assert!(inbox.push(vec![22; 100]));
        }
        assert!(!inbox.push(vec![22; 100]));
        assert_eq!(stats.oversize_dropped.load(Ordering::Relaxed), 1);
        assert_eq!(stats.queue_full_dropped.load(Ordering::Relaxed), 1);
        assert_eq!(stats.dropped(), 2);
        assert_eq!(rx.try_recv().unwrap().len(), 100);
        drop(rx);
        assert!(!inbox.push(vec![22; 100]));
    }
}
