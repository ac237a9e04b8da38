//! `srtp-bench`: Tern's SRTP engine against the bare backend primitive ("raw") and webrtc-srtp,
//! per profile, packet size and direction, measured in one run.
//!
//! `--json` prints one object per line: {"impl","profile","size","op","ns_per_packet"} (median).
//! Without it, a table with the ratios tern/raw and tern/webrtc-srtp. `--quick` takes fewer
//! samples.

use bytes::Bytes;
use tern::srtp::raw::{AesCtr, AesGcm, HmacSha1};
use tern::srtp::{Profile, SessionKeys, SrtpContext};
use tern_bench::{median_ns_per_item, webrtc_profile};
use webrtc_srtp::context::Context as WebrtcContext;

const BATCH: usize = 256;
const SIZES: [usize; 2] = [160, 1200];
const HEADER: usize = 12;

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Protect,
    Unprotect,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Protect => "protect",
            Op::Unprotect => "unprotect",
        }
    }
}

struct Row {
    imp: &'static str,
    profile: Profile,
    size: usize,
    op: Op,
    ns: f64,
}

fn rtp(seq: u16, size: usize) -> Vec<u8> {
    let mut p = vec![0u8; size];
    p[0] = 0x80;
    p[1] = 96;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    p[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    for (i, b) in p[HEADER..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

const MASTER_KEY: [u8; 32] = [0x3c; 32];
const MASTER_SALT: [u8; 14] = [0x5a; 14];

fn tern_ctx(p: Profile) -> SrtpContext {
    SrtpContext::new(p, &MASTER_KEY[..p.key_len()], &MASTER_SALT[..p.salt_len()]).expect("keys")
}

fn webrtc_ctx(p: Profile) -> WebrtcContext {
    WebrtcContext::new(
        &MASTER_KEY[..p.key_len()],
        &MASTER_SALT[..p.salt_len()],
        webrtc_profile(p),
        None,
        None,
    )
    .expect("keys")
}

/// A batch of packets in their own buffers (room for the tag) and the next sequence number.
struct Batch {
    bufs: Vec<Vec<u8>>,
    lens: Vec<usize>,
    nonces: Vec<[u8; 12]>,
    seq: u16,
}

impl Batch {
    fn new(size: usize) -> Self {
        Self {
            bufs: vec![vec![0u8; size + 32]; BATCH],
            lens: vec![size; BATCH],
            nonces: vec![[0; 12]; BATCH],
            seq: 1,
        }
    }

    /// Fills the batch with fresh plaintext packets of the given size.
    fn fill_plain(&mut self, size: usize) {
        for (buf, len) in self.bufs.iter_mut().zip(&mut self.lens) {
            buf[..size].copy_from_slice(&rtp(self.seq, size));
            *len = size;
            self.seq = self.seq.wrapping_add(1);
        }
    }
}

fn bench_tern(p: Profile, size: usize, op: Op, samples: usize) -> f64 {
    let mut tx = tern_ctx(p);
    let mut rx = tern_ctx(p);
    let mut batch = Batch::new(size);
    match op {
        Op::Protect => median_ns_per_item(
            samples,
            BATCH,
            &mut batch,
            |b| b.fill_plain(size),
            |b| {
                for (buf, len) in b.bufs.iter_mut().zip(&b.lens) {
                    tx.protect_rtp(buf, *len).expect("protect");
                }
            },
        ),
        Op::Unprotect => median_ns_per_item(
            samples,
            BATCH,
            &mut batch,
            |b| {
                b.fill_plain(size);
                for (buf, len) in b.bufs.iter_mut().zip(b.lens.iter_mut()) {
                    *len = tx.protect_rtp(buf, *len).expect("protect");
                }
            },
            |b| {
                for (buf, len) in b.bufs.iter_mut().zip(&b.lens) {
                    rx.unprotect_rtp(&mut buf[..*len]).expect("unprotect");
                }
            },
        ),
    }
}

fn bench_webrtc(p: Profile, size: usize, op: Op, samples: usize) -> f64 {
    let mut tx = webrtc_ctx(p);
    let mut rx = webrtc_ctx(p);
    struct State {
        plain: Vec<Vec<u8>>,
        sealed: Vec<Bytes>,
        seq: u16,
    }
    let mut st = State {
        plain: Vec::new(),
        sealed: Vec::new(),
        seq: 1,
    };
    let fill = move |st: &mut State, seal: bool, tx: &mut WebrtcContext| {
        st.plain.clear();
        st.sealed.clear();
        for _ in 0..BATCH {
            let pkt = rtp(st.seq, size);
            st.seq = st.seq.wrapping_add(1);
            if seal {
                st.sealed.push(tx.encrypt_rtp(&pkt).expect("encrypt"));
            }
            st.plain.push(pkt);
        }
    };
    match op {
        Op::Protect => {
            let mut tx2 = webrtc_ctx(p);
            median_ns_per_item(
                samples,
                BATCH,
                &mut st,
                |st| fill(st, false, &mut tx2),
                |st| {
                    for pkt in &st.plain {
                        std::hint::black_box(tx.encrypt_rtp(pkt).expect("encrypt"));
                    }
                },
            )
        }
        Op::Unprotect => median_ns_per_item(
            samples,
            BATCH,
            &mut st,
            |st| fill(st, true, &mut tx),
            |st| {
                for pkt in &st.sealed {
                    std::hint::black_box(rx.decrypt_rtp(pkt).expect("decrypt"));
                }
            },
        ),
    }
}

/// The bare primitive on the same bytes: AEAD seal/open with the header as AAD, or AES-CTR plus
/// HMAC-SHA1 over the packet (and 4 ROC bytes).
fn bench_raw(p: Profile, size: usize, op: Op, samples: usize) -> f64 {
    let keys = SessionKeys::derive(p, &MASTER_KEY[..p.key_len()], &MASTER_SALT[..p.salt_len()])
        .expect("keys");
    let key = &keys.rtp_key[..p.key_len()];
    let mut batch = Batch::new(size);
    let mut nonce_ctr = 0u64;
    let mut next_iv = move || {
        nonce_ctr += 1;
        let mut iv = [0u8; 16];
        iv[8..].copy_from_slice(&nonce_ctr.to_be_bytes());
        iv
    };
    if p.is_aead() {
        let gcm = AesGcm::new(key).expect("key");
        let nonce = |iv: [u8; 16]| -> [u8; 12] { iv[4..].try_into().expect("12") };
        match op {
            Op::Protect => median_ns_per_item(
                samples,
                BATCH,
                &mut batch,
                |b| b.fill_plain(size),
                |b| {
                    for (buf, len) in b.bufs.iter_mut().zip(&b.lens) {
                        let (h, rest) = buf.split_at_mut(HEADER);
                        let body = len - HEADER;
                        let tag = gcm
                            .seal(nonce(next_iv()), h, &mut rest[..body])
                            .expect("seal");
                        rest[body..body + 16].copy_from_slice(&tag);
                    }
                },
            ),
            Op::Unprotect => median_ns_per_item(
                samples,
                BATCH,
                &mut batch,
                |b| {
                    b.fill_plain(size);
                    for ((buf, len), n) in b
                        .bufs
                        .iter_mut()
                        .zip(b.lens.iter_mut())
                        .zip(b.nonces.iter_mut())
                    {
                        *n = nonce(next_iv());
                        let (h, rest) = buf.split_at_mut(HEADER);
                        let body = *len - HEADER;
                        let tag = gcm.seal(*n, h, &mut rest[..body]).expect("seal");
                        rest[body..body + 16].copy_from_slice(&tag);
                        *len += 16;
                    }
                },
                |b| {
                    for ((buf, len), n) in b.bufs.iter_mut().zip(&b.lens).zip(&b.nonces) {
                        let (h, rest) = buf.split_at_mut(HEADER);
                        gcm.open(*n, h, &mut rest[..len - HEADER]).expect("open");
                    }
                },
            ),
        }
    } else {
        let ctr = AesCtr::new(key).expect("key");
        let mac = HmacSha1::new(&keys.rtp_auth);
        let tag_len = p.rtp_overhead();
        let roc = [0u8; 4];
        match op {
            Op::Protect => median_ns_per_item(
                samples,
                BATCH,
                &mut batch,
                |b| b.fill_plain(size),
                |b| {
                    for (buf, len) in b.bufs.iter_mut().zip(&b.lens) {
                        ctr.apply(next_iv(), &mut buf[HEADER..*len]).expect("ctr");
                        let tag = mac.tag(&buf[..*len], &roc);
                        buf[*len..len + tag_len].copy_from_slice(&tag[..tag_len]);
                    }
                },
            ),
            Op::Unprotect => median_ns_per_item(
                samples,
                BATCH,
                &mut batch,
                |b| {
                    b.fill_plain(size);
                    for (buf, len) in b.bufs.iter_mut().zip(b.lens.iter_mut()) {
                        let tag = mac.tag(&buf[..*len], &roc);
                        buf[*len..*len + tag_len].copy_from_slice(&tag[..tag_len]);
                        *len += tag_len;
                    }
                },
                |b| {
                    for (buf, len) in b.bufs.iter_mut().zip(&b.lens) {
                        let end = len - tag_len;
                        let tag = mac.tag(&buf[..end], &roc);
                        assert!(tag[..tag_len] == buf[end..*len], "tag");
                        ctr.apply(next_iv(), &mut buf[HEADER..end]).expect("ctr");
                    }
                },
            ),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let quick = args.iter().any(|a| a == "--quick");
    if let Some(bad) = args
        .iter()
        .find(|a| !matches!(a.as_str(), "--json" | "--quick"))
    {
        eprintln!("srtp-bench: unknown argument '{bad}' (use --json, --quick)");
        std::process::exit(2);
    }
    let samples = if quick { 40 } else { 300 };
    let mut rows = Vec::new();
    for profile in Profile::ALL {
        for size in SIZES {
            for op in [Op::Protect, Op::Unprotect] {
                // Interleave implementations so drift hits all of them alike.
                let raw = bench_raw(profile, size, op, samples);
                let tern = bench_tern(profile, size, op, samples);
                let webrtc = bench_webrtc(profile, size, op, samples);
                for (imp, ns) in [("tern", tern), ("raw", raw), ("webrtc-srtp", webrtc)] {
                    let row = Row {
                        imp,
                        profile,
                        size,
                        op,
                        ns,
                    };
                    if json {
                        println!(
                            "{{\"impl\": \"{}\", \"profile\": \"{}\", \"size\": {}, \"op\": \"{}\", \"ns_per_packet\": {:.1}}}",
                            row.imp,
                            row.profile.name(),
                            row.size,
                            row.op.name(),
                            row.ns
                        );
                    }
                    rows.push(row);
                }
            }
        }
    }
    if !json {
        println!("# srtp-bench: {}", tern_bench::machine_summary());
        println!(
            "{:<24} {:>5} {:<9} {:>9} {:>9} {:>12} {:>9} {:>12}",
            "profile", "size", "op", "tern ns", "raw ns", "webrtc ns", "tern/raw", "tern/webrtc"
        );
        for chunk in rows.chunks(3) {
            let (t, r, w) = (&chunk[0], &chunk[1], &chunk[2]);
            println!(
                "{:<24} {:>5} {:<9} {:>9.1} {:>9.1} {:>12.1} {:>9.3} {:>12.3}",
                t.profile.name(),
                t.size,
                t.op.name(),
                t.ns,
                r.ns,
                w.ns,
                t.ns / r.ns,
                t.ns / w.ns
            );
        }
    }
}
