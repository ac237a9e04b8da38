//! A small etcd v3 client over etcd's JSON gateway (`/v3/kv/*`, `/v3/lease/*`, `/v3/watch`):
//! leases, puts, ranges, transactions and resumable watches — what the cluster uses, nothing
//! more.
//!
//! Why not the `etcd-client` crate: it generates its gRPC code at build time with `protoc`,
//! which a fresh machine does not have, and it brings tonic and prost (a further ~70 crates) into
//! every build; the JSON gateway is part of etcd's documented v3 API and needs only the HTTP
//! client the relay already has (`perf-reports/2026-12-05-cluster.md`). Keys and values are bytes,
//! base64 on the wire; 64-bit integers travel as JSON strings, and fields at their default value
//! are left out by the gateway (a PUT event has no `type`, a failed transaction no `succeeded`).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

/// Why an etcd call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EtcdError {
    /// No endpoint answered (connection refused, timeout): etcd is down or unreachable.
    #[error("etcd unreachable: {0}")]
    Unreachable(String),
    /// etcd answered with an error (HTTP status and its message).
    #[error("etcd refused the request: {0}")]
    Refused(String),
    /// The answer was not what the API documents.
    #[error("unexpected answer from etcd: {0}")]
    Protocol(String),
}

/// One key-value pair as etcd stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub lease: i64,
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    Put(KeyValue),
    /// The key was deleted (or its lease expired); `kv.value` is empty.
    Delete(KeyValue),
}

/// What a transaction compares before it runs its success (or failure) operations.
#[derive(Debug, Clone)]
pub enum Compare {
    /// The key does not exist (its create revision is 0).
    Absent(Vec<u8>),
    /// The key was last modified at this revision.
    ModRevision(Vec<u8>, i64),
    /// The key holds exactly this value.
    Value(Vec<u8>, Vec<u8>),
}

/// An operation inside a transaction.
#[derive(Debug, Clone)]
pub enum Op {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: i64,
    },
    Delete(Vec<u8>),
    Get(Vec<u8>),
}

/// A transaction's outcome: whether the comparisons held, and the keys its `Get`s found.
#[derive(Debug, Clone, Default)]
pub struct TxnResult {
    pub succeeded: bool,
    pub found: Vec<KeyValue>,
}

/// The client: a list of endpoints, tried in order until one answers.
#[derive(Debug, Clone)]
pub struct Etcd {
    endpoints: Vec<String>,
    http: reqwest::Client,
    /// For watches: no overall timeout, only the connect timeout.
    stream_http: reqwest::Client,
}

#[derive(Deserialize)]
struct RawKv {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    create_revision: Option<String>,
    #[serde(default)]
    mod_revision: Option<String>,
    #[serde(default)]
    lease: Option<String>,
}

