//! The virtual connection the `dtls` crate runs over: datagrams in from a bounded queue (fed by
//! the worker's `Event::Dtls`), datagrams out through a channel (turned into
//! `Command::SendDtls`). It sees every datagram both ways, which is where the crate's lost-final-
//! flight bug is worked around (`FlightLog`). The datagrams read before the crate started (the
//! client's first flight, for `client_hello`) are replayed to it first.
//!
//! It reads only DTLS record headers and, at epoch 0, plaintext handshake headers; it never sees
//! or keeps key material beyond the server's last flight, which is ciphertext.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex as StdMutex};

use async_trait::async_trait;
use tokio::sync::{mpsc, Mutex, Notify};
use tokio::time::{Duration, Instant};
use webrtc_util::Conn;

use super::{DtlsStats, MAX_DATAGRAM};

type UtilResult<T> = Result<T, webrtc_util::Error>;

/// DTLS record content types (RFC 6347 §4.1).
const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
pub(super) const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
/// Handshake message types.
const CLIENT_HELLO: u8 = 1;
const HELLO_VERIFY_REQUEST: u8 = 3;
pub(super) const RECORD_HEADER: usize = 13;

/// A client that retransmits a whole flight may send it in several datagrams: answer the burst
/// once.
const RESEND_SPACING: Duration = Duration::from_millis(100);

/// One DTLS record as the headers show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordInfo<'a> {
    pub content_type: u8,
    pub epoch: u16,
    /// For epoch-0 handshake records: the message type, message sequence and fragment offset.
    pub handshake: Option<(u8, u16, u32)>,
    /// The record's body (after the 13-byte record header).
    pub body: &'a [u8],
}

/// The records of a datagram, stopping at the first truncated one.
pub(crate) fn records(mut d: &[u8]) -> impl Iterator<Item = RecordInfo<'_>> + '_ {
    std::iter::from_fn(move || {
        if d.len() < RECORD_HEADER {
            return None;
        }
        let content_type = d[0];
        let epoch = u16::from_be_bytes([d[3], d[4]]);
        let len = usize::from(u16::from_be_bytes([d[11], d[12]]));
        let body = d.get(RECORD_HEADER..RECORD_HEADER + len)?;
        let handshake = (content_type == HANDSHAKE && epoch == 0 && body.len() >= 12).then(|| {
            let seq = u16::from_be_bytes([body[4], body[5]]);
            let offset = u32::from_be_bytes([0, body[6], body[7], body[8]]);
            (body[0], seq, offset)
        });
        d = &d[RECORD_HEADER + len..];
        Some(RecordInfo {
            content_type,
            epoch,
            handshake,
            body,
        })
    })
}

/// What the server sent last, and whether a retransmitted client flight needs it again.
#[derive(Debug, Default)]
pub(crate) struct FlightLog {
    /// The server's final flight (ChangeCipherSpec + Finished), once sent.
    final_flight: Vec<Vec<u8>>,
    /// Still appending epoch-1 handshake datagrams to `final_flight`.
    recording: bool,
    last_resend: Option<Instant>,
    /// A HelloVerifyRequest was sent and no new initial ClientHello (message sequence 0,
    /// fragment offset 0) arrived since: another HelloVerifyRequest now answers a hello already
    /// answered. The crate does that when a ClientHello arrives in fragments.
    hvr_outstanding: bool,
}

impl FlightLog {
    /// Note a datagram the crate sends. Returns true if it is a duplicate HelloVerifyRequest.
    pub(crate) fn on_outgoing(&mut self, d: &[u8]) -> bool {
        let mut duplicate_hvr = false;
        let mut has_ccs = false;
        let mut only_encrypted_handshake = true;
        let mut any = false;
        for r in records(d) {
            any = true;
            match r.content_type {
                CHANGE_CIPHER_SPEC => has_ccs = true,
                HANDSHAKE if r.epoch == 0 => {
                    only_encrypted_handshake = false;
                    if matches!(r.handshake, Some((HELLO_VERIFY_REQUEST, _, _))) {
                        duplicate_hvr |= self.hvr_outstanding;
                        self.hvr_outstanding = true;
                    }
                }
                HANDSHAKE => {}
                ALERT | APPLICATION_DATA => {
                    only_encrypted_handshake = false;
                    self.recording = false;
                }
                _ => only_encrypted_handshake = false,
            }
        }
        if has_ccs {
            self.final_flight = vec![d.to_vec()];
            self.recording = true;
        } else if self.recording && any && only_encrypted_handshake {
            self.final_flight.push(d.to_vec());
        } else {
            self.recording = false;
        }
        duplicate_hvr
    }

