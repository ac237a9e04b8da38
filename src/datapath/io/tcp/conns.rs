//! A worker's ICE-TCP connection table: accept-time admission (limits), RFC 4571 framing of
//! what arrives, the authentication gate and close reasons, and the bounded send rings that
//! packets queued for a connection are framed into. Backend-independent and without unsafe code;
//! the io_uring and poll backends move the bytes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

use super::super::send::SendQueue;
use super::{peer_addr, tag, untag, TcpConfig, TcpStats, PRE_AUTH_FRAMES};
use crate::wire::demux::{classify, PacketKind};

/// The next RFC 4571 frame at the start of `buf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::datapath::io) enum Frame {
    /// A whole frame: its payload is `buf[2..2 + len]`.
    Complete(usize),
    /// More bytes are needed.
    Partial,
    /// A zero length prefix.
    Empty,
    /// A length prefix larger than `max`.
    Oversized,
}

/// Reads the frame at the start of `buf`; payloads longer than `max` are `Oversized` as soon as
/// the prefix is in.
pub(in crate::datapath::io) fn next_frame(buf: &[u8], max: usize) -> Frame {
    let [a, b, ..] = *buf else {
        return Frame::Partial;
    };
    let len = usize::from(u16::from_be_bytes([a, b]));
    if len == 0 {
        Frame::Empty
    } else if len > max {
        Frame::Oversized
    } else if buf.len() < 2 + len {
        Frame::Partial
    } else {
        Frame::Complete(len)
    }
}

/// Why a connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::datapath::io) enum CloseReason {
    Peer,
    Garbage,
    Oversized,
    Unauthenticated,
    Idle,
    Error,
}

/// One connection slot. Buffers are empty while the slot is free.
pub(in crate::datapath::io) struct Conn {
    pub(in crate::datapath::io) stream: Option<TcpStream>,
    gen: u16,
    /// The tagged address the worker knows this connection by.
    pub(in crate::datapath::io) addr: SocketAddr,
    peer_ip: IpAddr,
    authed: bool,
    pre_auth_frames: u32,
    pub(in crate::datapath::io) opened: Instant,
    last_rx: Instant,
    pub(in crate::datapath::io) rx: Box<[u8]>,
    pub(in crate::datapath::io) rx_len: usize,
    pub(in crate::datapath::io) tx: Box<[u8]>,
    pub(in crate::datapath::io) tx_head: usize,
    pub(in crate::datapath::io) tx_len: usize,
    /// Set once the connection is to be closed; the backend closes it when no I/O is pending.
    pub(in crate::datapath::io) closing: Option<CloseReason>,
    /// In the list of connections with bytes to send.
    pending_send: bool,
    /// In the list of connections with received bytes to deliver.
    pending_rx: bool,
    /// io_uring: a receive / a send / a cancel is in flight.
    pub(in crate::datapath::io) recv_busy: bool,
    pub(in crate::datapath::io) send_busy: bool,
    pub(in crate::datapath::io) cancel_sent: bool,
}

impl Conn {
    pub(in crate::datapath::io) fn free(now: Instant) -> Conn {
        Conn {
            stream: None,
            gen: 0,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            peer_ip: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            authed: false,
            pre_auth_frames: 0,
            opened: now,
            last_rx: now,
            rx: Box::new([]),
            rx_len: 0,
            tx: Box::new([]),
            tx_head: 0,
            tx_len: 0,
            closing: None,
            pending_send: false,
            pending_rx: false,
            recv_busy: false,
            send_busy: false,
            cancel_sent: false,
        }
    }

    pub(in crate::datapath::io) fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    /// Received bytes wait for delivery: the receive buffer must not be read into or moved.
    pub(in crate::datapath::io) fn pending_rx(&self) -> bool {
        self.pending_rx
    }

    /// Appends a framed copy of `data` to the send ring; false (nothing written) if it does
    /// not fit.
    pub(in crate::datapath::io) fn push_frame(&mut self, data: &[u8]) -> bool {
        let cap = self.tx.len();
        let need = 2 + data.len();
        if data.len() > usize::from(u16::MAX) || cap - self.tx_len < need {
            return false;
        }
        let prefix = (data.len() as u16).to_be_bytes();
        let mut at = (self.tx_head + self.tx_len) % cap;
        for part in [&prefix[..], data] {
            let first = part.len().min(cap - at);
            self.tx[at..at + first].copy_from_slice(&part[..first]);
            self.tx[..part.len() - first].copy_from_slice(&part[first..]);
            at = (at + part.len()) % cap;
        }
        self.tx_len += need;
        true
    }

