//! The Store port. Each backend (SQLite, PostgreSQL) implements it in its own crate with its own
//! SQL; the core never branches on the backend. Every store runs the same contract suite
//! (warrant-testkit).

use async_trait::async_trait;

use crate::audit::{AuditBatch, AuditCheckpoint, AuditQuery, SegmentHead, StoredAuditRecord};
use crate::ids::{
    AccountId, AccountName, ApiId, ApiName, SecretName, TenantName, TrustId, TrustName,
};
use crate::keyring::{KeyringEntry, Rewrap};
use crate::model::{Api, SecretRecord, ServiceAccount, SigningKeyRecord, Tenant, Trust};
use crate::revocation::{NewRevocation, RevocationEntry, StoredFeedPage};
use crate::time::Timestamp;

/// Store failures. `Backend` carries the cause for the log; it is never shown to a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique name or id is taken (including by a deleted tenant, whose name is never reused).
    #[error("already exists")]
    Conflict,
    #[error("not found")]
    NotFound,
    /// The row changed since it was read (optimistic concurrency on `revision`).
    #[error("the record was changed concurrently")]
    RevisionMismatch,
    #[error("a stored row is invalid: {0}")]
    Corrupt(String),
    #[error("storage backend error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A change one replica made that the others must see (they refresh their in-memory views).
/// Small on purpose: it names what changed, and each replica re-reads it from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// One account, its grants or its secrets.
    Account { tenant: TenantName, id: AccountId },
    /// A tenant was created or deleted, or its keys changed.
    Tenant { name: TenantName },
    /// New revocations were committed (readers fetch everything after their cursor).
    Revocations,
    /// A tenant's federation trusts or registered APIs changed.
    Policies { tenant: TenantName },
}

impl Change {
    /// The text form carried by store notifications: `account:{tenant}:{id}` or
    /// `tenant:{name}`.
    pub fn encode(&self) -> String {
        match self {
            Change::Account { tenant, id } => format!("account:{tenant}:{id}"),
            Change::Tenant { name } => format!("tenant:{name}"),
            Change::Revocations => "revocations".to_owned(),
            Change::Policies { tenant } => format!("policies:{tenant}"),
        }
    }

    pub fn decode(text: &str) -> Option<Self> {
        if text == "revocations" {
            return Some(Change::Revocations);
        }
        let mut parts = text.split(':');
        match (parts.next()?, parts.next()?, parts.next(), parts.next()) {
            ("account", tenant, Some(id), None) => Some(Change::Account {
                tenant: TenantName::parse(tenant).ok()?,
                id: AccountId::parse(id).ok()?,
            }),
            ("tenant", name, None, None) => Some(Change::Tenant {
                name: TenantName::parse(name).ok()?,
            }),
            ("policies", tenant, None, None) => Some(Change::Policies {
                tenant: TenantName::parse(tenant).ok()?,
            }),
            _ => None,
        }
    }
}

/// New retirement and removal times of one stored signing key (see
/// [`Store::rotate_signing_keys`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTimes {
    pub kid: String,
    pub retires_at: Option<Timestamp>,
    pub removed_at: Option<Timestamp>,
}

/// A migration known to this build and whether the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub version: i64,
    pub name: String,
    /// `None`: pending.
    pub applied_at: Option<Timestamp>,
}

/// Every row of a store, deleted and revoked ones included (their names and ids stay taken), for
/// moving a deployment from one store to another. Secret hashes and keys stay wrapped: the
/// snapshot is useless without the master key, like the database it came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub keyring: Vec<KeyringEntry>,
    /// Each tenant with the time it was deleted, if it was.
    pub tenants: Vec<(Tenant, Option<Timestamp>)>,
    /// Each account with the time it was deleted, if it was.
    pub accounts: Vec<(ServiceAccount, Option<Timestamp>)>,
    /// Each secret with the time it was revoked, if it was.
    pub secrets: Vec<(SecretRecord, Option<Timestamp>)>,
    /// Each registered API with the time it was deleted, if it was.
    pub apis: Vec<(Api, Option<Timestamp>)>,
    /// Each federation trust with the time it was deleted, if it was.
    pub trusts: Vec<(Trust, Option<Timestamp>)>,
    pub signing_keys: Vec<SigningKeyRecord>,
    /// Live revocation entries with their cursors (the importing store keeps the cursors, so
    /// verifiers' resume points stay valid), and each tenant's `pruned_through`.
    pub revocations: Vec<RevocationEntry>,
    pub revocations_pruned: Vec<(TenantName, i64)>,
    /// The audit log: records (with their ids), segment heads and checkpoints.
    pub audit_records: Vec<StoredAuditRecord>,
    pub audit_segments: Vec<SegmentHead>,
    pub audit_checkpoints: Vec<AuditCheckpoint>,
}

