//! `relay-cost`: worker CPU time per egress packet of Tern's datapath against the floor, in one
//! run, same machine, same packets, keys installed directly (no signalling).
//!
//! - `floor`: one thread doing what any relay must per egress packet: one AEAD seal (or CTR +
//!   HMAC) and one `sendto`.
//! - `tern-1w`: the datapath with one worker; `tern-2w`: two workers, subscribers split.
//! - `baseline`: a forwarder written the obvious way — tokio `UdpSocket`, webrtc-srtp `Context`
//!   decrypt and per-subscriber encrypt, one `send_to` per egress packet — on one thread.
//!
//! CPU time comes from `/proc/<pid>/task/<tid>/schedstat` (ns on CPU) of the threads doing the
//! work; the packet source runs on its own thread and is not counted. `--json` prints one object
//! per line: {"impl","profile","fanout","cpu_ns_per_egress"}. `--quick` sends fewer packets.
//! `--extensions`: every packet carries a Chromium-like header extension block (abs-send-time,
//! transport-wide sequence number, MID) and Tern's subscribers number extensions differently
//! from the publisher, so each copy is renumbered (`copy_translating_extensions`).
//! `--numbering`: adds `tern-1w+num`, the one-worker datapath again with every subscriber
//! numbering its packets (transport-wide sequence number and abs-send-time stamped per copy,
//! each send remembered in the session's history), against `tern-1w` without, in the same run.
//! `--tcp`: also `tern-1w-tcp`, the one-worker run with every subscriber on ICE-TCP (RFC 4571
//! framing, each read by its own thread), beside `tern-1w` on UDP in the same run (`tcp`).
//!
//! `--io xdp,uring` (root): the I/O backends side by side instead, on one veth pair between two
//! network namespaces the bench creates (the datapath with one worker on `tern0`, the publisher
//! and subscribers on the far end), interleaved in the same run: worker CPU ns per egress packet
//! for each backend and their ratio. Defaults then to GCM-128 and fan-outs 1, 10, 50.

#[path = "relay-cost/tcp.rs"]
mod tcp;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tcp::{install_tcp, TcpSub};
use tern::datapath::{
    Command, Datapath, DatapathConfig, EgressExtensions, ExtensionRewrite, IoMode, MediaKind,
    Placement, SessionKeys, SubscriptionParams, TcpConfig, TrackRef,
};
use tern::ice::IceCredentials;
use tern::srtp::{Profile, SrtpContext};
use tern_bench::veth::{Veth, SERVER_IF};
use tern_bench::{machine_summary, thread_cpu_ns, webrtc_profile, worker_tids};

const PAYLOAD: usize = 1200 - 12;
/// Packets per video frame burst.
const FRAME: usize = 8;
/// `--extensions`: packets carry this block (one-byte form: abs-send-time as id 2, the
/// transport-wide sequence number as 3, MID "1" as 4), taken out of the payload.
static EXTENSIONS: AtomicBool = AtomicBool::new(false);
/// `--alike`: with `--extensions`, subscribers number extensions as the publisher does, so copies
/// are not renumbered (and `--numbering` overwrites the two values in place).
static ALIKE: AtomicBool = AtomicBool::new(false);
const EXTENSION_BLOCK: [u8; 16] = [
    0xbe, 0xde, 0, 3, 0x22, 1, 2, 3, 0x31, 0, 9, 0x40, b'1', 0, 0, 0,
];

struct Args {
    json: bool,
    quick: bool,
    fanouts: Vec<usize>,
    profiles: Vec<Profile>,
    /// Egress packets per second the source aims for (default 200k: a busy worker).
    rate: u64,
    extensions: bool,
    numbering: bool,
    tcp: bool,
    /// `--io`: compare these backends on a veth pair instead.
    io: Vec<IoMode>,
    /// `--egress N`: egress packets per measurement (default 100k, 20k with `--quick`).
    egress: Option<usize>,
}

