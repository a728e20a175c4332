//! Software key vs HSM key: the same algorithm, signed in process or through PKCS#11 on a
//! SoftHSM2 token, measured on the SAME real `warrant serve` process.
//!
//! The server gets a configuration file with `[hsm.modules.main]` (the SoftHSM2 library, a
//! token initialised in a temporary token store, a PIN file) and `SOFTHSM2_CONF` pointing at
//! that store. For each algorithm in [`ALGS`] two tenants are created: one keeps software keys,
//! the other is switched to `key_source {"hsm":{"module":"main"}}` (admin API) and rotated
//! `now`, so its signing key is generated on the token. Both are then loaded one after the other.
//!
//! SoftHSM2 is a software token: this measures the PKCS#11 path (session pool, the C calls,
//! SoftHSM2's own crypto and locking), not a hardware HSM. Without SoftHSM2 installed the rows
//! are skipped with a line saying why.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use tokio::process::Command;
use warrant_jose::Algorithm;

use crate::load;
use crate::report::{Row, ratio};
use crate::warrant::{self, TempDir};

/// (software row, HSM row, algorithm, software tenant, HSM tenant).
pub const ALGS: [(&str, &str, Algorithm, &str, &str); 2] = [
    (
        "ES256-sw",
        "ES256-hsm",
        Algorithm::Es256,
        "sw-es256",
        "hsm-es256",
    ),
    (
        "RS256-sw",
        "RS256-hsm",
        Algorithm::Rs256,
        "sw-rs256",
        "hsm-rs256",
    ),
];

const TOKEN_LABEL: &str = "warrant-bench";
const PIN: &str = "1234";
const SO_PIN: &str = "5678";
/// Logged-in PKCS#11 sessions (signatures in flight on the token).
pub const SESSIONS: usize = 8;

/// Set by scripts/test from scripts/softhsm-setup; honoured here too.
const MODULE_VAR: &str = "WARRANT_TEST_SOFTHSM_MODULE";
const USUAL_PATHS: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// The SoftHSM2 module, or why it cannot be used.
pub fn module() -> std::result::Result<PathBuf, String> {
    let found = match std::env::var_os(MODULE_VAR) {
        Some(p) => {
            let p = PathBuf::from(p);
            if !(p.is_absolute() && p.is_file()) {
                return Err(format!("{MODULE_VAR}={} is not a file", p.display()));
            }
            p
        }
        None => USUAL_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or("libsofthsm2.so not found (run scripts/softhsm-setup)")?,
    };
    let util = std::process::Command::new("softhsm2-util")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !util.is_ok_and(|s| s.success()) {
        return Err("softhsm2-util not runnable (run scripts/softhsm-setup)".into());
    }
    Ok(found)
}

/// A token store in `dir` with one initialised token, plus the PIN file and the server's
/// configuration file. Returns (config file, softhsm2.conf).
async fn prepare(dir: &Path, library: &Path) -> Result<(PathBuf, PathBuf)> {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens)?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )?;
    let out = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", TOKEN_LABEL])
        .args(["--pin", PIN, "--so-pin", SO_PIN])
        .env("SOFTHSM2_CONF", &conf)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running softhsm2-util")?;
    if !out.status.success() {
        bail!(
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let pin_file = dir.join("hsm.pin");
    std::fs::write(&pin_file, format!("{PIN}\n"))?;
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600))?;
    let config = dir.join("warrant.toml");
    std::fs::write(
        &config,
        format!(
            "[hsm.modules.main]\nlibrary = {:?}\ntoken_label = {TOKEN_LABEL:?}\n\
             pin_file = {:?}\nsessions = {SESSIONS}\n",
            library.display().to_string(),
            pin_file.display().to_string()
        ),
    )?;
    Ok((config, conf))
}

/// Starts one real `warrant serve` (SQLite, audit log on) with the SoftHSM2 module configured.
pub async fn start(bin: &Path, tmp: &TempDir, library: &Path) -> Result<warrant::Cluster> {
    let (config, conf) = prepare(&tmp.0, library).await?;
    warrant::launch(tmp, 1, |slot| {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", slot.port))
            .arg("--data-dir")
            .arg(slot.data_dir)
            .arg("--public-url")
            .arg(slot.public_url)
            .arg("--config")
            .arg(&config)
            .env("SOFTHSM2_CONF", &conf)
            .env("WARRANT_RATE_LIMIT__PER_ADDRESS_PER_SECOND", "1000000")
            .env("WARRANT_RATE_LIMIT__PER_ADDRESS_BURST", "1000000")
            .stdin(Stdio::null());
        cmd
    })
    .await
}

