//! The data path: the per-core worker loop, its sockets, its io_uring and its session table.
//!
//! The worker loop will live here: each worker thread is pinned to one core, owns one UDP socket
//! through [`io::UdpIo`], and turns batches of received datagrams into batches of sends without
//! locks, per-packet syscalls or per-packet heap allocation. This module is the only home of
//! `unsafe` in the crate, and only inside [`io`].

pub mod io;
