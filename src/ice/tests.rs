//! ICE-lite unit tests: what is answered, what is silently refused.

use super::*;
use crate::wire::stun::{StunClass, StunMessage, StunWriter, METHOD_BINDING};

fn creds() -> IceCredentials {
    IceCredentials {
        local_ufrag: "relay".into(),
        local_pwd: "relay-password-0123456789".into(),
        remote_ufrag: "peer".into(),
    }
}

struct Req<'a> {
    username: Option<&'a str>,
    pwd: Option<&'a str>,
    fingerprint: bool,
    use_candidate: bool,
    controlled: bool,
}

impl Default for Req<'_> {
    fn default() -> Self {
        Self {
            username: Some("relay:peer"),
            pwd: Some("relay-password-0123456789"),
            fingerprint: true,
            use_candidate: false,
            controlled: false,
        }
    }
}

fn request(r: Req<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut w = StunWriter::new(&mut buf, StunClass::Request, METHOD_BINDING, &[7; 12]).unwrap();
    if let Some(u) = r.username {
        w.username(u.as_bytes()).unwrap();
    }
    w.priority(0x6e00_1eff).unwrap();
    if r.controlled {
        w.ice_controlled(1).unwrap();
    } else {
        w.ice_controlling(2).unwrap();
    }
    if r.use_candidate {
        w.use_candidate().unwrap();
    }
    let len = match (r.pwd, r.fingerprint) {
        (Some(p), true) => w.finish_with_integrity(p.as_bytes()).unwrap(),
        (Some(p), false) => {
            w.message_integrity(p.as_bytes()).unwrap();
            w.finish()
        }
        (None, true) => w.finish_with_fingerprint().unwrap(),
        (None, false) => w.finish(),
    };
    buf.truncate(len);
    buf
}

fn answer(req: &[u8]) -> Result<(Vec<u8>, BindingInfo), BindingError> {
    let mut out = [0u8; 128];
    let src: SocketAddr = "192.0.2.7:5000".parse().unwrap();
    answer_binding(req, &creds(), src, &mut out).map(|(n, i)| (out[..n].to_vec(), i))
}

#[test]
fn a_valid_request_is_answered_with_its_mapped_address() {
    let req = request(Req {
        use_candidate: true,
        ..Req::default()
    });
    assert_eq!(local_ufrag(&req), Some(&b"relay"[..]));
    let (resp, info) = answer(&req).unwrap();
    assert!(info.nominated);
    assert_eq!(info.priority, 0x6e00_1eff);
    let msg = StunMessage::parse(&resp).unwrap();
    assert_eq!(msg.class(), StunClass::SuccessResponse);
    assert_eq!(msg.transaction_id(), &[7; 12]);
    assert_eq!(
        msg.xor_mapped_address(),
        Some("192.0.2.7:5000".parse().unwrap())
    );
    assert!(msg.verify_integrity(b"relay-password-0123456789"));
    assert!(msg.verify_fingerprint());
}

#[test]
fn a_request_without_fingerprint_is_still_answered() {
    let (_, info) = answer(&request(Req {
        fingerprint: false,
        ..Req::default()
    }))
    .unwrap();
    assert!(!info.nominated);
}

