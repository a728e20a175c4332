//! Signing-key use cases: list, rotate (scheduled, on demand, `--now`) and revoke. The rules
//! (which times) are in `signing::lifecycle`; this writes what they decide, in one store
//! transaction, then refreshes every replica (`Change::Tenant`). See docs/key-rotation.md.

use super::{AdminError, AdminPrincipal};
use crate::audit::{Origin, action};
use crate::ids::TenantName;
use crate::model::{KeySource, KeyState, SigningKeyRecord, Tenant};
use crate::signing::lifecycle::{self, Plan, RevokeRefusal, Rotation, Timing};
use crate::signing::{new_hsm_key_record, new_key_record};
use crate::store::Change;
use crate::{CoreError, Timestamp, Warrant};

/// The actor of records written by scheduled rotation.
const SCHEDULER: &str = "warrant-scheduler";

impl Warrant {
    /// The settings the key lifecycle rules depend on.
    pub fn key_timing(&self) -> Timing {
        Timing {
            jwks_max_age: self.config.jwks_max_age,
            max_token_lifetime: self.config.max_token_lifetime,
        }
    }

    /// A tenant's signing keys with their state now, newest first.
    pub async fn list_keys(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
    ) -> Result<Vec<(SigningKeyRecord, KeyState)>, AdminError> {
        p.require(tenant)?;
        self.live_tenant(tenant).await?;
        self.keys_now(tenant).await
    }

    async fn keys_now(
        &self,
        tenant: &TenantName,
    ) -> Result<Vec<(SigningKeyRecord, KeyState)>, AdminError> {
        let now = self.clock.now();
        Ok(self
            .store
            .tenant_signing_keys(tenant)
            .await?
            .into_iter()
            .map(|k| {
                let state = k.state_at(now);
                (k, state)
            })
            .collect())
    }

    /// Rotates a tenant's signing key. Normal: a new key (the tenant's current algorithm) is
    /// published now and signs from `now + jwks_max_age + 60 s`; if such a successor already
    /// waits, it is returned and nothing changes (`false`). `immediate` (`--now`): the new key
    /// signs at once. Returns the successor, its state, and whether it was created now.
    pub async fn rotate_key(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        immediate: bool,
    ) -> Result<(SigningKeyRecord, KeyState, bool), AdminError> {
        p.require(tenant)?;
        let t = self.live_tenant(tenant).await?;
        let origin = Origin::admin(p);
        self.rotate(&t, immediate, origin).await
    }

    async fn rotate(
        &self,
        t: &Tenant,
        immediate: bool,
        origin: Origin,
    ) -> Result<(SigningKeyRecord, KeyState, bool), AdminError> {
        let _here = self.key_writes.lock().await;
        let _replicas = self.store.lock_bootstrap().await?;
        let now = self.clock.now();
        let keys = self.store.tenant_signing_keys(&t.name).await?;
        let plan = match lifecycle::rotate(&keys, now, self.key_timing(), immediate) {
            Rotation::Pending(k) => {
                let state = k.state_at(now);
                return Ok((k, state, false));
            }
            Rotation::New(plan) => plan,
        };
        let new = self
            .write_plan(t, &plan, now)
            .await?
            .ok_or_else(|| AdminError::Internal("a rotation planned no key".into()))?;
        tracing::info!(tenant = %t.name, kid = %new.kid, immediate, "signing key rotated");
        self.audit_change(
            &origin,
            &t.name,
            action::KEY_ROTATE,
            &new.kid,
            serde_json::json!({
                "kid": new.kid,
                "alg": new.alg.as_str(),
                "immediate": immediate,
                "activates_at": new.activates_at.to_rfc3339(),
                "retiring": plan.updates.iter()
                    .filter(|u| u.removed_at != u.retires_at)
                    .map(|u| &u.kid).collect::<Vec<_>>(),
            }),
        )
        .await?;
        let state = new.state_at(now);
        Ok((new, state, true))
    }

    /// Revokes a compromised key: it is unpublished now (its tokens fail at introspection at
    /// once, and at verifiers when they refetch the JWKS). If it was signing, a replacement
    /// signs from now; a tenant never ends up without a key. Returns the keys afterwards.
    pub async fn revoke_key(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        kid: &str,
    ) -> Result<Vec<(SigningKeyRecord, KeyState)>, AdminError> {
        p.require(tenant)?;
        let t = self.live_tenant(tenant).await?;
        let _here = self.key_writes.lock().await;
        let _replicas = self.store.lock_bootstrap().await?;
        let now = self.clock.now();
        let keys = self.store.tenant_signing_keys(tenant).await?;
        let plan = lifecycle::revoke(&keys, kid, now, self.key_timing()).map_err(|r| match r {
            RevokeRefusal::Unknown => {
                AdminError::NotFound(format!("tenant {tenant} has no key {kid}"))
            }
            RevokeRefusal::AlreadyRemoved => {
                AdminError::Conflict(format!("key {kid} is already removed"))
            }
        })?;
        let replacement = self.write_plan(&t, &plan, now).await?;
        tracing::warn!(tenant = %tenant, kid, replacement = ?replacement.as_ref().map(|k| &k.kid), "signing key revoked");
        self.audit_change(
            &Origin::admin(p),
            tenant,
            action::KEY_REVOKE,
            kid,
            serde_json::json!({
                "kid": kid,
                "replacement": replacement.as_ref().map(|k| &k.kid),
            }),
        )
        .await?;
        self.keys_now(tenant).await
    }