fn parse_args() -> Args {
    let mut a = Args {
        json: false,
        quick: false,
        fanouts: vec![1, 10, 50, 200],
        profiles: vec![Profile::AeadAes128Gcm, Profile::Aes128CmHmacSha1_80],
        rate: 200_000,
        extensions: false,
        numbering: false,
        tcp: false,
        io: Vec::new(),
        egress: None,
    };
    let mut fanouts_given = false;
    let mut profiles_given = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => a.json = true,
            "--quick" => a.quick = true,
            "--extensions" => a.extensions = true,
            "--numbering" => a.numbering = true,
            "--alike" => ALIKE.store(true, Ordering::Relaxed),
            "--tcp" => a.tcp = true,
            "--fanout" => {
                let v = it.next().unwrap_or_default();
                a.fanouts = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
                if a.fanouts.is_empty() {
                    eprintln!("relay-cost: --fanout takes a list like 1,10,50");
                    std::process::exit(2);
                }
                fanouts_given = true;
            }
            "--profile" => {
                let v = it.next().unwrap_or_default();
                a.profiles = match v.as_str() {
                    "gcm" => vec![Profile::AeadAes128Gcm],
                    "cm80" => vec![Profile::Aes128CmHmacSha1_80],
                    _ => {
                        eprintln!("relay-cost: --profile is gcm or cm80");
                        std::process::exit(2);
                    }
                };
                profiles_given = true;
            }
            "--rate" => {
                a.rate = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&r| r > 0)
                    .unwrap_or_else(|| {
                        eprintln!(
                            "relay-cost: --rate takes egress packets per second, e.g. 100000"
                        );
                        std::process::exit(2);
                    });
            }
            "--egress" => {
                a.egress = it.next().and_then(|v| v.parse().ok()).filter(|&n| n > 0);
                if a.egress.is_none() {
                    eprintln!("relay-cost: --egress takes a packet count, e.g. 1000000");
                    std::process::exit(2);
                }
            }
            "--io" => {
                let v = it.next().unwrap_or_default();
                a.io = v.split(',').filter_map(|m| m.trim().parse().ok()).collect();
                if a.io.is_empty() || a.io.contains(&IoMode::Auto) {
                    eprintln!("relay-cost: --io takes backends like xdp,uring");
                    std::process::exit(2);
                }
            }
            other => {
                eprintln!("relay-cost: unknown argument '{other}' (use --json, --quick, --fanout L, --profile P, --rate N, --extensions, --alike, --numbering, --tcp, --io L, --egress N)");
                std::process::exit(2);
            }
        }
    }
    if !a.io.is_empty() {
        if !fanouts_given {
            a.fanouts = vec![1, 10, 50];
        }
        if !profiles_given {
            a.profiles = vec![Profile::AeadAes128Gcm];
        }
    }
    a
}
/// Where the datapath and its peers run.
#[derive(Clone)]
struct Net {
    io: IoMode,
    /// The relay's media address, and the peers' address.
    bind: IpAddr,
    peer_ip: IpAddr,
    /// (server, client) namespaces of a veth pair; `None` is loopback in this namespace.
    veth: Option<(PathBuf, PathBuf)>,
}

impl Net {
    fn loopback() -> Net {
        Net {
            io: IoMode::Auto,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            peer_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            veth: None,
        }
    }

    /// A peer socket on the peers' side.
    fn peer_socket(&self) -> UdpSocket {
        let bind = || UdpSocket::bind(SocketAddr::new(self.peer_ip, 0)).expect("peer socket");
        match &self.veth {
            Some((_, client)) => Veth::run_in(client, bind),
            None => bind(),
        }
    }
}

fn rtp(seq: u16, payload: &[u8], buf: &mut [u8]) -> usize {
    buf[0] = 0x80;
    buf[1] = 96;
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&(u32::from(seq) * 90).to_be_bytes());
    buf[8..12].copy_from_slice(&0xabcdu32.to_be_bytes());
    let mut at = 12;
    let mut payload = payload;
    if EXTENSIONS.load(Ordering::Relaxed) {
        buf[0] |= 0x10;
        buf[12..28].copy_from_slice(&EXTENSION_BLOCK);
        at = 28;
        payload = &payload[EXTENSION_BLOCK.len()..];
    }
    buf[at..at + payload.len()].copy_from_slice(payload);
    at + payload.len()
}

/// The floor: seal + sendto per egress packet, on this thread.
fn floor(profile: Profile, egress: usize) -> f64 {
    let sink = UdpSocket::bind("127.0.0.1:0").expect("sink");
    let dst = sink.local_addr().expect("addr");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("socket");
    let mut ctx = SrtpContext::new(
        profile,
        &[7; 32][..profile.key_len()],
        &[9; 14][..profile.salt_len()],
    )
    .expect("keys");
    let payload = vec![0x5a; PAYLOAD];
    let mut buf = [0u8; 1500];
    let drain = std::thread::spawn(move || {
        let mut b = [0u8; 2048];
        sink.set_read_timeout(Some(Duration::from_millis(200))).ok();
        while sink.recv(&mut b).is_ok() {}
    });
    let start = thread_cpu_ns(None);
    for i in 0..egress {
        let len = rtp(i as u16, &payload, &mut buf);
        // The floor protects with the engine's bare primitive cost: a context protect is within
        // a few percent of the raw seal (see srtp-bench), so this is a fair stand-in.
        let n = ctx.protect_rtp(&mut buf, len).expect("seal");
        let _ = sock.send_to(&buf[..n], dst);
    }
    let spent = thread_cpu_ns(None) - start;
    drop(sock);
    let _ = drain.join();
    spent as f64 / egress as f64
}

