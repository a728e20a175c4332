//! Revocation propagation: how long from an admin's `POST /admin/v1/tenants/default/revocations`
//! until a verifier following `GET /t/default/revocations/stream` (Server-Sent Events) sees
//! the entry.
//!
//! One `warrant serve` on SQLite, idle apart from this: a service account (the verifier)
//! opens the stream with HTTP Basic; then, one at a time, the bench notes t0, posts a `jti`
//! revocation with an admin token, and waits for the stream to deliver the event whose data
//! names that `jti`. Latency is receipt − t0, so it includes the POST itself (the store
//! commit, and the audit record, which the server writes before it answers — the stream may
//! deliver the event before the POST returns).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use tokio::sync::mpsc;
use tokio::time::Instant;
use warrant_proto::admin::{CreateRevocation, CredentialsFile};
use warrant_proto::oauth::RevocationFeedEntry;

use crate::load;
use crate::report::percentile_ms;
use crate::warrant::{self, Account, TempDir};

/// Revocations posted, one after the other.
pub const REVOCATIONS: usize = 200;
/// Goal: p99 propagation latency, ms.
const GOAL_P99_MS: f64 = 100.0;
const STREAM_PATH: &str = "/t/default/revocations/stream";
const REVOKE_PATH: &str = "/admin/v1/tenants/default/revocations";
/// Longest wait for one event before the run is declared broken.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the run saw, in microseconds.
pub struct Propagation {
    /// POST sent → event received on the stream, sorted.
    pub latencies_us: Vec<u32>,
    /// POST sent → POST answered, sorted.
    pub post_us: Vec<u32>,
}

/// Starts `warrant serve` (`bin`) in a fresh directory, measures [`REVOCATIONS`] revocations,
/// and stops it.
pub async fn measure(bin: &Path) -> Result<Propagation> {
    let tmp = TempDir::new()?;
    let cluster = warrant::start(bin, &tmp, 1, None).await?;
    let addr = cluster.servers[0].addr;
    eprintln!(
        "revocation: warrant listening on {addr} (pid {}, dir {})",
        cluster.servers[0].pid,
        tmp.0.display()
    );
    let result = async {
        let verifier = warrant::create_account(bin, &cluster.credentials, addr, "default").await?;
        let admin = admin_token(addr, &cluster.credentials).await?;
        run(addr, &verifier, &admin).await
    }
    .await;
    cluster.stop().await;
    result
}

