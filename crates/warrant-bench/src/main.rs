//! Warrant benchmark: how fast does `POST /t/{tenant}/token` issue tokens, and at what cost,
//! compared with the least any token endpoint could do?
//!
//! One run measures two targets under the same load, on the same machine, minutes apart:
//!
//! - the **floor**: a bare hyper HTTP/1.1 server that signs an ES256 JWT of Warrant's shape
//!   for every POST (no authentication, no policy, no store). It is the cost of HTTP plus one
//!   ECDSA signature: no token endpoint built on the same stack can beat it.
//! - **Warrant**: a real `warrant serve` with a fresh data directory, authenticating a
//!   service account with client_credentials (HTTP Basic) on every request.
//!
//! For each target and each connection count (1, 16, 64 by default) it opens N keep-alive
//! connections issuing requests back to back, warms up for 1 s, then measures for the
//! duration: tokens/s, p50/p99 latency, server CPU-seconds (from `/proc/PID/stat`), tokens
//! per CPU-second, and peak RSS (`VmHWM`). It then checks Warrant against its goals.
//!
//! The floor runs in its own process (this binary re-executed as `warrant-bench floor`), not
//! inside the benchmark, so that its CPU time and memory can be read from `/proc` apart from
//! the load generator's, exactly as Warrant's are: both servers are measured the same way.

mod floor;
mod load;
mod process;
mod report;
mod warrant;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::load::{Schedule, Target};
use crate::process::ChildServer;
use crate::report::Row;

const WARMUP: Duration = Duration::from_secs(1);
const TOKEN_PATH: &str = "/t/default/token";

const USAGE: &str =
    "usage: warrant-bench [--duration SECS] [--warrant PATH] [--connections 1,16,64]";

struct Options {
    duration: Duration,
    warrant: PathBuf,
    connections: Vec<usize>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warrant-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("floor") {
        return floor::serve_child();
    }
    let Some(options) = parse_args(&args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the load runtime")?
        .block_on(bench(options))
}

fn parse_args(args: &[String]) -> Result<Option<Options>> {
    let mut options = Options {
        duration: Duration::from_secs(10),
        warrant: default_warrant_path(),
        connections: vec![1, 16, 64],
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--duration" => {
                let secs: u64 = value.parse().context("--duration: whole seconds")?;
                if secs == 0 {
                    bail!("--duration must be at least 1");
                }
                options.duration = Duration::from_secs(secs);
            }
            "--warrant" => options.warrant = PathBuf::from(value),
            "--connections" => {
                options.connections = value
                    .split(',')
                    .map(|n| n.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--connections: comma-separated counts, e.g. 1,16,64")?;
                if options.connections.contains(&0) || options.connections.is_empty() {
                    bail!("--connections: counts must be at least 1");
                }
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    Ok(Some(options))
}

/// `warrant` next to this binary (both live in target/release), else `target/release/warrant`.
fn default_warrant_path() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("warrant")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("target/release/warrant"))
}

async fn bench(options: Options) -> Result<()> {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "machine: {cpus} CPUs (available_parallelism){}",
        cpu_model()
    );
    println!(
        "duration: {} s measured per run, after {} s warm-up; connections: {:?}",
        options.duration.as_secs(),
        WARMUP.as_secs(),
        options.connections
    );
    if !options.warrant.exists() {
        bail!(
            "no warrant binary at {} (build it: cargo build --release -p warrant-cli, or pass --warrant PATH)",
            options.warrant.display()
        );
    }

    let mut rows = Vec::new();

    // Floor first, alone on the machine; then Warrant, alone.
    let floor = floor::spawn().await?;
    eprintln!("floor listening on {} (pid {})", floor.addr, floor.pid);
    let target = Target::new(floor.addr, TOKEN_PATH, "Basic Zmxvb3I6Zmxvb3I=")?;
    let result = measure_all("floor", &floor, target, &options, &mut rows).await;
    floor.stop().await;
    result?;

    let tmp = warrant::TempDir::new()?;
    let server = warrant::start(&options.warrant, &tmp).await?;
    eprintln!(
        "warrant listening on {} (pid {}, dir {})",
        server.addr,
        server.pid,
        tmp.0.display()
    );
    let result = async {
        let account = warrant::create_account(&options.warrant, &tmp, &server).await?;
        let target = Target::new(server.addr, TOKEN_PATH, &account.basic_authorization())?;
        measure_all("warrant", &server, target, &options, &mut rows).await
    }
    .await;
    server.stop().await;
    drop(tmp);
    result?;

    println!();
    report::print_table(&rows);
    report::print_summary(&rows, &options.connections);
    Ok(())
}

/// Checks one token request works, then runs every connection count against `server`.
async fn measure_all(
    name: &'static str,
    server: &ChildServer,
    target: Target,
    options: &Options,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let (status, body) = load::probe(&target)
        .await
        .with_context(|| format!("first token request to {name}"))?;
    if status != hyper::StatusCode::OK {
        bail!(
            "first token request to {name}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let target = Arc::new(target);
    for &n in &options.connections {
        eprintln!("{name}: {n} connections ...");
        rows.push(measure(name, server, &target, n, options.duration).await?);
    }
    Ok(())
}

/// One run: warm-up, then the measured window, with the server's CPU read at both ends.
async fn measure(
    name: &'static str,
    server: &ChildServer,
    target: &Arc<Target>,
    connections: usize,
    duration: Duration,
) -> Result<Row> {
    process::reset_peak_rss(server.pid);
    let schedule = Schedule::starting_now(WARMUP, duration);
    let load = tokio::spawn(load::run(target.clone(), connections, schedule));
    tokio::time::sleep_until(schedule.measure_start).await;
    let cpu_before = process::cpu_seconds(server.pid)?;
    tokio::time::sleep_until(schedule.end).await;
    let cpu_after = process::cpu_seconds(server.pid)?;
    let result = load.await.context("load generator failed")??;
    let rss = process::peak_rss_mib(server.pid)?;
    Ok(Row::new(
        name,
        connections,
        result,
        duration,
        cpu_after - cpu_before,
        rss,
    ))
}

/// ", <model name>" from /proc/cpuinfo, or nothing.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| format!(", {}", model.trim()))
        })
        .unwrap_or_default()
}
