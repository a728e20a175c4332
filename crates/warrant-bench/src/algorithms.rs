//! Issue 5: what each signing algorithm costs a token, and how much of it is the signature.
//!
//! Two parts, both printed by `--scenario algorithms`:
//!
//! - **Raw signing**, in this process on one thread, before any server starts: for each
//!   algorithm, `warrant_jose::SigningKey::generate(alg)` and then `SigningKey::sign` over a
//!   300-byte message (about a token's signing input) back to back for [`SIGN_SECONDS`] after a
//!   short warm-up. Signatures per wall-second on one core, and the thread's own CPU time per
//!   signature (`/proc/thread-self/stat`), which stays right if something else shares the core.
//! - **Issuance per algorithm** through one server: a `warrant-bench serve-child` with the audit
//!   log on (the real configuration), one tenant per algorithm (`alg-es256`, … created with
//!   `warrant tenant create --signing-alg`), one service account with a secret in each, and the
//!   usual load against `/t/alg-…/token`, one tenant after the other ([`TENANTS`] order).
//!
//! The report then sets each algorithm against ES256 measured in the same run, and sets the
//! server's CPU per token against the raw signature, so the reader can see how much of a token
//! is the signature and how much is everything else (HTTP, authentication, the audit record).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use warrant_jose::{Algorithm, SigningKey};

use crate::process;
use crate::report::{Row, ratio};
use crate::warrant;

/// The tenants, one per algorithm, in the order they are measured; ES256 (the default and the
/// baseline) first. Rows are named after the algorithm.
pub const TENANTS: [(&str, Algorithm); 4] = [
    ("alg-es256", Algorithm::Es256),
    ("alg-eddsa", Algorithm::EdDsa),
    ("alg-rs256", Algorithm::Rs256),
    ("alg-ps256", Algorithm::Ps256),
];
/// The baseline every other algorithm is compared with.
pub const BASELINE: Algorithm = Algorithm::Es256;

/// How long each raw signing loop is measured, after [`SIGN_WARMUP`].
const SIGN_SECONDS: Duration = Duration::from_millis(1500);
const SIGN_WARMUP: Duration = Duration::from_millis(200);
/// About the signing input of one of Warrant's tokens (base64url header `.` claims).
const MESSAGE_LEN: usize = 300;
/// Signatures between two looks at the clock.
const BATCH: u32 = 8;

/// One algorithm's raw signing figures.
pub struct SignRow {
    pub alg: Algorithm,
    pub signatures: u64,
    pub wall_s: f64,
    /// The signing thread's CPU time (user + system) over the same window.
    pub cpu_s: f64,
}

impl SignRow {
    fn per_wall_s(&self) -> f64 {
        self.signatures as f64 / self.wall_s
    }

    /// CPU microseconds per signature.
    pub fn cpu_us(&self) -> f64 {
        if self.signatures > 0 {
            self.cpu_s * 1e6 / self.signatures as f64
        } else {
            f64::NAN
        }
    }
}

/// Raw signing speed of every algorithm in [`TENANTS`], one after the other on one blocking
/// thread (nothing else of the bench runs meanwhile).
pub async fn measure_signing() -> Result<Vec<SignRow>> {
    tokio::task::spawn_blocking(|| TENANTS.iter().map(|&(_, alg)| sign_loop(alg)).collect())
        .await
        .context("the signing thread failed")?
}

fn sign_loop(alg: Algorithm) -> Result<SignRow> {
    let (key, _pkcs8) =
        SigningKey::generate(alg).with_context(|| format!("generating a {alg} key"))?;
    // Base64url-looking bytes, as a JWS signing input is.
    let message: Vec<u8> = (0..MESSAGE_LEN)
        .map(|i| b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[i % 64])
        .collect();
    let run = |window: Duration| -> Result<(u64, f64)> {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < window {
            for _ in 0..BATCH {
                std::hint::black_box(key.sign(std::hint::black_box(&message))?);
            }
            n += u64::from(BATCH);
        }
        Ok((n, start.elapsed().as_secs_f64()))
    };
    run(SIGN_WARMUP)?;
    let cpu_before = process::thread_cpu_seconds()?;
    let (signatures, wall_s) = run(SIGN_SECONDS)?;
    let cpu_s = process::thread_cpu_seconds()? - cpu_before;
    Ok(SignRow {
        alg,
        signatures,
        wall_s,
        cpu_s,
    })
}