fn int(v: &Option<String>) -> i64 {
    v.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn int_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

impl RawKv {
    fn decode(self) -> Result<KeyValue, EtcdError> {
        let bad = |e: base64::DecodeError| EtcdError::Protocol(format!("base64: {e}"));
        Ok(KeyValue {
            key: B64.decode(&self.key).map_err(bad)?,
            value: B64.decode(&self.value).map_err(bad)?,
            create_revision: int(&self.create_revision),
            mod_revision: int(&self.mod_revision),
            lease: int(&self.lease),
        })
    }
}

fn kvs(v: &Value) -> Result<Vec<KeyValue>, EtcdError> {
    let Some(list) = v.get("kvs") else {
        return Ok(Vec::new());
    };
    let raw: Vec<RawKv> = serde_json::from_value(list.clone())
        .map_err(|e| EtcdError::Protocol(format!("kvs: {e}")))?;
    raw.into_iter().map(RawKv::decode).collect()
}

/// The end of the range that holds every key starting with `prefix` (etcd's `range_end`).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

impl Compare {
    fn to_json(&self) -> Value {
        match self {
            Compare::Absent(k) => json!({"key": B64.encode(k), "target": "CREATE",
                "result": "EQUAL", "create_revision": "0"}),
            Compare::ModRevision(k, r) => json!({"key": B64.encode(k), "target": "MOD",
                "result": "EQUAL", "mod_revision": r.to_string()}),
            Compare::Value(k, v) => json!({"key": B64.encode(k), "target": "VALUE",
                "result": "EQUAL", "value": B64.encode(v)}),
        }
    }
}

impl Op {
    fn to_json(&self) -> Value {
        match self {
            Op::Put { key, value, lease } => json!({"request_put": {"key": B64.encode(key),
                "value": B64.encode(value), "lease": lease.to_string()}}),
            Op::Delete(k) => json!({"request_delete_range": {"key": B64.encode(k)}}),
            Op::Get(k) => json!({"request_range": {"key": B64.encode(k)}}),
        }
    }
}

impl Etcd {
    /// A client for `endpoints` (`http://host:port`); each call gives up after `timeout`.
    pub fn new(endpoints: &[String], timeout: Duration) -> Result<Self, EtcdError> {
        let build = |overall: Option<Duration>| {
            let mut b = reqwest::Client::builder()
                .connect_timeout(timeout.min(Duration::from_secs(1)))
                .redirect(reqwest::redirect::Policy::none());
            if let Some(t) = overall {
                b = b.timeout(t);
            }
            b.build()
                .map_err(|e| EtcdError::Protocol(format!("HTTP client: {e}")))
        };
        Ok(Self {
            endpoints: endpoints
                .iter()
                .map(|e| e.trim_end_matches('/').to_string())
                .collect(),
            http: build(Some(timeout))?,
            stream_http: build(None)?,
        })
    }

    /// POSTs `body` to `path` on the first endpoint that answers.
    async fn call(&self, path: &str, body: Value) -> Result<Value, EtcdError> {
        let mut last = String::from("no endpoint configured");
        for base in &self.endpoints {
            let resp = match self
                .http
                .post(format!("{base}{path}"))
                .json(&body)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    last = format!("{base}: {e}");
                    continue;
                }
            };
            let status = resp.status();
            let text = resp
                .text()
                .await
                .map_err(|e| EtcdError::Unreachable(format!("{base}: {e}")))?;
            if !status.is_success() {
                return Err(EtcdError::Refused(format!(
                    "{status}: {}",
                    text.chars().take(200).collect::<String>()
                )));
            }
            return serde_json::from_str(&text)
                .map_err(|e| EtcdError::Protocol(format!("{path}: {e}")));
        }
        Err(EtcdError::Unreachable(last))
    }

    /// A lease of `ttl` (whole seconds, at least 1): its id.
    pub async fn grant(&self, ttl: Duration) -> Result<i64, EtcdError> {
        let v = self
            .call("/v3/lease/grant", json!({"TTL": ttl.as_secs().max(1)}))
            .await?;
        match int_value(v.get("ID")) {
            0 => Err(EtcdError::Protocol("lease grant without an ID".into())),
            id => Ok(id),
        }
    }

    /// Renews `lease`: its remaining TTL in seconds, or 0 when etcd no longer has it.
    pub async fn keep_alive(&self, lease: i64) -> Result<i64, EtcdError> {
        let v = self
            .call("/v3/lease/keepalive", json!({"ID": lease.to_string()}))
            .await?;
        Ok(int_value(v.get("result").and_then(|r| r.get("TTL"))))
    }

    /// Ends `lease` now: every key attached to it is deleted.
    pub async fn revoke(&self, lease: i64) -> Result<(), EtcdError> {
        self.call("/v3/lease/revoke", json!({"ID": lease.to_string()}))
            .await
            .map(|_| ())
    }

    /// Sets `key` to `value`, attached to `lease` (0: none).
    pub async fn put(&self, key: &[u8], value: &[u8], lease: i64) -> Result<(), EtcdError> {
        let mut body = json!({"key": B64.encode(key), "value": B64.encode(value)});
        if lease != 0 {
            body["lease"] = json!(lease.to_string());
        }
        self.call("/v3/kv/put", body).await.map(|_| ())
    }

    /// Every key starting with `prefix`, and the store's revision when they were read.
    pub async fn get_prefix(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, i64), EtcdError> {
        let v = self
            .call(
                "/v3/kv/range",
                json!({"key": B64.encode(prefix), "range_end": B64.encode(prefix_end(prefix))}),
            )
            .await?;
        let revision = int_value(v.get("header").and_then(|h| h.get("revision")));
        Ok((kvs(&v)?, revision))
    }

    /// Runs `success` if every comparison holds, else `failure`, atomically.
    pub async fn txn(
        &self,
        compare: &[Compare],
        success: &[Op],
        failure: &[Op],
    ) -> Result<TxnResult, EtcdError> {
        let body = json!({
            "compare": compare.iter().map(Compare::to_json).collect::<Vec<_>>(),
            "success": success.iter().map(Op::to_json).collect::<Vec<_>>(),
            "failure": failure.iter().map(Op::to_json).collect::<Vec<_>>(),
        });
        let v = self.call("/v3/kv/txn", body).await?;
        let mut found = Vec::new();
        for r in v
            .get("responses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(range) = r.get("response_range") {
                found.extend(kvs(range)?);
            }
        }
        Ok(TxnResult {
            succeeded: v.get("succeeded").and_then(Value::as_bool).unwrap_or(false),
            found,
        })
    }

    /// Watches every key under `prefix` from `start_revision` on (inclusive): the stream of
    /// changes, in order and without gaps, until the connection ends.
    pub async fn watch(&self, prefix: &[u8], start_revision: i64) -> Result<Watch, EtcdError> {
        let body = json!({"create_request": {
            "key": B64.encode(prefix),
            "range_end": B64.encode(prefix_end(prefix)),
            "start_revision": start_revision.to_string(),
        }});
        let mut last = String::from("no endpoint configured");
        for base in &self.endpoints {
            match self
                .stream_http
                .post(format!("{base}/v3/watch"))
                .json(&body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    return Ok(Watch {
                        response: r,
                        buffer: Vec::new(),
                    })
                }
                Ok(r) => return Err(EtcdError::Refused(r.status().to_string())),
                Err(e) => last = format!("{base}: {e}"),
            }
        }
        Err(EtcdError::Unreachable(last))
    }
}