struct Peer {
    sock: UdpSocket,
    relay: SocketAddr,
}

fn session_keys(profile: Profile) -> SessionKeys {
    SessionKeys {
        profile,
        local_key: vec![1; profile.key_len()],
        local_salt: vec![2; profile.salt_len()],
        remote_key: vec![3; profile.key_len()],
        remote_salt: vec![4; profile.salt_len()],
    }
}

/// Installs session `id` with its keys on `worker`, as the slow path would.
fn add_session(dp: &Datapath, worker: usize, id: u64, profile: Profile) -> IceCredentials {
    let ice = IceCredentials {
        local_ufrag: format!("r{id}"),
        local_pwd: format!("pw-{id}-0123456789abcdef"),
        remote_ufrag: format!("p{id}"),
    };
    dp.send(
        worker,
        Command::AddSession {
            id,
            ice: ice.clone(),
        },
    )
    .expect("add");
    dp.send(
        worker,
        Command::SetKeys {
            session: id,
            keys: session_keys(profile),
        },
    )
    .expect("keys");
    ice
}

fn install(dp: &Datapath, net: &Net, worker: usize, id: u64, profile: Profile) -> Peer {
    let ice = add_session(dp, worker, id, profile);
    let sock = net.peer_socket();
    sock.set_read_timeout(Some(Duration::from_millis(100))).ok();
    let relay = dp.local_addr(worker);
    let username = format!("{}:{}", ice.local_ufrag, ice.remote_ufrag);
    let mut req = [0u8; 200];
    let mut resp = [0u8; 2048];
    for attempt in 0..50u8 {
        let n = tern::ice::write_binding_request(
            &mut req,
            &[attempt; 12],
            username.as_bytes(),
            Some(ice.local_pwd.as_bytes()),
            true,
            1,
        )
        .expect("request");
        sock.send_to(&req[..n], relay).expect("send");
        if let Ok((m, _)) = sock.recv_from(&mut resp) {
            if m > 0 && resp[0] < 4 {
                return Peer { sock, relay };
            }
        }
    }
    panic!("relay-cost: session {id} never passed its connectivity check");
}

