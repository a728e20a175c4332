//! What a request runs against: the configuration, the route table, the verifier and the
//! pooled upstream client, built once per (re)load and swapped whole. A request reads the
//! current [`Runtime`] once (a read lock and an `Arc` clone) and keeps it to the end, so a
//! reload never changes the rules under a request in flight, and never closes a connection.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use warrant_verify::{HttpOptions, Verifier, VerifierConfig};

use crate::access_log::AccessLog;
use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::routes::RouteTable;

/// The pooled HTTP/1.1 client to the upstreams; request bodies stream through as they arrive.
pub(crate) type UpstreamClient = Client<HttpConnector, Incoming>;

/// How long an idle upstream connection is kept in the pool.
const POOL_IDLE: Duration = Duration::from_secs(90);

pub(crate) struct Runtime {
    pub(crate) config: GatewayConfig,
    pub(crate) routes: RouteTable,
    /// `None` when no issuer is configured (then no route verifies).
    pub(crate) verifier: Option<Verifier>,
    pub(crate) client: UpstreamClient,
}

impl Runtime {
    pub(crate) fn new(
        config: GatewayConfig,
        verifier: Option<Verifier>,
        client: UpstreamClient,
    ) -> Self {
        Self {
            routes: RouteTable::new(&config),
            config,
            verifier,
            client,
        }
    }

    /// Whether the verifier (if any) has every issuer's keys and a fresh feed.
    pub(crate) fn is_ready(&self) -> bool {
        self.verifier.as_ref().is_none_or(Verifier::is_ready)
    }
}

/// A verifier for the configured issuers; `None` without issuers. Its background tasks start
/// at once; tokens of an issuer get `503` until its keys and first snapshot arrive.
pub(crate) fn start_verifier(
    config: &GatewayConfig,
) -> Result<Option<Verifier>, warrant_verify::ConfigError> {
    if config.issuers.is_empty() {
        return Ok(None);
    }
    let mut vc = VerifierConfig::new(config.issuers.clone());
    vc.leeway_secs = i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX);
    vc.stale_feed_limit = config.stale_feed_limit;
    vc.http = HttpOptions {
        ca_pem: config.ca_file.as_ref().map(|(_, pem)| pem.clone()),
        timeout: None,
    };
    Verifier::start(vc).map(Some)
}

/// The upstream client: `connect_timeout` on the connector, `TCP_NODELAY`, plain HTTP only.
pub(crate) fn upstream_client(connect_timeout: Duration) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE)
        .build(http)
}

/// What the listeners share, for the gateway's lifetime.
pub(crate) struct Shared {
    runtime: RwLock<Arc<Runtime>>,
    pub(crate) metrics: Metrics,
    pub(crate) log: AccessLog,
}

impl Shared {
    pub(crate) fn new(runtime: Runtime, log: AccessLog) -> Self {
        Self {
            runtime: RwLock::new(Arc::new(runtime)),
            metrics: Metrics::default(),
            log,
        }
    }

    /// The current runtime.
    pub(crate) fn runtime(&self) -> Arc<Runtime> {
        match self.runtime.read() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the runtime; requests in flight finish on the old one.
    pub(crate) fn swap(&self, runtime: Runtime) {
        let runtime = Arc::new(runtime);
        match self.runtime.write() {
            Ok(mut r) => *r = runtime,
            Err(p) => *p.into_inner() = runtime,
        }
    }
}
