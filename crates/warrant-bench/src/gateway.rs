//! `--scenario gateway`: what `warrant gateway` adds in front of a service, with token
//! verification on and off, against the service reached directly — all in one run.
//!
//! Set-up: an upstream (`warrant-bench upstream`, a bare hyper server answering `200 ok`); a
//! real `warrant serve` (SQLite) with two accounts made by `warrant sa create`, `bench-gw`
//! granted `bench:read` at [`AUDIENCE`] and `bench-feed` (no grant, used by the gateway to read
//! the revocation feed); [`TOKENS`] distinct access tokens for `bench-gw` from
//! `POST /t/default/token` (client_credentials, `resource` = [`AUDIENCE`], `scope=bench:read`;
//! they live 10 minutes, longer than a run); and `warrant gateway --config gateway.toml` with
//! two routes to the same upstream, `/on` (verification: audience and scope required) and `/off`
//! (`verify = false`). The gateway's stdout (its access log, one JSON line per request) goes to
//! a file in the run's temporary directory. Before measuring, probes check: direct → 200, `/on`
//! with a token → 200, `/on` without → 401, `/off` → 200.
//!
//! Three rows, each `GET {prefix}/x` with `Authorization: Bearer <token>` (every row sends the
//! same bytes; only the path differs), measured one after the other:
//!
//! - `direct`: the upstream itself (`/x`). Its CPU and RSS columns are the upstream's.
//! - `gateway-off`: through the gateway, route `/off` (proxying only). CPU and RSS: the gateway.
//! - `gateway-on`: through the gateway, route `/on` (verification, then proxying).
//!
//! Connection `c` starts at token `16·c mod 256` and takes the pool's tokens in turn, so every
//! token is used many times and the gateway verifies each distinct token once and then reuses
//! the result (the 1 s warm-up before each row sends every token at least once, so the window
//! measures the steady state, with the verification cache warm).
//!
//! Two loads: **open loop** at a fixed offered rate (`--rate`, default 1,000 req/s, on
//! [`OPEN_CONNECTIONS`] connections each sending on a fixed schedule, see
//! [`crate::load::Pacing`]), below saturation, for latency: p50/p99/max, and the added latency
//! gateway-on − direct and gateway-on − gateway-off; then **saturation**, requests back to back
//! on `--connections` connections (default 64), for throughput: req/s and the server's CPU and
//! peak RSS. The goals (the issue's): verification adds ≤ 1 ms at p99 below saturation
//! (gateway-on p99 − gateway-off p99), and gateway-on keeps ≥ 70% of gateway-off's throughput at
//! saturation. The load generator, the upstream, the gateway and the idle `warrant serve` share
//! this machine's cores: at saturation the rows are bound by the machine, not by one process,
//! so requests per gateway CPU-second is printed as well.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use tokio::process::Command;
use tokio::time::Instant;

use crate::load::{self, Pacing, RequestSource};
use crate::process::ChildServer;
use crate::report::{Row, ratio};
use crate::warrant::{self, Account, TempDir};
use crate::{Options, WARMUP, serve_child, upstream};

/// Default saturation connection counts (`--connections` overrides).
pub const CONNECTIONS: &[usize] = &[64];
/// Default offered load of the open-loop rows, requests per second over all connections.
pub const DEFAULT_RATE: u32 = 1000;
/// Connections of the open-loop rows.
const OPEN_CONNECTIONS: usize = 16;
/// Distinct access tokens the load rotates through on `gateway-on` (and sends on every row).
const TOKENS: usize = 256;

const TENANT: &str = "default";
const AUDIENCE: &str = "https://bench.example/api";
const SCOPE: &str = "bench:read";

/// Row names, in the order measured.
const DIRECT: &str = "direct";
const OFF: &str = "gateway-off";
const ON: &str = "gateway-on";

/// Goal: gateway-on p99 − gateway-off p99 below saturation, ms.
const GOAL_ADDED_P99_MS: f64 = 1.0;
/// Goal: gateway-on req/s at saturation, as a fraction of gateway-off's.
const GOAL_THROUGHPUT_RATIO: f64 = 0.70;
/// An open-loop row that achieves less than this fraction of the offered rate is flagged.
const RATE_SHORTFALL: f64 = 0.95;

