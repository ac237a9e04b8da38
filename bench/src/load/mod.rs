//! `tern-load`: a WHIP/WHEP load generator that speaks the standard protocol, so it can load any
//! WHIP/WHEP server, not only Tern.
//!
//! [`run`] plans the sessions of a [`Scenario`], brings publishers up first and subscribers
//! after them (signalling, ICE, DTLS on a small tokio runtime, a bounded number at a time),
//! then hands the connected sockets to plain threads: sender threads that pace synthetic media
//! and receiver threads that measure it. After a warm-up it measures for the configured
//! duration, stops the publishers, waits a moment for late packets and retransmissions, ends
//! every session with DELETE and returns a [`Report`].
//!
//! It never hangs on a bad server: every phase has a deadline, and a session that fails is
//! reported with its phase and reason instead of stopping the run.

pub mod cli;
pub mod media;
pub mod receiver;
pub mod report;
pub mod sdp;
pub mod session;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tern::srtp::Profile;
use tokio::sync::Semaphore;

use media::{now_ns, MediaShape, Publisher, TrackProgress};
use receiver::{Control, RxTrack, Subscriber};
pub use report::{Failure, Report};
use report::{SubscriberReport, TimelinePoint};
use sdp::TrackKind;
use session::{ClientIdentity, Connected, Endpoint, SessionSpec, SetupError};

/// Which sessions a run opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `publishers` streams `pub-0..`, each received by `subscribers` subscribers.
    Broadcast {
        /// Publishers.
        publishers: usize,
        /// Subscribers per publisher.
        subscribers: usize,
    },
    /// `participants` each publish `p-i` and subscribe to every other participant.
    Conference {
        /// Participants.
        participants: usize,
    },
    /// `rooms` groups of `participants` (streams `g{r}-p{k}`, audio only), each participant
    /// subscribing to the others of its group. The groups share one signalling room, since a
    /// token grants one room.
    AudioRooms {
        /// Groups.
        rooms: usize,
        /// Participants per group.
        participants: usize,
    },
}

impl Scenario {
    /// The scenario's CLI name.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Broadcast { .. } => "broadcast",
            Scenario::Conference { .. } => "conference",
            Scenario::AudioRooms { .. } => "audio-rooms",
        }
    }
}

/// How the live progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Progress {
    /// A `\r`-updated line on a terminal, plain lines otherwise (on stderr).
    #[default]
    Auto,
    /// Nothing (library use, tests).
    Off,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Server base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// Bearer token for every session.
    pub token: String,
    /// Which sessions.
    pub scenario: Scenario,
    /// Signalling room (default `load`).
    pub room: String,
    /// What each publisher sends.
    pub media: MediaShape,
    /// Measurement duration (default 20 s).
    pub duration: Duration,
    /// Time between all sessions being up and the measurement starting (default 1 s).
    pub warmup: Duration,
    /// SRTP profile offered (default AES-128-GCM).
    pub profile: Profile,
    /// Deadline of each setup phase and of the first media packet (default 10 s).
    pub connect_timeout: Duration,
    /// Sessions set up at once (default 16).
    pub setup_concurrency: usize,
    /// Receiver threads (default 1).
    pub rx_threads: usize,
    /// Sender threads (default 1).
    pub tx_threads: usize,
    /// Relay process whose CPU time is read from `/proc`.
    pub relay_pid: Option<u32>,
    /// Fraction of received RTP datagrams the subscribers drop on purpose (0 to 0.5), to
    /// exercise NACK and retransmission (default 0).
    pub simulate_loss: f64,
    /// Live progress.
    pub progress: Progress,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            url: "http://127.0.0.1:8080".into(),
            token: String::new(),
            scenario: Scenario::Broadcast {
                publishers: 1,
                subscribers: 10,
            },
            room: "load".into(),
            media: MediaShape::default(),
            duration: Duration::from_secs(20),
            warmup: Duration::from_secs(1),
            profile: Profile::AeadAes128Gcm,
            connect_timeout: Duration::from_secs(10),
            setup_concurrency: 16,
            rx_threads: 1,
            tx_threads: 1,
            relay_pid: None,
            simulate_loss: 0.0,
            progress: Progress::Auto,
        }
    }
}

/// Why a run could not happen at all (session failures are in the [`Report`] instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The configuration is unusable; the text names the option.
    #[error("{0}")]
    Config(String),
    /// A local resource (runtime, thread, socket poller, certificate) could not be set up.
    #[error("{0}")]
    Setup(String),
}

