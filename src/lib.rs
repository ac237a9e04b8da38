//! Tern: a thread-per-core WebRTC media relay.
//!
//! The library holds the protocol cores the relay is built from. `wire` parses and builds packet
//! formats over byte slices; `srtp` protects and unprotects media in place. Both are sans-IO: they
//! never read the clock, never touch a socket and never panic on what the network sends.
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod cc;
pub mod cli;
pub mod config;
pub mod control;
pub mod datapath;
pub mod ice;
pub mod logging;
pub mod pki;
pub mod srtp;
pub mod wire;
