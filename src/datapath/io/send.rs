//! [`SendQueue`]: the send arena and the FIFO of packets waiting to be sent.
//!
//! The arena is `send_slots` buffers of `buffer_size` bytes allocated once. A slot is free, handed
//! out by [`SendQueue::slot`], queued, or in flight (owned by the kernel until its completion).
//! The backends take packets from the front in GSO groups ([`SendQueue::group`]) and give slots
//! back with `release` once the kernel is done with them. Packets for an ICE-TCP connection (see
//! `tcp::is_tcp`) wait in a queue of their own until the backend frames them into that
//! connection's send ring. Nothing here allocates after `new`.

use std::alloc::{self, Layout};
use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{MAX_GSO_BYTES, MAX_GSO_SEGMENTS, MAX_GSO_SEGMENT_SIZE};

/// The send buffers. Shared (`Arc`) between the queue that hands slots out and the backend whose
/// in-flight sends read them, so the memory outlives both whatever order they are dropped in.
pub(super) struct SendArena {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the arena is plain memory; which slot may be touched by whom is decided by the
// `SendQueue` slot states (one owner at a time), not by which thread holds the `Arc`.
unsafe impl Send for SendArena {}
// SAFETY: as above; the arena itself never hands out references, only raw pointers.
unsafe impl Sync for SendArena {}

impl SendArena {
    fn new(len: usize, align: usize) -> SendArena {
        let layout = Layout::from_size_align(len.max(1), align).expect("send arena layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        SendArena { ptr, layout }
    }

    /// Start of the arena.
    pub(super) fn base(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length of the arena in bytes.
    pub(super) fn len(&self) -> usize {
        self.layout.size()
    }
}

/// Where the slots lie in the arena: slot `i` is `usable` bytes at `offset + i * stride`. The
/// XDP backend makes the arena its UMEM, with receive frames before the slots and room for
/// Ethernet/IP/UDP headers in front of each slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SlotLayout {
    /// Bytes from the arena's start to slot 0.
    pub offset: usize,
    /// Bytes from one slot to the next.
    pub stride: usize,
    /// Bytes of each slot handed out by `slot()`.
    pub usable: usize,
    /// Total arena length (at least `offset + (slots - 1) * stride + usable`).
    pub arena_len: usize,
    /// Arena alignment.
    pub align: usize,
}

impl Drop for SendArena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the last `Arc` is gone, so no queue and no
        // in-flight send refers to it any more.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// One queued packet.
#[derive(Clone, Copy, Debug)]
pub(super) struct Queued {
    pub slot: u32,
    pub len: u32,
    pub dst: SocketAddr,
}

/// Outgoing packets queued by the worker; the io layer owns the arena.
pub struct SendQueue {
    arena: Arc<SendArena>,
    buffer_size: usize,
    /// Bytes from the arena's start to slot 0, and from one slot to the next.
    offset: usize,
    stride: usize,
    slots: usize,
    free: Vec<u32>,
    queue: VecDeque<Queued>,
    /// Packets for ICE-TCP connections.
    tcp: VecDeque<Queued>,
    pending: Option<u32>,
    full: u64,
    id: u64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl SendQueue {
    pub(super) fn new(slots: usize, buffer_size: usize) -> SendQueue {
        SendQueue::with_layout(
            slots,
            SlotLayout {
                offset: 0,
                stride: buffer_size,
                usable: buffer_size,
                arena_len: slots * buffer_size,
                align: 64,
            },
        )
    }

    /// A queue of `slots` slots laid out as `layout` says.
    pub(super) fn with_layout(slots: usize, layout: SlotLayout) -> SendQueue {
        debug_assert!(layout.usable <= layout.stride);
        debug_assert!(
            layout.offset + slots.saturating_sub(1) * layout.stride + layout.usable
                <= layout.arena_len
        );
        SendQueue {
            arena: Arc::new(SendArena::new(layout.arena_len, layout.align)),
            buffer_size: layout.usable,
            offset: layout.offset,
            stride: layout.stride,
            slots,
            free: (0..slots as u32).rev().collect(),
            queue: VecDeque::with_capacity(slots),
            tcp: VecDeque::with_capacity(slots),
            pending: None,
            full: 0,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// A free send buffer of `buffer_size` bytes, or `None` when every slot is queued or in
    /// flight (caller drops and counts). Calling it again before [`commit`](Self::commit)
    /// returns the same buffer.
    pub fn slot(&mut self) -> Option<&mut [u8]> {
        let slot = match self.pending {
            Some(s) => s,
            None => match self.free.pop() {
                Some(s) => {
                    self.pending = Some(s);
                    s
                }
                None => {
                    self.full += 1;
                    return None;
                }
            },
        };
        let off = self.offset + slot as usize * self.stride;
        // SAFETY: `slot < slots`, so the range lies inside the arena (`with_layout`); the slot is in no other
        // state (not free, queued or in flight), so this is the only reference to its bytes, and
        // it borrows `self` mutably, so `commit` cannot queue the slot while it is alive.
        Some(unsafe {
            std::slice::from_raw_parts_mut(self.arena.base().add(off), self.buffer_size)
        })
    }

    /// Queues the first `len` bytes (at most `buffer_size`) of the buffer last returned by
    /// `slot()` for `dst`. Without a preceding `slot()` it does nothing.
    pub fn commit(&mut self, len: usize, dst: SocketAddr) {
        debug_assert!(self.pending.is_some(), "SendQueue::commit without slot()");
        if let Some(slot) = self.pending.take() {
            let len = len.min(self.buffer_size) as u32;
            if super::tcp::is_tcp(&dst) {
                self.tcp.push_back(Queued { slot, len, dst });
            } else {
                self.queue.push_back(Queued { slot, len, dst });
            }
        }
    }

    /// Packets queued for UDP and not yet handed to the kernel.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Packets queued for ICE-TCP connections, not yet framed into their send rings.
    pub fn tcp_queued(&self) -> usize {
        self.tcp.len()
    }

    /// The destination of the `i`th packet queued for a TCP connection.
    pub(super) fn tcp_dst(&self, i: usize) -> SocketAddr {
        self.tcp[i].dst
    }

    /// Takes the front TCP packet off its queue; its slot is then in flight until `release`.
    pub(super) fn pop_tcp(&mut self) -> Option<Queued> {
        self.tcp.pop_front()
    }

    /// The bytes of a packet taken off a queue (in flight, not yet released).
    pub(super) fn sent_bytes(&self, q: &Queued) -> &[u8] {
        // SAFETY: `q.slot < slots` and `q.len <= buffer_size`, so the range lies inside the
        // arena; the slot is in flight (popped, not released), so no `&mut` to it exists.
        unsafe { std::slice::from_raw_parts(self.slot_ptr(q.slot), q.len as usize) }
    }

    /// Slots free to be handed out by `slot()`.
    pub fn free_slots(&self) -> usize {
        self.free.len() + usize::from(self.pending.is_some())
    }

    /// Send arena capacity in packets.
    pub fn capacity(&self) -> usize {
        self.slots
    }

    /// Bytes per send buffer.
    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    pub(super) fn full_count(&self) -> u64 {
        self.full
    }

    pub(super) fn id(&self) -> u64 {
        self.id
    }

    pub(super) fn arena(&self) -> &Arc<SendArena> {
        &self.arena
    }

    /// The `i`th queued packet from the front.
    pub(super) fn get(&self, i: usize) -> Queued {
        self.queue[i]
    }

    /// Start of a slot's bytes.
    pub(super) fn slot_ptr(&self, slot: u32) -> *mut u8 {
        // `slot < slots`, so this stays inside the arena (wrapping_add keeps it safe code).
        self.arena.base().wrapping_add(self.slot_offset(slot))
    }

    /// A slot's position in the arena, in bytes.
    pub(super) fn slot_offset(&self, slot: u32) -> usize {
        self.offset + slot as usize * self.stride
    }

    /// Takes the front packet off the queue; its slot is then in flight until `release`.
    pub(super) fn pop_front(&mut self) -> Option<Queued> {
        self.queue.pop_front()
    }

    /// Returns an in-flight slot to the free list.
    pub(super) fn release(&mut self, slot: u32) {
        debug_assert!(self.free.len() < self.slots);
        self.free.push(slot);
    }

    /// How many packets from queue index `start` form one send: with `gso`, a run of packets to
    /// the same destination and of the same length (the last may be shorter), at most
    /// `MAX_GSO_SEGMENTS` and `MAX_GSO_BYTES` in all, of at most `MAX_GSO_SEGMENT_SIZE` bytes
    /// each; else 1. Returns (count, segment size).
    pub(super) fn group(&self, start: usize, gso: bool) -> (usize, u32) {
        let first = self.queue[start];
        let seg = first.len;
        let mut n = 1;
        if !gso || seg == 0 || seg as usize > MAX_GSO_SEGMENT_SIZE {
            return (1, seg);
        }
        let mut total = seg as usize;
        while n < MAX_GSO_SEGMENTS {
            let Some(p) = self.queue.get(start + n) else {
                break;
            };
            if p.dst != first.dst || p.len > seg || p.len == 0 {
                break;
            }
            if total + p.len as usize > MAX_GSO_BYTES {
                break;
            }
            n += 1;
            total += p.len as usize;
            if p.len < seg {
                break;
            }
        }
        (n, seg)
    }
}

impl fmt::Debug for SendQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendQueue")
            .field("capacity", &self.slots)
            .field("buffer_size", &self.buffer_size)
            .field("queued", &self.queue.len())
            .field("free", &self.free_slots())
            .finish()
    }
}

/// A `UDP_SEGMENT` control message: `cmsghdr` then the `u16` segment size, padded to
/// `CMSG_SPACE(2)`.
#[repr(C)]
pub(super) struct GsoCmsg {
    hdr: libc::cmsghdr,
    segment: u16,
    _pad: [u8; 6],
}

impl GsoCmsg {
    pub(super) const SPACE: usize = std::mem::size_of::<GsoCmsg>();