    /// Scheduled rotation: rotates every live tenant with a `key_rotation_period` whose
    /// signing key has signed long enough that its successor, published now, activates on
    /// schedule (see `lifecycle::rotation_due`). Decides from the keys in memory; reads the
    /// store only for tenants it rotates. `serve` calls this every minute. Returns how many
    /// tenants were rotated.
    pub async fn rotate_due_keys(&self) -> Result<usize, CoreError> {
        let now = self.clock.now();
        let timing = self.key_timing();
        let mut rotated = 0;
        let mut after: Option<TenantName> = None;
        loop {
            let page = self.store.list_tenants(after.as_ref(), 200).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.name.clone());
            for t in &page {
                let Some(period) = t.key_rotation_period else {
                    continue;
                };
                let due = self
                    .keys
                    .times(&t.name)
                    .is_some_and(|keys| lifecycle::rotation_due(&keys, period, now, timing));
                if !due {
                    continue;
                }
                let origin = Origin {
                    actor: SCHEDULER.into(),
                    client_addr: None,
                    auth_method: None,
                };
                match self.rotate(t, false, origin).await {
                    Ok((_, _, true)) => rotated += 1,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(tenant = %t.name, error = %e, "scheduled key rotation failed");
                    }
                }
            }
        }
        Ok(rotated)
    }

    /// Writes a plan in one transaction (a new key of the tenant's algorithm, if planned, and
    /// the new times of existing keys), then refreshes every replica. Callers hold
    /// `key_writes` and the store's bootstrap lock, so that two rotations (an admin's and the
    /// scheduler's, or two replicas') never both plan from the same keys.
    async fn write_plan(
        &self,
        t: &Tenant,
        plan: &Plan,
        now: Timestamp,
    ) -> Result<Option<SigningKeyRecord>, AdminError> {
        let new = match plan.new_key_activates_at {
            None => None,
            Some(at) => Some(self.new_key(t, now, at).await?),
        };
        self.store
            .rotate_signing_keys(&t.name, new.as_ref(), &plan.updates)
            .await?;
        self.changed(Change::Tenant {
            name: t.name.clone(),
        })
        .await?;
        Ok(new)
    }

    /// A new key of the tenant's algorithm, where the tenant's key source says: in memory
    /// (wrapped under the master key), or generated on the tenant's HSM module with the label
    /// `warrant-{tenant}-{unix ms}`. An HSM that cannot generate fails the rotation (503):
    /// nothing is written, the current key keeps signing.
    async fn new_key(
        &self,
        t: &Tenant,
        now: Timestamp,
        activates_at: Timestamp,
    ) -> Result<SigningKeyRecord, AdminError> {
        let module = match &t.key_source {
            KeySource::Software => {
                return Ok(new_key_record(
                    &self.master,
                    &t.name,
                    t.signing_alg,
                    now,
                    activates_at,
                )?);
            }
            KeySource::Hsm { module } => module.clone(),
        };
        let Some(hsm) = self.hsm.clone().filter(|h| h.has_module(&module)) else {
            tracing::error!(tenant = %t.name, module = %module, "the tenant's HSM module is not configured");
            return Err(AdminError::Unavailable(format!(
                "the HSM module {module:?} of tenant {} is not configured on this server",
                t.name
            )));
        };
        let label = format!("warrant-{}-{}", t.name, now.millis());
        let alg = t.signing_alg;
        let (m, l) = (module.clone(), label.clone());
        let key = crate::hsm::blocking(move || hsm.generate(&m, &l, alg))
            .await
            .map_err(|e| {
                tracing::error!(tenant = %t.name, module = %module, label = %label, error = %e, "HSM key generation failed");
                AdminError::Unavailable(format!("the HSM module {module:?} could not generate a key"))
            })?;
        tracing::info!(tenant = %t.name, module = %module, label = %label, kid = %key.kid(), "signing key generated in the HSM");
        Ok(new_hsm_key_record(
            &*key,
            &module,
            &label,
            &t.name,
            now,
            activates_at,
        ))
    }
}