#[test]
fn unauthenticated_requests_get_no_answer() {
    let cases = [
        (
            Req {
                pwd: Some("wrong-password"),
                ..Req::default()
            },
            BindingError::BadIntegrity,
        ),
        (
            Req {
                pwd: None,
                ..Req::default()
            },
            BindingError::NoIntegrity,
        ),
        (
            Req {
                username: Some("other:peer"),
                ..Req::default()
            },
            BindingError::UnknownUsername,
        ),
        (
            Req {
                username: Some("relay:intruder"),
                ..Req::default()
            },
            BindingError::UnknownUsername,
        ),
        (
            Req {
                username: Some("relaypeer"),
                ..Req::default()
            },
            BindingError::NoUsername,
        ),
        (
            Req {
                username: None,
                ..Req::default()
            },
            BindingError::NoUsername,
        ),
        (
            Req {
                controlled: true,
                ..Req::default()
            },
            BindingError::RoleConflict,
        ),
    ];
    for (req, want) in cases {
        assert_eq!(answer(&request(req)).unwrap_err(), want);
    }
    let mut bad_fp = request(Req::default());
    let last = bad_fp.len() - 1;
    bad_fp[last] ^= 1;
    assert_eq!(answer(&bad_fp).unwrap_err(), BindingError::BadFingerprint);
    assert_eq!(
        answer(b"\x00\x01garbage").unwrap_err(),
        BindingError::Malformed
    );
}

#[test]
fn consent_expires_without_refresh() {
    let t0 = Instant::now();
    let mut c = Consent::new(t0, Duration::from_secs(30));
    assert!(!c.expired(t0 + Duration::from_secs(29)));
    c.refresh(t0 + Duration::from_secs(20));
    assert!(!c.expired(t0 + Duration::from_secs(49)));
    assert!(c.expired(t0 + Duration::from_secs(50)));
    c.refresh(t0); // an older time never moves consent back
    assert_eq!(c.deadline(), t0 + Duration::from_secs(50));
}

#[test]
fn the_password_never_reaches_debug_output() {
    let s = format!("{:?}", creds());
    assert!(!s.contains("relay-password"), "{s}");
}

/// The far side of a pull: the edge's checker talks to the origin's ICE-lite responder.
#[test]
fn a_checker_is_answered_by_the_lite_side_and_verifies_only_that_answer() {
    let origin = creds(); // the origin's credentials: relay / peer
    let edge = IceCredentials {
        local_ufrag: "peer".into(),
        local_pwd: "edge-password-0123456789".into(),
        remote_ufrag: "relay".into(),
    };
    let t0 = Instant::now();
    let mut checker = Checker::new(&edge, &origin.local_pwd, 0x1234_5678_9abc, t0);
    let mut req = [0u8; 256];
    let n = checker.poll_transmit(t0, &mut req).expect("due at once");
    assert!(
        checker.poll_transmit(t0, &mut req).is_none(),
        "not again at once"
    );
    let src: SocketAddr = "127.0.0.2:5000".parse().unwrap();
    let mut resp = [0u8; 256];
    let (len, info) = answer_binding(&req[..n], &origin, src, &mut resp).unwrap();
    assert!(info.nominated, "the controlling side nominates");

    // A response forged without the origin's password, or to another transaction, is refused.
    let mut forged = [0u8; 256];
    let txid = *StunMessage::parse(&req[..n]).unwrap().transaction_id();
    let mut w = StunWriter::new(
        &mut forged,
        StunClass::SuccessResponse,
        METHOD_BINDING,
        &txid,
    )
    .unwrap();
    w.xor_mapped_address(src).unwrap();
    let flen = w
        .finish_with_integrity(b"guessed-password-00000000")
        .unwrap();
    assert_eq!(
        checker.handle_response(&forged[..flen]),
        Err(BindingError::BadIntegrity)
    );
    assert_eq!(
        checker.handle_response(&req[..n]),
        Err(BindingError::NotBindingRequest),
        "a request is no answer"
    );
    assert!(!checker.answered());
    assert_eq!(checker.handle_response(&resp[..len]), Ok(()));
    assert!(checker.answered());
    assert_eq!(
        checker.handle_response(&resp[..len]),
        Err(BindingError::UnknownUsername),
        "a replayed answer matches no outstanding check"
    );
    // Answered: the next check is the consent interval away.
    assert!(checker
        .poll_transmit(t0 + CHECK_INTERVAL, &mut req)
        .is_none());
    assert!(checker
        .poll_transmit(t0 + CONSENT_INTERVAL, &mut req)
        .is_some());
}
