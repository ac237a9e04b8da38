//! The AF_XDP backend: media frames go from the NIC queue straight into the worker's memory and
//! back out without the kernel's IP/UDP stack.
//!
//! [`XdpAttachment`] is the datapath-wide part, set up once before the workers start: it checks
//! that this machine can do it (interface, capabilities, AF_XDP, one receive queue per worker),
//! builds the XDP program for the media address and worker ports (`program`), loads it and
//! attaches it to the interface with a BPF link (`bpf`), and holds the socket map and the
//! hand-over inboxes (`handover`). Each worker then builds its own [`XdpIo`](backend::XdpIo):
//! one AF_XDP socket bound to the queue with the worker's index, whose UMEM is the worker's
//! send arena with the receive frames in front (`ring`, `backend`).
//!
//! Every frame the program does not redirect (HTTP, SSH, ARP, ICMP, other UDP) reaches the
//! kernel untouched. The link is the only thing attached to the interface, and it goes away
//! with the process's last descriptor, also after `kill -9`. An operator who asked for xdp gets
//! a one-line error naming what is missing, never a silent fallback to another backend.

mod backend;
mod bpf;
mod frame;
mod handover;
mod iface;
mod program;
mod ring;

use std::fmt;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;

pub(super) use backend::XdpIo;
use handover::Handover;

use super::Waker;

/// Where the XDP program runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpMode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`); an interface without native XDP is an error.
    #[default]
    Native,
    /// The kernel's generic hook (`XDP_FLAGS_SKB_MODE`), after an skb is built: works on any
    /// interface, in copy mode, slower.
    Generic,
}

impl XdpMode {
    /// The config spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        }
    }
}

