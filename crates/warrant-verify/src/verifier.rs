//! [`Verifier`]: the per-issuer key caches and revocation feeds, a cache of verified tokens, and
//! the per-request checks (audience, scopes, claims, sender binding, revocation).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderMap;
use serde_json::Value;
use tokio::task::JoinHandle;
use warrant_jose::dpop::{DpopFailure, DpopPolicy, MAX_PROOF_BYTES, check_proof};

use crate::clock::{Clock, SystemClock};
use crate::denial::{Denial, DenialKind, Scheme};
use crate::feed::{FeedCredentials, Follower, Revocations, Standing};
use crate::fetch::{DEFAULT_TIMEOUT, HttpOptions, HttpSetupError, allowed_url, client};
use crate::jwks::IssuerKeys;
use crate::token::{Binding, TokenFailure, VerifiedToken, unverified_issuer, verify_token};

/// One issuer whose tokens are accepted.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// The exact `iss` (for Warrant, `{public_url}/t/{tenant}`).
    pub issuer: String,
    /// Where its keys are; by default found by OIDC discovery from the issuer.
    pub jwks_uri: Option<String>,
    /// The revocation feed's credentials. `None` turns revocation checking off for this issuer
    /// (tokens revoked at the issuer then stay valid here until they expire).
    pub feed: Option<FeedCredentials>,
}

/// Everything a [`Verifier`] is built from.
#[derive(Clone)]
pub struct VerifierConfig {
    pub issuers: Vec<IssuerConfig>,
    /// Tolerated clock skew on `exp`, `nbf` and `iat`, seconds (default 30, at most 300).
    pub leeway_secs: i64,
    /// Refuse every token of an issuer (503) once its feed has not been heard from for this
    /// long (default 60 s).
    pub stale_feed_limit: Duration,
    /// An upper bound on the lifetime of the tokens accepted (for forgetting old watermarks;
    /// default 24 h).
    pub max_token_lifetime: Duration,
    /// How many verified tokens are kept (default 100 000).
    pub cache_capacity: usize,
    pub http: HttpOptions,
    pub clock: Arc<dyn Clock>,
}

impl VerifierConfig {
    /// Defaults for these issuers.
    pub fn new(issuers: Vec<IssuerConfig>) -> Self {
        Self {
            issuers,
            leeway_secs: 30,
            stale_feed_limit: Duration::from_secs(60),
            max_token_lifetime: Duration::from_secs(24 * 3600),
            cache_capacity: 100_000,
            http: HttpOptions::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for VerifierConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierConfig")
            .field("issuers", &self.issuers)
            .field("leeway_secs", &self.leeway_secs)
            .field("stale_feed_limit", &self.stale_feed_limit)
            .field("cache_capacity", &self.cache_capacity)
            .finish_non_exhaustive()
    }
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no issuer is configured")]
    NoIssuer,
    #[error("issuer {0}: only https URLs (or http to loopback) are accepted")]
    IssuerUrl(String),
    #[error("issuer {0} is configured twice")]
    Duplicate(String),
    #[error(transparent)]
    Http(#[from] HttpSetupError),
}

/// What a resource requires of a token, beyond being valid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Requirement {
    /// The token's `aud` must hold one of these. Required: an empty list accepts nothing.
    pub audiences: Vec<String>,
    /// Every one of these scopes.
    pub scopes_all: Vec<String>,
    /// At least one of these scopes (ignored when empty).
    pub scopes_any: Vec<String>,
    /// Every condition must hold.
    pub claims: Vec<ClaimCondition>,
}

/// A claim (dotted path for nested claims) whose value must be one of `one_of` (JSON values,
/// compared exactly; a string pattern ending in `*` matches by prefix).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimCondition {
    pub claim: String,
    pub one_of: Vec<Value>,
}

impl ClaimCondition {
    fn holds(&self, t: &VerifiedToken) -> bool {
        let Some(v) = t.claim(&self.claim) else {
            return false;
        };
        self.one_of.iter().any(|want| match (want, v) {
            (Value::String(p), Value::String(s)) => match p.strip_suffix('*') {
                Some(prefix) => s.starts_with(prefix),
                None => p == s,
            },
            _ => want == v,
        })
    }
}

