//! A DTLS client (the `dtls` crate, client mode, its own certificate) handshakes with
//! `control::dtls::accept` over in-memory channels: the handshake completes, both sides agree on
//! the profile, and both sides hold the same SRTP keys (checked byte for byte
//! against webrtc-srtp's split of the client's keying material, and by protecting a packet on one
//! side and unprotecting it on the other, both ways) — for each profile offered alone, for the
//! full offer, and with ChaCha20-Poly1305 as the only cipher suite.

mod dtls_support;

use std::time::Duration;

use dtls::cipher_suite::CipherSuiteId;
use dtls_support::{client_keys, no_loss, run, srtp_round_trip, ClientOptions};
use tern::srtp::Profile;

const TIMEOUT: Duration = Duration::from_secs(10);

async fn handshake_agrees(options: ClientOptions, expect: Profile) {
    let r = run(options, no_loss(), TIMEOUT).await;
    let client = r.client.expect("client handshake");
    let outcome = r.server.expect("server handshake");
    assert_eq!(outcome.profile, expect);
    assert_eq!(outcome.keys.profile, expect);
    assert_eq!(client.selected_srtpprotection_profile() as u16, expect.id());

    let theirs = client_keys(&client, expect).await;
    let ours = &outcome.keys;
    assert_eq!(ours.local_key.len(), expect.key_len());
    assert_eq!(ours.local_salt.len(), expect.salt_len());
    // The client's remote is our local (server write) and the other way round.
    assert_eq!(ours.local_key, theirs.remote_master_key);
    assert_eq!(ours.local_salt, theirs.remote_master_salt);
    assert_eq!(ours.remote_key, theirs.local_master_key);
    assert_eq!(ours.remote_salt, theirs.local_master_salt);
    assert_ne!(ours.local_key, ours.remote_key);

    // Relay → client and client → relay media.
    assert!(srtp_round_trip(
        expect,
        (&ours.local_key, &ours.local_salt),
        (&theirs.remote_master_key, &theirs.remote_master_salt),
    ));
    assert!(srtp_round_trip(
        expect,
        (&theirs.local_master_key, &theirs.local_master_salt),
        (&ours.remote_key, &ours.remote_salt),
    ));
    // And a key from the wrong direction does not work.
    assert!(!srtp_round_trip(
        expect,
        (&ours.local_key, &ours.local_salt),
        (&ours.remote_key, &ours.remote_salt),
    ));
    assert_eq!(outcome.association.stats().final_flight_resends(), 0);
    assert_eq!(r.dropped, 0);
}

#[tokio::test]
async fn full_offer_gets_aead_aes_128_gcm() {
    handshake_agrees(ClientOptions::default(), Profile::AeadAes128Gcm).await;
}

#[tokio::test]
async fn aead_aes_128_gcm_alone() {
    let p = Profile::AeadAes128Gcm;
    handshake_agrees(
        ClientOptions {
            profiles: vec![p],
            ..ClientOptions::default()
        },
        p,
    )
    .await;
}

#[tokio::test]
async fn aead_aes_256_gcm_alone() {
    let p = Profile::AeadAes256Gcm;
    handshake_agrees(
        ClientOptions {
            profiles: vec![p],
            ..ClientOptions::default()
        },
        p,
    )
    .await;
}

#[tokio::test]
async fn aes128_cm_hmac_sha1_80_alone() {
    let p = Profile::Aes128CmHmacSha1_80;
    handshake_agrees(
        ClientOptions {
            profiles: vec![p],
            ..ClientOptions::default()
        },
        p,
    )
    .await;
}

#[tokio::test]
async fn aes128_cm_hmac_sha1_32_alone() {
    let p = Profile::Aes128CmHmacSha1_32;
    handshake_agrees(
        ClientOptions {
            profiles: vec![p],
            ..ClientOptions::default()
        },
        p,
    )
    .await;
}

#[tokio::test]
async fn chacha20_poly1305_cipher_suite() {
    let options = ClientOptions {
        cipher_suites: vec![CipherSuiteId::Tls_Ecdhe_Ecdsa_With_ChaCha20_Poly1305_Sha256],
        ..ClientOptions::default()
    };
    handshake_agrees(options, Profile::AeadAes128Gcm).await;
}

#[tokio::test]
async fn cbc_only_client_is_refused() {
    let options = ClientOptions {
        cipher_suites: vec![CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_256_Cbc_Sha],
        ..ClientOptions::default()
    };
    let r = run(options, no_loss(), TIMEOUT).await;
    assert!(r.client.is_err());
    assert!(r.server.is_err(), "no keys without a common cipher suite");
}
