//! Bearer tokens end to end: minting, verification with a pinned algorithm, grants, revocation,
//! malformed input, `tern token` from config, and that no error ever shows the token.

use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use proptest::prelude::*;
use tern::config::{Config, JwtAlgorithm, JWT_SECRET_ENV};
use tern::control::auth::{
    authorize, bearer, mint_from_config, pem_encode, Action, AuthError, Claims, MintError,
    Revocations, TokenArgs, TokenMinter, TokenVerifier,
};

const SECRET: &[u8] = b"correct horse battery staple";

fn now() -> SystemTime {
    SystemTime::now()
}

fn hs256() -> (TokenMinter, TokenVerifier) {
    (
        TokenMinter::hs256(SECRET.to_vec()).unwrap(),
        TokenVerifier::hs256(SECRET.to_vec()).unwrap(),
    )
}

fn claims(room: &str, stream: Option<&str>, publish: bool, subscribe: bool) -> Claims {
    Claims::new(
        room,
        stream,
        publish,
        subscribe,
        "alice",
        Duration::from_secs(3600),
        now(),
    )
}

/// A token with this header JSON and claims, signed by `sign` over `header.payload`.
fn forge(header: &str, claims: &Claims, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap()));
    let sig = sign(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(sig));
    token
}

fn ed25519_pem() -> String {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    pem_encode("PRIVATE KEY", doc.as_ref())
}

fn p256_pem() -> String {
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .unwrap();
    pem_encode("PRIVATE KEY", doc.as_ref())
}

fn temp_file(contents: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(contents.as_bytes()).unwrap();
    f
}

#[test]
fn valid_hs256_token_verifies_and_grants() {
    let (minter, verifier) = hs256();
    let token = minter.mint(
        "room1",
        Some("cam"),
        true,
        false,
        "alice",
        Duration::from_secs(60),
    );
    let grant = verifier.verify(&token, now()).unwrap();
    assert_eq!(grant.room, "room1");
    assert_eq!(grant.streams, vec!["cam".to_string()]);
    assert!(grant.publish && !grant.subscribe);
    assert_eq!(grant.identity, "alice");
    assert!(grant.jti.as_deref().is_some_and(|j| j.len() >= 16));
    assert!(grant.expires_at > now() + Duration::from_secs(50));
    assert_eq!(authorize(&grant, Action::Publish, "room1", "cam"), Ok(()));
    // Two tokens for the same grant differ by their random jti.
    let other = minter.mint(
        "room1",
        Some("cam"),
        true,
        false,
        "alice",
        Duration::from_secs(60),
    );
    assert_ne!(verifier.verify(&other, now()).unwrap().jti, grant.jti);
    assert_eq!(bearer(&format!("Bearer {token}")), Some(token.as_str()));
}

#[test]
fn expired_and_not_yet_valid_tokens_are_401() {
    let (minter, verifier) = hs256();
    let mut c = claims("r", None, true, true);
    let t = UNIX_EPOCH + Duration::from_secs(c.iat);
    c.exp = c.iat + 10;
    let token = minter.sign(&c);
    let err = verifier
        .verify(&token, t + Duration::from_secs(10 + 31))
        .unwrap_err();
    assert_eq!(err, AuthError::Expired);
    assert_eq!(err.status(), 401);

    let mut c = claims("r", None, true, true);
    c.nbf = c.iat + 600;
    let err = verifier.verify(&minter.sign(&c), now()).unwrap_err();
    assert_eq!(err, AuthError::NotYetValid);
    assert_eq!(err.status(), 401);
}

