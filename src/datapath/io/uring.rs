//! The io_uring backend: one multishot `RECVMSG` on a provided buffer ring, a `READ` on the waker
//! eventfd, and `SENDMSG` (UDP GSO groups) for the send queue, all driven by one
//! `io_uring_enter` per [`run_once`](UringIo::run_once).
//!
//! The ring is set up `SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN` and created disabled, so it
//! binds to whichever thread first drives it (the worker), not the thread that built it. Every
//! piece of memory the kernel may read or write (receive buffers, the buffer ring, the receive
//! msghdr, send msghdrs/iovecs/addresses/cmsgs, the eventfd read target, the send arena) lives
//! in one boxed [`KernelMem`] allocated in `new`; a send's memory is reused only after its CQE,
//! and on drop everything is cancelled and drained before it is freed (or leaked if that fails).
//! ICE-TCP connections, when attached, are driven through the same ring (`tcp`).

mod tcp;

use std::alloc::{self, Layout};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::types::{BufRingEntry, CancelBuilder, Fd, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring, Probe};

use super::addr::{self, RawAddr, SOCKADDR_IN6_LEN};
use super::send::{GsoCmsg, SendArena, SendQueue};
use super::{foreign_queue, log_gso_disabled, IoConfig, IoError, IoStats, Waker};
use super::{MAX_GSO_BYTES, MAX_GSO_SEGMENTS};
use tcp::{is_tcp_ud, UringTcp};

const UD_RECV: u64 = u64::MAX;
const UD_WAKE: u64 = u64::MAX - 1;
const UD_CANCEL: u64 = u64::MAX - 2;
/// The provided-buffer group of the receive ring.
const BGID: u16 = 0;
/// `struct io_uring_recvmsg_out`: the header the kernel writes before name and payload.
const RECVMSG_OUT_LEN: usize = 16;
const PAGE: usize = 4096;

const _: () = assert!(MAX_GSO_BYTES < u32::MAX as usize);

