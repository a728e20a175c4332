//! Starting real `warrant serve` replicas (one on SQLite, or several on one PostgreSQL
//! database) — or any server started the same way ([`launch`]) — in a fresh temporary
//! directory, and creating the service account whose credentials the load uses.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hyper::StatusCode;
use tokio::process::Command;
use tokio::time::Instant;

use crate::load;
use crate::process::ChildServer;

pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
const NO_LIMIT: &str = "1000000";

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Result<Self> {
        let mut nonce = [0u8; 8];
        aws_lc_rs::rand::fill(&mut nonce)?;
        let name = format!(
            "warrant-bench-{}-{:016x}",
            std::process::id(),
            u64::from_le_bytes(nonce)
        );
        let dir = std::env::temp_dir().join(name);
        // create_dir (not create_dir_all): fails rather than reuse an existing directory.
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Credentials of the benchmark's service account.
pub struct Account {
    pub client_id: String,
    pub secret: String,
}

impl Account {
    pub fn basic_authorization(&self) -> String {
        let pair = format!("{}:{}", self.client_id, self.secret);
        format!("Basic {}", STANDARD.encode(pair))
    }
}

/// Where the replicas keep their data: PostgreSQL needs the shared master key as well.
pub struct Postgres<'a> {
    /// `--database-url`.
    pub url: &'a str,
    /// `WARRANT_MASTER_KEY`, the same for every replica.
    pub master_key: &'a str,
}

/// Running `warrant serve` replicas, and the admin credentials file one of them wrote.
pub struct Cluster {
    pub servers: Vec<ChildServer>,
    pub credentials: PathBuf,
}

impl Cluster {
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(|s| s.addr).collect()
    }

    pub fn pids(&self) -> Vec<u32> {
        self.servers.iter().map(|s| s.pid).collect()
    }

    /// Kills every replica and reaps it.
    pub async fn stop(self) {
        for server in self.servers {
            server.stop().await;
        }
    }
}

/// Starts `replicas` × `warrant serve` on free ports, replica `i` with data directory
/// `tmp/data-{i}` and log `tmp/warrant-{i}.log`, all with the first replica's URL as
/// `--public-url`; on SQLite (`postgres` None, `replicas` must be 1) or on one shared
/// PostgreSQL database. Waits until every replica answers 200 on `/readyz` and one data
/// directory holds `admin-credentials.json`.
pub async fn start(
    bin: &Path,
    tmp: &TempDir,
    replicas: usize,
    postgres: Option<&Postgres<'_>>,
) -> Result<Cluster> {
    if replicas != 1 && postgres.is_none() {
        bail!("several replicas need PostgreSQL (SQLite serves one process)");
    }
    launch(tmp, replicas, |slot| {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", slot.port))
            .arg("--data-dir")
            .arg(slot.data_dir)
            .arg("--public-url")
            .arg(slot.public_url)
            .env("WARRANT_RATE_LIMIT__PER_ADDRESS_PER_SECOND", NO_LIMIT)
            .env("WARRANT_RATE_LIMIT__PER_ADDRESS_BURST", NO_LIMIT)
            .stdin(Stdio::null());
        if let Some(pg) = postgres {
            cmd.arg("--database-url")
                .arg(pg.url)
                .env("WARRANT_MASTER_KEY", pg.master_key);
        }
        cmd
    })
    .await
}

/// Where one replica of a [`launch`] lives.
pub struct Slot<'a> {
    /// A free port on 127.0.0.1 to listen on.
    pub port: u16,
    /// `http://127.0.0.1:{first replica's port}`.
    pub public_url: &'a str,
    /// `tmp/data-{i}` (not created: the server creates it).
    pub data_dir: &'a Path,
}