/// The request as the checks see it. Its `Debug` shows the method and URL only, never the
/// headers (they carry the token and the proof).
#[derive(Clone, Copy)]
pub struct Presented<'a> {
    /// The method, for DPoP's `htm`.
    pub method: &'a str,
    /// The URL the client addressed (scheme, host, path), for DPoP's `htu`.
    pub url: &'a str,
    pub headers: &'a HeaderMap,
    /// The DER client certificate of the connection, when there was one (for `cnf.x5t#S256`).
    pub client_certificate: Option<&'a [u8]>,
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("client_certificate", &self.client_certificate.is_some())
            .finish_non_exhaustive()
    }
}

/// A DER client certificate, as a request extension: what a TLS acceptor in front of the
/// [`crate::VerifyLayer`] inserts so that certificate-bound tokens can be checked.
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub Arc<Vec<u8>>);

/// A verified request's identity, as the layer puts it in request extensions.
pub type Verified = Arc<VerifiedToken>;

/// The state of one issuer, for metrics and readiness.
#[derive(Debug, Clone)]
pub struct IssuerStatus {
    pub issuer: String,
    pub keys: usize,
    /// Since the keys were last fetched; `None` before the first fetch.
    pub keys_age: Option<Duration>,
    /// Whether the feed is followed.
    pub feed: bool,
    /// Since the feed was last heard from; `None` before the first snapshot.
    pub feed_lag: Option<Duration>,
    pub revoked_jtis: usize,
    pub watermarks: usize,
}

struct Issuer {
    keys: Arc<IssuerKeys>,
    revocations: Option<Arc<Revocations>>,
}