/// A connected publisher's tracks and how far each has got.
type PublishedTracks = Vec<(TrackKind, Arc<TrackProgress>)>;

/// A planned session.
#[derive(Debug, Clone)]
struct Plan {
    room: String,
    stream: String,
    kinds: Vec<TrackKind>,
    /// Subscribers: the publisher they receive.
    publisher: Option<usize>,
}

fn plan(cfg: &LoadConfig) -> (Vec<Plan>, Vec<Plan>) {
    let mut pubs = Vec::new();
    let mut subs = Vec::new();
    let room = cfg.room.clone();
    let kinds = cfg.media.kinds();
    let mut add_pub = |stream: String, kinds: Vec<TrackKind>| {
        pubs.push(Plan {
            room: room.clone(),
            stream,
            kinds,
            publisher: None,
        });
        pubs.len() - 1
    };
    match cfg.scenario {
        Scenario::Broadcast {
            publishers,
            subscribers,
        } => {
            for p in 0..publishers {
                let i = add_pub(format!("pub-{p}"), kinds.clone());
                for _ in 0..subscribers {
                    subs.push(i);
                }
            }
        }
        Scenario::Conference { participants } => {
            let ids: Vec<usize> = (0..participants)
                .map(|p| add_pub(format!("p-{p}"), kinds.clone()))
                .collect();
            for (me, _) in ids.iter().enumerate() {
                for (other, &i) in ids.iter().enumerate() {
                    if other != me {
                        subs.push(i);
                    }
                }
            }
        }
        Scenario::AudioRooms {
            rooms,
            participants,
        } => {
            for r in 0..rooms {
                let ids: Vec<usize> = (0..participants)
                    .map(|k| add_pub(format!("g{r}-p{k}"), vec![TrackKind::Audio]))
                    .collect();
                for me in 0..ids.len() {
                    for (other, &i) in ids.iter().enumerate() {
                        if other != me {
                            subs.push(i);
                        }
                    }
                }
            }
        }
    }
    let subs = subs
        .into_iter()
        .map(|i| Plan {
            room: pubs[i].room.clone(),
            stream: pubs[i].stream.clone(),
            kinds: pubs[i].kinds.clone(),
            publisher: Some(i),
        })
        .collect();
    (pubs, subs)
}

/// Checks the configuration before anything connects.
pub fn validate(cfg: &LoadConfig) -> Result<(), LoadError> {
    let bad = |m: &str| Err(LoadError::Config(m.to_string()));
    if !(cfg.url.starts_with("http://") || cfg.url.starts_with("https://")) {
        return bad("--url must start with http:// or https://");
    }
    if cfg.token.trim().is_empty() {
        return bad("--token is required (e.g. $(tern token --room load --publish --subscribe))");
    }
    let sizes_ok = match cfg.scenario {
        Scenario::Broadcast {
            publishers,
            subscribers,
        } => publishers > 0 && subscribers > 0,
        Scenario::Conference { participants } => participants >= 2,
        Scenario::AudioRooms {
            rooms,
            participants,
        } => rooms > 0 && participants >= 2,
    };
    if !sizes_ok {
        return bad("the scenario needs at least one publisher and one subscriber (conference and audio-rooms: --participants 2 or more)");
    }
    if cfg.media.kinds().is_empty() && !matches!(cfg.scenario, Scenario::AudioRooms { .. }) {
        return bad("nothing to send: --no-audio with --video 0");
    }
    if cfg.duration.is_zero() {
        return bad("--duration must be more than 0");
    }
    if !(0.0..=0.5).contains(&cfg.simulate_loss) {
        return bad("--simulate-loss must be from 0 to 0.5");
    }
    if cfg.connect_timeout.is_zero() {
        return bad("--connect-timeout must be more than 0");
    }
    if cfg.room.is_empty() || cfg.room.contains(['/', '?', '#', ' ']) {
        return bad("--room must be a non-empty name without '/', '?', '#' or spaces");
    }
    if let Some(pid) = cfg.relay_pid {
        if relay_cpu_ns(pid).is_none() {
            return Err(LoadError::Config(format!(
                "--relay-pid {pid}: cannot read /proc/{pid}/stat (no such process?)"
            )));
        }
    }
    Ok(())
}

