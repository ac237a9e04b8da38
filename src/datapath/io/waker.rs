//! [`Waker`]: an eventfd that other threads write to interrupt a worker waiting in
//! [`UdpIo::run_once`](super::UdpIo::run_once).
//!
//! A `pending` flag makes repeated wakes cheap: only the first wake after the worker noticed the
//! previous one writes to the eventfd; the rest are one atomic swap.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// eventfd wrapper so other threads can wake a worker blocked in `run_once`.
///
/// `Send + Sync`; share it as `Arc<Waker>`. [`wake`](Self::wake) is at most one `write(2)`.
pub struct Waker {
    fd: OwnedFd,
    pending: AtomicBool,
}

impl Waker {
    /// A new non-blocking, close-on-exec eventfd.
    pub fn new() -> io::Result<Waker> {
        // SAFETY: eventfd takes no pointers; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Waker {
            fd,
            pending: AtomicBool::new(false),
        })
    }

    /// Wakes the worker: its current or next wait in `run_once` returns promptly. Anything the
    /// caller published before `wake` is visible to the worker when `run_once` returns.
    pub fn wake(&self) {
        if self.pending.swap(true, Ordering::AcqRel) {
            return; // A write is already pending and the worker has not consumed it yet.
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live local u64 to our own eventfd; the only possible
        // failure (EAGAIN at a saturated counter) still leaves the eventfd readable.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    pub(super) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Called by the worker when it has seen the eventfd readable, before it reads it: later
    /// wakes write again. Acquire pairs with `wake`'s release.
    pub(super) fn clear(&self) {
        self.pending.swap(false, Ordering::AcqRel);
    }

    /// Reads (resets) the eventfd counter; a no-op when it is zero.
    pub(super) fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live local u64 from our own non-blocking eventfd.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waker")
            .field("fd", &self.fd.as_raw_fd())
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .finish()
    }
}