struct Inner {
    issuers: HashMap<String, Issuer>,
    cache: TokenCache,
    replay: ReplayCache,
    leeway: i64,
    stale_limit: Duration,
    clock: Arc<dyn Clock>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Verifies Warrant access tokens. Cheap to clone; background tasks (key refresh, feed) stop
/// when the last clone is dropped.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuers", &self.inner.issuers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Starts following every issuer's keys and feed (call within a tokio runtime). Returns at
    /// once: until an issuer's keys and first snapshot arrive, its tokens get `503`
    /// ([`Self::wait_ready`] waits for them).
    pub fn start(config: VerifierConfig) -> Result<Self, ConfigError> {
        if config.issuers.is_empty() {
            return Err(ConfigError::NoIssuer);
        }
        let http = client(&config.http)?;
        let timeout = config.http.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let mut issuers = HashMap::new();
        let mut tasks = Vec::new();
        for ic in &config.issuers {
            if !allowed_url(&ic.issuer) || ic.jwks_uri.as_deref().is_some_and(|u| !allowed_url(u)) {
                return Err(ConfigError::IssuerUrl(ic.issuer.clone()));
            }
            if issuers.contains_key(&ic.issuer) {
                return Err(ConfigError::Duplicate(ic.issuer.clone()));
            }
            let keys = Arc::new(IssuerKeys::new(
                ic.issuer.clone(),
                ic.jwks_uri.clone(),
                http.clone(),
                timeout,
            ));
            tasks.push(tokio::spawn(refresh_keys(keys.clone(), ic.issuer.clone())));
            let revocations = ic.feed.clone().map(|credentials| {
                let state = Arc::new(Revocations::default());
                let follower = Follower {
                    issuer: ic.issuer.clone(),
                    credentials,
                    client: http.clone(),
                    timeout,
                    state: state.clone(),
                    clock: config.clock.clone(),
                    max_token_lifetime: config.max_token_lifetime.as_secs() as i64,
                };
                tasks.push(tokio::spawn(follower.run()));
                state
            });
            issuers.insert(ic.issuer.clone(), Issuer { keys, revocations });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                issuers,
                cache: TokenCache::new(config.cache_capacity),
                replay: ReplayCache::default(),
                leeway: config.leeway_secs.clamp(0, crate::token::MAX_LEEWAY_SECS),
                stale_limit: config.stale_feed_limit,
                clock: config.clock,
                tasks,
            }),
        })
    }

    /// Waits (at most `timeout`) until every issuer has keys and, where followed, a first
    /// revocation snapshot. Returns whether they all do.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_ready() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether every issuer has keys and a fresh enough feed.
    pub fn is_ready(&self) -> bool {
        self.inner.issuers.values().all(|i| {
            !i.keys.current().keys.is_empty()
                && i.revocations.as_ref().is_none_or(|r| {
                    r.since_contact()
                        .is_some_and(|d| d <= self.inner.stale_limit)
                })
        })
    }

    /// Each issuer's keys and feed.
    pub fn status(&self) -> Vec<IssuerStatus> {
        let mut out: Vec<IssuerStatus> = self
            .inner
            .issuers
            .iter()
            .map(|(name, i)| {
                let keys = i.keys.current();
                let (revoked_jtis, watermarks) = i.revocations.as_ref().map_or((0, 0), |r| r.len());
                IssuerStatus {
                    issuer: name.clone(),
                    keys: keys.keys.len(),
                    keys_age: keys.fetched.map(|t| t.elapsed()),
                    feed: i.revocations.is_some(),
                    feed_lag: i.revocations.as_ref().and_then(|r| r.since_contact()),
                    revoked_jtis,
                    watermarks,
                }
            })
            .collect();
        out.sort_by(|a, b| a.issuer.cmp(&b.issuer));
        out
    }

    /// Checks one request against `rule`: the token (from `Authorization: Bearer` or
    /// `Authorization: DPoP`), then revocation, sender binding, audience, claims and scopes.
    pub async fn check(&self, req: &Presented<'_>, rule: &Requirement) -> Result<Verified, Denial> {
        let (scheme, token) = credential(req.headers)?;
        let now = self.inner.clock.now_secs();
        let (issuer, verified) = self.verified(token, scheme, now).await?;
        match self.authorize(req, rule, scheme, token, issuer, &verified, now) {
            Ok(()) => Ok(verified),
            Err(mut d) => {
                d.token = Some(verified);
                Err(d)
            }
        }
    }

    /// The checks that depend on the request and the time, on a token `issuer` verified.
    #[allow(clippy::too_many_arguments)]
    fn authorize(
        &self,
        req: &Presented<'_>,
        rule: &Requirement,
        scheme: Scheme,
        token: &str,
        issuer: &Issuer,
        verified: &VerifiedToken,
        now: i64,
    ) -> Result<(), Denial> {
        if now >= verified.exp.saturating_add(self.inner.leeway) {
            return Err(Denial::token(TokenFailure::Expired, scheme));
        }
        if let Some(r) = &issuer.revocations {
            match r.standing(verified, self.inner.stale_limit) {
                Standing::Current => {}
                Standing::Stale => {
                    return Err(Denial::unavailable(
                        "feed_stale",
                        "revocation state is not current; try again later",
                    ));
                }
                Standing::Revoked => return Err(Denial::token(TokenFailure::Revoked, scheme)),
            }
        }
        self.check_binding(req, verified, scheme, token, now)?;
        if !verified.aud.iter().any(|a| rule.audiences.contains(a)) {
            return Err(Denial::token(TokenFailure::Audience, scheme));
        }
        if !rule.claims.iter().all(|c| c.holds(verified)) {
            return Err(Denial::new(
                DenialKind::InsufficientScope,
                scheme,
                "claims",
                "the token's claims do not allow this request",
            ));
        }
        let has_all = rule.scopes_all.iter().all(|s| verified.has_scope(s));
        let has_any =
            rule.scopes_any.is_empty() || rule.scopes_any.iter().any(|s| verified.has_scope(s));
        if !has_all || !has_any {
            let mut d = Denial::new(
                DenialKind::InsufficientScope,
                scheme,
                "scope",
                "the token lacks a scope this request needs",
            );
            d.scope = Some(if !has_all {
                rule.scopes_all.join(" ")
            } else {
                rule.scopes_any.join(" ")
            });
            return Err(d);
        }
        Ok(())
    }

    /// The token verified (signature, `typ`, `iss`, time, required claims), and its issuer;
    /// from the cache when this exact token was verified before and its key is still published.
    async fn verified(
        &self,
        token: &str,
        scheme: Scheme,
        now: i64,
    ) -> Result<(&Issuer, Verified), Denial> {
        if let Some((hit, generation)) = self.inner.cache.get(token) {
            // Verified under the keys published now: still good. Under others (a key rotated
            // in, or one withdrawn as compromised): verify again.
            if let Some(issuer) = self.inner.issuers.get(&hit.iss)
                && issuer.keys.current().generation == generation
            {
                return Ok((issuer, hit));
            }
            self.inner.cache.remove(token);
        }
        let iss = unverified_issuer(token).map_err(|f| Denial::token(f, scheme))?;
        let issuer = self
            .inner
            .issuers
            .get(&iss)
            .ok_or_else(|| Denial::token(TokenFailure::Issuer, scheme))?;
        let mut keys = issuer.keys.current();
        if keys.fetched.is_none() {
            // The background task is fetching (with backoff); requests do not pile onto it.
            return Err(Denial::unavailable(
                "keys_unavailable",
                "the issuer's keys are not available yet; try again later",
            ));
        }
        let mut result = verify_token(token, &iss, &keys.keys, now, self.inner.leeway);
        if result.as_ref().err() == Some(&TokenFailure::UnknownKey)
            && let Some(kid) = header_kid(token)
            && issuer.keys.refresh_for_kid(&kid).await
        {
            keys = issuer.keys.current();
            result = verify_token(token, &iss, &keys.keys, now, self.inner.leeway);
        }
        let verified = Arc::new(result.map_err(|f| Denial::token(f, scheme))?);
        self.inner
            .cache
            .insert(token, (verified.clone(), keys.generation), now);
        Ok((issuer, verified))
    }

    fn check_binding(
        &self,
        req: &Presented<'_>,
        t: &VerifiedToken,
        scheme: Scheme,
        token: &str,
        now: i64,
    ) -> Result<(), Denial> {
        let invalid = |reason, description| {
            Denial::new(DenialKind::InvalidToken, scheme, reason, description)
        };
        match (&t.binding, scheme) {
            (Binding::Dpop { .. }, Scheme::Bearer) => Err(Denial::new(
                DenialKind::InvalidToken,
                Scheme::Dpop,
                "dpop_bound_as_bearer",
                "the token is DPoP-bound: send it with Authorization: DPoP and a proof",
            )),
            (Binding::Dpop { jkt }, Scheme::Dpop) => self.check_dpop(req, jkt, token, now),
            (_, Scheme::Dpop) => Err(invalid(
                "not_dpop_bound",
                "the token is not DPoP-bound: send it with Authorization: Bearer",
            )),
            (Binding::Certificate { x5t_s256 }, Scheme::Bearer) => {
                let presented = req.client_certificate.map(warrant_jose::x5t_s256);
                if presented.as_deref() == Some(x5t_s256.as_str()) {
                    Ok(())
                } else {
                    Err(invalid(
                        "certificate",
                        "the token is bound to a client certificate this connection did not present",
                    ))
                }
            }
            (Binding::Bearer, Scheme::Bearer) => Ok(()),
        }
    }

    fn check_dpop(
        &self,
        req: &Presented<'_>,
        jkt: &str,
        token: &str,
        now: i64,
    ) -> Result<(), Denial> {
        let proof_denial = |f: DpopFailure| {
            Denial::new(
                DenialKind::InvalidDpopProof,
                Scheme::Dpop,
                f.as_str(),
                dpop_description(f),
            )
        };
        let mut values = req.headers.get_all("dpop").iter();
        let proof = match (values.next(), values.next()) {
            (Some(v), None) if v.len() <= MAX_PROOF_BYTES => v
                .to_str()
                .map_err(|_| proof_denial(DpopFailure::Malformed))?,
            (None, _) => {
                return Err(Denial::new(
                    DenialKind::InvalidDpopProof,
                    Scheme::Dpop,
                    "proof_missing",
                    "a DPoP proof is required with this token",
                ));
            }
            _ => return Err(proof_denial(DpopFailure::Malformed)),
        };
        let policy = DpopPolicy {
            htm: req.method,
            access_token: Some(token),
            ..DpopPolicy::token_endpoint(req.url, now)
        };
        let p = check_proof(proof, &policy).map_err(proof_denial)?;
        if p.jkt != jkt {
            return Err(Denial::new(
                DenialKind::InvalidDpopProof,
                Scheme::Dpop,
                "jkt",
                "the DPoP proof is not signed by the token's key",
            ));
        }
        if !self
            .inner
            .replay
            .first_use(p.replay_key(), p.replay_until(&policy), now)
        {
            return Err(Denial::new(
                DenialKind::InvalidDpopProof,
                Scheme::Dpop,
                "replay",
                "the DPoP proof has been used before",
            ));
        }
        Ok(())
    }
}

