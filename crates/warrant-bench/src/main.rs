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
//!
//! That is `--scenario floor`, the default. `--scenario stores` compares Warrant's stores
//! under the same load (16 and 64 connections by default): one replica on SQLite, one
//! replica on PostgreSQL, and two replicas on one PostgreSQL database with the connections
//! split evenly between them (CPU summed and peak RSS the max over the replicas). Each
//! PostgreSQL scenario gets a fresh database, dropped afterwards.
//!
//! `--scenario audit` measures what the durable audit log costs (issue 4): the latency of one
//! `Store::append_audit` commit on a fresh SQLite store (and PostgreSQL when reachable), with 1
//! and 64 records per commit; issuance on SQLite with the audit log on and off (16 and 64
//! connections by default), both servers run as children of this binary (`warrant-bench
//! serve-child`, see serve_child.rs) so that they differ in the audit log only; and how long a
//! revocation posted to the admin API takes to reach a reader of the revocation stream.
//!
//! `--scenario algorithms` measures issuance per signing algorithm (issue 5): raw signing speed
//! of ES256, EdDSA, RS256 and PS256 in this process, then one serve-child with the audit log on
//! and a tenant per algorithm, loaded one tenant after the other, each set against ES256 (see
//! algorithms.rs); then software key vs HSM key (SoftHSM2) for ES256 and RS256 on one real
//! `warrant serve` with an HSM module configured (see hsm.rs; `--scenario hsm` runs only that).
//! `--scenario client-auth` measures issuance per client authentication method on one real
//! `warrant serve` (SQLite, audit log on): `client_secret_basic` (the baseline), `private_key_jwt`
//! with a fresh ES256 assertion per request, `client_secret_basic` plus a fresh DPoP proof
//! per request, and two RFC 8693 token exchanges (an external JWT under a federation trust;
//! delegation by a registered API's owner), each against the baseline (see client_auth.rs).
//! `--scenario gateway` measures `warrant gateway` (see gateway.rs): an upstream (this binary
//! re-executed as `warrant-bench upstream`, a bare hyper server answering `200 ok`) reached
//! directly, through the gateway on a route with token verification off, and on a route with
//! it on, 256 distinct tokens rotated across requests; first open loop at a fixed offered rate
//! below saturation (`--rate`, default 1,000 req/s on 16 connections: p50/p99/max and the
//! latency each step adds), then back to back at saturation (64 connections by default:
//! req/s, the gateway's CPU and peak RSS), and the goals: verification adds ≤ 1 ms at p99, and
//! keeps ≥ 70% of the unverified route's throughput.
//! `--scenario all` runs floor, stores, audit and algorithms.

mod algorithms;
mod client_auth;
mod commit;
mod floor;
mod gateway;
mod hsm;
mod load;
mod postgres;
mod process;
mod report;
mod revocation;
mod serve_child;
mod upstream;
mod warrant;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::load::{Pacing, RequestSource, Schedule, Target};
use crate::report::Row;
use crate::warrant::Cluster;

/// As in the `warrant` binary, so that the serve-child servers allocate as `warrant serve` does
/// (and the floor and the load generator use it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WARMUP: Duration = Duration::from_secs(1);
const TOKEN_PATH: &str = "/t/default/token";
/// How long a new account may take to reach every replica (LISTEN/NOTIFY) before the load.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(10);

const USAGE: &str = "usage: warrant-bench \
                     [--scenario floor|stores|audit|algorithms|hsm|client-auth|gateway|all] \
                     [--duration SECS] [--warrant PATH] [--connections N,N,...] \
                     [--rate REQ_PER_S (gateway's open loop)]";

const FLOOR_CONNECTIONS: &[usize] = &[1, 16, 64];
const STORES_CONNECTIONS: &[usize] = &[16, 64];
const AUDIT_CONNECTIONS: &[usize] = &[16, 64];
const ALGORITHMS_CONNECTIONS: &[usize] = &[16, 64];

/// The stores scenario's rows: (name, replicas, on PostgreSQL).
const STORES: &[(&str, usize, bool)] =
    &[("sqlite-1", 1, false), ("pg-1", 1, true), ("pg-2", 2, true)];

