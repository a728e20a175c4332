use super::{AdminError, AdminPrincipal};
use crate::audit::action;
use crate::ids::{AccountRef, SecretName, TenantName};
use crate::model::SecretRecord;
use crate::secret::ClientSecret;
use crate::store::Change;
use crate::{StoreError, Timestamp, Warrant};

/// A secret's metadata with its last use as this process knows it.
#[derive(Debug, Clone)]
pub struct SecretView {
    pub name: SecretName,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

/// Secrets per account, so that rotation can overlap and nobody piles up forgotten ones.
pub const MAX_SECRETS_PER_ACCOUNT: usize = 10;

impl Warrant {
    /// Adds a named secret; returns its metadata and the value, shown this once.
    pub async fn add_secret(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        r: &AccountRef,
        name: SecretName,
        expires_at: Option<Timestamp>,
    ) -> Result<(SecretView, ClientSecret), AdminError> {
        p.require(tenant)?;
        let account = self.find_account(tenant, r).await?;
        if !account.auth_methods.iter().any(|m| m.is_secret()) {
            // No downgrade: a key- or certificate-bound account never holds a secret.
            return Err(AdminError::Conflict(format!(
                "account {} authenticates with {} only; it cannot have a secret",
                account.name,
                account
                    .auth_methods
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let now = self.clock.now();
        if expires_at.is_some_and(|t| t <= now) {
            return Err(AdminError::Invalid("expires_at is in the past".into()));
        }
        if self.store.list_secrets(&account.id).await?.len() >= MAX_SECRETS_PER_ACCOUNT {
            return Err(AdminError::Conflict(format!(
                "the account already has {MAX_SECRETS_PER_ACCOUNT} secrets; revoke one first"
            )));
        }
        let secret =
            ClientSecret::generate().map_err(|_| AdminError::Internal("randomness".into()))?;
        let hashing = self.hashing();
        let version = hashing.current();
        let hash = secret
            .hash(&hashing, version)
            .ok_or_else(|| AdminError::Internal("no current hashing key".into()))?;
        let record = SecretRecord {
            account_id: account.id.clone(),
            name,
            hash,
            key_version: version,
            created_at: now,
            expires_at,
            last_used_at: None,
        };
        self.store.add_secret(&record).await.map_err(|e| match e {
            StoreError::Conflict => AdminError::Conflict(format!(
                "the account already has a secret named {}",
                record.name
            )),
            other => other.into(),
        })?;
        self.changed(Change::Account {
            tenant: tenant.clone(),
            id: account.id.clone(),
        })
        .await?;
        tracing::info!(tenant = %tenant, account = %account.id, secret = %record.name, "secret added");
        self.audit_admin(
            p,
            tenant,
            action::SECRET_CREATE,
            account.id.as_str(),
            serde_json::json!({"secret": record.name.as_str()}),
        )
        .await?;
        Ok((
            SecretView {
                name: record.name,
                created_at: now,
                expires_at,
                last_used_at: None,
            },
            secret,
        ))
    }

    pub async fn list_secrets(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        r: &AccountRef,
    ) -> Result<Vec<SecretView>, AdminError> {
        p.require(tenant)?;
        let account = self.find_account(tenant, r).await?;
        let live = self.directory.get(&account.id);
        let records = self.store.list_secrets(&account.id).await?;
        Ok(records
            .into_iter()
            .map(|s| {
                let in_memory = live.as_ref().and_then(|e| {
                    e.secrets
                        .iter()
                        .find(|l| l.name == s.name && l.hash == s.hash)
                        .and_then(|l| l.last_used())
                });
                SecretView {
                    last_used_at: in_memory.max(s.last_used_at),
                    name: s.name,
                    created_at: s.created_at,
                    expires_at: s.expires_at,
                }
            })
            .collect())
    }

    /// Revokes a secret; it stops working at once.
    pub async fn revoke_secret(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
        r: &AccountRef,
        name: &SecretName,
    ) -> Result<(), AdminError> {
        p.require(tenant)?;
        let account = self.find_account(tenant, r).await?;
        self.store
            .revoke_secret(&account.id, name, self.clock.now())
            .await
            .map_err(|e| match e {
                StoreError::NotFound => {
                    AdminError::NotFound(format!("the account has no secret named {name}"))
                }
                other => other.into(),
            })?;
        self.changed(Change::Account {
            tenant: tenant.clone(),
            id: account.id.clone(),
        })
        .await?;
        tracing::info!(tenant = %tenant, account = %account.id, secret = %name, "secret revoked");
        self.audit_admin(
            p,
            tenant,
            action::SECRET_REVOKE,
            account.id.as_str(),
            serde_json::json!({"secret": name.as_str()}),
        )
        .await?;
        Ok(())
    }
}