impl Snapshot {
    pub fn is_empty(&self) -> bool {
        self.keyring.is_empty()
            && self.tenants.is_empty()
            && self.accounts.is_empty()
            && self.secrets.is_empty()
            && self.apis.is_empty()
            && self.trusts.is_empty()
            && self.signing_keys.is_empty()
            && self.revocations.is_empty()
            && self.audit_records.is_empty()
            && self.audit_segments.is_empty()
            && self.audit_checkpoints.is_empty()
    }
}

/// Changes published by every replica (including this one), in order per publisher.
#[async_trait]
pub trait ChangeFeed: Send {
    /// The next change. An error means the feed broke and changes may have been missed: the
    /// caller reloads everything and subscribes again.
    async fn next(&mut self) -> StoreResult<Change>;
}

/// Held while first-start bootstrap runs, so that replicas starting together create one set of
/// tenants, keys and admin. Released when dropped.
pub trait BootstrapLock: Send {}

/// A lock for stores with a single process (SQLite: the data-directory lock already excludes
/// other servers).
#[derive(Debug)]
pub struct NoLock;
impl BootstrapLock for NoLock {}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending migrations; idempotent.
    async fn migrate(&self) -> StoreResult<()>;

    /// Every migration this build knows, with its state in the database.
    async fn migrations(&self) -> StoreResult<Vec<MigrationState>>;

    /// Every row, deleted and revoked ones included, in a consistent view.
    async fn export(&self) -> StoreResult<Snapshot>;
    /// Loads a snapshot into this migrated, empty store in one transaction (`Conflict` if the
    /// store is not empty). Afterwards `export()` returns an equal snapshot.
    async fn import(&self, snapshot: &Snapshot) -> StoreResult<()>;

    // --- replicas ---
    /// Excludes other replicas' bootstrap until the guard is dropped.
    async fn lock_bootstrap(&self) -> StoreResult<Box<dyn BootstrapLock>> {
        Ok(Box::new(NoLock))
    }
    /// Tells other replicas about a change (best effort: a replica that misses it catches up
    /// at its next full reload). Single-process stores have no one to tell.
    async fn publish(&self, _change: &Change) -> StoreResult<()> {
        Ok(())
    }
    /// Subscribes to every replica's changes; `None` for single-process stores.
    async fn subscribe(&self) -> StoreResult<Option<Box<dyn ChangeFeed>>> {
        Ok(None)
    }

    // --- keyring ---
    async fn keyring(&self) -> StoreResult<Vec<KeyringEntry>>;
    /// `Conflict` if that purpose and version exist.
    async fn insert_keyring_entry(&self, entry: &KeyringEntry) -> StoreResult<()>;
    /// Master-key rotation, in one transaction (all or nothing): replaces the wrapped bytes of
    /// every keyring entry (by purpose and version) and signing key (by tenant and kid) named
    /// in `rewrap`, then inserts `rewrap.added`. `NotFound` if a named entry or key is missing;
    /// `RevisionMismatch` if the store holds an entry or key that `rewrap` does not name (one
    /// was added since they were read: it would stay wrapped under the old key); `Conflict` if
    /// an added entry exists.
    async fn rewrap(&self, rewrap: &Rewrap) -> StoreResult<()>;

    // --- tenants ---
    /// `Conflict` if the name is taken by a live or a deleted tenant.
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    /// Live tenants only.
    async fn get_tenant(&self, name: &TenantName) -> StoreResult<Option<Tenant>>;
    /// Live tenants ordered by name, after `after`.
    async fn list_tenants(
        &self,
        after: Option<&TenantName>,
        limit: u32,
    ) -> StoreResult<Vec<Tenant>>;
    /// Replaces the tenant's editable fields (`signing_alg`, `key_rotation_period`,
    /// `updated_at`) if its stored revision
    /// is `expected_revision`; the new record carries `expected_revision + 1`.
    /// `RevisionMismatch` otherwise, `NotFound` if it is gone.
    async fn update_tenant(&self, tenant: &Tenant, expected_revision: i64) -> StoreResult<()>;
    /// Marks the tenant deleted (its name stays taken) and deletes its accounts, APIs and trusts.
    async fn delete_tenant(&self, name: &TenantName, at: Timestamp) -> StoreResult<()>;

    // --- service accounts ---
    /// `Conflict` if a live account of the tenant has that name.
    async fn create_account(&self, account: &ServiceAccount) -> StoreResult<()>;
    async fn get_account(
        &self,
        tenant: &TenantName,
        id: &AccountId,
    ) -> StoreResult<Option<ServiceAccount>>;
    async fn get_account_by_name(
        &self,
        tenant: &TenantName,
        name: &AccountName,
    ) -> StoreResult<Option<ServiceAccount>>;
    /// Live accounts of a tenant ordered by id, after `after`.
    async fn list_accounts(
        &self,
        tenant: &TenantName,
        after: Option<&AccountId>,
        limit: u32,
    ) -> StoreResult<Vec<ServiceAccount>>;
    /// Every live account of every live tenant (to build the in-memory directory).
    async fn all_accounts(&self) -> StoreResult<Vec<ServiceAccount>>;
    /// Replaces the account if its stored revision is `expected_revision`; the new record
    /// carries `expected_revision + 1`. `RevisionMismatch` otherwise, `NotFound` if gone.
    async fn update_account(
        &self,
        account: &ServiceAccount,
        expected_revision: i64,
    ) -> StoreResult<()>;
    /// Marks the account deleted; its id is never reused, its secrets stop working.
    async fn delete_account(
        &self,
        tenant: &TenantName,
        id: &AccountId,
        at: Timestamp,
    ) -> StoreResult<()>;

    // --- registered APIs ---
    /// `Conflict` if a live API of the tenant has that name or audience, or the id is taken.
    async fn create_api(&self, api: &Api) -> StoreResult<()>;
    /// Live APIs only.
    async fn get_api(&self, tenant: &TenantName, id: &ApiId) -> StoreResult<Option<Api>>;
    async fn get_api_by_name(
        &self,
        tenant: &TenantName,
        name: &ApiName,
    ) -> StoreResult<Option<Api>>;
    /// Live APIs of a tenant ordered by id, after `after`.
    async fn list_apis(
        &self,
        tenant: &TenantName,
        after: Option<&ApiId>,
        limit: u32,
    ) -> StoreResult<Vec<Api>>;
    /// Replaces the API's `scopes`, `owner`, `description` and `updated_at` if its stored
    /// revision is `expected_revision`; the new record carries `expected_revision + 1`.
    /// `RevisionMismatch` otherwise, `NotFound` if it is gone.
    async fn update_api(&self, api: &Api, expected_revision: i64) -> StoreResult<()>;
    /// Marks the API deleted (its id is never reused; its name and audience become free).
    /// `NotFound` if there is no live API with that id.
    async fn delete_api(&self, tenant: &TenantName, id: &ApiId, at: Timestamp) -> StoreResult<()>;

    // --- federation trusts ---
    /// `Conflict` if a live trust of the tenant has that name, or the id is taken.
    async fn create_trust(&self, trust: &Trust) -> StoreResult<()>;
    /// Live trusts only.
    async fn get_trust(&self, tenant: &TenantName, id: &TrustId) -> StoreResult<Option<Trust>>;
    async fn get_trust_by_name(
        &self,
        tenant: &TenantName,
        name: &TrustName,
    ) -> StoreResult<Option<Trust>>;
    /// Live trusts of a tenant ordered by id, after `after`.
    async fn list_trusts(
        &self,
        tenant: &TenantName,
        after: Option<&TrustId>,
        limit: u32,
    ) -> StoreResult<Vec<Trust>>;
    /// Replaces the trust's `policy` and `updated_at` if its stored revision is
    /// `expected_revision`; the new record carries `expected_revision + 1`.
    /// `RevisionMismatch` otherwise, `NotFound` if it is gone.
    async fn update_trust(&self, trust: &Trust, expected_revision: i64) -> StoreResult<()>;
    /// Marks the trust deleted (its id is never reused; its name becomes free).
    /// `NotFound` if there is no live trust with that id.
    async fn delete_trust(
        &self,
        tenant: &TenantName,
        id: &TrustId,
        at: Timestamp,
    ) -> StoreResult<()>;

    // --- secrets ---
    /// `Conflict` if the account has a live secret of that name.
    async fn add_secret(&self, secret: &SecretRecord) -> StoreResult<()>;
    /// Live (not revoked) secrets of an account, ordered by name.
    async fn list_secrets(&self, account: &AccountId) -> StoreResult<Vec<SecretRecord>>;
    /// Every live secret of every live account.
    async fn all_secrets(&self) -> StoreResult<Vec<SecretRecord>>;
    /// `NotFound` if there is no live secret of that name.
    async fn revoke_secret(
        &self,
        account: &AccountId,
        name: &SecretName,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Records last-used times (batched; at most once a minute per secret).
    async fn touch_secrets(&self, used: &[(AccountId, SecretName, Timestamp)]) -> StoreResult<()>;

    // --- signing keys ---
    async fn add_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    /// Keys of live tenants, not yet removed at `now`, ordered by activation.
    async fn signing_keys(&self, now: Timestamp) -> StoreResult<Vec<SigningKeyRecord>>;
    /// All keys of one tenant (for `key list`), newest first.
    async fn tenant_signing_keys(&self, tenant: &TenantName) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Sets one key's `retires_at` and `removed_at` (`None` clears). `NotFound` if the tenant
    /// has no key `kid`.
    async fn update_signing_key_times(
        &self,
        tenant: &TenantName,
        kid: &str,
        retires_at: Option<Timestamp>,
        removed_at: Option<Timestamp>,
    ) -> StoreResult<()>;
    /// A key rotation or revocation, in ONE transaction: inserts `new` (if any) and applies
    /// every `updates` entry to the tenant's existing keys, so that no replica ever reads a
    /// retired key without its successor, or a successor without its predecessor's retirement.
    /// `Conflict` if `new`'s kid exists; `NotFound` (and nothing written) if an update names a
    /// kid the tenant does not have.
    async fn rotate_signing_keys(
        &self,
        tenant: &TenantName,
        new: Option<&SigningKeyRecord>,
        updates: &[KeyTimes],
    ) -> StoreResult<()>;

    // --- revocations ---
    /// Stores a revocation and returns it with its cursor. Cursors are assigned in commit
    /// order across every writer (a reader that has seen cursor N never later finds a new
    /// entry below N): PostgreSQL serialises these inserts under an advisory lock.
    async fn add_revocation(&self, revocation: &NewRevocation) -> StoreResult<RevocationEntry>;
    /// One tenant's entries with cursor > `after` (all kept entries if `None`), ascending, at
    /// most `limit`, with the tenant's `pruned_through` and the store's head cursor.
    async fn revocation_feed(
        &self,
        tenant: &TenantName,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<StoredFeedPage>;
    /// Every tenant's entries with cursor > `after`, ascending, at most `limit` (replicas
    /// catching up their in-memory set).
    async fn revocations_after(&self, after: i64, limit: u32) -> StoreResult<Vec<RevocationEntry>>;
    /// Per tenant, deletes the longest prefix (by cursor) of entries whose `prune_after` is
    /// before `now`, and raises the tenant's `pruned_through` to the last deleted cursor.
    /// Returns how many were deleted.
    async fn prune_revocations(&self, now: Timestamp) -> StoreResult<u64>;

    // --- single-use identifiers (client assertions, DPoP proofs) ---
    /// Records `jti` (of `kind`, in `tenant`) as used until `expires_at`: `true` the first
    /// time, `false` while an earlier use is still recorded — on every replica sharing the
    /// store. An entry past its `expires_at` (compared with `now`) may be used again.
    async fn use_once(
        &self,
        tenant: &TenantName,
        kind: &str,
        jti: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// [`Store::use_once`] for several identifiers in one transaction (one commit): the answers
    /// in order, each as it would be alone — a repeat within the batch is `false`.
    async fn use_once_batch(&self, jtis: &[UsedJti], now: Timestamp) -> StoreResult<Vec<bool>> {
        let mut out = Vec::with_capacity(jtis.len());
        for j in jtis {
            out.push(
                self.use_once(&j.tenant, j.kind, &j.jti, j.expires_at, now)
                    .await?,
            );
        }
        Ok(out)
    }
    /// Removes entries expired at `now`; the number removed.
    async fn prune_used_jtis(&self, now: Timestamp) -> StoreResult<u64>;

    // --- audit ---
    /// Inserts the records and upserts the segment heads in one durable transaction (the
    /// caller returns tokens only after this succeeds). `Conflict` if a (tenant, segment, seq)
    /// exists.
    async fn append_audit(&self, batch: &AuditBatch) -> StoreResult<()>;
    /// Records of one tenant matching the query, ordered by id.
    async fn query_audit(&self, query: &AuditQuery) -> StoreResult<Vec<StoredAuditRecord>>;
    /// Every segment of a tenant, ordered by (created_at, segment).
    async fn audit_segments(&self, tenant: &TenantName) -> StoreResult<Vec<SegmentHead>>;
    /// Records of one segment with seq > `after_seq`, ascending, at most `limit`.
    async fn audit_segment_records(
        &self,
        tenant: &TenantName,
        segment: &str,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredAuditRecord>>;
    /// `Conflict` if that (tenant, segment, seq) already has one.
    async fn add_audit_checkpoint(&self, checkpoint: &AuditCheckpoint) -> StoreResult<()>;
    /// Every checkpoint of a tenant, ordered by (segment, seq).
    async fn audit_checkpoints(&self, tenant: &TenantName) -> StoreResult<Vec<AuditCheckpoint>>;
    /// Deletes a segment's records with seq ≤ `through_seq` and sets its anchor to
    /// (`through_seq`, `anchor_hash`) in one transaction. Returns how many were deleted.
    async fn prune_audit(
        &self,
        tenant: &TenantName,
        segment: &str,
        through_seq: i64,
        anchor_hash: &str,
    ) -> StoreResult<u64>;
}

/// One single-use identifier to record (see [`Store::use_once`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedJti {
    pub tenant: TenantName,
    /// `client_assertion` or `dpop`.
    pub kind: &'static str,
    pub jti: String,
    pub expires_at: Timestamp,
}

/// Text encodings of composite fields that every store keeps as JSON text, so that the stores
/// agree byte for byte (an export from one imports into the other).
pub mod codec {
    use serde_json::{Map, Value, json};
    use warrant_jose::Algorithm;

    use super::StoreError;
    use crate::client_auth::CertificateMatch;
    use crate::model::{AccountCredentials, AuthMethod, Grant};
    use crate::scope::{Audience, Scope, ScopeSet};

    fn corrupt(what: &str) -> StoreError {
        StoreError::Corrupt(format!("invalid {what}"))
    }

    pub fn grants_to_json(grants: &[Grant]) -> String {
        Value::Array(
            grants
                .iter()
                .map(|g| {
                    json!({
                        "audience": g.audience.as_str(),
                        "scopes": g.scopes.iter().map(Scope::as_str).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
        .to_string()
    }

    pub fn grants_from_json(text: &str) -> Result<Vec<Grant>, StoreError> {
        let v: Value = serde_json::from_str(text).map_err(|_| corrupt("grants"))?;
        v.as_array()
            .ok_or_else(|| corrupt("grants"))?
            .iter()
            .map(|g| {
                let audience = g
                    .get("audience")
                    .and_then(Value::as_str)
                    .and_then(Audience::parse)
                    .ok_or_else(|| corrupt("grant audience"))?;
                let scopes = g
                    .get("scopes")
                    .and_then(Value::as_array)
                    .ok_or_else(|| corrupt("grant scopes"))?
                    .iter()
                    .map(|s| s.as_str().and_then(Scope::parse))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| corrupt("grant scope"))?;
                Ok(Grant {
                    audience,
                    scopes: ScopeSet::from_scopes(scopes),
                })
            })
            .collect()
    }

    /// A scope set as a JSON array of its tokens, in order.
    pub fn scopes_to_json(scopes: &ScopeSet) -> String {
        Value::Array(scopes.iter().map(|s| Value::from(s.as_str())).collect()).to_string()
    }

    pub fn scopes_from_json(text: &str) -> Result<ScopeSet, StoreError> {
        let v: Vec<String> = serde_json::from_str(text).map_err(|_| corrupt("scopes"))?;
        v.iter()
            .map(|s| Scope::parse(s))
            .collect::<Option<Vec<_>>>()
            .map(ScopeSet::from_scopes)
            .ok_or_else(|| corrupt("scope"))
    }

    /// A trust policy as JSON text (its own serde form, `account` included).
    pub fn trust_policy_to_json(p: &crate::federation::TrustPolicy) -> Result<String, StoreError> {
        serde_json::to_string(p).map_err(|_| StoreError::Corrupt("unserialisable trust".into()))
    }

    pub fn trust_policy_from_json(
        text: &str,
    ) -> Result<crate::federation::TrustPolicy, StoreError> {
        serde_json::from_str(text).map_err(|_| corrupt("trust policy"))
    }

    pub fn claims_to_json(claims: &Map<String, Value>) -> String {
        Value::Object(claims.clone()).to_string()
    }

    pub fn claims_from_json(text: &str) -> Result<Map<String, Value>, StoreError> {
        match serde_json::from_str(text) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(corrupt("claims")),
        }
    }

    pub fn methods_to_json(methods: &[AuthMethod]) -> String {
        Value::Array(methods.iter().map(|m| Value::from(m.as_str())).collect()).to_string()
    }

    pub fn methods_from_json(text: &str) -> Result<Vec<AuthMethod>, StoreError> {
        let v: Vec<String> = serde_json::from_str(text).map_err(|_| corrupt("auth methods"))?;
        v.iter()
            .map(|m| AuthMethod::parse(m).ok_or_else(|| corrupt("auth method")))
            .collect()
    }

    pub fn alg_from_str(s: &str) -> Result<Algorithm, StoreError> {
        Algorithm::parse(s).map_err(|_| corrupt("algorithm"))
    }

    /// The stored form of [`AccountCredentials`]: a JSON object, members omitted when empty
    /// (`{}` for a secret-only account).
    #[derive(serde::Serialize, serde::Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct StoredCredentials {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jwks: Option<warrant_jose::JwkSet>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jwks_uri: Option<String>,
        /// `["subject_dn" | "san_dns" | "san_uri", value]`
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls_client_auth: Option<(String, String)>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        self_signed_certificates: Vec<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        dpop_required: bool,
    }

    pub fn credentials_to_json(c: &AccountCredentials) -> String {
        let stored = StoredCredentials {
            jwks: c.jwks.clone(),
            jwks_uri: c.jwks_uri.clone(),
            tls_client_auth: c.tls_client_auth.as_ref().map(|m| {
                let (k, v) = m.parts();
                (k.to_owned(), v.to_owned())
            }),
            self_signed_certificates: c.self_signed_certificates.clone(),
            dpop_required: c.dpop_required,
        };
        serde_json::to_string(&stored).unwrap_or_else(|_| "{}".into())
    }

    pub fn credentials_from_json(text: &str) -> Result<AccountCredentials, StoreError> {
        let s: StoredCredentials =
            serde_json::from_str(text).map_err(|_| corrupt("account credentials"))?;
        let tls_client_auth = match s.tls_client_auth {
            None => None,
            Some((k, v)) => Some(
                CertificateMatch::from_parts(&k, v)
                    .ok_or_else(|| corrupt("tls_client_auth rule"))?,
            ),
        };
        Ok(AccountCredentials {
            jwks: s.jwks,
            jwks_uri: s.jwks_uri,
            tls_client_auth,
            self_signed_certificates: s.self_signed_certificates,
            dpop_required: s.dpop_required,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Change;
    use crate::ids::{AccountId, TenantName};

    #[test]
    fn every_change_survives_its_text_form() {
        let tenant = TenantName::parse("acme").unwrap();
        let id = AccountId::parse("sa_01JH0000000000000000000000").unwrap();
        for change in [
            Change::Account {
                tenant: tenant.clone(),
                id,
            },
            Change::Tenant {
                name: tenant.clone(),
            },
            Change::Revocations,
            Change::Policies { tenant },
        ] {
            assert_eq!(Change::decode(&change.encode()), Some(change.clone()));
        }
        assert_eq!(Change::decode("policies:"), None);
        assert_eq!(Change::decode("policies:a:b"), None);
        assert_eq!(Change::decode("nonsense"), None);
    }
}
