//! The load generator: N keep-alive HTTP/1.1 connections, one task each, sending the requests
//! of a [`RequestSource`] either back to back (closed loop) or on a fixed schedule per
//! connection (open loop, [`Pacing`]). A request counts if it started after the warm-up and
//! finished before the end of the measured window. The source says which address each
//! connection goes to: [`Target`] (token requests to one or more replicas) sends connection
//! `i` to address `i mod len`, so the connections are split evenly between them.

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

/// What the load sends, and what counts as a success.
pub trait RequestSource: Send + Sync + 'static {
    /// The address connection `conn` (0-based) connects to.
    fn addr(&self, conn: usize) -> SocketAddr;

    /// The `seq`-th request (0-based, counted per connection, warm-up included) of connection
    /// `conn`.
    fn request(&self, conn: usize, seq: u64) -> Result<Request<Full<Bytes>>>;

    /// Whether a response counts as a success (otherwise it is an error).
    fn accepts(&self, status: StatusCode, body: &[u8]) -> bool;
}

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

impl RequestSource for Target {
    fn addr(&self, conn: usize) -> SocketAddr {
        self.addrs[conn % self.addrs.len()]
    }

    fn request(&self, conn: usize, _seq: u64) -> Result<Request<Full<Bytes>>> {
        self.token_request(conn % self.addrs.len())
    }

    fn accepts(&self, status: StatusCode, body: &[u8]) -> bool {
        status == StatusCode::OK && has_token(body)
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

/// Open-loop sending: each connection sends one request every `interval`, on a fixed grid
/// (connection `i` of `n` offset by `i × interval / n`, so that the connections' requests
/// interleave evenly). When a response comes back after the next slot, the next request is sent
/// at once (taking the latest slot it missed) and the other missed slots are skipped: no burst to
/// catch up. Every latency is measured from the request's own send, so a slow response delays
/// the requests behind it on its connection without being charged to them (the figures are per
/// request, not corrected for coordinated omission).
#[derive(Clone, Copy)]
pub struct Pacing {
    pub interval: Duration,
}

/// One connection's place on its pacing grid.
struct Slots {
    /// The grid's first slot.
    first: Instant,
    interval: Duration,
    /// When the next request is due.
    due: Instant,
}

impl Slots {
    fn new(pacing: Pacing, origin: Instant, connection: usize, connections: usize) -> Self {
        let interval = pacing.interval.max(Duration::from_nanos(1));
        let offset = interval.mul_f64(connection as f64 / connections.max(1) as f64);
        let first = origin + offset;
        Self {
            first,
            interval,
            due: first,
        }
    }

    /// After a request sent for slot `due`, at `now`: the next slot, or, if that has passed,
    /// the latest slot not after `now` (so that the request is sent at once).
    fn advance(&mut self, now: Instant) {
        let next = self.due + self.interval;
        self.due = if now <= next {
            next
        } else {
            let step = self.interval.as_nanos();
            let missed = now.duration_since(self.first).as_nanos() / step;
            let back = now.duration_since(self.first).as_nanos() - missed * step;
            now - Duration::from_nanos(u64::try_from(back).unwrap_or(0))
        };
    }
}

/// What the connections saw during the measured window.
#[derive(Default)]
pub struct LoadResult {
    /// Responses the source accepts (for token requests: 200 carrying an access token).
    pub ok: u64,
    /// Other responses, transport failures, requests that could not be built.
    pub errors: u64,
    /// Latency of every counted response, in microseconds.
    pub latencies_us: Vec<u32>,
}

/// Runs `connections` connections sending `source`'s requests until `schedule.end`, back to
/// back or, with `pacing`, on its schedule (whose grid starts now).
pub async fn run<S: RequestSource>(
    source: Arc<S>,
    connections: usize,
    schedule: Schedule,
    pacing: Option<Pacing>,
) -> Result<LoadResult> {
    let origin = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|conn| {
            let slots = pacing.map(|p| Slots::new(p, origin, conn, connections));
            tokio::spawn(worker(source.clone(), conn, schedule, slots))
        })
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

/// One connection (reconnecting after a transport failure) until `schedule.end`.
async fn worker<S: RequestSource>(
    source: Arc<S>,
    conn: usize,
    schedule: Schedule,
    mut slots: Option<Slots>,
) -> LoadResult {
    let mut r = LoadResult::default();
    let deadline = schedule.end + GRACE;
    let addr = source.addr(conn);
    let mut seq = 0u64;
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
            if let Some(slots) = &slots {
                tokio::time::sleep_until(slots.due).await;
            }
            let start = Instant::now();
            if start >= schedule.end {
                break;
            }
            let outcome = match source.request(conn, seq) {
                Ok(req) => timeout_at(deadline, exchange(&mut sender, req)).await,
                Err(_) => {
                    if schedule.in_window(start) {
                        r.errors += 1;
                    }
                    break;
                }
            };
            seq += 1;
            let done = Instant::now();
            if let Some(slots) = &mut slots {
                slots.advance(done);
            }
            match outcome {
                Ok(Ok((status, body))) if source.accepts(status, &body) => {
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

/// Whether a token endpoint's response body carries an access token.
pub fn has_token(body: &[u8]) -> bool {
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
    send(target.addrs[index], target.token_request(index)?)
        .await
        .context("token request")
}

/// One request on a fresh connection to `addr`: the status and the whole body (10 s timeout).
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes)> {
    let mut sender = connect(addr).await?;
    tokio::time::timeout(Duration::from_secs(10), exchange(&mut sender, req))
        .await
        .context("request timed out")?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_connections_keep_their_grid_and_skip_missed_slots() {
        let ms = Duration::from_millis;
        let origin = Instant::now();
        let mut slots = Slots::new(Pacing { interval: ms(16) }, origin, 1, 16);
        let first = origin + ms(1);
        assert_eq!(slots.due, first);
        // On time: the next slot.
        slots.advance(first + ms(2));
        assert_eq!(slots.due, first + ms(16));
        // The response came 24 ms after slot 16 ms: send now (as slot 32 ms), skip none before.
        slots.advance(first + ms(40));
        assert_eq!(slots.due, first + ms(32));
        // Then back on the grid.
        slots.advance(first + ms(41));
        assert_eq!(slots.due, first + ms(48));
        // Very late: the latest slot not after now; the slots in between are skipped.
        slots.advance(first + ms(200));
        assert_eq!(slots.due, first + ms(192));
    }
}
