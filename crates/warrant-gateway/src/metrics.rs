//! Prometheus text exposition (version 0.0.4) of the gateway's counters, with plain atomics:
//! a request takes read locks on two small maps and bumps atomics; a write lock is taken only
//! the first time a label combination is seen.
//!
//! - `warrant_gateway_requests_total{route,outcome,status}`
//! - `warrant_gateway_request_duration_seconds` (histogram, until the response headers)
//! - `warrant_gateway_denials_total{route,reason}`
//! - `warrant_gateway_access_log_dropped_total` (lines dropped because stdout could not keep up)
//! - per issuer, from the verifier: `warrant_gateway_issuer_keys`,
//!   `warrant_gateway_revocation_feed_lag_seconds` (`+Inf` before the first contact; absent for
//!   an issuer whose feed is off) and `warrant_gateway_revoked_tokens` (revoked `jti`s known)
//! - `warrant_gateway_ready` (1 when every issuer has keys and a fresh feed)

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use warrant_verify::Verifier;

/// Upper bounds of the latency histogram, seconds.
pub const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A request's outcome, as logged and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Outcome {
    Allowed,
    Denied,
    NotFound,
    UpstreamError,
    /// Refused before routing: a method the gateway does not proxy, a path that is not
    /// canonical-safe, a malformed host.
    Rejected,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::NotFound => "not_found",
            Self::UpstreamError => "upstream_error",
            Self::Rejected => "rejected",
        }
    }
}

