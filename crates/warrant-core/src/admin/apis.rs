//! Registered APIs (docs/apis.md): an audience, the scopes it defines and the account that owns
//! it, and the grant rule they impose — a grant on a registered API's audience may only name
//! that API's scopes. The owner is who may delegate: exchange tokens addressed to the API
//! (`grants/exchange.rs`).
//!
//! The rule is kept from both sides: writing grants checks them against the tenant's APIs, and
//! registering or narrowing an API checks the grants already written. The two checks read
//! before they write, so an API registered at the very moment a conflicting grant is written can
//! let both through; admin writes are rare and the next write to either is checked again.

use super::{AdminError, AdminPrincipal, WALK, check_description, page_limit};
use crate::audit::action;
use crate::ids::{AccountId, AccountRef, ApiId, ApiName, ApiRef, TenantName};
use crate::model::{Api, Grant, ServiceAccount};
use crate::scope::{Audience, Scope, ScopeSet};
use crate::store::Change;
use crate::{StoreError, Warrant};

/// At most this many scopes per API.
pub const MAX_API_SCOPES: usize = 256;

/// The editable part of an API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSpec {
    pub scopes: ScopeSet,
    /// The owning account, by id or name (stored as its id).
    pub owner: AccountRef,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewApi {
    pub name: ApiName,
    /// Fixed at registration: an API's audience is what grants and tokens name.
    pub audience: Audience,
    pub spec: ApiSpec,
}

impl Warrant {
    /// Checks the spec and resolves the owner to a live account of the tenant.
    async fn checked_api_spec(
        &self,
        tenant: &TenantName,
        spec: &ApiSpec,
    ) -> Result<AccountId, AdminError> {
        if spec.scopes.is_empty() {
            return Err(AdminError::Invalid(
                "an API must define at least one scope".into(),
            ));
        }
        if spec.scopes.iter().count() > MAX_API_SCOPES {
            return Err(AdminError::Invalid(format!(
                "an API defines at most {MAX_API_SCOPES} scopes"
            )));
        }
        if let Some(d) = &spec.description {
            check_description(d)?;
        }
        self.referenced_account(tenant, &spec.owner, "owner").await
    }

