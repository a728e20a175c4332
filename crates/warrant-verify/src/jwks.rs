//! One issuer's signing keys: found by discovery (or configured), fetched, cached for as long as
//! the JWKS response's `Cache-Control` allows, re-fetched early (at a bounded rate) when a token
//! names a `kid` we do not have, and kept while the issuer is unreachable: an issuer that is down
//! does not stop tokens signed by keys we already hold from verifying.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use warrant_jose::{Jwk, PublicKey};

use crate::fetch::get_json;

/// The shortest time between two fetches, whatever `Cache-Control` says.
pub const MIN_REFRESH: Duration = Duration::from_secs(2);
/// The longest a JWKS is kept without asking again.
pub const MAX_REFRESH: Duration = Duration::from_secs(24 * 3600);
/// When the response says nothing about caching.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
/// A token with an unknown `kid` triggers a fetch at most this often per issuer.
pub const UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(5);
/// The most keys kept from one JWKS.
pub const MAX_KEYS: usize = 32;

/// The keys in hand and what is known of their freshness.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<PublicKey>,
    /// When the keys were last fetched successfully.
    pub(crate) fetched: Option<Instant>,
    /// Changes whenever the published keys change (not on a fetch that finds the same ones):
    /// a token verified under another generation is verified again.
    pub(crate) generation: u64,
    /// The JWKs as published, to tell whether a fetch changed anything.
    published: Vec<Value>,
}

impl KeySet {
    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid() == Some(kid))
    }
}

pub(crate) struct IssuerKeys {
    issuer: String,
    configured_jwks_uri: Option<String>,
    client: reqwest::Client,
    timeout: Duration,
    current: RwLock<Arc<KeySet>>,
    /// Serialises fetches and remembers the last attempt (for the unknown-`kid` rate).
    fetch: tokio::sync::Mutex<FetchState>,
}

#[derive(Default)]
struct FetchState {
    jwks_uri: Option<String>,
    /// The last fetch an unknown `kid` caused (scheduled refreshes do not count, so a rotation
    /// just after one is still picked up at once).
    last_for_kid: Option<Instant>,
}

#[derive(serde::Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl IssuerKeys {
    pub(crate) fn new(
        issuer: String,
        jwks_uri: Option<String>,
        client: reqwest::Client,
        timeout: Duration,
    ) -> Self {
        Self {
            issuer,
            configured_jwks_uri: jwks_uri,
            client,
            timeout,
            current: RwLock::new(Arc::new(KeySet::default())),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
        }
    }

    /// The keys in hand (possibly none yet).
    pub(crate) fn current(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Fetches now; on success replaces the keys and returns how long they stay fresh. On
    /// failure the keys in hand are kept.
    pub(crate) async fn refresh(&self) -> Result<Duration, String> {
        let mut state = self.fetch.lock().await;
        self.refresh_locked(&mut state).await
    }

    /// After a token named a `kid` we lack: fetch unless a fetch was attempted within
    /// [`UNKNOWN_KID_INTERVAL`]. Returns whether the key is now known.
    pub(crate) async fn refresh_for_kid(&self, kid: &str) -> bool {
        let mut state = self.fetch.lock().await;
        // Another request may have fetched while this one waited for the lock.
        if self.current().has_kid(kid) {
            return true;
        }
        if state
            .last_for_kid
            .is_some_and(|t| t.elapsed() < UNKNOWN_KID_INTERVAL)
        {
            return false;
        }
        state.last_for_kid = Some(Instant::now());
        let _ = self.refresh_locked(&mut state).await;
        self.current().has_kid(kid)
    }

    async fn refresh_locked(&self, state: &mut FetchState) -> Result<Duration, String> {
        let uri = match (&self.configured_jwks_uri, &state.jwks_uri) {
            (Some(u), _) | (None, Some(u)) => u.clone(),
            (None, None) => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.issuer.trim_end_matches('/')
                );
                let (d, _): (Discovery, _) = get_json(&self.client, &url, self.timeout)
                    .await
                    .map_err(|e| format!("discovery: {e}"))?;
                // RFC 8414 §3.3: the metadata must name the issuer we asked about.
                if d.issuer != self.issuer {
                    return Err("discovery: the document names another issuer".into());
                }
                state.jwks_uri = Some(d.jwks_uri.clone());
                d.jwks_uri
            }
        };
        let (doc, max_age): (Value, _) = get_json(&self.client, &uri, self.timeout)
            .await
            .map_err(|e| format!("JWKS: {e}"))?;
        let (keys, published) = parse_jwks(&doc).ok_or("JWKS: not a JWK Set")?;
        let fresh = max_age
            .unwrap_or(DEFAULT_REFRESH)
            .clamp(MIN_REFRESH, MAX_REFRESH);
        let old = self.current();
        let generation = if old.fetched.is_some() && old.published == published {
            old.generation
        } else {
            old.generation.wrapping_add(1)
        };
        let set = Arc::new(KeySet {
            keys,
            fetched: Some(Instant::now()),
            generation,
            published,
        });
        match self.current.write() {
            Ok(mut k) => *k = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(fresh)
    }
}

/// The usable signing keys of a JWK Set — each key that parses, has a `kid`, and is not
/// marked for encryption; others are skipped (an issuer may publish keys of kinds we do not
/// use) — and the JWKs they came from.
pub(crate) fn parse_jwks(doc: &Value) -> Option<(Vec<PublicKey>, Vec<Value>)> {
    let list = doc.get("keys")?.as_array()?;
    let mut keys = Vec::new();
    let mut published = Vec::new();
    for raw in list {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        if jwk.kid.is_none() || jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            continue;
        }
        if let Ok(key) = PublicKey::from_jwk(&jwk) {
            keys.push(key);
            published.push(raw.clone());
        }
        if keys.len() == MAX_KEYS {
            break;
        }
    }
    Some((keys, published))
}
