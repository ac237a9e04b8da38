//! The anti-replay window (RFC 3711 §3.3.2) and the SRTP index estimate (RFC 3711 §3.3.1).
//!
//! `ReplayWindow` remembers the highest accepted index and a bitmap of the last
//! [`REPLAY_WINDOW`] indices. `check` is read-only; `accept` moves the window and is called only
//! after the packet's tag has verified, so a forged packet can never move it.

/// How many indices behind the highest accepted one are still tracked.
pub const REPLAY_WINDOW: u64 = 1024;
const WORDS: usize = (REPLAY_WINDOW / 64) as usize;

/// A sliding replay window over 48-bit SRTP or 31-bit SRTCP indices.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    top: u64,
    bits: [u64; WORDS],
    started: bool,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    /// An empty window: the first index checked is accepted.
    pub const fn new() -> Self {
        Self {
            top: 0,
            bits: [0; WORDS],
            started: false,
        }
    }

    /// The highest accepted index, if any.
    pub fn highest(&self) -> Option<u64> {
        self.started.then_some(self.top)
    }

    /// True if `index` is new: ahead of the window, or inside it and not yet seen.
    pub fn check(&self, index: u64) -> bool {
        if !self.started || index > self.top {
            return true;
        }
        let behind = self.top - index;
        behind < REPLAY_WINDOW && !self.bit(index)
    }

    /// Records `index` as received. Call only once the packet has authenticated.
    pub fn accept(&mut self, index: u64) {
        if !self.started {
            self.started = true;
            self.top = index;
            self.bits = [0; WORDS];
        } else if index > self.top {
            let ahead = index - self.top;
            if ahead >= REPLAY_WINDOW {
                self.bits = [0; WORDS];
            } else {
                for i in self.top + 1..index {
                    self.clear(i);
                }
            }
            self.top = index;
        } else if self.top - index >= REPLAY_WINDOW {
            return;
        }
        self.set(index);
    }

    fn bit(&self, index: u64) -> bool {
        let slot = index % REPLAY_WINDOW;
        self.bits[(slot / 64) as usize] & (1 << (slot % 64)) != 0
    }

    fn set(&mut self, index: u64) {
        let slot = index % REPLAY_WINDOW;
        self.bits[(slot / 64) as usize] |= 1 << (slot % 64);
    }

    fn clear(&mut self, index: u64) {
        let slot = index % REPLAY_WINDOW;
        self.bits[(slot / 64) as usize] &= !(1 << (slot % 64));
    }
}

/// Estimates the 48-bit SRTP index of a packet with sequence number `seq`, given the highest
/// index seen so far (RFC 3711 §3.3.1: the ROC guess is ROC-1, ROC or ROC+1). `None` when the
/// guess falls before index 0, which can only be a stale packet.
pub fn estimate_index(highest: Option<u64>, seq: u16) -> Option<u64> {
    let Some(highest) = highest else {
        return Some(u64::from(seq));
    };
    let roc = highest >> 16;
    let s_l = (highest & 0xffff) as i32;
    let seq_i = i32::from(seq);
    let v = if s_l < 32768 {
        if seq_i - s_l > 32768 {
            roc.checked_sub(1)?
        } else {
            roc
        }
    } else if s_l - 32768 > seq_i {
        roc + 1
    } else {
        roc
    };
    Some((v << 16) | u64::from(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_old_indices_are_refused() {
        let mut w = ReplayWindow::new();
        assert!(w.check(5000));
        w.accept(5000);
        assert!(!w.check(5000), "duplicate");
        assert!(w.check(4999), "inside the window, unseen");
        w.accept(4999);
        assert!(!w.check(4999));
        assert!(
            w.check(5000 - (REPLAY_WINDOW - 1)),
            "oldest slot in the window"
        );
        assert!(!w.check(5000 - REPLAY_WINDOW), "just behind the window");
        assert!(w.check(6000));
    }

    #[test]
    fn a_big_jump_forgets_the_old_bits() {
        let mut w = ReplayWindow::new();
        for i in 0..100 {
            w.accept(i);
        }
        w.accept(100 + 3 * REPLAY_WINDOW);
        for i in 0..100 {
            assert!(!w.check(i), "index {i} is now far behind");
        }
        // Slots that alias the old indices (same i mod window) are unseen again.
        assert!(w.check(100 + 3 * REPLAY_WINDOW - 1));
        assert!(w.check(100 + 2 * REPLAY_WINDOW + 50));
    }

    #[test]
    fn moving_forward_clears_the_skipped_slots() {
        let mut w = ReplayWindow::new();
        w.accept(10);
        w.accept(10 + REPLAY_WINDOW); // same slot as 10: must be re-set, not confused
        assert!(!w.check(10 + REPLAY_WINDOW));
        w.accept(12 + REPLAY_WINDOW);
        assert!(w.check(11 + REPLAY_WINDOW), "skipped slot is clear");
    }

    #[test]
    fn index_estimate_follows_rfc3711() {
        assert_eq!(estimate_index(None, 7), Some(7));
        // Normal progress and wrap.
        assert_eq!(estimate_index(Some(0xfffe), 0xffff), Some(0xffff));
        assert_eq!(estimate_index(Some(0xffff), 0), Some(0x1_0000));
        assert_eq!(estimate_index(Some(0xfff0), 5), Some(0x1_0005));
        // A late packet from before the wrap keeps the old ROC.
        assert_eq!(estimate_index(Some(0x1_0003), 0xfffa), Some(0xfffa));
        // Before index 0 there is nothing.
        assert_eq!(estimate_index(Some(10), 0xfff0), None);
        // Large forward jump within half the space.
        assert_eq!(estimate_index(Some(0x2_0100), 0x8000), Some(0x2_8000));
    }
}