    /// The bytes to send next, contiguous in the ring: (offset, length).
    pub(in crate::datapath::io) fn tx_chunk(&self) -> (usize, usize) {
        let len = self.tx_len.min(self.tx.len() - self.tx_head);
        (self.tx_head, len)
    }

    /// Room for the next read: (offset, length).
    pub(in crate::datapath::io) fn rx_spare(&self) -> (usize, usize) {
        (self.rx_len, self.rx.len() - self.rx_len)
    }
}

/// A worker's listener and connections.
pub(in crate::datapath::io) struct Conns {
    pub(in crate::datapath::io) listener: TcpListener,
    cfg: TcpConfig,
    max_frame: usize,
    rx_capacity: usize,
    pub(in crate::datapath::io) slots: Vec<Conn>,
    free: Vec<u16>,
    per_ip: HashMap<IpAddr, usize>,
    /// Connections with bytes to send, then with received bytes to deliver.
    to_send: Vec<u16>,
    to_deliver: Vec<u16>,
    /// Connections to close once their I/O is done.
    pub(in crate::datapath::io) to_close: Vec<u16>,
    /// The time of the last `housekeeping`: a connection's idle clock reads this.
    now: Instant,
    pub(in crate::datapath::io) stats: TcpStats,
}

impl Conns {
    /// `max_frame`: the largest packet accepted (the UDP receive buffer size).
    pub(in crate::datapath::io) fn new(
        listener: TcpListener,
        cfg: &TcpConfig,
        max_frame: usize,
    ) -> Conns {
        let now = Instant::now();
        let n = cfg.max_connections;
        Conns {
            listener,
            cfg: cfg.clone(),
            max_frame,
            rx_capacity: (4 * (2 + max_frame)).max(8192),
            slots: (0..n).map(|_| Conn::free(now)).collect(),
            free: (0..n as u16).rev().collect(),
            per_ip: HashMap::with_capacity(n.min(1024)),
            to_send: Vec::with_capacity(n),
            to_deliver: Vec::with_capacity(n),
            to_close: Vec::with_capacity(n),
            now,
            stats: TcpStats::default(),
        }
    }

    pub(in crate::datapath::io) fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Takes an accepted connection in, or refuses it (counted; dropping it closes it). Sets
    /// TCP_NODELAY and the kernel send buffer. Returns its slot.
    pub(in crate::datapath::io) fn admit(&mut self, stream: TcpStream) -> Option<usize> {
        let Ok(peer) = stream.peer_addr() else {
            self.stats.closed_error += 1;
            return None;
        };
        let ip = peer_addr(tag(peer, 0, 0)).ip();
        if self.per_ip.get(&ip).copied().unwrap_or(0) >= self.cfg.connections_per_ip {
            self.stats.rejected_ip_limit += 1;
            return None;
        }
        let Some(slot) = self.free.pop() else {
            self.stats.rejected_worker_limit += 1;
            return None;
        };
        // Media must not wait for Nagle; the kernel queue is bounded like ours.
        let _ = stream.set_nodelay(true);
        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(self.cfg.send_buffer);
        *self.per_ip.entry(ip).or_insert(0) += 1;
        let now = self.now.max(Instant::now());
        let c = &mut self.slots[usize::from(slot)];
        c.addr = tag(peer, slot, c.gen);
        c.peer_ip = ip;
        c.stream = Some(stream);
        c.authed = false;
        c.pre_auth_frames = 0;
        c.opened = now;
        c.last_rx = now;
        c.rx = vec![0; self.rx_capacity].into_boxed_slice();
        c.tx = vec![0; self.cfg.send_buffer].into_boxed_slice();
        (c.rx_len, c.tx_head, c.tx_len) = (0, 0, 0);
        c.closing = None;
        c.cancel_sent = false;
        self.stats.accepted += 1;
        self.stats.open += 1;
        Some(usize::from(slot))
    }

