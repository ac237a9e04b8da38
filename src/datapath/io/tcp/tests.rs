use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use super::super::send::SendQueue;

use super::*;

#[test]
fn frames_follow_rfc4571() {
    assert_eq!(next_frame(&[], 100), Frame::Partial);
    assert_eq!(next_frame(&[0], 100), Frame::Partial);
    assert_eq!(next_frame(&[0, 3, 1, 2], 100), Frame::Partial);
    assert_eq!(next_frame(&[0, 3, 1, 2, 3], 100), Frame::Complete(3));
    assert_eq!(next_frame(&[0, 3, 1, 2, 3, 0, 9], 100), Frame::Complete(3));
    assert_eq!(next_frame(&[0, 0, 1], 100), Frame::Empty);
    // Oversized as soon as the prefix says so, before its bytes arrive.
    assert_eq!(next_frame(&[0, 101], 100), Frame::Oversized);
    assert_eq!(next_frame(&[0xff, 0xff], 2048), Frame::Oversized);
}

#[test]
fn connection_addresses_never_look_like_udp_peers() {
    for peer in [
        "192.0.2.7:4242",
        "[2001:db8::9]:5000",
        "[::ffff:192.0.2.7]:9",
    ] {
        let peer: SocketAddr = peer.parse().unwrap();
        assert!(!is_tcp(&peer), "{peer} is a UDP peer");
        let a = tag(peer, 513, 0x7fff);
        assert!(is_tcp(&a));
        assert_eq!(untag(&a), Some((513, 0x7fff)));
        assert_ne!(tag(peer, 513, 1), tag(peer, 513, 2), "generations differ");
        let seen = match peer {
            SocketAddr::V6(v) => match v.ip().to_ipv4_mapped() {
                Some(v4) => SocketAddr::from((v4, v.port())),
                None => peer,
            },
            v4 => v4,
        };
        assert_eq!(peer_addr(a), seen, "the peer's own address comes back");
    }
    // The UDP receive path's addresses (flowinfo 0) pass through untouched.
    let udp: SocketAddr = "[2001:db8::9]:5000".parse().unwrap();
    assert_eq!(peer_addr(udp), udp);
    assert_eq!(untag(&udp), None);
}