/// One JSON/form request on a fresh connection; status and body.
async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    authorization: &str,
    content_type: &'static str,
    body: Vec<u8>,
) -> Result<(StatusCode, Bytes)> {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr.to_string())
        .header(AUTHORIZATION, authorization)
        .header(CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))?;
    let mut sender = load::connect(addr).await?;
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        load::exchange(&mut sender, req),
    )
    .await
    .context("request timed out")?
}

/// An admin access token from the bootstrap credentials file.
pub async fn admin_token(addr: SocketAddr, credentials: &Path) -> Result<String> {
    let creds: serde_json::Value = serde_json::from_slice(&std::fs::read(credentials)?)?;
    let (Some(id), Some(secret)) = (creds["client_id"].as_str(), creds["client_secret"].as_str())
    else {
        bail!("{} lacks client_id/client_secret", credentials.display());
    };
    let account = warrant::Account {
        client_id: id.to_owned(),
        secret: secret.to_owned(),
    };
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("resource", &format!("http://{addr}/admin"))
        .append_pair("scope", "admin")
        .finish();
    let (status, body) = request(
        addr,
        Method::POST,
        "/t/system/token",
        &account.basic_authorization(),
        "application/x-www-form-urlencoded",
        form.into_bytes(),
    )
    .await?;
    if status != StatusCode::OK {
        bail!("admin token: {status}: {}", String::from_utf8_lossy(&body));
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    v["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("admin token response has no access_token")
}

/// PATCH the tenant's key source to the `main` module, then rotate `now`: its signing key is
/// generated on the token. Checks the server logged the generation for this tenant.
pub async fn switch_to_hsm(addr: SocketAddr, admin: &str, tenant: &str, log: &Path) -> Result<()> {
    let bearer = format!("Bearer {admin}");
    let (status, body) = request(
        addr,
        Method::PATCH,
        &format!("/admin/v1/tenants/{tenant}"),
        &bearer,
        "application/json",
        br#"{"key_source":{"hsm":{"module":"main"}}}"#.to_vec(),
    )
    .await?;
    if status != StatusCode::OK {
        bail!(
            "PATCH tenant {tenant} key_source: {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let (status, body) = request(
        addr,
        Method::POST,
        &format!("/admin/v1/tenants/{tenant}/keys/rotate"),
        &bearer,
        "application/json",
        br#"{"now":true}"#.to_vec(),
    )
    .await?;
    if !status.is_success() {
        bail!(
            "rotate {tenant} now: {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let label = format!("warrant-{tenant}-");
    if !text
        .lines()
        .any(|l| l.contains("signing key generated in the HSM") && l.contains(&label))
    {
        bail!("the server did not log an HSM key for {tenant}");
    }
    Ok(())
}

/// HSM / software at each connection count, per algorithm.
pub fn print_summary(rows: &[Row], connections: &[usize]) {
    let find = |target: &str, n: usize| {
        rows.iter()
            .find(|r| r.target == target && r.connections == n)
    };
    println!("\nHSM key / software key, same server process (each HSM row / its software row):");
    println!(
        "  {:>5}  {:<6} {:>9} {:>9} {:>9} {:>14} {:>15}",
        "conns", "alg", "tokens/s", "p50", "p99", "cpu us/tok sw", "cpu us/tok hsm"
    );
    for &n in connections {
        for &(sw, hsm, alg, _, _) in &ALGS {
            let (Some(s), Some(h)) = (find(sw, n), find(hsm, n)) else {
                continue;
            };
            println!(
                "  {n:>5}  {:<6} {:>8.2}x {:>8.2}x {:>8.2}x {:>14.1} {:>15.1}",
                alg.as_str(),
                ratio(h.tokens_per_s, s.tokens_per_s),
                ratio(h.p50_ms, s.p50_ms),
                ratio(h.p99_ms, s.p99_ms),
                s.cpu_s_per_1k() * 1000.0,
                h.cpu_s_per_1k() * 1000.0,
            );
        }
    }
    println!(
        "(SoftHSM2 is a software token: this is the PKCS#11 path's cost, not a hardware HSM's; \
         sessions = {SESSIONS}; server CPU includes SoftHSM2's work, which runs in the server)"
    );
}
