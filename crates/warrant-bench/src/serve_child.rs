//! `warrant-bench serve-child`: Warrant's server built in this process the way `warrant serve`
//! builds it on SQLite (crates/warrant-cli/src/serve.rs), with the audit log on or off.
//!
//! Why a child of this binary rather than `warrant serve`: the no-audit build exists for the
//! benchmark only (`Warrant::discard_audit_for_benchmark`, reachable from no configuration), so
//! it cannot be a `warrant serve` flag. To compare like with like, *both* sides of the audit
//! comparison run here — same binary, same allocator (mimalloc, as in `warrant`), same
//! start-up — and differ in that one call only.
//!
//! What differs from `warrant serve` and why it does not matter here: the master key is made
//! fresh in memory (never written), rate limits are off (the bench's `warrant serve` has them
//! raised to 1,000,000/s), configuration is not read, and there is no graceful shutdown (the
//! parent kills the child, as it kills `warrant serve`). The child exits when its stdin closes.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::net::TcpListener;
use tokio::process::Command;
use warrant_core::{CoreConfig, MasterKey, SystemClock, TenantName, Warrant};
use warrant_proto::admin::CredentialsFile;
use warrant_server::{AppState, Limits, TrustedProxies};
use warrant_store_sqlite::SqliteStore;

use crate::warrant::{Cluster, TempDir};

/// `warrant serve`'s defaults: `max_token_lifetime` 1 h, `jwks_max_age` 5 min.
const MAX_TOKEN_LIFETIME_SECS: u64 = 3600;
const JWKS_MAX_AGE_SECS: u64 = 300;
/// `warrant serve`'s housekeeping period (last-used times, revocation pruning).
const HOUSEKEEPING: Duration = Duration::from_secs(60);

/// Parent side: starts `<this binary> serve-child` in a fresh data directory of `tmp`, on a
/// free port, and waits for it as for `warrant serve` ([`crate::warrant::launch`]).
pub async fn start(tmp: &TempDir, audit: bool) -> Result<Cluster> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    crate::warrant::launch(tmp, 1, |slot| {
        let mut cmd = Command::new(&exe);
        cmd.arg("serve-child")
            .arg("--audit")
            .arg(if audit { "on" } else { "off" })
            .arg("--data-dir")
            .arg(slot.data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", slot.port))
            // Held open by the `Child`: the server exits when it closes.
            .stdin(Stdio::piped());
        cmd
    })
    .await
}

struct Args {
    audit: bool,
    data_dir: PathBuf,
    listen: SocketAddr,
}

fn parse_args(args: &[String]) -> Result<Args> {
    const USAGE: &str =
        "usage: warrant-bench serve-child --audit on|off --data-dir DIR --listen ADDR";
    let (mut audit, mut data_dir, mut listen) = (None, None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--audit" => {
                audit = Some(match value.as_str() {
                    "on" => true,
                    "off" => false,
                    other => bail!("--audit: on or off, not {other:?}"),
                })
            }
            "--data-dir" => data_dir = Some(PathBuf::from(value)),
            "--listen" => listen = Some(value.parse().context("--listen: an IP:port")?),
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    match (audit, data_dir, listen) {
        (Some(audit), Some(data_dir), Some(listen)) => Ok(Args {
            audit,
            data_dir,
            listen,
        }),
        _ => bail!("--audit, --data-dir and --listen are all required\n{USAGE}"),
    }
}

/// Child side (`warrant-bench serve-child …`, the arguments after `serve-child`): serves until
/// stdin closes or it is killed. The runtime is `#[tokio::main]`'s, as in `warrant`.
pub fn run(args: &[String]) -> Result<()> {
    let args = parse_args(args)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the server runtime")?
        .block_on(serve(args))
}

/// `warrant serve`'s logging: JSON on stderr, `WARRANT_LOG` or `info,sqlx=warn`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARRANT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn serve(args: Args) -> Result<()> {
    init_logging();
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let db = SqliteStore::open(&args.data_dir.join("warrant.db"))
        .await
        .context("opening the SQLite store")?;
    let (master, _) = MasterKey::generate()?;
    let core = CoreConfig {
        public_url: format!("http://{}", args.listen),
        max_token_lifetime: MAX_TOKEN_LIFETIME_SECS,
        jwks_max_age: JWKS_MAX_AGE_SECS,
        audit: Default::default(),
    };
    // `Warrant::open` migrates the store and bootstraps the tenants and the admin account.
    let (mut warrant, outcome) = Warrant::open(
        Arc::new(db.clone()),
        Arc::new(SystemClock),
        master,
        core.clone(),
    )
    .await
    .context("opening the store")?;
    if !args.audit {
        warrant.discard_audit_for_benchmark();
    }
    let warrant = Arc::new(warrant);
    if let Some((id, secret)) = &outcome.admin_credentials {
        let creds = CredentialsFile {
            url: core.public_url.clone(),
            issuer: core.issuer(&TenantName::system()),
            client_id: id.to_string(),
            client_secret: secret.expose().to_owned(),
        };
        write_private(
            &args.data_dir.join("admin-credentials.json"),
            &serde_json::to_vec_pretty(&creds)?,
        )?;
    }

    let state = AppState::new(
        warrant.clone(),
        Limits::unlimited(),
        TrustedProxies::default(),
    );
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    crate::process::exit_when_stdin_closes();
    tracing::info!(listen = %args.listen, audit = args.audit, "warrant (bench serve-child) is serving");
    tokio::spawn(housekeeping(warrant));
    warrant_server::serve(
        listener,
        warrant_server::app(state.clone()),
        Some(state),
        std::future::pending::<()>(),
    )
    .await
    .context("serving")
}

/// As `warrant serve` does once a minute: last-used times, then revocation pruning.
async fn housekeeping(warrant: Arc<Warrant>) {
    let mut tick = tokio::time::interval(HOUSEKEEPING);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = warrant.flush_last_used().await {
            tracing::warn!(error = %e, "could not record last-used times");
        }
        if let Err(e) = warrant.prune_revocations().await {
            tracing::warn!(error = %e, "could not prune revocations");
        }
    }
}

/// Writes a new file readable by the owner only (the admin secret, the gateway's feed secret).
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}
