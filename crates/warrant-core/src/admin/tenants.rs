use warrant_jose::Algorithm;

use super::{AdminError, AdminPrincipal, page_limit};
use crate::audit::action;
use crate::ids::TenantName;
use crate::model::{KeySource, Tenant};
use crate::signing::new_key_record;
use crate::store::Change;
use crate::{StoreError, Warrant};

impl Warrant {
    /// Creates a tenant and its first signing key.
    pub async fn create_tenant(
        &self,
        p: &AdminPrincipal,
        name: TenantName,
        alg: Option<Algorithm>,
    ) -> Result<Tenant, AdminError> {
        p.require_global()?;
        if name.is_system() {
            return Err(AdminError::Conflict(
                "the tenant name system is reserved".into(),
            ));
        }
        let now = self.clock.now();
        let tenant = Tenant {
            name,
            signing_alg: alg.unwrap_or(Tenant::DEFAULT_SIGNING_ALG),
            key_rotation_period: None,
            key_source: Default::default(),
            token_endpoint_audience: false,
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        self.store
            .create_tenant(&tenant)
            .await
            .map_err(|e| match e {
                StoreError::Conflict => AdminError::Conflict(format!(
                    "tenant name {} is taken (names of deleted tenants are never reused)",
                    tenant.name
                )),
                other => other.into(),
            })?;
        let key = new_key_record(&self.master, &tenant.name, tenant.signing_alg, now, now)?;
        self.store.add_signing_key(&key).await?;
        self.changed(Change::Tenant {
            name: tenant.name.clone(),
        })
        .await?;
        tracing::info!(tenant = %tenant.name, kid = %key.kid, "tenant created");
        self.audit_admin(
            p,
            &tenant.name,
            action::TENANT_CREATE,
            tenant.name.as_str(),
            serde_json::json!({"kid": key.kid}),
        )
        .await?;
        Ok(tenant)
    }

    /// Changes the algorithm of the tenant's future signing keys and its scheduled key rotation
    /// period (`None`: manual rotation only; else between `2·(jwks_max_age + 60 s)` and 365
    /// days). Keys that exist keep their algorithm: tokens keep verifying, and the new algorithm
    /// signs from the next key the tenant gets (DESIGN.md, "Signing keys": a key is published
    /// before it signs). With `if_revision`, only if the tenant is still at that revision.
    /// `key_source` says where the tenant's next keys are made (an HSM module must be one this
    /// server configures; existing keys keep their source, see docs/hsm.md). Setting the
    /// current values changes nothing.
    pub async fn update_tenant(
        &self,
        p: &AdminPrincipal,
        name: &TenantName,
        if_revision: Option<i64>,
        settings: TenantSettings,
    ) -> Result<Tenant, AdminError> {
        let TenantSettings {
            signing_alg,
            key_rotation_period,
            key_source,
            token_endpoint_audience,
        } = settings;
        p.require(name)?;
        let current = self.live_tenant(name).await?;
        if if_revision.is_some_and(|rev| rev != current.revision) {
            return Err(AdminError::PreconditionFailed);
        }
        if let Some(period) = key_rotation_period {
            self.key_timing()
                .check_rotation_period(period)
                .map_err(AdminError::Invalid)?;
        }
        if let KeySource::Hsm { module } = &key_source
            && key_source != current.key_source
            && !self.hsm.as_ref().is_some_and(|h| h.has_module(module))
        {
            return Err(AdminError::Invalid(format!(
                "key_source names the HSM module {module:?}, which this server does not configure \
                 (hsm.modules.{module})"
            )));
        }
        if current.signing_alg == signing_alg
            && current.key_rotation_period == key_rotation_period
            && current.key_source == key_source
            && current.token_endpoint_audience == token_endpoint_audience
        {
            return Ok(current);
        }
        let next = Tenant {
            signing_alg,
            key_rotation_period,
            key_source: key_source.clone(),
            token_endpoint_audience,
            updated_at: self.clock.now(),
            revision: current.revision + 1,
            ..current.clone()
        };
        self.store.update_tenant(&next, current.revision).await?;
        self.changed(Change::Tenant { name: name.clone() }).await?;
        tracing::info!(tenant = %name, signing_alg = %signing_alg, ?key_rotation_period, "tenant updated");
        self.audit_admin(
            p,
            name,
            action::TENANT_UPDATE,
            name.as_str(),
            serde_json::json!({
                "signing_alg": signing_alg.as_str(),
                "previous_signing_alg": current.signing_alg.as_str(),
                "key_rotation_period": key_rotation_period,
                "previous_key_rotation_period": current.key_rotation_period,
                "key_source": key_source.to_stored(),
                "previous_key_source": current.key_source.to_stored(),
                "token_endpoint_audience": token_endpoint_audience,
                "revision": next.revision,
            }),
        )
        .await?;
        Ok(next)
    }

    pub async fn get_tenant(
        &self,
        p: &AdminPrincipal,
        name: &TenantName,
    ) -> Result<Tenant, AdminError> {
        p.require(name)?;
        self.live_tenant(name).await
    }

    pub(crate) async fn live_tenant(&self, name: &TenantName) -> Result<Tenant, AdminError> {
        self.store
            .get_tenant(name)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no tenant {name}")))
    }

    /// Tenants the principal may manage, ordered by name.
    pub async fn list_tenants(
        &self,
        p: &AdminPrincipal,
        after: Option<&TenantName>,
        limit: Option<u32>,
    ) -> Result<Vec<Tenant>, AdminError> {
        let limit = page_limit(limit);
        let mut out = Vec::new();
        let mut cursor = after.cloned();
        // A tenant-scoped admin sees only its tenants: filter, and keep reading until the page
        // is full or the store is exhausted.
        loop {
            let batch = self.store.list_tenants(cursor.as_ref(), limit).await?;
            let exhausted = (batch.len() as u32) < limit;
            cursor = batch.last().map(|t| t.name.clone());
            out.extend(batch.into_iter().filter(|t| p.may_manage(&t.name)));
            if exhausted || out.len() as u32 >= limit {
                break;
            }
        }
        out.truncate(limit as usize);
        Ok(out)
    }

    /// Deletes a tenant: its accounts stop authenticating at once, its issuer stops serving, and
    /// its name is never reused. `system` cannot be deleted.
    pub async fn delete_tenant(
        &self,
        p: &AdminPrincipal,
        name: &TenantName,
    ) -> Result<(), AdminError> {
        p.require_global()?;
        if name.is_system() {
            return Err(AdminError::Conflict(
                "the system tenant cannot be deleted".into(),
            ));
        }
        self.live_tenant(name).await?;
        self.store.delete_tenant(name, self.clock.now()).await?;
        self.changed(Change::Tenant { name: name.clone() }).await?;
        tracing::info!(tenant = %name, "tenant deleted");
        self.audit_admin(
            p,
            &TenantName::system(),
            action::TENANT_DELETE,
            name.as_str(),
            serde_json::Value::Null,
        )
        .await?;
        Ok(())
    }
}

/// A tenant's editable settings (`PATCH /admin/v1/tenants/{t}`).
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSettings {
    pub signing_alg: Algorithm,
    pub key_rotation_period: Option<u64>,
    pub key_source: KeySource,
    /// Client assertions may name the token endpoint URL as `aud` (rfc7523bis opt-in).
    pub token_endpoint_audience: bool,
}
