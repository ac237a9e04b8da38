//! What the XDP backend needs to know about the interface and the process before it attaches:
//! the interface index, MAC address, MTU, receive queues and driver (`ioctl`s on a throwaway
//! socket, so they answer for the calling thread's network namespace), and which capabilities
//! this process holds. Read-only: nothing here changes the interface.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const IFNAMSIZ: usize = 16;
const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GDRVINFO: u32 = 0x03;
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// Capabilities the xdp backend uses (bit numbers from linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_IPC_LOCK: u32 = 14;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// The index of interface `name` in this thread's network namespace.
pub(super) fn index(name: &str) -> Option<u32> {
    if name.is_empty() || name.len() >= IFNAMSIZ {
        return None;
    }
    let c = CString::new(name).ok()?;
    // SAFETY: a NUL-terminated name that outlives the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// `struct ifreq`: the name, then a 24-byte union.
#[repr(C)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    data: [u8; 24],
}

impl IfReq {
    fn new(name: &str) -> IfReq {
        let mut r = IfReq {
            name: [0; IFNAMSIZ],
            data: [0; 24],
        };
        for (o, b) in r.name.iter_mut().take(IFNAMSIZ - 1).zip(name.bytes()) {
            *o = b;
        }
        r
    }
}

fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor the kernel just created for us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `ioctl(sock, req, &ifreq)`.
fn ioctl(req: libc::c_ulong, r: &mut IfReq) -> io::Result<()> {
    let sock = control_socket()?;
    // SAFETY: `r` is a live, correctly sized `struct ifreq`; for SIOCETHTOOL its union holds a
    // pointer the caller keeps valid for the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), req as _, r as *mut IfReq) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The interface's hardware address.
pub(super) fn mac(name: &str) -> io::Result<[u8; 6]> {
    let mut r = IfReq::new(name);
    ioctl(libc::SIOCGIFHWADDR, &mut r)?;
    let mut mac = [0u8; 6];
    // `ifr_hwaddr` is a sockaddr: family (2 bytes), then the address.
    mac.copy_from_slice(&r.data[2..8]);
    Ok(mac)
}

/// The interface's MTU.
pub(super) fn mtu(name: &str) -> io::Result<u32> {
    let mut r = IfReq::new(name);
    ioctl(libc::SIOCGIFMTU, &mut r)?;
    Ok(u32::from_ne_bytes([
        r.data[0], r.data[1], r.data[2], r.data[3],
    ]))
}

/// `ETHTOOL_*` request on `name` with `buf` as the command struct (its first u32 is `cmd`).
fn ethtool(name: &str, buf: &mut [u32]) -> io::Result<()> {
    let mut r = IfReq::new(name);
    let ptr = buf.as_mut_ptr() as u64;
    r.data[..8].copy_from_slice(&ptr.to_ne_bytes());
    ioctl(SIOCETHTOOL, &mut r)
}

/// Receive queues in use (`ethtool -l`: combined + rx-only channels), or `None` if the driver
/// does not say.
pub(super) fn rx_queues(name: &str) -> Option<u32> {
    // struct ethtool_channels: cmd, max_rx, max_tx, max_other, max_combined, rx_count,
    // tx_count, other_count, combined_count.
    let mut ch = [0u32; 9];
    ch[0] = ETHTOOL_GCHANNELS;
    ethtool(name, &mut ch).ok()?;
    let n = ch[5] + ch[8];
    (n > 0).then_some(n)
}

/// The driver's name (`ethtool -i`), if it reports one.
pub(super) fn driver(name: &str) -> Option<String> {
    // struct ethtool_drvinfo: cmd, then driver[32], ... (196 bytes in all).
    let mut info = [0u32; 49];
    info[0] = ETHTOOL_GDRVINFO;
    ethtool(name, &mut info).ok()?;
    let bytes: Vec<u8> = info[1..9].iter().flat_map(|w| w.to_ne_bytes()).collect();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let s = String::from_utf8_lossy(&bytes[..end]).into_owned();
    (!s.is_empty()).then_some(s)
}

/// This process's effective capabilities (bit mask from `/proc/self/status`).
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// The capabilities the xdp backend needs and this process lacks, by name.
pub(super) fn missing_caps() -> Vec<&'static str> {
    missing_from(effective_caps())
}

fn missing_from(eff: u64) -> Vec<&'static str> {
    let has = |cap: u32| eff & (1u64 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    if !has(CAP_NET_RAW) {
        missing.push("CAP_NET_RAW");
    }
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_BPF");
    }
    missing
}

/// Whether UMEM pages are exempt from RLIMIT_MEMLOCK (CAP_IPC_LOCK).
pub(super) fn can_lock_memory() -> bool {
    effective_caps() & (1u64 << CAP_IPC_LOCK) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_named() {
        assert_eq!(missing_from(0), ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_BPF"]);
        let root = 0x1ff_ffff_ffffu64;
        assert!(missing_from(root).is_empty());
        // CAP_SYS_ADMIN stands in for CAP_BPF (kernels before 5.8 have no CAP_BPF).
        let old = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW) | (1 << CAP_SYS_ADMIN);
        assert!(missing_from(old).is_empty());
    }

    #[test]
    fn loopback_is_found_and_bogus_names_are_not() {
        assert!(index("lo").is_some());
        assert_eq!(index("no-such-if-13"), None);
        assert_eq!(index("a-name-far-longer-than-ifnamsiz"), None);
        assert_eq!(index(""), None);
        assert_eq!(mac("lo").unwrap(), [0; 6]);
        assert!(mtu("lo").unwrap() >= 1500);
    }
}
