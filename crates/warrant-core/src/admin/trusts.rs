//! Federation trusts (docs/federation.md): stored [`TrustPolicy`]s, managed by admins, and
//! `trust test`, which tells an admin which of a tenant's trusts a given external token
//! satisfies and why the others refuse it. The grants that *use* trusts (token exchange,
//! jwt-bearer) are in `grants/exchange.rs`; nothing here issues a token.

use std::sync::Arc;

use serde_json::Value;
use warrant_jose::PublicKey;

use super::{AdminError, AdminPrincipal, WALK, page_limit};
use crate::audit::action;
use crate::federation::{self, Mismatch, MismatchClass, TrustKeys, TrustPolicy, TrustVerdict};
use crate::ids::{AccountRef, TenantName, TrustId, TrustName, TrustRef};
use crate::model::{ServiceAccount, Trust};
use crate::store::Change;
use crate::{StoreError, Warrant};

/// A trust to create. `policy.account` names the account by id or name; it is stored as the
/// account's id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTrust {
    pub name: TrustName,
    pub policy: TrustPolicy,
}

/// One trust's answer in a [`TrustTestReport`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrustTest {
    pub id: TrustId,
    pub name: TrustName,
    pub verdict: TrustVerdict,
}

/// What `trust test` found: every live trust of the tenant, in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustTestReport {
    pub verdicts: Vec<TrustTest>,
    /// How the signature was checked, in one line for the admin (the token's `alg` and `kid`,
    /// and how many trusts of its issuer verified it).
    pub signature: String,
}

impl Warrant {
    /// Validates the policy and resolves its account to a live account of the tenant (409 if
    /// there is none); returns the policy with the account's id.
    async fn checked_trust_policy(
        &self,
        tenant: &TenantName,
        mut policy: TrustPolicy,
    ) -> Result<TrustPolicy, AdminError> {
        policy.validate()?;
        let r = AccountRef::parse(&policy.account).map_err(|_| {
            AdminError::Invalid(format!(
                "account {:?} is not an account id or name",
                policy.account
            ))
        })?;
        policy.account = self
            .referenced_account(tenant, &r, "account")
            .await?
            .to_string();
        Ok(policy)
    }

