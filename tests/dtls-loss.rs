//! The handshake under loss: each flight is dropped once in turn — the first ClientHello (whole,
//! and each of its fragments when the client fragments it), the cookie ClientHello, the
//! server's HelloVerifyRequest, ServerHello…ServerHelloDone and final ChangeCipherSpec + Finished,
//! and the client's Certificate…Finished — and the handshake still completes, with agreeing keys,
//! within the time limit. Dropping the server's final flight needs Tern's workaround for the
//! `dtls` crate (it would never answer the client's retransmission): that case also checks the
//! resend was counted.

mod dtls_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dtls_support::{client_keys, has_handshake, records, run, ClientOptions, Dir, Filter, Run};

const TIMEOUT: Duration = Duration::from_secs(10);

const CLIENT_HELLO: u8 = 1;
const HELLO_VERIFY_REQUEST: u8 = 3;
const SERVER_FLIGHT_4: [u8; 5] = [2, 11, 12, 13, 14];
const SERVER_HELLO_DONE: u8 = 14;
const CLIENT_FLIGHT_5: [u8; 3] = [11, 16, 15];
const CHANGE_CIPHER_SPEC: u8 = 20;

type Transcript = Arc<Mutex<Vec<String>>>;

fn describe(dir: Dir, delivered: bool, d: &[u8]) -> String {
    let recs: Vec<String> = records(d)
        .iter()
        .map(|(t, e, hs)| match hs {
            Some((h, seq)) => format!("hs{h}/seq{seq}"),
            None => format!("ct{t}/e{e}"),
        })
        .collect();
    format!(
        "{dir:?} {} {}B [{}]",
        if delivered { "pass" } else { "DROP" },
        d.len(),
        recs.join(" ")
    )
}

/// Drop, once, every datagram going `dir` that `member` accepts, until one that `last` accepts
/// has been dropped.
fn drop_flight_once(
    dir: Dir,
    member: impl Fn(&[u8]) -> bool + Send + 'static,
    last: impl Fn(&[u8]) -> bool + Send + 'static,
    transcript: Transcript,
) -> Filter {
    let mut done = false;
    Box::new(move |d_dir, d| {
        let drop_it = !done && d_dir == dir && member(d);
        if drop_it && last(d) {
            done = true;
        }
        transcript
            .lock()
            .unwrap()
            .push(describe(d_dir, !drop_it, d));
        !drop_it
    })
}

/// Drop the `nth` (0-based) datagram going `dir` that `member` accepts.
fn drop_nth(
    dir: Dir,
    nth: usize,
    member: impl Fn(&[u8]) -> bool + Send + 'static,
    transcript: Transcript,
) -> Filter {
    let mut seen = 0;
    Box::new(move |d_dir, d| {
        let mut drop_it = false;
        if d_dir == dir && member(d) {
            drop_it = seen == nth;
            seen += 1;
        }
        transcript
            .lock()
            .unwrap()
            .push(describe(d_dir, !drop_it, d));
        !drop_it
    })
}

fn client_hello_seq(seq: u16) -> impl Fn(&[u8]) -> bool + Send + 'static {
    move |d| {
        records(d)
            .iter()
            .any(|(_, _, hs)| *hs == Some((CLIENT_HELLO, seq)))
    }
}

fn has_ccs_or_epoch1(d: &[u8]) -> bool {
    records(d)
        .iter()
        .any(|(t, e, _)| *t == CHANGE_CIPHER_SPEC || *e == 1)
}

async fn completes(options: ClientOptions, make: impl FnOnce(Transcript) -> Filter) -> Run {
    let transcript: Transcript = Default::default();
    let filter = make(Arc::clone(&transcript));
    let started = Instant::now();
    let r = run(options, filter, TIMEOUT).await;
    let dump = || transcript.lock().unwrap().join("\n");
    let (server, client) = match (&r.server, &r.client) {
        (Ok(s), Ok(c)) => (s, c),
        (s, c) => panic!(
            "handshake failed: server {:?}, client {:?}\n{}",
            s.as_ref().err(),
            c.as_ref().err(),
            dump()
        ),
    };
    assert!(started.elapsed() < TIMEOUT);
    assert!(r.dropped > 0, "the filter dropped nothing:\n{}", dump());
    let theirs = client_keys(client, server.profile).await;
    assert_eq!(server.keys.local_key, theirs.remote_master_key);
    assert_eq!(server.keys.remote_key, theirs.local_master_key);
    eprintln!(
        "{}\nfinal flight resent {} times, duplicate HelloVerifyRequests {}, {:?}",
        dump(),
        r.stats.final_flight_resends(),
        r.stats.duplicate_hello_verifies(),
        started.elapsed()
    );
    r
}

