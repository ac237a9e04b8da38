//! [`XdpIo`]: one worker's AF_XDP socket, bound to the receive queue with the worker's index.
//!
//! The UMEM is the worker's send arena: `recv_buffers` receive frames first, then one 2 KiB
//! chunk per send slot, each slot starting [`TX_HEADROOM`] bytes into its chunk so the
//! Ethernet/IP/UDP headers are written in front of the SRTP packet in place: no copy on send.
//! A turn reaps the completion ring (sent slots go back to the queue), moves queued packets to
//! the TX ring with their headers and wakes the kernel once (`sendto`), then delivers what the
//! RX ring and the hand-over inbox hold, returning each receive frame to the fill ring at once.
//! It waits in `poll(2)` on the socket and the waker only when there is nothing to do. ICE-TCP
//! connections (kernel TCP sockets: the XDP program passes TCP on) are polled every turn.
//!
//! Next hop: a reply goes to the Ethernet source of the frames its peer sent, learned only when
//! the worker answers a datagram from that same address inside the receive callback. The worker
//! answers nothing it has not authenticated (a STUN check with the session's MESSAGE-INTEGRITY,
//! SRTCP under the session's keys), so a forged frame cannot steer where media goes; the
//! learned MAC is the peer's, or its router's when it is off-link, which is also where the
//! kernel would send. The neighbour table (ARP/NDP) is not consulted: it is the kernel's, may
//! lack the entry (the kernel never talked to the peer), and reading it per packet would be a
//! syscall.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use super::super::send::{SendArena, SendQueue, SlotLayout};
use super::super::tcp::{drop_sends, poll::PollTcp};
use super::super::{foreign_queue, IoConfig, IoError, IoStats, Waker};
use super::frame::{self, Local};
use super::ring::{RingSizes, XskSocket};
use super::{XdpAttachment, XdpMode};

/// UMEM chunk size: one frame.
const CHUNK: usize = 2048;
/// Bytes in front of each send slot for headers (Ethernet + IPv6 + UDP is 62).
pub(super) const TX_HEADROOM: usize = 64;
/// Most RX descriptors handled per turn.
const RX_BATCH: u32 = 256;
/// TX ring size cap.
const MAX_TX_RING: usize = 4096;
/// Wakeups tried in one flush while the kernel keeps asking for more (copy mode sends a budget
/// of frames per wakeup, 32 before Linux 6.17).
const MAX_KICKS: usize = 256;
/// Entries in the learned next-hop table before it is cleared (re-learned at the next check).
const MAX_NEIGHBOURS: usize = 65536;

pub(in super::super) struct XdpIo {
    // Field order is drop order: the socket (and its rings) goes before the UMEM memory.
    xsk: XskSocket,
    arena: Arc<SendArena>,
    att: Arc<XdpAttachment>,
    /// The UDP socket on the worker's port, kept open so no one else takes the port.
    _socket: UdpSocket,
    worker: usize,
    waker: Option<Arc<Waker>>,
    local: Local,
    rx_frames: u32,
    /// Largest frame the interface sends (MTU + Ethernet header).
    max_frame: usize,
    queue_id: u64,
    neighbours: HashMap<IpAddr, [u8; 6]>,
    last: Option<(IpAddr, [u8; 6])>,
    /// Workers given hand-overs this turn, to wake once each.
    wake_mask: u64,
    /// ICE-TCP, when attached: the kernel's TCP sockets, polled beside the XSK socket.
    pub(in super::super) tcp: Option<PollTcp>,
    /// The XSK socket, the waker, then what `tcp` polls.
    pollfds: Vec<libc::pollfd>,
    pub(in super::super) stats: IoStats,
}

// SAFETY: the raw pointers inside the rings point into this socket's own mappings and the UMEM
// (kept alive by `arena`), which move with the struct; nothing is shared with another thread
// except through the `Arc<XdpAttachment>`, whose shared parts are lock-free queues.
unsafe impl Send for XdpIo {}

fn memlock_error(bytes: usize, source: io::Error) -> IoError {
    IoError::XdpMemlock {
        bytes,
        limit: super::super::uring::memlock_limit(),
        source,
    }
}

