//! ICE-TCP for backends that wait in `poll(2)` (the recvmmsg/sendmmsg fallback): the listener
//! and every connection are non-blocking and polled beside the UDP socket; readable ones are
//! read into their receive buffers and their frames delivered, writable ones are written from
//! their send rings. One `read`/`write` per ready connection per turn, never per packet.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::super::send::SendQueue;
use super::super::Waker;
use super::{CloseReason, Conns};

/// Connections accepted per turn at most (the rest wait for the next poll).
const ACCEPTS_PER_TURN: usize = 64;
/// Marks the listener's pollfd in `polled`.
const LISTENER: u16 = u16::MAX;

/// One wait of a backend that sleeps in `poll(2)` (mmsg, xdp): polls `socket`, the waker and,
/// when attached, the ICE-TCP sockets for up to `timeout`; drains the waker and serves TCP
/// (its frames go to `on_packet`). Returns whether `socket` is readable and the TCP frames
/// delivered; an interrupted poll is an empty turn. `fds` is the backend's reused pollfd list,
/// `submits` its syscall count.
pub(in crate::datapath::io) fn wait<F>(
    fds: &mut Vec<libc::pollfd>,
    (socket, waker): (RawFd, Option<&Waker>),
    tcp: Option<&mut PollTcp>,
    timeout: Duration,
    submits: &mut u64,
    tx: &mut SendQueue,
    on_packet: &mut F,
) -> io::Result<(bool, usize)>
where
    F: FnMut(&mut [u8], SocketAddr, &mut SendQueue),
{
    fds.clear();
    for fd in [socket, waker.map_or(-1, Waker::fd)] {
        fds.push(libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
    }
    let mut tcp = tcp;
    if let Some(t) = tcp.as_deref_mut() {
        t.fill(fds);
    }
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` is a live vector of `fds.len()` pollfds (a negative fd is ignored).
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    *submits += 1;
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok((false, 0))
        } else {
            Err(e)
        };
    }
    if fds[1].revents & libc::POLLIN != 0 {
        if let Some(w) = waker {
            w.clear();
            w.drain();
            *submits += 1;
        }
    }
    let frames = tcp.map_or(0, |t| t.on_poll(&fds[2..], tx, on_packet));
    Ok((fds[0].revents & libc::POLLIN != 0, frames))
}

/// The poll-driven side of a worker's ICE-TCP.
pub(in crate::datapath::io) struct PollTcp {
    conns: Conns,
    /// The slot of each pollfd `fill` appended, in order (`LISTENER` for the listener).
    polled: Vec<u16>,
}

impl PollTcp {
    pub(in crate::datapath::io) fn new(conns: Conns) -> io::Result<PollTcp> {
        conns.listener.set_nonblocking(true)?;
        let n = conns.slots.len();
        Ok(PollTcp {
            conns,
            polled: Vec::with_capacity(n + 1),
        })
    }

    pub(in crate::datapath::io) fn conns(&self) -> &Conns {
        &self.conns
    }

    /// Most pollfds `fill` appends.
    pub(in crate::datapath::io) fn max_fds(&self) -> usize {
        self.conns.slots.len() + 1
    }

    /// Appends the listener and every open connection (POLLIN, and POLLOUT while it has bytes
    /// to send) to `fds`.
    pub(in crate::datapath::io) fn fill(&mut self, fds: &mut Vec<libc::pollfd>) {
        self.polled.clear();
        fds.push(libc::pollfd {
            fd: self.conns.listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        self.polled.push(LISTENER);
        for (slot, c) in self.conns.slots.iter().enumerate() {
            let Some(stream) = c.stream.as_ref().filter(|_| c.closing.is_none()) else {
                continue;
            };
            let out = if c.tx_len > 0 { libc::POLLOUT } else { 0 };
            fds.push(libc::pollfd {
                fd: stream.as_raw_fd(),
                events: libc::POLLIN | out,
                revents: 0,
            });
            self.polled.push(slot as u16);
        }
    }

    /// Handles what `poll` reported for the pollfds `fill` appended: accepts, reads and
    /// delivers each whole frame as `on_packet(frame, addr, tx)`, writes. Returns the frames
    /// delivered.
    pub(in crate::datapath::io) fn on_poll<F>(
        &mut self,
        fds: &[libc::pollfd],
        tx: &mut SendQueue,
        on_packet: &mut F,
    ) -> usize
    where
        F: FnMut(&mut [u8], SocketAddr, &mut SendQueue),
    {
        for (i, pfd) in fds.iter().enumerate().take(self.polled.len()) {
            let slot = self.polled[i];
            if pfd.revents == 0 {
                continue;
            }
            if slot == LISTENER {
                self.accept();
                continue;
            }
            let slot = usize::from(slot);
            if pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                self.read(slot);
            }
            if pfd.revents & libc::POLLOUT != 0 {
                self.write(slot);
            }
        }
        let n = self.conns.deliver(tx, on_packet);
        self.close_finished();
        n
    }

    /// Frames the packets queued in `tx` into their connections and writes what the sockets
    /// take now; the rest waits for POLLOUT.
    pub(in crate::datapath::io) fn flush(&mut self, tx: &mut SendQueue) {
        self.conns.take_sends(tx);
        let mut slots = std::mem::take(&mut self.polled);
        self.conns.take_to_send(&mut slots);
        for &slot in &slots {
            self.write(usize::from(slot));
        }
        // `fill` rebuilds the list before the next poll.
        self.polled = slots;
        self.polled.clear();
        self.close_finished();
    }

    pub(in crate::datapath::io) fn housekeeping(&mut self, now: Instant) {
        self.conns.housekeeping(now);
        self.close_finished();
    }

    fn accept(&mut self) {
        for _ in 0..ACCEPTS_PER_TURN {
            match self.conns.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        self.conns.stats.closed_error += 1;
                        continue;
                    }
                    self.conns.admit(stream);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // EMFILE and the like: try again at the next poll.
                    self.conns.stats.closed_error += 1;
                    return;
                }
            }
        }
    }

    fn read(&mut self, slot: usize) {
        let c = &mut self.conns.slots[slot];
        if c.closing.is_some() {
            return;
        }
        let (off, len) = c.rx_spare();
        let Some(mut stream) = c.stream.as_ref() else {
            return;
        };
        match stream.read(&mut c.rx[off..off + len]) {
            Ok(0) => self.conns.close(slot, CloseReason::Peer),
            Ok(n) => self.conns.received(slot, n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => self.conns.close(slot, close_reason(&e)),
        }
    }

    /// Writes from the send ring until it is empty or the socket is full.
    fn write(&mut self, slot: usize) {
        loop {
            let c = &self.conns.slots[slot];
            if c.closing.is_some() || c.tx_len == 0 {
                return;
            }
            let (off, len) = c.tx_chunk();
            let Some(mut stream) = c.stream.as_ref() else {
                return;
            };
            match stream.write(&c.tx[off..off + len]) {
                Ok(0) => return,
                Ok(n) => self.conns.sent(slot, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.conns.close(slot, close_reason(&e));
                    return;
                }
            }
        }
    }

    /// Nothing is in flight with synchronous calls: closing connections go at once.
    fn close_finished(&mut self) {
        while let Some(slot) = self.conns.to_close.pop() {
            self.conns.release(usize::from(slot));
        }
    }
}

fn close_reason(e: &io::Error) -> CloseReason {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::TimedOut => CloseReason::Peer,
        _ => CloseReason::Error,
    }
}