/// The whole scenario.
pub async fn run(options: &Options) -> Result<()> {
    let connections = options.connections(CONNECTIONS);
    let rate = options.rate.unwrap_or(DEFAULT_RATE);
    let interval = Duration::from_secs_f64(OPEN_CONNECTIONS as f64 / f64::from(rate));
    println!(
        "\n-- warrant gateway: the upstream directly, through the gateway with verification off \
         and on (one run)"
    );
    println!(
        "duration: {} s measured per row, after {} s warm-up; open loop: {rate} req/s offered on \
         {OPEN_CONNECTIONS} connections (one request per connection every {:.2} ms); \
         saturation: {connections:?} connections back to back; {TOKENS} distinct tokens",
        options.duration.as_secs(),
        WARMUP.as_secs(),
        interval.as_secs_f64() * 1000.0,
    );

    let tmp = TempDir::new()?;
    let upstream = upstream::spawn().await?;
    eprintln!(
        "gateway: upstream listening on {} (pid {})",
        upstream.addr, upstream.pid
    );
    let cluster = match warrant::start(&options.warrant, &tmp, 1, None).await {
        Ok(cluster) => cluster,
        Err(e) => {
            upstream.stop().await;
            return Err(e);
        }
    };
    let server = &cluster.servers[0];
    eprintln!(
        "gateway: warrant serve listening on {} (pid {}, dir {})",
        server.addr,
        server.pid,
        tmp.0.display()
    );
    let setup = Setup {
        options,
        tmp: &tmp,
        credentials: &cluster.credentials,
        warrant: server.addr,
        upstream: &upstream,
    };
    let measured = setup.run(rate, interval, &connections).await;
    cluster.stop().await;
    upstream.stop().await;
    let figures = measured?;
    drop(tmp);

    figures.print(rate, &connections);
    Ok(())
}

/// What the run has started before the gateway.
struct Setup<'a> {
    options: &'a Options,
    tmp: &'a TempDir,
    credentials: &'a Path,
    warrant: SocketAddr,
    upstream: &'a ChildServer,
}

/// Everything measured, for the report.
struct Figures {
    open: Vec<Row>,
    saturated: Vec<Row>,
    /// Lines of the gateway's /metrics worth reading after the run.
    metrics: Vec<String>,
    access_log_lines: usize,
}

