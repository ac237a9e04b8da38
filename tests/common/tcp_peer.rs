//! A test WebRTC peer over ICE-TCP (RFC 6544, active side): one TCP connection to a worker's
//! passive candidate, RFC 4571 framing (a two-byte length before every packet) written and read
//! here independently of the relay's code, and the same session set-up, Binding requests and
//! SRTP contexts as the UDP `Peer`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tern::datapath::Datapath;
use tern::ice::IceCredentials;
use tern::srtp::SrtpContext;
use tern::wire::stun::{StunClass, StunMessage};

use super::peer::{
    binding_request_for, install_session, is_rtp, rtp_packet, unprotect_rtp, PROFILE,
};

/// A peer with its TCP connection, the relay session it talks to and its SRTP state.
pub struct TcpPeer {
    pub stream: TcpStream,
    pub relay: SocketAddr,
    pub session: u64,
    pub worker: usize,
    pub ice: IceCredentials,
    pub tx: SrtpContext,
    pub rx: SrtpContext,
    /// Bytes read and not yet returned as frames.
    pending: Vec<u8>,
    txid: u8,
}

/// `payload` with its RFC 4571 length prefix.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

impl TcpPeer {
    /// Installs session `session` on `worker` (with keys if `with_keys`) and connects to the
    /// worker's ICE-TCP listener.
    pub fn install(dp: &Datapath, worker: usize, session: u64, with_keys: bool) -> TcpPeer {
        let (ice, tx, rx) = install_session(dp, worker, session, with_keys);
        let relay = dp.tcp_addr(worker).expect("the worker serves ICE-TCP");
        let stream = TcpStream::connect(relay).expect("connect to the passive candidate");
        stream.set_nodelay(true).unwrap();
        TcpPeer {
            stream,
            relay,
            session,
            worker,
            ice,
            tx,
            rx,
            pending: Vec::new(),
            txid: 0,
        }
    }

    /// A Binding request signed with `pwd` (see `binding_request_for`).
    pub fn binding_request(&mut self, pwd: Option<&str>, nominate: bool) -> Vec<u8> {
        self.txid = self.txid.wrapping_add(1);
        binding_request_for(&self.ice, self.txid, pwd, None, nominate)
    }

    /// Writes raw bytes (framing is the caller's).
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the relay");
    }

    /// Writes one framed packet.
    pub fn send_frame(&mut self, payload: &[u8]) {
        self.write_raw(&frame(payload));
    }

    /// Sends a correct nominating Binding request and checks the response: signed with the
    /// session's password, XOR-MAPPED-ADDRESS = this connection's own address.
    pub fn connect(&mut self) {
        let pwd = self.ice.local_pwd.clone();
        let req = self.binding_request(Some(&pwd), true);
        self.send_frame(&req);
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Some(resp) = self.recv_frame(deadline) {
            let Ok(msg) = StunMessage::parse(&resp) else {
                continue;
            };
            assert_eq!(msg.class(), StunClass::SuccessResponse);
            assert!(msg.verify_integrity(pwd.as_bytes()));
            assert!(msg.verify_fingerprint());
            assert_eq!(
                msg.xor_mapped_address(),
                Some(self.stream.local_addr().unwrap()),
                "the relay reports the connection's address"
            );
            return;
        }
        panic!("session {} got no Binding response over TCP", self.session);
    }

    /// The next whole frame before `deadline`, or `None` (timeout or closed).
    pub fn recv_frame(&mut self, deadline: Instant) -> Option<Vec<u8>> {
        loop {
            if self.pending.len() >= 2 {
                let len = usize::from(u16::from_be_bytes([self.pending[0], self.pending[1]]));
                if self.pending.len() >= 2 + len {
                    let f = self.pending[2..2 + len].to_vec();
                    self.pending.drain(..2 + len);
                    return Some(f);
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }

    /// Protects `plain` (a whole RTP packet) with the peer's key, framed, not yet written.
    pub fn protected_rtp(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut buf = plain.to_vec();
        buf.resize(plain.len() + PROFILE.rtp_overhead(), 0);
        let n = self.tx.protect_rtp(&mut buf, plain.len()).unwrap();
        frame(&buf[..n])
    }

    /// Sends RTP payload type 96, protected and framed.
    pub fn send_rtp(&mut self, ssrc: u32, seq: u16, ts: u32, payload: &[u8]) {
        let f = self.protected_rtp(&rtp_packet(96, ssrc, seq, ts, payload));
        self.write_raw(&f);
    }

    /// The next RTP packet (decrypted), skipping RTCP and STUN, before `deadline`.
    pub fn recv_rtp(&mut self, deadline: Instant) -> Option<Vec<u8>> {
        while let Some(d) = self.recv_frame(deadline) {
            if is_rtp(&d) {
                return Some(unprotect_rtp(&mut self.rx, d));
            }
        }
        None
    }
}
