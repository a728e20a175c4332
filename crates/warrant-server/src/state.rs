use std::net::IpAddr;
use std::sync::Arc;

use warrant_core::Warrant;
use warrant_core::ratelimit::RateLimiter;

use crate::client_addr::TrustedProxies;
use crate::metrics::Metrics;

/// Rate limits (DESIGN.md, "Operations"): per client address on the protocol endpoints, and per
/// client id for *failed* authentications only, so nobody can lock a client out by spraying its
/// id — a correct secret always passes the second limiter.
#[derive(Debug)]
pub struct Limits {
    pub per_address: RateLimiter<IpAddr>,
    pub failed_auth_per_client: RateLimiter<String>,
}

impl Limits {
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
        }
    }

    /// No limits at all (tests that are not about limits).
    pub fn unlimited() -> Self {
        Self::new(0.0, 1, 0.0, 1)
    }
}

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub warrant: Arc<Warrant>,
    pub limits: Arc<Limits>,
    pub metrics: Arc<Metrics>,
    pub trusted_proxies: Arc<TrustedProxies>,
}

impl AppState {
    pub fn new(warrant: Arc<Warrant>, limits: Limits, trusted_proxies: TrustedProxies) -> Self {
        Self {
            warrant,
            limits: Arc::new(limits),
            metrics: Arc::new(Metrics::default()),
            trusted_proxies: Arc::new(trusted_proxies),
        }
    }
}
