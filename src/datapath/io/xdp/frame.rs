//! Ethernet + IPv4/IPv6 + UDP as the XDP backend reads and writes them, over byte slices: the
//! parse of a received frame (addresses, ports, where the payload is) and the headers written in
//! front of a payload for sending, with the IPv4 header checksum and the UDP checksum.
//!
//! No state, no I/O, never panics on any input: a frame that is not plain UDP to us is `None`.
//! The IP and UDP checksums of received frames are not verified: every datagram the relay acts
//! on is authenticated above this layer (STUN MESSAGE-INTEGRITY, DTLS record MACs, the SRTP auth
//! tag), so a corrupted frame fails there, as a forged one does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Ethernet header length (no VLAN tag).
pub(super) const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;
const UDP_LEN: usize = 8;
/// Headers in front of an IPv4 payload.
pub(super) const V4_HEADERS: usize = ETH_LEN + IPV4_LEN + UDP_LEN;
/// Headers in front of an IPv6 payload.
pub(super) const V6_HEADERS: usize = ETH_LEN + IPV6_LEN + UDP_LEN;
/// Hop limit / TTL of frames the relay sends.
const HOP_LIMIT: u8 = 64;

/// A received UDP datagram inside an Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Ingress {
    /// The sender's address and port.
    pub src: SocketAddr,
    /// The destination port (which worker it is for).
    pub dst_port: u16,
    /// The Ethernet source: the next hop back to the sender.
    pub src_mac: [u8; 6],
    /// Where the UDP payload starts in the frame.
    pub offset: usize,
    /// The UDP payload's length.
    pub len: usize,
}

/// Parses a frame as UDP to `local`; `None` for anything else (other address, protocol or
/// family, fragments, truncated or inconsistent lengths).
pub(super) fn parse(frame: &[u8], local: IpAddr) -> Option<Ingress> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let mut src_mac = [0u8; 6];
    src_mac.copy_from_slice(frame.get(6..12)?);
    let (src_ip, udp_at, ip_end) = match (ethertype, local) {
        (0x0800, IpAddr::V4(me)) => {
            let ip = frame.get(ETH_LEN..ETH_LEN + IPV4_LEN)?;
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
            if ip[0] >> 4 != 4 || ihl < IPV4_LEN || ip[9] != 17 || fragment || total < ihl {
                return None;
            }
            if Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]) != me {
                return None;
            }
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            (IpAddr::V4(src), ETH_LEN + ihl, ETH_LEN + total)
        }
        (0x86dd, IpAddr::V6(me)) => {
            let ip = frame.get(ETH_LEN..ETH_LEN + IPV6_LEN)?;
            if ip[0] >> 4 != 6 || ip[6] != 17 {
                return None;
            }
            let mut dst = [0u8; 16];
            dst.copy_from_slice(&ip[24..40]);
            if Ipv6Addr::from(dst) != me {
                return None;
            }
            let mut src = [0u8; 16];
            src.copy_from_slice(&ip[8..24]);
            let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            (
                IpAddr::V6(Ipv6Addr::from(src)),
                ETH_LEN + IPV6_LEN,
                ETH_LEN + IPV6_LEN + payload,
            )
        }
        _ => return None,
    };
    let udp = frame.get(udp_at..udp_at + UDP_LEN)?;
    let src_port = u16::from_be_bytes([udp[0], udp[1]]);
    let dst_port = u16::from_be_bytes([udp[2], udp[3]]);
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    // The UDP length must fit the IP payload, and the IP packet the frame (Ethernet may pad).
    if udp_len < UDP_LEN || udp_at + udp_len > ip_end || ip_end > frame.len() {
        return None;
    }
    let src = match src_ip {
        IpAddr::V4(ip) => SocketAddr::V4(SocketAddrV4::new(ip, src_port)),
        IpAddr::V6(ip) => SocketAddr::V6(SocketAddrV6::new(ip, src_port, 0, 0)),
    };
    Some(Ingress {
        src,
        dst_port,
        src_mac,
        offset: udp_at + UDP_LEN,
        len: udp_len - UDP_LEN,
    })
}

