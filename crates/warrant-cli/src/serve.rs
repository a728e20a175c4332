//! `warrant serve`: configuration, the data directory (lock, master key, credentials file),
//! bootstrap, the listeners, and graceful shutdown.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use warrant_core::{ChangeFeed, CoreConfig, MasterKey, Store, SystemClock, TenantName, Warrant};
use warrant_proto::admin::CredentialsFile;
use warrant_server::tls::{ClientCa, TlsServer};
use warrant_server::{AppState, Limits, TrustedProxies};
use warrant_store_postgres::PostgresStore;
use warrant_store_sqlite::SqliteStore;
use zeroize::Zeroizing;

use crate::config::{self, Flags, ServeConfig};

/// Flags of `warrant serve`. Every key can also be set as `WARRANT_<KEY>` or in the `--config`
/// TOML file (flags win over variables, variables over the file).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "WARRANT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<String>,
    /// Public base URL; issuers are {public_url}/t/{tenant} [default: http://{listen}].
    #[arg(long)]
    pub public_url: Option<String>,
    /// Where state lives [default: ./warrant-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Database URL [default: sqlite://{data_dir}/warrant.db].
    #[arg(long)]
    pub database_url: Option<String>,
    /// Serve the admin API on this address instead of the main listener.
    #[arg(long)]
    pub admin_listen: Option<String>,
    /// Upper bound on token lifetimes, e.g. 1h [default: 1h].
    #[arg(long)]
    pub max_token_lifetime: Option<String>,
    /// JWKS Cache-Control max-age, e.g. 5m [default: 5m].
    #[arg(long)]
    pub jwks_max_age: Option<String>,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging();
    let cfg = config::load(
        args.config.as_deref(),
        Flags {
            listen: args.listen,
            public_url: args.public_url,
            data_dir: args.data_dir,
            database_url: args.database_url,
            admin_listen: args.admin_listen,
            max_token_lifetime: args.max_token_lifetime,
            jwks_max_age: args.jwks_max_age,
        },
        std::env::vars(),
    )?;
    for var in &cfg.ignored_vars {
        tracing::warn!(
            var,
            "ignoring an environment variable that names no configuration key"
        );
    }
    for key in &cfg.inert_keys {
        tracing::warn!(
            key,
            "configuration section is accepted but has no effect in this version"
        );
    }
    let hsm_modules = crate::hsm::open_configured(&cfg.hsm).await?;
    // Built at start-up so that a bad `outbound.ca_file` stops the server here, not at the
    // first `jwks_uri` fetch.
    let jwks_fetcher = warrant_server::outbound::HttpJwksFetcher::new(cfg.outbound.policy()?)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    serve(cfg, crate::hsm::ports(hsm_modules), jwks_fetcher).await
}

pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARRANT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The data directory, created 0700, and (with SQLite) an exclusive lock on it held while
/// serving. With PostgreSQL it only receives the admin credentials file: replicas share the
/// database, not a directory, so there is nothing to lock.
pub(crate) struct DataDir {
    pub(crate) path: PathBuf,
    _lock: Option<File>,
}