    pub async fn create_api(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        new: NewApi,
    ) -> Result<Api, AdminError> {
        p.require(tenant)?;
        self.live_tenant(tenant).await?;
        if new.audience.as_str() == self.config.admin_audience() {
            return Err(AdminError::Invalid(
                "the admin audience cannot be registered as an API".into(),
            ));
        }
        let owner = self.checked_api_spec(tenant, &new.spec).await?;
        let apis = self.tenant_apis(tenant).await?;
        if let Some(other) = apis.iter().find(|a| a.audience == new.audience) {
            return Err(AdminError::Conflict(format!(
                "tenant {tenant} already has an API for audience {} ({})",
                new.audience, other.name
            )));
        }
        if apis.iter().any(|a| a.name == new.name) {
            return Err(AdminError::Conflict(format!(
                "tenant {tenant} already has an API named {}",
                new.name
            )));
        }
        self.refuse_conflicting_grants(tenant, &new.name, &new.audience, &new.spec.scopes)
            .await?;
        let now = self.clock.now();
        let id = ApiId::generate(now).map_err(|_| AdminError::Internal("randomness".into()))?;
        let api = Api {
            id,
            tenant: tenant.clone(),
            name: new.name,
            audience: new.audience,
            scopes: new.spec.scopes,
            owner,
            description: new.spec.description,
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        self.store.create_api(&api).await.map_err(|e| match e {
            StoreError::Conflict => AdminError::Conflict(format!(
                "tenant {tenant} already has an API named {} or for audience {}",
                api.name, api.audience
            )),
            other => other.into(),
        })?;
        self.changed(Change::Policies {
            tenant: tenant.clone(),
        })
        .await?;
        tracing::info!(tenant = %tenant, api = %api.id, name = %api.name, "API registered");
        self.audit_admin(
            p,
            tenant,
            action::API_CREATE,
            api.id.as_str(),
            serde_json::json!({
                "name": api.name.as_str(),
                "audience": api.audience.as_str(),
                "scopes": api.scopes.to_delimited(),
                "owner": api.owner.as_str(),
            }),
        )
        .await?;
        Ok(api)
    }

    pub async fn get_api(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        r: &ApiRef,
    ) -> Result<Api, AdminError> {
        p.require(tenant)?;
        self.find_api(tenant, r).await
    }

    async fn find_api(&self, tenant: &TenantName, r: &ApiRef) -> Result<Api, AdminError> {
        let found = match r {
            ApiRef::Id(id) => self.store.get_api(tenant, id).await?,
            ApiRef::Name(n) => self.store.get_api_by_name(tenant, n).await?,
        };
        found.ok_or_else(|| AdminError::NotFound(format!("tenant {tenant} has no such API")))
    }

    pub async fn list_apis(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        after: Option<&ApiId>,
        limit: Option<u32>,
    ) -> Result<Vec<Api>, AdminError> {
        p.require(tenant)?;
        self.live_tenant(tenant).await?;
        Ok(self
            .store
            .list_apis(tenant, after, page_limit(limit))
            .await?)
    }

    /// Replaces the editable fields. With `if_revision`, refuses (412) if the API changed.
    /// Dropping a scope that some account is still granted on the API's audience is refused.
    pub async fn update_api(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        r: &ApiRef,
        if_revision: Option<i64>,
        spec: ApiSpec,
    ) -> Result<Api, AdminError> {
        p.require(tenant)?;
        let current = self.find_api(tenant, r).await?;
        if if_revision.is_some_and(|rev| rev != current.revision) {
            return Err(AdminError::PreconditionFailed);
        }
        let owner = self.checked_api_spec(tenant, &spec).await?;
        if current.scopes.first_missing_from(&spec.scopes).is_some() {
            self.refuse_conflicting_grants(tenant, &current.name, &current.audience, &spec.scopes)
                .await?;
        }
        let mut next = current.clone();
        next.scopes = spec.scopes;
        next.owner = owner;
        next.description = spec.description;
        next.updated_at = self.clock.now();
        next.revision = current.revision + 1;
        self.store.update_api(&next, current.revision).await?;
        self.changed(Change::Policies {
            tenant: tenant.clone(),
        })
        .await?;
        tracing::info!(tenant = %tenant, api = %next.id, "API updated");
        self.audit_admin(
            p,
            tenant,
            action::API_UPDATE,
            next.id.as_str(),
            serde_json::json!({
                "scopes": next.scopes.to_delimited(),
                "owner": next.owner.as_str(),
                "revision": next.revision,
            }),
        )
        .await?;
        Ok(next)
    }

    /// Deletes an API. Grants on its audience stay as they are (they are no longer held to
    /// its scopes); its id is never reused.
    pub async fn delete_api(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        r: &ApiRef,
        if_revision: Option<i64>,
    ) -> Result<(), AdminError> {
        p.require(tenant)?;
        let current = self.find_api(tenant, r).await?;
        if if_revision.is_some_and(|rev| rev != current.revision) {
            return Err(AdminError::PreconditionFailed);
        }
        self.store
            .delete_api(tenant, &current.id, self.clock.now())
            .await?;
        self.changed(Change::Policies {
            tenant: tenant.clone(),
        })
        .await?;
        tracing::info!(tenant = %tenant, api = %current.id, "API deleted");
        self.audit_admin(
            p,
            tenant,
            action::API_DELETE,
            current.id.as_str(),
            serde_json::json!({"name": current.name.as_str()}),
        )
        .await?;
        Ok(())
    }

    /// Every live API of a tenant.
    pub(crate) async fn tenant_apis(&self, tenant: &TenantName) -> Result<Vec<Api>, AdminError> {
        let mut out: Vec<Api> = Vec::new();
        loop {
            let batch = self
                .store
                .list_apis(tenant, out.last().map(|a| &a.id), WALK)
                .await?;
            let done = batch.len() < WALK as usize;
            out.extend(batch);
            if done {
                return Ok(out);
            }
        }
    }

    /// The grant rule, checked when grants are written: each grant on a registered API's
    /// audience names only that API's scopes. Grants equal to one in `unchanged` (the account's
    /// current grants) are not checked again, so that an unrelated change never fails on them.
    pub(crate) async fn check_grant_rule(
        &self,
        tenant: &TenantName,
        grants: &[Grant],
        unchanged: &[Grant],
    ) -> Result<(), AdminError> {
        let changed: Vec<&Grant> = grants.iter().filter(|g| !unchanged.contains(g)).collect();
        if changed.is_empty() {
            return Ok(());
        }
        let apis = self.tenant_apis(tenant).await?;
        for g in changed {
            let Some(api) = apis.iter().find(|a| a.audience == g.audience) else {
                continue;
            };
            if let Some(s) = g.scopes.first_missing_from(&api.scopes) {
                return Err(AdminError::Invalid(format!(
                    "grant on {}: scope {} is not defined by API {} ({}), which defines: {}",
                    g.audience,
                    s.as_str(),
                    api.name,
                    api.id,
                    api.scopes.to_delimited()
                )));
            }
        }
        Ok(())
    }

    /// Refuses (409) if live accounts of the tenant hold grants on `audience` naming scopes
    /// outside `scopes`: registering or narrowing the API would break the grant rule.
    async fn refuse_conflicting_grants(
        &self,
        tenant: &TenantName,
        api: &ApiName,
        audience: &Audience,
        scopes: &ScopeSet,
    ) -> Result<(), AdminError> {
        let mut count = 0usize;
        let mut example: Option<(String, Scope)> = None;
        self.walk_accounts(tenant, |a| {
            if let Some(s) = a
                .grant_for(audience)
                .and_then(|g| g.scopes.first_missing_from(scopes))
            {
                count += 1;
                example.get_or_insert_with(|| (a.name.to_string(), s.clone()));
            }
        })
        .await?;
        match example {
            None => Ok(()),
            Some((account, scope)) => Err(AdminError::Conflict(format!(
                "{count} grant(s) on {audience} name scopes API {api} would not define (account \
                 {account} is granted {}); change those grants first",
                scope.as_str()
            ))),
        }
    }

    /// Calls `f` with every live account of the tenant.
    async fn walk_accounts(
        &self,
        tenant: &TenantName,
        mut f: impl FnMut(&ServiceAccount),
    ) -> Result<(), AdminError> {
        let mut after: Option<AccountId> = None;
        loop {
            let batch = self
                .store
                .list_accounts(tenant, after.as_ref(), WALK)
                .await?;
            batch.iter().for_each(&mut f);
            if batch.len() < WALK as usize {
                return Ok(());
            }
            after = batch.last().map(|a| a.id.clone());
        }
    }

    /// Refuses (409) to delete an account that owns APIs: an API always has a live owner.
    pub(crate) async fn refuse_if_api_owner(&self, a: &ServiceAccount) -> Result<(), AdminError> {
        let owned: Vec<String> = self
            .tenant_apis(&a.tenant)
            .await?
            .into_iter()
            .filter(|api| api.owner == a.id)
            .map(|api| api.name.to_string())
            .collect();
        if owned.is_empty() {
            return Ok(());
        }
        Err(AdminError::Conflict(format!(
            "account {} owns the API(s) {}: give them another owner or delete them first",
            a.name,
            owned.join(", ")
        )))
    }
}
