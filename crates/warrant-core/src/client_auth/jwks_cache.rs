//! The JWKS of accounts registered by `jwks_uri`, fetched through the [`JwksFetcher`] port.
//!
//! The core does no I/O: the server implements [`JwksFetcher`] under the outbound policy
//! (`https` only, no private addresses, no redirects, 64 KiB, a timeout; DESIGN.md "Outbound
//! requests"). This cache decides *when* to fetch:
//!
//! - keys are served from memory while fresh (`ttl_secs`, default 300 s);
//! - a stale or absent entry is fetched again, once: concurrent callers for the same URI wait
//!   for that one fetch (single flight) instead of starting their own;
//! - a `kid` the cached set does not know (the client rotated its key) triggers a re-fetch at
//!   most once per `min_refetch_secs` (default 30 s) per URI, so random `kid`s sent by anyone
//!   cannot make us hammer the client's server; the same bound applies to retries after a
//!   failed fetch;
//! - when a fetch fails, the last good keys are served for up to `max_stale_secs` (default
//!   1 h) past their freshness, so a short outage of the client's JWKS host is not an outage of
//!   the client. Past that, a failure is an error: keys the client may have withdrawn (a
//!   compromised key, removed while its host is down) are not trusted for long.
//!
//! Time is an input ([`Timestamp`]), so tests move it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::Value;
use warrant_jose::{Jwk, PublicKey};

use crate::Timestamp;

/// Why a JWKS could not be had. For operators' logs: never echoed to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// The port through which the core fetches a `jwks_uri` (implemented by the server).
#[async_trait::async_trait]
pub trait JwksFetcher: Send + Sync + std::fmt::Debug + 'static {
    /// GET `uri` under the outbound policy; the body (≤ 64 KiB). Errors are for operators
    /// (never echoed to clients).
    async fn fetch(&self, uri: &str) -> Result<Vec<u8>, FetchError>;
}

/// Default freshness of fetched keys, seconds.
pub const DEFAULT_TTL_SECS: u64 = 300;
/// Default minimum interval between two fetches of one URI triggered by an unknown `kid` or
/// after a failure, seconds.
pub const DEFAULT_MIN_REFETCH_SECS: u64 = 30;
/// Default time the last good keys are served past their freshness while fetches fail: an
/// hour rides out a host's restart or a short outage without trusting a key for a day after
/// its owner may have withdrawn it.
pub const DEFAULT_MAX_STALE_SECS: u64 = 3_600;

/// Keys by `jwks_uri` (see the module documentation for when it fetches).
#[derive(Debug)]
pub struct JwksCache {
    fetcher: Arc<dyn JwksFetcher>,
    ttl_secs: i64,
    min_refetch_secs: i64,
    max_stale_secs: i64,
    entries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Entry>>>>,
    /// Federation issuers' `jwks_uri`s, from their discovery documents.
    discovered: Mutex<HashMap<String, Discovered>>,
}

/// One issuer's discovery state: the last good `jwks_uri`, and the last attempt.
#[derive(Debug)]
struct Discovered {
    good: Option<(String, Timestamp)>,
    attempt: Timestamp,
    error: Option<FetchError>,
}

/// One URI's state. Its async mutex is held across the fetch: that is the single flight.
#[derive(Debug, Default)]
struct Entry {
    /// The last good keys and when they were fetched.
    keys: Option<(Arc<Vec<PublicKey>>, Timestamp)>,
    /// When a fetch was last started, and its error if it failed.
    last_attempt: Option<Timestamp>,
    last_error: Option<FetchError>,
}

impl JwksCache {
    pub fn new(fetcher: Arc<dyn JwksFetcher>, ttl_secs: u64, min_refetch_secs: u64) -> Self {
        let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
        JwksCache {
            fetcher,
            ttl_secs: secs(ttl_secs),
            min_refetch_secs: secs(min_refetch_secs),
            max_stale_secs: secs(DEFAULT_MAX_STALE_SECS),
            entries: Mutex::new(HashMap::new()),
            discovered: Mutex::new(HashMap::new()),
        }
    }

    /// How long past their freshness the last good keys are served while fetches fail
    /// (default 24 h).
    pub fn with_max_stale_secs(mut self, secs: u64) -> Self {
        self.max_stale_secs = i64::try_from(secs).unwrap_or(i64::MAX);
        self
    }