impl XdpIo {
    /// Builds worker `worker`'s socket: UMEM (also the send arena of the returned queue), rings,
    /// bind to queue `worker`, entry in the socket map.
    pub(in super::super) fn new(
        socket: UdpSocket,
        waker: Option<Arc<Waker>>,
        cfg: &IoConfig,
        att: Arc<XdpAttachment>,
        worker: usize,
    ) -> Result<(XdpIo, SendQueue), IoError> {
        socket.set_nonblocking(true).map_err(IoError::Socket)?;
        let port = socket.local_addr().map_err(IoError::Socket)?.port();
        let rx_frames = usize::from(cfg.recv_buffers);
        let slots = cfg.send_slots;
        let layout = SlotLayout {
            offset: rx_frames * CHUNK + TX_HEADROOM,
            stride: CHUNK,
            usable: CHUNK - TX_HEADROOM,
            arena_len: (rx_frames + slots) * CHUNK,
            align: 4096,
        };
        let tx = SendQueue::with_layout(slots, layout);
        let arena = Arc::clone(tx.arena());
        let tx_ring = slots.next_power_of_two().clamp(64, MAX_TX_RING) as u32;
        let sizes = RingSizes {
            fill: rx_frames as u32,
            comp: tx_ring,
            rx: rx_frames as u32,
            tx: tx_ring,
        };
        // SAFETY: the arena is page-aligned (`align: 4096`), `arena.len()` bytes long, and lives
        // in this `XdpIo` (declared after `xsk`, so dropped after the socket is closed). The
        // kernel writes only into receive frames, which `SendQueue` never hands out.
        let xsk = unsafe { XskSocket::new(arena.base(), arena.len(), CHUNK as u32, sizes) }
            .map_err(|e| match e.source.raw_os_error() {
                Some(libc::ENOBUFS) | Some(libc::ENOMEM) | Some(libc::EPERM)
                    if e.step == "registering the UMEM" && !super::iface::can_lock_memory() =>
                {
                    memlock_error(arena.len(), e.source)
                }
                _ => IoError::XdpSetup {
                    step: e.step,
                    source: e.source,
                },
            })?;
        let mut io = XdpIo {
            xsk,
            arena,
            local: Local {
                mac: att.mac,
                addr: SocketAddr::new(att.ip, port),
            },
            max_frame: att.mtu as usize + frame::ETH_LEN,
            att,
            _socket: socket,
            worker,
            waker,
            rx_frames: rx_frames as u32,
            queue_id: tx.id(),
            neighbours: HashMap::with_capacity(1024),
            last: None,
            wake_mask: 0,
            tcp: None,
            pollfds: Vec::with_capacity(2),
            stats: IoStats::default(),
        };
        for i in 0..io.rx_frames {
            io.xsk.fill.put_addr(i, u64::from(i) * CHUNK as u64);
        }
        io.xsk.fill.produce(io.rx_frames);
        let mut flags = libc::XDP_USE_NEED_WAKEUP;
        if io.att.mode == XdpMode::Generic {
            flags |= libc::XDP_COPY;
        }
        io.xsk
            .bind(io.att.ifindex, worker as u32, flags)
            .map_err(|source| IoError::XdpSetup {
                step: "binding the AF_XDP socket to its queue",
                source,
            })?;
        super::bpf::set_xsk(&io.att.map, worker as u32, io.xsk.fd()).map_err(|source| {
            IoError::XdpSetup {
                step: "adding the socket to the XDP socket map",
                source,
            }
        })?;
        Ok((io, tx))
    }

    /// Whether the socket runs in zero-copy mode (else the kernel copies each frame).
    pub(in super::super) fn zero_copy(&self) -> bool {
        self.xsk.zero_copy()
    }

    pub(in super::super) fn local_addr(&self) -> SocketAddr {
        self.local.addr
    }

    /// Counters, with the kernel's own for this socket folded in.
    pub(in super::super) fn stats(&self) -> IoStats {
        let k = self.xsk.statistics();
        IoStats {
            xdp_fill_ring_empty: k.rx_fill_ring_empty_descs,
            xdp_rx_dropped: k.rx_dropped + k.rx_ring_full + k.rx_invalid_descs,
            ..self.stats
        }
    }

    /// Polls ICE-TCP connections beside the XSK socket from the next turn on.
    pub(in super::super) fn attach_tcp(&mut self, tcp: PollTcp) {
        self.pollfds.reserve(2 + tcp.max_fds());
        self.tcp = Some(tcp);
    }

