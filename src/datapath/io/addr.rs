//! Socket addresses in the kernel's byte layout (`sockaddr_in`, `sockaddr_in6`), read and written
//! with safe byte arithmetic.
//!
//! IPv4-mapped IPv6 addresses (a dual-stack socket's view of an IPv4 peer) are presented as
//! `SocketAddr::V4`; a `V4` destination on an IPv6 socket is written as its mapped form.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Size of `sockaddr_in6`, the largest address this layer reads or writes.
pub(super) const SOCKADDR_IN6_LEN: usize = 28;
const SOCKADDR_IN_LEN: usize = 16;

/// Storage for one `sockaddr_in` or `sockaddr_in6`, aligned like the kernel's structs.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub(super) struct RawAddr(pub [u8; 32]);

impl RawAddr {
    pub(super) const fn zeroed() -> RawAddr {
        RawAddr([0; 32])
    }

    /// Writes `dst` for a socket of the given family; returns the address length, or `None` for
    /// an IPv6 destination on an IPv4 socket.
    pub(super) fn write(&mut self, dst: SocketAddr, v6_socket: bool) -> Option<u32> {
        let b = &mut self.0;
        match (dst, v6_socket) {
            (SocketAddr::V4(a), false) => {
                b[..SOCKADDR_IN_LEN].fill(0);
                b[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
                b[2..4].copy_from_slice(&a.port().to_be_bytes());
                b[4..8].copy_from_slice(&a.ip().octets());
                Some(SOCKADDR_IN_LEN as u32)
            }
            (SocketAddr::V4(a), true) => {
                let mapped = SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0);
                self.write_v6(&mapped);
                Some(SOCKADDR_IN6_LEN as u32)
            }
            (SocketAddr::V6(a), true) => {
                self.write_v6(&a);
                Some(SOCKADDR_IN6_LEN as u32)
            }
            (SocketAddr::V6(a), false) => match a.ip().to_ipv4_mapped() {
                Some(ip) => self.write(SocketAddr::V4(SocketAddrV4::new(ip, a.port())), false),
                None => None,
            },
        }
    }

    fn write_v6(&mut self, a: &SocketAddrV6) {
        let b = &mut self.0;
        b[..SOCKADDR_IN6_LEN].fill(0);
        b[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        b[2..4].copy_from_slice(&a.port().to_be_bytes());
        b[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
        b[8..24].copy_from_slice(&a.ip().octets());
        b[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
    }
}

/// Reads a `sockaddr_in` or `sockaddr_in6` the kernel wrote; `None` for anything else.
pub(super) fn parse(b: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    if family == libc::AF_INET as u16 && b.len() >= SOCKADDR_IN_LEN {
        let port = u16::from_be_bytes([b[2], b[3]]);
        let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
        Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
    } else if family == libc::AF_INET6 as u16 && b.len() >= SOCKADDR_IN6_LEN {
        let port = u16::from_be_bytes([b[2], b[3]]);
        let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&b[8..24]);
        let ip = Ipv6Addr::from(octets);
        let scope = u32::from_ne_bytes([b[24], b[25], b[26], b[27]]);
        match ip.to_ipv4_mapped() {
            Some(v4) => Some(SocketAddr::V4(SocketAddrV4::new(v4, port))),
            None => Some(SocketAddr::V6(SocketAddrV6::new(ip, port, flow, scope))),
        }
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_maps() {
        let mut raw = RawAddr::zeroed();
        let v4: SocketAddr = "192.0.2.7:4242".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::9]:5000".parse().unwrap();
        let len = raw.write(v4, false).unwrap() as usize;
        assert_eq!(parse(&raw.0[..len]), Some(v4));
        let len = raw.write(v6, true).unwrap() as usize;
        assert_eq!(parse(&raw.0[..len]), Some(v6));
        // A V4 destination on a v6 socket is written mapped and read back as V4.
        let len = raw.write(v4, true).unwrap() as usize;
        assert_eq!(len, SOCKADDR_IN6_LEN);
        assert_eq!(parse(&raw.0[..len]), Some(v4));
        assert_eq!(raw.write(v6, false), None);
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[0xff; 28]), None);
    }
}