    /// Keys for `uri`: cached if fresh; fetched when absent or stale; when `kid` is given and
    /// unknown, re-fetched at most once per `min_refetch_secs` per URI; when a fetch fails,
    /// the last good keys (if not too old).
    pub async fn keys(
        &self,
        uri: &str,
        kid: Option<&str>,
        now: Timestamp,
    ) -> Result<Arc<Vec<PublicKey>>, FetchError> {
        let entry = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(entries.entry(uri.to_owned()).or_default())
        };
        let mut entry = entry.lock().await;
        let may_retry = entry
            .last_attempt
            .is_none_or(|t| now >= t.plus_secs(self.min_refetch_secs));
        let fresh = match &entry.keys {
            Some((keys, at)) if now < at.plus_secs(self.ttl_secs) => {
                let known = kid.is_none_or(|kid| keys.iter().any(|k| k.kid() == Some(kid)));
                // A fresh set serves every known kid; an unknown one waits for the bound.
                if known || !may_retry {
                    return Ok(Arc::clone(keys));
                }
                true
            }
            _ => false,
        };
        if !fresh && !may_retry {
            // Stale or absent, and a fetch was tried moments ago (and failed, or we would be
            // fresh): answer as that attempt did.
            return self.fallback(&entry, now);
        }
        entry.last_attempt = Some(now);
        match self.fetcher.fetch(uri).await.and_then(|body| parse(&body)) {
            Ok(keys) => {
                let keys = Arc::new(keys);
                entry.keys = Some((Arc::clone(&keys), now));
                entry.last_error = None;
                Ok(keys)
            }
            Err(e) => {
                entry.last_error = Some(e);
                self.fallback(&entry, now)
            }
        }
    }

    /// The last good keys if they are not too old, else the last error.
    fn fallback(&self, entry: &Entry, now: Timestamp) -> Result<Arc<Vec<PublicKey>>, FetchError> {
        match &entry.keys {
            Some((keys, at))
                if now < at.plus_secs(self.ttl_secs.saturating_add(self.max_stale_secs)) =>
            {
                Ok(Arc::clone(keys))
            }
            _ => Err(entry
                .last_error
                .clone()
                .unwrap_or_else(|| FetchError("the cached keys are too old".into()))),
        }
    }

    /// GET `uri` through the same fetcher (so under the same outbound policy), uncached, and
    /// parse it as JSON: an issuer's discovery document, for a federation trust. Errors are for
    /// operators and admins; the body itself is never echoed to a client.
    pub async fn fetch_json(&self, uri: &str) -> Result<Value, FetchError> {
        let body = self.fetcher.fetch(uri).await?;
        serde_json::from_slice(&body).map_err(|_| FetchError("the response is not JSON".into()))
    }

    /// The `jwks_uri` of `issuer`'s discovery document (OpenID Connect Discovery §4), whose
    /// `issuer` must be exactly `issuer` (§4.3), fetched under the same outbound policy.
    /// Uncached: for an admin testing a trust, who wants to see the issuer's answer now.
    pub async fn discover_jwks_uri(&self, issuer: &str) -> Result<String, FetchError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc = self
            .fetch_json(&url)
            .await
            .map_err(|e| FetchError(format!("discovery at {url}: {}", e.0)))?;
        if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
            return Err(FetchError(format!(
                "discovery at {url}: its issuer is not {issuer}"
            )));
        }
        doc.get("jwks_uri")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| FetchError(format!("discovery at {url}: no jwks_uri")))
    }

    /// [`JwksCache::discover_jwks_uri`], cached as keys are: fresh for the TTL, fetched again
    /// at most once per `min_refetch_secs` after a failure (so that a flood of tokens naming a
    /// dead issuer costs no fetch each), and the last good answer kept while fetches fail.
    /// Not single-flight: concurrent first requests may each fetch once.
    pub async fn cached_jwks_uri(
        &self,
        issuer: &str,
        now: Timestamp,
    ) -> Result<String, FetchError> {
        let answer = |d: &Discovered| match &d.good {
            Some((uri, at))
                if now < at.plus_secs(self.ttl_secs.saturating_add(self.max_stale_secs)) =>
            {
                Ok(uri.clone())
            }
            _ => Err(d
                .error
                .clone()
                .unwrap_or_else(|| FetchError("discovery failed".into()))),
        };
        {
            let map = self.discovered.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(d) = map.get(issuer) {
                let fresh = d
                    .good
                    .as_ref()
                    .is_some_and(|(_, at)| now < at.plus_secs(self.ttl_secs));
                if fresh || now < d.attempt.plus_secs(self.min_refetch_secs) {
                    return answer(d);
                }
            }
        }
        let fetched = self.discover_jwks_uri(issuer).await;
        let mut map = self.discovered.lock().unwrap_or_else(|e| e.into_inner());
        let d = map.entry(issuer.to_owned()).or_insert(Discovered {
            good: None,
            attempt: now,
            error: None,
        });
        d.attempt = now;
        match fetched {
            Ok(uri) => {
                d.good = Some((uri, now));
                d.error = None;
            }
            Err(e) => d.error = Some(e),
        }
        answer(d)
    }

    /// Drops what is held for `uri` (an account's registration changed or went away).
    pub fn forget(&self, uri: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uri);
    }
}