    /// Marks a connection to be closed for `reason` (counted once).
    pub(in crate::datapath::io) fn close(&mut self, slot: usize, reason: CloseReason) {
        let c = &mut self.slots[slot];
        if !c.is_open() || c.closing.is_some() {
            return;
        }
        c.closing = Some(reason);
        let s = &mut self.stats;
        match reason {
            CloseReason::Peer => s.closed_peer += 1,
            CloseReason::Garbage => s.closed_garbage += 1,
            CloseReason::Oversized => s.closed_oversized += 1,
            CloseReason::Unauthenticated => s.closed_unauthenticated += 1,
            CloseReason::Idle => s.closed_idle += 1,
            CloseReason::Error => s.closed_error += 1,
        }
        self.to_close.push(slot as u16);
    }

    /// Frees a closing connection's slot: closes the socket and drops the buffers. The caller
    /// guarantees no I/O on them is pending.
    pub(in crate::datapath::io) fn release(&mut self, slot: usize) {
        let c = &mut self.slots[slot];
        if c.stream.take().is_none() {
            return;
        }
        if c.authed {
            self.stats.authenticated -= 1;
        }
        c.gen = c.gen.wrapping_add(1) & 0x7fff;
        c.rx = Box::new([]);
        c.tx = Box::new([]);
        (c.rx_len, c.tx_len, c.tx_head) = (0, 0, 0);
        (c.pending_rx, c.pending_send) = (false, false);
        let ip = c.peer_ip;
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
        self.stats.open -= 1;
        self.free.push(slot as u16);
    }

    /// Closes connections past `auth_timeout` or `idle_timeout`; moves the idle clock to `now`.
    pub(in crate::datapath::io) fn housekeeping(&mut self, now: Instant) {
        self.now = now;
        for slot in 0..self.slots.len() {
            let c = &self.slots[slot];
            if !c.is_open() || c.closing.is_some() {
                continue;
            }
            if !c.authed && now.saturating_duration_since(c.opened) >= self.cfg.auth_timeout {
                self.close(slot, CloseReason::Unauthenticated);
            } else if now.saturating_duration_since(c.last_rx) >= self.cfg.idle_timeout {
                self.close(slot, CloseReason::Idle);
            }
        }
    }

    /// `n` bytes were read into the slot's receive buffer.
    pub(in crate::datapath::io) fn received(&mut self, slot: usize, n: usize) {
        let c = &mut self.slots[slot];
        c.rx_len = (c.rx_len + n).min(c.rx.len());
        c.last_rx = self.now;
        self.stats.bytes_in += n as u64;
        if !c.pending_rx {
            c.pending_rx = true;
            self.to_deliver.push(slot as u16);
        }
    }

    /// Whether received bytes wait for delivery.
    pub(in crate::datapath::io) fn has_received(&self) -> bool {
        !self.to_deliver.is_empty()
    }

    /// Delivers every whole frame received, each as `on_packet(frame, addr, tx)`, and keeps the
    /// partial rest. Returns the frames delivered.
    pub(in crate::datapath::io) fn deliver<F>(
        &mut self,
        tx: &mut SendQueue,
        on_packet: &mut F,
    ) -> usize
    where
        F: FnMut(&mut [u8], SocketAddr, &mut SendQueue),
    {
        let mut delivered = 0;
        for i in 0..self.to_deliver.len() {
            let slot = usize::from(self.to_deliver[i]);
            self.slots[slot].pending_rx = false;
            match self.deliver_one(slot, tx, on_packet) {
                Ok(n) => delivered += n,
                Err((n, reason)) => {
                    delivered += n;
                    self.close(slot, reason);
                }
            }
        }
        self.to_deliver.clear();
        delivered
    }

