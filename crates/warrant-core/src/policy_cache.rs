//! Each tenant's federation trusts and registered APIs, as the exchange grants read them: from
//! memory, loaded from the store on first use and dropped when they change — here
//! ([`Warrant::changed`] with [`Change::Policies`]), on another replica (the same change
//! through the store's feed), or when the feed broke (everything is dropped). A static JWKS is
//! parsed once per load, not per request.
//!
//! A load that races with a change never installs what it read: every drop bumps a generation
//! and a load installs its result only if the generation it started at is still current.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use warrant_jose::PublicKey;

use crate::federation::TrustKeys;
use crate::ids::TenantName;
use crate::model::{Api, Trust};
use crate::{StoreError, Warrant};

/// A trust with its static keys parsed (`None` for keys that are fetched).
#[derive(Debug)]
pub(crate) struct CachedTrust {
    pub trust: Trust,
    pub static_keys: Option<Arc<Vec<PublicKey>>>,
}

/// One tenant's live trusts (id order) and APIs.
#[derive(Debug, Default)]
pub(crate) struct TenantPolicies {
    pub trusts: Vec<CachedTrust>,
    pub apis: Vec<Api>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    tenants: HashMap<TenantName, Arc<TenantPolicies>>,
}

#[derive(Debug, Default)]
pub(crate) struct PolicyCache {
    inner: Mutex<Inner>,
}

impl PolicyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops one tenant's entry (its trusts or APIs changed, or the tenant went away).
    pub(crate) fn forget(&self, tenant: &TenantName) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.tenants.remove(tenant);
    }

    /// Drops everything (changes may have been missed).
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.tenants.clear();
    }
}

/// The verification keys of a static JWKS (members that are not usable keys are skipped).
pub(crate) fn static_keys(set: &warrant_jose::JwkSet) -> Vec<PublicKey> {
    set.keys
        .iter()
        .filter_map(|jwk| crate::client_auth::jwks_cache::public_keys(jwk).ok())
        .flatten()
        .collect()
}

impl Warrant {
    /// The tenant's trusts and APIs, from memory when they are there.
    pub(crate) async fn tenant_policies(
        &self,
        tenant: &TenantName,
    ) -> Result<Arc<TenantPolicies>, StoreError> {
        let started = {
            let inner = self.policies.lock();
            if let Some(p) = inner.tenants.get(tenant) {
                return Ok(Arc::clone(p));
            }
            inner.generation
        };
        let map = |e: crate::admin::AdminError| StoreError::Backend(e.to_string());
        let trusts = self
            .tenant_trusts(tenant)
            .await
            .map_err(map)?
            .into_iter()
            .map(|trust| CachedTrust {
                static_keys: match &trust.policy.jwks {
                    TrustKeys::Static(set) => Some(Arc::new(static_keys(set))),
                    _ => None,
                },
                trust,
            })
            .collect();
        let apis = self.tenant_apis(tenant).await.map_err(map)?;
        let loaded = Arc::new(TenantPolicies { trusts, apis });
        let mut inner = self.policies.lock();
        if inner.generation == started {
            inner.tenants.insert(tenant.clone(), Arc::clone(&loaded));
        }
        Ok(loaded)
    }
}