/// A JWK Set's verification keys: members that are not a usable public key of an accepted
/// algorithm, or whose `use` is not `sig`, are skipped (RFC 7517 §5: a set may hold keys we
/// do not understand). A body that is not a JWK Set at all is an error.
fn parse(body: &[u8]) -> Result<Vec<PublicKey>, FetchError> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<Value>,
    }
    let set: Set = serde_json::from_slice(body)
        .map_err(|_| FetchError("the response is not a JWK Set".into()))?;
    Ok(set
        .keys
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
        .filter(|jwk| jwk.use_.as_deref().is_none_or(|u| u == "sig"))
        .filter_map(|jwk| public_keys(&jwk).ok())
        .flatten()
        .collect())
}

/// The verification keys a client JWK stands for. An RSA key published without `alg` (common:
/// many JWKS publishers omit it) stands for both RSA algorithms we accept, RS256 and PS256 —
/// the same key, so neither can forge for the other; every other key is read as it is.
pub(crate) fn public_keys(jwk: &Jwk) -> Result<Vec<PublicKey>, warrant_jose::JoseError> {
    if jwk.kty != "RSA" || jwk.alg.is_some() {
        return PublicKey::from_jwk(jwk).map(|k| vec![k]);
    }
    ["RS256", "PS256"]
        .into_iter()
        .map(|alg| {
            PublicKey::from_jwk(&Jwk {
                alg: Some(alg.into()),
                ..jwk.clone()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn rsa_keys_without_alg_serve_both_rsa_algorithms() {
        let (key, _) = SigningKey::generate(Algorithm::Rs256).unwrap();
        let mut jwk = key.public_jwk().clone();
        jwk.alg = None;
        let body = serde_json::to_vec(&JwkSet { keys: vec![jwk] }).unwrap();
        let keys = parse(&body).unwrap();
        let algs: Vec<_> = keys.iter().map(PublicKey::alg).collect();
        assert_eq!(algs, [Algorithm::Rs256, Algorithm::Ps256]);
        // An EC key without alg is read as it is (its curve fixes the algorithm).
        let (ec, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let mut jwk = ec.public_jwk().clone();
        jwk.alg = None;
        let body = serde_json::to_vec(&JwkSet { keys: vec![jwk] }).unwrap();
        assert_eq!(parse(&body).unwrap().len(), 1);
    }

    use warrant_jose::{Algorithm, JwkSet, SigningKey};

    use super::*;

    /// Serves `body` (or fails when it is `None`), counting calls; yields a few times inside
    /// each fetch so concurrent callers really overlap.
    #[derive(Debug, Default)]
    struct Fake {
        body: Mutex<Option<Vec<u8>>>,
        calls: AtomicUsize,
    }

    impl Fake {
        fn serve(&self, body: Option<Vec<u8>>) {
            *self.body.lock().unwrap() = body;
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    #[async_trait::async_trait]
    impl JwksFetcher for Fake {
        async fn fetch(&self, _uri: &str) -> Result<Vec<u8>, FetchError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            for _ in 0..5 {
                tokio::task::yield_now().await;
            }
            self.body
                .lock()
                .unwrap()
                .clone()
                .ok_or_else(|| FetchError("connection refused".into()))
        }
    }

    const URI: &str = "https://client.example/jwks";

    fn jwks(keys: &[&SigningKey]) -> Vec<u8> {
        let set = JwkSet {
            keys: keys.iter().map(|k| k.public_jwk().clone()).collect(),
        };
        serde_json::to_vec(&set).unwrap()
    }

    fn key() -> SigningKey {
        SigningKey::generate(Algorithm::Es256).unwrap().0
    }

    fn setup() -> (Arc<Fake>, JwksCache) {
        let fake = Arc::new(Fake::default());
        let cache = JwksCache::new(fake.clone(), 300, 30);
        (fake, cache)
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_secs(1_800_000_000 + s)
    }

    fn kids(keys: &[PublicKey]) -> Vec<Option<&str>> {
        keys.iter().map(PublicKey::kid).collect()
    }

    #[tokio::test]
    async fn fresh_keys_come_from_memory_until_the_ttl() {
        let (fake, cache) = setup();
        let k = key();
        fake.serve(Some(jwks(&[&k])));
        let got = cache.keys(URI, None, at(0)).await.unwrap();
        assert_eq!(kids(&got), [Some(k.kid())]);
        cache.keys(URI, Some(k.kid()), at(299)).await.unwrap();
        assert_eq!(fake.calls(), 1);
        cache.keys(URI, None, at(300)).await.unwrap();
        assert_eq!(fake.calls(), 2);
        // another URI is another entry
        cache
            .keys("https://other.example/jwks", None, at(300))
            .await
            .unwrap();
        assert_eq!(fake.calls(), 3);
    }

    #[tokio::test]
    async fn unknown_kid_refetches_at_most_once_per_interval() {
        let (fake, cache) = setup();
        let (old, new) = (key(), key());
        fake.serve(Some(jwks(&[&old])));
        cache.keys(URI, Some(old.kid()), at(0)).await.unwrap();
        // the client rotated, but we asked moments ago: no fetch, the old set
        fake.serve(Some(jwks(&[&old, &new])));
        for s in 1..30 {
            let got = cache.keys(URI, Some("random"), at(s)).await.unwrap();
            assert_eq!(got.len(), 1);
        }
        assert_eq!(fake.calls(), 1);
        // after the interval: one fetch, which finds the new key
        let got = cache.keys(URI, Some(new.kid()), at(30)).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(fake.calls(), 2);
        // an attacker's random kids right after: still bounded
        for s in 31..60 {
            cache
                .keys(URI, Some(&format!("r{s}")), at(s))
                .await
                .unwrap();
        }
        assert_eq!(fake.calls(), 2);
        cache.keys(URI, Some("again"), at(60)).await.unwrap();
        assert_eq!(fake.calls(), 3);
    }

    #[tokio::test]
    async fn a_failed_fetch_keeps_the_last_good_keys_for_a_while() {
        let fake = Arc::new(Fake::default());
        let cache = JwksCache::new(fake.clone(), 300, 30).with_max_stale_secs(3600);
        let k = key();
        fake.serve(Some(jwks(&[&k])));
        cache.keys(URI, None, at(0)).await.unwrap();
        fake.serve(None);
        let got = cache.keys(URI, None, at(400)).await.unwrap();
        assert_eq!(kids(&got), [Some(k.kid())]);
        assert_eq!(fake.calls(), 2);
        // retries are bounded too
        cache.keys(URI, None, at(410)).await.unwrap();
        assert_eq!(fake.calls(), 2);
        cache.keys(URI, None, at(430)).await.unwrap();
        assert_eq!(fake.calls(), 3);
        // a body that is not a JWKS is a failure as well
        fake.serve(Some(b"<html>".to_vec()));
        assert!(cache.keys(URI, None, at(460)).await.is_ok());
        // past ttl + max_stale: the failure shows
        fake.serve(None);
        let e = cache.keys(URI, None, at(300 + 3600)).await.unwrap_err();
        assert_eq!(e, FetchError("connection refused".into()));
        // and recovery
        fake.serve(Some(jwks(&[&k])));
        assert!(cache.keys(URI, None, at(300 + 3600 + 30)).await.is_ok());
    }

    #[tokio::test]
    async fn a_first_failure_is_an_error_and_is_not_retried_at_once() {
        let (fake, cache) = setup();
        assert!(cache.keys(URI, None, at(0)).await.is_err());
        assert!(cache.keys(URI, None, at(10)).await.is_err());
        assert_eq!(fake.calls(), 1);
        fake.serve(Some(jwks(&[&key()])));
        assert_eq!(cache.keys(URI, None, at(30)).await.unwrap().len(), 1);
        assert_eq!(fake.calls(), 2);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let (fake, cache) = setup();
        fake.serve(Some(jwks(&[&key()])));
        let (a, b, c, d) = tokio::join!(
            cache.keys(URI, None, at(0)),
            cache.keys(URI, None, at(0)),
            cache.keys(URI, Some("unknown"), at(0)),
            cache.keys(URI, None, at(0)),
        );
        for r in [a, b, c, d] {
            assert_eq!(r.unwrap().len(), 1);
        }
        assert_eq!(fake.calls(), 1);
    }

    #[tokio::test]
    async fn unusable_members_are_skipped() {
        let (fake, cache) = setup();
        let (es, ed) = (key(), SigningKey::generate(Algorithm::EdDsa).unwrap().0);
        let enc = Jwk {
            use_: Some("enc".into()),
            ..es.public_jwk().clone()
        };
        let body = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0"},
            {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
            {"no": "kty"},
            "not an object",
            enc,
            ed.public_jwk(),
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "RS384"},
        ]});
        fake.serve(Some(serde_json::to_vec(&body).unwrap()));
        let got = cache.keys(URI, None, at(0)).await.unwrap();
        assert_eq!(kids(&got), [Some(ed.kid())]);
        assert!(parse(b"{}").is_err());
        assert!(parse(b"[]").is_err());
        assert_eq!(parse(br#"{"keys":[]}"#).unwrap().len(), 0);
        cache.forget(URI);
        cache.keys(URI, None, at(1)).await.unwrap();
        assert_eq!(fake.calls(), 2);
    }
}
