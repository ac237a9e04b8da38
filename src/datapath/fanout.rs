//! Cross-worker fan-out: bounded lock-free rings between every pair of workers, and a pool of
//! reference-counted packet buffers so one plaintext copy serves every destination worker.
//!
//! A worker takes a buffer from its own pool, fills it (sole owner, so `Arc::get_mut`), clones
//! the `Arc` once per destination worker into that pair's ring and keeps one reference itself.
//! Consumers drop their clone when done. Only the owning worker ever clones, so when its own
//! reference is the last one (`strong_count == 1`) no one else can hold it and the buffer goes
//! back to the free list: no allocation, no lock and no `unsafe` per packet.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crossbeam::queue::ArrayQueue;

use super::TrackId;

/// Largest packet the rings carry.
pub const SHARED_PACKET_SIZE: usize = 1600;

/// A plaintext RTP packet shared between workers.
#[derive(Debug)]
pub struct SharedPacket {
    len: usize,
    data: Box<[u8; SHARED_PACKET_SIZE]>,
}

impl SharedPacket {
    /// The packet bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

/// One packet for another worker's local fan-out.
#[derive(Debug)]
pub struct FanoutMsg {
    /// The track the packet belongs to.
    pub track: TrackId,
    /// The packet (shared).
    pub packet: Arc<SharedPacket>,
    /// When the batch carrying it was received, for relay latency.
    pub received: Instant,
}

/// The rings between every ordered pair of workers.
#[derive(Debug)]
pub struct Rings {
    workers: usize,
    queues: Vec<ArrayQueue<FanoutMsg>>,
}

impl Rings {
    /// Rings of `capacity` packets for `workers` workers.
    pub fn new(workers: usize, capacity: usize) -> Self {
        let queues = (0..workers * workers)
            .map(|_| ArrayQueue::new(capacity.max(1)))
            .collect();
        Self { workers, queues }
    }

    /// The ring from worker `from` to worker `to`.
    pub fn ring(&self, from: usize, to: usize) -> &ArrayQueue<FanoutMsg> {
        &self.queues[from * self.workers + to]
    }
}

/// A worker's pool of shared packet buffers.
#[derive(Debug)]
pub struct PacketPool {
    free: Vec<Arc<SharedPacket>>,
    in_flight: VecDeque<Arc<SharedPacket>>,
}

impl PacketPool {
    /// `n` buffers, allocated now.
    pub fn new(n: usize) -> Self {
        let free = (0..n)
            .map(|_| {
                Arc::new(SharedPacket {
                    len: 0,
                    data: Box::new([0; SHARED_PACKET_SIZE]),
                })
            })
            .collect();
        Self {
            free,
            in_flight: VecDeque::with_capacity(n),
        }
    }

    /// A buffer holding a copy of `bytes`, or `None` when every buffer is still in use (or the
    /// packet is larger than a buffer). The caller clones it for each ring, then calls `keep`.
    pub fn fill(&mut self, bytes: &[u8]) -> Option<Arc<SharedPacket>> {
        if bytes.len() > SHARED_PACKET_SIZE {
            return None;
        }
        if self.free.is_empty() {
            self.reclaim();
        }
        let mut packet = self.free.pop()?;
        let Some(p) = Arc::get_mut(&mut packet) else {
            // Cannot happen (only free buffers are here), but never hand out a shared one.
            self.in_flight.push_back(packet);
            return None;
        };
        p.data[..bytes.len()].copy_from_slice(bytes);
        p.len = bytes.len();
        Some(packet)
    }

    /// Keeps the owner's reference until every consumer is done with it.
    pub fn keep(&mut self, packet: Arc<SharedPacket>) {
        self.in_flight.push_back(packet);
    }

    /// Moves buffers no consumer holds any more back to the free list.
    pub fn reclaim(&mut self) {
        while self
            .in_flight
            .front()
            .is_some_and(|p| Arc::strong_count(p) == 1)
        {
            if let Some(p) = self.in_flight.pop_front() {
                self.free.push(p);
            }
        }
        if self.free.is_empty() {
            // A slow consumer holds the oldest: look past it.
            let free = &mut self.free;
            self.in_flight.retain(|p| {
                if Arc::strong_count(p) == 1 {
                    free.push(Arc::clone(p));
                    false
                } else {
                    true
                }
            });
            // Each clone pushed above replaces the original `retain` dropped: count is 1 again.
        }
    }

    /// Buffers ready to use.
    pub fn available(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_only_when_every_consumer_is_done() {
        let mut pool = PacketPool::new(2);
        let a = pool.fill(b"one").unwrap();
        let consumer_a = Arc::clone(&a);
        pool.keep(a);
        let b = pool.fill(b"two").unwrap();
        let consumer_b = Arc::clone(&b);
        pool.keep(b);
        assert!(
            pool.fill(b"three").is_none(),
            "both in flight, each held by a consumer"
        );
        drop(consumer_b);
        let c = pool.fill(b"three").expect("the second came back");
        assert_eq!(c.bytes(), b"three");
        let _consumer_c = Arc::clone(&c);
        pool.keep(c);
        assert!(pool.fill(b"four").is_none(), "the first is still held");
        assert_eq!(
            consumer_a.bytes(),
            b"one",
            "a held buffer is never overwritten"
        );
        drop(consumer_a);
        assert_eq!(pool.fill(b"four").unwrap().bytes(), b"four");
    }

    #[test]
    fn reclaim_looks_past_a_slow_consumer() {
        let mut pool = PacketPool::new(3);
        let slow = pool.fill(b"a").unwrap();
        let held = Arc::clone(&slow);
        pool.keep(slow);
        for _ in 0..2 {
            let p = pool.fill(b"b").unwrap();
            pool.keep(p);
        }
        pool.reclaim();
        assert!(
            pool.available() >= 1,
            "the buffers after the held one are free again"
        );
        let again = pool.fill(b"c").expect("a free buffer");
        assert_eq!(again.bytes(), b"c");
        assert_eq!(held.bytes(), b"a", "the held buffer was not reused");
    }

    #[test]
    fn oversize_packets_are_refused() {
        let mut pool = PacketPool::new(1);
        assert!(pool.fill(&[0; SHARED_PACKET_SIZE + 1]).is_none());
    }
}
