//! TEMPORARY std-only stand-in for the io layer (replaced by the io_uring/mmsg branch).
#![allow(missing_docs)]
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IoMode {
    #[default]
    Auto,
    Uring,
    Mmsg,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoKind {
    Uring,
    Mmsg,
}
impl IoKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            IoKind::Uring => "uring",
            IoKind::Mmsg => "mmsg",
        }
    }
}
#[derive(Clone, Debug)]
pub struct IoConfig {
    pub mode: IoMode,
    pub recv_buffers: u16,
    pub buffer_size: usize,
    pub send_slots: usize,
    pub gso: bool,
}
impl Default for IoConfig {
    fn default() -> Self {
        Self {
            mode: IoMode::Auto,
            recv_buffers: 1024,
            buffer_size: 2048,
            send_slots: 2048,
            gso: true,
        }
    }
}
#[derive(Clone, Copy, Debug, Default)]
pub struct IoStats {
    pub recv_packets: u64,
    pub recv_truncated: u64,
    pub send_packets: u64,
    pub send_calls: u64,
    pub gso_sends: u64,
    pub gso_disabled: bool,
    pub send_errors: u64,
    pub send_queue_full: u64,
    pub submits: u64,
}
#[derive(Debug)]
pub struct Waker {
    flag: AtomicBool,
}
impl Waker {
    pub fn new() -> std::io::Result<Waker> {
        Ok(Waker {
            flag: AtomicBool::new(false),
        })
    }
    pub fn wake(&self) {
        self.flag.store(true, Ordering::Relaxed)
    }
}
#[derive(Debug)]
pub struct SendQueue {
    bufs: Vec<Vec<u8>>,
    queued: Vec<(usize, SocketAddr)>,
}
impl SendQueue {
    pub fn slot(&mut self) -> Option<&mut [u8]> {
        let i = self.queued.len();
        self.bufs.get_mut(i).map(|b| &mut b[..])
    }
    pub fn commit(&mut self, len: usize, dst: SocketAddr) {
        self.queued.push((len, dst))
    }
    pub fn queued(&self) -> usize {
        self.queued.len()
    }
}
#[derive(Debug)]
pub struct UdpIo {
    pub tx: SendQueue,
    sock: UdpSocket,
    buf: Vec<u8>,
    _w: Option<Arc<Waker>>,
}
#[derive(Debug, thiserror::Error)]
#[error("io: {0}")]
pub struct IoError(String);
impl UdpIo {
    pub fn new(
        socket: UdpSocket,
        waker: Option<Arc<Waker>>,
        cfg: &IoConfig,
    ) -> Result<UdpIo, IoError> {
        socket
            .set_read_timeout(Some(Duration::from_millis(1)))
            .map_err(|e| IoError(e.to_string()))?;
        Ok(UdpIo {
            tx: SendQueue {
                bufs: vec![vec![0; cfg.buffer_size]; cfg.send_slots],
                queued: Vec::with_capacity(cfg.send_slots),
            },
            sock: socket,
            buf: vec![0; 2048],
            _w: waker,
        })
    }
    pub fn kind(&self) -> IoKind {
        IoKind::Mmsg
    }
    pub fn local_addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }
    pub fn run_once(
        &mut self,
        _timeout: Duration,
        mut on_packet: impl FnMut(&mut [u8], SocketAddr, &mut SendQueue),
    ) -> std::io::Result<usize> {
        self.flush()?;
        let mut n = 0;
        while let Ok((len, src)) = self.sock.recv_from(&mut self.buf) {
            on_packet(&mut self.buf[..len], src, &mut self.tx);
            n += 1;
            self.sock.set_nonblocking(true)?;
        }
        self.sock.set_nonblocking(false)?;
        Ok(n)
    }
    pub fn flush(&mut self) -> std::io::Result<()> {
        for (i, (len, dst)) in self.tx.queued.iter().enumerate() {
            let _ = self.sock.send_to(&self.tx.bufs[i][..*len], dst);
        }
        self.tx.queued.clear();
        Ok(())
    }
    pub fn stats(&self) -> IoStats {
        IoStats::default()
    }
}
