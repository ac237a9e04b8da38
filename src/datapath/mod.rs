//! The fast path: pinned worker threads that own UDP sockets and relay SRTP between sessions.
//!
//! `Datapath::start` binds one socket per worker (`port_base + i`), and with ICE-TCP one
//! listener per worker, starts each worker on its core and creates its I/O (io_uring, or
//! recvmmsg/sendmmsg as a fallback) inside that thread.
//! The slow path drives workers with `Command`s and reads `Event`s and statistics; workers
//! talk to each other only through bounded lock-free rings. `io` is the only module of the
//! crate allowed `unsafe`.

mod arrivals;
mod command;
mod config;
mod egress;
mod fanout;
pub mod io;
mod session;
mod stats;
mod svc;
mod throttle;
mod upstream;
mod worker;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, Sender, TrySendError};

use crate::wire::keyframe::VideoCodec;

pub use command::{Command, Event, SessionKeys};
pub use config::{ConfigError, DatapathConfig, Placement};
pub use egress::{abs_send_time, EgressExtensions, SendHistory, SentPacket, Stamp};
pub use fanout::{PacketPool, Rings, SHARED_PACKET_SIZE};
pub use io::{IoConfig, IoKind, IoMode, TcpConfig};
pub use session::{ExtensionRewrite, MediaKind, MidBinding, RidBinding, SubscriptionParams};
pub use stats::{new_latency_histogram as stats_histogram, Counters, WorkerStats};
pub use svc::{LayerLimit, ALL_LAYERS};
pub use throttle::Throttle;
pub use upstream::PublisherRtx;
pub use worker::LAYER_STALL;

/// A session's id, chosen by the slow path.
pub type SessionId = u64;
/// A track's id, unique across the relay, chosen by the slow path.
pub type TrackId = u32;

/// Where a published track lives, for subscribing to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackRef {
    /// The track.
    pub id: TrackId,
    /// The worker its publisher is on.
    pub worker: usize,
    /// Audio or video.
    pub kind: MediaKind,
}

/// Why the datapath could not start or take a command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatapathError {
    /// A configuration value cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A worker socket could not be bound.
    #[error("cannot bind media socket {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The xdp backend cannot run on this machine.
    #[error(transparent)]
    Xdp(#[from] io::XdpError),
    /// A worker could not set up its I/O.
    #[error("worker {worker}: {reason}")]
    WorkerStart { worker: usize, reason: String },
    /// A worker's command queue is full.
    #[error("worker {0}: command queue full")]
    QueueFull(usize),
    /// The worker has stopped (it panicked or the datapath is shutting down).
    #[error("worker {0} is not running")]
    WorkerGone(usize),
    /// No such worker.
    #[error("no worker {0}")]
    NoSuchWorker(usize),
}

