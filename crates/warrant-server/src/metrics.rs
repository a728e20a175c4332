//! Prometheus metrics without a global recorder: counters are atomics reached through a
//! per-tenant map (read-locked, no allocation on the hot path), rendered as text on `/metrics`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why a token request was refused, as a metric label.
pub const REASONS: &[&str] = &[
    "invalid_request",
    "unsupported_grant_type",
    "invalid_client",
    "invalid_target",
    "invalid_scope",
    "rate_limited",
    "unavailable",
    "unknown_tenant",
    "invalid_grant",
];

const GRANTS: &[&str] = &[
    "client_credentials",
    "token_exchange",
    "jwt_bearer",
    "other",
];

#[derive(Debug, Default)]
struct TenantCounters {
    issued: [AtomicU64; GRANTS.len()],
    refused: [[AtomicU64; REASONS.len()]; GRANTS.len()],
    /// Introspections answered, by [`ACTIVE`].
    introspected: [AtomicU64; 2],
    /// Revocations made, by [`REVOCATION_SOURCES`].
    revoked: [AtomicU64; 2],
    /// Token signatures an HSM key failed to make (the request was answered 503).
    hsm_sign_failures: AtomicU64,
}

/// The `active` label of `warrant_introspections_total`.
const ACTIVE: &[&str] = &["true", "false"];
/// Where a revocation came from: RFC 7009 `POST {issuer}/revoke` or the admin API.
pub const REVOCATION_SOURCES: &[&str] = &["client", "admin"];

const BUCKETS_US: [u64; 11] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; 11],
    count: AtomicU64,
    sum_us: AtomicU64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    tenants: RwLock<HashMap<String, TenantCounters>>,
    token_latency: Histogram,
    /// Open `/revocations/stream` connections.
    feed_streams: AtomicU64,
}

fn grant_index(grant: &str) -> usize {
    GRANTS
        .iter()
        .position(|g| *g == grant)
        .unwrap_or(GRANTS.len() - 1)
}

impl Metrics {
    /// Runs `f` on the tenant's counters under the read lock (no reference-count traffic on
    /// the hot path; the write lock is taken only the first time a tenant is seen).
    fn with_tenant(&self, tenant: &str, f: impl Fn(&TenantCounters)) {
        if let Some(c) = self
            .tenants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
        {
            return f(c);
        }
        let mut map = self.tenants.write().unwrap_or_else(|e| e.into_inner());
        // Unknown tenant names come from the URL: cap the label set so a scanner cannot grow it.
        let key = if map.len() >= 10_000 {
            "_other"
        } else {
            tenant
        };
        f(map.entry(key.to_owned()).or_default());
    }

    pub fn issued(&self, tenant: &str, grant: &str) {
        let g = grant_index(grant);
        self.with_tenant(tenant, |c| {
            c.issued[g].fetch_add(1, Ordering::Relaxed);
        });
    }

    pub fn refused(&self, tenant: &str, grant: &str, reason: &str) {
        let g = grant_index(grant);
        let r = REASONS.iter().position(|x| *x == reason).unwrap_or(0);
        self.with_tenant(tenant, |c| {
            c.refused[g][r].fetch_add(1, Ordering::Relaxed);
        });
    }