#[test]
fn send_ring_wraps_and_refuses_what_does_not_fit() {
    let mut c = Conn::free(Instant::now());
    c.tx = vec![0; 16].into_boxed_slice();
    assert!(c.push_frame(&[1, 2, 3, 4, 5])); // 7 bytes
    assert!(c.push_frame(&[6, 7, 8, 9, 10, 11])); // 8 bytes: 15 of 16
    assert!(!c.push_frame(&[12]), "3 bytes do not fit in 1");
    assert_eq!(c.tx_chunk(), (0, 15));
    // The kernel takes the first frame; the next one wraps.
    c.tx_head = 7;
    c.tx_len = 8;
    assert!(c.push_frame(&[0xaa, 0xbb, 0xcc, 0xdd, 0xee]));
    assert_eq!(c.tx_chunk(), (7, 9), "up to the end of the ring first");
    assert_eq!(&c.tx[15..], &[0]);
    assert_eq!(&c.tx[..6], &[5, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
    assert_eq!(c.tx_len, 15);
}

/// A table with one admitted connection; the client end is returned so it stays open.
fn one_connection(cfg: &TcpConfig) -> (Conns, usize, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let mut conns = Conns::new(listener, cfg, 2048);
    let slot = conns.admit(server).expect("admitted");
    (conns, slot, client)
}

/// Puts `bytes` in the slot's receive buffer as a read would.
fn arrive(conns: &mut Conns, slot: usize, bytes: &[u8]) {
    let (off, _) = conns.slots[slot].rx_spare();
    conns.slots[slot].rx[off..off + bytes.len()].copy_from_slice(bytes);
    conns.received(slot, bytes.len());
}

fn framed(payloads: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

const STUN: [u8; 20] = [
    0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
];

#[test]
fn split_frames_and_several_per_read_are_delivered_whole() {
    let (mut conns, slot, _client) = one_connection(&TcpConfig::default());
    let mut tx = SendQueue::new(8, 2048);
    let mut got: Vec<Vec<u8>> = Vec::new();
    let bytes = framed(&[&STUN, &STUN[..20], &STUN]);
    // Byte by byte: nothing until a frame is whole.
    for b in &bytes[..21] {
        arrive(&mut conns, slot, &[*b]);
        conns.deliver(&mut tx, &mut |f: &mut [u8], _, _: &mut SendQueue| {
            got.push(f.to_vec())
        });
    }
    assert_eq!(got.len(), 0);
    arrive(&mut conns, slot, &bytes[21..22]);
    conns.deliver(&mut tx, &mut |f: &mut [u8], _, _: &mut SendQueue| {
        got.push(f.to_vec())
    });
    assert_eq!(got, vec![STUN.to_vec()]);
    // The other two in one read.
    arrive(&mut conns, slot, &bytes[22..]);
    conns.deliver(&mut tx, &mut |f: &mut [u8], _, _: &mut SendQueue| {
        got.push(f.to_vec())
    });
    assert_eq!(got.len(), 3);
    assert_eq!(conns.slots[slot].rx_len, 0, "nothing left over");
    assert_eq!(conns.stats.frames_in, 3);
    assert!(conns.to_close.is_empty());
}

#[test]
fn before_an_answer_only_stun_is_delivered() {
    let dtls: &[u8] = &[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    for (payload, reason) in [
        (dtls, CloseReason::Unauthenticated),
        (&[0x80, 96, 0, 1][..], CloseReason::Unauthenticated),
        (&[0x42, 1, 2][..], CloseReason::Garbage),
    ] {
        let (mut conns, slot, _client) = one_connection(&TcpConfig::default());
        let mut tx = SendQueue::new(8, 2048);
        let mut delivered = 0;
        arrive(&mut conns, slot, &framed(&[&STUN, payload, &STUN]));
        conns.deliver(&mut tx, &mut |_: &mut [u8], _, _: &mut SendQueue| {
            delivered += 1
        });
        assert_eq!(delivered, 1, "{payload:?}: the STUN before it only");
        assert_eq!(conns.slots[slot].closing, Some(reason), "{payload:?}");
        assert_eq!(conns.to_close, vec![slot as u16]);
    }
}

#[test]
fn an_answer_authenticates_the_connection() {
    let (mut conns, slot, _client) = one_connection(&TcpConfig::default());
    let mut tx = SendQueue::new(8, 2048);
    let addr = conns.slots[slot].addr;
    let rtp: &[u8] = &[0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9];
    arrive(&mut conns, slot, &framed(&[&STUN, rtp]));
    let mut kinds = Vec::new();
    conns.deliver(&mut tx, &mut |f: &mut [u8], src, tx: &mut SendQueue| {
        kinds.push(f[0]);
        if f[0] < 4 {
            // What the worker does for an authenticated Binding request.
            tx.slot().unwrap()[..4].copy_from_slice(&[1, 1, 0, 0]);
            tx.commit(20, src);
        }
    });
    assert_eq!(kinds, vec![0, 0x80], "media follows in the same read");
    assert_eq!(conns.stats.authenticated, 1);
    assert!(conns.to_close.is_empty());
    // The answer is framed into the connection's send ring.
    assert_eq!(tx.tcp_queued(), 1);
    conns.take_sends(&mut tx);
    assert_eq!(tx.tcp_queued(), 0);
    assert_eq!(tx.free_slots(), 8, "the arena slot is free again");
    assert_eq!(conns.slots[slot].tx_len, 22);
    assert_eq!(&conns.slots[slot].tx[..4], &[0, 20, 1, 1]);
    // A stale address (another generation) is dropped and counted, never sent.
    let (s, g) = untag(&addr).unwrap();
    tx.slot().unwrap();
    tx.commit(10, tag(peer_addr(addr), s as u16, g + 1));
    conns.take_sends(&mut tx);
    assert_eq!(conns.stats.dropped_closed, 1);
    assert_eq!(conns.slots[slot].tx_len, 22);
}

#[test]
fn oversized_empty_and_too_many_unanswered_frames_close() {
    let mut tx = SendQueue::new(8, 2048);
    let (mut conns, slot, _c) = one_connection(&TcpConfig::default());
    arrive(&mut conns, slot, &[0x08, 0x01]); // 2049 > 2048
    conns.deliver(&mut tx, &mut |_: &mut [u8], _, _: &mut SendQueue| {});
    assert_eq!(conns.slots[slot].closing, Some(CloseReason::Oversized));
    assert_eq!(conns.stats.closed_oversized, 1);

    let (mut conns, slot, _c) = one_connection(&TcpConfig::default());
    arrive(&mut conns, slot, &[0, 0]);
    conns.deliver(&mut tx, &mut |_: &mut [u8], _, _: &mut SendQueue| {});
    assert_eq!(conns.slots[slot].closing, Some(CloseReason::Garbage));

    let (mut conns, slot, _c) = one_connection(&TcpConfig::default());
    let many: Vec<&[u8]> = vec![&STUN; PRE_AUTH_FRAMES as usize + 1];
    arrive(&mut conns, slot, &framed(&many));
    let mut n = 0;
    conns.deliver(&mut tx, &mut |_: &mut [u8], _, _: &mut SendQueue| n += 1);
    assert_eq!(n, PRE_AUTH_FRAMES);
    assert_eq!(
        conns.slots[slot].closing,
        Some(CloseReason::Unauthenticated)
    );
}

#[test]
fn timeouts_limits_and_release() {
    let cfg = TcpConfig {
        connections_per_ip: 1,
        ..TcpConfig::default()
    };
    let (mut conns, slot, _client) = one_connection(&cfg);
    // A second connection from the same address is refused.
    let second = TcpStream::connect(conns.local_addr().unwrap()).unwrap();
    let (server, _) = conns.listener.accept().unwrap();
    assert_eq!(conns.admit(server), None);
    assert_eq!(conns.stats.rejected_ip_limit, 1);
    drop(second);
    // Nothing authenticated within auth_timeout: closed.
    let start = conns.slots[slot].opened;
    conns.housekeeping(start + cfg.auth_timeout - Duration::from_millis(1));
    assert!(conns.to_close.is_empty());
    conns.housekeeping(start + cfg.auth_timeout);
    assert_eq!(conns.to_close, vec![slot as u16]);
    assert_eq!(conns.stats.closed_unauthenticated, 1);
    conns.to_close.clear();
    conns.release(slot);
    assert_eq!((conns.stats.open, conns.slots[slot].rx.len()), (0, 0));
    // The slot and the address's quota are free again.
    let _third = TcpStream::connect(conns.local_addr().unwrap()).unwrap();
    let (server, _) = conns.listener.accept().unwrap();
    assert_eq!(conns.admit(server), Some(slot));
    assert_ne!(
        untag(&conns.slots[slot].addr).unwrap().1,
        0,
        "a new generation"
    );
}
