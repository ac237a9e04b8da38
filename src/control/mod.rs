//! The slow path: signalling, DTLS, auth — the only async code.
//!
//! Everything here runs on the slow-path tokio runtime, never on a worker core. It talks to the
//! workers only through `datapath::Command` and `datapath::Event` queues: it never touches a
//! worker's sockets or session table, and it never holds a lock a worker could wait on.

pub mod dtls;
