//! The XDP program, assembled in Rust: eBPF instructions built at start-up with the relay's media
//! address and worker ports as immediates, so no clang, no ELF object and no map lookup per
//! packet.
//!
//! The program redirects a frame into the socket map slot of its receive queue only if it is UDP
//! (IPv4 without options and not a fragment, or IPv6 with UDP as the first next header) whose
//! destination address is the media address and whose destination port is a worker's. Everything
//! else — ARP, ICMP, TCP (HTTP, SSH), other UDP, VLAN-tagged or fragmented frames — passes to the
//! kernel untouched (`XDP_PASS`), and so does a media frame on a queue with no socket
//! (`bpf_redirect_map`'s default action). This file is plain safe code: it only builds bytes.

use std::net::IpAddr;

/// `BPF_PSEUDO_MAP_FD`: the immediate of a `ld_imm64` is a map file descriptor.
const PSEUDO_MAP_FD: u8 = 1;
/// `XDP_PASS`.
pub(super) const XDP_PASS: i32 = 2;
/// `BPF_FUNC_redirect_map`.
const FUNC_REDIRECT_MAP: i32 = 51;

// Instruction classes, sizes, modes, operations and sources (linux/bpf_common.h, linux/bpf.h).
const LDX: u8 = 0x01;
const ALU64: u8 = 0x07;
const JMP: u8 = 0x05;
const JMP32: u8 = 0x06;
const W: u8 = 0x00;
const H: u8 = 0x08;
const B: u8 = 0x10;
const MEM: u8 = 0x60;
const ADD: u8 = 0x00;
const AND: u8 = 0x50;
const MOV: u8 = 0xb0;
const JA: u8 = 0x00;
const JEQ: u8 = 0x10;
const JGT: u8 = 0x20;
const JNE: u8 = 0x50;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;
const K: u8 = 0x00;
const X: u8 = 0x08;

/// `struct xdp_md` field offsets.
const MD_DATA: i16 = 0;
const MD_DATA_END: i16 = 4;
const MD_RX_QUEUE_INDEX: i16 = 16;

const ETH_LEN: i16 = 14;
const IPV4_LEN: i16 = 20;
const IPV6_LEN: i16 = 40;
const UDP_LEN: i16 = 8;

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    /// The instruction in the kernel's byte layout.
    pub(super) fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.dst & 0x0f) | (self.src << 4);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

/// A label: a jump target resolved when the program is finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Label(usize);

/// A tiny assembler: instructions plus forward jumps to labels.
#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    /// (instruction index, label) of every jump to patch.
    fixups: Vec<(usize, Label)>,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    fn bind(&mut self, l: Label) {
        self.labels[l.0] = Some(self.insns.len());
    }

    fn op(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.insns.push(Insn {
            code,
            dst,
            src,
            off,
            imm,
        });
    }

    fn mov_reg(&mut self, dst: u8, src: u8) {
        self.op(ALU64 | MOV | X, dst, src, 0, 0);
    }

    fn mov_imm(&mut self, dst: u8, imm: i32) {
        self.op(ALU64 | MOV | K, dst, 0, 0, imm);
    }

    fn add_imm(&mut self, dst: u8, imm: i32) {
        self.op(ALU64 | ADD | K, dst, 0, 0, imm);
    }

    fn and_imm(&mut self, dst: u8, imm: i32) {
        self.op(ALU64 | AND | K, dst, 0, 0, imm);
    }

    /// `dst = *(size *)(src + off)`.
    fn load(&mut self, size: u8, dst: u8, src: u8, off: i16) {
        self.op(LDX | MEM | size, dst, src, off, 0);
    }

    fn jump(&mut self, code: u8, dst: u8, src: u8, imm: i32, to: Label) {
        self.fixups.push((self.insns.len(), to));
        self.op(code, dst, src, 0, imm);
    }

    /// `if (u32)dst != imm goto to` (a 32-bit compare, so immediates above 2^31 work).
    fn jne32(&mut self, dst: u8, imm: u32, to: Label) {
        self.jump(JMP32 | JNE | K, dst, 0, imm as i32, to);
    }

    /// `if (u32)dst == imm goto to`.
    fn jeq32(&mut self, dst: u8, imm: u32, to: Label) {
        self.jump(JMP32 | JEQ | K, dst, 0, imm as i32, to);
    }

    fn ja(&mut self, to: Label) {
        self.jump(JMP | JA, 0, 0, 0, to);
    }

    /// `r{ptr} = r{data} + len; if r{ptr} > r{end} goto to`: the bounds check the verifier needs
    /// before any load below `data + len`.
    fn need(&mut self, ptr: u8, data: u8, end: u8, len: i16, to: Label) {
        self.mov_reg(ptr, data);
        self.add_imm(ptr, i32::from(len));
        self.jump(JMP | JGT | X, ptr, end, 0, to);
    }

    /// `r1 = map_fd` (a two-slot `ld_imm64` the kernel rewrites to the map's address).
    fn load_map_fd(&mut self, dst: u8, fd: i32) {
        self.op(0x18, dst, PSEUDO_MAP_FD, 0, fd);
        self.op(0, 0, 0, 0, 0);
    }

    fn call(&mut self, func: i32) {
        self.op(JMP | CALL, 0, 0, 0, func);
    }

    fn exit(&mut self) {
        self.op(JMP | EXIT, 0, 0, 0, 0);
    }

    fn finish(mut self) -> Vec<Insn> {
        for &(at, Label(l)) in &self.fixups {
            let target = self.labels[l].expect("every label is bound");
            self.insns[at].off = (target as i64 - at as i64 - 1) as i16;
        }
        self.insns
    }
}

