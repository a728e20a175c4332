//! Starting a real `warrant serve` in a fresh temporary directory and creating the
//! service account whose credentials the load uses.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::StatusCode;
use tokio::process::Command;
use tokio::time::Instant;

use crate::load;
use crate::process::ChildServer;

const READY_TIMEOUT: Duration = Duration::from_secs(30);
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

/// Starts `warrant serve` in `tmp` on a free port and waits until `/readyz` says 200.
pub async fn start(bin: &Path, tmp: &TempDir) -> Result<ChildServer> {
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let log_path = tmp.0.join("warrant.log");
    let log = std::fs::File::create(&log_path).context("creating the warrant log file")?;
    let child = Command::new(bin)
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data_dir(tmp))
        .arg("--public-url")
        .arg(&url)
        .env("WARRANT_RATE_LIMIT__PER_ADDRESS_PER_SECOND", NO_LIMIT)
        .env("WARRANT_RATE_LIMIT__PER_ADDRESS_BURST", NO_LIMIT)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut server = ChildServer::new(child, SocketAddr::from(([127, 0, 0, 1], port)))?;

    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = server.child.try_wait()? {
            bail!(
                "warrant serve exited ({status}) before it was ready; log:\n{}",
                log_tail(&log_path)
            );
        }
        if let Ok(StatusCode::OK) = load::get_status(server.addr, "/readyz").await {
            return Ok(server);
        }
        if Instant::now() >= deadline {
            bail!(
                "warrant serve not ready after {READY_TIMEOUT:?}; log:\n{}",
                log_tail(&log_path)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `warrant sa create bench ...`: the account the load authenticates as.
pub async fn create_account(bin: &Path, tmp: &TempDir, server: &ChildServer) -> Result<Account> {
    let credentials = data_dir(tmp).join("admin-credentials.json");
    let out = Command::new(bin)
        .args(["sa", "create", "bench", "--tenant", "default"])
        .args([
            "--audience",
            "https://bench.internal",
            "--scope",
            "bench:read",
        ])
        .args(["--output", "json", "--url"])
        .arg(format!("http://{}", server.addr))
        .arg("--credentials")
        .arg(&credentials)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running `warrant sa create`")?;
    if !out.status.success() {
        bail!(
            "`warrant sa create` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "`warrant sa create` printed non-JSON: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
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

fn data_dir(tmp: &TempDir) -> PathBuf {
    tmp.0.join("data")
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