async fn run(addr: SocketAddr, verifier: &Account, admin_token: &str) -> Result<Propagation> {
    let mut events = open_stream(addr, verifier).await?;
    let mut sender = load::connect::<Full<Bytes>>(addr).await?;
    let bearer = HeaderValue::from_str(&format!("Bearer {admin_token}"))?;
    let mut latencies_us = Vec::with_capacity(REVOCATIONS);
    let mut post_us = Vec::with_capacity(REVOCATIONS);
    for i in 0..REVOCATIONS {
        let jti = format!("bench-{i}");
        let body = serde_json::to_vec(&CreateRevocation::Jti {
            jti: jti.clone(),
            exp: None,
        })?;
        let req = Request::builder()
            .method(Method::POST)
            .uri(REVOKE_PATH)
            .header(HOST, addr.to_string())
            .header(AUTHORIZATION, bearer.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let t0 = Instant::now();
        let (status, body) =
            tokio::time::timeout(REQUEST_TIMEOUT, load::exchange(&mut sender, req))
                .await
                .context("POST revocations timed out")??;
        let answered = Instant::now();
        if !status.is_success() {
            bail!(
                "POST {REVOKE_PATH}: {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let received = loop {
            let (seen, at) = tokio::time::timeout_at(t0 + EVENT_TIMEOUT, events.recv())
                .await
                .with_context(|| format!("no stream event for {jti} within {EVENT_TIMEOUT:?}"))?
                .context("the revocation stream ended")??;
            if seen == jti {
                break at;
            }
        };
        latencies_us.push(micros(received - t0));
        post_us.push(micros(answered - t0));
    }
    latencies_us.sort_unstable();
    post_us.sort_unstable();
    Ok(Propagation {
        latencies_us,
        post_us,
    })
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// `POST /t/system/token` with the admin credentials file: an admin token
/// (`resource={public_url}/admin`, `scope=admin`, as the CLI asks for one).
async fn admin_token(addr: SocketAddr, credentials: &Path) -> Result<String> {
    let text =
        std::fs::read(credentials).with_context(|| format!("reading {}", credentials.display()))?;
    let creds: CredentialsFile =
        serde_json::from_slice(&text).context("parsing the admin credentials file")?;
    let admin = Account {
        client_id: creds.client_id,
        secret: creds.client_secret,
    };
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("resource", &format!("{}/admin", creds.url))
        .append_pair("scope", "admin")
        .finish();
    let req = Request::builder()
        .method(Method::POST)
        .uri("/t/system/token")
        .header(HOST, addr.to_string())
        .header(AUTHORIZATION, admin.basic_authorization())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form)))?;
    let mut sender = load::connect(addr).await?;
    let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, load::exchange(&mut sender, req))
        .await
        .context("admin token request timed out")??;
    if status != StatusCode::OK {
        bail!(
            "admin token request: {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&body).context("admin token response")?;
    v["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("admin token response has no access_token")
}

/// The `jti` of each revocation event and when its bytes arrived.
type Seen = Result<(String, Instant)>;

/// Opens the stream as `verifier` and reads it on a task of its own, which sends the `jti` of
/// every `jti` entry with the time its bytes arrived (subject entries are skipped).
async fn open_stream(
    addr: SocketAddr,
    verifier: &Account,
) -> Result<mpsc::UnboundedReceiver<Seen>> {
    let req = Request::builder()
        .uri(STREAM_PATH)
        .header(HOST, addr.to_string())
        .header(AUTHORIZATION, verifier.basic_authorization())
        .header(ACCEPT, "text/event-stream")
        .body(Empty::<Bytes>::new())?;
    let mut sender = load::connect(addr).await?;
    let resp = tokio::time::timeout(REQUEST_TIMEOUT, async {
        sender.ready().await?;
        sender.send_request(req).await
    })
    .await
    .context("opening the revocation stream timed out")??;
    let status = resp.status();
    if status != StatusCode::OK {
        let body = resp.into_body().collect().await?.to_bytes();
        bail!(
            "GET {STREAM_PATH}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // The sender keeps the connection's request side; dropping it is harmless once the
        // response is streaming, but keep it for the life of the reader all the same.
        let _sender = sender;
        if let Err(e) = read_stream(resp.into_body(), &tx).await {
            let _ = tx.send(Err(e));
        }
    });
    Ok(rx)
}

/// Reads the stream's body to its end, sending each `jti` with the time its last bytes
/// arrived.
async fn read_stream(mut body: Incoming, tx: &mpsc::UnboundedSender<Seen>) -> Result<()> {
    let mut sse = SseReader::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading the revocation stream")?;
        let at = Instant::now();
        let Ok(data) = frame.into_data() else {
            continue;
        };
        for jti in sse.feed(&data)? {
            if tx.send(Ok((jti, at))).is_err() {
                return Ok(());
            }
        }
    }
    bail!("the server closed the revocation stream")
}

/// Server-Sent Events as the revocation stream sends them (`id:`, `event:`, `data:` lines; a
/// blank line ends an event; lines starting with `:` are comments), fed in arbitrary pieces.
#[derive(Default)]
struct SseReader {
    /// Bytes after the last complete line.
    partial: Vec<u8>,
    kind: Option<String>,
    data: String,
}

impl SseReader {
    /// The `jti` of every `revocation` event about one token that `bytes` completes.
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>> {
        self.partial.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&raw);
            let line = text.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                out.extend(self.dispatch()?);
            } else if !line.starts_with(':') {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => self.kind = Some(value.to_owned()),
                    "data" => {
                        if !self.data.is_empty() {
                            self.data.push('\n');
                        }
                        self.data.push_str(value);
                    }
                    _ => {}
                }
            }
        }
        Ok(out)
    }

    /// At the blank line that ends an event: its `jti` if it is a `revocation` of one token.
    fn dispatch(&mut self) -> Result<Option<String>> {
        let kind = self.kind.take();
        let data = std::mem::take(&mut self.data);
        if kind.as_deref().is_some_and(|k| k != "revocation") || data.is_empty() {
            return Ok(None);
        }
        let entry: RevocationFeedEntry = serde_json::from_str(&data)
            .with_context(|| format!("revocation event data {data:?}"))?;
        Ok(match entry {
            RevocationFeedEntry::Jti { jti, .. } => Some(jti),
            RevocationFeedEntry::Subject { .. } => None,
        })
    }
}

pub fn print(p: &Propagation) {
    let stat = |v: &[u32]| {
        (
            percentile_ms(v, 0.50),
            percentile_ms(v, 0.99),
            v.last().map_or(f64::NAN, |&m| f64::from(m) / 1000.0),
        )
    };
    let (p50, p99, max) = stat(&p.latencies_us);
    let (post50, post99, post_max) = stat(&p.post_us);
    println!(
        "{:<28} {:>6} {:>8} {:>8} {:>8}",
        "", "count", "p50 ms", "p99 ms", "max ms"
    );
    println!(
        "{:<28} {:>6} {p50:>8.2} {p99:>8.2} {max:>8.2}",
        "POST -> stream event",
        p.latencies_us.len()
    );
    println!(
        "{:<28} {:>6} {post50:>8.2} {post99:>8.2} {post_max:>8.2}",
        "POST -> POST answered",
        p.post_us.len()
    );
    let verdict = if p99 <= GOAL_P99_MS { "PASS" } else { "FAIL" };
    println!("goal p99 <= 100 ms: {p99:.2} ms {verdict}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_reader_takes_jti_events_split_anywhere_and_skips_the_rest() {
        let stream = concat!(
            ": ping\n\n",
            "id: 1\nevent: revocation\ndata: {\"type\":\"jti\",\"jti\":\"a\",\"exp\":9}\n\n",
            "id: 2\r\nevent: revocation\r\ndata: {\"type\":\"subject\",\"sub\":\"s\",\"not_before\":1}\r\n\r\n",
            "event: other\ndata: not json\n\n",
            "id: 3\nevent: revocation\ndata: {\"type\":\"jti\",\"jti\":\"b\",\"exp\":9}\n\n",
        )
        .as_bytes();
        for split in [1, 7, stream.len()] {
            let mut sse = SseReader::default();
            let mut seen = Vec::new();
            for piece in stream.chunks(split) {
                seen.extend(sse.feed(piece).unwrap());
            }
            assert_eq!(seen, ["a", "b"], "pieces of {split} bytes");
        }
    }
}