/// Starts `replicas` servers, each from the command `command` builds for its [`Slot`] (which
/// must make it listen on the slot's port and keep its data in the slot's directory), with
/// stdout and stderr in `tmp/warrant-{i}.log`. Waits until every one answers 200 on `/readyz`
/// and one data directory holds `admin-credentials.json`. Used for `warrant serve` and for
/// this binary's `serve-child` alike, so both are started and awaited the same way.
pub async fn launch(
    tmp: &TempDir,
    replicas: usize,
    command: impl Fn(&Slot<'_>) -> Command,
) -> Result<Cluster> {
    let ports = free_ports(replicas)?;
    let public_url = format!("http://127.0.0.1:{}", ports[0]);
    // Start them all before waiting for any: replicas starting together is the case to bear.
    let mut servers = Vec::with_capacity(replicas);
    let mut logs = Vec::with_capacity(replicas);
    for (i, &port) in ports.iter().enumerate() {
        let data_dir = tmp.0.join(format!("data-{i}"));
        let log_path = tmp.0.join(format!("warrant-{i}.log"));
        let log = std::fs::File::create(&log_path).context("creating a server log file")?;
        let mut cmd = command(&Slot {
            port,
            public_url: &public_url,
            data_dir: &data_dir,
        });
        cmd.stdout(log.try_clone()?).stderr(log).kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {:?}", cmd.as_std().get_program()))?;
        servers.push(ChildServer::new(
            child,
            SocketAddr::from(([127, 0, 0, 1], port)),
        )?);
        logs.push((data_dir, log_path));
    }

    let deadline = Instant::now() + READY_TIMEOUT;
    for (server, (_, log_path)) in servers.iter_mut().zip(&logs) {
        wait_ready(server, log_path, deadline).await?;
    }
    let credentials = loop {
        let written: Vec<PathBuf> = logs
            .iter()
            .map(|(dir, _)| dir.join("admin-credentials.json"))
            .filter(|p| p.exists())
            .collect();
        if let Some(first) = written.first() {
            if written.len() > 1 {
                eprintln!(
                    "warning: {} replicas wrote admin-credentials.json (expected one); using {}",
                    written.len(),
                    first.display()
                );
            }
            break first.clone();
        }
        if Instant::now() >= deadline {
            bail!(
                "no replica wrote admin-credentials.json after {READY_TIMEOUT:?}; first log:\n{}",
                log_tail(&logs[0].1)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    Ok(Cluster {
        servers,
        credentials,
    })
}

/// Waits until `server` answers 200 on `/readyz`, failing if it exits or `deadline` passes.
async fn wait_ready(server: &mut ChildServer, log_path: &Path, deadline: Instant) -> Result<()> {
    let addr = server.addr;
    wait_ready_at(server, addr, log_path, deadline).await
}

/// Waits until `GET http://{ready}/readyz` answers 200 (`ready` may be another listener of
/// `server`'s, e.g. a metrics port), failing if `server` exits or `deadline` (normally
/// [`READY_TIMEOUT`] from the start) passes; the error quotes the end of `log_path`.
pub async fn wait_ready_at(
    server: &mut ChildServer,
    ready: SocketAddr,
    log_path: &Path,
    deadline: Instant,
) -> Result<()> {
    loop {
        if let Some(status) = server.child.try_wait()? {
            bail!(
                "the server on {} exited ({status}) before it was ready; log:\n{}",
                server.addr,
                log_tail(log_path)
            );
        }
        if let Ok(StatusCode::OK) = load::get_status(ready, "/readyz").await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "the server on {} not ready (GET http://{ready}/readyz) after {READY_TIMEOUT:?}; log:\n{}",
                server.addr,
                log_tail(log_path)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fresh master key: 32 random bytes, unpadded base64url (`WARRANT_MASTER_KEY`'s format).
pub fn new_master_key() -> Result<String> {
    let mut raw = [0u8; 32];
    aws_lc_rs::rand::fill(&mut raw)?;
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// The (audience, scope) the load's accounts are granted.
pub const BENCH_GRANT: (&str, &str) = ("https://bench.internal", "bench:read");

/// `warrant sa create bench --tenant TENANT ...`: the account the load authenticates as, with
/// a secret, granted [`BENCH_GRANT`]. Created through `server` with the admin `credentials`
/// file.
pub async fn create_account(
    bin: &Path,
    credentials: &Path,
    server: SocketAddr,
    tenant: &str,
) -> Result<Account> {
    create_named_account(bin, credentials, server, tenant, "bench", Some(BENCH_GRANT)).await
}

/// `warrant sa create NAME --tenant TENANT [--audience AUDIENCE --scope SCOPE]`: an account
/// with a secret, granted `grant` = (audience, scope) if given.
pub async fn create_named_account(
    bin: &Path,
    credentials: &Path,
    server: SocketAddr,
    tenant: &str,
    name: &str,
    grant: Option<(&str, &str)>,
) -> Result<Account> {
    let mut args = vec!["sa", "create", name, "--tenant", tenant];
    if let Some((audience, scope)) = grant {
        args.extend(["--audience", audience, "--scope", scope]);
    }
    let v = cli_json(
        bin,
        credentials,
        server,
        &args,
        "warrant sa create",
        "warrant sa create",
    )
    .await?;
    let field = |v: &serde_json::Value, what: &str| -> Result<String> {
        v.as_str()
            .map(str::to_owned)
            .with_context(|| format!("`warrant sa create` output has no {what}"))
    };
    Ok(Account {
        client_id: field(&v["client_id"], "client_id")?,
        secret: field(&v["secret"]["value"], "secret.value")?,
    })
}

/// Runs `warrant ARGS --output json --url http://SERVER --credentials CREDENTIALS` and parses
/// what it printed. `what` names the command in errors, `invocation` names it when it fails.
/// The output is not echoed on a parse failure: it may hold a client secret.
pub async fn cli_json(
    bin: &Path,
    credentials: &Path,
    server: SocketAddr,
    args: &[&str],
    what: &str,
    invocation: &str,
) -> Result<serde_json::Value> {
    let out = Command::new(bin)
        .args(args)
        .args(["--output", "json", "--url"])
        .arg(format!("http://{server}"))
        .arg("--credentials")
        .arg(credentials)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running `{what}`"))?;
    if !out.status.success() {
        bail!(
            "`{invocation}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("`{what}` printed non-JSON"))
}

/// `n` distinct free ports (all listeners are held until every port is chosen).
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").context("finding a free port"))
        .collect::<Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