/// A zeroed heap allocation with a chosen alignment.
struct RawAlloc {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl RawAlloc {
    fn new(size: usize, align: usize) -> RawAlloc {
        let layout = Layout::from_size_align(size.max(1), align).expect("io buffer layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        RawAlloc { ptr, layout }
    }
}

impl Drop for RawAlloc {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; owners drop it only once the kernel no
        // longer refers to it (see `UringIo::drop`).
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// One in-flight (or free) send: everything its SENDMSG SQE points at.
struct SendOp {
    hdr: libc::msghdr,
    addr: RawAddr,
    cmsg: GsoCmsg,
    iov: [libc::iovec; MAX_GSO_SEGMENTS],
    slots: [u32; MAX_GSO_SEGMENTS],
    count: usize,
}

fn zeroed_msghdr() -> libc::msghdr {
    // SAFETY: msghdr is a plain C struct; all-zero is a valid value (null pointers, zero
    // lengths).
    unsafe { std::mem::zeroed() }
}

impl SendOp {
    fn new() -> SendOp {
        SendOp {
            hdr: zeroed_msghdr(),
            addr: RawAddr::zeroed(),
            cmsg: GsoCmsg::new(),
            iov: [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; MAX_GSO_SEGMENTS],
            slots: [0; MAX_GSO_SEGMENTS],
            count: 0,
        }
    }
}

/// Memory the kernel may touch while requests are in flight. Boxed, never moved, freed only
/// after every request has completed.
struct KernelMem {
    recv_hdr: libc::msghdr,
    wake_buf: u64,
    bufs: RawAlloc,
    ring: RawAlloc,
    ops: Box<[SendOp]>,
    /// Keeps the send arena alive while sends that read it are in flight.
    _arena: Arc<SendArena>,
}

pub(super) struct UringIo {
    ring: IoUring,
    mem: Option<Box<KernelMem>>,
    _socket: UdpSocket,
    fd: RawFd,
    waker: Option<Arc<Waker>>,
    v6: bool,
    gso: bool,
    /// Bytes of one receive buffer given to the kernel (header + name + payload).
    buf_len: u32,
    stride: usize,
    nbufs: u16,
    br_tail: u16,
    free_ops: Vec<u32>,
    /// Receive CQEs reaped but not yet delivered: (result, flags).
    stash: Vec<(i32, u32)>,
    recv_armed: bool,
    wake_armed: bool,
    woken: bool,
    enabled: bool,
    queue_id: u64,
    pub(super) stats: IoStats,
    /// ICE-TCP, once attached.
    tcp: Option<UringTcp>,
}

// SAFETY: the raw pointers inside `KernelMem` point only into allocations this struct owns,
// which move with it. The ring itself is `Send`; its single-issuer binding happens on the first
// thread that drives it (the ring is created disabled), and a later call from another thread is
// refused by the kernel (EEXIST), not unsound.
unsafe impl Send for UringIo {}

/// Which io_uring features this kernel lacks, if any.
pub(super) fn probe() -> Result<(), Vec<String>> {
    let ring: IoUring = match IoUring::builder()
        .setup_single_issuer()
        .setup_coop_taskrun()
        .setup_defer_taskrun()
        .setup_r_disabled()
        .build(8)
    {
        Ok(r) => r,
        Err(e) => {
            return Err(vec![format!(
                "io_uring_setup with SINGLE_ISSUER|COOP_TASKRUN|DEFER_TASKRUN ({e})"
            )])
        }
    };
    let mut missing = Vec::new();
    let mut p = Probe::new();
    if let Err(e) = ring.submitter().register_probe(&mut p) {
        return Err(vec![format!("IORING_REGISTER_PROBE ({e})")]);
    }
    let ops = [
        (opcode::RecvMsg::CODE, "IORING_OP_RECVMSG"),
        (opcode::SendMsg::CODE, "IORING_OP_SENDMSG"),
        (opcode::Read::CODE, "IORING_OP_READ"),
        (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL"),
        (
            opcode::SendZc::CODE,
            "multishot RECVMSG (kernel >= 6.0, probed as IORING_OP_SEND_ZC)",
        ),
    ];
    for (code, name) in ops {
        if !p.is_supported(code) {
            missing.push(name.to_owned());
        }
    }
    if !ring.params().is_feature_ext_arg() {
        missing.push("IORING_FEAT_EXT_ARG (wait with timeout)".to_owned());
    }
    if !ring.params().is_feature_nodrop() {
        missing.push("IORING_FEAT_NODROP".to_owned());
    }
    let mem = RawAlloc::new(PAGE, PAGE);
    // SAFETY: one page-aligned, zeroed page holds the one-entry ring; it is unregistered below
    // before `mem` is freed, or leaked if that fails.
    match unsafe {
        ring.submitter()
            .register_buf_ring_with_flags(mem.ptr.as_ptr() as u64, 1, BGID, 0)
    } {
        Ok(()) => {
            if ring.submitter().unregister_buf_ring(BGID).is_err() {
                std::mem::forget(mem);
            }
        }
        // Out of locked memory is not a missing feature: `new` reports it with advice.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOMEM) | Some(libc::EPERM)) => {}
        Err(e) => missing.push(format!("IORING_REGISTER_PBUF_RING ({e})")),
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing)
    }
}

/// Pushes one SQE, submitting first if the submission queue is full.
///
/// # Safety
/// Every pointer in `entry` must stay valid until its completion (for multishot requests,
/// until the completion without the MORE flag).
unsafe fn push_entry(
    ring: &mut IoUring,
    submits: &mut u64,
    entry: &squeue::Entry,
) -> io::Result<()> {
    loop {
        // SAFETY: guaranteed by this function's caller.
        if unsafe { ring.submission().push(entry) }.is_ok() {
            return Ok(());
        }
        *submits += 1;
        ring.submit()?;
    }
}

pub(super) fn memlock_limit() -> String {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the live local `rl`.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) } != 0 {
        return "unknown".to_owned();
    }
    if rl.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        format!("{} KiB", rl.rlim_cur / 1024)
    }
}