    pub async fn create_trust(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        new: NewTrust,
    ) -> Result<Trust, AdminError> {
        p.require(tenant)?;
        self.live_tenant(tenant).await?;
        let policy = self.checked_trust_policy(tenant, new.policy).await?;
        let now = self.clock.now();
        let id = TrustId::generate(now).map_err(|_| AdminError::Internal("randomness".into()))?;
        let trust = Trust {
            id,
            tenant: tenant.clone(),
            name: new.name,
            policy,
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        self.store.create_trust(&trust).await.map_err(|e| match e {
            StoreError::Conflict => AdminError::Conflict(format!(
                "tenant {tenant} already has a trust named {}",
                trust.name
            )),
            other => other.into(),
        })?;
        self.changed(Change::Policies {
            tenant: tenant.clone(),
        })
        .await?;
        tracing::info!(tenant = %tenant, trust = %trust.id, name = %trust.name, "trust created");
        self.audit_admin(
            p,
            tenant,
            action::TRUST_CREATE,
            trust.id.as_str(),
            serde_json::json!({
                "name": trust.name.as_str(),
                "issuer": trust.policy.issuer,
                "audience": trust.policy.audience,
                "account": trust.policy.account,
            }),
        )
        .await?;
        Ok(trust)
    }

    pub async fn get_trust(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        r: &TrustRef,
    ) -> Result<Trust, AdminError> {
        p.require(tenant)?;
        self.find_trust(tenant, r).await
    }

    async fn find_trust(&self, tenant: &TenantName, r: &TrustRef) -> Result<Trust, AdminError> {
        let found = match r {
            TrustRef::Id(id) => self.store.get_trust(tenant, id).await?,
            TrustRef::Name(n) => self.store.get_trust_by_name(tenant, n).await?,
        };
        found.ok_or_else(|| AdminError::NotFound(format!("tenant {tenant} has no such trust")))
    }

    pub async fn list_trusts(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        after: Option<&TrustId>,
        limit: Option<u32>,
    ) -> Result<Vec<Trust>, AdminError> {
        p.require(tenant)?;
        self.live_tenant(tenant).await?;
        Ok(self
            .store
            .list_trusts(tenant, after, page_limit(limit))
            .await?)
    }

    /// Replaces the policy (the name stays). With `if_revision`, refuses (412) if the trust
    /// changed.
    pub async fn update_trust(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        r: &TrustRef,
        if_revision: Option<i64>,
        policy: TrustPolicy,
    ) -> Result<Trust, AdminError> {
        p.require(tenant)?;
        let current = self.find_trust(tenant, r).await?;
        if if_revision.is_some_and(|rev| rev != current.revision) {
            return Err(AdminError::PreconditionFailed);
        }
        let policy = self.checked_trust_policy(tenant, policy).await?;
        let mut next = current.clone();
        next.policy = policy;
        next.updated_at = self.clock.now();
        next.revision = current.revision + 1;
        self.store.update_trust(&next, current.revision).await?;
        self.changed(Change::Policies {
            tenant: tenant.clone(),
        })
        .await?;
        tracing::info!(tenant = %tenant, trust = %next.id, "trust updated");
        self.audit_admin(
            p,
            tenant,
            action::TRUST_UPDATE,
            next.id.as_str(),
            serde_json::json!({
                "issuer": next.policy.issuer,
                "audience": next.policy.audience,
                "account": next.policy.account,
                "revision": next.revision,
            }),
        )
        .await?;
        Ok(next)
    }

    /// Deletes a trust; its id is never reused.
    pub async fn delete_trust(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        r: &TrustRef,
        if_revision: Option<i64>,
    ) -> Result<(), AdminError> {
        p.require(tenant)?;
        let current = self.find_trust(tenant, r).await?;
        if if_revision.is_some_and(|rev| rev != current.revision) {
            return Err(AdminError::PreconditionFailed);
        }
        self.store
            .delete_trust(tenant, &current.id, self.clock.now())
            .await?;
        self.changed(Change::Policies {
            tenant: tenant.clone(),
        })
        .await?;
        tracing::info!(tenant = %tenant, trust = %current.id, "trust deleted");
        self.audit_admin(
            p,
            tenant,
            action::TRUST_DELETE,
            current.id.as_str(),
            serde_json::json!({"name": current.name.as_str()}),
        )
        .await?;
        Ok(())
    }

    /// Every live trust of a tenant.
    pub(crate) async fn tenant_trusts(
        &self,
        tenant: &TenantName,
    ) -> Result<Vec<Trust>, AdminError> {
        let mut out: Vec<Trust> = Vec::new();
        loop {
            let batch = self
                .store
                .list_trusts(tenant, out.last().map(|t| &t.id), WALK)
                .await?;
            let done = batch.len() < WALK as usize;
            out.extend(batch);
            if done {
                return Ok(out);
            }
        }
    }

    /// Refuses (409) to delete an account that trusts map to: a trust always names a live
    /// account.
    pub(crate) async fn refuse_if_trusted(&self, a: &ServiceAccount) -> Result<(), AdminError> {
        let names: Vec<String> = self
            .tenant_trusts(&a.tenant)
            .await?
            .into_iter()
            .filter(|t| t.account() == a.id.as_str())
            .map(|t| t.name.to_string())
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        Err(AdminError::Conflict(format!(
            "the trust(s) {} map to account {}: point them at another account or delete them \
             first",
            names.join(", "),
            a.name
        )))
    }

    /// `warrant trust test`: each live trust's verdict on `token`. The token is decoded
    /// unverified only to find its issuer and key id; for each trust of that issuer its
    /// signature is verified with the trust's own keys (a static JWKS, or fetched under the
    /// outbound policy — never keys the token names), and only then are its claims evaluated
    /// ([`federation::explain`]). Trusts of other issuers report only that. Nothing is
    /// recorded (single-use `jti`s are not consulted) and the token is never logged.
    pub async fn test_trusts(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        token: &str,
    ) -> Result<TrustTestReport, AdminError> {
        p.require(tenant)?;
        self.live_tenant(tenant).await?;
        let token = token.trim();
        let (header, claims) = warrant_jose::dangerous::decode_unverified(token)
            .map_err(|_| AdminError::Invalid("the token is not a compact JWS".into()))?;
        let kid = header.get("kid").and_then(Value::as_str);
        let alg = header
            .get("alg")
            .map_or_else(|| "nothing".into(), Value::to_string);
        let iss = claims.get("iss").and_then(Value::as_str);
        let now = self.clock.now();
        let mut verified = 0usize;
        let mut of_issuer = 0usize;
        let mut verdicts = Vec::new();
        for t in self.tenant_trusts(tenant).await? {
            let verdict = if iss == Some(t.policy.issuer.as_str()) {
                of_issuer += 1;
                match self.trust_keys(&t.policy, kid, now, false).await {
                    Err(detail) => signature_failure(&t, detail),
                    Ok(keys) => match warrant_jose::verify_compact_any_key(token, &keys) {
                        Err(e) => {
                            signature_failure(&t, format!("alg {alg}: {e} (with the trust's keys)"))
                        }
                        Ok(v) => {
                            verified += 1;
                            explain_one(&t, &v.claims, now.secs())
                        }
                    },
                }
            } else {
                explain_one(&t, &claims, now.secs())
            };
            verdicts.push(TrustTest {
                id: t.id,
                name: t.name,
                verdict,
            });
        }
        let kid = kid.map_or_else(|| "no kid".into(), |k| format!("kid {:?}", k));
        let signature = format!(
            "alg {alg}, {kid}: verified by {verified} of the {of_issuer} trust(s) of its issuer"
        );
        Ok(TrustTestReport {
            verdicts,
            signature,
        })
    }

    /// The keys that verify tokens for a trust; the error is a detail for the admin or the
    /// audit record. With `cached`, an issuer's discovery document is read through the cache
    /// (grants); without, it is fetched now (an admin testing a trust).
    pub(crate) async fn trust_keys(
        &self,
        policy: &TrustPolicy,
        kid: Option<&str>,
        now: crate::Timestamp,
        cached: bool,
    ) -> Result<Arc<Vec<PublicKey>>, String> {
        let uri = match &policy.jwks {
            TrustKeys::Static(set) => {
                return Ok(Arc::new(crate::policy_cache::static_keys(set)));
            }
            TrustKeys::JwksUri(uri) => uri.clone(),
            TrustKeys::Discovery => {
                let cache = self.client_jwks.get().ok_or(NO_FETCHER)?;
                let found = if cached {
                    cache.cached_jwks_uri(&policy.issuer, now).await
                } else {
                    cache.discover_jwks_uri(&policy.issuer).await
                };
                found.map_err(|e| e.to_string())?
            }
        };
        let cache = self.client_jwks.get().ok_or(NO_FETCHER)?;
        cache
            .keys(&uri, kid, now)
            .await
            .map_err(|e| format!("keys from {uri}: {e}"))
    }
}

/// Why a trust's keys cannot be fetched by a core built without an outbound fetcher.
const NO_FETCHER: &str = "this server does not fetch keys (no outbound fetcher)";

fn signature_failure(t: &Trust, detail: String) -> TrustVerdict {
    TrustVerdict {
        trust: t.name.to_string(),
        federated: None,
        failures: vec![Mismatch::new(MismatchClass::Signature, detail)],
    }
}

fn explain_one(t: &Trust, claims: &serde_json::Map<String, Value>, now: i64) -> TrustVerdict {
    federation::explain_one(t.name.as_str(), &t.policy, claims, now)
}
