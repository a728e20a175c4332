use std::net::IpAddr;
use std::sync::Arc;

use warrant_core::Warrant;
use warrant_core::ratelimit::RateLimiter;

use crate::client_addr::TrustedProxies;
use crate::metrics::Metrics;
use crate::protocol::revocations::FeedStreams;
use crate::tls::ClientCa;

/// Rate limits (DESIGN.md, "Operations"): per client address on the protocol endpoints, and per
/// client id for *failed* authentications only, so nobody can lock a client out by spraying its
/// id — a correct secret always passes the second limiter.
#[derive(Debug)]
pub struct Limits {
    pub per_address: RateLimiter<IpAddr>,
    pub failed_auth_per_client: RateLimiter<String>,
    /// Open `/revocations/stream` connections one account may hold (DESIGN.md, "Revocation
    /// that reaches verifiers": 429 beyond the cap). Default [`Limits::FEED_STREAMS_PER_ACCOUNT`].
    pub feed_streams_per_account: usize,
}

impl Limits {
    /// The default cap on one account's open revocation feed streams: a verifier needs one;
    /// a few allow for rolling restarts and several instances sharing an account.
    pub const FEED_STREAMS_PER_ACCOUNT: usize = 4;

    pub fn new(
        per_address_per_second: f64,
        per_address_burst: u32,
        failed_per_minute: f64,
        failed_burst: u32,
    ) -> Self {
        Self {
            per_address: RateLimiter::new(per_address_per_second, per_address_burst, 100_000),
            failed_auth_per_client: RateLimiter::new(
                failed_per_minute / 60.0,
                failed_burst,
                100_000,
            ),
            feed_streams_per_account: Self::FEED_STREAMS_PER_ACCOUNT,
        }
    }

    /// No limits at all (tests that are not about limits).
    pub fn unlimited() -> Self {
        Self {
            feed_streams_per_account: usize::MAX,
            ..Self::new(0.0, 1, 0.0, 1)
        }
    }
}

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub warrant: Arc<Warrant>,
    pub limits: Arc<Limits>,
    pub metrics: Arc<Metrics>,
    pub trusted_proxies: Arc<TrustedProxies>,
    /// Open revocation feed streams, per account, and the signal that ends them at shutdown.
    pub(crate) feed_streams: Arc<FeedStreams>,
    /// `tls.client_ca`: the CAs a certificate forwarded by a trusted proxy (RFC 9440) must
    /// chain to for `tls_client_auth`. Set with [`AppState::with_client_ca`].
    pub(crate) client_ca: Option<Arc<ClientCa>>,
    /// RFC 9449 §8: DPoP proofs at the token endpoint must carry a server nonce
    /// (`dpop.require_nonce`, default off). Nonces are stateless, keyed from the master key.
    pub dpop_require_nonce: bool,
    /// The listener serves HTTPS and reads client certificates (`tls.cert`): discovery then
    /// advertises the certificate methods even without a client CA (self-signed ones).
    pub serves_tls: bool,
    /// `tls.forwarded_client_cert`: a `Client-Cert` header (RFC 9440) from a trusted proxy
    /// stands for the client certificate. Off by default: trusting a proxy for
    /// `X-Forwarded-For` does not mean it strips a client's own `Client-Cert`.
    pub forwarded_client_certs: bool,
}

impl AppState {
    pub fn new(warrant: Arc<Warrant>, limits: Limits, trusted_proxies: TrustedProxies) -> Self {
        Self {
            warrant,
            limits: Arc::new(limits),
            metrics: Arc::new(Metrics::default()),
            trusted_proxies: Arc::new(trusted_proxies),
            feed_streams: Arc::new(FeedStreams::default()),
            client_ca: None,
            dpop_require_nonce: false,
            serves_tls: false,
            forwarded_client_certs: false,
        }
    }

    /// The client CA (`tls.client_ca`) for certificates forwarded by trusted proxies; give the
    /// listener's [`crate::tls::TlsServer`] the same one for certificates presented in TLS.
    pub fn with_client_ca(mut self, client_ca: Arc<ClientCa>) -> Self {
        self.client_ca = Some(client_ca);
        self
    }

    /// Whether a client certificate can reach this server: over its own HTTPS, or verified
    /// against `tls.client_ca` when a trusted proxy forwards it.
    pub fn accepts_client_certificates(&self) -> bool {
        self.serves_tls || (self.forwarded_client_certs && !self.trusted_proxies.is_empty())
    }

    /// Ends the long-lived responses (revocation feed event streams), so that a graceful
    /// shutdown does not wait for them until its drain timeout. [`crate::serve`] calls this
    /// when its shutdown future completes; streams opened afterwards end at once.
    pub fn close_streams(&self) {
        self.feed_streams.close();
    }
}
