//! `relay-cost --tcp`: the same one-worker run with its subscribers on ICE-TCP instead of UDP.
//! Each subscriber connects to the worker's passive candidate, passes its Binding check over
//! RFC 4571 framing, and a thread per subscriber reads (and discards) everything the relay
//! sends it, so every egress packet is really written to a socket. Packets the relay drops
//! because a reader fell behind are counted and left out of the egress count.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::Duration;

use tern::datapath::Datapath;
use tern::srtp::Profile;

use super::add_session;

/// A TCP subscriber: its drain thread ends when the relay closes the connection.
pub struct TcpSub {
    drain: JoinHandle<u64>,
}

impl TcpSub {
    /// Bytes the subscriber read, once the relay has closed its connection.
    pub fn finish(self) -> u64 {
        self.drain.join().unwrap_or(0)
    }
}

/// Installs session `id` on `worker`, connects over TCP and passes the Binding check.
pub fn install_tcp(dp: &Datapath, worker: usize, id: u64, profile: Profile) -> TcpSub {
    let ice = add_session(dp, worker, id, profile);
    let addr = dp
        .tcp_addr(worker)
        .expect("relay-cost: the worker serves ICE-TCP");
    let mut stream = TcpStream::connect(addr).expect("relay-cost: TCP connect");
    stream.set_nodelay(true).ok();
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let username = format!("{}:{}", ice.local_ufrag, ice.remote_ufrag);
    let mut req = [0u8; 202];
    let n = tern::ice::write_binding_request(
        &mut req[2..],
        &[1; 12],
        username.as_bytes(),
        Some(ice.local_pwd.as_bytes()),
        true,
        1,
    )
    .expect("request");
    req[..2].copy_from_slice(&(n as u16).to_be_bytes());
    stream.write_all(&req[..2 + n]).expect("send");
    let mut head = [0u8; 3];
    stream
        .read_exact(&mut head)
        .expect("relay-cost: Binding response over TCP");
    assert!(head[2] < 4, "relay-cost: a STUN response");
    stream.set_read_timeout(None).ok();
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            total += n as u64;
        }
        total
    });
    TcpSub { drain }
}