fn dpop_description(f: DpopFailure) -> &'static str {
    match f {
        DpopFailure::Method => "the DPoP proof's htm does not match the request",
        DpopFailure::Url => "the DPoP proof's htu does not match the request",
        DpopFailure::Ath => "the DPoP proof's ath does not match the access token",
        DpopFailure::Stale | DpopFailure::Future => "the DPoP proof's iat is not acceptable",
        DpopFailure::Signature => "the DPoP proof's signature does not verify",
        _ => "the DPoP proof is not valid",
    }
}

/// The credential of a request: `Authorization: Bearer TOKEN` or `Authorization: DPoP TOKEN`
/// (schemes case-insensitive, RFC 9110 §11.1). Another scheme, or none, is "no token".
fn credential(headers: &HeaderMap) -> Result<(Scheme, &str), Denial> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Denial::no_token());
    };
    if values.next().is_some() {
        return Err(Denial::new(
            DenialKind::InvalidRequest,
            Scheme::Bearer,
            "two_authorization_headers",
            "the request has more than one Authorization header",
        ));
    }
    let malformed = |scheme| {
        Denial::new(
            DenialKind::InvalidRequest,
            scheme,
            "malformed_authorization",
            "the Authorization header is malformed",
        )
    };
    let value = value.to_str().map_err(|_| malformed(Scheme::Bearer))?;
    let (name, token) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if name.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if name.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Err(Denial::no_token());
    };
    let token = token.trim_matches(' ');
    if token.len() > crate::token::MAX_TOKEN_BYTES {
        return Err(Denial::token(TokenFailure::Malformed, scheme));
    }
    // token68 (RFC 9110 §11.2): a JWS is base64url parts and dots.
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
    {
        return Err(malformed(scheme));
    }
    Ok((scheme, token))
}