/// A value as the little-endian CPU sees network-order bytes loaded from a packet.
fn wire16(v: u16) -> u32 {
    u32::from(u16::from_le_bytes(v.to_be_bytes()))
}

fn wire32(bytes: [u8; 4]) -> u32 {
    u32::from_le_bytes(bytes)
}

/// The redirect program for media to `local` on `ports`, with the socket map `map_fd`.
pub(super) fn media_redirect(local: IpAddr, ports: &[u16], map_fd: i32) -> Vec<Insn> {
    // r6 = ctx, r2 = data, r3 = data_end, r4 = bounds scratch, r5 = loaded field.
    let mut a = Asm::default();
    let (pass, ports_check, redirect) = (a.label(), a.label(), a.label());
    a.mov_reg(6, 1);
    a.load(W, 2, 1, MD_DATA);
    a.load(W, 3, 1, MD_DATA_END);
    a.need(4, 2, 3, ETH_LEN, pass);
    a.load(H, 5, 2, 12);
    match local {
        IpAddr::V4(ip) => {
            a.jne32(5, wire16(0x0800), pass);
            a.need(4, 2, 3, ETH_LEN + IPV4_LEN + UDP_LEN, pass);
            // Version 4, a 20-byte header: media never carries IP options.
            a.load(B, 5, 2, ETH_LEN);
            a.jne32(5, 0x45, pass);
            a.load(B, 5, 2, ETH_LEN + 9);
            a.jne32(5, 17, pass);
            // More-fragments flag and fragment offset: fragments go to the kernel to reassemble.
            a.load(H, 5, 2, ETH_LEN + 6);
            a.and_imm(5, wire16(0x3fff) as i32);
            a.jne32(5, 0, pass);
            a.load(W, 5, 2, ETH_LEN + 16);
            a.jne32(5, wire32(ip.octets()), pass);
            a.load(H, 5, 2, ETH_LEN + IPV4_LEN + 2);
        }
        IpAddr::V6(ip) => {
            a.jne32(5, wire16(0x86dd), pass);
            a.need(4, 2, 3, ETH_LEN + IPV6_LEN + UDP_LEN, pass);
            a.load(B, 5, 2, ETH_LEN + 6);
            a.jne32(5, 17, pass);
            let o = ip.octets();
            for (i, word) in o.chunks_exact(4).enumerate() {
                a.load(W, 5, 2, ETH_LEN + 24 + 4 * i as i16);
                a.jne32(5, wire32([word[0], word[1], word[2], word[3]]), pass);
            }
            a.load(H, 5, 2, ETH_LEN + IPV6_LEN + 2);
        }
    }
    a.bind(ports_check);
    for &p in ports {
        a.jeq32(5, wire16(p), redirect);
    }
    a.ja(pass);
    a.bind(redirect);
    a.load(W, 2, 6, MD_RX_QUEUE_INDEX);
    a.load_map_fd(1, map_fd);
    // The default action when the queue has no socket: pass to the kernel.
    a.mov_imm(3, XDP_PASS);
    a.call(FUNC_REDIRECT_MAP);
    a.exit();
    a.bind(pass);
    a.mov_imm(0, XDP_PASS);
    a.exit();
    a.finish()
}