    pub(in super::super) fn run_once<F>(
        &mut self,
        tx: &mut SendQueue,
        timeout: Duration,
        on_packet: &mut F,
    ) -> io::Result<usize>
    where
        F: FnMut(&mut [u8], SocketAddr, &mut SendQueue),
    {
        self.flush(tx)?;
        let mut n = self.receive(tx, on_packet);
        // Packets still queued (the TX ring was full): come straight back rather than sleep.
        let idle = n == 0 && !timeout.is_zero() && tx.queued() == 0;
        // TCP connections are served every turn: polled without waiting when not idle.
        if idle || self.tcp.is_some() {
            let (_, frames) = super::super::tcp::poll::wait(
                &mut self.pollfds,
                (self.xsk.fd(), self.waker.as_deref()),
                self.tcp.as_mut(),
                if idle { timeout } else { Duration::ZERO },
                &mut self.stats.submits,
                tx,
                on_packet,
            )?;
            n += frames;
            if idle {
                n += self.receive(tx, on_packet);
            }
        }
        self.wake_peers();
        Ok(n)
    }

    /// Reaps sent frames, moves queued packets to the TX ring and wakes the kernel.
    pub(in super::super) fn flush(&mut self, tx: &mut SendQueue) -> io::Result<()> {
        if tx.id() != self.queue_id {
            return Err(foreign_queue());
        }
        match self.tcp.as_mut() {
            Some(tcp) => tcp.flush(tx),
            None => drop_sends(tx),
        }
        for _ in 0..MAX_KICKS {
            self.reap(tx);
            let pushed = self.push(tx);
            if self.xsk.tx.outstanding() == 0 {
                break;
            }
            if !self.kick() && pushed == 0 {
                break;
            }
            if tx.queued() == 0 && self.xsk.tx.outstanding() == 0 {
                break;
            }
        }
        self.reap(tx);
        if tx.queued() > 0 {
            self.stats.xdp_tx_ring_full += 1;
        }
        Ok(())
    }