impl DataDir {
    pub(crate) fn open(path: &Path, exclusive: bool) -> anyhow::Result<Self> {
        if !path.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .with_context(|| format!("creating the data directory {}", path.display()))?;
        }
        if !path.join("warrant.db").exists() {
            // First start: whoever made the directory, only we may read it from now on.
            fs::set_permissions(path, fs::Permissions::from_mode(0o700))
                .with_context(|| format!("restricting {} to mode 0700", path.display()))?;
        }
        if !exclusive {
            return Ok(Self {
                path: path.to_owned(),
                _lock: None,
            });
        }
        let lock_path = path.join("warrant.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "another `warrant serve` is already using the data directory {} (it holds {}); \
                 stop it first or choose another --data-dir",
                path.display(),
                lock_path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", lock_path.display()));
            }
        }
        Ok(Self {
            path: path.to_owned(),
            _lock: Some(lock),
        })
    }

    /// The master key: `WARRANT_MASTER_KEY` or `master.key` (created 0600 on first start).
    /// Refuses to start if both exist and differ.
    /// With PostgreSQL the key must come from `WARRANT_MASTER_KEY`, so that every replica
    /// shares it and none invents its own.
    pub(crate) fn master_key(&self, shared_database: bool) -> anyhow::Result<MasterKey> {
        let file = self.path.join("master.key");
        let from_env = master_key_from_env();
        let from_file = read_master_key_file(&file)?;
        let text = match (from_env, from_file) {
            (Some(env), Some(f)) if env.trim() != f.trim() => bail!(
                "WARRANT_MASTER_KEY differs from {}: refusing to start (remove one of them)",
                file.display()
            ),
            (Some(env), _) => env,
            (None, Some(f)) => f,
            (None, _) if shared_database => bail!(
                "with PostgreSQL, WARRANT_MASTER_KEY must be set (the same on every replica); \
                 generate one with: head -c 32 /dev/urandom | basenc --base64url | tr -d '='"
            ),
            (None, None) => {
                let (_, text) = MasterKey::generate()?;
                write_private(&file, text.as_bytes(), true)?;
                tracing::info!(path = %file.display(), "created the master key; back it up apart from the database");
                text
            }
        };
        Ok(MasterKey::parse(&text)?)
    }
}

/// `WARRANT_MASTER_KEY`, unless unset or blank.
pub(crate) fn master_key_from_env() -> Option<Zeroizing<String>> {
    std::env::var("WARRANT_MASTER_KEY")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(Zeroizing::new)
}

/// The text of a `master.key` file, `None` if it does not exist.
pub(crate) fn read_master_key_file(file: &Path) -> anyhow::Result<Option<Zeroizing<String>>> {
    match fs::read_to_string(file) {
        Ok(t) => Ok(Some(Zeroizing::new(t))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
    }
}

/// Writes a file readable by the owner only.
pub(crate) fn write_private(path: &Path, contents: &[u8], create_new: bool) -> anyhow::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .create_new(create_new)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}

/// The store chosen by `database_url`'s scheme.
pub(crate) enum Db {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Db {
    pub(crate) fn is_shared(cfg: &ServeConfig) -> anyhow::Result<bool> {
        match cfg.database_url.as_deref() {
            None => Ok(false),
            Some(url) if url.starts_with("sqlite:") => Ok(false),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(true)
            }
            Some(_) => bail!("database_url must be a sqlite: or postgres:// URL"),
        }
    }

    pub(crate) async fn open(cfg: &ServeConfig, dir: &DataDir) -> anyhow::Result<Self> {
        // Errors name the store, never the URL (it may hold a password).
        Ok(match cfg.database_url.as_deref() {
            None => Db::Sqlite(SqliteStore::open(&dir.path.join("warrant.db")).await?),
            Some(url) if url.starts_with("sqlite:") => {
                Db::Sqlite(SqliteStore::open_url(url).await?)
            }
            Some(url) => Db::Postgres(
                PostgresStore::connect(url)
                    .await
                    .context("connecting to PostgreSQL (database_url)")?,
            ),
        })
    }

    pub(crate) fn store(&self) -> Arc<dyn Store> {
        match self {
            Db::Sqlite(s) => Arc::new(s.clone()),
            Db::Postgres(s) => Arc::new(s.clone()),
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Db::Sqlite(s) => s.close().await,
            Db::Postgres(s) => s.close().await,
        }
    }
}