    pub(super) fn new() -> GsoCmsg {
        GsoCmsg {
            hdr: libc::cmsghdr {
                cmsg_len: (std::mem::size_of::<libc::cmsghdr>() + 2) as _,
                cmsg_level: libc::SOL_UDP,
                cmsg_type: libc::UDP_SEGMENT,
            },
            segment: 0,
            _pad: [0; 6],
        }
    }

    pub(super) fn set_segment(&mut self, size: u32) {
        self.segment = size as u16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(items: &[(u32, u16)]) -> SendQueue {
        let mut s = SendQueue::new(128, 2048);
        for &(len, port) in items {
            s.slot().unwrap();
            s.commit(len as usize, SocketAddr::from(([127, 0, 0, 1], port)));
        }
        s
    }

    #[test]
    fn groups_equal_runs_with_a_shorter_tail() {
        let s = q(&[
            (100, 1),
            (100, 1),
            (60, 1),
            (100, 1),
            (100, 2),
            (100, 2),
            (200, 2),
        ]);
        assert_eq!(s.group(0, true), (3, 100));
        assert_eq!(s.group(3, true), (1, 100));
        assert_eq!(s.group(4, true), (2, 100));
        assert_eq!(s.group(6, true), (1, 200));
        assert_eq!(s.group(0, false), (1, 100));
    }

    #[test]
    fn groups_are_capped() {
        let s = q(&[(1000, 1); 100]);
        assert_eq!(s.group(0, true), (64, 1000));
        let s = q(&[(1400, 1); 100]);
        assert_eq!(s.group(0, true), (46, 1400)); // 46 * 1400 = 64400 <= 65507
        let s = q(&[(1453, 1); 4]);
        assert_eq!(
            s.group(0, true),
            (1, 1453),
            "larger than a 1500-byte MTU: singly"
        );
    }

    #[test]
    fn slot_is_none_when_full_and_reused_until_commit() {
        let mut s = SendQueue::new(2, 16);
        s.slot().unwrap()[0] = 7;
        assert_eq!(s.slot().unwrap()[0], 7, "same slot until commit");
        s.commit(1, SocketAddr::from(([127, 0, 0, 1], 9)));
        s.slot().unwrap();
        s.commit(1, SocketAddr::from(([127, 0, 0, 1], 9)));
        assert!(s.slot().is_none());
        assert_eq!(s.full_count(), 1);
        let p = s.pop_front().unwrap();
        s.release(p.slot);
        assert!(s.slot().is_some());
    }
}
