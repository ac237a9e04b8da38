//! The slow path: HTTP signalling (WHIP/WHEP), DTLS, auth, rooms, admin and metrics — the only
//! async code.
//!
//! Everything here runs on the slow-path tokio runtime, never on a worker core. It talks to the
//! workers only through `datapath::Command` and `datapath::Event` queues: it never touches a
//! worker's sockets or session table, never holds a lock a worker could wait on, and never
//! touches a media packet — it installs keys and sessions and takes them away.

pub mod auth;
pub mod autolayer;
pub mod cluster;
pub mod dtls;
pub mod http;
mod metrics;
pub mod notify;
pub mod relay;
pub mod rooms;
pub mod server;
