//! The `bpf(2)` calls the XDP backend needs, made directly through `libc::syscall`: create the
//! socket map, load the program, attach it with a BPF link, put a socket in the map.
//!
//! Every object is a file descriptor owned by an [`OwnedFd`]: the link detaches the program when
//! its last descriptor closes, which the kernel does for us when the process exits however it
//! exits (`kill -9` included), so nothing stays attached to the interface. Attribute structs
//! are the prefixes of `union bpf_attr` this code uses; the kernel zero-fills the rest.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;

const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
/// `XDP_FLAGS_SKB_MODE`: the generic hook.
pub(super) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: in the driver.
pub(super) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    _target_btf_id: u32,
    _pad: u32,
}

/// `bpf(cmd, attr, sizeof attr)`; a new descriptor for commands that return one.
///
/// # Safety
/// `attr` must be the attribute struct `cmd` expects, and every address in it must point at
/// memory that stays valid and of the right size for the duration of the call.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: guaranteed by the caller; the kernel reads at most `size_of::<T>()` bytes of attr.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }
}

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().take(15).zip(name.bytes()) {
        *o = b;
    }
    out
}

/// An `XSKMAP` with `entries` slots (one per queue).
pub(super) fn create_xsk_map(entries: u32) -> io::Result<OwnedFd> {
    let mut attr = MapCreateAttr {
        map_type: BPF_MAP_TYPE_XSKMAP,
        key_size: 4,
        value_size: 4,
        max_entries: entries.max(1),
        map_name: name16("tern_xsks"),
        ..Default::default()
    };
    // SAFETY: a map-create attribute without pointers.
    unsafe { bpf(BPF_MAP_CREATE, &mut attr) }.map(owned)
}

/// Puts socket `xsk` in slot `queue` of the socket map.
pub(super) fn set_xsk(map: &OwnedFd, queue: u32, xsk: libc::c_int) -> io::Result<()> {
    let key = queue;
    let value = xsk as u32;
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: &key as *const u32 as u64,
        value: &value as *const u32 as u64,
        ..Default::default()
    };
    // SAFETY: `key` and `value` are live locals of the map's key and value size (4 bytes each).
    unsafe { bpf(BPF_MAP_UPDATE_ELEM, &mut attr) }.map(|_| ())
}

/// Why the verifier refused a program: its error and the end of its log.
#[derive(Debug)]
pub(super) struct LoadError {
    pub source: io::Error,
    pub log: String,
}

/// Loads an XDP program (`insns`, 8 bytes per instruction). On a refusal it loads again with
/// the verifier log on, so the error says why.
pub(super) fn load_xdp(insns: &[u8], name: &str) -> Result<OwnedFd, LoadError> {
    let license = CString::new("Apache-2.0").expect("no NUL");
    let attempt = |log: Option<&mut [u8]>| {
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: (insns.len() / 8) as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            prog_name: name16(name),
            expected_attach_type: BPF_XDP,
            ..Default::default()
        };
        if let Some(buf) = log {
            attr.log_level = 1;
            attr.log_size = buf.len() as u32;
            attr.log_buf = buf.as_mut_ptr() as u64;
        }
        // SAFETY: `insns`, `license` and the log buffer outlive the call and have the lengths
        // given in `attr`.
        unsafe { bpf(BPF_PROG_LOAD, &mut attr) }.map(owned)
    };
    match attempt(None) {
        Ok(fd) => Ok(fd),
        Err(source) => {
            let mut buf = vec![0u8; 64 * 1024];
            let _ = attempt(Some(&mut buf));
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let text = String::from_utf8_lossy(&buf[..end]);
            let tail: Vec<&str> = text.lines().rev().take(3).collect();
            let log = tail.into_iter().rev().collect::<Vec<_>>().join(" / ");
            Err(LoadError { source, log })
        }
    }
}

/// Attaches `prog` to interface `ifindex` with a BPF link (`flags`: [`XDP_FLAGS_DRV_MODE`] or
/// [`XDP_FLAGS_SKB_MODE`]). The program stays attached while the returned descriptor is open.
pub(super) fn attach_xdp_link(prog: &OwnedFd, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type: BPF_XDP,
        flags,
        ..Default::default()
    };
    // SAFETY: a link-create attribute without pointers.
    unsafe { bpf(BPF_LINK_CREATE, &mut attr) }.map(owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_layouts_match_union_bpf_attr() {
        // Offsets from linux/bpf.h: the fields the kernel reads must be where it reads them.
        assert_eq!(std::mem::size_of::<MapElemAttr>(), 32);
        assert_eq!(std::mem::offset_of!(MapElemAttr, key), 8);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, log_buf), 32);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(std::mem::offset_of!(MapCreateAttr, map_name), 28);
        assert_eq!(std::mem::offset_of!(LinkCreateAttr, flags), 12);
        assert_eq!(name16("tern_xsks_and_more_than_15"), *b"tern_xsks_and_m\0");
    }
}
