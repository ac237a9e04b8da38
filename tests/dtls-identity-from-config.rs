//! `media.dtls_certificate_file` / `dtls_key_file` give the relay a fixed DTLS identity: the
//! answers carry that certificate's fingerprint. A key that does not belong to the certificate,
//! or one file without the other, is refused naming the field.

mod webrtc_client;

use std::time::Duration;

use tern::config::Config;
use tern::control::dtls::DtlsIdentity;
use webrtc_client::{chromium_offer as offer, start_relay};

fn write_identity(dir: &std::path::Path, name: &str, id: &DtlsIdentity) -> (String, String) {
    let (cert, key) = id.to_pem();
    let (c, k) = (
        dir.join(format!("{name}-cert.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    std::fs::write(&c, cert).unwrap();
    std::fs::write(&k, key).unwrap();
    (c.display().to_string(), k.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_certificate_is_the_one_answered() {
    let dir = std::env::temp_dir().join(format!("tern-dtls-id-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let identity = DtlsIdentity::generate().unwrap();
    let (cert, key) = write_identity(&dir, "a", &identity);
    let other = DtlsIdentity::generate().unwrap();
    let (_, other_key) = write_identity(&dir, "b", &other);

    // Mismatched key, and a lone file: refused at load, naming the field.
    let mismatched =
        format!("[media]\ndtls_certificate_file = \"{cert}\"\ndtls_key_file = \"{other_key}\"\n");
    let err = Config::from_str_named(&mismatched, "t.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("media.dtls_key_file") && err.contains("does not belong"),
        "{err}"
    );
    let lone = format!("[media]\ndtls_certificate_file = \"{cert}\"\n");
    let err = Config::from_str_named(&lone, "t.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("media.dtls_key_file"), "{err}");

    let (c, k) = (cert.clone(), key.clone());
    let running = start_relay(move |config| {
        config.media.dtls_certificate_file = Some(c.into());
        config.media.dtls_key_file = Some(k.into());
    })
    .await;
    let token = running.minter.as_ref().unwrap().mint(
        "room1",
        Some("cam"),
        true,
        false,
        "alice",
        Duration::from_secs(600),
    );
    let answer = reqwest::Client::new()
        .post(format!("http://{}/whip/room1/cam", running.http_addr))
        .bearer_auth(&token)
        .header("Content-Type", "application/sdp")
        .body(offer())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let expected: Vec<String> = identity
        .fingerprint_sha256()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let line = format!("a=fingerprint:sha-256 {}", expected.join(":"));
    assert!(answer.contains(&line), "answer carries {line}:\n{answer}");
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