/// The publisher: video-shaped input, frames of FRAME packets sent back to back, paced so the
/// relay sends `rate` packets per second (sleeping between frames, so the source does not
/// compete with the relay for the CPU). SRTP with the publisher's key (3/4).
fn send_paced(
    profile: Profile,
    fanout: usize,
    egress_target: usize,
    rate: u64,
    sock: &UdpSocket,
    relay: SocketAddr,
) {
    let mut tx = SrtpContext::new(
        profile,
        &vec![3; profile.key_len()],
        &vec![4; profile.salt_len()],
    )
    .expect("keys");
    let payload = vec![0x5a; PAYLOAD];
    let mut buf = [0u8; 1500];
    let ingress = egress_target.div_ceil(fanout);
    let frames = ingress.div_ceil(FRAME);
    let frame_gap = Duration::from_nanos((1_000_000_000u64 * (FRAME * fanout) as u64) / rate);
    let t0 = Instant::now();
    let mut seq = 0u16;
    for f in 0..frames {
        for _ in 0..FRAME {
            let len = rtp(seq, &payload, &mut buf);
            seq = seq.wrapping_add(1);
            let n = tx.protect_rtp(&mut buf, len).expect("protect");
            let _ = sock.send_to(&buf[..n], relay);
        }
        let due = t0 + frame_gap * (f as u32 + 1);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

/// The baseline: a forwarder written the obvious way on one thread — tokio `UdpSocket`,
/// webrtc-srtp `Context` to decrypt, one webrtc-srtp `Context` per subscriber to encrypt, one
/// `send_to` per egress packet. CPU ns of its thread per egress packet.
fn baseline(profile: Profile, fanout: usize, egress_target: usize, rate: u64) -> f64 {
    use webrtc_srtp::context::Context;
    let wp = webrtc_profile(profile);
    let ctx = |key: u8, salt: u8| {
        Context::new(
            &vec![key; profile.key_len()],
            &vec![salt; profile.salt_len()],
            wp,
            None,
            None,
        )
        .expect("keys")
    };
    let sinks: Vec<UdpSocket> = (0..fanout)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("sink"))
        .collect();
    let dsts: Vec<SocketAddr> = sinks.iter().map(|s| s.local_addr().unwrap()).collect();
    let std_sock = UdpSocket::bind("127.0.0.1:0").expect("forwarder socket");
    std_sock.set_nonblocking(true).expect("nonblocking");
    let relay = std_sock.local_addr().unwrap();
    let (mut rx_ctx, mut tx_ctxs): (Context, Vec<Context>) =
        (ctx(3, 4), (0..fanout).map(|_| ctx(1, 2)).collect());
    let forwarder = std::thread::Builder::new()
        .name("baseline-fwd".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let sock = tokio::net::UdpSocket::from_std(std_sock).expect("tokio socket");
                let mut buf = vec![0u8; 2048];
                let start = thread_cpu_ns(None);
                let mut egress = 0u64;
                loop {
                    let Ok((n, _)) = sock.recv_from(&mut buf).await else {
                        break;
                    };
                    if n == 1 {
                        break; // the end marker
                    }
                    let Ok(plain) = rx_ctx.decrypt_rtp(&buf[..n]) else {
                        continue;
                    };
                    for (tx, dst) in tx_ctxs.iter_mut().zip(&dsts) {
                        if let Ok(sealed) = tx.encrypt_rtp(&plain) {
                            let _ = sock.send_to(&sealed, dst).await;
                            egress += 1;
                        }
                    }
                }
                (thread_cpu_ns(None) - start, egress)
            })
        })
        .expect("forwarder thread");
    let source = UdpSocket::bind("127.0.0.1:0").expect("source");
    send_paced(profile, fanout, egress_target, rate, &source, relay);
    std::thread::sleep(Duration::from_millis(300));
    let _ = source.send_to(&[0], relay);
    let (spent, egress) = forwarder.join().expect("forwarder");
    drop(sinks);
    if egress == 0 {
        eprintln!("relay-cost: baseline sent nothing");
        return f64::NAN;
    }
    spent as f64 / egress as f64
}