#[test]
fn wrong_secret_is_401_bad_signature() {
    let (_, verifier) = hs256();
    let other = TokenMinter::hs256(b"another secret".to_vec()).unwrap();
    let err = verifier
        .verify(&other.sign(&claims("r", None, true, true)), now())
        .unwrap_err();
    assert_eq!(err, AuthError::BadSignature);
    assert_eq!(err.status(), 401);
    // A flipped payload under the right secret's signature fails the same way.
    let (minter, _) = hs256();
    let token = minter.sign(&claims("r", None, false, true));
    let forged = forge(r#"{"alg":"HS256"}"#, &claims("r", None, true, true), |_| {
        URL_SAFE_NO_PAD
            .decode(token.rsplit('.').next().unwrap())
            .unwrap()
    });
    assert_eq!(
        verifier.verify(&forged, now()),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn other_algorithms_on_an_hs256_verifier_are_401_wrong_algorithm() {
    let (_, verifier) = hs256();
    let c = claims("r", None, true, true);
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
    let key384 = hmac::Key::new(hmac::HMAC_SHA384, SECRET);
    let ed = Ed25519KeyPair::from_pkcs8(
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    let tokens = [
        // alg "none" with no signature, and with a valid HS256 tag anyway.
        forge(r#"{"alg":"none","typ":"JWT"}"#, &c, |_| Vec::new()),
        forge(r#"{"alg":"none"}"#, &c, |m| {
            hmac::sign(&key, m).as_ref().to_vec()
        }),
        forge(r#"{"alg":"HS384"}"#, &c, |m| {
            hmac::sign(&key384, m).as_ref().to_vec()
        }),
        // Right key and MAC, but the header lies: still refused.
        forge(r#"{"alg":"RS256"}"#, &c, |m| {
            hmac::sign(&key, m).as_ref().to_vec()
        }),
        forge(r#"{"alg":"EdDSA"}"#, &c, |m| ed.sign(m).as_ref().to_vec()),
        forge(r#"{"alg":"hs256"}"#, &c, |m| {
            hmac::sign(&key, m).as_ref().to_vec()
        }),
    ];
    for token in &tokens {
        let err = verifier.verify(token, now()).unwrap_err();
        assert_eq!(err, AuthError::WrongAlgorithm, "{token}");
        assert_eq!(err.status(), 401);
    }
    // The same forge with the right alg verifies, so the refusals above are about `alg` only.
    let ok = forge(r#"{"alg":"HS256"}"#, &c, |m| {
        hmac::sign(&key, m).as_ref().to_vec()
    });
    assert!(verifier.verify(&ok, now()).is_ok());
}

#[test]
fn eddsa_sign_verify_round_trip_and_key_confusion() {
    let minter = TokenMinter::eddsa(&ed25519_pem()).unwrap();
    let public = minter.public_key_pem().unwrap();
    let verifier = TokenVerifier::eddsa(std::slice::from_ref(&public)).unwrap();
    let token = minter.mint("r", None, false, true, "bob", Duration::from_secs(60));
    let grant = verifier.verify(&token, now()).unwrap();
    assert_eq!(grant.identity, "bob");
    assert_eq!(grant.streams, vec!["*".to_string()]);

    // HS256 signed with the public key as the HMAC secret: the classic confusion attack.
    let confused = TokenMinter::hs256(public.clone().into_bytes()).unwrap();
    let err = verifier
        .verify(&confused.sign(&claims("r", None, true, true)), now())
        .unwrap_err();
    assert_eq!(err, AuthError::WrongAlgorithm);
    let confused =
        TokenMinter::hs256(URL_SAFE_NO_PAD.encode(public.as_bytes()).into_bytes()).unwrap();
    assert_eq!(
        verifier.verify(&confused.sign(&claims("r", None, true, true)), now()),
        Err(AuthError::WrongAlgorithm)
    );

    // Another Ed25519 key: bad signature. Two configured keys: either verifies.
    let stranger = TokenMinter::eddsa(&ed25519_pem()).unwrap();
    let stranger_token = stranger.mint("r", None, true, false, "eve", Duration::from_secs(60));
    assert_eq!(
        verifier.verify(&stranger_token, now()),
        Err(AuthError::BadSignature)
    );
    let both = TokenVerifier::eddsa(&[public, stranger.public_key_pem().unwrap()]).unwrap();
    assert!(both.verify(&stranger_token, now()).is_ok());
    assert!(both.verify(&token, now()).is_ok());
}

#[test]
fn es256_sign_verify_round_trip() {
    let minter = TokenMinter::es256(&p256_pem()).unwrap();
    let verifier = TokenVerifier::es256(&[minter.public_key_pem().unwrap()]).unwrap();
    let token = minter.mint("r", Some("s"), true, true, "carol", Duration::from_secs(60));
    let grant = verifier.verify(&token, now()).unwrap();
    assert_eq!(grant.identity, "carol");
    // An ES256 verifier refuses EdDSA tokens by their header, before any key is tried.
    let ed = TokenMinter::eddsa(&ed25519_pem()).unwrap();
    assert_eq!(
        verifier.verify(
            &ed.mint("r", None, true, true, "x", Duration::from_secs(60)),
            now()
        ),
        Err(AuthError::WrongAlgorithm)
    );
    // Public keys of the wrong type are refused at setup.
    assert!(TokenVerifier::es256(&[ed.public_key_pem().unwrap()]).is_err());
    assert!(TokenVerifier::eddsa(&[minter.public_key_pem().unwrap()]).is_err());
}