    /// One wakeup of the TX path; true if the kernel wants another (copy mode sent a budget's
    /// worth and more is waiting).
    fn kick(&mut self) -> bool {
        if !self.xsk.tx.needs_wakeup() {
            return false;
        }
        self.stats.submits += 1;
        match self.xsk.kick_tx() {
            Ok(()) => false,
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => true,
                Some(libc::EBUSY) | Some(libc::ENOBUFS) | Some(libc::ENETDOWN) => false,
                _ => {
                    self.stats.send_errors += 1;
                    false
                }
            },
        }
    }

    /// Gives completed frames' slots back to the queue.
    fn reap(&mut self, tx: &mut SendQueue) {
        let n = self.xsk.comp.available();
        let base = u64::from(self.rx_frames) * CHUNK as u64;
        for i in 0..n {
            let addr = self.xsk.comp.addr_at(i);
            let slot = addr.wrapping_sub(base) / CHUNK as u64;
            if addr >= base && (slot as usize) < tx.capacity() {
                tx.release(slot as u32);
                self.stats.send_packets += 1;
            } else {
                self.stats.send_errors += 1;
            }
        }
        self.xsk.comp.release(n);
    }

    /// The next hop for `ip`, if the peer has been answered.
    fn neighbour(&mut self, ip: IpAddr) -> Option<[u8; 6]> {
        if let Some((last, mac)) = self.last {
            if last == ip {
                return Some(mac);
            }
        }
        let mac = *self.neighbours.get(&ip)?;
        self.last = Some((ip, mac));
        Some(mac)
    }

    fn learn(&mut self, ip: IpAddr, mac: [u8; 6]) {
        if self.neighbours.get(&ip) == Some(&mac) {
            return;
        }
        if self.neighbours.len() >= MAX_NEIGHBOURS {
            self.neighbours.clear();
        }
        self.neighbours.insert(ip, mac);
        self.last = None;
    }

    /// Moves queued packets into the TX ring with their headers written; returns how many.
    fn push(&mut self, tx: &mut SendQueue) -> u32 {
        let free = self.xsk.tx.free(tx.queued() as u32);
        let mut pushed = 0;
        while pushed < free {
            let Some(p) = tx.pop_front() else { break };
            let Some(mac) = self.neighbour(p.dst.ip()) else {
                self.stats.xdp_no_neighbour += 1;
                tx.release(p.slot);
                continue;
            };
            let Some(hdr) = frame::header_len(&self.local, p.dst) else {
                self.stats.send_errors += 1;
                tx.release(p.slot);
                continue;
            };
            let len = hdr + p.len as usize;
            if len > self.max_frame {
                self.stats.send_errors += 1;
                tx.release(p.slot);
                continue;
            }
            let start = tx.slot_offset(p.slot) - hdr;
            // SAFETY: `start..start + len` lies in this slot's chunk (headers in the headroom,
            // `hdr <= TX_HEADROOM`, then the packet), inside the arena; the slot was just
            // popped, so the queue hands it to no one until we release it, and the kernel reads
            // it only after the descriptor below is published.
            let bytes =
                unsafe { std::slice::from_raw_parts_mut(self.arena.base().add(start), len) };
            frame::write_headers(bytes, &self.local, p.dst, mac);
            self.xsk.tx.put_desc(pushed, start as u64, len as u32);
            pushed += 1;
            self.stats.send_calls += 1;
        }
        if pushed > 0 {
            self.xsk.tx.produce(pushed);
        }
        pushed
    }

    /// Delivers hand-overs and up to a batch of received frames.
    fn receive<F>(&mut self, tx: &mut SendQueue, on_packet: &mut F) -> usize
    where
        F: FnMut(&mut [u8], SocketAddr, &mut SendQueue),
    {
        let mut delivered = 0;
        let att = Arc::clone(&self.att);
        while let Some(mut b) = att.handover.take(self.worker) {
            let (src, mac, len) = (b.src, b.src_mac, b.len);
            self.deliver(&mut b.data[..len], src, mac, tx, on_packet);
            att.handover.recycle(b);
            delivered += 1;
        }
        let n = self.xsk.rx.available().min(RX_BATCH);
        let rx_bytes = u64::from(self.rx_frames) * CHUNK as u64;
        let mut refill = 0;
        for i in 0..n {
            let (addr, len) = self.xsk.rx.desc_at(i);
            let at = addr % CHUNK as u64;
            if addr >= rx_bytes || at + u64::from(len) > CHUNK as u64 {
                // Not one of our receive chunks (cannot happen): count it, return nothing.
                self.stats.recv_errors += 1;
                continue;
            }
            // SAFETY: the frame lies in one receive chunk of the arena (checked above); the
            // kernel published it on the RX ring and does not touch it until we return the
            // chunk to the fill ring below, and `SendQueue` never hands out receive chunks.
            let frame = unsafe {
                std::slice::from_raw_parts_mut(self.arena.base().add(addr as usize), len as usize)
            };
            delivered += self.on_frame(frame, tx, on_packet);
            self.xsk.fill.put_addr(refill, addr - at);
            refill += 1;
        }
        if n > 0 {
            self.xsk.rx.release(n);
            // Every chunk taken off the RX ring goes back: the fill ring, sized for all of them,
            // has room.
            self.xsk.fill.produce(refill);
            if self.xsk.fill.needs_wakeup() {
                self.stats.submits += 1;
                self.xsk.kick_rx();
            }
        }
        self.stats.recv_packets += delivered as u64;
        delivered
    }

    /// One received frame: deliver it, hand it to its owner, or count it.
    fn on_frame<F>(&mut self, frame: &mut [u8], tx: &mut SendQueue, on_packet: &mut F) -> usize
    where
        F: FnMut(&mut [u8], SocketAddr, &mut SendQueue),
    {
        let Some(ing) = frame::parse(frame, self.local.addr.ip()) else {
            self.stats.recv_errors += 1;
            return 0;
        };
        let payload = &mut frame[ing.offset..ing.offset + ing.len];
        if ing.dst_port == self.local.addr.port() {
            self.deliver(payload, ing.src, ing.src_mac, tx, on_packet);
            return 1;
        }
        match self.att.worker_of(ing.dst_port) {
            Some(owner) => {
                if self
                    .att
                    .handover
                    .give(self.worker, owner, ing.src, ing.src_mac, payload)
                {
                    self.stats.xdp_handed_over += 1;
                    self.wake_mask |= 1u64 << (owner % 64);
                } else {
                    self.stats.xdp_handover_dropped += 1;
                }
            }
            None => self.stats.recv_errors += 1,
        }
        0
    }

    /// Calls the worker; learns the sender's next hop if the worker answered it.
    fn deliver<F>(
        &mut self,
        data: &mut [u8],
        src: SocketAddr,
        src_mac: [u8; 6],
        tx: &mut SendQueue,
        on_packet: &mut F,
    ) where
        F: FnMut(&mut [u8], SocketAddr, &mut SendQueue),
    {
        let before = tx.queued();
        on_packet(data, src, tx);
        if (before..tx.queued()).any(|i| tx.get(i).dst == src) {
            self.learn(src.ip(), src_mac);
        }
    }

    fn wake_peers(&mut self) {
        let mut mask = std::mem::take(&mut self.wake_mask);
        while mask != 0 {
            let w = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if let Some(waker) = self.att.wakers.get(w) {
                waker.wake();
            }
        }
    }
}