/// A client MTU small enough that its ClientHello spans several datagrams.
fn fragmenting() -> ClientOptions {
    ClientOptions {
        mtu: 100,
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn first_client_hello_lost() {
    completes(ClientOptions::default(), |t| {
        drop_nth(Dir::ToServer, 0, client_hello_seq(0), t)
    })
    .await;
}

#[tokio::test]
async fn first_client_hello_fragment_1_lost() {
    completes(fragmenting(), |t| {
        drop_nth(Dir::ToServer, 0, client_hello_seq(0), t)
    })
    .await;
}

#[tokio::test]
async fn first_client_hello_fragment_2_lost() {
    completes(fragmenting(), |t| {
        drop_nth(Dir::ToServer, 1, client_hello_seq(0), t)
    })
    .await;
}

#[tokio::test]
async fn fragmented_client_hello_completes_and_counts_duplicate_hello_verify() {
    let transcript: Transcript = Default::default();
    let seen = Arc::clone(&transcript);
    let r = completes(fragmenting(), move |t| {
        // Drop only the first ServerHello flight (so something is dropped); keep a copy of the
        // transcript to check the ClientHello really was fragmented.
        let mut inner = drop_flight_once(
            Dir::ToClient,
            |d| has_handshake(d, &SERVER_FLIGHT_4),
            |d| has_handshake(d, &[SERVER_HELLO_DONE]),
            t,
        );
        Box::new(move |dir, d| {
            seen.lock().unwrap().push(describe(dir, true, d));
            inner(dir, d)
        })
    })
    .await;
    let lines = transcript.lock().unwrap();
    let fragments = lines
        .iter()
        .filter(|l| l.starts_with("ToServer") && l.contains("hs1/seq0"))
        .count();
    assert!(fragments >= 2, "the ClientHello was not fragmented");
    let hvrs = lines
        .iter()
        .filter(|l| l.starts_with("ToClient") && l.contains("hs3/"))
        .count() as u64;
    // Every HelloVerifyRequest beyond the first answers the same ClientHello: counted.
    assert_eq!(r.stats.duplicate_hello_verifies(), hvrs - 1);
}

#[tokio::test]
async fn hello_verify_request_lost() {
    completes(ClientOptions::default(), |t| {
        drop_nth(
            Dir::ToClient,
            0,
            |d| has_handshake(d, &[HELLO_VERIFY_REQUEST]),
            t,
        )
    })
    .await;
}

#[tokio::test]
async fn cookie_client_hello_lost() {
    completes(ClientOptions::default(), |t| {
        drop_nth(Dir::ToServer, 0, client_hello_seq(1), t)
    })
    .await;
}

#[tokio::test]
async fn cookie_client_hello_fragment_lost() {
    completes(fragmenting(), |t| {
        drop_nth(Dir::ToServer, 1, client_hello_seq(1), t)
    })
    .await;
}

#[tokio::test]
async fn server_hello_flight_lost() {
    completes(ClientOptions::default(), |t| {
        drop_flight_once(
            Dir::ToClient,
            |d| has_handshake(d, &SERVER_FLIGHT_4),
            |d| has_handshake(d, &[SERVER_HELLO_DONE]),
            t,
        )
    })
    .await;
}

#[tokio::test]
async fn client_finished_flight_lost() {
    completes(ClientOptions::default(), |t| {
        drop_flight_once(
            Dir::ToServer,
            |d| has_handshake(d, &CLIENT_FLIGHT_5) || has_ccs_or_epoch1(d),
            has_ccs_or_epoch1,
            t,
        )
    })
    .await;
}

#[tokio::test]
async fn server_final_flight_lost_is_resent() {
    let r = completes(ClientOptions::default(), |t| {
        drop_flight_once(Dir::ToClient, has_ccs_or_epoch1, has_ccs_or_epoch1, t)
    })
    .await;
    assert!(
        r.stats.final_flight_resends() >= 1,
        "the client completed without the workaround?"
    );
}