#[test]
fn asymmetric_keys_from_config_files() {
    for algorithm in [JwtAlgorithm::EdDsa, JwtAlgorithm::Es256] {
        let private = if algorithm == JwtAlgorithm::EdDsa {
            ed25519_pem()
        } else {
            p256_pem()
        };
        let public = if algorithm == JwtAlgorithm::EdDsa {
            TokenMinter::eddsa(&private)
        } else {
            TokenMinter::es256(&private)
        }
        .unwrap()
        .public_key_pem()
        .unwrap();
        let private_file = temp_file(&private);
        let public_file = temp_file(&public);
        let mut cfg = Config::default();
        cfg.auth.algorithm = algorithm;
        cfg.auth.public_key_files = vec![public_file.path().to_path_buf()];
        cfg.auth.jwt_secret_file = Some(private_file.path().to_path_buf());
        let args = TokenArgs {
            room: "r".into(),
            stream: None,
            publish: true,
            subscribe: false,
            identity: Some("dave".into()),
            ttl: Duration::from_secs(3600),
        };
        let token = mint_from_config(&cfg, &args).unwrap();
        let verifier = TokenVerifier::from_config(&cfg.auth).unwrap();
        assert_eq!(verifier.algorithm(), algorithm);
        assert_eq!(verifier.verify(&token, now()).unwrap().identity, "dave");
    }
}

/// The only test in this binary that touches `TERN_JWT_SECRET` (tests run on threads).
#[test]
fn token_cli_secret_comes_from_env_then_file() {
    let args = TokenArgs {
        room: "r".into(),
        stream: Some("cam".into()),
        publish: true,
        subscribe: false,
        identity: None,
        ttl: Duration::from_secs(3600),
    };
    let cfg = Config::default();
    std::env::set_var(JWT_SECRET_ENV, "s");
    let token = mint_from_config(&cfg, &args).unwrap();
    let grant = TokenVerifier::from_config(&cfg.auth)
        .unwrap()
        .verify(&token, now())
        .unwrap();
    assert!(grant.identity.starts_with("anon-"));
    assert_eq!(grant.streams, vec!["cam".to_string()]);
    assert!(TokenVerifier::hs256(b"s".to_vec())
        .unwrap()
        .verify(&token, now())
        .is_ok());

    // The env var wins over the file.
    let file = temp_file("from-file\n");
    let mut with_file = Config::default();
    with_file.auth.jwt_secret_file = Some(file.path().to_path_buf());
    let token = mint_from_config(&with_file, &args).unwrap();
    assert!(TokenVerifier::hs256(b"s".to_vec())
        .unwrap()
        .verify(&token, now())
        .is_ok());

    // Without it, the file (trimmed) is the secret; with neither, a clear error.
    std::env::remove_var(JWT_SECRET_ENV);
    let token = mint_from_config(&with_file, &args).unwrap();
    assert!(TokenVerifier::hs256(b"from-file".to_vec())
        .unwrap()
        .verify(&token, now())
        .is_ok());
    let err = mint_from_config(&cfg, &args).unwrap_err();
    assert!(matches!(err, MintError::Key(_)));
    assert!(err.to_string().contains(JWT_SECRET_ENV));

    let useless = TokenArgs {
        publish: false,
        ..args.clone()
    };
    assert!(matches!(
        mint_from_config(&with_file, &useless),
        Err(MintError::Args(_))
    ));
}

