//! One AF_XDP socket and its four rings: fill and completion (the UMEM's: frames handed to the
//! kernel for receiving, and sent frames it gives back), RX and TX (descriptors of received and
//! to-be-sent frames). Each ring is a single-producer single-consumer queue in memory shared
//! with the kernel (`mmap` of the socket at a fixed page offset) with free-running 32-bit
//! producer and consumer indices: the side that produces writes entries, then publishes its
//! index with release ordering; the other side reads the index with acquire ordering before it
//! reads entries.
//!
//! This file owns the socket descriptor and the mappings and is the only code that touches
//! them; it never allocates after `XskSocket::new`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// `XDP_MAX_TX_SKB_BUDGET` (Linux 6.17+): descriptors one `sendto` may send in copy mode
/// (default 32). Older kernels refuse the option, which is fine.
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;

/// One mapped ring.
pub(super) struct Ring {
    map: NonNull<libc::c_void>,
    map_len: usize,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    desc: *mut u8,
    mask: u32,
    size: u32,
    /// Our own copy of the index we move (producer for fill/TX, consumer for RX/completion).
    local: u32,
    /// The last value read of the other side's index.
    seen: u32,
}

impl Ring {
    /// Maps ring `pgoff` of socket `fd`: `size` entries of `entry` bytes at the offsets the
    /// kernel reported.
    fn map(
        fd: RawFd,
        off: &libc::xdp_ring_offset,
        size: u32,
        entry: usize,
        pgoff: u64,
    ) -> io::Result<Ring> {
        let map_len = off.desc as usize + size as usize * entry;
        // SAFETY: maps a region of our own socket; the kernel checks offset and length against
        // the ring it created, and the result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = p.cast::<u8>();
        let map = NonNull::new(p).ok_or_else(|| io::Error::from(io::ErrorKind::Other))?;
        let mut ring = Ring {
            map,
            map_len,
            // The offsets come from the kernel and lie inside the mapping; pointer arithmetic on
            // a mapped base is not yet a dereference (wrapping_add keeps it safe code).
            producer: base.wrapping_add(off.producer as usize).cast(),
            consumer: base.wrapping_add(off.consumer as usize).cast(),
            flags: base.wrapping_add(off.flags as usize).cast(),
            desc: base.wrapping_add(off.desc as usize),
            mask: size - 1,
            size,
            local: 0,
            seen: 0,
        };
        ring.local = ring.load_own();
        Ok(ring)
    }

    fn atomic(&self, p: *const AtomicU32) -> &AtomicU32 {
        // SAFETY: `p` is one of the naturally aligned u32 indices/flags inside our live mapping
        // (the kernel's `struct xdp_ring` layout); the kernel accesses it atomically too.
        unsafe { &*p }
    }

    fn load_own(&self) -> u32 {
        // Both indices start at 0 on a fresh socket; read whichever the ring is ours to move.
        self.atomic(self.producer).load(Ordering::Relaxed)
    }

