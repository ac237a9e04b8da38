//! A test WebRTC peer over a real UDP socket: ICE (controlling) Binding requests built with
//! `wire::stun`, SRTP with its own contexts, and a relay harness that installs sessions and
//! keys straight into the datapath, as the slow path will.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use tern::datapath::{
    Command, Datapath, DatapathConfig, IoMode, MediaKind, SessionKeys, SubscriptionParams, TrackRef,
};
use tern::ice::IceCredentials;
use tern::srtp::{Profile, SrtpContext};
use tern::wire::stun::{StunClass, StunMessage};

pub const PROFILE: Profile = Profile::AeadAes128Gcm;

/// A peer with its socket, the relay session it talks to and its SRTP state.
pub struct Peer {
    pub sock: UdpSocket,
    pub relay: SocketAddr,
    pub session: u64,
    pub worker: usize,
    pub ice: IceCredentials,
    /// Protects what the peer sends (the relay's remote key).
    pub tx: SrtpContext,
    /// Unprotects what the relay sends (the relay's local key).
    pub rx: SrtpContext,
    /// Sequence numbers to "lose" once on receipt (dropped before decryption, like the network).
    pub lose: Vec<u16>,
    txid: u8,
}

pub fn keys_for(session: u64) -> SessionKeys {
    let k = |tag: u8| {
        (0..PROFILE.key_len())
            .map(|i| tag ^ (session as u8).wrapping_mul(31) ^ i as u8)
            .collect::<Vec<u8>>()
    };
    let s = |tag: u8| {
        (0..PROFILE.salt_len())
            .map(|i| tag ^ (session as u8) ^ (i as u8).wrapping_mul(7))
            .collect::<Vec<u8>>()
    };
    SessionKeys {
        profile: PROFILE,
        local_key: k(0x11),
        local_salt: s(0x22),
        remote_key: k(0x33),
        remote_salt: s(0x44),
    }
}

/// Installs session `session` on `worker` (with keys if `with_keys`) as the slow path would;
/// returns its ICE credentials and the peer's SRTP contexts (protect, unprotect).
pub fn install_session(
    dp: &Datapath,
    worker: usize,
    session: u64,
    with_keys: bool,
) -> (IceCredentials, SrtpContext, SrtpContext) {
    let ice = IceCredentials {
        local_ufrag: format!("relay{session}"),
        local_pwd: format!("relay-password-for-session-{session}"),
        remote_ufrag: format!("peer{session}"),
    };
    dp.send(
        worker,
        Command::AddSession {
            id: session,
            ice: ice.clone(),
        },
    )
    .unwrap();
    let keys = keys_for(session);
    if with_keys {
        dp.send(
            worker,
            Command::SetKeys {
                session,
                keys: keys.clone(),
            },
        )
        .unwrap();
    }
    let tx = SrtpContext::new(PROFILE, &keys.remote_key, &keys.remote_salt).unwrap();
    let rx = SrtpContext::new(PROFILE, &keys.local_key, &keys.local_salt).unwrap();
    (ice, tx, rx)
}

/// A Binding request from the controlling peer of `ice`'s session, signed with `pwd`, naming
/// `ufrag` (default: the relay's) as the relay's ufrag.
pub fn binding_request_for(
    ice: &IceCredentials,
    txid: u8,
    pwd: Option<&str>,
    ufrag: Option<&str>,
    nominate: bool,
) -> Vec<u8> {
    let mut buf = vec![0u8; 200];
    let username = format!("{}:{}", ufrag.unwrap_or(&ice.local_ufrag), ice.remote_ufrag);
    let n = tern::ice::write_binding_request(
        &mut buf,
        &[txid; 12],
        username.as_bytes(),
        pwd.map(str::as_bytes),
        nominate,
        0x1234_5678,
    )
    .unwrap();
    buf.truncate(n);
    buf
}

/// Whether a packet the relay sent is RTP (not RTCP, STUN or DTLS).
pub fn is_rtp(d: &[u8]) -> bool {
    d.len() > 1 && d[0] >> 6 == 2 && !(192..=223).contains(&d[1])
}