async fn serve(
    cfg: ServeConfig,
    hsm: Option<Arc<dyn warrant_core::hsm::HsmKeys>>,
    jwks_fetcher: warrant_server::outbound::HttpJwksFetcher,
) -> anyhow::Result<()> {
    let shared = Db::is_shared(&cfg)?;
    let dir = DataDir::open(&cfg.data_dir, !shared)?;
    let master = dir.master_key(shared)?;
    let db = Db::open(&cfg, &dir).await?;
    let store = db.store();
    // Subscribe before loading, so that no change made meanwhile by another replica is missed.
    let feed = store
        .subscribe()
        .await
        .context("subscribing to replica changes")?;
    let core = CoreConfig {
        public_url: cfg.public_url.clone(),
        max_token_lifetime: cfg.max_token_lifetime,
        jwks_max_age: cfg.jwks_max_age,
        audit: cfg.audit.clone(),
    };
    let (warrant, outcome) = Warrant::open_with_hsm(
        store.clone(),
        Arc::new(SystemClock),
        master,
        core.clone(),
        hsm,
    )
    .await
    .context("opening the store")?;
    let warrant = Arc::new(warrant);
    // private_key_jwt keys registered by `jwks_uri`: cached 5 minutes, an unknown `kid`
    // re-fetched at most every 30 s per URL (docs/client-authentication.md).
    warrant.fetch_client_keys_with(
        Arc::new(jwks_fetcher),
        warrant_core::client_auth::jwks_cache::DEFAULT_TTL_SECS,
        warrant_core::client_auth::jwks_cache::DEFAULT_MIN_REFETCH_SECS,
    );
    let creds_path = dir.path.join("admin-credentials.json");
    if let Some((id, secret)) = &outcome.admin_credentials {
        let creds = CredentialsFile {
            url: cfg.public_url.clone(),
            issuer: core.issuer(&TenantName::system()),
            client_id: id.to_string(),
            client_secret: secret.expose().to_owned(),
        };
        write_private(&creds_path, &serde_json::to_vec_pretty(&creds)?, false)?;
        tracing::info!(path = %creds_path.display(), "wrote new admin credentials to this file (first start, or an admin left without a secret)");
    }

    let rl = &cfg.rate_limit;
    let mut limits = Limits::new(
        rl.per_address_per_second,
        rl.per_address_burst,
        rl.failed_auth_per_client_per_minute,
        rl.failed_auth_burst,
    );
    limits.feed_streams_per_account = rl.feed_streams_per_account as usize;
    let proxies = TrustedProxies::parse(&cfg.trusted_proxies).map_err(anyhow::Error::msg)?;
    let mut state = AppState::new(warrant.clone(), limits, proxies);
    state.dpop_require_nonce = cfg.dpop_require_nonce;
    let client_ca = match &cfg.tls_client_ca {
        Some(path) => Some(load_client_ca(path)?),
        None => None,
    };
    if let Some(ca) = &client_ca {
        state = state.with_client_ca(ca.clone());
    }
    let tls = match &cfg.tls {
        Some(tls) => Some(load_tls(tls, client_ca)?),
        None => None,
    };
    state.serves_tls = tls.is_some();
    state.forwarded_client_certs = cfg.tls_forwarded_client_cert;

    let main_app = match cfg.admin_listen {
        Some(_) => warrant_server::protocol_app(state.clone()),
        None => warrant_server::app(state.clone()),
    };
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let local = listener.local_addr()?;
    let admin_listener = match cfg.admin_listen {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("binding {a}"))?,
        ),
        None => None,
    };
    for tenant in ["system", "default"] {
        tracing::info!(issuer = %format!("{}/t/{tenant}", cfg.public_url), "issuer");
    }
    tracing::info!(
        listen = %local,
        public_url = %cfg.public_url,
        admin_listen = ?admin_listener.as_ref().and_then(|l| l.local_addr().ok()),
        tls = tls.is_some(),
        admin_credentials = %creds_path.display(),
        "warrant is serving"
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let flusher = tokio::spawn(housekeeping(warrant.clone(), stop_rx.clone()));
    if let Some(feed) = feed {
        tokio::spawn(follow_changes(warrant.clone(), feed, stop_rx.clone()));
    }
    let shutdown = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let main = warrant_server::serve_with_tls(
        listener,
        main_app,
        Some(state.clone()),
        tls.clone(),
        shutdown(stop_rx.clone()),
    );
    let admin = async {
        if let Some(l) = admin_listener {
            warrant_server::serve_with_tls(
                l,
                warrant_server::admin_app(state.clone()),
                None,
                tls.clone(),
                shutdown(stop_rx.clone()),
            )
            .await
        } else {
            Ok(())
        }
    };
    let signals = async {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing requests in flight");
        let _ = stop_tx.send(true);
    };
    let (served, admin_served, ()) = tokio::join!(main, admin, signals);
    served?;
    admin_served?;
    let _ = flusher.await;
    if let Err(e) = warrant.flush_last_used().await {
        tracing::warn!(error = %e, "could not record last-used times at shutdown");
    }
    // Count aggregated refusals and sign every audit segment's head before the store closes.
    if let Err(e) = warrant.audit().checkpoint_now().await {
        tracing::warn!(error = %e, "could not write the final audit checkpoint");
    }
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `tls.client_ca` (docs/tls.md): for the handshake's certificates and for those forwarded by
/// trusted proxies.
fn load_client_ca(path: &Path) -> anyhow::Result<Arc<ClientCa>> {
    let pem =
        fs::read(path).with_context(|| format!("tls.client_ca: reading {}", path.display()))?;
    let ca =
        ClientCa::from_pem(&pem).with_context(|| format!("tls.client_ca: {}", path.display()))?;
    Ok(Arc::new(ca))
}

/// `tls.cert` and `tls.key` (docs/tls.md): HTTPS for both listeners.
fn load_tls(
    cfg: &config::TlsConfig,
    client_ca: Option<Arc<ClientCa>>,
) -> anyhow::Result<Arc<TlsServer>> {
    let cert =
        fs::read(&cfg.cert).with_context(|| format!("tls.cert: reading {}", cfg.cert.display()))?;
    let key = Zeroizing::new(
        fs::read(&cfg.key).with_context(|| format!("tls.key: reading {}", cfg.key.display()))?,
    );
    let server =
        TlsServer::from_pem(&cert, &key, client_ca, Arc::new(SystemClock)).with_context(|| {
            format!(
                "tls.cert {} / tls.key {}",
                cfg.cert.display(),
                cfg.key.display()
            )
        })?;
    Ok(Arc::new(server))
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Once a minute: writes secrets' last-used times (authentication itself never writes),
/// prunes revocations that no live token can match any more and expired single-use ids
/// (assertion and DPoP `jti`s), and rotates the signing keys of
/// tenants whose rotation period says so (docs/key-rotation.md).
async fn housekeeping(warrant: Arc<Warrant>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = warrant.flush_last_used().await {
                    tracing::warn!(error = %e, "could not record last-used times");
                }
                match warrant.prune_revocations().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(pruned = n, "pruned revocations no live token can match"),
                    Err(e) => tracing::warn!(error = %e, "could not prune revocations"),
                }
                if let Err(e) = warrant.rotate_due_keys().await {
                    tracing::warn!(error = %e, "could not run scheduled key rotation");
                }
                if let Err(e) = warrant.prune_used_jtis().await {
                    tracing::warn!(error = %e, "could not prune used assertion and DPoP ids");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Applies other replicas' changes to this replica's in-memory views as they are announced
/// (PostgreSQL LISTEN/NOTIFY: typically within milliseconds). If the feed breaks, changes may
/// have been missed: resubscribe, then reload everything.
async fn follow_changes(
    warrant: Arc<Warrant>,
    mut feed: Box<dyn ChangeFeed>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let next = tokio::select! {
            next = feed.next() => next,
            _ = stop.changed() => return,
        };
        match next {
            Ok(change) => {
                if let Err(e) = warrant.apply(&change).await {
                    tracing::warn!(error = %e, change = %change.encode(), "could not apply a change; reloading everything");
                    reload_until_done(&warrant, &mut stop).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the replica change feed broke; resubscribing and reloading");
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => return,
                    }
                    match warrant.store().subscribe().await {
                        Ok(Some(f)) => {
                            feed = f;
                            break;
                        }
                        Ok(None) => return,
                        Err(e) => tracing::warn!(error = %e, "resubscribing failed; retrying"),
                    }
                }
                reload_until_done(&warrant, &mut stop).await;
            }
        }
    }
}

async fn reload_until_done(warrant: &Warrant, stop: &mut tokio::sync::watch::Receiver<bool>) {
    while let Err(e) = warrant.reload_all().await {
        tracing::warn!(error = %e, "reloading from the store failed; retrying");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}
