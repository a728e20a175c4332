//! The access log: exactly one JSON line per request, on stdout by default, in a format kept
//! stable for log pipelines (it is not `tracing` output, whose shape follows the subscriber).
//!
//! ```json
//! {"ts":"2026-01-02T03:04:05Z","method":"GET","host":"api.example.com","path":"/orders/1",
//!  "route":"orders","status":200,"latency_ms":0.412,"sub":"sa_…","client_id":"sa_…",
//!  "jti":"…","outcome":"allowed","reason":null,"remote":"192.0.2.7"}
//! ```
//!
//! `latency_ms` runs until the response headers are ready. The query string, the token, the
//! DPoP proof and the `Authorization` header are never written. Lines are handed to a writer
//! thread through a bounded queue, so a slow stdout never stalls a request; when the queue is
//! full the line is dropped and counted (`warrant_gateway_access_log_dropped_total`).

use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use serde::Serialize;
use warrant_verify::{Clock, SystemClock, VerifiedToken};

use crate::metrics::{Metrics, Outcome};

/// Lines queued for the writer before new ones are dropped.
const QUEUE: usize = 16 * 1024;

/// Where access-log lines go.
#[derive(Clone)]
pub(crate) struct AccessLog {
    tx: SyncSender<Vec<u8>>,
}

/// What one line says.
pub(crate) struct Entry<'a> {
    pub(crate) method: &'a str,
    pub(crate) host: &'a str,
    pub(crate) path: &'a str,
    pub(crate) route: Option<&'a str>,
    pub(crate) status: u16,
    pub(crate) latency_ms: f64,
    pub(crate) token: Option<&'a VerifiedToken>,
    pub(crate) outcome: Outcome,
    pub(crate) reason: Option<&'static str>,
    pub(crate) remote: IpAddr,
}

#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    method: &'a str,
    host: &'a str,
    path: &'a str,
    route: Option<&'a str>,
    status: u16,
    latency_ms: f64,
    sub: Option<&'a str>,
    client_id: Option<&'a str>,
    jti: Option<&'a str>,
    outcome: &'static str,
    reason: Option<&'static str>,
    remote: IpAddr,
}

impl AccessLog {
    /// A log written by a new thread to `sink`.
    pub(crate) fn spawn(sink: Box<dyn Write + Send>) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("warrant-gateway-access-log".into())
            .spawn(move || write_lines(rx, sink))?;
        Ok(Self { tx })
    }

    pub(crate) fn write(&self, e: &Entry<'_>, metrics: &Metrics) {
        let line = Line {
            ts: rfc3339(SystemClock.now_secs()),
            method: e.method,
            host: e.host,
            path: e.path,
            route: e.route,
            status: e.status,
            latency_ms: (e.latency_ms * 1000.0).round() / 1000.0,
            sub: e.token.map(|t| t.sub.as_str()),
            client_id: e.token.map(|t| t.client_id.as_str()),
            jti: e.token.map(|t| t.jti.as_str()),
            outcome: e.outcome.as_str(),
            reason: e.reason,
            remote: e.remote,
        };
        let mut buf = Vec::with_capacity(256);
        if serde_json::to_writer(&mut buf, &line).is_err() {
            return;
        }
        buf.push(b'\n');
        match self.tx.try_send(buf) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics.log_dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// Writes each queued line, flushing whenever the queue runs empty.
fn write_lines(rx: Receiver<Vec<u8>>, sink: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, sink);
    while let Ok(line) = rx.recv() {
        let _ = out.write_all(&line);
        while let Ok(more) = rx.try_recv() {
            let _ = out.write_all(&more);
        }
        let _ = out.flush();
    }
    let _ = out.flush();
}

/// A shared in-memory sink (tests, embedding).
#[derive(Clone, Default)]
pub struct MemorySink(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for MemorySink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut v) => v.extend_from_slice(buf),
            Err(p) => p.into_inner().extend_from_slice(buf),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl MemorySink {
    /// What has been written so far, as text.
    pub fn contents(&self) -> String {
        match self.0.lock() {
            Ok(v) => String::from_utf8_lossy(&v).into_owned(),
            Err(p) => String::from_utf8_lossy(&p.into_inner()).into_owned(),
        }
    }
}

/// Seconds since the epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`), by the civil-from-days
/// algorithm (H. Hinnant).
fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_764_127_459), "2025-11-26T03:24:19Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn one_line_per_entry_without_secrets() {
        let sink = MemorySink::default();
        let log = AccessLog::spawn(Box::new(sink.clone())).unwrap();
        let metrics = Metrics::default();
        log.write(
            &Entry {
                method: "GET",
                host: "api.example.com",
                path: "/orders",
                route: Some("orders"),
                status: 401,
                latency_ms: 0.123_456,
                token: None,
                outcome: Outcome::Denied,
                reason: Some("no_token"),
                remote: "127.0.0.1".parse().unwrap(),
            },
            &metrics,
        );
        drop(log);
        for _ in 0..100 {
            if sink.contents().ends_with('\n') {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let text = sink.contents();
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["route"], "orders");
        assert_eq!(v["status"], 401);
        assert_eq!(v["latency_ms"], 0.123);
        assert_eq!(v["outcome"], "denied");
        assert_eq!(v["reason"], "no_token");
        assert_eq!(v["sub"], serde_json::Value::Null);
        assert_eq!(v["remote"], "127.0.0.1");
    }
}