#[test]
fn malformed_tokens_are_401_malformed() {
    let (minter, verifier) = hs256();
    let good = minter.sign(&claims("r", None, true, true));
    let segments: Vec<&str> = good.split('.').collect();
    let huge = "a".repeat(100 * 1024);
    let huge_dots = format!("{}.{}.{}", huge, huge, huge);
    let cases = [
        String::new(),
        "abc".into(),
        format!("{}.{}", segments[0], segments[1]),
        format!("{good}.extra"),
        format!("!!!.{}.{}", segments[1], segments[2]),
        format!("{}.{}.{}=", segments[0], segments[1], segments[2]),
        format!("{}.{}.", URL_SAFE_NO_PAD.encode("not json"), segments[1]),
        format!("{}.{}.{}", segments[0], "%%%", segments[2]),
        "..".into(),
        huge,
        huge_dots,
    ];
    for case in &cases {
        let err = verifier.verify(case, now()).unwrap_err();
        assert!(matches!(err, AuthError::Malformed(_)), "{err:?}");
        assert_eq!(err.status(), 401);
    }
    // A signed payload that is not the claims object: malformed, or a named missing claim.
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
    let mut t = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#);
    t.push('.');
    t.push_str(&URL_SAFE_NO_PAD.encode(r#"[1,2]"#));
    let tag = hmac::sign(&key, t.as_bytes());
    t.push('.');
    t.push_str(&URL_SAFE_NO_PAD.encode(tag.as_ref()));
    assert!(matches!(
        verifier.verify(&t, now()),
        Err(AuthError::Malformed(_))
    ));
}

#[test]
fn grants_limit_room_action_and_stream() {
    let (minter, verifier) = hs256();
    let publish_only = verifier
        .verify(&minter.sign(&claims("r", Some("cam"), true, false)), now())
        .unwrap();
    let err = authorize(&publish_only, Action::Publish, "other", "cam").unwrap_err();
    assert_eq!((err.clone(), err.status()), (AuthError::WrongRoom, 403));
    let err = authorize(&publish_only, Action::Subscribe, "r", "cam").unwrap_err();
    assert_eq!(
        (err.clone(), err.status()),
        (AuthError::NotGranted(Action::Subscribe), 403)
    );
    let err = authorize(&publish_only, Action::Publish, "r", "screen").unwrap_err();
    assert_eq!(
        (err.clone(), err.status()),
        (AuthError::StreamNotGranted, 403)
    );
    assert_eq!(
        authorize(&publish_only, Action::Publish, "r", "cam"),
        Ok(())
    );
}

#[test]
fn revoked_identity_and_jti_are_401_revoked() {
    let (minter, verifier) = hs256();
    let revocations = Revocations::new();
    let grant = verifier
        .verify(&minter.sign(&claims("r", None, true, true)), now())
        .unwrap();
    assert!(!revocations.is_revoked(&grant));
    revocations.revoke_identity(Some("r"), "alice", now());
    assert!(revocations.is_revoked(&grant));
    assert_eq!(AuthError::Revoked.status(), 401);

    let other = verifier
        .verify(&minter.sign(&claims("r2", None, true, true)), now())
        .unwrap();
    assert!(!revocations.is_revoked(&other), "revocation is per room");
    revocations.revoke_jti(other.jti.as_deref().unwrap(), other.expires_at);
    assert!(revocations.is_revoked(&other));
}

#[test]
fn no_error_shows_the_token() {
    let (minter, verifier) = hs256();
    let token = minter.sign(&claims("secret-room", Some("cam"), true, false));
    let [_, payload, signature]: [&str; 3] =
        token.split('.').collect::<Vec<_>>().try_into().unwrap();
    let mut errors = vec![
        AuthError::Missing,
        AuthError::BadSignature,
        AuthError::WrongAlgorithm,
        AuthError::Expired,
        AuthError::NotYetValid,
        AuthError::Revoked,
        AuthError::WrongRoom,
        AuthError::NotGranted(Action::Publish),
        AuthError::NotGranted(Action::Subscribe),
        AuthError::StreamNotGranted,
        AuthError::WebhookDenied { status: 403 },
        AuthError::WebhookUnavailable,
        AuthError::MissingClaim("room"),
        AuthError::Malformed("x"),
    ];
    // And every error the verifier actually produces from mangled copies of this token.
    let mangled = [
        format!("{token}x"),
        format!("{token}.x"),
        token.replace('.', "!"),
        token[..token.len() - 2].to_string(),
        token.chars().rev().collect(),
    ];
    for m in &mangled {
        errors.push(verifier.verify(m, now()).unwrap_err());
    }
    let later = now() + Duration::from_secs(10 * 3600);
    errors.push(verifier.verify(&token, later).unwrap_err());
    let grant = verifier.verify(&token, now()).unwrap();
    errors.push(authorize(&grant, Action::Subscribe, "secret-room", "cam").unwrap_err());
    for err in &errors {
        for text in [err.to_string(), format!("{err:?}"), format!("{err:#?}")] {
            for needle in [token.as_str(), payload, signature] {
                assert!(!text.contains(needle), "{text}");
            }
            assert!(!text.contains("correct horse"), "{text}");
        }
    }
}

proptest! {
    #[test]
    fn random_strings_never_panic(s in "\\PC{0,300}") {
        let (_, verifier) = hs256();
        let err = verifier.verify(&s, now()).unwrap_err();
        prop_assert_eq!(err.status(), 401);
        if s.matches('.').count() != 2 {
            prop_assert!(matches!(err, AuthError::Malformed(_)));
        }
    }

    #[test]
    fn random_segments_never_panic(
        a in "[A-Za-z0-9_-]{0,80}",
        b in "[A-Za-z0-9_-]{0,200}",
        c in "[A-Za-z0-9_-]{0,90}",
    ) {
        let (_, verifier) = hs256();
        let err = verifier.verify(&format!("{a}.{b}.{c}"), now()).unwrap_err();
        prop_assert_eq!(err.status(), 401);
    }
}
