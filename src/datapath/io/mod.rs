//! UDP I/O for one worker: receive batches of datagrams, send batches of packets.
//!
//! [`UdpIo`] owns a worker's bound UDP socket and every buffer the kernel reads or writes: a
//! provided buffer ring for receives and a send arena ([`SendQueue`]) for sends. It drives either
//! io_uring (one multishot `RECVMSG` on a provided buffer ring, one `io_uring_enter` per batch)
//! or, where io_uring is unavailable, `recvmmsg`/`sendmmsg` with `poll(2)`; the API above it is
//! the same. Consecutive equal-sized packets to one destination leave as one UDP GSO send.
//! The third backend, AF_XDP (`xdp`), bypasses the kernel's UDP stack: frames from the NIC queue
//! into the send arena's memory and back, headers written by the worker.
//! With [`UdpIo::attach_tcp`] it also owns the worker's ICE-TCP listener and connections
//! (`tcp`), driven by the same ring or poll (with xdp, by `poll(2)` beside the XSK socket: TCP
//! is not redirected by the XDP program and reaches the kernel's stack); the worker sees their
//! frames as datagrams.
//!
//! This is the only module of the crate allowed `unsafe`: every block says why it is sound in a
//! `// SAFETY:` comment. It never allocates per packet or per batch after [`UdpIo::new`], never
//! blocks except in the wait of [`UdpIo::run_once`], and never logs per packet.
#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod addr;
mod mmsg;
mod send;
mod tcp;
mod uring;
mod waker;
mod xdp;

use std::fmt;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use send::SendQueue;
pub use tcp::{is_tcp, peer_addr, TcpConfig, TcpStats};
pub use waker::Waker;
pub use xdp::{enter_netns, interface_exists, XdpAttachment, XdpError, XdpMode};

/// Largest number of UDP segments in one GSO send (the kernel's `UDP_MAX_SEGMENTS` is 64 on
/// older kernels).
pub const MAX_GSO_SEGMENTS: usize = 64;
/// Largest total payload of one GSO send: the largest UDP payload over IPv4.
pub const MAX_GSO_BYTES: usize = 65_507;
/// Largest packet sent as a GSO segment: a UDP payload that fits a 1500-byte MTU over IPv6. The
/// kernel refuses GSO segments larger than the path MTU, so bigger packets are sent singly rather
/// than making one refusal disable GSO for good.
pub const MAX_GSO_SEGMENT_SIZE: usize = 1452;

/// Receive and send buffer requested for each worker socket (the kernel caps it at
/// `net.core.rmem_max` / `wmem_max`).
pub const SOCKET_BUFFER: usize = 32 << 20;

/// Which backend [`UdpIo::new`] should use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IoMode {
    /// io_uring if this kernel has everything it needs, else `recvmmsg`/`sendmmsg` (logged once).
    #[default]
    Auto,
    /// io_uring or an error saying what is missing.
    Uring,
    /// `recvmmsg`/`sendmmsg` with `poll(2)`.
    Mmsg,
    /// AF_XDP sockets on [`IoConfig::interface`], set up by the datapath
    /// ([`XdpAttachment`], [`UdpIo::new_xdp`]).
    Xdp,
}

impl IoMode {
    /// The config spelling of this mode.
    pub fn as_str(&self) -> &'static str {
        match self {
            IoMode::Auto => "auto",
            IoMode::Uring => "uring",
            IoMode::Mmsg => "mmsg",
            IoMode::Xdp => "xdp",
        }
    }
}

/// An unknown [`IoMode`] name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown io mode {0:?}: expected one of \"auto\", \"uring\", \"mmsg\", \"xdp\"")]
pub struct ParseIoModeError(pub String);

impl FromStr for IoMode {
    type Err = ParseIoModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(IoMode::Auto),
            "uring" => Ok(IoMode::Uring),
            "mmsg" => Ok(IoMode::Mmsg),
            "xdp" => Ok(IoMode::Xdp),
            other => Err(ParseIoModeError(other.to_owned())),
        }
    }
}

impl fmt::Display for IoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The backend a [`UdpIo`] actually uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoKind {
    /// io_uring with a multishot receive on a provided buffer ring.
    Uring,
    /// `recvmmsg`/`sendmmsg` with `poll(2)`.
    Mmsg,
    /// AF_XDP: frames straight from the NIC queue, Ethernet/IP/UDP built by the worker.
    Xdp,
}

