//! `warrant gateway`: a reverse proxy that verifies each request's Warrant access token before
//! forwarding it, so that the services behind it need not (docs/gateway.md).
//!
//! A request is matched to a route (host, longest path prefix), checked by a
//! [`warrant_verify::Verifier`] against the route's audience, scopes and claims (signature,
//! `typ`, time, revocation feed, DPoP or certificate binding), and forwarded over a pooled
//! HTTP/1.1 connection with identity headers set from the token — and any the caller sent
//! removed. Refusals carry RFC 6750 / RFC 9449 challenges naming the route's RFC 9728 metadata,
//! which the gateway also serves. Each request writes one JSON access-log line on stdout and
//! updates Prometheus counters on a separate listener. `SIGHUP` (or
//! [`RunningGateway::reload`]) reloads the configuration without dropping connections.
//!
//! What it is not: a general-purpose proxy. Upstreams are plain HTTP on a trusted network;
//! there is no load balancing, retry, WebSocket upgrade, or HTTP/2.
//!
//! Depends on warrant-verify, warrant-jose and warrant-proto only, not on the server.

mod access_log;
pub mod config;
mod headers;
mod metrics;
mod path;
mod proxy;
mod routes;
mod runtime;
mod server;
mod tls;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use access_log::MemorySink;
pub use config::{ConfigError, GatewayConfig};
pub use routes::METADATA_PATH;

use crate::access_log::AccessLog;
use crate::config::TlsFiles;
use crate::runtime::{Runtime, Shared, start_verifier, upstream_client};

/// How long a reload waits for a new verifier's keys and first revocation snapshot before
/// swapping it in anyway.
pub const RELOAD_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the gateway could not start or reload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(String),
    #[error("the token verifier: {0}")]
    Verifier(#[from] warrant_verify::ConfigError),
    #[error("the access log: {0}")]
    AccessLog(std::io::Error),
}

/// What only a restart changes.
#[derive(Debug, PartialEq)]
struct Bound {
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
    tls: Option<TlsFiles>,
}

impl Bound {
    fn of(c: &GatewayConfig) -> Self {
        Self {
            listen: c.listen,
            metrics_listen: c.metrics_listen,
            tls: c.tls.clone(),
        }
    }
}

/// A started gateway. Dropping it stops the listeners (as [`Self::shutdown`] does, without
/// waiting).
pub struct RunningGateway {
    config_path: PathBuf,
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    bound: Bound,
    shared: Arc<Shared>,
    reloading: tokio::sync::Mutex<()>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningGateway")
            .field("config_path", &self.config_path)
            .field("local_addr", &self.local_addr)
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

/// Loads `config_path` and starts the listeners, with the access log on stdout. Returns once
/// they listen; the verifier fetches keys and the revocation snapshot in the background
/// (tokens get `503` and `/readyz` says 503 until then).
pub async fn start(config_path: PathBuf) -> Result<RunningGateway, GatewayError> {
    start_with_access_log(config_path, Box::new(std::io::stdout())).await
}

/// [`start`], with the access log written to `sink` (a [`MemorySink`] in tests).
pub async fn start_with_access_log(
    config_path: PathBuf,
    sink: Box<dyn Write + Send>,
) -> Result<RunningGateway, GatewayError> {
    let config = GatewayConfig::load(&config_path)?;
    // For other rustls users in the process (the verifier's HTTP client) that look for a
    // process default; our own TLS configuration names its provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let listener = bind(config.listen).await?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let local_addr = local(&listener, config.listen);
    let metrics_addr = metrics_listener
        .as_ref()
        .zip(config.metrics_listen)
        .map(|(l, a)| local(l, a));
    let verifier = start_verifier(&config)?;
    let client = upstream_client(config.connect_timeout);
    let log = AccessLog::spawn(sink).map_err(GatewayError::AccessLog)?;
    let bound = Bound::of(&config);
    let shared = Arc::new(Shared::new(Runtime::new(config, verifier, client), log));
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(server::serve(
        listener,
        tls,
        Arc::new(server::Gateway(shared.clone())),
        stop_rx.clone(),
    ))];
    if let Some(l) = metrics_listener {
        tasks.push(tokio::spawn(server::serve(
            l,
            None,
            Arc::new(server::Operations(shared.clone())),
            stop_rx,
        )));
    }
    tracing::info!(%local_addr, metrics = ?metrics_addr, config = %config_path.display(), "gateway listening");
    Ok(RunningGateway {
        config_path,
        local_addr,
        metrics_addr,
        bound,
        shared,
        reloading: tokio::sync::Mutex::new(()),
        stop,
        tasks,
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Bind { addr, source })
}

fn local(l: &TcpListener, configured: SocketAddr) -> SocketAddr {
    l.local_addr().unwrap_or(configured)
}

impl RunningGateway {
    /// The address the gateway listens on (the real port when the configuration says `:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The metrics listener's address, when `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The configuration file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Whether every issuer has keys and a fresh revocation feed (what `/readyz` says).
    pub fn is_ready(&self) -> bool {
        self.shared.runtime().is_ready()
    }

