//! ICE-TCP through the worker's io_uring: one multishot `ACCEPT` on the listener and, per
//! connection, at most one `RECV` (into its receive buffer, after what is not yet delivered)
//! and one `SEND` (from its send ring) in flight. Closing a connection cancels both by fd
//! (`ASYNC_CANCEL`) and frees its slot, socket and buffers only after their completions.
//!
//! The SQEs are pushed with the UDP sends and submitted by the same `io_uring_enter`; their
//! completions are reaped with the rest. A connection's buffers live in the boxed [`Conns`] and
//! are freed only when no request on them is in flight (or leaked with the ring's memory).

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};

use io_uring::types::{CancelBuilder, Fd};
use io_uring::{cqueue, opcode};

use super::super::send::SendQueue;
use super::super::tcp::{drop_sends, CloseReason, Conns};
use super::{push_entry, UringIo};

/// Tag of every TCP request's user data (bits 63..62 = 01); below it the kind and the slot.
const UD_TCP: u64 = 1 << 62;
const K_ACCEPT: u64 = 1;
const K_RECV: u64 = 2;
const K_SEND: u64 = 3;
const K_CANCEL: u64 = 4;

/// Whether a completion belongs to a TCP request.
pub(super) fn is_tcp_ud(ud: u64) -> bool {
    ud >> 62 == 1
}

fn ud(kind: u64, slot: usize) -> u64 {
    UD_TCP | (kind << 32) | slot as u64
}

/// The io_uring side of a worker's ICE-TCP.
pub(super) struct UringTcp {
    conns: Box<Conns>,
    accept_armed: bool,
    /// Connections that may need a receive armed.
    to_recv: Vec<u16>,
    scratch: Vec<u16>,
}

impl UringTcp {
    pub(super) fn new(conns: Conns) -> UringTcp {
        let n = conns.slots.len();
        UringTcp {
            conns: Box::new(conns),
            accept_armed: false,
            to_recv: Vec::with_capacity(n),
            scratch: Vec::with_capacity(n),
        }
    }

    pub(super) fn conns(&self) -> &Conns {
        &self.conns
    }

    pub(super) fn conns_mut(&mut self) -> &mut Conns {
        &mut self.conns
    }

    /// Nothing in flight: the table may be freed.
    pub(super) fn quiet(&self) -> bool {
        !self.accept_armed
            && self
                .conns
                .slots
                .iter()
                .all(|c| !c.recv_busy && !c.send_busy)
    }

    /// The kernel may still hold pointers into the buffers: never free them.
    pub(super) fn leak(self) {
        self.conns.leak();
    }
}

impl UringIo {
    /// Frames queued TCP packets into their connections' send rings, then pushes (not submits)
    /// the accept, cancels for closing connections, sends and receives; frees the slots of
    /// closed connections with nothing in flight.
    pub(super) fn push_tcp(&mut self, tx: &mut SendQueue) -> io::Result<()> {
        let Some(t) = self.tcp.as_mut() else {
            drop_sends(tx);
            return Ok(());
        };
        let (ring, submits) = (&mut self.ring, &mut self.stats.submits);
        t.conns.take_sends(tx);
        if !t.accept_armed {
            let e = opcode::AcceptMulti::new(Fd(t.conns.listener.as_raw_fd()))
                .build()
                .user_data(ud(K_ACCEPT, 0));
            // SAFETY: an accept carries no pointers; the listener stays open in `Conns` until
            // the ring is drained.
            unsafe { push_entry(ring, submits, &e)? };
            t.accept_armed = true;
        }
        let mut i = 0;
        while i < t.conns.to_close.len() {
            let slot = usize::from(t.conns.to_close[i]);
            let c = &mut t.conns.slots[slot];
            if !(c.recv_busy || c.send_busy) {
                t.conns.to_close.swap_remove(i);
                t.conns.release(slot);
                continue;
            }
            if !c.cancel_sent {
                let fd = c.stream.as_ref().map_or(-1, |s| s.as_raw_fd());
                let e = opcode::AsyncCancel2::new(CancelBuilder::fd(Fd(fd)).all())
                    .build()
                    .user_data(ud(K_CANCEL, slot));
                // SAFETY: a cancel carries no pointers.
                unsafe { push_entry(ring, submits, &e)? };
                c.cancel_sent = true;
            }
            i += 1;
        }
        let mut scratch = std::mem::take(&mut t.scratch);
        t.conns.take_to_send(&mut scratch);
        for &slot in &scratch {
            let slot = usize::from(slot);
            let c = &mut t.conns.slots[slot];
            if c.send_busy || c.closing.is_some() || c.tx_len == 0 {
                continue;
            }
            let Some(fd) = c.stream.as_ref().map(|s| s.as_raw_fd()) else {
                continue;
            };
            let (off, len) = c.tx_chunk();
            let e = opcode::Send::new(Fd(fd), c.tx[off..].as_ptr(), len as u32)
                .build()
                .user_data(ud(K_SEND, slot));
            // SAFETY: the chunk lies in the connection's send ring, which is freed only by
            // `release` once `send_busy` is false again (at this send's completion), or leaked
            // with the ring; new frames are written only to the ring's free part, never over the
            // `tx_len` bytes from `tx_head` this chunk belongs to.
            unsafe { push_entry(ring, submits, &e)? };
            c.send_busy = true;
        }
        t.scratch = scratch;
        self.arm_tcp_recvs()
    }