impl IoKind {
    /// `"uring"`, `"mmsg"` or `"xdp"`, for logs and metrics labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            IoKind::Uring => "uring",
            IoKind::Mmsg => "mmsg",
            IoKind::Xdp => "xdp",
        }
    }
}

impl fmt::Display for IoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Configuration of one worker's UDP I/O.
#[derive(Clone, Debug)]
pub struct IoConfig {
    /// Backend choice. Default: [`IoMode::Auto`].
    pub mode: IoMode,
    /// Receive buffers in the provided buffer ring (io_uring); a power of two, 1..=32768.
    /// Default: 1024.
    pub recv_buffers: u16,
    /// Bytes per receive buffer (the largest datagram delivered; longer ones are dropped and
    /// counted as truncated) and per send slot. 1..=65535. Default: 2048.
    pub buffer_size: usize,
    /// Send arena capacity in packets: queued plus in flight. 1..=1048576. Default: 16384
    /// (a keyframe burst of ~20 packets to 200 subscribers is 4000 sends in one turn).
    pub send_slots: usize,
    /// Send runs of equal-sized packets to one destination as one UDP GSO send. Default: true.
    pub gso: bool,
    /// [`IoMode::Xdp`]: the interface whose queues the workers' AF_XDP sockets bind. Default:
    /// none (required for xdp).
    pub interface: Option<String>,
    /// [`IoMode::Xdp`]: where the XDP program runs. Default: [`XdpMode::Native`].
    pub xdp_mode: XdpMode,
}

impl Default for IoConfig {
    fn default() -> Self {
        IoConfig {
            mode: IoMode::Auto,
            recv_buffers: 1024,
            buffer_size: 2048,
            send_slots: 16384,
            gso: true,
            interface: None,
            xdp_mode: XdpMode::Native,
        }
    }
}

impl IoConfig {
    /// Checks every field; the error names the bad one.
    pub fn validate(&self) -> Result<(), IoError> {
        let bad = |field: &'static str, reason: &'static str| {
            Err(IoError::InvalidConfig { field, reason })
        };
        if self.recv_buffers == 0
            || !self.recv_buffers.is_power_of_two()
            || self.recv_buffers > 32768
        {
            return bad("recv_buffers", "must be a power of two from 1 to 32768");
        }
        if self.buffer_size == 0 || self.buffer_size > 65535 {
            return bad("buffer_size", "must be from 1 to 65535 bytes");
        }
        if self.send_slots == 0 || self.send_slots > 1 << 20 {
            return bad("send_slots", "must be from 1 to 1048576");
        }
        Ok(())
    }
}

/// Counters of one [`UdpIo`], since it was created.
#[derive(Clone, Copy, Debug, Default)]
pub struct IoStats {
    /// Datagrams delivered to the callback.
    pub recv_packets: u64,
    /// Datagrams longer than `buffer_size`, dropped.
    pub recv_truncated: u64,
    /// Packets the kernel accepted for sending.
    pub send_packets: u64,
    /// UDP send operations issued (one `sendmsg`, or one message of a `sendmmsg`; a GSO send of
    /// many packets counts once).
    pub send_calls: u64,
    /// Send operations that carried more than one packet as UDP GSO segments.
    pub gso_sends: u64,
    /// The kernel rejected GSO once; every packet is sent singly since.
    pub gso_disabled: bool,
    /// Send operations that failed (their packets are counted here, not in `send_packets`).
    pub send_errors: u64,
    /// Times [`SendQueue::slot`] returned `None` because every slot was queued or in flight.
    pub send_queue_full: u64,
    /// Syscalls made by `run_once` and `flush`: `io_uring_enter`, or
    /// `recvmmsg`/`sendmmsg`/`poll` (and the eventfd read after a wake).
    pub submits: u64,
    /// Times the multishot receive ended (e.g. no free buffer: ENOBUFS) and was armed again.
    pub recv_rearms: u64,
    /// Receive completions that failed (other than running out of buffers); with xdp, frames
    /// that were not UDP to a worker of this relay.
    pub recv_errors: u64,
    /// xdp: frames the kernel could not deliver because the fill ring was empty (its count).
    pub xdp_fill_ring_empty: u64,
    /// xdp: frames the kernel dropped on receive (RX ring full, invalid), its count.
    pub xdp_rx_dropped: u64,
    /// xdp: flushes that left packets queued because the TX ring was full.
    pub xdp_tx_ring_full: u64,
    /// xdp: datagrams that arrived on this worker's queue for another worker, handed over.
    pub xdp_handed_over: u64,
    /// xdp: hand-overs dropped (the owner's inbox or this worker's buffers were full).
    pub xdp_handover_dropped: u64,
    /// xdp: packets dropped because no next hop is known for their destination.
    pub xdp_no_neighbour: u64,
    /// ICE-TCP connections, frames and drops (zero without [`UdpIo::attach_tcp`]).
    pub tcp: TcpStats,
}