/// CPU time (user + system) of process `pid` in ns, from `/proc/PID/stat`.
pub fn relay_cpu_ns(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // After ')': state is field 3, utime 14, stime 15 (1-based in proc(5)).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Some((utime + stime) * (1_000_000_000 / hz))
}

/// Runs the load described by `cfg` and returns what it measured.
pub fn run(cfg: &LoadConfig) -> Result<Report, LoadError> {
    validate(cfg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tern-load-setup")
        .enable_all()
        .build()
        .map_err(|e| LoadError::Setup(format!("async runtime: {e}")))?;
    let identity = ClientIdentity::generate().map_err(LoadError::Setup)?;
    let http = session::http_client(cfg.connect_timeout).map_err(LoadError::Setup)?;
    let endpoint = Endpoint {
        url: cfg.url.clone(),
        token: cfg.token.clone(),
        phase_timeout: cfg.connect_timeout,
        profile: cfg.profile,
    };
    let (pub_plans, sub_plans) = plan(cfg);
    let progress = Progress::resolve(cfg.progress);
    progress.line(&format!(
        "tern-load: connecting {} publisher(s) to {}",
        pub_plans.len(),
        cfg.url
    ));

    let mut failures = Vec::new();
    let mut locations = Vec::new();
    // Publishers first: a subscriber needs its stream published.
    let pub_results = runtime.block_on(connect_all(
        &http,
        &endpoint,
        &identity,
        &pub_plans,
        true,
        cfg.setup_concurrency,
    ));
    let mut publishers = Vec::new();
    let mut pub_progress: Vec<Option<PublishedTracks>> = Vec::new();
    for (i, (plan, result)) in pub_plans.iter().zip(pub_results).enumerate() {
        match result {
            Ok(c) => {
                locations.extend(c.location.clone());
                let tracks: Vec<(TrackKind, u32, Arc<TrackProgress>)> = c
                    .local
                    .iter()
                    .map(|t| (t.kind, t.ssrc, Arc::new(TrackProgress::default())))
                    .collect();
                pub_progress.push(Some(
                    tracks.iter().map(|(k, _, p)| (*k, Arc::clone(p))).collect(),
                ));
                publishers.push(Publisher::new(i, c.socket, c.tx, c.rx, c.ice, tracks));
            }
            Err(e) => {
                pub_progress.push(None);
                failures.push(failure("publisher", plan, &e));
            }
        }
    }
    let publishers_ok = publishers.len();
    let control = Arc::new(Control {
        drop_ppm: (cfg.simulate_loss * 1e6) as u32,
        ..Control::default()
    });
    let stop_senders = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pub_counters: Vec<_> = publishers.iter().map(|p| Arc::clone(&p.counters)).collect();
    let senders = spawn_senders(publishers, cfg, &stop_senders)?;

    // Subscribers of publishers that came up.
    let (runnable, skipped): (Vec<usize>, Vec<usize>) = (0..sub_plans.len()).partition(|&i| {
        sub_plans[i]
            .publisher
            .is_some_and(|p| pub_progress[p].is_some())
    });
    let mut subscribers_failed = 0;
    for &i in &skipped {
        let plan = &sub_plans[i];
        subscribers_failed += 1;
        failures.push(Failure {
            role: "subscriber",
            room: plan.room.clone(),
            stream: plan.stream.clone(),
            phase: "skipped",
            reason: "its publisher did not connect".into(),
        });
    }
    let runnable_plans: Vec<Plan> = runnable.iter().map(|&i| sub_plans[i].clone()).collect();
    if !runnable_plans.is_empty() {
        progress.line(&format!(
            "tern-load: {publishers_ok} publisher(s) up; connecting {} subscriber(s)",
            runnable_plans.len()
        ));
    }
    let sub_results = runtime.block_on(connect_all(
        &http,
        &endpoint,
        &identity,
        &runnable_plans,
        false,
        cfg.setup_concurrency,
    ));
    let mut subscribers = Vec::new();
    let mut sub_meta = Vec::new();
    for (plan, result) in runnable_plans.iter().zip(sub_results) {
        let c = match result {
            Ok(c) => c,
            Err(e) => {
                subscribers_failed += 1;
                failures.push(failure("subscriber", plan, &e));
                continue;
            }
        };
        locations.extend(c.location.clone());
        let progress_of = pub_progress[plan.publisher.unwrap_or(0)]
            .clone()
            .unwrap_or_default();
        let tracks: Vec<RxTrack> = c
            .answer
            .tracks
            .iter()
            .filter(|t| t.server_sends)
            .filter_map(|t| {
                let ssrc = t.ssrc?;
                let local = c.local.iter().find(|l| l.kind == t.kind)?.ssrc;
                let prog = progress_of.iter().find(|(k, _)| *k == t.kind)?.1.clone();
                Some(RxTrack::new(t.kind, ssrc, local, prog))
            })
            .collect();
        if tracks.is_empty() {
            subscribers_failed += 1;
            failures.push(Failure {
                role: "subscriber",
                room: plan.room.clone(),
                stream: plan.stream.clone(),
                phase: "sdp",
                reason: "the answer sends no track with a signalled SSRC".into(),
            });
            continue;
        }
        let index = subscribers.len();
        sub_meta.push((plan.clone(), c.setup_time));
        subscribers.push(Subscriber::new(index, c.socket, c.tx, c.rx, c.ice, tracks));
    }
    let connected_subs = subscribers.len();
    let receivers = spawn_receivers(subscribers, cfg, &control)?;

    // First media: wait (bounded) until every connected subscriber has a packet.
    let first_deadline = Instant::now() + cfg.connect_timeout;
    while (control.with_media.load(Ordering::Relaxed) as usize) < connected_subs
        && Instant::now() < first_deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Nothing to measure when no subscriber came up: report the failures at once.
    let duration = if connected_subs == 0 {
        progress.line("tern-load: no subscriber connected; not measuring");
        Duration::ZERO
    } else {
        progress.line(&format!(
            "tern-load: {connected_subs} subscriber(s) up, {} receiving; warming up {:?}, \
             measuring {:?}",
            control.with_media.load(Ordering::Relaxed),
            cfg.warmup,
            cfg.duration
        ));
        std::thread::sleep(cfg.warmup);
        cfg.duration
    };

    // Measure.
    for prog in pub_progress.iter().flatten().flatten() {
        let next = prog.1.next_seq.load(Ordering::Relaxed);
        prog.1.window_start.store(next, Ordering::Relaxed);
    }
    let cpu_start = cfg.relay_pid.and_then(relay_cpu_ns);
    let start_ns = now_ns();
    control.window_start_ns.store(start_ns, Ordering::Relaxed);
    control.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let mut last_packets = 0;
    while started.elapsed() < duration {
        let left = duration.saturating_sub(started.elapsed());
        std::thread::sleep(left.min(Duration::from_secs(1)));
        let packets = control.live_packets.load(Ordering::Relaxed);
        let bytes = control.live_bytes.load(Ordering::Relaxed);
        let p50 = control.live_p50_us.swap(0, Ordering::Relaxed);
        let p99 = control.live_p99_us.swap(0, Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64();
        progress.live(&format!(
            "[{:>5.1}/{:.0} s] {:>8} pps  {:>7.2} Mbit/s avg  latency p50 {p50} µs p99 {p99} µs (last second)",
            secs,
            cfg.duration.as_secs_f64(),
            packets - last_packets,
            bytes as f64 * 8.0 / secs.max(1e-9) / 1e6,
        ));
        last_packets = packets;
    }
    stop_senders.store(true, Ordering::Relaxed);
    for s in senders {
        let _ = s.join();
    }
    let cpu_end = cfg.relay_pid.and_then(relay_cpu_ns);
    let window_s = (now_ns() - start_ns) as f64 / 1e9;
    // Late packets and retransmissions.
    if connected_subs > 0 {
        std::thread::sleep(Duration::from_millis(500));
    }
    control.measuring.store(false, Ordering::Relaxed);
    control.stop.store(true, Ordering::Relaxed);
    let mut outputs = Vec::new();
    for r in receivers {
        match r.join() {
            Ok(Ok(o)) => outputs.push(o),
            Ok(Err(e)) => return Err(LoadError::Setup(format!("receiver: {e}"))),
            Err(_) => return Err(LoadError::Setup("a receiver thread panicked".into())),
        }
    }
    progress.finish();

    // Teardown: DELETE every session we created.
    runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for loc in locations {
            let http = http.clone();
            let token = cfg.token.clone();
            set.spawn(async move { session::delete(&http, &token, &loc).await });
        }
        let _ = tokio::time::timeout(cfg.connect_timeout, async {
            while set.join_next().await.is_some() {}
        })
        .await;
    });

    // Report.
    let mut latency = receiver::new_histogram();
    let mut seconds: Vec<receiver::Second> = Vec::new();
    let mut sub_reports = Vec::new();
    let mut all_subs: Vec<Subscriber> = Vec::new();
    for o in outputs {
        for (i, s) in o.timeline.into_iter().enumerate() {
            if seconds.len() <= i {
                seconds.resize_with(i + 1, receiver::Second::default);
            }
            seconds[i].packets += s.packets;
            seconds[i].bytes += s.bytes;
            let _ = seconds[i].latency.add(&s.latency);
        }
        all_subs.extend(o.subscribers);
    }
    all_subs.sort_by_key(|s| s.index);
    for s in &all_subs {
        let (plan, setup) = &sub_meta[s.index];
        let _ = latency.add(&s.stats.latency);
        let (mut expected, mut received) = (0, 0);
        for t in &s.tracks {
            let (e, r) = t.window_counts();
            expected += e;
            received += r;
        }
        let ok = s.stats.packets > 0;
        if !ok {
            subscribers_failed += 1;
            let reason = if s.stats.first_packet_ns.is_none() {
                format!(
                    "connected, but no media arrived (waited {:?} and the whole run)",
                    cfg.connect_timeout
                )
            } else {
                "media stopped before the measurement began".to_string()
            };
            failures.push(Failure {
                role: "subscriber",
                room: plan.room.clone(),
                stream: plan.stream.clone(),
                phase: "media",
                reason,
            });
        }
        let q = |q: f64| {
            if s.stats.latency.is_empty() {
                0
            } else {
                s.stats.latency.value_at_quantile(q)
            }
        };
        sub_reports.push(SubscriberReport {
            room: plan.room.clone(),
            stream: plan.stream.clone(),
            ok,
            expected,
            received,
            packets: s.stats.packets,
            bytes: s.stats.bytes,
            duplicates: s.stats.duplicates,
            reordered: s.stats.reordered,
            retransmissions: s.stats.retransmissions,
            nacks_sent: s.stats.nacks_sent,
            srtp_errors: s.stats.srtp_errors,
            latency_us: [q(0.5), q(0.99), s.stats.latency.max()],
            setup_ms: setup.as_secs_f64() * 1e3,
            user_timestamps: s.stats.user_timestamps,
            simulated_drops: s.stats.simulated_drops,
        });
    }
    let timeline = seconds
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let q = |q: f64| {
                if s.latency.is_empty() {
                    0
                } else {
                    s.latency.value_at_quantile(q)
                }
            };
            TimelinePoint {
                second: i,
                packets: s.packets,
                bytes: s.bytes,
                p50_us: q(0.5),
                p99_us: q(0.99),
                max_us: s.latency.max(),
            }
        })
        .collect();
    let published_packets = pub_progress
        .iter()
        .flatten()
        .flatten()
        .map(|(_, p)| {
            u64::from(
                p.window_end
                    .load(Ordering::Relaxed)
                    .saturating_sub(p.window_start.load(Ordering::Relaxed)),
            )
        })
        .sum();
    let keyframe_requests = pub_counters
        .iter()
        .map(|c| c.keyframe_requests.load(Ordering::Relaxed))
        .sum();
    Ok(Report {
        title: title(cfg),
        config: config_json(cfg),
        window_s,
        latency,
        subscribers: sub_reports,
        failures,
        subscribers_failed,
        publishers_ok,
        published_packets,
        timeline,
        relay_cpu_ns: match (cpu_start, cpu_end) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        },
        keyframe_requests,
    })
}

