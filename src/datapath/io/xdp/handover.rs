//! Datagrams that arrived on one worker's queue for a session another worker owns.
//!
//! The NIC chooses the receive queue (RSS hash, ntuple rule, or a veth's sender), so a frame for
//! worker `w`'s port may land on worker `q`'s socket. `q` copies the datagram into one of its
//! own preallocated buffers and pushes it onto `w`'s inbox; `w` delivers it as if it had
//! received it, then returns the buffer to `q`'s free list. Inboxes and free lists are bounded
//! lock-free queues (crossbeam `ArrayQueue`, as the fan-out rings are): no lock, no allocation
//! after start, and a full inbox drops and counts, never blocks.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use crossbeam::queue::ArrayQueue;

/// Largest datagram handed over: the largest UDP payload of a frame in a 2 KiB UMEM chunk.
pub(super) const HANDOVER_MAX: usize = 1800;
/// Buffers each worker owns for hand-overs, and each inbox's capacity.
const PER_WORKER: usize = 1024;

/// One handed-over datagram.
pub(super) struct Handed {
    /// The worker whose free list the buffer returns to.
    pub origin: usize,
    pub src: SocketAddr,
    pub src_mac: [u8; 6],
    pub len: usize,
    pub data: [u8; HANDOVER_MAX],
}

/// Every worker's inbox and free list.
pub(super) struct Handover {
    inboxes: Vec<ArrayQueue<Box<Handed>>>,
    free: Vec<ArrayQueue<Box<Handed>>>,
}

impl Handover {
    /// Inboxes and preallocated buffers for `workers` workers (none for a single worker).
    pub(super) fn new(workers: usize) -> Handover {
        // A single worker never hands over: it gets no buffers.
        let buffers = if workers > 1 { PER_WORKER } else { 0 };
        let per = buffers.max(1);
        let free = (0..workers)
            .map(|origin| {
                let q = ArrayQueue::new(per);
                for _ in 0..buffers {
                    let _ = q.push(Box::new(Handed {
                        origin,
                        src: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
                        src_mac: [0; 6],
                        len: 0,
                        data: [0; HANDOVER_MAX],
                    }));
                }
                q
            })
            .collect();
        Handover {
            inboxes: (0..workers).map(|_| ArrayQueue::new(per)).collect(),
            free,
        }
    }

    /// Copies a datagram from worker `from` into worker `to`'s inbox. False (and nothing
    /// queued) when `from` has no free buffer, `to`'s inbox is full or it is too long.
    pub(super) fn give(
        &self,
        from: usize,
        to: usize,
        src: SocketAddr,
        src_mac: [u8; 6],
        data: &[u8],
    ) -> bool {
        if data.len() > HANDOVER_MAX {
            return false;
        }
        let (Some(free), Some(inbox)) = (self.free.get(from), self.inboxes.get(to)) else {
            return false;
        };
        let Some(mut b) = free.pop() else {
            return false;
        };
        b.src = src;
        b.src_mac = src_mac;
        b.len = data.len();
        b.data[..data.len()].copy_from_slice(data);
        match inbox.push(b) {
            Ok(()) => true,
            Err(b) => {
                let _ = free.push(b);
                false
            }
        }
    }

    /// The next datagram handed to worker `to`.
    pub(super) fn take(&self, to: usize) -> Option<Box<Handed>> {
        self.inboxes.get(to)?.pop()
    }

    /// Returns a delivered buffer to the worker it came from.
    pub(super) fn recycle(&self, b: Box<Handed>) {
        if let Some(free) = self.free.get(b.origin) {
            // Capacity is the number of buffers that origin owns: this never fails.
            let _ = free.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_their_owner_and_buffers_come_back() {
        let h = Handover::new(2);
        let src: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        assert!(h.give(0, 1, src, [1; 6], b"for worker one"));
        assert!(h.take(0).is_none(), "nothing for worker zero");
        let got = h.take(1).unwrap();
        assert_eq!(
            (&got.data[..got.len], got.src, got.src_mac),
            (&b"for worker one"[..], src, [1; 6])
        );
        assert_eq!(got.origin, 0);
        h.recycle(got);
        // Every buffer of worker 0 can be in flight at once, and no more.
        let mut n = 0;
        while h.give(0, 1, src, [0; 6], b"x") {
            n += 1;
        }
        assert_eq!(n, PER_WORKER);
        assert!(!h.give(0, 1, src, [0; 6], &[0; HANDOVER_MAX + 1]));
        while let Some(b) = h.take(1) {
            h.recycle(b);
        }
        assert!(h.give(0, 1, src, [0; 6], b"again"));
    }
}