    /// Waits at most `timeout` for [`Self::is_ready`].
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        match &self.shared.runtime().verifier {
            Some(v) => v.wait_ready(timeout).await,
            None => true,
        }
    }

    /// Re-reads the configuration file. An invalid file is logged and returned as an error,
    /// and the running configuration stays. A valid one replaces routes, identity headers and
    /// settings at once, without closing connections; the verifier (keys, feed, token cache)
    /// is kept when the issuer settings (`issuers`, `leeway`, `stale_feed_limit`, `ca_file`)
    /// are unchanged, otherwise a new one is started and given up to
    /// [`RELOAD_READY_TIMEOUT`] to become ready. `listen`, `metrics_listen` and `[tls]` take
    /// effect only at a restart (a warning says so).
    pub async fn reload(&self) -> Result<(), GatewayError> {
        let _one_at_a_time = self.reloading.lock().await;
        let config = match GatewayConfig::load(&self.config_path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "reload: the configuration is not valid; keeping the running one");
                return Err(e.into());
            }
        };
        if Bound::of(&config) != self.bound {
            tracing::warn!(
                "reload: listen, metrics_listen and [tls] changes take effect only after a restart"
            );
        }
        let old = self.shared.runtime();
        let verifier = if config.verifier_settings() == old.config.verifier_settings() {
            old.verifier.clone()
        } else {
            let v = start_verifier(&config).inspect_err(|e| {
                tracing::error!(error = %e, "reload: the verifier cannot start; keeping the running configuration");
            })?;
            if let Some(v) = &v
                && !v.wait_ready(RELOAD_READY_TIMEOUT).await
            {
                tracing::warn!(
                    "reload: the new issuers are not ready (keys or revocation snapshot); \
                     their tokens get 503 until they are"
                );
            }
            v
        };
        let client = if config.connect_timeout == old.config.connect_timeout {
            old.client.clone()
        } else {
            upstream_client(config.connect_timeout)
        };
        let routes = config.routes.len();
        self.shared.swap(Runtime::new(config, verifier, client));
        tracing::info!(routes, "configuration reloaded");
        Ok(())
    }

    /// Stops accepting connections and lets open ones finish their requests (for at most
    /// 10 s).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// `warrant gateway`: starts, reloads on `SIGHUP`, and shuts down gracefully on `SIGTERM` or
/// `SIGINT`.
pub async fn run(config_path: PathBuf) -> Result<(), GatewayError> {
    use tokio::signal::unix::{SignalKind, signal};
    let gateway = start(config_path).await?;
    let signals = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    match signals {
        (Ok(mut hup), Ok(mut term), Ok(mut int)) => loop {
            tokio::select! {
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    // An invalid file is logged by reload and the running configuration stays.
                    let _ = gateway.reload().await;
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        },
        _ => {
            tracing::warn!("cannot install signal handlers: no SIGHUP reload; Ctrl-C stops");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutting down");
    gateway.shutdown().await;
    Ok(())
}