fn header_kid(token: &str) -> Option<String> {
    let header = warrant_jose::b64::decode(token.split('.').next()?)?;
    let v: Value = serde_json::from_slice(&header).ok()?;
    v.get("kid")?
        .as_str()
        .map(|s| s.chars().take(128).collect())
}

async fn refresh_keys(keys: Arc<IssuerKeys>, issuer: String) {
    let mut backoff = Duration::from_millis(250);
    loop {
        match keys.refresh().await {
            Ok(fresh) => {
                backoff = Duration::from_millis(250);
                tokio::time::sleep(fresh).await;
            }
            Err(e) => {
                tracing::warn!(%issuer, error = %e, "fetching the issuer's keys failed; keeping the keys in hand");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

const SHARDS: usize = 16;

/// Verified tokens by the token itself (its bytes are compared on a hit, so only this exact
/// token can match), with the key generation they were verified under, sharded to keep lock
/// contention low. About 1 KiB per entry. (Keyed by the token rather than a digest of it:
/// SHA-256 of a token costs ~3 µs here, the map's hash of it ~0.2 µs.)
struct TokenCache {
    shards: Vec<Mutex<HashMap<Box<str>, Cached>>>,
    per_shard: usize,
}

type Cached = (Verified, u64);

impl TokenCache {
    fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: (capacity / SHARDS).max(1),
        }
    }

    /// A shard by a byte of the signature, which is random for every token.
    fn shard(&self, token: &str) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Cached>> {
        let b = token.as_bytes();
        let pick = b.len().checked_sub(10).map_or(0, |i| usize::from(b[i]));
        match self.shards[pick % SHARDS].lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn get(&self, token: &str) -> Option<Cached> {
        self.shard(token).get(token).cloned()
    }

    fn remove(&self, token: &str) {
        self.shard(token).remove(token);
    }

    fn insert(&self, token: &str, t: Cached, now: i64) {
        let mut s = self.shard(token);
        if s.len() >= self.per_shard {
            s.retain(|_, (v, _)| v.exp > now);
            // Full of live tokens: start again rather than sweep on every insert.
            if s.len() >= self.per_shard {
                s.clear();
            }
        }
        s.insert(token.into(), t);
    }
}

/// DPoP proofs seen, by replay key, until they are too old to be accepted anyway.
#[derive(Default)]
struct ReplayCache {
    seen: Mutex<Replays>,
}

#[derive(Default)]
struct Replays {
    until: HashMap<String, i64>,
    /// Sweep expired entries when the map reaches this size (doubling, so that sweeps stay
    /// amortised O(1) per insert even when most entries are alive).
    next_sweep: usize,
}

/// The first sweep happens at this many remembered proofs.
const REPLAY_SWEEP: usize = 100_000;
/// Beyond this many live proofs (70 s of them) new proofs are refused as replays: failing
/// closed rather than growing without bound.
const REPLAY_MAX: usize = 2_000_000;

impl ReplayCache {
    fn first_use(&self, key: String, until: i64, now: i64) -> bool {
        let mut seen = match self.seen.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if seen.until.len() >= seen.next_sweep.max(REPLAY_SWEEP) {
            seen.until.retain(|_, u| *u >= now);
            seen.next_sweep = (seen.until.len() * 2).max(REPLAY_SWEEP);
        }
        if let Some(u) = seen.until.get(&key)
            && *u >= now
        {
            return false;
        }
        if seen.until.len() >= REPLAY_MAX {
            return false;
        }
        seen.until.insert(key, until);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_accepted_once_until_it_expires() {
        let c = ReplayCache::default();
        assert!(c.first_use("a".into(), 100, 50));
        assert!(!c.first_use("a".into(), 100, 60), "replayed");
        assert!(
            c.first_use("a".into(), 200, 101),
            "after its time, the iat check guards"
        );
    }

    #[test]
    fn expired_proofs_are_swept_and_live_ones_bounded() {
        let c = ReplayCache::default();
        for i in 0..REPLAY_SWEEP {
            assert!(c.first_use(format!("old{i}"), 10, 0));
        }
        assert!(c.first_use("new".into(), 100, 50));
        let seen = c.seen.lock().unwrap();
        assert_eq!(seen.until.len(), 1, "the expired ones were swept");
        assert!(seen.next_sweep >= REPLAY_SWEEP);
    }

    #[test]
    fn presented_debug_hides_the_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer secret-token".parse().unwrap(),
        );
        let p = Presented {
            method: "GET",
            url: "https://x/y",
            headers: &h,
            client_certificate: None,
        };
        assert!(!format!("{p:?}").contains("secret-token"));
    }

    #[test]
    fn credentials_are_read_strictly() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
            credential(&h)
                .map(|(s, t)| (s, t.to_owned()))
                .map_err(|d| d.reason)
        };
        assert_eq!(with("Bearer a.b.c"), Ok((Scheme::Bearer, "a.b.c".into())));
        assert_eq!(with("bearer  a.b.c"), Ok((Scheme::Bearer, "a.b.c".into())));
        assert_eq!(with("DPoP a.b.c"), Ok((Scheme::Dpop, "a.b.c".into())));
        assert_eq!(with("Basic dXNlcg=="), Err("no_token"));
        assert_eq!(with("Bearer"), Err("malformed_authorization"));
        assert_eq!(with("Bearer a b"), Err("malformed_authorization"));
        assert_eq!(with("Bearer a\"b"), Err("malformed_authorization"));
        let long = format!("Bearer {}", "a".repeat(crate::token::MAX_TOKEN_BYTES + 1));
        assert_eq!(with(&long), Err("malformed"));
    }
}