/// Why [`UdpIo::new`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// A field of [`IoConfig`] is out of range.
    #[error("invalid io config: {field} {reason}")]
    InvalidConfig {
        /// The field's name.
        field: &'static str,
        /// What it must be.
        reason: &'static str,
    },
    /// The socket could not be inspected or made non-blocking.
    #[error("udp socket setup failed: {0}")]
    Socket(#[source] std::io::Error),
    /// io_uring was asked for but this kernel (or its seccomp policy) lacks something.
    #[error("io_uring is not usable here; missing: {missing}")]
    UringUnavailable {
        /// What is missing, comma-separated.
        missing: String,
    },
    /// An io_uring setup step failed.
    #[error("io_uring setup failed while {step}: {source}")]
    UringSetup {
        /// The step that failed.
        step: &'static str,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// Registering the provided buffer ring failed with ENOMEM or EPERM.
    #[error(
        "registering the io_uring receive buffer ring ({bytes} bytes of locked memory) failed: \
         {source}; this is probably RLIMIT_MEMLOCK (current limit: {limit}); raise it with \
         LimitMEMLOCK=infinity in the systemd unit, or `ulimit -l unlimited` in the shell, or \
         lower recv_buffers/buffer_size"
    )]
    BufRingMemlock {
        /// Bytes that had to be locked.
        bytes: usize,
        /// The current RLIMIT_MEMLOCK soft limit, human-readable.
        limit: String,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// An AF_XDP socket setup step failed.
    #[error("AF_XDP setup failed while {step}: {source}")]
    XdpSetup {
        /// The step that failed.
        step: &'static str,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// Registering the AF_XDP UMEM ran into the locked-memory limit.
    #[error(
        "registering the AF_XDP UMEM ({} MiB of locked memory) failed: {source}; this is \
         RLIMIT_MEMLOCK (current limit: {limit}) without CAP_IPC_LOCK; raise it with \
         LimitMEMLOCK=infinity in the systemd unit or `ulimit -l unlimited` in the shell, or \
         grant CAP_IPC_LOCK", .bytes >> 20
    )]
    XdpMemlock {
        /// Bytes that had to be locked.
        bytes: usize,
        /// The current RLIMIT_MEMLOCK soft limit, human-readable.
        limit: String,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
}

/// Which io_uring features this kernel has, for tests to require loudly: `Ok(())` or `Err` with a
/// comma-separated list of what is missing.
pub fn probe_uring() -> Result<(), String> {
    uring::probe().map_err(|missing| missing.join(", "))
}

/// One worker's UDP socket with its receive buffers and send arena.
///
/// `UdpIo` is `Send` so it can be built on one thread and moved to its worker. With io_uring the
/// ring is bound to the first thread that calls [`run_once`](Self::run_once) or
/// [`flush`](Self::flush) (single issuer); calls from any other thread after that fail with
/// `EEXIST`.
pub struct UdpIo {
    /// Outgoing packets; they leave at the next `run_once` or `flush`.
    pub tx: SendQueue,
    backend: Backend,
    local: SocketAddr,
}

enum Backend {
    Uring(Box<uring::UringIo>),
    Mmsg(Box<mmsg::MmsgIo>),
    Xdp(Box<xdp::XdpIo>),
}

static FALLBACK_LOGGED: AtomicBool = AtomicBool::new(false);

