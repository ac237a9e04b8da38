//! The fallback backend: `recvmmsg` into preallocated buffers, `poll(2)` on the socket and the
//! waker for the timeout, `sendmmsg` (with UDP GSO groups) for the send queue.
//!
//! Every syscall here is synchronous, so the kernel never holds a pointer after a call returns;
//! headers, iovecs and addresses are preallocated in `new` and refilled per call. ICE-TCP
//! connections, when attached, are polled beside the socket (`tcp::poll`).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use super::addr::{self, RawAddr, SOCKADDR_IN6_LEN};
use super::send::{GsoCmsg, SendQueue};
use super::tcp::{drop_sends, poll::PollTcp};
use super::{foreign_queue, log_gso_disabled, IoConfig, IoStats, Waker};

/// Datagrams per `recvmmsg`, and messages per `sendmmsg`.
const BATCH: usize = 64;
/// iovecs per `sendmmsg` (the kernel's UIO_MAXIOV is 1024 per message; this is for all).
const TX_IOVS: usize = 1024;

pub(super) struct MmsgIo {
    /// Owned so the descriptor lives exactly as long as the backend.
    _socket: UdpSocket,
    fd: RawFd,
    waker: Option<Arc<Waker>>,
    v6: bool,
    gso: bool,
    buffer_size: usize,
    queue_id: u64,
    pub(super) stats: IoStats,
    rx_bufs: Box<[u8]>,
    rx_addrs: Box<[RawAddr]>,
    rx_iov: Box<[libc::iovec]>,
    rx_hdrs: Box<[libc::mmsghdr]>,
    tx_hdrs: Box<[libc::mmsghdr]>,
    tx_iov: Box<[libc::iovec]>,
    tx_addrs: Box<[RawAddr]>,
    tx_cmsgs: Box<[GsoCmsg]>,
    tx_groups: [usize; BATCH],
    /// The last `recvmmsg` filled every header.
    full_batch: bool,
    /// ICE-TCP, once attached.
    pub(super) tcp: Option<PollTcp>,
    /// The socket, the waker, then what `tcp` polls.
    pollfds: Vec<libc::pollfd>,
}

// SAFETY: the raw pointers inside the preallocated headers point only into this struct's own
// boxed buffers, which move with it; nothing is shared with another thread.
unsafe impl Send for MmsgIo {}

fn zeroed_mmsghdr() -> libc::mmsghdr {
    // SAFETY: mmsghdr is a plain C struct; all-zero is a valid value (null pointers, zero
    // lengths).
    unsafe { std::mem::zeroed() }
}

fn empty_iovec() -> libc::iovec {
    libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }
}

impl MmsgIo {
    pub(super) fn new(
        socket: UdpSocket,
        waker: Option<Arc<Waker>>,
        cfg: &IoConfig,
        tx: &SendQueue,
    ) -> MmsgIo {
        let v6 = socket.local_addr().map(|a| a.is_ipv6()).unwrap_or(false);
        let mut io = MmsgIo {
            fd: socket.as_raw_fd(),
            _socket: socket,
            waker,
            v6,
            gso: cfg.gso,
            buffer_size: cfg.buffer_size,
            queue_id: tx.id(),
            stats: IoStats::default(),
            rx_bufs: vec![0u8; BATCH * cfg.buffer_size].into_boxed_slice(),
            rx_addrs: vec![RawAddr::zeroed(); BATCH].into_boxed_slice(),
            rx_iov: (0..BATCH).map(|_| empty_iovec()).collect(),
            rx_hdrs: (0..BATCH).map(|_| zeroed_mmsghdr()).collect(),
            tx_hdrs: (0..BATCH).map(|_| zeroed_mmsghdr()).collect(),
            tx_iov: (0..TX_IOVS).map(|_| empty_iovec()).collect(),
            tx_addrs: vec![RawAddr::zeroed(); BATCH].into_boxed_slice(),
            tx_cmsgs: (0..BATCH).map(|_| GsoCmsg::new()).collect(),
            tx_groups: [0; BATCH],
            full_batch: false,
            tcp: None,
            pollfds: Vec::with_capacity(2),
        };
        let base = io.rx_bufs.as_mut_ptr();
        for i in 0..BATCH {
            io.rx_iov[i].iov_base = base.wrapping_add(i * io.buffer_size).cast();
            io.rx_iov[i].iov_len = io.buffer_size;
        }
        io
    }

    /// Polls ICE-TCP connections beside the socket from the next turn on.
    pub(super) fn attach_tcp(&mut self, tcp: PollTcp) {
        self.pollfds.reserve(2 + tcp.max_fds());
        self.tcp = Some(tcp);
    }

    pub(super) fn run_once<F>(
        &mut self,
        tx: &mut SendQueue,
        timeout: Duration,
        on_packet: &mut F,
    ) -> io::Result<usize>
    where
        F: FnMut(&mut [u8], SocketAddr, &mut SendQueue),
    {
        self.flush(tx)?;
        let (mut timeout, mut n) = (timeout, 0);
        // After a full batch the socket probably holds more: read without polling first.
        if self.full_batch || timeout.is_zero() {
            n = self.recv_batch(tx, on_packet)?;
            if n > 0 || timeout.is_zero() {
                if self.tcp.is_none() {
                    return Ok(n);
                }
                // TCP connections are served every turn: poll them without waiting.
                timeout = Duration::ZERO;
            }
        }
        let (readable, frames) = super::tcp::poll::wait(
            &mut self.pollfds,
            (self.fd, self.waker.as_deref()),
            self.tcp.as_mut(),
            timeout,
            &mut self.stats.submits,
            tx,
            on_packet,
        )?;
        n += frames;
        if readable {
            n += self.recv_batch(tx, on_packet)?;
        }
        Ok(n)
    }