fn failure(role: &'static str, plan: &Plan, e: &SetupError) -> Failure {
    Failure {
        role,
        room: plan.room.clone(),
        stream: plan.stream.clone(),
        phase: e.phase(),
        reason: e.to_string(),
    }
}

/// Connects every planned session, `concurrency` at a time; results in plan order.
async fn connect_all(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    identity: &ClientIdentity,
    plans: &[Plan],
    publish: bool,
    concurrency: usize,
) -> Vec<Result<Connected, SetupError>> {
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, plan) in plans.iter().enumerate() {
        let (http, endpoint, identity, gate) = (
            http.clone(),
            endpoint.clone(),
            identity.clone(),
            Arc::clone(&gate),
        );
        let spec = SessionSpec {
            publish,
            room: plan.room.clone(),
            stream: plan.stream.clone(),
            kinds: plan.kinds.clone(),
        };
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            // A subscriber may race its publisher's DTLS completing on the server: a 404 is
            // retried for a short while.
            let retry_until = Instant::now() + Duration::from_secs(2);
            loop {
                let r = session::connect(&http, &endpoint, &identity, &spec).await;
                match r {
                    Err(SetupError::Rejected { status: 404, .. })
                        if !publish && Instant::now() < retry_until =>
                    {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    r => return (i, r),
                }
            }
        });
    }
    let mut out: Vec<Option<Result<Connected, SetupError>>> =
        (0..plans.len()).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, r)) = joined {
            out[i] = Some(r);
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(SetupError::Io("setup task panicked".into()))))
        .collect()
}