impl Setup<'_> {
    /// Accounts, tokens, the gateway, the probes, then every row; stops the gateway.
    async fn run(&self, rate: u32, interval: Duration, connections: &[usize]) -> Result<Figures> {
        let bin = &self.options.warrant;
        let account = |name, grant| {
            warrant::create_named_account(bin, self.credentials, self.warrant, TENANT, name, grant)
        };
        let caller = account("bench-gw", Some((AUDIENCE, SCOPE))).await?;
        let feed = account("bench-feed", None).await?;
        let tokens = Arc::new(self.tokens(&caller).await?);
        eprintln!("gateway: {} distinct access tokens", tokens.len());

        let mut gateway = self.start_gateway(&feed).await?;
        let measured = async {
            let targets = [
                (DIRECT, self.upstream.addr, "", self.upstream.pid),
                (OFF, gateway.server.addr, "/off", gateway.server.pid),
                (ON, gateway.server.addr, "/on", gateway.server.pid),
            ]
            .map(|(name, addr, prefix, pid)| {
                Ok::<_, anyhow::Error>((
                    name,
                    pid,
                    Arc::new(Proxied::new(addr, prefix, tokens.clone())?),
                ))
            });
            let mut loads = Vec::new();
            for t in targets {
                loads.push(t?);
            }
            probe(&loads).await?;

            let duration = self.options.duration;
            let mut open = Vec::new();
            for (name, pid, source) in &loads {
                eprintln!("{name}: open loop, {rate} req/s ...");
                let pacing = Some(Pacing { interval });
                open.push(
                    crate::measure(name, &[*pid], source, OPEN_CONNECTIONS, pacing, duration)
                        .await?,
                );
            }
            let mut saturated = Vec::new();
            for &n in connections {
                for (name, pid, source) in &loads {
                    eprintln!("{name}: {n} connections back to back ...");
                    saturated.push(crate::measure(name, &[*pid], source, n, None, duration).await?);
                }
            }
            let metrics = gateway_metrics(gateway.metrics).await;
            Ok::<_, anyhow::Error>(Figures {
                open,
                saturated,
                metrics,
                access_log_lines: 0,
            })
        }
        .await;
        let exited = gateway.server.child.try_wait().ok().flatten();
        gateway.server.stop().await;
        let mut figures = measured.map_err(|e| match exited {
            Some(status) => e.context(format!(
                "the gateway exited ({status}); its log:\n{}",
                warrant::log_tail(&gateway.log)
            )),
            None => e,
        })?;
        figures.access_log_lines = std::fs::read(&gateway.access_log)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0);
        Ok(figures)
    }

    /// [`TOKENS`] access tokens for `caller`, one token request each, all distinct.
    async fn tokens(&self, caller: &Account) -> Result<Vec<HeaderValue>> {
        let basic = HeaderValue::from_str(&caller.basic_authorization())?;
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("resource", AUDIENCE)
            .append_pair("scope", SCOPE)
            .finish();
        let path = format!("/t/{TENANT}/token");
        let mut sender = load::connect(self.warrant).await?;
        let mut seen = HashSet::new();
        let mut tokens = Vec::with_capacity(TOKENS);
        for _ in 0..TOKENS {
            let req = Request::builder()
                .method(Method::POST)
                .uri(path.as_str())
                .header(HOST, self.warrant.to_string())
                .header(AUTHORIZATION, basic.clone())
                .header(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                )
                .body(Full::new(Bytes::from(form.clone())))?;
            let (status, body) =
                tokio::time::timeout(Duration::from_secs(10), load::exchange(&mut sender, req))
                    .await
                    .context("token request timed out")??;
            if status != StatusCode::OK {
                bail!(
                    "token request for {AUDIENCE}: {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            let v: serde_json::Value =
                serde_json::from_slice(&body).context("token response is not JSON")?;
            let token = v["access_token"]
                .as_str()
                .context("token response has no access_token")?;
            if !seen.insert(token.to_owned()) {
                bail!("the token endpoint returned the same token twice");
            }
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))?;
            value.set_sensitive(true);
            tokens.push(value);
        }
        Ok(tokens)
    }

    /// Writes the feed secret and gateway.toml into the temporary directory, starts
    /// `warrant gateway --config` and waits for its `/readyz` on the metrics listener.
    async fn start_gateway(&self, feed: &Account) -> Result<Gateway> {
        let dir = &self.tmp.0;
        let secret_file = dir.join("feed-secret");
        serve_child::write_private(&secret_file, feed.secret.as_bytes())?;
        let ports = warrant::free_ports(2)?;
        let listen = SocketAddr::from(([127, 0, 0, 1], ports[0]));
        let metrics = SocketAddr::from(([127, 0, 0, 1], ports[1]));
        let config = gateway_toml(&GatewayToml {
            listen,
            metrics,
            issuer: &format!("http://{}/t/{TENANT}", self.warrant),
            feed_client_id: &feed.client_id,
            feed_secret_file: &secret_file,
            upstream: self.upstream.addr,
        })?;
        let config_path = dir.join("gateway.toml");
        std::fs::write(&config_path, config).context("writing gateway.toml")?;

        let access_log = dir.join("gateway-access.log");
        let log = dir.join("gateway.log");
        let child = Command::new(&self.options.warrant)
            .arg("gateway")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&access_log).context("creating the access log")?)
            .stderr(std::fs::File::create(&log).context("creating the gateway log")?)
            .kill_on_drop(true)
            .spawn()
            .context("starting `warrant gateway`")?;
        let mut server = ChildServer::new(child, listen)?;
        let deadline = Instant::now() + warrant::READY_TIMEOUT;
        warrant::wait_ready_at(&mut server, metrics, &log, deadline)
            .await
            .context("warrant gateway")?;
        eprintln!(
            "gateway: warrant gateway listening on {listen} (pid {}, metrics {metrics})",
            server.pid
        );
        Ok(Gateway {
            server,
            metrics,
            access_log,
            log,
        })
    }
}