    /// Note a datagram from the peer. Returns the final flight if it must be sent again: the
    /// handshake is over on our side and the peer is still retransmitting its last flight
    /// (RFC 6347 §4.2.4).
    pub(crate) fn on_incoming(&mut self, d: &[u8], now: Instant) -> Option<Vec<Vec<u8>>> {
        let mut epoch0_handshake = false;
        for r in records(d) {
            if r.content_type == HANDSHAKE && r.epoch == 0 {
                epoch0_handshake = true;
                if r.handshake == Some((CLIENT_HELLO, 0, 0)) {
                    self.hvr_outstanding = false;
                }
            }
        }
        if !epoch0_handshake || self.final_flight.is_empty() {
            return None;
        }
        if let Some(last) = self.last_resend {
            if now.saturating_duration_since(last) < RESEND_SPACING {
                return None;
            }
        }
        self.last_resend = Some(now);
        Some(self.final_flight.clone())
    }
}

/// Where `recv` takes datagrams from: first those read before the crate started (the client's
/// first flight, which `client_hello` looked at), then the queue.
struct Incoming {
    replay: VecDeque<Vec<u8>>,
    queue: mpsc::Receiver<Vec<u8>>,
}

/// A `Conn` over two channels. Only the crate's reader task calls `recv`.
pub(crate) struct ChannelConn {
    incoming: Mutex<Incoming>,
    outgoing: mpsc::Sender<Vec<u8>>,
    log: StdMutex<FlightLog>,
    stats: Arc<DtlsStats>,
    /// Signalled once when the incoming queue closes (the session went away).
    pub(crate) input_closed: Arc<Notify>,
}