/// Unprotects an SRTP packet from the relay with the session's key (it must verify).
pub fn unprotect_rtp(rx: &mut SrtpContext, mut d: Vec<u8>) -> Vec<u8> {
    let n = rx
        .unprotect_rtp(&mut d)
        .expect("relay's SRTP verifies with the session key");
    d.truncate(n);
    d
}

/// A plaintext RTP packet: header (no extension) and payload.
pub fn rtp_packet(pt: u8, ssrc: u32, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0x80, pt];
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&ts.to_be_bytes());
    buf.extend_from_slice(&ssrc.to_be_bytes());
    buf.extend_from_slice(payload);
    buf
}

impl Peer {
    /// Installs session `session` on `worker` (with keys if `with_keys`) and binds a socket for it.
    pub fn install(dp: &Datapath, worker: usize, session: u64, with_keys: bool) -> Peer {
        let (ice, tx, rx) = install_session(dp, worker, session, with_keys);
        // A wide receive buffer: fan-out tests read 50 sockets from threads on a 2-core box, and
        // a loss in this kernel queue is not the relay's.
        let raw = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        let _ = raw.set_recv_buffer_size(2 << 20);
        raw.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let sock: UdpSocket = raw.into();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Peer {
            sock,
            relay: dp.local_addr(worker),
            session,
            worker,
            ice,
            tx,
            rx,
            lose: Vec::new(),
            txid: 0,
        }
    }

    /// A Binding request as a controlling ICE agent would send it, signed with `pwd`.
    pub fn binding_request(
        &mut self,
        pwd: Option<&str>,
        ufrag: Option<&str>,
        nominate: bool,
    ) -> Vec<u8> {
        self.txid = self.txid.wrapping_add(1);
        binding_request_for(&self.ice, self.txid, pwd, ufrag, nominate)
    }

    /// Sends a correct nominating Binding request and waits for the verified response.
    pub fn connect(&mut self) {
        let pwd = self.ice.local_pwd.clone();
        for _ in 0..20 {
            let req = self.binding_request(Some(&pwd), None, true);
            self.sock.send_to(&req, self.relay).unwrap();
            let deadline = Instant::now() + Duration::from_millis(250);
            while let Some(resp) = self.recv_raw(deadline) {
                let Ok(msg) = StunMessage::parse(&resp) else {
                    continue;
                };
                if msg.class() == StunClass::SuccessResponse {
                    assert!(
                        msg.verify_integrity(pwd.as_bytes()),
                        "response signed with our session's password"
                    );
                    assert!(msg.verify_fingerprint());
                    assert_eq!(
                        msg.xor_mapped_address(),
                        Some(self.sock.local_addr().unwrap())
                    );
                    return;
                }
            }
        }
        panic!(
            "session {} never answered a valid Binding request",
            self.session
        );
    }