/// Why the xdp backend cannot run here. `Display` is the one line `tern serve` prints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XdpError {
    /// `io = "xdp"` without `media.interface`.
    #[error("io = \"xdp\" needs media.interface (the network interface media arrives on)")]
    NoInterface,
    /// The interface does not exist in this network namespace.
    #[error("media.interface {0:?}: no such network interface")]
    NoSuchInterface(String),
    /// The media address is a wildcard.
    #[error("media.bind {0}: io = \"xdp\" needs the relay's own address on the interface, not a wildcard")]
    WildcardBind(IpAddr),
    /// The process lacks capabilities.
    #[error(
        "io = \"xdp\" needs CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF (run as root, or grant them \
         with AmbientCapabilities=); this process lacks {}",
        .0.join(", ")
    )]
    MissingCapabilities(Vec<&'static str>),
    /// The kernel has no AF_XDP sockets.
    #[error("this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS): {0}")]
    NoAfXdp(#[source] std::io::Error),
    /// Queue count and worker count differ.
    #[error(
        "media.interface {interface} has {queues} receive queue(s) but there are {workers} \
         worker(s): each queue needs its own worker; set the queues to {workers} (tern-tune \
         --apply, or ethtool -L {interface} combined {workers}) or run {queues} worker(s)"
    )]
    QueueMismatch {
        /// The interface.
        interface: String,
        /// Its receive queues.
        queues: u32,
        /// Workers configured.
        workers: usize,
    },
    /// Native mode on a driver without native XDP.
    #[error(
        "media.interface {interface} (driver {driver}) has no native XDP; set media.xdp_mode = \
         \"generic\" to use the kernel's generic XDP hook (slower)"
    )]
    NoNativeXdp {
        /// The interface.
        interface: String,
        /// Its driver, or "unknown".
        driver: String,
    },
    /// Another program holds the interface's XDP hook.
    #[error(
        "another XDP program is already attached to {interface} ({source}); detach it first \
         (ip link set dev {interface} xdp off)"
    )]
    AlreadyAttached {
        /// The interface.
        interface: String,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// The verifier refused the program (a bug: the program is built by Tern).
    #[error("the kernel refused the XDP program: {source} (verifier: {log})")]
    Verifier {
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
        /// The end of the verifier's log.
        log: String,
    },
    /// Another step failed.
    #[error("xdp setup failed while {step}: {source}")]
    Setup {
        /// The step.
        step: &'static str,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
}

/// The XDP program attached to the media interface, the socket map it redirects into, and what
/// the workers' sockets share. Kept alive (`Arc`) by every worker's `XdpIo`: the program is
/// detached when the last one is dropped.
pub struct XdpAttachment {
    interface: String,
    ifindex: u32,
    mode: XdpMode,
    mac: [u8; 6],
    mtu: u32,
    ip: IpAddr,
    ports: Vec<u16>,
    map: OwnedFd,
    // The link holds the program attached; the program descriptor is kept for symmetry.
    _link: OwnedFd,
    _prog: OwnedFd,
    handover: Handover,
    wakers: Arc<[Arc<Waker>]>,
}

impl fmt::Debug for XdpAttachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XdpAttachment")
            .field("interface", &self.interface)
            .field("mode", &self.mode)
            .field("ip", &self.ip)
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

impl XdpAttachment {
    /// Checks that this machine can run the xdp backend on `interface` for media to `ip` on
    /// `ports` (worker `i` owns `ports[i]` and queue `i`), then loads and attaches the program.
    /// `wakers[i]` wakes worker `i` for hand-overs.
    pub fn attach(
        interface: Option<&str>,
        mode: XdpMode,
        ip: IpAddr,
        ports: &[u16],
        wakers: Arc<[Arc<Waker>]>,
    ) -> Result<XdpAttachment, XdpError> {
        let interface = interface.ok_or(XdpError::NoInterface)?;
        let ifindex =
            iface::index(interface).ok_or_else(|| XdpError::NoSuchInterface(interface.into()))?;
        if ip.is_unspecified() {
            return Err(XdpError::WildcardBind(ip));
        }
        let missing = iface::missing_caps();
        if !missing.is_empty() {
            return Err(XdpError::MissingCapabilities(missing));
        }
        drop(ring::open().map_err(XdpError::NoAfXdp)?);
        let setup = |step| move |source| XdpError::Setup { step, source };
        let queues = iface::rx_queues(interface).unwrap_or(1);
        if queues as usize != ports.len() {
            return Err(XdpError::QueueMismatch {
                interface: interface.into(),
                queues,
                workers: ports.len(),
            });
        }
        let mac = iface::mac(interface).map_err(setup("reading the interface's MAC address"))?;
        let mtu = iface::mtu(interface).map_err(setup("reading the interface's MTU"))?;
        let map = bpf::create_xsk_map(queues).map_err(setup("creating the socket map"))?;
        let insns = program::media_redirect(ip, ports, std::os::fd::AsRawFd::as_raw_fd(&map));
        let prog = bpf::load_xdp(&program::encode(&insns), "tern_media").map_err(|e| {
            XdpError::Verifier {
                source: e.source,
                log: e.log,
            }
        })?;
        let flags = match mode {
            XdpMode::Native => bpf::XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => bpf::XDP_FLAGS_SKB_MODE,
        };
        let link = bpf::attach_xdp_link(&prog, ifindex, flags).map_err(|source| {
            match source.raw_os_error() {
                Some(libc::EOPNOTSUPP) if mode == XdpMode::Native => XdpError::NoNativeXdp {
                    interface: interface.into(),
                    driver: iface::driver(interface).unwrap_or_else(|| "unknown".into()),
                },
                Some(libc::EBUSY) | Some(libc::EEXIST) => XdpError::AlreadyAttached {
                    interface: interface.into(),
                    source,
                },
                Some(libc::ENOSPC) => XdpError::Setup {
                    step: "attaching the XDP program (the driver lacks queues for XDP; a veth \
                           needs as many receive queues as its peer has transmit queues)",
                    source,
                },
                _ => XdpError::Setup {
                    step: "attaching the XDP program",
                    source,
                },
            }
        })?;
        Ok(XdpAttachment {
            interface: interface.into(),
            ifindex,
            mode,
            mac,
            mtu,
            ip,
            ports: ports.to_vec(),
            map,
            _link: link,
            _prog: prog,
            handover: Handover::new(ports.len()),
            wakers,
        })
    }

    /// The interface the program is attached to.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The worker that owns media port `port`.
    fn worker_of(&self, port: u16) -> Option<usize> {
        self.ports.iter().position(|&p| p == port)
    }
}

/// Whether `name` is an interface in this network namespace (for `tern check-config`).
pub fn interface_exists(name: &str) -> bool {
    iface::index(name).is_some()
}

/// Moves the calling thread into the network namespace at `path` (e.g. `/run/netns/NAME`, as
/// `ip netns add` creates it). Threads it spawns afterwards start there too. For tests and
/// benchmarks that run a relay and its peers on the two ends of a veth pair in one process.
pub fn enter_netns(path: &std::path::Path) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    // SAFETY: setns(2) on a descriptor we own; CLONE_NEWNET changes only this thread's network
    // namespace (sockets it creates from now on), which is the documented effect.
    let r = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}
