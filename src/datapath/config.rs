//! Datapath configuration: which cores run workers, where their sockets bind, which I/O backend.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::io::{IoConfig, IoMode, TcpConfig};

/// Where worker threads run (after glommio's `Placement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// `n` workers, not pinned (tests, containers with a CPU quota).
    Unbound(usize),
    /// One worker pinned to each listed core id.
    Fixed(Vec<usize>),
    /// One worker pinned to every core the process may run on.
    AllCores,
}

/// Datapath settings. `Clone`, documented defaults, validation that names the field.
#[derive(Debug, Clone)]
pub struct DatapathConfig {
    /// Worker placement (default: one pinned worker per core).
    pub placement: Placement,
    /// Worker `i` binds `port_base + i` (default 40000; 0 = any free port, for tests).
    pub port_base: u16,
    /// Address the media sockets bind (default 127.0.0.1; `::` binds dual-stack).
    pub bind: IpAddr,
    /// Address put in SDP candidates when the host is behind NAT (default: the bound address).
    pub advertised: Option<IpAddr>,
    /// I/O backend and buffer sizes.
    pub io: IoConfig,
    /// ICE-TCP: each worker also listens on a TCP port (default on; `None` = UDP only).
    pub tcp: Option<TcpConfig>,
    /// A session with no authenticated Binding request for this long is closed (default 30 s).
    pub consent_timeout: Duration,
    /// Capacity of each worker-to-worker fan-out ring, in packets (default 4096).
    pub ring_capacity: usize,
    /// Shared packet buffers per worker for cross-worker fan-out (default 4096).
    pub pool_size: usize,
    /// Capacity of the command queue into each worker (default 1024).
    pub command_capacity: usize,
    /// Capacity of the event queue out of all workers (default 4096).
    pub event_capacity: usize,
    /// Retransmission cache per track, in packets (default 512, ~1 s of 4 Mbit/s video).
    pub nack_cache: usize,
    /// Called on each worker thread, with its index, before its loop starts (default none; tests
    /// use it to mark worker threads).
    pub on_worker_start: Option<fn(usize)>,
    /// Fault injection for tests: worker `w` panics once it has run for the given time (default
    /// none; checked once per loop turn).
    pub panic_after: Option<(usize, std::time::Duration)>,
}

impl Default for DatapathConfig {
    fn default() -> Self {
        Self {
            placement: Placement::AllCores,
            port_base: 40000,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            advertised: None,
            io: IoConfig::default(),
            tcp: Some(TcpConfig::default()),
            consent_timeout: crate::ice::DEFAULT_CONSENT_TIMEOUT,
            ring_capacity: 4096,
            pool_size: 4096,
            command_capacity: 1024,
            event_capacity: 4096,
            nack_cache: 512,
            on_worker_start: None,
            panic_after: None,
        }
    }
}

/// A configuration value that cannot work; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("datapath config: {field}: {reason}")]
pub struct ConfigError {
    /// The offending field.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

impl DatapathConfig {
    /// A config for tests: `workers` unpinned workers on ephemeral ports of 127.0.0.1.
    pub fn for_tests(workers: usize, io: IoMode) -> Self {
        Self {
            placement: Placement::Unbound(workers),
            port_base: 0,
            io: IoConfig {
                mode: io,
                ..IoConfig::default()
            },
            ..Self::default()
        }
    }

    /// The core each worker runs on (`None` = unpinned), checked against the machine.
    pub fn worker_cores(&self) -> Result<Vec<Option<usize>>, ConfigError> {
        let available: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        let cores = match &self.placement {
            Placement::Unbound(0) => {
                return Err(ConfigError {
                    field: "placement",
                    reason: "at least one worker is needed".into(),
                })
            }
            Placement::Unbound(n) => vec![None; *n],
            Placement::AllCores if available.is_empty() => {
                return Err(ConfigError {
                    field: "placement",
                    reason: "cannot list this machine's cores".into(),
                })
            }
            Placement::AllCores => available.iter().map(|&c| Some(c)).collect(),
            Placement::Fixed(list) if list.is_empty() => {
                return Err(ConfigError {
                    field: "placement",
                    reason: "the core list is empty".into(),
                })
            }
            Placement::Fixed(list) => {
                for c in list {
                    if !available.contains(c) {
                        return Err(ConfigError {
                            field: "placement",
                            reason: format!(
                                "core {c} is not available (this process may use {available:?})"
                            ),
                        });
                    }
                }
                list.iter().map(|&c| Some(c)).collect()
            }
        };
        if self.port_base != 0 && usize::from(self.port_base) + cores.len() > 65536 {
            return Err(ConfigError {
                field: "port_base",
                reason: "port_base + workers exceeds 65535".into(),
            });
        }
        if let Some(tcp) = &self.tcp {
            let base = tcp.port_base.unwrap_or(self.port_base);
            if base != 0 && usize::from(base) + cores.len() > 65536 {
                return Err(ConfigError {
                    field: "tcp.port_base",
                    reason: "tcp port_base + workers exceeds 65535".into(),
                });
            }
            if let Err(e) = tcp.validate() {
                return Err(ConfigError {
                    field: "tcp",
                    reason: e.to_string(),
                });
            }
        }
        if !self.io.recv_buffers.is_power_of_two() {
            return Err(ConfigError {
                field: "io.recv_buffers",
                reason: "must be a power of two".into(),
            });
        }
        if self.ring_capacity == 0 || self.pool_size == 0 || self.nack_cache == 0 {
            return Err(ConfigError {
                field: "ring_capacity/pool_size/nack_cache",
                reason: "must be > 0".into(),
            });
        }
        Ok(cores)
    }
}