/// The audit scenario's rows.
const AUDIT_ON: &str = "audit-on";
const NO_AUDIT: &str = "no-audit";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Floor,
    Stores,
    Audit,
    Algorithms,
    /// Only the HSM rows of `algorithms`.
    Hsm,
    ClientAuth,
    Gateway,
    All,
}

struct Options {
    scenario: Scenario,
    duration: Duration,
    warrant: PathBuf,
    /// `--connections`; None: each scenario's default.
    connections: Option<Vec<usize>>,
    /// `--rate`: the gateway scenario's offered load below saturation, requests per second;
    /// None: its default.
    rate: Option<u32>,
}

impl Options {
    fn connections(&self, default: &[usize]) -> Vec<usize> {
        self.connections.clone().unwrap_or_else(|| default.to_vec())
    }
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
    match args.first().map(String::as_str) {
        Some("floor") => return floor::serve_child(),
        Some("upstream") => return upstream::serve_child(),
        Some("serve-child") => return serve_child::run(&args[1..]),
        _ => {}
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
        scenario: Scenario::Floor,
        duration: Duration::from_secs(10),
        warrant: default_warrant_path(),
        connections: None,
        rate: None,
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
            "--scenario" => {
                options.scenario = match value.as_str() {
                    "floor" => Scenario::Floor,
                    "stores" => Scenario::Stores,
                    "audit" => Scenario::Audit,
                    "algorithms" => Scenario::Algorithms,
                    "hsm" => Scenario::Hsm,
                    "client-auth" => Scenario::ClientAuth,
                    "gateway" => Scenario::Gateway,
                    "all" => Scenario::All,
                    other => {
                        bail!(
                            "--scenario: floor, stores, audit, algorithms, hsm, client-auth, \
                             gateway or all, not {other:?}"
                        )
                    }
                }
            }
            "--duration" => {
                let secs: u64 = value.parse().context("--duration: whole seconds")?;
                if secs == 0 {
                    bail!("--duration must be at least 1");
                }
                options.duration = Duration::from_secs(secs);
            }
            "--warrant" => options.warrant = PathBuf::from(value),
            "--rate" => {
                let rate: u32 = value.parse().context("--rate: whole requests per second")?;
                if rate == 0 {
                    bail!("--rate must be at least 1");
                }
                options.rate = Some(rate);
            }
            "--connections" => {
                let counts: Vec<usize> = value
                    .split(',')
                    .map(|n| n.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--connections: comma-separated counts, e.g. 1,16,64")?;
                if counts.contains(&0) || counts.is_empty() {
                    bail!("--connections: counts must be at least 1");
                }
                options.connections = Some(counts);
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
    if !options.warrant.exists() {
        bail!(
            "no warrant binary at {} (build it: cargo build --release -p warrant-cli, or pass --warrant PATH)",
            options.warrant.display()
        );
    }
    match options.scenario {
        Scenario::Floor => floor_scenario(&options).await,
        Scenario::Stores => stores_scenario(&options, cpus).await,
        Scenario::Audit => audit_scenario(&options).await,
        Scenario::Algorithms => algorithms_scenario(&options).await,
        Scenario::Hsm => hsm_scenario(&options).await,
        Scenario::ClientAuth => client_auth::run(&options).await,
        Scenario::Gateway => gateway::run(&options).await,
        Scenario::All => {
            println!("\n== scenario floor");
            floor_scenario(&options).await?;
            println!("\n== scenario stores");
            stores_scenario(&options, cpus).await?;
            println!("\n== scenario audit");
            audit_scenario(&options).await?;
            println!("\n== scenario algorithms");
            algorithms_scenario(&options).await
        }
    }
}

fn print_plan(options: &Options, connections: &[usize]) {
    println!(
        "duration: {} s measured per run, after {} s warm-up; connections: {connections:?}",
        options.duration.as_secs(),
        WARMUP.as_secs(),
    );
}

/// The floor, then Warrant on SQLite, each alone on the machine; Warrant against its goals.
async fn floor_scenario(options: &Options) -> Result<()> {
    let connections = options.connections(FLOOR_CONNECTIONS);
    print_plan(options, &connections);
    let mut rows = Vec::new();

    let floor = floor::spawn().await?;
    eprintln!("floor listening on {} (pid {})", floor.addr, floor.pid);
    let target = Target::new(&[floor.addr], TOKEN_PATH, "Basic Zmxvb3I6Zmxvb3I=")?;
    let result = measure_all(
        "floor",
        &[floor.pid],
        target,
        &connections,
        options.duration,
        &mut rows,
    )
    .await;
    floor.stop().await;
    result?;

    measure_warrant("warrant", 1, false, options, &connections, &mut rows).await?;

    println!();
    report::print_table(&rows);
    report::print_summary(&rows, &connections);
    Ok(())
}

/// Warrant on SQLite, on PostgreSQL, and as two replicas on PostgreSQL, one after the other.
async fn stores_scenario(options: &Options, cpus: usize) -> Result<()> {
    let connections = options.connections(STORES_CONNECTIONS);
    print_plan(options, &connections);
    postgres::check_reachable().await?;
    let mut rows = Vec::new();
    for &(name, replicas, on_postgres) in STORES {
        measure_warrant(
            name,
            replicas,
            on_postgres,
            options,
            &connections,
            &mut rows,
        )
        .await?;
    }

    println!();
    report::print_table(&rows);
    let others: Vec<&str> = STORES[1..].iter().map(|&(name, ..)| name).collect();
    report::print_store_ratios(&rows, &connections, STORES[0].0, &others, cpus);
    Ok(())
}

/// Starts `replicas` × `warrant serve` in a fresh temp directory (on a fresh PostgreSQL
/// database if `on_postgres`, else on SQLite), creates the service account, runs every
/// connection count against all replicas, then stops them and drops the database.
async fn measure_warrant(
    name: &'static str,
    replicas: usize,
    on_postgres: bool,
    options: &Options,
    connections: &[usize],
    rows: &mut Vec<Row>,
) -> Result<()> {
    let tmp = warrant::TempDir::new()?;
    let database = if on_postgres {
        Some(postgres::Database::create().await?)
    } else {
        None
    };
    let result = async {
        let master_key;
        let pg = match &database {
            Some(db) => {
                master_key = warrant::new_master_key()?;
                Some(warrant::Postgres {
                    url: &db.url,
                    master_key: &master_key,
                })
            }
            None => None,
        };
        let cluster = warrant::start(&options.warrant, &tmp, replicas, pg.as_ref()).await?;
        for (i, server) in cluster.servers.iter().enumerate() {
            let mut about = format!("pid {}, dir {}", server.pid, tmp.0.display());
            if replicas > 1 {
                about.push_str(&format!(", replica {}/{replicas}", i + 1));
            }
            if let Some(db) = &database {
                about.push_str(&format!(", database {}", db.name));
            }
            eprintln!("{name}: warrant listening on {} ({about})", server.addr);
        }
        measure_cluster(name, cluster, options, connections, rows).await
    }
    .await;
    // After the replicas are gone; dropped even if the run failed.
    if let Some(db) = database {
        let dropped = db.drop_now().await;
        match (&result, dropped) {
            (Ok(()), Err(e)) => return Err(e),
            (Err(_), Err(e)) => eprintln!("warning: {e:#}"),
            (_, Ok(())) => {}
        }
    }
    drop(tmp);
    result
}

/// Creates the service account on a started cluster, runs every connection count against all
/// its servers, then stops them (whether or not the run succeeded).
async fn measure_cluster(
    name: &'static str,
    cluster: Cluster,
    options: &Options,
    connections: &[usize],
    rows: &mut Vec<Row>,
) -> Result<()> {
    let measured = async {
        let account = warrant::create_account(
            &options.warrant,
            &cluster.credentials,
            cluster.servers[0].addr,
            "default",
        )
        .await?;
        let target = Target::new(&cluster.addrs(), TOKEN_PATH, &account.basic_authorization())?;
        measure_all(
            name,
            &cluster.pids(),
            target,
            connections,
            options.duration,
            rows,
        )
        .await
    }
    .await;
    cluster.stop().await;
    measured
}

/// Issue 4's figures: the cost of one audit commit per store, issuance with the audit log on
/// and off, and revocation propagation.
async fn audit_scenario(options: &Options) -> Result<()> {
    let connections = options.connections(AUDIT_CONNECTIONS);

    println!("\n-- one durable audit commit (Store::append_audit, sequential, fresh store)");
    let mut commits = Vec::new();
    {
        let tmp = warrant::TempDir::new()?;
        let store = warrant_store_sqlite::SqliteStore::open(&tmp.0.join("commit.db")).await?;
        warrant_core::Store::migrate(&store).await?;
        let measured = commit::measure("sqlite", &store).await;
        store.close().await;
        commits.extend(measured?);
    }
    match postgres::check_reachable().await {
        Ok(()) => {
            let db = postgres::Database::create().await?;
            let measured = async {
                let store = warrant_store_postgres::PostgresStore::connect(&db.url).await?;
                warrant_core::Store::migrate(&store).await?;
                let rows = commit::measure("postgres", &store).await;
                store.close().await;
                rows
            }
            .await;
            let dropped = db.drop_now().await;
            commits.extend(measured?);
            dropped?;
        }
        Err(e) => eprintln!("audit: PostgreSQL commit latency skipped: {e:#}"),
    }
    commit::print_table(&commits);

    println!(
        "\n-- issuance on SQLite, durable audit log vs none (both: warrant-bench serve-child)"
    );
    print_plan(options, &connections);
    let mut rows = Vec::new();
    for (name, audit) in [(NO_AUDIT, false), (AUDIT_ON, true)] {
        let tmp = warrant::TempDir::new()?;
        let cluster = serve_child::start(&tmp, audit).await?;
        eprintln!(
            "{name}: serve-child listening on {} (pid {}, dir {})",
            cluster.servers[0].addr,
            cluster.servers[0].pid,
            tmp.0.display()
        );
        measure_cluster(name, cluster, options, &connections, &mut rows).await?;
    }
    println!();
    report::print_table(&rows);
    report::print_audit_summary(&rows, &connections, AUDIT_ON, NO_AUDIT);

    println!(
        "\n-- revocation propagation: admin POST -> revocation stream event ({} revocations, \
         one at a time, warrant serve on SQLite)",
        revocation::REVOCATIONS
    );
    let propagation = revocation::measure(&options.warrant).await?;
    revocation::print(&propagation);
    Ok(())
}

/// Issue 5's figures: raw signing speed per algorithm, then issuance per algorithm through one
/// serve-child (audit log on) with a tenant per algorithm, each against ES256.
async fn algorithms_scenario(options: &Options) -> Result<()> {
    let connections = options.connections(ALGORITHMS_CONNECTIONS);

    println!(
        "\n-- raw signing per algorithm (warrant_jose::SigningKey::sign, in-process, one thread)"
    );
    let signing = algorithms::measure_signing().await?;
    algorithms::print_signing(&signing);

    println!(
        "\n-- issuance per algorithm: one warrant-bench serve-child (SQLite, audit log on), a \
         tenant per algorithm, one after the other"
    );
    print_plan(options, &connections);
    let tmp = warrant::TempDir::new()?;
    let cluster = serve_child::start(&tmp, true).await?;
    let server = &cluster.servers[0];
    eprintln!(
        "algorithms: serve-child listening on {} (pid {}, dir {})",
        server.addr,
        server.pid,
        tmp.0.display()
    );
    let mut rows = Vec::new();
    let measured = async {
        let (addr, pids) = (server.addr, cluster.pids());
        let mut targets = Vec::new();
        for (tenant, alg) in algorithms::TENANTS {
            algorithms::create_tenant(&options.warrant, &cluster.credentials, addr, tenant, alg)
                .await?;
            let account =
                warrant::create_account(&options.warrant, &cluster.credentials, addr, tenant)
                    .await?;
            let path = format!("/t/{tenant}/token");
            targets.push((
                alg,
                Target::new(&[addr], &path, &account.basic_authorization())?,
            ));
        }
        for (alg, target) in targets {
            measure_all(
                alg.as_str(),
                &pids,
                target,
                &connections,
                options.duration,
                &mut rows,
            )
            .await?;
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    cluster.stop().await;
    drop(tmp);
    measured?;

    println!();
    report::print_table(&rows);
    algorithms::print_summary(&rows, &signing, &connections);
    hsm_scenario(options).await
}

/// Software key vs HSM key (SoftHSM2) for the same algorithm, both tenants on one real
/// `warrant serve` process with `[hsm.modules.main]` configured (see hsm.rs). Skipped, with a
/// line saying why, when SoftHSM2 is not installed.
async fn hsm_scenario(options: &Options) -> Result<()> {
    let connections = options.connections(ALGORITHMS_CONNECTIONS);
    println!(
        "\n-- software key vs HSM key (SoftHSM2): one real warrant serve (SQLite, audit log on), \
         a software tenant and an HSM tenant per algorithm, one after the other"
    );
    let library = match hsm::module() {
        Ok(library) => library,
        Err(why) => {
            println!("HSM rows skipped: {why}");
            return Ok(());
        }
    };
    println!("module: {}", library.display());
    print_plan(options, &connections);
    let tmp = warrant::TempDir::new()?;
    let cluster = hsm::start(&options.warrant, &tmp, &library).await?;
    let server = &cluster.servers[0];
    eprintln!(
        "hsm: warrant serve listening on {} (pid {}, dir {})",
        server.addr,
        server.pid,
        tmp.0.display()
    );
    let log = tmp.0.join("warrant-0.log");
    let mut rows = Vec::new();
    let measured = async {
        let (addr, pids) = (server.addr, cluster.pids());
        let admin = hsm::admin_token(addr, &cluster.credentials).await?;
        let mut targets = Vec::new();
        for (sw_row, hsm_row, alg, sw_tenant, hsm_tenant) in hsm::ALGS {
            for (row, tenant, in_hsm) in [(sw_row, sw_tenant, false), (hsm_row, hsm_tenant, true)] {
                algorithms::create_tenant(
                    &options.warrant,
                    &cluster.credentials,
                    addr,
                    tenant,
                    alg,
                )
                .await?;
                if in_hsm {
                    hsm::switch_to_hsm(addr, &admin, tenant, &log).await?;
                }
                let account =
                    warrant::create_account(&options.warrant, &cluster.credentials, addr, tenant)
                        .await?;
                let path = format!("/t/{tenant}/token");
                targets.push((
                    row,
                    Target::new(&[addr], &path, &account.basic_authorization())?,
                ));
            }
        }
        for (row, target) in targets {
            measure_all(
                row,
                &pids,
                target,
                &connections,
                options.duration,
                &mut rows,
            )
            .await?;
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    cluster.stop().await;
    drop(tmp);
    measured?;

    println!();
    report::print_table(&rows);
    hsm::print_summary(&rows, &connections);
    Ok(())
}

/// Checks one token request works on every address (waiting for a new account to reach every
/// replica), then runs every connection count against `target`, measuring the servers `pids`.
async fn measure_all(
    name: &'static str,
    pids: &[u32],
    target: Target,
    connections: &[usize],
    duration: Duration,
    rows: &mut Vec<Row>,
) -> Result<()> {
    for (i, addr) in target.addrs.iter().enumerate() {
        let deadline = tokio::time::Instant::now() + PROPAGATION_TIMEOUT;
        loop {
            let (status, body) = load::probe(&target, i)
                .await
                .with_context(|| format!("first token request to {name} on {addr}"))?;
            if status == hyper::StatusCode::OK {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "first token request to {name} on {addr}: {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let target = Arc::new(target);
    for &n in connections {
        eprintln!("{name}: {n} connections ...");
        rows.push(measure(name, pids, &target, n, None, duration).await?);
    }
    Ok(())
}

/// One run of `source`'s requests on `connections` connections (back to back, or paced):
/// warm-up, then the measured window, with the servers' CPU read at both ends (summed over
/// `pids`) and their peak RSS after (the largest of them).
async fn measure<S: RequestSource>(
    name: &'static str,
    pids: &[u32],
    source: &Arc<S>,
    connections: usize,
    pacing: Option<Pacing>,
    duration: Duration,
) -> Result<Row> {
    for &pid in pids {
        process::reset_peak_rss(pid);
    }
    let cpu = || -> Result<f64> {
        pids.iter()
            .map(|&pid| process::cpu_seconds(pid))
            .sum::<Result<f64>>()
    };
    let schedule = Schedule::starting_now(WARMUP, duration);
    let load = tokio::spawn(load::run(source.clone(), connections, schedule, pacing));
    tokio::time::sleep_until(schedule.measure_start).await;
    let cpu_before = cpu()?;
    tokio::time::sleep_until(schedule.end).await;
    let cpu_after = cpu()?;
    let result = load.await.context("load generator failed")??;
    let mut rss = 0.0_f64;
    for &pid in pids {
        rss = rss.max(process::peak_rss_mib(pid)?);
    }
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
