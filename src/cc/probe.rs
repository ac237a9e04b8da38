//! Probe clusters: a burst of packets sent at a target rate (the relay re-sends recent packets
//! on the subscriber's RTX stream, paced), and what the receiver's feedback says of them: the
//! rate the path carried is the lower of the rate they were sent and received at.
//!
//! Follows libwebrtc's `ProbeBitrateEstimator` (as str0m ports it in
//! `src/packet/bwe/probe/estimator.rs`, MIT/Apache-2.0): the last packet's size does not count
//! for the send rate, nor the first one's for the receive rate; a cluster whose packets arrived
//! far slower than they left measured the path's limit (95 % of the receive rate). Fixed-size.

/// Clusters followed at once.
const CLUSTERS: usize = 4;
/// Less than this share of a cluster arriving says nothing.
const MIN_RECEIVED: f64 = 0.8;
/// A cluster not fully reported this long after it started is judged on what was.
const TIMEOUT_US: i64 = 1_500_000;

/// A probe to send: `packets` packets paced at `target_bps`, each remembered under `cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbePlan {
    pub cluster: u16,
    pub target_bps: u64,
    pub packets: u16,
}

/// A finished cluster's measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeResult {
    pub cluster: u16,
    pub target_bps: u64,
    /// What the path carried, bit/s; `None` when too little arrived to say.
    pub measured_bps: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Cluster {
    id: u16,
    target_bps: u64,
    planned: u16,
    started_us: i64,
    reported: u16,
    received: u16,
    first_send: i64,
    last_send: i64,
    first_arrival: i64,
    last_arrival: i64,
    bytes_sent: u64,
    bytes_received: u64,
    last_send_size: u16,
    first_arrival_size: u16,
}

/// The clusters under way.
#[derive(Debug, Default)]
pub struct Probes {
    clusters: [Option<Cluster>; CLUSTERS],
    next_id: u16,
}

impl Probes {
    /// A new cluster of `packets` at `target_bps`, started at `now_us` (replaces the oldest if
    /// all slots are taken).
    pub fn start(&mut self, target_bps: u64, packets: u16, now_us: i64) -> ProbePlan {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let cluster = Cluster {
            id: self.next_id,
            target_bps,
            planned: packets,
            started_us: now_us,
            first_send: i64::MAX,
            last_send: i64::MIN,
            first_arrival: i64::MAX,
            last_arrival: i64::MIN,
            ..Cluster::default()
        };
        let slot = self
            .clusters
            .iter()
            .position(Option::is_none)
            .unwrap_or_else(|| {
                let oldest = self.clusters.iter().flatten().map(|c| c.started_us).min();
                self.clusters
                    .iter()
                    .position(|c| c.map(|c| c.started_us) == oldest)
                    .unwrap_or(0)
            });
        self.clusters[slot] = Some(cluster);
        ProbePlan {
            cluster: self.next_id,
            target_bps,
            packets,
        }
    }

    /// A reported packet of cluster `id`.
    pub fn on_packet(&mut self, id: u16, send_us: i64, size: u16, arrival_us: Option<i64>) {
        let Some(c) = self.clusters.iter_mut().flatten().find(|c| c.id == id) else {
            return;
        };
        c.reported += 1;
        c.bytes_sent += u64::from(size);
        if send_us >= c.last_send {
            c.last_send = send_us;
            c.last_send_size = size;
        }
        c.first_send = c.first_send.min(send_us);
        if let Some(at) = arrival_us {
            c.received += 1;
            c.bytes_received += u64::from(size);
            if at < c.first_arrival {
                c.first_arrival = at;
                c.first_arrival_size = size;
            }
            c.last_arrival = c.last_arrival.max(at);
        }
    }

    /// The next cluster that is fully reported (or timed out), judged and forgotten.
    pub fn poll_result(&mut self, now_us: i64) -> Option<ProbeResult> {
        let slot = self.clusters.iter().position(|c| {
            c.is_some_and(|c| c.reported >= c.planned || now_us - c.started_us > TIMEOUT_US)
        })?;
        let c = self.clusters[slot].take()?;
        Some(ProbeResult {
            cluster: c.id,
            target_bps: c.target_bps,
            measured_bps: measure(&c),
        })
    }
}

fn measure(c: &Cluster) -> Option<f64> {
    if c.received < 3 || f64::from(c.received) < MIN_RECEIVED * f64::from(c.planned) {
        return None;
    }
    let send_us = (c.last_send - c.first_send) as f64;
    let recv_us = (c.last_arrival - c.first_arrival) as f64;
    if send_us <= 0.0 || recv_us <= 0.0 {
        return None;
    }
    let send = (c.bytes_sent - u64::from(c.last_send_size)) as f64 * 8e6 / send_us;
    let recv = (c.bytes_received - u64::from(c.first_arrival_size)) as f64 * 8e6 / recv_us;
    if send > 2.0 * recv {
        // Far slower in than out: the path's limit, with a little margin.
        return Some(0.95 * recv);
    }
    Some(if recv < 0.9 * send {
        0.95 * recv
    } else {
        send.min(recv)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_through_a_narrow_path_measures_the_path() {
        let mut p = Probes::default();
        let plan = p.start(2_000_000, 10, 0);
        // Sent at 2 Mbit/s (1000 B every 4 ms), received at 1 Mbit/s (every 8 ms).
        for i in 0..10 {
            p.on_packet(plan.cluster, i * 4_000, 1000, Some(50_000 + i * 8_000));
        }
        let r = p.poll_result(100_000).unwrap();
        let m = r.measured_bps.unwrap();
        assert!((900_000.0..1_000_000.0).contains(&m), "{m}");
        assert_eq!(p.poll_result(100_000), None);
    }

    #[test]
    fn a_probe_through_a_wide_path_measures_its_send_rate_and_a_lost_one_nothing() {
        let mut p = Probes::default();
        let plan = p.start(2_000_000, 10, 0);
        for i in 0..10 {
            p.on_packet(plan.cluster, i * 4_000, 1000, Some(50_000 + i * 4_000));
        }
        let m = p.poll_result(100_000).unwrap().measured_bps.unwrap();
        assert!((1_900_000.0..2_100_000.0).contains(&m), "{m}");
        let plan = p.start(2_000_000, 10, 0);
        for i in 0..10 {
            p.on_packet(plan.cluster, i * 4_000, 1000, (i < 5).then_some(i * 4_000));
        }
        assert_eq!(p.poll_result(100_000).unwrap().measured_bps, None);
        // Not fully reported and not timed out: no result yet.
        let plan = p.start(2_000_000, 10, 0);
        p.on_packet(plan.cluster, 0, 1000, Some(0));
        assert_eq!(p.poll_result(100_000), None);
        assert!(p.poll_result(2_000_000).is_some());
    }
}
