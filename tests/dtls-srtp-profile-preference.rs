//! Tern, not the client, chooses the SRTP protection profile: the first of its preference
//! (AEAD_AES_128_GCM, AEAD_AES_256_GCM, AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32) that
//! the client offers, whatever the client's order (RFC 5764 §4.1.1 leaves the choice to the
//! server). A `dtls` crate client that lists AES_CM_128_HMAC_SHA1_80 first, as Chromium does,
//! gets AEAD_AES_128_GCM, whether its ClientHello fits one datagram or arrives in fragments; one
//! that offers AES_CM_128_HMAC_SHA1_80 alone still gets it. Both ends agree, their keys work,
//! and the relay counts each session under its profile.

mod dtls_support;

use std::time::Duration;

use dtls_support::{client_keys, no_loss, run, srtp_round_trip, ClientOptions};
use tern::control::dtls::client_hello::HelloError;
use tern::srtp::Profile;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes a client offering `offered` (in that order) and checks that `expect` was chosen.
async fn negotiates(offered: &[Profile], mtu: usize, expect: Profile) {
    let options = ClientOptions {
        profiles: offered.to_vec(),
        mtu,
        ..ClientOptions::default()
    };
    let r = run(options, no_loss(), TIMEOUT).await;
    let client = r.client.expect("client handshake");
    let outcome = r.server.expect("server handshake");
    assert_eq!(outcome.profile, expect, "offered {offered:?}");
    assert_eq!(client.selected_srtpprotection_profile() as u16, expect.id());

    // The keys are that profile's, on both sides.
    let theirs = client_keys(&client, expect).await;
    let ours = &outcome.keys;
    assert_eq!(ours.profile, expect);
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

    // Counted under its profile, and chosen by Tern (no fallback to the crate's choice).
    for p in Profile::ALL {
        assert_eq!(r.stats.srtp_sessions(p), u64::from(p == expect), "{p}");
    }
    for reason in HelloError::ALL {
        assert_eq!(r.stats.srtp_fallbacks(reason), 0, "{reason}");
    }
}

#[tokio::test]
async fn cm_80_listed_first_gets_aes_128_gcm() {
    negotiates(
        &[Profile::Aes128CmHmacSha1_80, Profile::AeadAes128Gcm],
        0,
        Profile::AeadAes128Gcm,
    )
    .await;
}

#[tokio::test]
async fn cm_80_listed_first_gets_aes_128_gcm_from_a_fragmented_hello() {
    // A 100-byte MTU splits the client's ClientHello over several datagrams.
    negotiates(
        &[Profile::Aes128CmHmacSha1_80, Profile::AeadAes128Gcm],
        100,
        Profile::AeadAes128Gcm,
    )
    .await;
}

#[tokio::test]
async fn chromiums_order_gets_aes_128_gcm() {
    // Chromium 148's use_srtp list.
    negotiates(
        &[
            Profile::Aes128CmHmacSha1_80,
            Profile::AeadAes256Gcm,
            Profile::AeadAes128Gcm,
        ],
        0,
        Profile::AeadAes128Gcm,
    )
    .await;
}

#[tokio::test]
async fn without_aes_128_gcm_the_next_preference_wins() {
    negotiates(
        &[Profile::Aes128CmHmacSha1_32, Profile::AeadAes256Gcm],
        0,
        Profile::AeadAes256Gcm,
    )
    .await;
    negotiates(
        &[Profile::Aes128CmHmacSha1_32, Profile::Aes128CmHmacSha1_80],
        0,
        Profile::Aes128CmHmacSha1_80,
    )
    .await;
}

#[tokio::test]
async fn cm_80_alone_still_gets_cm_80() {
    negotiates(
        &[Profile::Aes128CmHmacSha1_80],
        0,
        Profile::Aes128CmHmacSha1_80,
    )
    .await;
}