    /// Next datagram before `deadline`.
    pub fn recv_raw(&self, deadline: Instant) -> Option<Vec<u8>> {
        let mut buf = [0u8; 2048];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) if from == self.relay => return Some(buf[..n].to_vec()),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Sends RTP (protected with the peer's key), payload type 96.
    pub fn send_rtp(&mut self, ssrc: u32, seq: u16, ts: u32, payload: &[u8]) {
        self.send_rtp_pt(96, ssrc, seq, ts, payload);
    }

    /// Sends RTP with payload type `pt` (protected with the peer's key).
    pub fn send_rtp_pt(&mut self, pt: u8, ssrc: u32, seq: u16, ts: u32, payload: &[u8]) {
        self.send_plain_rtp(rtp_packet(pt, ssrc, seq, ts, payload));
    }

    /// Protects and sends a whole plaintext RTP packet (header as the caller built it).
    pub fn send_plain_rtp(&mut self, mut buf: Vec<u8>) {
        let len = buf.len();
        buf.resize(len + PROFILE.rtp_overhead(), 0);
        let n = self.tx.protect_rtp(&mut buf, len).unwrap();
        self.sock.send_to(&buf[..n], self.relay).unwrap();
    }

    /// Sends an RTCP compound packet (protected).
    pub fn send_rtcp(&mut self, plain: &[u8]) {
        let mut buf = plain.to_vec();
        buf.resize(plain.len() + PROFILE.rtcp_overhead(), 0);
        let n = self.tx.protect_rtcp(&mut buf, plain.len()).unwrap();
        self.sock.send_to(&buf[..n], self.relay).unwrap();
    }

    /// The next RTP packet (decrypted), skipping RTCP and STUN, before `deadline`.
    pub fn recv_rtp(&mut self, deadline: Instant) -> Option<Vec<u8>> {
        while let Some(d) = self.recv_raw(deadline) {
            if is_rtp(&d) {
                let seq = u16::from_be_bytes([d[2], d[3]]);
                if let Some(i) = self.lose.iter().position(|&l| l == seq) {
                    self.lose.swap_remove(i);
                    continue;
                }
                return Some(unprotect_rtp(&mut self.rx, d));
            }
        }
        None
    }

    /// The next RTCP compound (decrypted), skipping everything else, before `deadline`.
    pub fn recv_rtcp(&mut self, deadline: Instant) -> Option<Vec<u8>> {
        while let Some(mut d) = self.recv_raw(deadline) {
            if d.len() > 1 && d[0] >> 6 == 2 && (192..=223).contains(&d[1]) {
                let n = self
                    .rx
                    .unprotect_rtcp(&mut d)
                    .expect("relay's SRTCP verifies");
                d.truncate(n);
                return Some(d);
            }
        }
        None
    }
}

/// The command that installs `track` (SSRC `ssrc`) of `session`, with no upstream NACK, RTX
/// or transport-cc.
pub fn plain_publish(session: u64, track: u32, ssrc: u32, kind: MediaKind) -> Command {
    Command::Publish {
        session,
        track,
        ssrc: Some(ssrc),
        by_mid: None,
        kind,
        nack: false,
        rtx: None,
        transport_cc: None,
        codec: None,
        dependency_descriptor: None,
    }
}

/// Publishes `track` (SSRC `ssrc`) from `publisher` and subscribes every peer in `subs` to it,
/// each under SSRC `0x5000 + session`.
pub fn wire_up(
    dp: &Datapath,
    publisher: &Peer,
    track: u32,
    ssrc: u32,
    kind: MediaKind,
    subs: &[&Peer],
) {
    let subs: Vec<(u64, usize)> = subs.iter().map(|s| (s.session, s.worker)).collect();
    wire_up_sessions(
        dp,
        (publisher.session, publisher.worker),
        track,
        ssrc,
        kind,
        &subs,
    );
}

/// `wire_up` by (session, worker) pairs, whatever transport the peers use.
pub fn wire_up_sessions(
    dp: &Datapath,
    (publisher, worker): (u64, usize),
    track: u32,
    ssrc: u32,
    kind: MediaKind,
    subs: &[(u64, usize)],
) {
    dp.send(worker, plain_publish(publisher, track, ssrc, kind))
        .unwrap();
    for &(session, sub_worker) in subs {
        let params = SubscriptionParams::with_ssrc(0x5000 + session as u32);
        let track = TrackRef {
            id: track,
            worker,
            kind,
        };
        dp.subscribe(sub_worker, session, track, params).unwrap();
    }
}

/// On a one-worker datapath, session 1 publishes video track 3 (SSRC 0xaaaa) and session 2
/// subscribes to it with `params`; both connected.
pub fn publisher_and_subscriber(params: SubscriptionParams) -> (Datapath, Peer, Peer) {
    let dp = Datapath::start(DatapathConfig::for_tests(1, IoMode::Auto)).unwrap();
    let mut publisher = Peer::install(&dp, 0, 1, true);
    let mut sub = Peer::install(&dp, 0, 2, true);
    publisher.connect();
    sub.connect();
    dp.send(0, plain_publish(1, 3, 0xaaaa, MediaKind::Video))
        .unwrap();
    let track = TrackRef {
        id: 3,
        worker: 0,
        kind: MediaKind::Video,
    };
    dp.subscribe(0, 2, track, params).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    (dp, publisher, sub)
}

/// Waits until `f` holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}