fn spawn_senders(
    publishers: Vec<Publisher>,
    cfg: &LoadConfig,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<Vec<std::thread::JoinHandle<Vec<Publisher>>>, LoadError> {
    let groups = split(publishers, cfg.tx_threads);
    let mut handles = Vec::new();
    for (i, group) in groups.into_iter().enumerate() {
        let stop = Arc::clone(stop);
        let shape = cfg.media.clone();
        let h = std::thread::Builder::new()
            .name(format!("tern-load-tx-{i}"))
            .spawn(move || media::run_senders(group, &shape, &stop))
            .map_err(|e| LoadError::Setup(format!("sender thread: {e}")))?;
        handles.push(h);
    }
    Ok(handles)
}

type ReceiverHandle = std::thread::JoinHandle<std::io::Result<receiver::ReceiverOutput>>;

fn spawn_receivers(
    subscribers: Vec<Subscriber>,
    cfg: &LoadConfig,
    control: &Arc<Control>,
) -> Result<Vec<ReceiverHandle>, LoadError> {
    let groups = split(subscribers, cfg.rx_threads);
    let mut handles = Vec::new();
    for (i, group) in groups.into_iter().enumerate() {
        let control = Arc::clone(control);
        let h = std::thread::Builder::new()
            .name(format!("tern-load-rx-{i}"))
            .spawn(move || receiver::run_receiver(group, &control))
            .map_err(|e| LoadError::Setup(format!("receiver thread: {e}")))?;
        handles.push(h);
    }
    Ok(handles)
}

/// Round-robin into at most `n` non-empty groups.
fn split<T>(items: Vec<T>, n: usize) -> Vec<Vec<T>> {
    let n = n.max(1).min(items.len().max(1));
    let mut groups: Vec<Vec<T>> = (0..n).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        groups[i % n].push(item);
    }
    groups.retain(|g| !g.is_empty());
    groups
}