impl UringIo {
    pub(super) fn new(
        socket: UdpSocket,
        waker: Option<Arc<Waker>>,
        cfg: &IoConfig,
        tx: &SendQueue,
    ) -> Result<UringIo, IoError> {
        probe().map_err(|m| IoError::UringUnavailable {
            missing: m.join(", "),
        })?;
        let nbufs = cfg.recv_buffers;
        let slots = tx.capacity();
        let sq = (slots + 8).next_power_of_two().clamp(64, 1024) as u32;
        // The completion ring is charged to locked memory (RLIMIT_MEMLOCK or the memory
        // cgroup): 8192 entries (128 KiB) is plenty for one turn's receives and sends, and a
        // burst beyond it waits in the kernel's overflow list (IORING_FEAT_NODROP, required).
        // Sized by `send_slots` alone (16384 → 512 KiB a ring), a run that starts and stops
        // datapaths quickly ran out of an 8 MiB memlock limit and fell back to mmsg.
        let cq = (usize::from(nbufs) + slots + 64)
            .next_power_of_two()
            .min(8192) as u32;
        let ring: IoUring = IoUring::builder()
            .setup_single_issuer()
            .setup_coop_taskrun()
            .setup_defer_taskrun()
            .setup_r_disabled()
            .setup_cqsize(cq)
            .build(sq)
            .map_err(|source| IoError::UringSetup {
                step: "creating the ring",
                source,
            })?;

        let buf_len = RECVMSG_OUT_LEN + SOCKADDR_IN6_LEN + cfg.buffer_size;
        let stride = buf_len.div_ceil(64) * 64;
        let ring_bytes =
            (usize::from(nbufs) * std::mem::size_of::<BufRingEntry>()).div_ceil(PAGE) * PAGE;
        let mut recv_hdr = zeroed_msghdr();
        recv_hdr.msg_namelen = SOCKADDR_IN6_LEN as u32;
        let mut mem = Box::new(KernelMem {
            recv_hdr,
            wake_buf: 0,
            bufs: RawAlloc::new(stride * usize::from(nbufs), 64),
            ring: RawAlloc::new(ring_bytes, PAGE),
            ops: (0..slots).map(|_| SendOp::new()).collect(),
            _arena: Arc::clone(tx.arena()),
        });
        // SAFETY: `mem.ring` is page-aligned, zeroed and holds `nbufs` entries; it lives in the
        // boxed `KernelMem`, which is freed only after the ring is unregistered or destroyed.
        let reg = unsafe {
            ring.submitter().register_buf_ring_with_flags(
                mem.ring.ptr.as_ptr() as u64,
                nbufs,
                BGID,
                0,
            )
        };
        if let Err(source) = reg {
            return Err(match source.raw_os_error() {
                Some(libc::ENOMEM) | Some(libc::EPERM) => IoError::BufRingMemlock {
                    bytes: ring_bytes,
                    limit: memlock_limit(),
                    source,
                },
                _ => IoError::UringSetup {
                    step: "registering the receive buffer ring",
                    source,
                },
            });
        }
        mem.wake_buf = 0;
        let mut io = UringIo {
            ring,
            mem: Some(mem),
            fd: socket.as_raw_fd(),
            _socket: socket,
            waker,
            v6: false,
            gso: cfg.gso,
            buf_len: buf_len as u32,
            stride,
            nbufs,
            br_tail: 0,
            free_ops: (0..slots as u32).rev().collect(),
            stash: Vec::with_capacity(usize::from(nbufs) + 64),
            recv_armed: false,
            wake_armed: false,
            woken: false,
            enabled: false,
            queue_id: tx.id(),
            stats: IoStats::default(),
            tcp: None,
        };
        io.v6 = io
            ._socket
            .local_addr()
            .map(|a| a.is_ipv6())
            .unwrap_or(false);
        for bid in 0..nbufs {
            io.recycle(bid);
        }
        io.arm().map_err(|source| IoError::UringSetup {
            step: "arming the receive",
            source,
        })?;
        Ok(io)
    }

    fn mem(&mut self) -> &mut KernelMem {
        self.mem
            .as_deref_mut()
            .expect("kernel memory present until drop")
    }

    /// Puts receive buffer `bid` back at the (unpublished) tail of the buffer ring.
    fn recycle(&mut self, bid: u16) {
        let idx = usize::from(self.br_tail & (self.nbufs - 1));
        let (stride, buf_len) = (self.stride, self.buf_len);
        let mem = self.mem();
        let addr = mem.bufs.ptr.as_ptr() as u64 + (usize::from(bid) * stride) as u64;
        let entries = mem.ring.ptr.as_ptr().cast::<BufRingEntry>();
        // SAFETY: `idx < nbufs`, the ring allocation holds `nbufs` entries, and this entry lies
        // beyond the published tail, so the kernel does not read it until `publish`.
        let entry = unsafe { &mut *entries.add(idx) };
        entry.set_addr(addr);
        entry.set_len(buf_len);
        entry.set_bid(bid);
        self.br_tail = self.br_tail.wrapping_add(1);
    }