type RequestKey = (Arc<str>, Outcome, u16);
type DenialKey = (Arc<str>, &'static str);

/// Counters that live as long as the gateway (across reloads).
#[derive(Default)]
pub(crate) struct Metrics {
    requests: CounterMap<RequestKey>,
    denials: CounterMap<DenialKey>,
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
    pub(crate) log_dropped: AtomicU64,
    /// The `route` label of requests no route matched.
    no_route: Arc<str>,
}

struct CounterMap<K>(RwLock<HashMap<K, AtomicU64>>);

impl<K> Default for CounterMap<K> {
    fn default() -> Self {
        Self(RwLock::new(HashMap::new()))
    }
}

impl<K: Eq + Hash + Clone + Ord> CounterMap<K> {
    fn bump(&self, key: K) {
        {
            let map = match self.0.read() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            if let Some(c) = map.get(&key) {
                c.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut map = match self.0.write() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.entry(key)
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }

    fn sorted(&self) -> Vec<(K, u64)> {
        let map = match self.0.read() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let mut out: Vec<(K, u64)> = map
            .iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl Metrics {
    /// One finished request (`route` is `None` when no route matched: an empty label).
    pub(crate) fn request(
        &self,
        route: Option<&Arc<str>>,
        outcome: Outcome,
        status: u16,
        latency: Duration,
    ) {
        let route = route.unwrap_or(&self.no_route).clone();
        self.requests.bump((route, outcome, status));
        let secs = latency.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn denial(&self, route: &Arc<str>, reason: &'static str) {
        self.denials.bump((route.clone(), reason));
    }

    /// The exposition text, with the verifier's per-issuer state.
    pub(crate) fn render(&self, verifier: Option<&Verifier>) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str(
            "# HELP warrant_gateway_requests_total Requests by route, outcome and status.\n\
             # TYPE warrant_gateway_requests_total counter\n",
        );
        for ((route, outcome, status), n) in self.requests.sorted() {
            let _ = writeln!(
                out,
                "warrant_gateway_requests_total{{route=\"{}\",outcome=\"{}\",status=\"{status}\"}} {n}",
                label(&route),
                outcome.as_str()
            );
        }
        out.push_str(
            "# HELP warrant_gateway_request_duration_seconds Time until the response headers.\n\
             # TYPE warrant_gateway_request_duration_seconds histogram\n",
        );
        let mut cumulative = 0u64;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "warrant_gateway_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.buckets[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "warrant_gateway_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "warrant_gateway_request_duration_seconds_sum {sum}");
        let _ = writeln!(
            out,
            "warrant_gateway_request_duration_seconds_count {}",
            self.count.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP warrant_gateway_denials_total Refused requests by route and reason.\n\
             # TYPE warrant_gateway_denials_total counter\n",
        );
        for ((route, reason), n) in self.denials.sorted() {
            let _ = writeln!(
                out,
                "warrant_gateway_denials_total{{route=\"{}\",reason=\"{}\"}} {n}",
                label(&route),
                label(reason)
            );
        }
        let _ = writeln!(
            out,
            "# HELP warrant_gateway_access_log_dropped_total Access-log lines dropped (stdout too slow).\n\
             # TYPE warrant_gateway_access_log_dropped_total counter\n\
             warrant_gateway_access_log_dropped_total {}",
            self.log_dropped.load(Ordering::Relaxed)
        );
        let status = verifier.map(Verifier::status).unwrap_or_default();
        issuer_gauge(
            &mut out,
            "warrant_gateway_issuer_keys",
            "Signing keys held per issuer.",
            status
                .iter()
                .map(|s| (s.issuer.as_str(), s.keys.to_string())),
        );
        issuer_gauge(
            &mut out,
            "warrant_gateway_revocation_feed_lag_seconds",
            "Since the issuer's revocation feed was last heard from.",
            status.iter().filter(|s| s.feed).map(|s| {
                let lag = s
                    .feed_lag
                    .map_or_else(|| "+Inf".to_owned(), |d| d.as_secs_f64().to_string());
                (s.issuer.as_str(), lag)
            }),
        );
        issuer_gauge(
            &mut out,
            "warrant_gateway_revoked_tokens",
            "Revoked token ids known per issuer.",
            status
                .iter()
                .map(|s| (s.issuer.as_str(), s.revoked_jtis.to_string())),
        );
        let ready = verifier.is_none_or(Verifier::is_ready);
        let _ = writeln!(
            out,
            "# HELP warrant_gateway_ready Whether every issuer has keys and a fresh feed.\n\
             # TYPE warrant_gateway_ready gauge\n\
             warrant_gateway_ready {}",
            u8::from(ready)
        );
        out
    }
}

/// A gauge family with one sample per issuer: its `# HELP` and `# TYPE` lines, then
/// `name{issuer="…"} value` for each `(issuer, value)` of `samples`.
fn issuer_gauge<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (&'a str, String)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (issuer, value) in samples {
        let _ = writeln!(out, "{name}{{issuer=\"{}\"}} {value}", label(issuer));
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::default();
        let orders: Arc<str> = Arc::from("orders");
        m.request(
            Some(&orders),
            Outcome::Allowed,
            200,
            Duration::from_micros(300),
        );
        m.request(
            Some(&orders),
            Outcome::Allowed,
            200,
            Duration::from_millis(3),
        );
        m.request(Some(&orders), Outcome::Denied, 401, Duration::from_secs(5));
        m.denial(&orders, "expired");
        let text = m.render(None);
        assert!(text.contains(
            "warrant_gateway_requests_total{route=\"orders\",outcome=\"allowed\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "warrant_gateway_requests_total{route=\"orders\",outcome=\"denied\",status=\"401\"} 1"
        ));
        assert!(text.contains("warrant_gateway_request_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("warrant_gateway_request_duration_seconds_bucket{le=\"0.005\"} 2"));
        assert!(text.contains("warrant_gateway_request_duration_seconds_bucket{le=\"2.5\"} 2"));
        assert!(text.contains("warrant_gateway_request_duration_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("warrant_gateway_request_duration_seconds_count 3"));
        assert!(
            text.contains("warrant_gateway_denials_total{route=\"orders\",reason=\"expired\"} 1")
        );
        assert!(text.contains("warrant_gateway_ready 1"));
        assert_eq!(label("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }
}