impl UdpIo {
    /// Takes ownership of a bound UDP socket (IPv4 or IPv6) and sets it non-blocking. Mode
    /// [`IoMode::Auto`] tries io_uring (probing the opcodes it needs) and falls back to
    /// `recvmmsg`/`sendmmsg`, logging once per process why; [`IoMode::Uring`] fails with a clear
    /// [`IoError`] if io_uring or an opcode is unavailable.
    pub fn new(
        socket: UdpSocket,
        waker: Option<Arc<Waker>>,
        cfg: &IoConfig,
    ) -> Result<UdpIo, IoError> {
        cfg.validate()?;
        socket.set_nonblocking(true).map_err(IoError::Socket)?;
        // A keyframe burst arriving while the worker fans out the previous one must wait in the
        // socket: the kernel default (~208 KiB, ~90 full-size datagrams) overflowed at 9 Mbit/s
        // video (UdpRcvbufErrors). The kernel caps the request at net.core.rmem_max/wmem_max,
        // which tern-tune raises; a smaller grant is not an error.
        let sock = socket2::SockRef::from(&socket);
        let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
        let local = socket.local_addr().map_err(IoError::Socket)?;
        let tx = SendQueue::new(cfg.send_slots, cfg.buffer_size);
        let backend = match cfg.mode {
            IoMode::Xdp => {
                return Err(IoError::InvalidConfig {
                    field: "mode",
                    reason: "xdp is set up by the datapath (XdpAttachment, UdpIo::new_xdp)",
                })
            }
            IoMode::Mmsg => Backend::Mmsg(Box::new(mmsg::MmsgIo::new(socket, waker, cfg, &tx))),
            IoMode::Uring => {
                Backend::Uring(Box::new(uring::UringIo::new(socket, waker, cfg, &tx)?))
            }
            IoMode::Auto => {
                let fallback = socket.try_clone().map_err(IoError::Socket)?;
                match uring::UringIo::new(socket, waker.clone(), cfg, &tx) {
                    Ok(u) => Backend::Uring(Box::new(u)),
                    Err(e) => {
                        if !FALLBACK_LOGGED.swap(true, Ordering::Relaxed) {
                            tracing::warn!("io_uring unavailable, using recvmmsg/sendmmsg: {e}");
                        }
                        Backend::Mmsg(Box::new(mmsg::MmsgIo::new(fallback, waker, cfg, &tx)))
                    }
                }
            }
        };
        Ok(UdpIo { tx, backend, local })
    }

    /// Worker `worker`'s AF_XDP I/O: a socket bound to queue `worker` of the interface `xdp` is
    /// attached to, with `socket` (bound to the worker's port on the media address) kept open
    /// to hold the port. The send arena is the socket's UMEM.
    pub fn new_xdp(
        socket: UdpSocket,
        waker: Option<Arc<Waker>>,
        cfg: &IoConfig,
        xdp: &Arc<XdpAttachment>,
        worker: usize,
    ) -> Result<UdpIo, IoError> {
        cfg.validate()?;
        let (io, tx) = xdp::XdpIo::new(socket, waker, cfg, Arc::clone(xdp), worker)?;
        let local = io.local_addr();
        if worker == 0 && !io.zero_copy() {
            eprintln!(
                "tern: xdp: {} runs AF_XDP in copy mode (its driver has no zero-copy support)",
                xdp.interface()
            );
        }
        Ok(UdpIo {
            tx,
            backend: Backend::Xdp(Box::new(io)),
            local,
        })
    }

    /// The backend in use.
    pub fn kind(&self) -> IoKind {
        match self.backend {
            Backend::Uring(_) => IoKind::Uring,
            Backend::Mmsg(_) => IoKind::Mmsg,
            Backend::Xdp(_) => IoKind::Xdp,
        }
    }

    /// The socket's bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Submits everything queued in `tx`, then waits up to `timeout` for datagrams or a wake, and
    /// calls `on_packet(data, src, &mut self.tx)` for each datagram received (`data` is the
    /// datagram, writable in place, valid only during the call). Returns the number of datagrams
    /// delivered (0 on timeout or wake). The sends queued inside the callback go out at the next
    /// `run_once` or `flush`.
    pub fn run_once(
        &mut self,
        timeout: Duration,
        mut on_packet: impl FnMut(&mut [u8], SocketAddr, &mut SendQueue),
    ) -> std::io::Result<usize> {
        match &mut self.backend {
            Backend::Uring(u) => u.run_once(&mut self.tx, timeout, &mut on_packet),
            Backend::Mmsg(m) => m.run_once(&mut self.tx, timeout, &mut on_packet),
            Backend::Xdp(x) => x.run_once(&mut self.tx, timeout, &mut on_packet),
        }
    }