/// One batch of a watch: the store revision it brings us to and its events.
#[derive(Debug, Clone, Default)]
pub struct WatchBatch {
    pub revision: i64,
    pub events: Vec<WatchEvent>,
    /// etcd compacted past the start revision: the caller must read the keys again.
    pub compacted: bool,
}

/// A running watch.
#[derive(Debug)]
pub struct Watch {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Watch {
    /// The next batch of changes; `Ok(None)` when etcd ended the stream.
    pub async fn next(&mut self) -> Result<Option<WatchBatch>, EtcdError> {
        loop {
            // The gateway writes one JSON object per line.
            if let Some(nl) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=nl).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return parse_watch_line(&line).map(Some);
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) if self.buffer.iter().all(u8::is_ascii_whitespace) => return Ok(None),
                Ok(None) => {
                    let line = std::mem::take(&mut self.buffer);
                    return parse_watch_line(&line).map(Some);
                }
                Err(e) => return Err(EtcdError::Unreachable(format!("watch: {e}"))),
            }
        }
    }
}

fn parse_watch_line(line: &[u8]) -> Result<WatchBatch, EtcdError> {
    let v: Value =
        serde_json::from_slice(line).map_err(|e| EtcdError::Protocol(format!("watch: {e}")))?;
    if let Some(err) = v.get("error") {
        return Err(EtcdError::Refused(format!("watch: {err}")));
    }
    let result = v
        .get("result")
        .ok_or_else(|| EtcdError::Protocol("watch line without result".into()))?;
    let revision = int_value(result.get("header").and_then(|h| h.get("revision")));
    let compacted = int_value(result.get("compact_revision")) != 0
        || result.get("canceled").and_then(Value::as_bool) == Some(true);
    let mut events = Vec::new();
    for e in result
        .get("events")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let raw: RawKv = serde_json::from_value(e.get("kv").cloned().unwrap_or(Value::Null))
            .map_err(|e| EtcdError::Protocol(format!("watch event: {e}")))?;
        let kv = raw.decode()?;
        events.push(match e.get("type").and_then(Value::as_str) {
            Some("DELETE") => WatchEvent::Delete(kv),
            _ => WatchEvent::Put(kv),
        });
    }
    Ok(WatchBatch {
        revision,
        events,
        compacted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_key_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b"/tern/"), b"/tern0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn watch_lines_decode_puts_deletes_and_compaction() {
        // Captured from etcd 3.4.23's gateway (PUT events carry no "type").
        let put = br#"{"result":{"header":{"revision":"7"},"events":[{"kv":{"key":"Zm9v","create_revision":"2","mod_revision":"7","version":"2","value":"YmFy","lease":"99"}},{"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"8"}}]}}"#;
        let b = parse_watch_line(put).unwrap();
        assert_eq!(b.revision, 7);
        assert!(!b.compacted);
        assert_eq!(
            b.events,
            vec![
                WatchEvent::Put(KeyValue {
                    key: b"foo".to_vec(),
                    value: b"bar".to_vec(),
                    create_revision: 2,
                    mod_revision: 7,
                    lease: 99,
                }),
                WatchEvent::Delete(KeyValue {
                    key: b"foo".to_vec(),
                    value: Vec::new(),
                    create_revision: 0,
                    mod_revision: 8,
                    lease: 0,
                }),
            ]
        );
        let created = br#"{"result":{"header":{"revision":"2"},"created":true}}"#;
        assert!(parse_watch_line(created).unwrap().events.is_empty());
        let compacted =
            br#"{"result":{"header":{"revision":"9"},"compact_revision":"5","canceled":true}}"#;
        assert!(parse_watch_line(compacted).unwrap().compacted);
        assert!(parse_watch_line(b"{\"error\":{\"grpc_code\":14}}").is_err());
        assert!(parse_watch_line(b"not json").is_err());
        assert!(parse_watch_line(br#"{"result":{"events":[{"kv":{"key":"!!"}}]}}"#).is_err());
    }
}
