//! Helpers shared by the integration tests: RTP packet shapes and hex.
#![allow(dead_code)]

use proptest::prelude::*;
use tern::srtp::Profile;

/// What an RTP header may carry beyond the fixed part.
#[derive(Debug, Clone)]
pub enum Extension {
    None,
    /// RFC 8285 one-byte elements: (id 1..=14, data 1..=16 bytes).
    OneByte(Vec<(u8, Vec<u8>)>),
    /// RFC 8285 two-byte elements: (id 1..=255, data 0..=255 bytes).
    TwoByte(Vec<(u8, Vec<u8>)>),
}

/// A plaintext RTP packet description.
#[derive(Debug, Clone)]
pub struct RtpShape {
    pub payload_type: u8,
    pub marker: bool,
    pub ssrc: u32,
    pub timestamp: u32,
    pub csrcs: Vec<u32>,
    pub extension: Extension,
    pub payload: Vec<u8>,
    /// Padding bytes (0 = no padding); the last one holds the count.
    pub padding: u8,
}

impl RtpShape {
    /// The packet with sequence number `seq`.
    pub fn build(&self, seq: u16) -> Vec<u8> {
        let mut p = Vec::with_capacity(1500);
        let b0 = 0x80
            | if self.padding > 0 { 0x20 } else { 0 }
            | if matches!(self.extension, Extension::None) {
                0
            } else {
                0x10
            }
            | self.csrcs.len() as u8;
        p.push(b0);
        p.push(self.payload_type | if self.marker { 0x80 } else { 0 });
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&self.timestamp.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in &self.csrcs {
            p.extend_from_slice(&c.to_be_bytes());
        }
        let mut ext = Vec::new();
        let profile: u16 = match &self.extension {
            Extension::None => 0,
            Extension::OneByte(elems) => {
                for (id, data) in elems {
                    ext.push((id << 4) | (data.len() as u8 - 1));
                    ext.extend_from_slice(data);
                }
                0xBEDE
            }
            Extension::TwoByte(elems) => {
                for (id, data) in elems {
                    ext.push(*id);
                    ext.push(data.len() as u8);
                    ext.extend_from_slice(data);
                }
                0x1000
            }
        };
        if profile != 0 {
            while ext.len() % 4 != 0 {
                ext.push(0);
            }
            p.extend_from_slice(&profile.to_be_bytes());
            p.extend_from_slice(&((ext.len() / 4) as u16).to_be_bytes());
            p.extend_from_slice(&ext);
        }
        p.extend_from_slice(&self.payload);
        if self.padding > 0 {
            p.extend(std::iter::repeat_n(0u8, usize::from(self.padding) - 1));
            p.push(self.padding);
        }
        p
    }
}

pub fn extension() -> impl Strategy<Value = Extension> {
    prop_oneof![
        Just(Extension::None),
        prop::collection::vec((1u8..=14, prop::collection::vec(any::<u8>(), 1..=16)), 1..4)
            .prop_map(Extension::OneByte),
        prop::collection::vec(
            (1u8..=255, prop::collection::vec(any::<u8>(), 0..=40)),
            1..4
        )
        .prop_map(Extension::TwoByte),
    ]
}

pub fn rtp_shape(max_payload: usize) -> impl Strategy<Value = RtpShape> {
    (
        96u8..=127,
        any::<bool>(),
        any::<u32>(),
        any::<u32>(),
        prop::collection::vec(any::<u32>(), 0..=15),
        extension(),
        prop::collection::vec(any::<u8>(), 1..=max_payload),
        prop_oneof![Just(0u8), 1u8..=32],
    )
        .prop_map(
            |(payload_type, marker, ssrc, timestamp, csrcs, extension, payload, padding)| {
                RtpShape {
                    payload_type,
                    marker,
                    ssrc,
                    timestamp,
                    csrcs,
                    extension,
                    payload,
                    padding,
                }
            },
        )
}

pub fn profile() -> impl Strategy<Value = Profile> {
    prop::sample::select(Profile::ALL.to_vec())
}

pub fn oracle_profile(p: Profile) -> webrtc_srtp::protection_profile::ProtectionProfile {
    use webrtc_srtp::protection_profile::ProtectionProfile as P;
    match p {
        Profile::Aes128CmHmacSha1_80 => P::Aes128CmHmacSha1_80,
        Profile::Aes128CmHmacSha1_32 => P::Aes128CmHmacSha1_32,
        Profile::AeadAes128Gcm => P::AeadAes128Gcm,
        Profile::AeadAes256Gcm => P::AeadAes256Gcm,
        _ => unreachable!("a profile the oracle does not know"),
    }
}

pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
pub mod fanout;
pub mod peer;
pub mod tcp_peer;