pub fn print_signing(rows: &[SignRow]) {
    println!(
        "{:<8} {:>10} {:>8} {:>12} {:>12} {:>9}",
        "alg", "signatures", "wall s", "sig/s", "cpu us/sig", "vs ES256"
    );
    let base = rows.iter().find(|r| r.alg == BASELINE);
    for r in rows {
        println!(
            "{:<8} {:>10} {:>8.2} {:>12.0} {:>12.1} {:>8.2}x",
            r.alg.as_str(),
            r.signatures,
            r.wall_s,
            r.per_wall_s(),
            r.cpu_us(),
            base.map_or(f64::NAN, |b| ratio(r.per_wall_s(), b.per_wall_s())),
        );
    }
    println!(
        "(one thread, {MESSAGE_LEN}-byte message, {:.1} s per algorithm; cpu us/sig is the \
         thread's own CPU time; vs ES256: signatures/s)",
        SIGN_SECONDS.as_secs_f64()
    );
}

/// `warrant tenant create NAME --signing-alg ALG` through `server` with the admin
/// `credentials` file; checks the tenant came back with that algorithm.
pub async fn create_tenant(
    bin: &Path,
    credentials: &Path,
    server: SocketAddr,
    name: &str,
    alg: Algorithm,
) -> Result<()> {
    let v = warrant::cli_json(
        bin,
        credentials,
        server,
        &["tenant", "create", name, "--signing-alg", alg.as_str()],
        "warrant tenant create",
        &format!("warrant tenant create {name}"),
    )
    .await?;
    if v["signing_alg"].as_str() != Some(alg.as_str()) {
        bail!(
            "tenant {name} was created with signing_alg {}",
            v["signing_alg"]
        );
    }
    Ok(())
}

/// Each algorithm against ES256 at the same connection count, then where the server's CPU per
/// token goes at each connection count: the raw signature and everything else.
pub fn print_summary(rows: &[Row], signing: &[SignRow], connections: &[usize]) {
    let find = |target: &str, n: usize| {
        rows.iter()
            .find(|r| r.target == target && r.connections == n)
    };
    let base = BASELINE.as_str();
    println!("\nPer algorithm vs ES256, same run (each row / ES256 at the same connection count):");
    println!(
        "  {:>5}  {:<8} {:>9} {:>9} {:>10}",
        "conns", "alg", "tokens/s", "p99", "tok/cpu-s"
    );
    for &n in connections {
        let Some(b) = find(base, n) else { continue };
        for &(_, alg) in &TENANTS {
            if let Some(r) = find(alg.as_str(), n) {
                println!(
                    "  {n:>5}  {:<8} {:>8.2}x {:>8.2}x {:>9.2}x",
                    alg.as_str(),
                    ratio(r.tokens_per_s, b.tokens_per_s),
                    ratio(r.p99_ms, b.p99_ms),
                    ratio(r.tokens_per_cpu_s(), b.tokens_per_cpu_s())
                );
            }
        }
    }

    println!(
        "\nWhere the server's CPU per token goes (server CPU us/token = cpu-s/1k tok x 1000; \
         signing = the raw figure above):"
    );
    println!(
        "  {:>5}  {:<8} {:>14} {:>11} {:>9} {:>11}",
        "conns", "alg", "server us/tok", "signing us", "signing", "rest us"
    );
    for &n in connections {
        for &(_, alg) in &TENANTS {
            let (Some(r), Some(s)) = (find(alg.as_str(), n), signing.iter().find(|s| s.alg == alg))
            else {
                continue;
            };
            let server_us = r.cpu_s_per_1k() * 1000.0;
            let sign_us = s.cpu_us();
            println!(
                "  {n:>5}  {:<8} {:>14.1} {:>11.1} {:>8.0}% {:>11.1}",
                alg.as_str(),
                server_us,
                sign_us,
                100.0 * ratio(sign_us, server_us),
                server_us - sign_us
            );
        }
    }
}