    /// Submits everything queued now.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.backend {
            Backend::Uring(u) => u.flush(&mut self.tx),
            Backend::Mmsg(m) => m.flush(&mut self.tx),
            Backend::Xdp(x) => x.flush(&mut self.tx),
        }
    }

    /// A copy of the counters.
    pub fn stats(&self) -> IoStats {
        let mut s = match &self.backend {
            Backend::Uring(u) => u.stats,
            Backend::Mmsg(m) => m.stats,
            Backend::Xdp(x) => x.stats(),
        };
        s.send_queue_full = self.tx.full_count();
        s.tcp = self.tcp().map(|t| t.stats).unwrap_or_default();
        s
    }

    /// Serves ICE-TCP (RFC 6544 passive, RFC 4571 framing) on `listener` through this I/O:
    /// frames reach `run_once`'s callback under an address [`is_tcp`] recognises, and packets
    /// committed to such an address are framed onto that connection. Frames longer than
    /// `buffer_size` close their connection.
    pub fn attach_tcp(&mut self, listener: TcpListener, cfg: &TcpConfig) -> Result<(), IoError> {
        cfg.validate()?;
        let conns = tcp::Conns::new(listener, cfg, self.tx.buffer_size());
        match &mut self.backend {
            Backend::Uring(u) => u.attach_tcp(conns),
            Backend::Mmsg(m) => {
                m.attach_tcp(tcp::poll::PollTcp::new(conns).map_err(IoError::Socket)?)
            }
            Backend::Xdp(x) => {
                x.attach_tcp(tcp::poll::PollTcp::new(conns).map_err(IoError::Socket)?)
            }
        }
        Ok(())
    }

    /// The ICE-TCP listener's address, once attached.
    pub fn tcp_local_addr(&self) -> Option<SocketAddr> {
        self.tcp().and_then(tcp::Conns::local_addr)
    }

    /// Timers that need no precision (call every ~100 ms): closes ICE-TCP connections past
    /// their authentication or idle timeout.
    pub fn housekeeping(&mut self, now: Instant) {
        match &mut self.backend {
            Backend::Uring(u) => {
                if let Some(t) = u.tcp_mut() {
                    t.housekeeping(now);
                }
            }
            Backend::Mmsg(m) => {
                if let Some(t) = m.tcp.as_mut() {
                    t.housekeeping(now);
                }
            }
            Backend::Xdp(x) => {
                if let Some(t) = x.tcp.as_mut() {
                    t.housekeeping(now);
                }
            }
        }
    }

    fn tcp(&self) -> Option<&tcp::Conns> {
        match &self.backend {
            Backend::Uring(u) => u.tcp(),
            Backend::Mmsg(m) => m.tcp.as_ref().map(tcp::poll::PollTcp::conns),
            Backend::Xdp(x) => x.tcp.as_ref().map(tcp::poll::PollTcp::conns),
        }
    }
}

impl fmt::Debug for UdpIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpIo")
            .field("kind", &self.kind())
            .field("local", &self.local)
            .field("tx", &self.tx)
            .finish_non_exhaustive()
    }
}

/// The error for a `tx` that is not the queue this `UdpIo` was built with (it was swapped with
/// another `UdpIo`'s).
fn foreign_queue() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "UdpIo::tx was replaced by another UdpIo's send queue",
    )
}

/// Logs, once per process, that the kernel rejected UDP GSO.
fn log_gso_disabled(err: &std::io::Error) {
    static LOGGED: AtomicBool = AtomicBool::new(false);
    if !LOGGED.swap(true, Ordering::Relaxed) {
        tracing::warn!("the kernel rejected a UDP GSO send ({err}); sending packets singly");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_mode_round_trips() {
        for m in [IoMode::Auto, IoMode::Uring, IoMode::Mmsg, IoMode::Xdp] {
            assert_eq!(m.to_string().parse::<IoMode>().unwrap(), m);
        }
        assert_eq!(IoMode::default(), IoMode::Auto);
    }

    #[test]
    fn config_validation_names_the_field() {
        let cfg = IoConfig {
            recv_buffers: 3,
            ..IoConfig::default()
        };
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("recv_buffers"));
        let cfg = IoConfig {
            buffer_size: 0,
            ..IoConfig::default()
        };
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("buffer_size"));
        IoConfig::default().validate().unwrap();
    }

    #[test]
    fn memlock_error_says_how_to_raise_the_limit() {
        let e = IoError::BufRingMemlock {
            bytes: 16384,
            limit: "64 KiB".to_owned(),
            source: std::io::Error::from_raw_os_error(libc::ENOMEM),
        };
        let msg = e.to_string();
        for part in ["RLIMIT_MEMLOCK", "64 KiB", "LimitMEMLOCK=", "ulimit -l"] {
            assert!(msg.contains(part), "{msg:?} lacks {part}");
        }
    }
}