    /// Counts the observation in its own bucket only (`render` accumulates): three atomic
    /// additions per request instead of one per bucket.
    pub fn observe_token_latency(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        let h = &self.token_latency;
        if let Some(i) = BUCKETS_US.iter().position(|b| us <= *b) {
            h.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn introspected(&self, tenant: &str, active: bool) {
        let i = usize::from(!active);
        self.with_tenant(tenant, |c| {
            c.introspected[i].fetch_add(1, Ordering::Relaxed);
        });
    }

    /// A revocation made through the server (`source` is one of [`REVOCATION_SOURCES`]).
    pub fn revoked(&self, tenant: &str, source: &str) {
        let i = REVOCATION_SOURCES
            .iter()
            .position(|x| *x == source)
            .unwrap_or(0);
        self.with_tenant(tenant, |c| {
            c.revoked[i].fetch_add(1, Ordering::Relaxed);
        });
    }

    /// A token the tenant's HSM key could not sign (the request got 503).
    pub fn hsm_sign_failed(&self, tenant: &str) {
        self.with_tenant(tenant, |c| {
            c.hsm_sign_failures.fetch_add(1, Ordering::Relaxed);
        });
    }

    pub fn feed_stream_opened(&self) {
        self.feed_streams.fetch_add(1, Ordering::Relaxed);
    }

    pub fn feed_stream_closed(&self) {
        let _ = self
            .feed_streams
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let map = self.tenants.read().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<&String> = map.keys().collect();
        names.sort();
        out.push_str("# HELP warrant_tokens_issued_total Access tokens issued.\n# TYPE warrant_tokens_issued_total counter\n");
        for t in &names {
            for (gi, g) in GRANTS.iter().enumerate() {
                let n = map[*t].issued[gi].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "warrant_tokens_issued_total{{tenant=\"{t}\",grant=\"{g}\"}} {n}"
                    );
                }
            }
        }
        out.push_str("# HELP warrant_tokens_refused_total Token requests refused, by reason.\n# TYPE warrant_tokens_refused_total counter\n");
        for t in &names {
            for (gi, g) in GRANTS.iter().enumerate() {
                for (ri, r) in REASONS.iter().enumerate() {
                    let n = map[*t].refused[gi][ri].load(Ordering::Relaxed);
                    if n > 0 {
                        let _ = writeln!(
                            out,
                            "warrant_tokens_refused_total{{tenant=\"{t}\",grant=\"{g}\",reason=\"{r}\"}} {n}"
                        );
                    }
                }
            }
        }
        out.push_str("# HELP warrant_introspections_total Introspection requests answered (RFC 7662), by whether the token was active.\n# TYPE warrant_introspections_total counter\n");
        for t in &names {
            for (i, a) in ACTIVE.iter().enumerate() {
                let n = map[*t].introspected[i].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "warrant_introspections_total{{tenant=\"{t}\",active=\"{a}\"}} {n}"
                    );
                }
            }
        }
        out.push_str("# HELP warrant_revocations_total Revocations made through POST /revoke (source=client) or the admin API (source=admin); watermarks set by disabling or deleting an account are in the audit log, not counted here.\n# TYPE warrant_revocations_total counter\n");
        for t in &names {
            for (i, src) in REVOCATION_SOURCES.iter().enumerate() {
                let n = map[*t].revoked[i].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "warrant_revocations_total{{tenant=\"{t}\",source=\"{src}\"}} {n}"
                    );
                }
            }
        }
        out.push_str("# HELP warrant_hsm_sign_failures_total Access tokens the tenant's HSM key could not sign (answered 503 temporarily_unavailable).\n# TYPE warrant_hsm_sign_failures_total counter\n");
        for t in &names {
            let n = map[*t].hsm_sign_failures.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(out, "warrant_hsm_sign_failures_total{{tenant=\"{t}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP warrant_revocation_feed_streams Open revocation feed event streams.\n# TYPE warrant_revocation_feed_streams gauge\nwarrant_revocation_feed_streams {}",
            self.feed_streams.load(Ordering::Relaxed)
        );
        let h = &self.token_latency;
        out.push_str("# HELP warrant_token_request_duration_seconds Token endpoint latency.\n# TYPE warrant_token_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, b) in BUCKETS_US.iter().enumerate() {
            cumulative += h.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "warrant_token_request_duration_seconds_bucket{{le=\"{}\"}} {cumulative}",
                *b as f64 / 1e6,
            );
        }
        let count = h.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "warrant_token_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "warrant_token_request_duration_seconds_sum {}",
            h.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "warrant_token_request_duration_seconds_count {count}");
        out
    }
}