    /// Makes recycled buffers visible to the kernel.
    fn publish(&mut self) {
        let tail_value = self.br_tail;
        let entries = self.mem().ring.ptr.as_ptr().cast::<BufRingEntry>();
        // SAFETY: `entries` is the page-aligned base of the registered ring, whose first entry
        // is initialized; its tail field is a naturally aligned u16 that the kernel only reads,
        // so an atomic view of it is sound.
        let tail = unsafe { AtomicU16::from_ptr(BufRingEntry::tail(entries).cast_mut()) };
        tail.store(tail_value, Ordering::Release);
    }

    /// Pushes one SQE, submitting first if the submission queue is full.
    ///
    /// # Safety
    /// Every pointer in `entry` must stay valid until its completion (for multishot requests,
    /// until the completion without the MORE flag).
    unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        // SAFETY: guaranteed by this function's caller.
        unsafe { push_entry(&mut self.ring, &mut self.stats.submits, entry) }
    }

    /// Drives ICE-TCP on `conns` through this ring from the next submit on.
    pub(super) fn attach_tcp(&mut self, conns: super::tcp::Conns) {
        self.tcp = Some(UringTcp::new(conns));
    }

    pub(super) fn tcp(&self) -> Option<&super::tcp::Conns> {
        self.tcp.as_ref().map(UringTcp::conns)
    }

    pub(super) fn tcp_mut(&mut self) -> Option<&mut super::tcp::Conns> {
        self.tcp.as_mut().map(UringTcp::conns_mut)
    }

    /// Arms the multishot receive and the waker read if they are not armed.
    fn arm(&mut self) -> io::Result<()> {
        if !self.recv_armed {
            self.publish();
            let fd = self.fd;
            let hdr: *const libc::msghdr = &self.mem().recv_hdr;
            let e = opcode::RecvMsgMulti::new(Fd(fd), hdr, BGID)
                .build()
                .user_data(UD_RECV);
            // SAFETY: `recv_hdr` lives in the boxed `KernelMem`, freed only after the multishot
            // has ended (`Drop` cancels and drains, or leaks); the buffers it fills are the
            // registered ring's, which live there too.
            unsafe { self.push(&e)? };
            self.recv_armed = true;
            // The first arm happens in `new`, before the ring is enabled; later ones are re-arms.
            if self.enabled {
                self.stats.recv_rearms += 1;
            }
        }
        if !self.wake_armed {
            if let Some(wfd) = self.waker.as_ref().map(|w| w.fd()) {
                let buf: *mut u64 = &mut self.mem().wake_buf;
                let e = opcode::Read::new(Fd(wfd), buf.cast(), 8)
                    .build()
                    .user_data(UD_WAKE);
                // SAFETY: `wake_buf` lives in the boxed `KernelMem` (freed only after this read
                // completes), and `self.waker` keeps the eventfd open.
                unsafe { self.push(&e)? };
                self.wake_armed = true;
            }
        }
        Ok(())
    }

    fn ensure_enabled(&mut self) -> io::Result<()> {
        if !self.enabled {
            // Binds the single-issuer ring to this thread.
            self.ring.submitter().register_enable_rings()?;
            self.enabled = true;
        }
        Ok(())
    }

    /// Turns queued packets into SENDMSG SQEs (not submitted yet). Returns how many.
    fn push_sends(&mut self, tx: &mut SendQueue) -> io::Result<usize> {
        let gso = self.gso && !self.stats.gso_disabled;
        let (fd, v6) = (self.fd, self.v6);
        let mut pushed = 0;
        while tx.queued() > 0 {
            let Some(op_i) = self.free_ops.pop() else {
                break; // Every op in flight: the rest waits (cannot happen with ops == slots).
            };
            let (count, seg) = tx.group(0, gso);
            let dst = tx.get(0).dst;
            let op = &mut self.mem.as_deref_mut().expect("kernel memory").ops[op_i as usize];
            for k in 0..count {
                let p = tx.pop_front().expect("group within queue");
                op.slots[k] = p.slot;
                op.iov[k] = libc::iovec {
                    iov_base: tx.slot_ptr(p.slot).cast(),
                    iov_len: p.len as usize,
                };
            }
            op.count = count;
            let Some(namelen) = op.addr.write(dst, v6) else {
                // An IPv6 destination on an IPv4 socket: the kernel would refuse it too.
                self.stats.send_calls += 1;
                self.stats.send_errors += 1;
                self.complete_send(op_i, -libc::EAFNOSUPPORT, Some(tx));
                continue;
            };
            op.hdr.msg_name = (&mut op.addr as *mut RawAddr).cast();
            op.hdr.msg_namelen = namelen;
            op.hdr.msg_iov = op.iov.as_mut_ptr();
            op.hdr.msg_iovlen = count;
            if count > 1 {
                op.cmsg.set_segment(seg);
                op.hdr.msg_control = (&mut op.cmsg as *mut GsoCmsg).cast();
                op.hdr.msg_controllen = GsoCmsg::SPACE;
            } else {
                op.hdr.msg_control = std::ptr::null_mut();
                op.hdr.msg_controllen = 0;
            }
            let e = opcode::SendMsg::new(Fd(fd), &op.hdr)
                .build()
                .user_data(u64::from(op_i));
            // SAFETY: the op's msghdr, address, cmsg and iovecs live in the boxed `KernelMem`
            // and the op stays off the free list until this send's CQE; the iovecs point at
            // arena slots that are in flight (popped, released only at that CQE), and the arena
            // is kept alive by `KernelMem`.
            if let Err(err) = unsafe { self.push(&e) } {
                self.complete_send(op_i, -libc::EIO, Some(tx));
                return Err(err);
            }
            self.stats.send_calls += 1;
            self.stats.gso_sends += u64::from(count > 1);
            pushed += 1;
        }
        Ok(pushed)
    }

    /// A send finished (or failed before leaving): count it and free its op and slots.
    fn complete_send(&mut self, op_i: u32, res: i32, tx: Option<&mut SendQueue>) {
        let gso_disabled = self.stats.gso_disabled;
        let Some(op) = self
            .mem
            .as_deref_mut()
            .and_then(|m| m.ops.get_mut(op_i as usize))
        else {
            return;
        };
        let count = op.count;
        if res < 0 {
            self.stats.send_errors += 1;
            if matches!(-res, libc::EIO | libc::EINVAL) && count > 1 && !gso_disabled {
                self.stats.gso_disabled = true;
                log_gso_disabled(&io::Error::from_raw_os_error(-res));
            }
        } else {
            self.stats.send_packets += count as u64;
        }
        if let Some(tx) = tx {
            for &slot in &op.slots[..count] {
                tx.release(slot);
            }
        }
        op.count = 0;
        self.free_ops.push(op_i);
    }

    /// Consumes every CQE: sends complete now, the waker read sets `woken`, receive results go
    /// to `stash` for delivery (at most its capacity; the rest stay in the CQ).
    fn reap(&mut self, mut tx: Option<&mut SendQueue>) {
        loop {
            if self.stash.len() == self.stash.capacity() {
                break;
            }
            let Some(cqe) = self.ring.completion().next() else {
                break;
            };
            let (res, flags) = (cqe.result(), cqe.flags());
            match cqe.user_data() {
                UD_RECV => self.stash.push((res, flags)),
                UD_WAKE => {
                    self.wake_armed = false;
                    if let Some(w) = &self.waker {
                        w.clear();
                    }
                    self.woken = true;
                }
                UD_CANCEL => {}
                ud if is_tcp_ud(ud) => self.on_tcp_cqe(ud, res, flags),
                op => self.complete_send(op as u32, res, tx.as_deref_mut()),
            }
        }
    }

    /// Delivers the stashed receive completions and recycles their buffers.
    fn deliver<F>(&mut self, tx: &mut SendQueue, on_packet: &mut F) -> usize
    where
        F: FnMut(&mut [u8], SocketAddr, &mut SendQueue),
    {
        let mut delivered = 0;
        for i in 0..self.stash.len() {
            let (res, flags) = self.stash[i];
            if !cqueue::more(flags) {
                self.recv_armed = false;
            }
            let bid = cqueue::buffer_select(flags);
            if res < 0 || bid.is_none() {
                if res != -libc::ENOBUFS && res != -libc::ECANCELED {
                    self.stats.recv_errors += 1;
                }
                if let Some(bid) = bid.filter(|&b| b < self.nbufs) {
                    self.recycle(bid);
                }
                continue;
            }
            let bid = bid.unwrap_or(0);
            if bid >= self.nbufs {
                self.stats.recv_errors += 1;
                continue;
            }
            let used = (res as usize).min(self.buf_len as usize);
            let (stride, mem) = (self.stride, self.mem.as_deref().expect("kernel memory"));
            let base = mem
                .bufs
                .ptr
                .as_ptr()
                .wrapping_add(usize::from(bid) * stride);
            // SAFETY: buffer `bid` lies inside `bufs` (`bid < nbufs`, `used <= buf_len <=
            // stride`); the kernel handed it to us with this CQE and will not touch it until it
            // is recycled below, so this is the only reference to it.
            let buf = unsafe { std::slice::from_raw_parts_mut(base, used) };
            let parsed = RecvMsgOut::parse(buf, &mem.recv_hdr).map(|out| {
                let off = out.payload_data().as_ptr() as usize - buf.as_ptr() as usize;
                (
                    off,
                    out.payload_data().len(),
                    addr::parse(out.name_data()),
                    out.is_payload_truncated(),
                )
            });
            match parsed {
                Ok((_, _, _, true)) => self.stats.recv_truncated += 1,
                Ok((off, len, Some(src), false)) => {
                    on_packet(&mut buf[off..off + len], src, tx);
                    delivered += 1;
                }
                _ => self.stats.recv_errors += 1,
            }
            self.recycle(bid);
        }
        self.stash.clear();
        self.publish();
        self.stats.recv_packets += delivered as u64;
        delivered
    }

    /// One `io_uring_enter`: submit what is queued, wait for `want` completions or `timeout`.
    fn enter(&mut self, want: usize, timeout: Duration) -> io::Result<()> {
        let ts = Timespec::from(timeout);
        let args = SubmitArgs::new().timespec(&ts);
        self.stats.submits += 1;
        match self.ring.submitter().submit_with_args(want, &args) {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) => Ok(()),
                _ => Err(e),
            },
        }
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
        if tx.id() != self.queue_id {
            return Err(foreign_queue());
        }
        self.ensure_enabled()?;
        let start = Instant::now();
        let mut sends = self.push_sends(tx)?;
        self.push_tcp(tx)?;
        loop {
            let ready = !self.stash.is_empty() || self.woken || self.tcp_ready();
            let want = if ready { 0 } else { 1 + sends };
            if want > 0 || !self.ring.submission().is_empty() {
                let left = timeout.saturating_sub(start.elapsed());
                self.enter(want, left)?;
            }
            sends = 0;
            self.reap(Some(tx));
            let n = self.deliver(tx, on_packet) + self.deliver_tcp(tx, on_packet);
            self.arm()?;
            self.arm_tcp_recvs()?;
            if n > 0 || std::mem::take(&mut self.woken) || start.elapsed() >= timeout {
                return Ok(n);
            }
        }
    }

    pub(super) fn flush(&mut self, tx: &mut SendQueue) -> io::Result<()> {
        if tx.id() != self.queue_id {
            return Err(foreign_queue());
        }
        self.ensure_enabled()?;
        self.push_sends(tx)?;
        self.push_tcp(tx)?;
        if !self.ring.submission().is_empty() {
            self.stats.submits += 1;
            match self.ring.submit() {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::EBUSY)) => {}
                Err(e) => return Err(e),
            }
        }
        self.reap(Some(tx));
        Ok(())
    }

    /// Cancels everything armed and waits for every outstanding completion.
    fn shutdown(&mut self) -> io::Result<()> {
        let cancel = opcode::AsyncCancel2::new(CancelBuilder::any())
            .build()
            .user_data(UD_CANCEL);
        // SAFETY: a cancel request carries no pointers.
        unsafe { self.push(&cancel)? };
        let total_ops = self.mem.as_deref().map_or(0, |m| m.ops.len());
        for _ in 0..500 {
            self.enter(1, Duration::from_millis(10))?;
            self.reap(None);
            for &(_, flags) in &self.stash {
                if !cqueue::more(flags) {
                    self.recv_armed = false;
                }
            }
            self.stash.clear();
            let tcp_quiet = self.tcp.as_ref().is_none_or(UringTcp::quiet);
            if !self.recv_armed && !self.wake_armed && self.free_ops.len() == total_ops && tcp_quiet
            {
                return Ok(());
            }
        }
        Err(io::Error::from(io::ErrorKind::TimedOut))
    }
}

impl Drop for UringIo {
    fn drop(&mut self) {
        // Never submitted anything: only the buffer ring registration refers to our memory.
        let drained = !self.enabled || self.shutdown().is_ok();
        let unregistered = self.ring.submitter().unregister_buf_ring(BGID).is_ok();
        if let Some(mem) = self.mem.take() {
            if !(drained && unregistered) {
                // The kernel may still write into it: leaking is the only sound choice.
                Box::leak(mem);
            }
        }
        if let Some(tcp) = self.tcp.take() {
            if !drained {
                tcp.leak();
            }
        }
    }
}
