//! First start: the keyring, the `system` and `default` tenants with their keys, and the
//! `system` tenant's `admin` account. Every step checks before it creates, so a restart (or a
//! start after a crash half-way) completes what is missing and changes nothing else. A tenant
//! an admin deleted is not recreated: its name stays taken.

use std::collections::HashSet;

use crate::ids::{AccountId, AccountName, SecretName, TenantName};
use crate::keyring::{KeyPurpose, KeyringEntry, MasterKey};
use crate::model::{AuthMethod, Grant, SecretRecord, ServiceAccount, Tenant};
use crate::scope::{Audience, Scope, ScopeSet};
use crate::secret::ClientSecret;
use crate::signing::new_key_record;
use crate::{Clock, CoreConfig, CoreError, Store, StoreError};

/// What first start created that the operator must be told about.
#[derive(Debug, Default)]
pub struct BootstrapOutcome {
    /// The admin account and its secret, when they were created by this start.
    pub admin_credentials: Option<(AccountId, ClientSecret)>,
    pub created_tenants: Vec<TenantName>,
}

fn ignore_conflict(r: Result<(), StoreError>) -> Result<bool, CoreError> {
    match r {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn bootstrap(
    store: &dyn Store,
    clock: &dyn Clock,
    master: &MasterKey,
    config: &CoreConfig,
) -> Result<BootstrapOutcome, CoreError> {
    store.migrate().await?;
    // Replicas starting together: one bootstraps, the others then find everything in place.
    let _lock = store.lock_bootstrap().await?;
    let now = clock.now();
    let mut outcome = BootstrapOutcome::default();

    let keyring = store.keyring().await?;
    for purpose in [KeyPurpose::SecretHashing, KeyPurpose::Audit] {
        if !keyring.iter().any(|e| e.purpose == purpose) {
            let e = KeyringEntry::generate(master, purpose, 1, now)?;
            ignore_conflict(store.insert_keyring_entry(&e).await)?;
        }
    }

    let invalid = |e: crate::ids::InvalidName| CoreError::Config(e.to_string());
    let system = TenantName::system();
    for name in [
        system.clone(),
        TenantName::parse(TenantName::DEFAULT).map_err(invalid)?,
    ] {
        if store.get_tenant(&name).await?.is_some() {
            continue;
        }
        let t = Tenant {
            name: name.clone(),
            signing_alg: Tenant::DEFAULT_SIGNING_ALG,
            key_rotation_period: None,
            key_source: Default::default(),
            token_endpoint_audience: false,
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        if ignore_conflict(store.create_tenant(&t).await)? {
            outcome.created_tenants.push(name);
        }
    }

    let keyed: HashSet<TenantName> = store
        .signing_keys(now)
        .await?
        .into_iter()
        .map(|k| k.tenant)
        .collect();
    for name in [
        system.clone(),
        TenantName::parse(TenantName::DEFAULT).map_err(invalid)?,
    ] {
        if let Some(t) = store.get_tenant(&name).await?
            && !keyed.contains(&name)
        {
            let key = new_key_record(master, &name, t.signing_alg, now, now)?;
            store.add_signing_key(&key).await?;
        }
    }

    let system_accounts = store.list_accounts(&system, None, 2).await?;
    match system_accounts.as_slice() {
        [] => outcome.admin_credentials = Some(create_admin(store, master, config, now).await?),
        // The only account is `admin` and it has no secret: a first start that died between
        // creating the account and its secret, or an operator who revoked the last admin
        // secret. Nobody can administer such a deployment, so mint a secret for whoever can
        // read the data directory (the credentials file is written 0600).
        [only]
            if only.name.as_str() == "admin" && store.list_secrets(&only.id).await?.is_empty() =>
        {
            tracing::warn!(account = %only.id, "the admin account has no secret; issuing a new one");
            let secret = add_admin_secret(store, master, &only.id, now).await?;
            outcome.admin_credentials = Some((only.id.clone(), secret));
        }
        _ => {}
    }
    Ok(outcome)
}

async fn create_admin(
    store: &dyn Store,
    master: &MasterKey,
    config: &CoreConfig,
    now: crate::Timestamp,
) -> Result<(AccountId, ClientSecret), CoreError> {
    let cfg = |m: &str| CoreError::Config(m.to_owned());
    let audience =
        Audience::parse(&config.admin_audience()).ok_or_else(|| cfg("bad public_url"))?;
    let scopes = ScopeSet::from_scopes(Scope::parse("admin"));
    let id = AccountId::generate(now).map_err(CoreError::crypto)?;
    let account = ServiceAccount {
        id: id.clone(),
        tenant: TenantName::system(),
        name: AccountName::parse("admin").map_err(|e| cfg(&e.to_string()))?,
        description: "bootstrap administrator".into(),
        enabled: true,
        default_audience: Some(audience.clone()),
        grants: vec![Grant { audience, scopes }],
        default_lifetime: 600.min(config.max_token_lifetime),
        max_lifetime: config.max_token_lifetime,
        claims: Default::default(),
        auth_methods: AuthMethod::SECRET_METHODS.to_vec(),
        credentials: Default::default(),
        created_at: now,
        updated_at: now,
        revision: 1,
    };
    store.create_account(&account).await?;
    let secret = add_admin_secret(store, master, &id, now).await?;
    Ok((id, secret))
}

/// Adds a secret named `initial` to the admin account.
async fn add_admin_secret(
    store: &dyn Store,
    master: &MasterKey,
    id: &AccountId,
    now: crate::Timestamp,
) -> Result<ClientSecret, CoreError> {
    let cfg = |m: &str| CoreError::Config(m.to_owned());
    let entries = store.keyring().await?;
    let hashing = crate::keyring::HashingKeys::load(master, &entries)?;
    let secret = ClientSecret::generate().map_err(CoreError::crypto)?;
    let version = hashing.current();
    let hash = secret
        .hash(&hashing, version)
        .ok_or_else(|| cfg("no current hashing key"))?;
    store
        .add_secret(&SecretRecord {
            account_id: id.clone(),
            name: SecretName::parse("initial").map_err(|e| cfg(&e.to_string()))?,
            hash,
            key_version: version,
            created_at: now,
            expires_at: None,
            last_used_at: None,
        })
        .await?;
    Ok(secret)
}