fn title(cfg: &LoadConfig) -> String {
    let sizes = match cfg.scenario {
        Scenario::Broadcast {
            publishers,
            subscribers,
        } => format!("{publishers} publisher(s) → {subscribers} subscriber(s) each"),
        Scenario::Conference { participants } => {
            format!(
                "{participants} participants, each receiving the other {}",
                participants - 1
            )
        }
        Scenario::AudioRooms {
            rooms,
            participants,
        } => format!("{rooms} group(s) × {participants} participants in one room"),
    };
    let media = match cfg.scenario {
        Scenario::AudioRooms { .. } => "audio only".to_string(),
        _ => {
            let mut parts = Vec::new();
            if cfg.media.audio {
                parts.push("audio".to_string());
            }
            if cfg.media.video_bps > 0 {
                parts.push(format!(
                    "video {} kbps {} fps",
                    cfg.media.video_bps / 1000,
                    cfg.media.fps
                ));
            }
            parts.join(" + ")
        }
    };
    format!(
        "{} {sizes}, {media}, {:?} measured, SRTP {}, {}",
        cfg.scenario.name(),
        cfg.duration,
        cfg.profile,
        cfg.url
    )
}

fn config_json(cfg: &LoadConfig) -> serde_json::Value {
    let (publishers, subscribers, participants, rooms) = match cfg.scenario {
        Scenario::Broadcast {
            publishers,
            subscribers,
        } => (Some(publishers), Some(subscribers), None, None),
        Scenario::Conference { participants } => (None, None, Some(participants), None),
        Scenario::AudioRooms {
            rooms,
            participants,
        } => (None, None, Some(participants), Some(rooms)),
    };
    json!({
        "url": cfg.url,
        "scenario": cfg.scenario.name(),
        "publishers": publishers,
        "subscribers": subscribers,
        "participants": participants,
        "rooms": rooms,
        "room": cfg.room,
        "audio": cfg.media.audio,
        "video_bps": cfg.media.video_bps,
        "fps": cfg.media.fps,
        "keyframe_interval_s": cfg.media.keyframe_interval.as_secs_f64(),
        "duration_s": cfg.duration.as_secs_f64(),
        "warmup_s": cfg.warmup.as_secs_f64(),
        "profile": cfg.profile.name(),
        "connect_timeout_s": cfg.connect_timeout.as_secs_f64(),
        "relay_pid": cfg.relay_pid,
        "simulate_loss": cfg.simulate_loss,
        "machine": crate::machine_summary(),
    })
}

