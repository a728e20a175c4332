use serde_json::{Map, Value};

use super::{AdminError, AdminPrincipal, check_description, page_limit};
use crate::audit::{Origin, action};
use crate::ids::{AccountId, AccountName, AccountRef, TenantName};
use crate::model::{AccountCredentials, AuthMethod, Grant, ServiceAccount};
use crate::policy;
use crate::scope::Audience;
use crate::store::Change;
use crate::{StoreError, Warrant};

/// The editable part of an account. `None` lifetimes take the defaults (10 minutes, and the
/// server's `max_token_lifetime`, each capped by the server's maximum).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountSpec {
    pub description: String,
    pub enabled: bool,
    pub default_audience: Option<Audience>,
    pub grants: Vec<Grant>,
    pub default_lifetime: Option<u64>,
    pub max_lifetime: Option<u64>,
    pub claims: Map<String, Value>,
    /// Allowed client-authentication methods; `None` derives them from `credentials` (keys →
    /// `private_key_jwt`, a certificate rule → `tls_client_auth`, registered certificates →
    /// `self_signed_tls_client_auth`, nothing → the two secret methods).
    pub auth_methods: Option<Vec<AuthMethod>>,
    pub credentials: AccountCredentials,
}

impl AccountSpec {
    pub fn of(a: &ServiceAccount) -> Self {
        Self {
            description: a.description.clone(),
            enabled: a.enabled,
            default_audience: a.default_audience.clone(),
            grants: a.grants.clone(),
            default_lifetime: Some(a.default_lifetime),
            max_lifetime: Some(a.max_lifetime),
            claims: a.claims.clone(),
            auth_methods: Some(a.auth_methods.clone()),
            credentials: a.credentials.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAccount {
    pub name: AccountName,
    pub spec: AccountSpec,
}

/// Ten minutes: the default token lifetime (DESIGN.md, "Policy").
pub const DEFAULT_LIFETIME: u64 = 600;

impl Warrant {
    fn checked_lifetimes(&self, spec: &AccountSpec) -> Result<(u64, u64), AdminError> {
        let server_max = self.config.max_token_lifetime;
        let max = spec.max_lifetime.unwrap_or(server_max);
        let default = spec.default_lifetime.unwrap_or(DEFAULT_LIFETIME.min(max));
        policy::check_lifetimes(default, max, &self.config)?;
        policy::check_grants(&spec.grants)?;
        policy::check_claims(&spec.claims)?;
        check_description(&spec.description)?;
        Ok((default, max))
    }

    pub async fn create_account(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        new: NewAccount,
    ) -> Result<ServiceAccount, AdminError> {
        p.require(tenant)?;
        self.live_tenant(tenant).await?;
        let (default_lifetime, max_lifetime) = self.checked_lifetimes(&new.spec)?;
        self.check_grant_rule(tenant, &new.spec.grants, &[]).await?;
        let auth_methods =
            policy::check_credentials(new.spec.auth_methods.as_deref(), &new.spec.credentials)?;
        let now = self.clock.now();
        let id = AccountId::generate(now).map_err(|_| AdminError::Internal("randomness".into()))?;
        let s = new.spec;
        let account = ServiceAccount {
            id,
            tenant: tenant.clone(),
            name: new.name,
            description: s.description,
            enabled: s.enabled,
            default_audience: s.default_audience,
            grants: s.grants,
            default_lifetime,
            max_lifetime,
            claims: s.claims,
            auth_methods,
            credentials: s.credentials,
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        self.store
            .create_account(&account)
            .await
            .map_err(|e| match e {
                StoreError::Conflict => AdminError::Conflict(format!(
                    "tenant {tenant} already has an account named {}",
                    account.name
                )),
                other => other.into(),
            })?;
        self.changed(Change::Account {
            tenant: tenant.clone(),
            id: account.id.clone(),
        })
        .await?;
        tracing::info!(tenant = %tenant, account = %account.id, name = %account.name, "account created");
        self.audit_admin(
            p,
            tenant,
            action::ACCOUNT_CREATE,
            account.id.as_str(),
            serde_json::json!({"name": account.name.as_str()}),
        )
        .await?;
        Ok(account)
    }

    pub async fn get_account(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        r: &AccountRef,
    ) -> Result<ServiceAccount, AdminError> {
        p.require(tenant)?;
        self.find_account(tenant, r).await
    }

    pub(crate) async fn find_account(
        &self,
        tenant: &TenantName,
        r: &AccountRef,
    ) -> Result<ServiceAccount, AdminError> {
        let found = match r {
            AccountRef::Id(id) => self.store.get_account(tenant, id).await?,
            AccountRef::Name(n) => self.store.get_account_by_name(tenant, n).await?,
        };
        found.ok_or_else(|| AdminError::NotFound(format!("tenant {tenant} has no such account")))
    }

    /// The id of the live account `r` names, for a record that refers to it in `field`: 409
    /// (not 404) when the tenant has none, since it is the record that cannot be written.
    pub(crate) async fn referenced_account(
        &self,
        tenant: &TenantName,
        r: &AccountRef,
        field: &str,
    ) -> Result<AccountId, AdminError> {
        match self.find_account(tenant, r).await {
            Ok(a) => Ok(a.id),
            Err(AdminError::NotFound(_)) => Err(AdminError::Conflict(format!(
                "{field}: tenant {tenant} has no account {r}"
            ))),
            Err(e) => Err(e),
        }
    }

    pub async fn list_accounts(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        after: Option<&AccountId>,
        limit: Option<u32>,
    ) -> Result<Vec<ServiceAccount>, AdminError> {
        p.require(tenant)?;
        self.live_tenant(tenant).await?;
        Ok(self
            .store
            .list_accounts(tenant, after, page_limit(limit))
            .await?)
    }

    /// Replaces the editable fields. With `if_revision`, refuses (412) if the account changed.
    pub async fn update_account(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        r: &AccountRef,
        if_revision: Option<i64>,
        spec: AccountSpec,
    ) -> Result<ServiceAccount, AdminError> {
        p.require(tenant)?;
        let current = self.find_account(tenant, r).await?;
        if if_revision.is_some_and(|rev| rev != current.revision) {
            return Err(AdminError::PreconditionFailed);
        }
        let (default_lifetime, max_lifetime) = self.checked_lifetimes(&spec)?;
        self.check_grant_rule(tenant, &spec.grants, &current.grants)
            .await?;
        let auth_methods =
            policy::check_credentials(spec.auth_methods.as_deref(), &spec.credentials)?;
        // No downgrade, also over time: an account leaving secrets must hold none, or a later
        // change back to secrets would revive a secret that may be why it left them.
        if !auth_methods.iter().any(|m| m.is_secret())
            && !self.store.list_secrets(&current.id).await?.is_empty()
        {
            return Err(AdminError::Conflict(format!(
                "account {} still has secrets: revoke them before it authenticates with {}",
                current.name,
                auth_methods
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut next = current.clone();
        next.auth_methods = auth_methods;
        next.credentials = spec.credentials;
        next.description = spec.description;
        next.enabled = spec.enabled;
        next.default_audience = spec.default_audience;
        next.grants = spec.grants;
        next.default_lifetime = default_lifetime;
        next.max_lifetime = max_lifetime;
        next.claims = spec.claims;
        next.updated_at = self.clock.now();
        next.revision = current.revision + 1;
        if self.is_admin_account(&current) && !self.is_admin_account(&next) {
            self.refuse_if_last_admin(&current).await?;
        }
        self.store.update_account(&next, current.revision).await?;
        self.changed(Change::Account {
            tenant: tenant.clone(),
            id: next.id.clone(),
        })
        .await?;
        tracing::info!(tenant = %tenant, account = %next.id, enabled = next.enabled, "account updated");
        // Disabling revokes every token the account holds (DESIGN.md: watermarks). Also when a
        // disabled account has no watermark since it was last changed: an earlier disable whose
        // watermark failed is completed by repeating it.
        let unrevoked = !current.enabled
            && self
                .watermark(tenant, next.id.as_str())
                .is_none_or(|nb| nb < current.updated_at.secs());
        if !next.enabled && (current.enabled || unrevoked) {
            self.set_watermark(tenant, next.id.as_str(), &Origin::admin(p))
                .await?;
        }
        self.audit_admin(
            p,
            tenant,
            action::ACCOUNT_UPDATE,
            next.id.as_str(),
            serde_json::json!({"enabled": next.enabled, "revision": next.revision}),
        )
        .await?;
        Ok(next)
    }

    /// Deletes an account: its secrets stop at once; its id is never reused.
    pub async fn delete_account(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        r: &AccountRef,
        if_revision: Option<i64>,
    ) -> Result<(), AdminError> {
        p.require(tenant)?;
        let current = self.find_account(tenant, r).await?;
        if if_revision.is_some_and(|rev| rev != current.revision) {
            return Err(AdminError::PreconditionFailed);
        }
        if self.is_admin_account(&current) {
            self.refuse_if_last_admin(&current).await?;
        }
        self.refuse_if_api_owner(&current).await?;
        self.refuse_if_trusted(&current).await?;
        // The watermark first: if it cannot be written the account stays (and a retry finds
        // it); a watermark for an account that then fails to delete only revokes early.
        self.set_watermark(tenant, current.id.as_str(), &Origin::admin(p))
            .await?;
        self.store
            .delete_account(tenant, &current.id, self.clock.now())
            .await?;
        self.changed(Change::Account {
            tenant: tenant.clone(),
            id: current.id.clone(),
        })
        .await?;
        tracing::info!(tenant = %tenant, account = %current.id, "account deleted");
        self.audit_admin(
            p,
            tenant,
            action::ACCOUNT_DELETE,
            current.id.as_str(),
            serde_json::json!({"name": current.name.as_str()}),
        )
        .await?;
        Ok(())
    }

    /// An enabled `system` account granted the global `admin` scope on the admin audience.
    fn is_admin_account(&self, a: &ServiceAccount) -> bool {
        let aud = self.config.admin_audience();
        a.tenant.is_system()
            && a.enabled
            && a.grants.iter().any(|g| {
                g.audience.as_str() == aud && g.scopes.iter().any(|s| s.as_str() == "admin")
            })
    }

    async fn refuse_if_last_admin(&self, a: &ServiceAccount) -> Result<(), AdminError> {
        let system = TenantName::system();
        let mut after = None;
        loop {
            let batch = self
                .store
                .list_accounts(&system, after.as_ref(), 500)
                .await?;
            if batch
                .iter()
                .any(|o| o.id != a.id && self.is_admin_account(o))
            {
                return Ok(());
            }
            if batch.len() < 500 {
                break;
            }
            after = batch.last().map(|o| o.id.clone());
        }
        Err(AdminError::Conflict(
            "this is the last enabled admin account; create another admin first".into(),
        ))
    }
}