/// Tern with `workers` workers: CPU ns of the worker threads per egress packet. With
/// `numbering`, every subscriber stamps its own transport-wide sequence number and
/// abs-send-time (the ids the publisher's packets carry them under with `--extensions`) and
/// remembers each send; with `tcp`, the subscribers are on ICE-TCP (and packets dropped for a
/// lagging reader are not egress).
fn tern(
    profile: Profile,
    (workers, numbering): (usize, bool),
    fanout: usize,
    egress_target: usize,
    rate: u64,
    tcp: bool,
    net: &Net,
) -> f64 {
    let cores = core_ids();
    let placement = if cores.len() >= 2 && workers == 1 {
        Placement::Fixed(vec![cores[1]])
    } else {
        Placement::Unbound(workers)
    };
    let cfg = DatapathConfig {
        placement,
        port_base: 0,
        bind: net.bind,
        io: tern::datapath::IoConfig {
            mode: net.io,
            interface: (net.io == IoMode::Xdp).then(|| SERVER_IF.to_string()),
            ..Default::default()
        },
        // Every subscriber connects from 127.0.0.1.
        tcp: Some(TcpConfig {
            connections_per_ip: 1024,
            ..TcpConfig::default()
        }),
        ..DatapathConfig::default()
    };
    let dp = match &net.veth {
        Some((server, _)) => Veth::run_in(server, || Datapath::start(cfg)),
        None => Datapath::start(cfg),
    }
    .expect("datapath");
    let publisher = install(&dp, net, 0, 1, profile);
    let (mut subs, mut tcp_subs): (Vec<Peer>, Vec<TcpSub>) = (Vec::new(), Vec::new());
    for i in 0..fanout {
        let (w, id) = (i % workers, 100 + i as u64);
        match tcp {
            false => subs.push(install(&dp, net, w, id, profile)),
            true => tcp_subs.push(install_tcp(&dp, w, id, profile)),
        }
    }
    dp.send(
        0,
        Command::Publish {
            session: 1,
            track: 1,
            ssrc: Some(0xabcd),
            by_mid: None,
            kind: MediaKind::Video,
            nack: false,
            rtx: None,
            transport_cc: None,
            codec: None,
            dependency_descriptor: None,
        },
    )
    .expect("publish");
    let alike = ALIKE.load(Ordering::Relaxed);
    for i in 0..fanout {
        let track = TrackRef {
            id: 1,
            worker: 0,
            kind: MediaKind::Video,
        };
        dp.subscribe(
            i % workers,
            100 + i as u64,
            track,
            SubscriptionParams {
                // Another numbering and MID than the publisher's: every copy is renumbered.
                extensions: (EXTENSIONS.load(Ordering::Relaxed) && !alike).then(|| {
                    ExtensionRewrite {
                        ids: vec![(2, 5)],
                        mid: Some((4, 3, b"video-0".to_vec())),
                    }
                }),
                egress: EgressExtensions {
                    transport_cc: numbering.then_some(if alike { 3 } else { 6 }),
                    abs_send_time: numbering.then_some(if alike { 2 } else { 5 }),
                },
                ..SubscriptionParams::with_ssrc(0x5000 + i as u32)
            },
        )
        .expect("subscribe");
    }
    std::thread::sleep(Duration::from_millis(200));
    let tids = worker_tids(workers);
    let before: u64 = tids.iter().map(|&t| thread_cpu_ns(Some(t))).sum();
    let sent = |dp: &Datapath| {
        let c = dp.total_counters();
        c.media_out - c.tcp_dropped_send_buffer_full
    };
    let out_before = sent(&dp);
    send_paced(
        profile,
        fanout,
        egress_target,
        rate,
        &publisher.sock,
        publisher.relay,
    );
    std::thread::sleep(Duration::from_millis(300));
    let after: u64 = tids.iter().map(|&t| thread_cpu_ns(Some(t))).sum();
    let egress = sent(&dp) - out_before;
    let dropped = dp.total_counters().tcp_dropped_send_buffer_full;
    if dropped > 0 {
        eprintln!("relay-cost: {dropped} packets dropped for lagging TCP readers (not counted)");
    }
    drop(dp); // closes the TCP connections, which ends their drain threads
    drop(subs);
    for s in tcp_subs {
        s.finish();
    }
    if egress == 0 {
        eprintln!("relay-cost: no egress packets counted");
        return f64::NAN;
    }
    (after - before) as f64 / egress as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn core_ids() -> Vec<usize> {
    let mut v: Vec<usize> = std::fs::read_dir("/sys/devices/system/cpu")
        .map(|d| {
            d.filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .strip_prefix("cpu")?
                    .parse()
                    .ok()
            })
            .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// `--io`: each backend on the same veth pair, interleaved, one worker.
fn compare_backends(args: &Args, egress: usize, reps: usize) {
    let veth = Veth::new(1).unwrap_or_else(|e| {
        eprintln!("relay-cost: --io needs root to create a veth pair: {e}");
        std::process::exit(1);
    });
    let nets: Vec<Net> = args
        .io
        .iter()
        .map(|&io| Net {
            io,
            bind: veth.server_ip,
            peer_ip: veth.client_ip,
            veth: Some((veth.server_ns(), veth.client_ns())),
        })
        .collect();
    let mut rows = Vec::new();
    for &profile in &args.profiles {
        for &fanout in &args.fanouts {
            let mut samples: Vec<Vec<f64>> = vec![Vec::new(); nets.len()];
            for _ in 0..reps {
                for (net, s) in nets.iter().zip(samples.iter_mut()) {
                    s.push(tern(
                        profile,
                        (1, false),
                        fanout,
                        egress,
                        args.rate,
                        false,
                        net,
                    ));
                }
            }
            let medians: Vec<f64> = samples.into_iter().map(median).collect();
            if args.json {
                for (net, v) in nets.iter().zip(&medians) {
                    println!("{{\"impl\": \"tern-1w-{}\", \"profile\": \"{}\", \"fanout\": {fanout}, \"cpu_ns_per_egress\": {v:.1}}}", net.io, profile.name());
                }
            }
            rows.push((profile, fanout, medians));
        }
    }
    if args.json {
        return;
    }
    println!("# relay-cost --io: {}", machine_summary());
    println!("# one worker on a veth pair (tern0 <-> peer0), worker CPU ns per egress packet");
    print!("{:<24} {:>6}", "profile", "fanout");
    for net in &nets {
        print!(" {:>10}", net.io.as_str());
    }
    for net in &nets[1..] {
        print!(" {:>11}", format!("{}/{}", net.io, nets[0].io));
    }
    println!();
    for (p, fanout, m) in rows {
        print!("{:<24} {:>6}", p.name(), fanout);
        for v in &m {
            print!(" {v:>10.1}");
        }
        for v in &m[1..] {
            print!(" {:>11.3}", v / m[0]);
        }
        println!();
    }
}

fn main() {
    let args = parse_args();
    EXTENSIONS.store(args.extensions, Ordering::Relaxed);
    let egress = args
        .egress
        .unwrap_or(if args.quick { 20_000 } else { 100_000 });
    let reps = if args.quick { 1 } else { 3 };
    if !args.io.is_empty() {
        compare_backends(&args, egress, reps);
        return;
    }
    let net = Net::loopback();
    let mut rows = Vec::new();
    for &profile in &args.profiles {
        for &fanout in &args.fanouts {
            // Median of `reps` runs each, interleaved, so drift hits every implementation alike.
            let (mut fs, mut t1s, mut t2s, mut bs, mut ns, mut tcps) = (
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                vec![f64::NAN],
            );
            for _ in 0..reps {
                fs.push(floor(profile, egress));
                t1s.push(tern(
                    profile,
                    (1, false),
                    fanout,
                    egress,
                    args.rate,
                    false,
                    &net,
                ));
                if args.numbering {
                    ns.push(tern(
                        profile,
                        (1, true),
                        fanout,
                        egress,
                        args.rate,
                        false,
                        &net,
                    ));
                }
                if args.tcp {
                    tcps.push(tern(
                        profile,
                        (1, false),
                        fanout,
                        egress,
                        args.rate,
                        true,
                        &net,
                    ));
                }
                t2s.push(tern(
                    profile,
                    (2, false),
                    fanout,
                    egress,
                    args.rate,
                    false,
                    &net,
                ));
                bs.push(baseline(profile, fanout, egress, args.rate));
            }
            if args.tcp {
                tcps.remove(0);
            }
            let n = if ns.is_empty() { f64::NAN } else { median(ns) };
            let (f, t1, t2, b) = (median(fs), median(t1s), median(t2s), median(bs));
            let tcp = median(tcps);
            for (imp, v) in [
                ("floor", f),
                ("tern-1w", t1),
                ("tern-1w+num", n),
                ("tern-2w", t2),
                ("baseline", b),
                ("tern-1w-tcp", tcp),
            ] {
                if args.json && !v.is_nan() {
                    println!("{{\"impl\": \"{imp}\", \"profile\": \"{}\", \"fanout\": {fanout}, \"cpu_ns_per_egress\": {v:.1}}}", profile.name());
                }
            }
            rows.push((profile, fanout, f, t1, t2, b, n, tcp));
        }
    }
    if !args.json {
        println!("# relay-cost: {}", machine_summary());
        if args.extensions {
            println!("# --extensions: packets carry abs-send-time, transport-wide number and MID");
            if ALIKE.load(Ordering::Relaxed) {
                println!("# --alike: subscribers number extensions as the publisher does");
            } else {
                println!("# Tern renumbers every copy's header extensions");
            }
        }
        print!(
            "{:<24} {:>6} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9}",
            "profile",
            "fanout",
            "floor ns",
            "tern-1w",
            "tern-2w",
            "baseline",
            "1w/floor",
            "2w/1w",
            "base/1w"
        );
        if args.numbering {
            print!(" {:>11} {:>9}", "tern-1w+num", "num/1w");
        }
        println!();
        for &(p, fanout, f, t1, t2, b, n, _) in &rows {
            print!(
                "{:<24} {:>6} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>9.3} {:>9.3} {:>9.3}",
                p.name(),
                fanout,
                f,
                t1,
                t2,
                b,
                t1 / f,
                t2 / t1,
                b / t1
            );
            if args.numbering {
                print!(" {:>11.1} {:>9.3}", n, n / t1);
            }
            println!();
        }
        if args.tcp {
            println!("# ICE-TCP subscribers, one worker, same run");
            let head = ("profile", "fanout", "tern-1w", "1w-tcp", "tcp/udp");
            println!(
                "{:<24} {:>6} {:>10} {:>10} {:>9}",
                head.0, head.1, head.2, head.3, head.4
            );
            for (p, fanout, _, t1, _, _, _, tcp) in rows {
                let name = p.name();
                println!(
                    "{name:<24} {fanout:>6} {t1:>10.1} {tcp:>10.1} {:>9.3}",
                    tcp / t1
                );
            }
        }
    }
}
