//! The load generator: N keep-alive HTTP/1.1 connections, one task each, issuing token
//! requests back to back. A request counts if it started after the warm-up and finished
//! before the end of the measured window. With several addresses (replicas), connection `i`
//! goes to address `i mod len`: the connections are split evenly between them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::{Body, Bytes};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

const FORM: &[u8] = b"grant_type=client_credentials";
/// How long a request may run past the end of the window before it is abandoned.
const GRACE: Duration = Duration::from_secs(2);

/// Where to send token requests (one or more addresses serving the same tenant), and with
/// which credentials.
pub struct Target {
    pub addrs: Vec<SocketAddr>,
    pub path: String,
    pub authorization: HeaderValue,
    /// `Host` header per address, same order as `addrs`.
    hosts: Vec<HeaderValue>,
}

impl Target {
    pub fn new(addrs: &[SocketAddr], path: &str, authorization: &str) -> Result<Self> {
        anyhow::ensure!(!addrs.is_empty(), "a target needs at least one address");
        Ok(Self {
            addrs: addrs.to_vec(),
            path: path.to_owned(),
            authorization: HeaderValue::from_str(authorization).context("authorization header")?,
            hosts: addrs
                .iter()
                .map(|a| HeaderValue::from_str(&a.to_string()).context("host header"))
                .collect::<Result<_>>()?,
        })
    }

    /// A token request for the address at `index` (in `addrs`).
    fn token_request(&self, index: usize) -> Result<Request<Full<Bytes>>> {
        Ok(Request::builder()
            .method(Method::POST)
            .uri(self.path.as_str())
            .header(HOST, self.hosts[index].clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .body(Full::new(Bytes::from_static(FORM)))?)
    }
}

/// The timeline of one run: warm-up until `measure_start`, then measure until `end`.
#[derive(Clone, Copy)]
pub struct Schedule {
    pub measure_start: Instant,
    pub end: Instant,
}

impl Schedule {
    pub fn starting_now(warmup: Duration, duration: Duration) -> Self {
        let measure_start = Instant::now() + warmup;
        Self {
            measure_start,
            end: measure_start + duration,
        }
    }

    fn measures(&self, start: Instant, done: Instant) -> bool {
        start >= self.measure_start && done <= self.end
    }

    fn in_window(&self, t: Instant) -> bool {
        t >= self.measure_start && t < self.end
    }
}

/// What the connections saw during the measured window.
#[derive(Default)]
pub struct LoadResult {
    /// 200 responses carrying an access token.
    pub ok: u64,
    /// Non-200 responses, responses without a token, transport failures.
    pub errors: u64,
    /// Latency of every counted response, in microseconds.
    pub latencies_us: Vec<u32>,
}

/// Runs `connections` connections against `target` until `schedule.end`, connection `i` on
/// address `i mod addrs.len()`.
pub async fn run(
    target: Arc<Target>,
    connections: usize,
    schedule: Schedule,
) -> Result<LoadResult> {
    let workers: Vec<_> = (0..connections)
        .map(|i| tokio::spawn(worker(target.clone(), i % target.addrs.len(), schedule)))
        .collect();
    let mut total = LoadResult::default();
    for w in workers {
        let r = w.await.context("load task failed")?;
        total.ok += r.ok;
        total.errors += r.errors;
        total.latencies_us.extend_from_slice(&r.latencies_us);
    }
    Ok(total)
}

async fn worker(target: Arc<Target>, index: usize, schedule: Schedule) -> LoadResult {
    let mut r = LoadResult::default();
    let deadline = schedule.end + GRACE;
    let addr = target.addrs[index];
    while Instant::now() < schedule.end {
        let mut sender = match timeout_at(deadline, connect(addr)).await {
            Ok(Ok(sender)) => sender,
            _ => {
                if schedule.in_window(Instant::now()) {
                    r.errors += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        loop {
            let start = Instant::now();
            if start >= schedule.end {
                break;
            }
            let outcome = match target.token_request(index) {
                Ok(req) => timeout_at(deadline, exchange(&mut sender, req)).await,
                Err(_) => break,
            };
            let done = Instant::now();
            match outcome {
                Ok(Ok((StatusCode::OK, body))) if has_token(&body) => {
                    if schedule.measures(start, done) {
                        r.ok += 1;
                        let us = done.duration_since(start).as_micros();
                        r.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                    }
                }
                Ok(Ok(_)) => {
                    if schedule.in_window(start) {
                        r.errors += 1;
                    }
                }
                // Transport failure or timeout: count it and reconnect.
                _ => {
                    if schedule.in_window(start) {
                        r.errors += 1;
                    }
                    break;
                }
            }
        }
    }
    r
}

fn has_token(body: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"\"access_token\"";
    body.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

/// A keep-alive HTTP/1.1 connection to `addr` (Nagle off), its driver spawned.
pub async fn connect<B>(addr: SocketAddr) -> Result<SendRequest<B>>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One request on `sender`: the status and the whole body.
pub async fn exchange<B>(
    sender: &mut SendRequest<B>,
    req: Request<B>,
) -> Result<(StatusCode, Bytes)>
where
    B: Body + Send + 'static,
{
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// One token request on a fresh connection to the address at `index` in `target.addrs` (a
/// sanity check before loading a target).
pub async fn probe(target: &Target, index: usize) -> Result<(StatusCode, Bytes)> {
    let req = target.token_request(index)?;
    let mut sender = connect(target.addrs[index]).await?;
    tokio::time::timeout(Duration::from_secs(10), exchange(&mut sender, req))
        .await
        .context("token request timed out")?
}

/// `GET path` on a fresh connection; the status code.
pub async fn get_status(addr: SocketAddr, path: &str) -> Result<StatusCode> {
    let req = Request::builder()
        .uri(path)
        .header(HOST, addr.to_string())
        .body(Empty::<Bytes>::new())?;
    let fut = async {
        let mut sender = connect(addr).await?;
        exchange(&mut sender, req).await
    };
    let (status, _) = tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .context("request timed out")??;
    Ok(status)
}