struct WorkerHandle {
    commands: Sender<Command>,
    waker: Arc<io::Waker>,
    stats: Arc<WorkerStats>,
    addr: SocketAddr,
    tcp_addr: Option<SocketAddr>,
    io: IoKind,
    core: Option<usize>,
    heartbeat: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// The running fast path.
pub struct Datapath {
    workers: Vec<WorkerHandle>,
    events: Receiver<Event>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
}

impl std::fmt::Debug for Datapath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Datapath")
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

impl Datapath {
    /// Binds the sockets and starts every worker; returns once all are running.
    pub fn start(cfg: DatapathConfig) -> Result<Self, DatapathError> {
        let cores = cfg.worker_cores()?;
        let n = cores.len();
        if n > 64 {
            return Err(ConfigError {
                field: "placement",
                reason: "at most 64 workers".into(),
            }
            .into());
        }
        let mut sockets = Vec::with_capacity(n);
        for i in 0..n {
            let port = if cfg.port_base == 0 {
                0
            } else {
                cfg.port_base + i as u16
            };
            let addr = SocketAddr::new(cfg.bind, port);
            sockets.push(
                UdpSocket::bind(addr).map_err(|source| DatapathError::Bind { addr, source })?,
            );
        }
        let mut listeners: Vec<Option<TcpListener>> = Vec::with_capacity(n);
        for i in 0..n {
            let Some(tcp) = &cfg.tcp else {
                listeners.push(None);
                continue;
            };
            let port = match tcp.port_base.unwrap_or(cfg.port_base) {
                0 => 0,
                base => base + i as u16,
            };
            let addr = SocketAddr::new(cfg.bind, port);
            let listener =
                TcpListener::bind(addr).map_err(|source| DatapathError::Bind { addr, source })?;
            listeners.push(Some(listener));
        }
        let wakers: Vec<Arc<io::Waker>> = (0..n)
            .map(|i| {
                io::Waker::new()
                    .map(Arc::new)
                    .map_err(|e| DatapathError::WorkerStart {
                        worker: i,
                        reason: format!("eventfd: {e}"),
                    })
            })
            .collect::<Result<_, _>>()?;
        let wakers: Arc<[Arc<io::Waker>]> = wakers.into();
        let xdp = match cfg.io.mode {
            IoMode::Xdp => {
                let ports: Vec<u16> = sockets
                    .iter()
                    .map(|s| s.local_addr().map_or(0, |a| a.port()))
                    .collect();
                Some(Arc::new(io::XdpAttachment::attach(
                    cfg.io.interface.as_deref(),
                    cfg.io.xdp_mode,
                    cfg.bind,
                    &ports,
                    Arc::clone(&wakers),
                )?))
            }
            _ => None,
        };
        let (cmd_txs, cmd_rxs): (Vec<_>, Vec<_>) = (0..n)
            .map(|_| channel::bounded(cfg.command_capacity))
            .unzip();
        let peers: Arc<[Sender<Command>]> = cmd_txs.clone().into();
        let (event_tx, events) = channel::bounded(cfg.event_capacity);
        let rings = Arc::new(Rings::new(n, cfg.ring_capacity));
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Instant::now();

        let mut workers = Vec::with_capacity(n);
        let mut failure = None;
        for (i, (((socket, listener), commands), core)) in sockets
            .into_iter()
            .zip(listeners)
            .zip(cmd_rxs)
            .zip(cores)
            .enumerate()
        {
            let (ready_tx, ready_rx) = mpsc::channel();
            let heartbeat = Arc::new(AtomicU64::new(0));
            let setup_parts = (
                Arc::clone(&wakers),
                Arc::clone(&peers),
                Arc::clone(&rings),
                event_tx.clone(),
                Arc::clone(&heartbeat),
                Arc::clone(&stop),
            );
            let (io_cfg, tcp_cfg) = (cfg.io.clone(), cfg.tcp.clone());
            let xdp = xdp.clone();
            let (consent_timeout, pool_size, nack_cache) =
                (cfg.consent_timeout, cfg.pool_size, cfg.nack_cache);
            let on_start = cfg.on_worker_start;
            let panic_after = cfg.panic_after.and_then(|(w, d)| (w == i).then_some(d));
            let spawned = std::thread::Builder::new()
                .name(format!("tern-worker-{i}"))
                .spawn(move || {
                    let (wakers, peers, rings, events, heartbeat, stop) = setup_parts;
                    if let Some(c) = core {
                        if !core_affinity::set_for_current(core_affinity::CoreId { id: c }) {
                            tracing::warn!(
                                worker = i,
                                core = c,
                                "worker could not pin to its core; running unpinned"
                            );
                        }
                    }
                    let waker = Some(Arc::clone(&wakers[i]));
                    let io = match &xdp {
                        Some(x) => io::UdpIo::new_xdp(socket, waker, &io_cfg, x, i),
                        None => io::UdpIo::new(socket, waker, &io_cfg),
                    }
                    .and_then(|mut io| {
                        if let (Some(l), Some(c)) = (listener, &tcp_cfg) {
                            io.attach_tcp(l, c)?;
                        }
                        Ok(io)
                    });
                    let io = match io {
                        Ok(io) => io,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let stats = Arc::new(WorkerStats::new(io.kind().as_str()));
                    if let Some(hook) = on_start {
                        hook(i);
                    }
                    let addrs = (io.local_addr(), io.tcp_local_addr());
                    let _ = ready_tx.send(Ok((io.kind(), addrs, Arc::clone(&stats))));
                    worker::run(worker::WorkerSetup {
                        id: i,
                        io,
                        commands,
                        peers,
                        wakers,
                        rings,
                        events,
                        stats,
                        heartbeat,
                        stop,
                        consent_timeout,
                        pool_size,
                        nack_cache,
                        epoch,
                        panic_after,
                    });
                });
            let thread = match spawned {
                Ok(t) => t,
                Err(e) => {
                    failure = Some(DatapathError::WorkerStart {
                        worker: i,
                        reason: format!("spawn: {e}"),
                    });
                    break;
                }
            };
            match ready_rx.recv() {
                Ok(Ok((io, (addr, tcp_addr), stats))) => workers.push(WorkerHandle {
                    commands: cmd_txs[i].clone(),
                    waker: Arc::clone(&wakers[i]),
                    stats,
                    addr,
                    tcp_addr,
                    io,
                    core,
                    heartbeat,
                    thread: Some(thread),
                }),
                Ok(Err(reason)) => {
                    let _ = thread.join();
                    failure = Some(DatapathError::WorkerStart { worker: i, reason });
                    break;
                }
                Err(_) => {
                    let _ = thread.join();
                    failure = Some(DatapathError::WorkerStart {
                        worker: i,
                        reason: "worker died while starting".into(),
                    });
                    break;
                }
            }
        }
        let dp = Self {
            workers,
            events,
            stop,
            epoch,
        };
        match failure {
            Some(e) => Err(e), // dropping `dp` stops the workers already started
            None => Ok(dp),
        }
    }

    /// How many workers run.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// The address worker `w`'s socket is bound to.
    pub fn local_addr(&self, w: usize) -> SocketAddr {
        self.workers[w].addr
    }

    /// The address worker `w`'s ICE-TCP listener is bound to (`None` without TCP).
    pub fn tcp_addr(&self, w: usize) -> Option<SocketAddr> {
        self.workers[w].tcp_addr
    }

    /// The I/O backend worker `w` uses.
    pub fn io_kind(&self, w: usize) -> IoKind {
        self.workers[w].io
    }

    /// The core worker `w` is pinned to, if any.
    pub fn core(&self, w: usize) -> Option<usize> {
        self.workers[w].core
    }

    /// Queues a command for worker `w` and wakes it. Never blocks.
    pub fn send(&self, w: usize, cmd: Command) -> Result<(), DatapathError> {
        let h = self.workers.get(w).ok_or(DatapathError::NoSuchWorker(w))?;
        match h.commands.try_send(cmd) {
            Ok(()) => {
                h.waker.wake();
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(DatapathError::QueueFull(w)),
            Err(TrySendError::Disconnected(_)) => Err(DatapathError::WorkerGone(w)),
        }
    }

    /// Subscribes `session` (on worker `sub_worker`) to a track, and tells the track's worker
    /// to copy its packets to `sub_worker` when that is another worker.
    pub fn subscribe(
        &self,
        sub_worker: usize,
        session: SessionId,
        track: TrackRef,
        params: SubscriptionParams,
    ) -> Result<(), DatapathError> {
        self.subscribe_switching(sub_worker, session, track, params, None)
    }

    /// [`Self::subscribe`]; with `switch`, to another simulcast layer of what the session
    /// receives under `params.ssrc`, from its first keyframe of that codec on.
    pub fn subscribe_switching(
        &self,
        sub_worker: usize,
        session: SessionId,
        track: TrackRef,
        params: SubscriptionParams,
        switch: Option<VideoCodec>,
    ) -> Result<(), DatapathError> {
        let TrackRef { id, worker, kind } = track;
        self.send(
            sub_worker,
            Command::Subscribe {
                session,
                track: id,
                origin_worker: worker,
                kind,
                params,
                switch,
            },
        )?;
        if sub_worker != worker {
            self.send(
                worker,
                Command::SetRemoteWorker {
                    track: id,
                    worker: sub_worker,
                    subscribed: true,
                },
            )?;
        }
        Ok(())
    }

    /// Events from every worker.
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// Worker `w`'s statistics.
    pub fn stats(&self, w: usize) -> &WorkerStats {
        &self.workers[w].stats
    }

    /// Every worker's counters added up.
    pub fn total_counters(&self) -> Counters {
        let mut total = Counters::default();
        for w in &self.workers {
            total.add(&w.stats.counters.snapshot());
        }
        total
    }

    /// Workers whose thread has ended although the datapath was not stopped (a panic).
    pub fn dead_workers(&self) -> Vec<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Vec::new();
        }
        self.workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.thread.as_ref().is_none_or(|t| t.is_finished()))
            .map(|(i, _)| i)
            .collect()
    }

    /// How long ago worker `w` last finished a loop turn (it turns at least every 100 ms).
    pub fn since_progress(&self, w: usize) -> Duration {
        let beat = Duration::from_millis(self.workers[w].heartbeat.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(beat)
    }

    /// Stops every worker and waits for them.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in &self.workers {
            w.waker.wake();
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Datapath {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