/// Where progress goes: a terminal line rewritten in place, plain lines, or nowhere.
#[derive(Debug, Clone, Copy)]
enum ProgressSink {
    Tty,
    Plain,
    Off,
}

impl Progress {
    fn resolve(p: Progress) -> ProgressSink {
        match p {
            Progress::Off => ProgressSink::Off,
            Progress::Auto if std::io::stderr().is_terminal() => ProgressSink::Tty,
            Progress::Auto => ProgressSink::Plain,
        }
    }
}

impl ProgressSink {
    fn line(&self, text: &str) {
        match self {
            ProgressSink::Off => {}
            _ => eprintln!("{text}"),
        }
    }

    fn live(&self, text: &str) {
        match self {
            ProgressSink::Off => {}
            ProgressSink::Plain => eprintln!("{text}"),
            ProgressSink::Tty => {
                let mut e = std::io::stderr().lock();
                let _ = write!(e, "\r\x1b[2K{text}");
                let _ = e.flush();
            }
        }
    }

    fn finish(&self) {
        if let ProgressSink::Tty = self {
            eprintln!();
        }
    }
}

/// Writes the JSON report to `path`.
pub fn write_json(report: &Report, path: &PathBuf) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(&report.to_json()).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")
}

/// Writes the HTML report to `path`.
pub fn write_html(report: &Report, path: &PathBuf) -> std::io::Result<()> {
    std::fs::write(path, report.to_html())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_have_the_right_shape() {
        let mut cfg = LoadConfig {
            token: "t".into(),
            ..LoadConfig::default()
        };
        cfg.scenario = Scenario::Broadcast {
            publishers: 2,
            subscribers: 3,
        };
        let (p, s) = plan(&cfg);
        assert_eq!((p.len(), s.len()), (2, 6));
        assert_eq!(s[5].stream, "pub-1");
        cfg.scenario = Scenario::Conference { participants: 8 };
        let (p, s) = plan(&cfg);
        assert_eq!((p.len(), s.len()), (8, 56));
        assert!(s.iter().all(|x| x.kinds.len() == 2));
        cfg.scenario = Scenario::AudioRooms {
            rooms: 3,
            participants: 4,
        };
        let (p, s) = plan(&cfg);
        assert_eq!((p.len(), s.len()), (12, 36));
        assert!(s.iter().all(|x| x.kinds == vec![TrackKind::Audio]));
    }

    #[test]
    fn bad_configs_are_refused_with_the_option_named() {
        let cfg = LoadConfig::default();
        assert!(validate(&cfg).unwrap_err().to_string().contains("--token"));
        let cfg = LoadConfig {
            token: "t".into(),
            url: "127.0.0.1:8080".into(),
            ..LoadConfig::default()
        };
        assert!(validate(&cfg).unwrap_err().to_string().contains("--url"));
        let cfg = LoadConfig {
            token: "t".into(),
            relay_pid: Some(u32::MAX - 1),
            ..LoadConfig::default()
        };
        assert!(validate(&cfg)
            .unwrap_err()
            .to_string()
            .contains("--relay-pid"));
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(relay_cpu_ns(std::process::id()).is_some());
    }

    #[test]
    fn split_is_round_robin() {
        let g = split((0..5).collect::<Vec<_>>(), 2);
        assert_eq!(g, vec![vec![0, 2, 4], vec![1, 3]]);
        assert_eq!(split(Vec::<u8>::new(), 3).len(), 0);
    }
}
