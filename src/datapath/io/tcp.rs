//! ICE-TCP for one worker (RFC 6544 passive candidates): the connection table the io_uring and
//! poll backends drive, RFC 4571 framing, and the rules a connection lives by.
//!
//! Each connection is named, to the worker above, by a [`SocketAddr`] the UDP path can never
//! produce (IPv6, the peer's address mapped if it is IPv4, with [`TAG`] and the connection's slot
//! and generation in `flowinfo`, which UDP receives always report as 0). So the worker keeps one
//! address type for sessions, validation and sends, and [`SendQueue::commit`] routes a packet to
//! a connection by its address alone.
//!
//! Rules: until the worker answers a Binding request on a connection (it answers only
//! authenticated ones, as on UDP), only STUN frames are delivered; any other frame, a frame of
//! a protocol Tern does not speak, an empty or oversized frame, more than [`PRE_AUTH_FRAMES`]
//! unanswered frames, or nothing answered within `auth_timeout` closes it, counted by reason.
//! Each connection has a bounded send ring: a packet that does not fit is dropped and counted,
//! so a slow reader costs only its own packets. Buffers are allocated at accept and freed at
//! close, never per packet; nothing here blocks, logs per packet or makes a syscall per packet.

use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

mod conns;
pub(super) mod poll;

pub(super) use conns::{drop_sends, CloseReason, Conns};
#[cfg(test)]
use conns::{next_frame, Conn, Frame};

/// Marks a connection's address: the top bit of `flowinfo`.
pub const TAG: u32 = 0x8000_0000;
/// Frames a connection may send before the worker answers one (Chromium sends a few checks).
pub const PRE_AUTH_FRAMES: u32 = 16;
/// Slots are numbered in 16 bits of the address.
const MAX_SLOTS: usize = 1 << 16;

/// ICE-TCP settings of a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpConfig {
    /// Worker `w` listens on TCP `port_base + w` (0: any free port, for tests). Default `None`:
    /// the UDP port base, so each worker's TCP port is its UDP port.
    pub port_base: Option<u16>,
    /// Open connections per worker; more are refused at accept. 1..=65535. Default 1024.
    pub max_connections: usize,
    /// Open connections per client IP address, per worker. Default 20.
    pub connections_per_ip: usize,
    /// A connection that sends nothing for this long is closed. Default 30 s.
    pub idle_timeout: Duration,
    /// A connection that gets no Binding request answered within this is closed. Default 5 s.
    pub auth_timeout: Duration,
    /// Bytes of framed packets queued per connection (also its kernel send buffer size);
    /// packets that do not fit are dropped. 4096..=67108864. Default 262144.
    pub send_buffer: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            port_base: None,
            max_connections: 1024,
            connections_per_ip: 20,
            idle_timeout: Duration::from_secs(30),
            auth_timeout: Duration::from_secs(5),
            send_buffer: 256 << 10,
        }
    }
}

impl TcpConfig {
    /// Checks every field; the error names the bad one.
    pub fn validate(&self) -> Result<(), super::IoError> {
        let bad = |field: &'static str, reason: &'static str| {
            Err(super::IoError::InvalidConfig { field, reason })
        };
        if self.max_connections == 0 || self.max_connections >= MAX_SLOTS {
            return bad("tcp.max_connections", "must be from 1 to 65535");
        }
        if self.connections_per_ip == 0 {
            return bad("tcp.connections_per_ip", "must be at least 1");
        }
        if self.idle_timeout.is_zero() || self.auth_timeout.is_zero() {
            return bad("tcp.idle_timeout/auth_timeout", "must be longer than 0s");
        }
        if !(4096..=64 << 20).contains(&self.send_buffer) {
            return bad("tcp.send_buffer", "must be from 4096 to 67108864 bytes");
        }
        Ok(())
    }
}

/// ICE-TCP counters of one worker. `open` and `authenticated` are gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Connections open now.
    pub open: u64,
    /// Open connections on which the worker has answered a Binding request.
    pub authenticated: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections refused: the worker had `max_connections`.
    pub rejected_worker_limit: u64,
    /// Connections refused: the client address had `connections_per_ip`.
    pub rejected_ip_limit: u64,
    /// Closed by the peer (EOF or reset).
    pub closed_peer: u64,
    /// Closed: a frame of no protocol Tern speaks, or an empty one.
    pub closed_garbage: u64,
    /// Closed: a length prefix larger than the largest packet.
    pub closed_oversized: u64,
    /// Closed: non-STUN before authentication, too many unanswered frames, or `auth_timeout`.
    pub closed_unauthenticated: u64,
    /// Closed: nothing received for `idle_timeout`.
    pub closed_idle: u64,
    /// Closed: a socket error.
    pub closed_error: u64,
    /// Frames received and delivered to the worker.
    pub frames_in: u64,
    /// Bytes received (framing included).
    pub bytes_in: u64,
    /// Frames queued for sending.
    pub frames_out: u64,
    /// Bytes the kernel accepted for sending (framing included).
    pub bytes_out: u64,
    /// Packets dropped: the connection's send buffer was full (a slow reader).
    pub dropped_full: u64,
    /// Packets dropped: their connection is closed.
    pub dropped_closed: u64,
}

/// Whether `addr` names a TCP connection rather than a UDP peer.
pub fn is_tcp(addr: &SocketAddr) -> bool {
    matches!(addr, SocketAddr::V6(a) if a.flowinfo() & TAG != 0)
}

/// The address the peer sends from: a TCP connection's remote address, or `addr` itself. What a
/// Binding response puts in XOR-MAPPED-ADDRESS.
pub fn peer_addr(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(a) if a.flowinfo() & TAG != 0 => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, a.port())),
            None => SocketAddr::V6(SocketAddrV6::new(*a.ip(), a.port(), 0, a.scope_id())),
        },
        other => other,
    }
}

fn tag(peer: SocketAddr, slot: u16, gen: u16) -> SocketAddr {
    let flow = TAG | (u32::from(gen & 0x7fff) << 16) | u32::from(slot);
    let (ip, scope) = match peer {
        SocketAddr::V4(a) => (a.ip().to_ipv6_mapped(), 0),
        SocketAddr::V6(a) => (*a.ip(), a.scope_id()),
    };
    SocketAddr::V6(SocketAddrV6::new(ip, peer.port(), flow, scope))
}

/// (slot, generation) of a connection's address.
fn untag(addr: &SocketAddr) -> Option<(usize, u16)> {
    match addr {
        SocketAddr::V6(a) if a.flowinfo() & TAG != 0 => {
            let f = a.flowinfo();
            Some(((f & 0xffff) as usize, ((f >> 16) & 0x7fff) as u16))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