    fn deliver_one<F>(
        &mut self,
        slot: usize,
        tx: &mut SendQueue,
        on_packet: &mut F,
    ) -> Result<usize, (usize, CloseReason)>
    where
        F: FnMut(&mut [u8], SocketAddr, &mut SendQueue),
    {
        let max = self.max_frame;
        let c = &mut self.slots[slot];
        if !c.is_open() || c.closing.is_some() {
            return Ok(0);
        }
        let (mut at, mut n) = (0, 0);
        let result = loop {
            let len = match next_frame(&c.rx[at..c.rx_len], max) {
                Frame::Partial => break Ok(n),
                Frame::Empty => break Err((n, CloseReason::Garbage)),
                Frame::Oversized => break Err((n, CloseReason::Oversized)),
                Frame::Complete(len) => len,
            };
            let frame = &mut c.rx[at + 2..at + 2 + len];
            at += 2 + len;
            match classify(frame) {
                PacketKind::Stun => {}
                PacketKind::Dtls | PacketKind::Rtp | PacketKind::Rtcp if c.authed => {}
                PacketKind::Dtls | PacketKind::Rtp | PacketKind::Rtcp => {
                    break Err((n, CloseReason::Unauthenticated))
                }
                _ => break Err((n, CloseReason::Garbage)),
            }
            if !c.authed {
                c.pre_auth_frames += 1;
                if c.pre_auth_frames > PRE_AUTH_FRAMES {
                    break Err((n, CloseReason::Unauthenticated));
                }
            }
            let before = tx.tcp_queued();
            on_packet(frame, c.addr, tx);
            n += 1;
            self.stats.frames_in += 1;
            // The worker answers only an authenticated Binding request: a reply to this
            // connection is its proof.
            if !c.authed && (before..tx.tcp_queued()).any(|i| tx.tcp_dst(i) == c.addr) {
                c.authed = true;
                self.stats.authenticated += 1;
            }
        };
        c.rx.copy_within(at..c.rx_len, 0);
        c.rx_len -= at;
        result
    }

    /// Moves every packet queued for a connection from `tx` into that connection's send ring
    /// (dropping and counting what does not fit or has no open connection), and frees its
    /// slot in `tx`.
    pub(in crate::datapath::io) fn take_sends(&mut self, tx: &mut SendQueue) {
        while let Some(q) = tx.pop_tcp() {
            let data = tx.sent_bytes(&q);
            match untag(&q.dst).and_then(|(slot, gen)| {
                self.slots
                    .get_mut(slot)
                    .filter(|c| c.is_open() && c.closing.is_none() && c.gen == gen)
                    .map(|c| (slot, c))
            }) {
                None => self.stats.dropped_closed += 1,
                Some((slot, c)) => {
                    if !c.push_frame(data) {
                        self.stats.dropped_full += 1;
                    } else {
                        self.stats.frames_out += 1;
                        if !c.authed {
                            c.authed = true;
                            self.stats.authenticated += 1;
                        }
                        if !c.pending_send {
                            c.pending_send = true;
                            self.to_send.push(slot as u16);
                        }
                    }
                }
            }
            tx.release(q.slot);
        }
    }

    /// The connections with bytes to send, emptied.
    pub(in crate::datapath::io) fn take_to_send(&mut self, out: &mut Vec<u16>) {
        for &slot in &self.to_send {
            self.slots[usize::from(slot)].pending_send = false;
        }
        out.clear();
        out.append(&mut self.to_send);
    }

    /// The kernel took `n` bytes from the front of the slot's send ring.
    pub(in crate::datapath::io) fn sent(&mut self, slot: usize, n: usize) {
        let c = &mut self.slots[slot];
        let n = n.min(c.tx_len);
        c.tx_head = (c.tx_head + n) % c.tx.len().max(1);
        c.tx_len -= n;
        self.stats.bytes_out += n as u64;
    }

    /// Queues the slot to send again (a partial send left bytes in the ring).
    pub(in crate::datapath::io) fn want_send(&mut self, slot: usize) {
        let c = &mut self.slots[slot];
        if c.is_open() && c.tx_len > 0 && !c.pending_send {
            c.pending_send = true;
            self.to_send.push(slot as u16);
        }
    }

    /// Dropping in-flight memory is unsound for io_uring: the backend leaks the table instead
    /// when the kernel may still hold pointers into it.
    pub(in crate::datapath::io) fn leak(self: Box<Self>) {
        std::mem::forget(self);
    }
}

/// Drops every packet queued for a connection when the backend has no TCP (frees the slots).
pub(in crate::datapath::io) fn drop_sends(tx: &mut SendQueue) {
    while let Some(q) = tx.pop_tcp() {
        tx.release(q.slot);
    }
}