    /// One `recvmmsg` without waiting; delivers what it got.
    fn recv_batch<F>(&mut self, tx: &mut SendQueue, on_packet: &mut F) -> io::Result<usize>
    where
        F: FnMut(&mut [u8], SocketAddr, &mut SendQueue),
    {
        for i in 0..BATCH {
            let h = &mut self.rx_hdrs[i].msg_hdr;
            h.msg_name = (&mut self.rx_addrs[i] as *mut RawAddr).cast();
            h.msg_namelen = SOCKADDR_IN6_LEN as u32;
            h.msg_iov = &mut self.rx_iov[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.rx_hdrs[i].msg_len = 0;
        }
        // SAFETY: the headers point at this struct's own address slots and iovecs, which point
        // into `rx_bufs` (`buffer_size` bytes each); all live for the whole synchronous call.
        let r = unsafe {
            libc::recvmmsg(
                self.fd,
                self.rx_hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        self.stats.submits += 1;
        self.full_batch = r == BATCH as libc::c_int;
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => {
                    self.stats.recv_errors += 1;
                    Ok(0)
                }
            };
        }
        let mut delivered = 0;
        for i in 0..r as usize {
            let h = &self.rx_hdrs[i];
            if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                self.stats.recv_truncated += 1;
                continue;
            }
            let len = (h.msg_len as usize).min(self.buffer_size);
            let namelen = (h.msg_hdr.msg_namelen as usize).min(SOCKADDR_IN6_LEN);
            let Some(src) = addr::parse(&self.rx_addrs[i].0[..namelen]) else {
                self.stats.recv_errors += 1;
                continue;
            };
            let off = i * self.buffer_size;
            on_packet(&mut self.rx_bufs[off..off + len], src, tx);
            delivered += 1;
        }
        self.stats.recv_packets += delivered as u64;
        Ok(delivered)
    }

    /// Sends everything queued, `BATCH` messages per `sendmmsg`. A full socket buffer leaves the
    /// rest queued for the next call.
    pub(super) fn flush(&mut self, tx: &mut SendQueue) -> io::Result<()> {
        if tx.id() != self.queue_id {
            return Err(foreign_queue());
        }
        match self.tcp.as_mut() {
            Some(tcp) => tcp.flush(tx),
            None => drop_sends(tx),
        }
        while tx.queued() > 0 {
            let gso = self.gso && !self.stats.gso_disabled;
            let (mut nmsg, mut niov, mut i) = (0, 0, 0);
            while nmsg < BATCH && i < tx.queued() {
                let (count, seg) = tx.group(i, gso);
                if niov + count > TX_IOVS {
                    break;
                }
                let dst = tx.get(i).dst;
                for k in 0..count {
                    let p = tx.get(i + k);
                    self.tx_iov[niov + k] = libc::iovec {
                        iov_base: tx.slot_ptr(p.slot).cast(),
                        iov_len: p.len as usize,
                    };
                }
                let namelen = self.tx_addrs[nmsg].write(dst, self.v6).unwrap_or(0);
                let h = &mut self.tx_hdrs[nmsg].msg_hdr;
                h.msg_name = (&mut self.tx_addrs[nmsg] as *mut RawAddr).cast();
                h.msg_namelen = namelen;
                h.msg_iov = &mut self.tx_iov[niov];
                h.msg_iovlen = count;
                if count > 1 {
                    self.tx_cmsgs[nmsg].set_segment(seg);
                    h.msg_control = (&mut self.tx_cmsgs[nmsg] as *mut GsoCmsg).cast();
                    h.msg_controllen = GsoCmsg::SPACE;
                } else {
                    h.msg_control = std::ptr::null_mut();
                    h.msg_controllen = 0;
                }
                h.msg_flags = 0;
                self.tx_groups[nmsg] = count;
                nmsg += 1;
                niov += count;
                i += count;
            }
            // SAFETY: `nmsg` headers are filled; they point at this struct's address, iovec and
            // cmsg storage, and the iovecs at queued arena slots, all live and unmodified for
            // the whole synchronous call.
            let r = unsafe { libc::sendmmsg(self.fd, self.tx_hdrs.as_mut_ptr(), nmsg as u32, 0) };
            self.stats.submits += 1;
            if r >= 0 {
                for k in 0..r as usize {
                    let count = self.tx_groups[k];
                    self.stats.send_calls += 1;
                    self.stats.gso_sends += u64::from(count > 1);
                    self.stats.send_packets += count as u64;
                    self.pop_release(tx, count);
                }
                continue;
            }
            let e = io::Error::last_os_error();
            let count = self.tx_groups[0];
            match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) => break,
                Some(libc::EINTR) => continue,
                Some(libc::EIO) | Some(libc::EINVAL) if count > 1 => {
                    // GSO refused: retry the same packets singly, losing none.
                    self.stats.send_calls += 1;
                    self.stats.send_errors += 1;
                    self.stats.gso_disabled = true;
                    log_gso_disabled(&e);
                }
                _ => {
                    self.stats.send_calls += 1;
                    self.stats.send_errors += 1;
                    self.pop_release(tx, count);
                }
            }
        }
        Ok(())
    }

    fn pop_release(&mut self, tx: &mut SendQueue, count: usize) {
        for _ in 0..count {
            if let Some(p) = tx.pop_front() {
                tx.release(p.slot);
            }
        }
    }
}
