//! ICE-TCP as the worker sees it: nothing but its counters. Connections, framing and their
//! rules live in the I/O layer (`io::tcp`), which hands the worker each frame as a datagram from
//! an address `io::is_tcp` recognises; the worker validates, answers and sends to it exactly as
//! to a UDP peer.

use super::super::io::{is_tcp, TcpStats};
use super::Core;

impl Core {
    /// Copies the I/O layer's ICE-TCP counters and counts the sessions on a TCP path.
    pub(super) fn count_tcp(&mut self, io: &TcpStats) {
        let c = &mut self.counters;
        c.tcp_connections = io.open;
        c.tcp_accepted = io.accepted;
        c.tcp_rejected_worker_limit = io.rejected_worker_limit;
        c.tcp_rejected_ip_limit = io.rejected_ip_limit;
        c.tcp_closed_peer = io.closed_peer;
        c.tcp_closed_garbage = io.closed_garbage;
        c.tcp_closed_oversized = io.closed_oversized;
        c.tcp_closed_unauthenticated = io.closed_unauthenticated;
        c.tcp_closed_idle = io.closed_idle;
        c.tcp_closed_error = io.closed_error;
        c.tcp_bytes_in = io.bytes_in;
        c.tcp_bytes_out = io.bytes_out;
        c.tcp_frames_in = io.frames_in;
        c.tcp_frames_out = io.frames_out;
        c.tcp_dropped_send_buffer_full = io.dropped_full;
        c.tcp_dropped_closed = io.dropped_closed;
        c.tcp_sessions = self
            .sessions
            .iter()
            .flatten()
            .filter(|s| s.addr.is_some_and(|a| is_tcp(&a)))
            .count() as u64;
    }
}