/// The fixed addresses of every frame one worker sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Local {
    /// The interface's MAC address.
    pub mac: [u8; 6],
    /// The relay's media address and this worker's port.
    pub addr: SocketAddr,
}

/// Headers the frame to `dst` needs in front of its payload, or `None` when `dst` is of the
/// other address family (the relay has one media address).
pub(super) fn header_len(local: &Local, dst: SocketAddr) -> Option<usize> {
    match (local.addr, dst) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) => Some(V4_HEADERS),
        (SocketAddr::V6(_), SocketAddr::V6(_)) => Some(V6_HEADERS),
        _ => None,
    }
}

/// Writes Ethernet, IP and UDP headers into `frame[..header_len]` for the payload already in
/// `frame[header_len..]` (the whole rest of the slice), to `dst` via next hop `dst_mac`. The IPv4
/// header checksum and the UDP checksum (mandatory over IPv6, computed over IPv4 too) are
/// filled in. Returns false, writing nothing, if `dst` is of the other family or the frame is
/// too long for the length fields.
pub(super) fn write_headers(
    frame: &mut [u8],
    local: &Local,
    dst: SocketAddr,
    dst_mac: [u8; 6],
) -> bool {
    let Some(hdr) = header_len(local, dst) else {
        return false;
    };
    if frame.len() < hdr || frame.len() - ETH_LEN > usize::from(u16::MAX) {
        return false;
    }
    let udp_len = (frame.len() - hdr + UDP_LEN) as u16;
    frame[0..6].copy_from_slice(&dst_mac);
    frame[6..12].copy_from_slice(&local.mac);
    let (udp_at, pseudo) = match (local.addr.ip(), dst.ip()) {
        (IpAddr::V4(src), IpAddr::V4(to)) => {
            frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            let ip = &mut frame[ETH_LEN..ETH_LEN + IPV4_LEN];
            ip[0] = 0x45;
            ip[1] = 0;
            ip[2..4].copy_from_slice(&(udp_len + IPV4_LEN as u16).to_be_bytes());
            // Identification 0 with Don't Fragment: an atomic datagram (RFC 6864).
            ip[4..6].fill(0);
            ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
            ip[8] = HOP_LIMIT;
            ip[9] = 17;
            ip[10..12].fill(0);
            ip[12..16].copy_from_slice(&src.octets());
            ip[16..20].copy_from_slice(&to.octets());
            let sum = fold(sum_words(ip, 0));
            ip[10..12].copy_from_slice(&(!sum).to_be_bytes());
            let pseudo =
                sum_words(&src.octets(), 0) + sum_words(&to.octets(), 0) + 17 + u64::from(udp_len);
            (ETH_LEN + IPV4_LEN, pseudo)
        }
        (IpAddr::V6(src), IpAddr::V6(to)) => {
            frame[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
            let ip = &mut frame[ETH_LEN..ETH_LEN + IPV6_LEN];
            ip[0..4].copy_from_slice(&0x6000_0000u32.to_be_bytes());
            ip[4..6].copy_from_slice(&udp_len.to_be_bytes());
            ip[6] = 17;
            ip[7] = HOP_LIMIT;
            ip[8..24].copy_from_slice(&src.octets());
            ip[24..40].copy_from_slice(&to.octets());
            let pseudo =
                sum_words(&src.octets(), 0) + sum_words(&to.octets(), 0) + 17 + u64::from(udp_len);
            (ETH_LEN + IPV6_LEN, pseudo)
        }
        _ => return false,
    };
    let udp = &mut frame[udp_at..];
    udp[0..2].copy_from_slice(&local.addr.port().to_be_bytes());
    udp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    udp[6..8].fill(0);
    let sum = !fold(sum_words(udp, pseudo));
    // A computed 0 is sent as all ones (RFC 768; RFC 8200 section 8.1).
    let sum = if sum == 0 { 0xffff } else { sum };
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    true
}

/// One's-complement partial sum of `data` as big-endian 16-bit words (an odd last byte padded
/// with zero), added to `acc`. The words are summed little-endian (the CPU's own order on x86 and ARM),
/// 32 bits at a time into a 64-bit accumulator, which the compiler vectorizes, and the folded
/// result is byte-swapped: the one's-complement sum is byte-order independent (RFC 1071,
/// section 2 (B)) and may be taken over wider words and folded (section 2 (C)).
pub(super) fn sum_words(data: &[u8], acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(4);
    let mut native: u64 = 0;
    for c in &mut chunks {
        native += u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    native += u64::from(u32::from_le_bytes(tail));
    acc + u64::from(fold(native).swap_bytes())
}

/// Folds a partial sum to 16 bits.
pub(super) fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    /// RFC 1071's worked example: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum_words(&data, 0)), 0xddf2);
        // Odd length: the last byte is the high half of a zero-padded word.
        assert_eq!(fold(sum_words(&[0x12], 0)), 0x1200);
    }

    /// A 16-bit-at-a-time reference sum.
    fn reference(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for c in data.chunks(2) {
            let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
            acc += u32::from(w);
        }
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn wide_sum_matches_the_word_sum() {
        for len in 0..70 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8 | 0x80).collect();
            assert_eq!(fold(sum_words(&data, 0)), reference(&data), "len {len}");
        }
    }

    /// The receiver's check: the one's-complement sum over pseudo-header and UDP is 0xffff.
    fn udp_verifies(frame: &[u8], v6: bool) -> bool {
        let (src, dst, udp_at) = if v6 {
            (&frame[22..38], &frame[38..54], ETH_LEN + IPV6_LEN)
        } else {
            (&frame[26..30], &frame[30..34], ETH_LEN + IPV4_LEN)
        };
        let udp = &frame[udp_at..];
        let pseudo = sum_words(src, 0) + sum_words(dst, 0) + 17 + udp.len() as u64;
        fold(sum_words(udp, pseudo)) == 0xffff
    }

    fn build(local: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
        let l = Local {
            mac: MAC_A,
            addr: local,
        };
        let hdr = header_len(&l, dst).unwrap();
        let mut frame = vec![0u8; hdr];
        frame.extend_from_slice(payload);
        assert!(write_headers(&mut frame, &l, dst, MAC_B));
        frame
    }

    #[test]
    fn ipv4_headers_checksum_and_parse_back() {
        let local: SocketAddr = "10.13.0.1:40000".parse().unwrap();
        let peer: SocketAddr = "10.13.0.2:5004".parse().unwrap();
        let payload: Vec<u8> = (0..1201u32).map(|i| i as u8).collect();
        let f = build(local, peer, &payload);
        assert_eq!(&f[0..6], &MAC_B);
        assert_eq!(&f[6..12], &MAC_A);
        assert_eq!(f[14], 0x45);
        assert_eq!(fold(sum_words(&f[14..34], 0)), 0xffff, "IPv4 header sum");
        assert!(udp_verifies(&f, false));
        // Seen from the peer, it is UDP from us to it.
        let back = parse(&f, peer.ip()).unwrap();
        assert_eq!(back.src, local);
        assert_eq!(back.dst_port, 5004);
        assert_eq!(back.src_mac, MAC_A);
        assert_eq!(&f[back.offset..back.offset + back.len], &payload[..]);
    }

    #[test]
    fn ipv6_headers_checksum_and_parse_back() {
        let local: SocketAddr = "[fd00:13::1]:40000".parse().unwrap();
        let peer: SocketAddr = "[fd00:13::2]:5004".parse().unwrap();
        let f = build(local, peer, b"hello over six");
        assert!(udp_verifies(&f, true));
        let back = parse(&f, peer.ip()).unwrap();
        assert_eq!(back.src, local);
        assert_eq!(&f[back.offset..back.offset + back.len], b"hello over six");
        assert_eq!(parse(&f, local.ip()), None, "not to us");
        let mut padded = f.clone();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(
            parse(&padded, peer.ip()).map(|i| i.len),
            Some(14),
            "Ethernet padding is not payload"
        );
    }

    #[test]
    fn mixed_families_are_refused() {
        let l = Local {
            mac: MAC_A,
            addr: "10.0.0.1:1".parse().unwrap(),
        };
        let v6: SocketAddr = "[fd00::1]:1".parse().unwrap();
        assert_eq!(header_len(&l, v6), None);
        let mut frame = vec![0u8; 100];
        assert!(!write_headers(&mut frame, &l, v6, MAC_B));
        assert!(frame.iter().all(|&b| b == 0), "nothing written");
    }

    #[test]
    fn malformed_frames_are_none_never_a_panic() {
        let local: SocketAddr = "10.13.0.1:40000".parse().unwrap();
        let peer: SocketAddr = "10.13.0.2:5004".parse().unwrap();
        let good = build(peer, local, &[0x80; 100]);
        assert!(parse(&good, local.ip()).is_some());
        for cut in 0..good.len() {
            let _ = parse(&good[..cut], local.ip());
        }
        assert_eq!(
            parse(&good[..good.len() - 1], local.ip()),
            None,
            "truncated"
        );
        let mut bad_len = good.clone();
        bad_len[38..40].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(parse(&bad_len, local.ip()), None, "UDP length below 8");
        let mut long = good.clone();
        long[38..40].copy_from_slice(&2000u16.to_be_bytes());
        assert_eq!(parse(&long, local.ip()), None, "UDP length past the packet");
        let mut frag = good.clone();
        frag[20] = 0x20;
        assert_eq!(parse(&frag, local.ip()), None, "fragment");
        let mut small_ihl = good.clone();
        small_ihl[14] = 0x44;
        assert_eq!(parse(&small_ihl, local.ip()), None, "IHL below 5");
        for seed in 0..2000u32 {
            let junk: Vec<u8> = (0..(seed % 90))
                .map(|i| (seed.wrapping_mul(2654435761).wrapping_add(i * 97) >> 7) as u8)
                .collect();
            let _ = parse(&junk, local.ip());
        }
    }

    /// The IPv4 UDP checksum's cost, measured (not a pass/fail test):
    /// `cargo test --release --lib udp_checksum_cost -- --ignored --nocapture`. Prints ns per
    /// 1200-byte frame for the whole `write_headers` and for the payload sum alone, which is
    /// what leaving the optional IPv4 UDP checksum zero would save.
    #[test]
    #[ignore = "a measurement; run by hand with --release"]
    fn udp_checksum_cost() {
        for (local, dst) in [
            ("10.0.0.1:40000", "10.0.0.2:5000"),
            ("[fd00::1]:40000", "[fd00::2]:5000"),
        ] {
            let l = Local {
                mac: MAC_A,
                addr: local.parse().unwrap(),
            };
            let dst: SocketAddr = dst.parse().unwrap();
            let hdr = header_len(&l, dst).unwrap();
            let mut f = vec![0x5au8; hdr + 1200];
            let n = 2_000_000u32;
            let t = std::time::Instant::now();
            for i in 0..n {
                f[hdr] = i as u8;
                assert!(write_headers(std::hint::black_box(&mut f), &l, dst, MAC_B));
            }
            let all = t.elapsed().as_nanos() as f64 / f64::from(n);
            assert!(udp_verifies(&f, dst.is_ipv6()));
            let t = std::time::Instant::now();
            let mut acc = 0u64;
            for i in 0..n {
                f[hdr] = i as u8;
                acc = acc.wrapping_add(sum_words(std::hint::black_box(&f[hdr..]), 0));
            }
            let sum = t.elapsed().as_nanos() as f64 / f64::from(n);
            eprintln!(
                "{dst}: write_headers {all:.1} ns/frame, payload checksum alone {sum:.1} ns ({acc})"
            );
        }
    }
}