impl ChannelConn {
    /// `replay`: datagrams already taken from `incoming`, handed to the crate first.
    pub(crate) fn new(
        replay: Vec<Vec<u8>>,
        incoming: mpsc::Receiver<Vec<u8>>,
        outgoing: mpsc::Sender<Vec<u8>>,
        stats: Arc<DtlsStats>,
    ) -> Self {
        ChannelConn {
            incoming: Mutex::new(Incoming {
                replay: replay.into(),
                queue: incoming,
            }),
            outgoing,
            log: StdMutex::new(FlightLog::default()),
            stats,
            input_closed: Arc::new(Notify::new()),
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, FlightLog> {
        // A panic while holding this lock cannot leave the log inconsistent in a way that
        // matters: take it anyway.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The address the crate is shown; it never uses it for routing.
fn placeholder_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
}

#[async_trait]
impl Conn for ChannelConn {
    async fn connect(&self, _addr: SocketAddr) -> UtilResult<()> {
        Err(webrtc_util::Error::Other("not applicable".to_owned()))
    }

    async fn recv(&self, buf: &mut [u8]) -> UtilResult<usize> {
        let mut incoming = self.incoming.lock().await;
        loop {
            let next = match incoming.replay.pop_front() {
                Some(d) => Some(d),
                None => incoming.queue.recv().await,
            };
            let Some(d) = next else {
                // The session is gone. Returning an error would make the crate's reader loop
                // spin; park instead and let `accept` (or dropping the association) end it.
                self.input_closed.notify_one();
                drop(incoming);
                return std::future::pending().await;
            };
            if d.len() > MAX_DATAGRAM || d.len() > buf.len() {
                self.stats.oversize_dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let resend = self.log().on_incoming(&d, Instant::now());
            if let Some(flight) = resend {
                self.stats
                    .final_flight_resent
                    .fetch_add(1, Ordering::Relaxed);
                for datagram in flight {
                    self.outgoing
                        .send(datagram)
                        .await
                        .map_err(|_| webrtc_util::Error::ErrUseClosedNetworkConn)?;
                }
            }
            buf[..d.len()].copy_from_slice(&d);
            return Ok(d.len());
        }
    }

    async fn recv_from(&self, buf: &mut [u8]) -> UtilResult<(usize, SocketAddr)> {
        Ok((self.recv(buf).await?, placeholder_addr()))
    }

    async fn send(&self, buf: &[u8]) -> UtilResult<usize> {
        if self.log().on_outgoing(buf) {
            self.stats
                .duplicate_hello_verify
                .fetch_add(1, Ordering::Relaxed);
        }
        self.outgoing
            .send(buf.to_vec())
            .await
            .map_err(|_| webrtc_util::Error::ErrUseClosedNetworkConn)?;
        Ok(buf.len())
    }

    async fn send_to(&self, buf: &[u8], _target: SocketAddr) -> UtilResult<usize> {
        self.send(buf).await
    }

    fn local_addr(&self) -> UtilResult<SocketAddr> {
        Ok(placeholder_addr())
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(placeholder_addr())
    }

    async fn close(&self) -> UtilResult<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(content_type: u8, epoch: u16, body: &[u8]) -> Vec<u8> {
        let mut r = vec![content_type, 0xfe, 0xfd];
        r.extend_from_slice(&epoch.to_be_bytes());
        r.extend_from_slice(&[0; 6]);
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    fn handshake(msg_type: u8, seq: u16, offset: u32) -> Vec<u8> {
        let mut h = vec![msg_type, 0, 0, 4];
        h.extend_from_slice(&seq.to_be_bytes());
        h.extend_from_slice(&offset.to_be_bytes()[1..]);
        h.extend_from_slice(&[0, 0, 4, 1, 2, 3, 4]);
        record(HANDSHAKE, 0, &h)
    }

    #[test]
    fn records_parse_and_stop_at_truncation() {
        let mut d = handshake(CLIENT_HELLO, 1, 0);
        d.extend(record(CHANGE_CIPHER_SPEC, 0, &[1]));
        d.extend(record(HANDSHAKE, 1, &[9; 40]));
        let got: Vec<_> = records(&d).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].handshake, Some((CLIENT_HELLO, 1, 0)));
        assert_eq!(got[2].epoch, 1);
        assert_eq!(got[2].handshake, None);
        assert_eq!(records(&d[..d.len() - 1]).count(), 2);
        assert_eq!(records(&[22, 0xfe]).count(), 0);
    }

    #[test]
    fn final_flight_is_resent_only_after_it_was_sent() {
        let mut log = FlightLog::default();
        let t0 = Instant::now();
        let client_flight = handshake(11, 2, 0);
        assert_eq!(log.on_incoming(&client_flight, t0), None);
        let mut last = record(CHANGE_CIPHER_SPEC, 0, &[1]);
        last.extend(record(HANDSHAKE, 1, &[7; 40]));
        log.on_outgoing(&last);
        let extra = record(HANDSHAKE, 1, &[8; 40]);
        log.on_outgoing(&extra);
        // Application data from the peer (epoch 1) does not trigger a resend.
        assert_eq!(
            log.on_incoming(&record(APPLICATION_DATA, 1, &[0; 20]), t0),
            None
        );
        assert_eq!(
            log.on_incoming(&client_flight, t0),
            Some(vec![last.clone(), extra.clone()])
        );
        // The rest of the same burst is not answered again…
        assert_eq!(
            log.on_incoming(&client_flight, t0 + RESEND_SPACING / 2),
            None
        );
        // …the next retransmission is.
        assert!(log
            .on_incoming(&client_flight, t0 + RESEND_SPACING)
            .is_some());
        // Our own alert ends the flight: it is not part of what gets resent.
        log.on_outgoing(&record(ALERT, 1, &[0; 20]));
        assert_eq!(
            log.on_incoming(&client_flight, t0 + RESEND_SPACING * 3),
            Some(vec![last, extra])
        );
    }

    #[test]
    fn hello_verify_request_answering_an_answered_hello_is_a_duplicate() {
        let mut log = FlightLog::default();
        let now = Instant::now();
        let hvr = handshake(HELLO_VERIFY_REQUEST, 0, 0);
        log.on_incoming(&handshake(CLIENT_HELLO, 0, 0), now);
        log.on_incoming(&handshake(CLIENT_HELLO, 0, 100), now);
        assert!(!log.on_outgoing(&hvr));
        // The cookie ClientHello (sequence 1) must get a ServerHello, not another HVR.
        log.on_incoming(&handshake(CLIENT_HELLO, 1, 0), now);
        assert!(log.on_outgoing(&hvr));
        // A retransmitted initial ClientHello earns a fresh HelloVerifyRequest.
        log.on_incoming(&handshake(CLIENT_HELLO, 0, 0), now);
        assert!(!log.on_outgoing(&hvr));
        assert!(!log.on_outgoing(&handshake(2, 1, 0)));
    }
}