/// The running gateway and where it writes.
struct Gateway {
    server: ChildServer,
    metrics: SocketAddr,
    /// Its stdout: one JSON line per request.
    access_log: std::path::PathBuf,
    /// Its stderr.
    log: std::path::PathBuf,
}

/// What gateway.toml is made of.
struct GatewayToml<'a> {
    listen: SocketAddr,
    metrics: SocketAddr,
    issuer: &'a str,
    feed_client_id: &'a str,
    feed_secret_file: &'a Path,
    upstream: SocketAddr,
}

/// The gateway's configuration: one issuer, routes `on` (verify) and `off` to the upstream.
fn gateway_toml(c: &GatewayToml<'_>) -> Result<String> {
    let secret_file = c
        .feed_secret_file
        .to_str()
        .context("temporary path is not UTF-8")?;
    // Every value is ours (addresses, an sa_ id, a temp path): quoted with serde_json, whose
    // string escapes are valid TOML basic-string escapes.
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let mut t = String::new();
    writeln!(t, "listen = {}", q(&c.listen.to_string()))?;
    writeln!(t, "metrics_listen = {}", q(&c.metrics.to_string()))?;
    writeln!(t, "stale_feed_limit = \"60s\"")?;
    writeln!(t, "\n[[issuers]]")?;
    writeln!(t, "issuer = {}", q(c.issuer))?;
    writeln!(t, "feed_client_id = {}", q(c.feed_client_id))?;
    writeln!(t, "feed_client_secret_file = {}", q(secret_file))?;
    let upstream = q(&format!("http://{}", c.upstream));
    writeln!(t, "\n[[routes]]")?;
    writeln!(
        t,
        "name = \"on\"\npath_prefix = \"/on\"\nupstream = {upstream}"
    )?;
    writeln!(t, "strip_prefix = true")?;
    writeln!(t, "audience = {}\nscopes_all = [{}]", q(AUDIENCE), q(SCOPE))?;
    writeln!(t, "\n[[routes]]")?;
    writeln!(
        t,
        "name = \"off\"\npath_prefix = \"/off\"\nupstream = {upstream}"
    )?;
    writeln!(t, "strip_prefix = true\nverify = false")?;
    Ok(t)
}

/// `GET {prefix}/x` to one address, each request with a token from the pool.
struct Proxied {
    addr: SocketAddr,
    host: HeaderValue,
    path: String,
    tokens: Arc<Vec<HeaderValue>>,
}

impl Proxied {
    fn new(addr: SocketAddr, prefix: &str, tokens: Arc<Vec<HeaderValue>>) -> Result<Self> {
        anyhow::ensure!(!tokens.is_empty(), "no tokens");
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&addr.to_string())?,
            path: format!("{prefix}/x"),
            tokens,
        })
    }

    /// The request, with the token at `index` (mod the pool) or with none.
    fn get(&self, token: Option<usize>) -> Result<Request<Full<Bytes>>> {
        let mut req = Request::builder()
            .uri(self.path.as_str())
            .header(HOST, self.host.clone());
        if let Some(i) = token {
            req = req.header(AUTHORIZATION, self.tokens[i % self.tokens.len()].clone());
        }
        Ok(req.body(Full::new(Bytes::new()))?)
    }
}

impl RequestSource for Proxied {
    fn addr(&self, _conn: usize) -> SocketAddr {
        self.addr
    }

    /// Connection `conn` starts at token `16·conn` and takes the next token each request.
    fn request(&self, conn: usize, seq: u64) -> Result<Request<Full<Bytes>>> {
        let len = self.tokens.len() as u64;
        let index = (conn as u64 * 16 + seq % len) % len;
        self.get(Some(usize::try_from(index)?))
    }

    fn accepts(&self, status: StatusCode, body: &[u8]) -> bool {
        status == StatusCode::OK && body == upstream::BODY
    }
}

