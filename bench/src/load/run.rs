//! One run from start to finish: connect publishers, then subscribers, start the sender and
//! receiver threads, wait for first media, warm up, measure, stop, tear down with DELETE, and
//! gather every thread's statistics into a [`Report`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::media::{self, now_ns, Publisher, TrackProgress};
use super::plan::{config_json, plan, title, Plan};
use super::progress::Progress;
use super::receiver::{self, Control, RxTrack, Subscriber};
use super::report::{Failure, Report, SubscriberReport, TimelinePoint};
use super::sdp::TrackKind;
use super::session::{self, ClientIdentity, Connected, Endpoint, SessionSpec, SetupError};
use super::{relay_cpu_ns, validate, LoadConfig, LoadError};

/// A connected publisher's tracks and how far each has got.
type PublishedTracks = Vec<(TrackKind, Arc<TrackProgress>)>;

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
        (&endpoint, &super::url_list(&cfg.url)),
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
    let sub_urls = super::url_list(cfg.subscribe_url.as_deref().unwrap_or(&cfg.url));
    let sub_results = runtime.block_on(connect_all(
        &http,
        (&endpoint, &sub_urls),
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
    let own_cpu_start = relay_cpu_ns(std::process::id());
    let interrupted = || {
        cfg.interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    };
    let start_ns = now_ns();
    control.window_start_ns.store(start_ns, Ordering::Relaxed);
    control.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let mut last_packets = 0;
    let mut next_line = Duration::from_secs(1);
    while started.elapsed() < duration && !interrupted() {
        std::thread::sleep(Duration::from_millis(50));
        if started.elapsed() < next_line.min(duration) {
            continue;
        }
        next_line += Duration::from_secs(1);
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
    let own_cpu_end = relay_cpu_ns(std::process::id());
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
        tester_cpu_ns: match (own_cpu_start, own_cpu_end) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        },
        interrupted: interrupted(),
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

/// Connects every planned session, `concurrency` at a time, spread over `urls` in turn; results
/// in plan order.
async fn connect_all(
    http: &reqwest::Client,
    (endpoint, urls): (&Endpoint, &[String]),
    identity: &ClientIdentity,
    plans: &[Plan],
    publish: bool,
    concurrency: usize,
) -> Vec<Result<Connected, SetupError>> {
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, plan) in plans.iter().enumerate() {
        let (http, mut endpoint, identity, gate) = (
            http.clone(),
            endpoint.clone(),
            identity.clone(),
            Arc::clone(&gate),
        );
        endpoint.url = urls[i % urls.len()].clone();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_round_robin() {
        let g = split((0..5).collect::<Vec<_>>(), 2);
        assert_eq!(g, vec![vec![0, 2, 4], vec![1, 3]]);
        assert_eq!(split(Vec::<u8>::new(), 3).len(), 0);
    }
}
