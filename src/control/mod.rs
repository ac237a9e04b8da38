//! The slow path: signalling, DTLS, auth. Everything here runs on the tokio runtime that owns its
//! own threads, never on a datapath worker's core; it is the only async code in Tern, and it never
//! touches a packet on the fast path — it installs keys and sessions and takes them away.

pub mod auth;