    /// The kernel asked to be woken (`XDP_RING_NEED_WAKEUP`).
    pub(super) fn needs_wakeup(&self) -> bool {
        self.atomic(self.flags).load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    // ---- rings we produce into (fill, TX) ----

    /// Free entries, reading the kernel's consumer index only when the cached view is short.
    pub(super) fn free(&mut self, want: u32) -> u32 {
        let free = self.size - self.local.wrapping_sub(self.seen);
        if free >= want {
            return free;
        }
        self.seen = self.atomic(self.consumer).load(Ordering::Acquire);
        self.size - self.local.wrapping_sub(self.seen)
    }

    /// Entries produced and not yet consumed by the kernel.
    pub(super) fn outstanding(&mut self) -> u32 {
        self.seen = self.atomic(self.consumer).load(Ordering::Acquire);
        self.local.wrapping_sub(self.seen)
    }

    /// Writes a fill/completion entry (a UMEM address) at producer position `local + i`.
    pub(super) fn put_addr(&mut self, i: u32, addr: u64) {
        let idx = (self.local.wrapping_add(i) & self.mask) as usize;
        // SAFETY: `idx <= mask`, the ring holds `size` u64 entries from `desc`, and entries
        // between the kernel's consumer and our unpublished producer are ours to write.
        unsafe { self.desc.cast::<u64>().add(idx).write(addr) }
    }

    /// Writes a TX descriptor at producer position `local + i`.
    pub(super) fn put_desc(&mut self, i: u32, addr: u64, len: u32) {
        let idx = (self.local.wrapping_add(i) & self.mask) as usize;
        let d = libc::xdp_desc {
            addr,
            len,
            options: 0,
        };
        // SAFETY: as in `put_addr`, with 16-byte `xdp_desc` entries.
        unsafe { self.desc.cast::<libc::xdp_desc>().add(idx).write(d) }
    }

    /// Publishes `n` written entries to the kernel.
    pub(super) fn produce(&mut self, n: u32) {
        self.local = self.local.wrapping_add(n);
        self.atomic(self.producer)
            .store(self.local, Ordering::Release);
    }

    // ---- rings we consume from (RX, completion) ----

    /// Entries the kernel has published and we have not consumed.
    pub(super) fn available(&mut self) -> u32 {
        self.seen = self.atomic(self.producer).load(Ordering::Acquire);
        self.seen.wrapping_sub(self.local)
    }

    /// The UMEM address at consumer position `local + i` (fill/completion layout).
    pub(super) fn addr_at(&self, i: u32) -> u64 {
        let idx = (self.local.wrapping_add(i) & self.mask) as usize;
        // SAFETY: `idx <= mask`; the kernel published this entry (`i < available()`) and does
        // not rewrite it until we release it.
        unsafe { self.desc.cast::<u64>().add(idx).read() }
    }

    /// The RX descriptor at consumer position `local + i`: (address, length).
    pub(super) fn desc_at(&self, i: u32) -> (u64, u32) {
        let idx = (self.local.wrapping_add(i) & self.mask) as usize;
        // SAFETY: as in `addr_at`, with 16-byte `xdp_desc` entries.
        let d = unsafe { self.desc.cast::<libc::xdp_desc>().add(idx).read() };
        (d.addr, d.len)
    }

    /// Gives `n` consumed entries back to the kernel.
    pub(super) fn release(&mut self, n: u32) {
        self.local = self.local.wrapping_add(n);
        self.atomic(self.consumer)
            .store(self.local, Ordering::Release);
    }

    /// Re-reads our own index for a ring we consume (used once after mapping).
    fn sync_consumer(&mut self) {
        self.local = self.atomic(self.consumer).load(Ordering::Relaxed);
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region mapped in `Ring::map`; no reference into it
        // outlives the ring (all accessors borrow `self`).
        unsafe { libc::munmap(self.map.as_ptr(), self.map_len) };
    }
}

/// Sizes of the four rings (powers of two).
#[derive(Clone, Copy, Debug)]
pub(super) struct RingSizes {
    pub fill: u32,
    pub comp: u32,
    pub rx: u32,
    pub tx: u32,
}

/// An AF_XDP socket with its UMEM registered and its rings mapped; not yet bound.
pub(super) struct XskSocket {
    // Field order is drop order: the rings are unmapped before the socket closes.
    pub fill: Ring,
    pub comp: Ring,
    pub rx: Ring,
    pub tx: Ring,
    fd: OwnedFd,
}

/// Why a socket step failed, and the kernel's error.
#[derive(Debug)]
pub(super) struct SocketError {
    pub step: &'static str,
    pub source: io::Error,
}

fn step<T>(step: &'static str, r: io::Result<T>) -> Result<T, SocketError> {
    r.map_err(|source| SocketError { step, source })
}

fn setsockopt<T>(fd: RawFd, opt: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: passes a pointer to a live `T` and its exact size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A new AF_XDP socket (no UMEM yet): the probe for "does this kernel have AF_XDP".
pub(super) fn open() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor the kernel just created for us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl XskSocket {
    /// Creates the socket, registers `umem_len` bytes at `umem` as its UMEM in `chunk`-byte
    /// frames, sizes and maps the rings.
    ///
    /// # Safety
    /// `umem` must be page-aligned, `umem_len` bytes long, and stay allocated (and not be
    /// handed to anything else that assumes exclusive access to bytes the kernel writes) until
    /// the returned socket is dropped: the kernel pins and writes into it.
    pub(super) unsafe fn new(
        umem: *mut u8,
        umem_len: usize,
        chunk: u32,
        sizes: RingSizes,
    ) -> Result<XskSocket, SocketError> {
        let fd = step("creating the AF_XDP socket", open())?;
        let raw = fd.as_raw_fd();
        let reg = libc::xdp_umem_reg {
            addr: umem as u64,
            len: umem_len as u64,
            chunk_size: chunk,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        step(
            "registering the UMEM",
            setsockopt(raw, libc::XDP_UMEM_REG, &reg),
        )?;
        step(
            "sizing the fill ring",
            setsockopt(raw, libc::XDP_UMEM_FILL_RING, &sizes.fill),
        )?;
        step(
            "sizing the completion ring",
            setsockopt(raw, libc::XDP_UMEM_COMPLETION_RING, &sizes.comp),
        )?;
        step(
            "sizing the RX ring",
            setsockopt(raw, libc::XDP_RX_RING, &sizes.rx),
        )?;
        step(
            "sizing the TX ring",
            setsockopt(raw, libc::XDP_TX_RING, &sizes.tx),
        )?;
        // Copy mode sends at most this many frames per wakeup; ask for a whole ring (6.17+).
        let _ = setsockopt(raw, XDP_MAX_TX_SKB_BUDGET, &sizes.tx);
        // SAFETY: all-zero is a valid `xdp_mmap_offsets` (plain integers).
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: `off` and `len` are live locals; the kernel writes at most `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&mut off as *mut libc::xdp_mmap_offsets).cast(),
                &mut len,
            )
        };
        if r < 0 || len as usize != std::mem::size_of::<libc::xdp_mmap_offsets>() {
            return Err(SocketError {
                step: "reading the ring offsets (kernel older than 5.4?)",
                source: io::Error::last_os_error(),
            });
        }
        let desc = std::mem::size_of::<libc::xdp_desc>();
        let fill = step(
            "mapping the fill ring",
            Ring::map(raw, &off.fr, sizes.fill, 8, libc::XDP_UMEM_PGOFF_FILL_RING),
        )?;
        let mut comp = step(
            "mapping the completion ring",
            Ring::map(
                raw,
                &off.cr,
                sizes.comp,
                8,
                libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            ),
        )?;
        let mut rx = step(
            "mapping the RX ring",
            Ring::map(raw, &off.rx, sizes.rx, desc, libc::XDP_PGOFF_RX_RING as u64),
        )?;
        let tx = step(
            "mapping the TX ring",
            Ring::map(raw, &off.tx, sizes.tx, desc, libc::XDP_PGOFF_TX_RING as u64),
        )?;
        comp.sync_consumer();
        rx.sync_consumer();
        Ok(XskSocket {
            fill,
            comp,
            rx,
            tx,
            fd,
        })
    }

    /// Binds to queue `queue` of interface `ifindex` (`flags`: `XDP_COPY`, need-wakeup).
    pub(super) fn bind(&self, ifindex: u32, queue: u32, flags: u16) -> io::Result<()> {
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: a live `sockaddr_xdp` and its size.
        let r = unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_xdp).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    pub(super) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Whether the kernel bound the socket in zero-copy mode.
    pub(super) fn zero_copy(&self) -> bool {
        let mut opts = libc::xdp_options { flags: 0 };
        let mut len = std::mem::size_of::<libc::xdp_options>() as libc::socklen_t;
        // SAFETY: live locals; the kernel writes at most `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_OPTIONS,
                (&mut opts as *mut libc::xdp_options).cast(),
                &mut len,
            )
        };
        r == 0 && opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0
    }

    /// The kernel's counters for this socket (`XDP_STATISTICS`), zero if unavailable.
    pub(super) fn statistics(&self) -> libc::xdp_statistics {
        // SAFETY: all-zero is a valid `xdp_statistics` (plain integers).
        let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // SAFETY: live locals; the kernel writes at most `len` bytes (fewer on old kernels,
        // leaving the newer fields zero).
        unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                (&mut st as *mut libc::xdp_statistics).cast(),
                &mut len,
            )
        };
        st
    }

    /// Asks the kernel to send what the TX ring holds (`sendto` with no data).
    pub(super) fn kick_tx(&self) -> io::Result<()> {
        // SAFETY: a zero-length send with null buffer and address is how AF_XDP is woken.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Wakes the kernel to refill from the fill ring (`recvfrom` with no data).
    pub(super) fn kick_rx(&self) {
        // SAFETY: a zero-length, non-blocking receive with null buffer and address.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }
}