    /// Pushes a receive for each connection that has none and nothing left to deliver.
    pub(super) fn arm_tcp_recvs(&mut self) -> io::Result<()> {
        let Some(t) = self.tcp.as_mut() else {
            return Ok(());
        };
        let (ring, submits) = (&mut self.ring, &mut self.stats.submits);
        let mut i = 0;
        while i < t.to_recv.len() {
            let slot = usize::from(t.to_recv[i]);
            let c = &mut t.conns.slots[slot];
            if c.pending_rx() {
                i += 1; // Delivered first: the receive must append after what stays.
                continue;
            }
            t.to_recv.swap_remove(i);
            if c.recv_busy || c.closing.is_some() {
                continue;
            }
            let Some(fd) = c.stream.as_ref().map(|s| s.as_raw_fd()) else {
                continue;
            };
            let (off, len) = c.rx_spare();
            let e = opcode::Recv::new(Fd(fd), c.rx[off..].as_mut_ptr(), len as u32)
                .build()
                .user_data(ud(K_RECV, slot));
            // SAFETY: the spare part of the connection's receive buffer, which is neither read
            // nor moved until this receive completes (`pending_rx` is set only by that
            // completion) and freed only by `release` once `recv_busy` is false, or leaked.
            unsafe { push_entry(ring, submits, &e)? };
            c.recv_busy = true;
        }
        Ok(())
    }

    /// A TCP request completed.
    pub(super) fn on_tcp_cqe(&mut self, user_data: u64, res: i32, flags: u32) {
        let Some(t) = self.tcp.as_mut() else {
            return;
        };
        let kind = (user_data >> 32) & 0xff;
        let slot = (user_data & 0xffff_ffff) as usize;
        match kind {
            K_ACCEPT => {
                if !cqueue::more(flags) {
                    t.accept_armed = false;
                }
                if res >= 0 {
                    // SAFETY: `res` is a descriptor the accept just created; nothing else owns
                    // it, and the stream closes it when dropped.
                    let stream = unsafe { TcpStream::from_raw_fd(res) };
                    if let Some(slot) = t.conns.admit(stream) {
                        t.to_recv.push(slot as u16);
                    }
                } else if res != -libc::ECANCELED {
                    t.conns.stats.closed_error += 1;
                }
            }
            K_RECV if slot < t.conns.slots.len() => {
                t.conns.slots[slot].recv_busy = false;
                if t.conns.slots[slot].closing.is_some() {
                    return;
                }
                match res {
                    n if n > 0 => {
                        t.conns.received(slot, n as usize);
                        t.to_recv.push(slot as u16);
                    }
                    0 => t.conns.close(slot, CloseReason::Peer),
                    e if e == -libc::EAGAIN || e == -libc::EINTR => t.to_recv.push(slot as u16),
                    e if e == -libc::ECANCELED => {} // shutting down
                    e => t.conns.close(slot, close_reason(-e)),
                }
            }
            K_SEND if slot < t.conns.slots.len() => {
                t.conns.slots[slot].send_busy = false;
                if t.conns.slots[slot].closing.is_some() {
                    return;
                }
                match res {
                    n if n >= 0 => {
                        t.conns.sent(slot, n as usize);
                        t.conns.want_send(slot);
                    }
                    e if e == -libc::EAGAIN || e == -libc::EINTR => t.conns.want_send(slot),
                    e if e == -libc::ECANCELED => {} // shutting down
                    e => t.conns.close(slot, close_reason(-e)),
                }
            }
            _ => {} // K_CANCEL: its targets complete on their own.
        }
    }

    /// Delivers the frames received since the last call.
    pub(super) fn deliver_tcp<F>(&mut self, tx: &mut SendQueue, on_packet: &mut F) -> usize
    where
        F: FnMut(&mut [u8], SocketAddr, &mut SendQueue),
    {
        match self.tcp.as_mut() {
            Some(t) if t.conns.has_received() => t.conns.deliver(tx, on_packet),
            _ => 0,
        }
    }

    /// Received bytes wait for delivery.
    pub(super) fn tcp_ready(&self) -> bool {
        self.tcp.as_ref().is_some_and(|t| t.conns.has_received())
    }
}

/// A peer that went away, or something else.
fn close_reason(errno: i32) -> CloseReason {
    match errno {
        libc::ECONNRESET | libc::EPIPE | libc::ETIMEDOUT | libc::EHOSTUNREACH => CloseReason::Peer,
        _ => CloseReason::Error,
    }
}