/// The program's bytes for `BPF_PROG_LOAD`.
pub(super) fn encode(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(Insn::encode).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal interpreter of exactly the instructions `media_redirect` emits, so the
    /// program's decisions can be checked on frames without a kernel. Returns `Some(queue)` for a
    /// redirect to the map slot of `queue`, `None` for `XDP_PASS`.
    fn run(prog: &[Insn], frame: &[u8], queue: u32) -> Option<u32> {
        let mut r = [0u64; 11];
        // Packet pointers are modelled as offsets from a fake base.
        const BASE: u64 = 0x1000;
        r[1] = 0; // ctx
        let mut pc = 0;
        loop {
            let i = prog[pc];
            let (d, s) = (usize::from(i.dst), usize::from(i.src));
            pc += 1;
            match i.code {
                c if c == ALU64 | MOV | X => r[d] = r[s],
                c if c == ALU64 | MOV | K => r[d] = i.imm as i64 as u64,
                c if c == ALU64 | ADD | K => r[d] = r[d].wrapping_add(i.imm as i64 as u64),
                c if c == ALU64 | AND | K => r[d] &= i.imm as i64 as u64,
                c if c & 0x07 == LDX => {
                    let size = match c & 0x18 {
                        W => 4,
                        H => 2,
                        B => 1,
                        _ => panic!("load size"),
                    };
                    let v = if s == 1 || s == 6 {
                        // ctx loads
                        match i.off {
                            MD_DATA => BASE,
                            MD_DATA_END => BASE + frame.len() as u64,
                            MD_RX_QUEUE_INDEX => u64::from(queue),
                            _ => panic!("ctx offset {}", i.off),
                        }
                    } else {
                        let at = (r[s] - BASE) as usize + i.off as usize;
                        let bytes = &frame[at..at + size];
                        let mut le = [0u8; 8];
                        le[..size].copy_from_slice(bytes);
                        u64::from_le_bytes(le)
                    };
                    r[d] = v;
                }
                c if c == JMP | JGT | X => {
                    if r[d] > r[s] {
                        pc = (pc as i64 + i64::from(i.off)) as usize;
                    }
                }
                c if c == JMP32 | JNE | K => {
                    if r[d] as u32 != i.imm as u32 {
                        pc = (pc as i64 + i64::from(i.off)) as usize;
                    }
                }
                c if c == JMP32 | JEQ | K => {
                    if r[d] as u32 == i.imm as u32 {
                        pc = (pc as i64 + i64::from(i.off)) as usize;
                    }
                }
                c if c == JMP | JA => pc = (pc as i64 + i64::from(i.off)) as usize,
                0x18 => {
                    assert_eq!(i.src, PSEUDO_MAP_FD);
                    r[d] = 0xfeed;
                    pc += 1;
                }
                c if c == JMP | CALL => {
                    assert_eq!(i.imm, FUNC_REDIRECT_MAP);
                    assert_eq!(r[1], 0xfeed, "r1 is the map");
                    assert_eq!(r[3], XDP_PASS as u64, "default action");
                    return Some(r[2] as u32);
                }
                c if c == JMP | EXIT => {
                    assert_eq!(r[0], XDP_PASS as u64);
                    return None;
                }
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn eth(ethertype: u16) -> Vec<u8> {
        let mut f = vec![0xaa; 12];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    fn udp4(dst: [u8; 4], port: u16) -> Vec<u8> {
        let mut f = eth(0x0800);
        f.extend_from_slice(&[0x45, 0, 0, 48, 0, 0, 0x40, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&[192, 0, 2, 1]);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&5000u16.to_be_bytes());
        f.extend_from_slice(&port.to_be_bytes());
        f.extend_from_slice(&[0, 28, 0, 0]);
        f.extend_from_slice(&[0x80; 20]);
        f
    }

    fn udp6(dst: [u8; 16], next: u8, port: u16) -> Vec<u8> {
        let mut f = eth(0x86dd);
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, 28, next, 64]);
        f.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&5000u16.to_be_bytes());
        f.extend_from_slice(&port.to_be_bytes());
        f.extend_from_slice(&[0, 28, 0, 0]);
        f.extend_from_slice(&[0x80; 20]);
        f
    }

    #[test]
    fn redirects_only_media_to_the_relay_over_ipv4() {
        let local: IpAddr = "10.1.2.3".parse().unwrap();
        let prog = media_redirect(local, &[40000, 40001], 7);
        assert_eq!(run(&prog, &udp4([10, 1, 2, 3], 40000), 0), Some(0));
        assert_eq!(run(&prog, &udp4([10, 1, 2, 3], 40001), 1), Some(1));
        assert_eq!(
            run(&prog, &udp4([10, 1, 2, 3], 40002), 0),
            None,
            "not a worker port"
        );
        assert_eq!(
            run(&prog, &udp4([10, 1, 2, 4], 40000), 0),
            None,
            "another address"
        );
        // An address above 2^31 in little-endian terms still compares right.
        let high: IpAddr = "10.1.2.200".parse().unwrap();
        let prog_high = media_redirect(high, &[40000], 7);
        assert_eq!(run(&prog_high, &udp4([10, 1, 2, 200], 40000), 0), Some(0));
        let mut tcp = udp4([10, 1, 2, 3], 40000);
        tcp[14 + 9] = 6;
        assert_eq!(run(&prog, &tcp, 0), None, "TCP passes");
        let mut frag = udp4([10, 1, 2, 3], 40000);
        frag[14 + 6] = 0x20; // more fragments
        assert_eq!(run(&prog, &frag, 0), None, "fragments pass");
        let mut later = udp4([10, 1, 2, 3], 40000);
        later[14 + 7] = 0x10; // offset
        assert_eq!(run(&prog, &later, 0), None, "later fragments pass");
        let mut opts = udp4([10, 1, 2, 3], 40000);
        opts[14] = 0x46;
        assert_eq!(run(&prog, &opts, 0), None, "IP options pass");
        assert_eq!(run(&prog, &eth(0x0806), 0), None, "ARP passes");
        assert_eq!(
            run(&prog, &udp4([10, 1, 2, 3], 40000)[..40], 0),
            None,
            "short"
        );
        assert_eq!(run(&prog, &[0; 10], 0), None, "runt");
        let v6 = udp6([0; 16], 17, 40000);
        assert_eq!(run(&prog, &v6, 0), None, "IPv6 to an IPv4 relay passes");
    }

    #[test]
    fn redirects_only_media_to_the_relay_over_ipv6() {
        let local: IpAddr = "fd00:13::2".parse().unwrap();
        let o = match local {
            IpAddr::V6(a) => a.octets(),
            IpAddr::V4(_) => unreachable!(),
        };
        let prog = media_redirect(local, &[40000], 3);
        assert_eq!(run(&prog, &udp6(o, 17, 40000), 1), Some(1));
        assert_eq!(run(&prog, &udp6(o, 6, 40000), 1), None, "TCP passes");
        assert_eq!(
            run(&prog, &udp6(o, 0, 40000), 1),
            None,
            "extension headers pass"
        );
        assert_eq!(run(&prog, &udp6(o, 17, 41000), 1), None);
        let mut other = o;
        other[15] ^= 1;
        assert_eq!(run(&prog, &udp6(other, 17, 40000), 1), None);
        assert_eq!(run(&prog, &udp6(o, 58, 40000), 1), None, "ICMPv6 passes");
        assert_eq!(run(&prog, &udp4([10, 0, 0, 1], 40000), 0), None);
    }

    #[test]
    fn encodes_registers_and_offsets_like_the_kernel() {
        let i = Insn {
            code: LDX | MEM | H,
            dst: 5,
            src: 2,
            off: 12,
            imm: 0,
        };
        assert_eq!(i.encode(), [0x69, 0x25, 12, 0, 0, 0, 0, 0]);
        let j = Insn {
            code: JMP32 | JNE | K,
            dst: 5,
            src: 0,
            off: -3,
            imm: 0x0008,
        };
        assert_eq!(j.encode(), [0x56, 0x05, 0xfd, 0xff, 8, 0, 0, 0]);
        let prog = media_redirect("10.0.0.1".parse().unwrap(), &[1], 9);
        assert_eq!(encode(&prog).len(), prog.len() * 8);
        assert!(prog.len() < 64, "{} instructions", prog.len());
    }
}