/// The sanity checks before any load: each target answers a token-carrying request with the
/// upstream's `200 ok`, and `/on` refuses a request without a token with 401.
async fn probe(loads: &[(&str, u32, Arc<Proxied>)]) -> Result<()> {
    for (name, _, source) in loads {
        let (status, body) = load::send(source.addr, source.get(Some(0))?)
            .await
            .with_context(|| format!("probe {name}"))?;
        if !source.accepts(status, &body) {
            bail!(
                "probe {name} (GET {} with a token): {status}: {}",
                source.path,
                String::from_utf8_lossy(&body)
            );
        }
        if *name == ON || *name == OFF {
            let (status, body) = load::send(source.addr, source.get(None)?)
                .await
                .with_context(|| format!("probe {name} without a token"))?;
            let expected = if *name == ON {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::OK
            };
            if status != expected {
                bail!(
                    "probe {name} (GET {} without a token): {status}, expected {expected}: {}",
                    source.path,
                    String::from_utf8_lossy(&body)
                );
            }
        }
    }
    Ok(())
}

/// The gateway's `/metrics` lines about denials and dropped access-log lines (nothing if the
/// scrape fails: they are a footnote, not a figure).
async fn gateway_metrics(addr: SocketAddr) -> Vec<String> {
    let req = Request::builder()
        .uri("/metrics")
        .header(HOST, addr.to_string())
        .body(Full::new(Bytes::new()));
    let Ok(req) = req else { return Vec::new() };
    match load::send(addr, req).await {
        Ok((StatusCode::OK, body)) => String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| {
                l.starts_with("warrant_gateway_denials_total")
                    || l.starts_with("warrant_gateway_access_log_dropped_total")
                    || (l.starts_with("warrant_gateway_requests_total")
                        && !l.contains("status=\"200\""))
            })
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

// --- report ------------------------------------------------------------------------------------

impl Figures {
    fn print(&self, rate: u32, connections: &[usize]) {
        let find = |rows: &[Row], target: &str, n: usize| {
            rows.iter()
                .find(|r| r.target == target && r.connections == n)
                .map(|r| (r.p50_ms, r.p99_ms, r.tokens_per_s))
        };

        println!(
            "\nBelow saturation: open loop, {rate} req/s offered on {OPEN_CONNECTIONS} connections"
        );
        print_table(&self.open, Some(f64::from(rate)));
        println!("\nAdded latency at {rate} req/s (ms; p50 and p99 of one row minus the other's):");
        let at = |t| find(&self.open, t, OPEN_CONNECTIONS);
        for (a, b, what) in [
            (ON, DIRECT, "verification and proxying"),
            (ON, OFF, "verification alone"),
            (OFF, DIRECT, "proxying alone"),
        ] {
            if let (Some(x), Some(y)) = (at(a), at(b)) {
                println!(
                    "  {a:<11} - {b:<11} {:>+8.3} {:>+8.3}   ({what})",
                    x.0 - y.0,
                    x.1 - y.1
                );
            }
        }

        println!("\nAt saturation: requests back to back");
        print_table(&self.saturated, None);
        println!("\ngateway-on / gateway-off at saturation:");
        for &n in connections {
            let row = |t: &str| {
                self.saturated
                    .iter()
                    .find(|r| r.target == t && r.connections == n)
            };
            if let (Some(on), Some(off)) = (row(ON), row(OFF)) {
                println!(
                    "  {n:>3} conns: req/s {:.0} / {:.0} = {:.2}x; requests per gateway \
                     CPU-second {:.0} / {:.0} = {:.2}x",
                    on.tokens_per_s,
                    off.tokens_per_s,
                    ratio(on.tokens_per_s, off.tokens_per_s),
                    on.tokens_per_cpu_s(),
                    off.tokens_per_cpu_s(),
                    ratio(on.tokens_per_cpu_s(), off.tokens_per_cpu_s()),
                );
            }
        }

        if !self.metrics.is_empty() {
            println!(
                "\nGateway /metrics after the run (denials, non-200 outcomes, dropped log lines):"
            );
            for line in &self.metrics {
                println!("  {line}");
            }
        }
        println!(
            "gateway access log: {} lines written during the run",
            self.access_log_lines
        );

        println!("\nGoals:");
        match (at(ON), at(OFF)) {
            (Some(on), Some(off)) => {
                let added = on.1 - off.1;
                verdict(
                    &format!("verification adds <= 1 ms at p99 at {rate} req/s (on - off)"),
                    format!("{added:+.3} ms"),
                    added <= GOAL_ADDED_P99_MS,
                );
            }
            _ => println!("  verification adds <= 1 ms at p99: not measured"),
        }
        for &n in connections {
            match (find(&self.saturated, ON, n), find(&self.saturated, OFF, n)) {
                (Some(on), Some(off)) => {
                    let r = ratio(on.2, off.2);
                    verdict(
                        &format!("verified throughput >= 0.70 x unverified at {n} conns"),
                        format!("{r:.2}x"),
                        r >= GOAL_THROUGHPUT_RATIO,
                    );
                }
                _ => println!("  verified throughput at {n} conns: not measured"),
            }
        }
    }
}

/// One table: the server column is the upstream's for `direct`, the gateway's otherwise. With
/// `offered`, rows achieving less than [`RATE_SHORTFALL`] of it are marked.
fn print_table(rows: &[Row], offered: Option<f64>) {
    println!(
        "{:<11} {:>5} {:>9} {:>8} {:>8} {:>8} {:>8} {:>10} {:>8} {:>6}",
        "target",
        "conns",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "cpu s",
        "req/cpu-s",
        "RSS MiB",
        "errors"
    );
    for r in rows {
        let short = offered.is_some_and(|o| r.tokens_per_s < o * RATE_SHORTFALL);
        println!(
            "{:<11} {:>5} {:>9.0} {:>8.3} {:>8.3} {:>8.2} {:>8.2} {:>10.0} {:>8.1} {:>6}{}",
            r.target,
            r.connections,
            r.tokens_per_s,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.cpu_s,
            r.tokens_per_cpu_s(),
            r.rss_mib,
            r.errors,
            if short {
                "  below the offered rate"
            } else {
                ""
            }
        );
    }
    println!(
        "(cpu s, req/cpu-s, RSS: the upstream's process for direct, the gateway's for the others)"
    );
}

fn verdict(name: &str, value: String, pass: bool) {
    let verdict = if pass { "PASS" } else { "MISS" };
    println!("  {name:<62} {value:>10}  {verdict}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_walk_the_whole_pool_from_their_own_offset() {
        let tokens: Vec<HeaderValue> = (0..TOKENS)
            .map(|i| HeaderValue::from_str(&format!("Bearer t{i}")).unwrap())
            .collect();
        let p = Proxied::new(
            SocketAddr::from(([127, 0, 0, 1], 1)),
            "/on",
            Arc::new(tokens),
        )
        .unwrap();
        let token = |conn, seq| {
            p.request(conn, seq).unwrap().headers()[AUTHORIZATION]
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(token(0, 0), "Bearer t0");
        assert_eq!(token(1, 0), "Bearer t16");
        assert_eq!(token(1, 255), "Bearer t15");
        let seen: HashSet<String> = (0..TOKENS as u64).map(|s| token(3, s)).collect();
        assert_eq!(seen.len(), TOKENS);
    }

    #[test]
    fn gateway_toml_has_both_routes() {
        let t = gateway_toml(&GatewayToml {
            listen: SocketAddr::from(([127, 0, 0, 1], 1000)),
            metrics: SocketAddr::from(([127, 0, 0, 1], 1001)),
            issuer: "http://127.0.0.1:1002/t/default",
            feed_client_id: "sa_x",
            feed_secret_file: Path::new("/tmp/s"),
            upstream: SocketAddr::from(([127, 0, 0, 1], 1003)),
        })
        .unwrap();
        assert!(t.contains("listen = \"127.0.0.1:1000\"\n"));
        assert!(t.contains("feed_client_secret_file = \"/tmp/s\"\n"));
        assert!(t.contains("path_prefix = \"/on\"\nupstream = \"http://127.0.0.1:1003\"\n"));
        assert!(t.contains("scopes_all = [\"bench:read\"]\n"));
        assert!(t.contains("path_prefix = \"/off\""));
        assert!(t.contains("verify = false\n"));
    }
}
