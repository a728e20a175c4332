//! The in-memory directory of clients: every live account with its secret hashes.
//!
//! Authentication reads only this map, so a token request costs a hash lookup and one HMAC, and
//! an unknown client costs the same as a known one with a wrong secret (both do one HMAC and a
//! constant-time comparison). Admin writes go to the store first and then refresh the affected
//! entry; later, store notifications refresh other replicas the same way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use crate::ids::{AccountId, SecretName, TenantName};
use crate::model::{SecretRecord, ServiceAccount};
use crate::store::Store;
use crate::{CoreError, Timestamp};

/// One secret as authentication needs it, plus its last use (kept here, flushed in batches).
#[derive(Debug)]
pub struct LiveSecret {
    pub name: SecretName,
    pub hash: [u8; 32],
    pub key_version: u32,
    pub expires_at: Option<Timestamp>,
    last_used_ms: AtomicI64,
    flushed_ms: AtomicI64,
}

impl LiveSecret {
    fn new(r: &SecretRecord) -> Self {
        let used = r.last_used_at.map_or(0, Timestamp::millis);
        Self {
            name: r.name.clone(),
            hash: r.hash,
            key_version: r.key_version,
            expires_at: r.expires_at,
            last_used_ms: AtomicI64::new(used),
            flushed_ms: AtomicI64::new(used),
        }
    }

    pub(crate) fn mark_used(&self, now: Timestamp) {
        self.last_used_ms.fetch_max(now.millis(), Ordering::Relaxed);
    }

    pub fn last_used(&self) -> Option<Timestamp> {
        match self.last_used_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Timestamp::from_millis(ms)),
        }
    }
}

/// A client as the token endpoint sees it.
#[derive(Debug)]
pub struct ClientEntry {
    pub account: ServiceAccount,
    pub secrets: Vec<LiveSecret>,
    /// The custom claims, pre-serialised as `,"k":v…` to append to the claims object.
    pub(crate) claims_fragment: String,
    /// The inline `private_key_jwt` keys, parsed once (keys that do not parse are skipped:
    /// they were checked on write).
    pub(crate) assertion_keys: Arc<Vec<warrant_jose::PublicKey>>,
}

/// Custom claims pre-serialised as `,"k":v…`, to append to a claims object. Reserved names are
/// skipped (refused on write; skipped here too so that they can never override a claim
/// Warrant sets).
pub(crate) fn claims_fragment(claims: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut out = String::new();
    for (k, v) in claims {
        if crate::policy::is_reserved_claim(k) {
            continue;
        }
        out.push(',');
        out.push_str(&serde_json::Value::from(k.as_str()).to_string());
        out.push(':');
        out.push_str(&v.to_string());
    }
    out
}

impl ClientEntry {
    fn new(account: ServiceAccount, secrets: &[&SecretRecord]) -> Self {
        let claims_fragment = claims_fragment(&account.claims);
        let assertion_keys = account
            .credentials
            .jwks
            .as_ref()
            .map(|set| {
                set.keys
                    .iter()
                    .filter_map(|k| crate::client_auth::jwks_cache::public_keys(k).ok())
                    .flatten()
                    .collect()
            })
            .unwrap_or_default();
        Self {
            account,
            secrets: secrets.iter().map(|s| LiveSecret::new(s)).collect(),
            claims_fragment,
            assertion_keys: Arc::new(assertion_keys),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Directory {
    clients: RwLock<HashMap<AccountId, Arc<ClientEntry>>>,
}

impl Directory {
    pub(crate) async fn load_all(&self, store: &dyn Store) -> Result<(), CoreError> {
        let accounts = store.all_accounts().await?;
        let secrets = store.all_secrets().await?;
        let mut by_account: HashMap<&AccountId, Vec<&SecretRecord>> = HashMap::new();
        for s in &secrets {
            by_account.entry(&s.account_id).or_default().push(s);
        }
        let old = crate::read(&self.clients).clone();
        let mut map = HashMap::with_capacity(accounts.len());
        for a in accounts {
            let own = by_account.get(&a.id).map(Vec::as_slice).unwrap_or(&[]);
            let entry = ClientEntry::new(a, own);
            if let Some(prev) = old.get(&entry.account.id) {
                carry_last_used(prev, &entry);
            }
            map.insert(entry.account.id.clone(), Arc::new(entry));
        }
        *crate::write(&self.clients) = map;
        Ok(())
    }

    /// Refreshes one account from the store (removes it if it is gone).
    pub(crate) async fn reload(
        &self,
        store: &dyn Store,
        tenant: &TenantName,
        id: &AccountId,
    ) -> Result<(), CoreError> {
        let account = store.get_account(tenant, id).await?;
        let Some(account) = account else {
            crate::write(&self.clients).remove(id);
            return Ok(());
        };
        let secrets = store.list_secrets(id).await?;
        let refs: Vec<&SecretRecord> = secrets.iter().collect();
        let entry = ClientEntry::new(account, &refs);
        let mut map = crate::write(&self.clients);
        if let Some(prev) = map.get(id) {
            carry_last_used(prev, &entry);
        }
        map.insert(id.clone(), Arc::new(entry));
        Ok(())
    }

    pub(crate) fn remove_tenant(&self, tenant: &TenantName) {
        crate::write(&self.clients).retain(|_, e| &e.account.tenant != tenant);
    }

    pub(crate) fn get(&self, id: &AccountId) -> Option<Arc<ClientEntry>> {
        crate::read(&self.clients).get(id).cloned()
    }

    /// Secrets used since their last flush, marking them flushed.
    pub(crate) fn take_dirty_last_used(&self) -> Vec<(AccountId, SecretName, Timestamp)> {
        let map = crate::read(&self.clients);
        let mut out = Vec::new();
        for e in map.values() {
            for s in &e.secrets {
                let used = s.last_used_ms.load(Ordering::Relaxed);
                if used > s.flushed_ms.load(Ordering::Relaxed) {
                    s.flushed_ms.store(used, Ordering::Relaxed);
                    out.push((
                        e.account.id.clone(),
                        s.name.clone(),
                        Timestamp::from_millis(used),
                    ));
                }
            }
        }
        out
    }
}

fn carry_last_used(prev: &ClientEntry, next: &ClientEntry) {
    for s in &next.secrets {
        if let Some(p) = prev
            .secrets
            .iter()
            .find(|p| p.name == s.name && p.hash == s.hash)
        {
            s.last_used_ms
                .fetch_max(p.last_used_ms.load(Ordering::Relaxed), Ordering::Relaxed);
            s.flushed_ms
                .fetch_max(p.flushed_ms.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}
