use std::collections::HashMap;
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::PgExecutor;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use warrant_core::audit::{
    AuditBatch, AuditCheckpoint, AuditQuery, SegmentHead, StoredAuditRecord,
};
use warrant_core::keyring::{KeyringEntry, Rewrap};
use warrant_core::model::{Api, SecretRecord, ServiceAccount, SigningKeyRecord, Tenant, Trust};
use warrant_core::revocation::{NewRevocation, RevocationEntry, StoredFeedPage};
use warrant_core::store::{BootstrapLock, KeyTimes, StoreResult, codec};
use warrant_core::{
    AccountId, AccountName, ApiId, ApiName, Change, ChangeFeed, MigrationState, SecretName,
    Snapshot, Store, StoreError, TenantName, Timestamp, TrustId, TrustName,
};

use crate::migrate::MIGRATIONS;
use crate::rows::FetchRows;
use crate::{apis, audit, revocations, rows, trusts};

/// Maps a database error: unique violations are `Conflict`, the rest `Backend` (logged only).
pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    if let Some(db) = e.as_database_error()
        && db.is_unique_violation()
    {
        return StoreError::Conflict;
    }
    StoreError::Backend(e.to_string())
}

/// The PostgreSQL store. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

const ACCOUNT_COLS: &str = "id, tenant, name, description, enabled, default_audience, grants, \
     default_lifetime, max_lifetime, claims, auth_methods, credentials, created_at, updated_at, revision";

const KEYRING_SQL: &str =
    "SELECT purpose, version, wrapped, created_at FROM keyring ORDER BY purpose, version";

impl PostgresStore {
    /// Connects to a `postgres:` URL (`postgres://user@host:5432/db`). The tables live in the
    /// first schema of the connection's `search_path` (set it with the URL's `options`
    /// parameter, or use [`PostgresStore::connect_with`]).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        // The URL may hold a password: the error never repeats it.
        let opts = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Backend("invalid postgres URL".into()))?;
        Self::connect_with(opts).await
    }

    /// Connects with explicit options, e.g. a URL's options with a `search_path`:
    /// `PgConnectOptions::from_str(url)?.options([("search_path", "warrant")])`.
    pub async fn connect_with(opts: PgConnectOptions) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .map_err(backend)?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn ms(t: Timestamp) -> i64 {
    t.millis()
}

fn opt_ms(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::millis)
}

/// The channel every replica listens on (payload: [`Change::encode`]).
pub const CHANGES_CHANNEL: &str = "warrant_changes";
/// Advisory-lock key of first-start bootstrap ("WRNTBOOT").
const BOOTSTRAP_LOCK: i64 = 0x5752_4e54_424f_4f54;

/// Holds a transaction-scoped advisory lock; dropping the transaction releases it, even if the
/// holder panics or its connection dies.
struct PgBootstrapLock(#[allow(dead_code)] sqlx::Transaction<'static, sqlx::Postgres>);
impl BootstrapLock for PgBootstrapLock {}

/// LISTEN on [`CHANGES_CHANNEL`].
struct PgChangeFeed(PgListener);

#[async_trait]
impl ChangeFeed for PgChangeFeed {
    async fn next(&mut self) -> StoreResult<Change> {
        loop {
            match self.0.try_recv().await.map_err(backend)? {
                // The listener lost its connection (it reconnects by itself): notifications may
                // have been missed, which the caller handles by reloading everything.
                None => {
                    return Err(StoreError::Backend(
                        "the change listener reconnected; changes may have been missed".into(),
                    ));
                }
                Some(n) => match Change::decode(n.payload()) {
                    Some(change) => return Ok(change),
                    None => tracing::warn!(
                        payload = n.payload(),
                        "ignoring an unknown change notification"
                    ),
                },
            }
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn lock_bootstrap(&self) -> StoreResult<Box<dyn BootstrapLock>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(BOOTSTRAP_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        Ok(Box::new(PgBootstrapLock(tx)))
    }

    async fn publish(&self, change: &Change) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGES_CHANNEL)
            .bind(change.encode())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn subscribe(&self) -> StoreResult<Option<Box<dyn ChangeFeed>>> {
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(backend)?;
        listener.listen(CHANGES_CHANNEL).await.map_err(backend)?;
        Ok(Some(Box::new(PgChangeFeed(listener))))
    }

    async fn migrate(&self) -> StoreResult<()> {
        let now: i64 =
            sqlx::query_scalar("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT")
                .fetch_one(&self.pool)
                .await
                .map_err(backend)?;
        crate::migrate::run(&self.pool, now).await
    }

    async fn migrations(&self) -> StoreResult<Vec<MigrationState>> {
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(backend)?;
        // `to_regclass` resolves the name through the search_path, like every other query.
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass('schema_migrations') IS NOT NULL")
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
        let applied: HashMap<i64, i64> = if exists {
            sqlx::query_as::<_, (i64, i64)>("SELECT version, applied_at FROM schema_migrations")
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?
                .into_iter()
                .collect()
        } else {
            HashMap::new()
        };
        tx.commit().await.map_err(backend)?;
        Ok(MIGRATIONS
            .iter()
            .map(|(version, name, _)| MigrationState {
                version: *version,
                name: (*name).to_owned(),
                applied_at: applied.get(version).copied().map(Timestamp::from_millis),
            })
            .collect())
    }

    async fn export(&self) -> StoreResult<Snapshot> {
        // One snapshot for every read: a consistent view while other replicas keep writing.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(backend)?;
        let keyring = sqlx::query(KEYRING_SQL)
            .fetch_rows(&mut *tx, rows::keyring_entry)
            .await?;
        let tenants = sqlx::query(
            "SELECT name, signing_alg, key_rotation_period, key_source, token_endpoint_audience, created_at, updated_at, revision, deleted_at FROM tenants \
             ORDER BY name",
        )
        .fetch_rows(&mut *tx, rows::tenant_with_deleted)
        .await?;
        let sql = format!("SELECT {ACCOUNT_COLS}, deleted_at FROM service_accounts ORDER BY id");
        let accounts = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_rows(&mut *tx, rows::account_with_deleted)
            .await?;
        let apis = apis::TABLE.export(&mut *tx).await?;
        let trusts = trusts::TABLE.export(&mut *tx).await?;
        // No primary key: the order ends with the hash so that equal exports compare equal.
        let secrets = sqlx::query(
            "SELECT account_id, name, hash, key_version, created_at, expires_at, last_used_at, \
             revoked_at FROM secrets \
             ORDER BY account_id, name, created_at, revoked_at NULLS FIRST, hash",
        )
        .fetch_rows(&mut *tx, rows::secret_with_revoked)
        .await?;
        let signing_keys = sqlx::query(
            "SELECT kid, tenant, alg, private_wrapped, hsm_module, hsm_label, created_at, activates_at, retires_at, \
             removed_at FROM signing_keys ORDER BY tenant, activates_at, kid",
        )
        .fetch_rows(&mut *tx, rows::signing_key)
        .await?;
        let (revocations, revocations_pruned) = revocations::export(&mut tx).await?;
        let (audit_records, audit_segments, audit_checkpoints) = audit::export(&mut tx).await?;
        tx.commit().await.map_err(backend)?;
        Ok(Snapshot {
            keyring,
            tenants,
            accounts,
            secrets,
            apis,
            trusts,
            signing_keys,
            revocations,
            revocations_pruned,
            audit_records,
            audit_segments,
            audit_checkpoints,
        })
    }

    async fn import(&self, snapshot: &Snapshot) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Excludes every other writer (and another import) until commit, so the emptiness
        // check below still holds when the rows go in.
        sqlx::query(
            "LOCK TABLE keyring, tenants, service_accounts, secrets, signing_keys, \
             revocation_head, revocations, revocations_pruned, audit_records, audit_segments, \
             audit_checkpoints, apis, trusts IN SHARE ROW EXCLUSIVE MODE",
        )
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let used: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM keyring) OR EXISTS (SELECT 1 FROM tenants) \
             OR EXISTS (SELECT 1 FROM service_accounts) OR EXISTS (SELECT 1 FROM secrets) \
             OR EXISTS (SELECT 1 FROM signing_keys) OR EXISTS (SELECT 1 FROM revocations) \
             OR EXISTS (SELECT 1 FROM revocations_pruned) OR EXISTS (SELECT 1 FROM audit_records) \
             OR EXISTS (SELECT 1 FROM audit_segments) \
             OR EXISTS (SELECT 1 FROM audit_checkpoints) OR EXISTS (SELECT 1 FROM apis) \
             OR EXISTS (SELECT 1 FROM trusts)",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        if used {
            return Err(StoreError::Conflict);
        }
        // Foreign-key order; a failure drops `tx`, which rolls everything back.
        for e in &snapshot.keyring {
            insert_keyring_row(&mut *tx, e).await?;
        }
        for (t, deleted_at) in &snapshot.tenants {
            insert_tenant_row(&mut *tx, t, *deleted_at).await?;
        }
        for (a, deleted_at) in &snapshot.accounts {
            insert_account_row(&mut *tx, a, *deleted_at).await?;
        }
        for (s, revoked_at) in &snapshot.secrets {
            insert_secret_row(&mut *tx, s, *revoked_at).await?;
        }
        for (a, deleted_at) in &snapshot.apis {
            apis::insert(&mut *tx, a, *deleted_at).await?;
        }
        for (t, deleted_at) in &snapshot.trusts {
            trusts::insert(&mut *tx, t, *deleted_at).await?;
        }
        for k in &snapshot.signing_keys {
            insert_signing_key_row(&mut *tx, k).await?;
        }
        revocations::import(&mut tx, &snapshot.revocations, &snapshot.revocations_pruned).await?;
        audit::import(
            &mut tx,
            &snapshot.audit_records,
            &snapshot.audit_segments,
            &snapshot.audit_checkpoints,
        )
        .await?;
        tx.commit().await.map_err(backend)
    }

    async fn keyring(&self) -> StoreResult<Vec<KeyringEntry>> {
        sqlx::query(KEYRING_SQL)
            .fetch_rows(&self.pool, rows::keyring_entry)
            .await
    }

    async fn insert_keyring_entry(&self, e: &KeyringEntry) -> StoreResult<()> {
        insert_keyring_row(&self.pool, e).await
    }

    async fn rewrap(&self, rewrap: &Rewrap) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Excludes other writers of these tables until commit, so that no key can be added
        // between the updates and the completeness check.
        sqlx::query("LOCK TABLE keyring, signing_keys IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // A failure drops `tx`, which rolls everything back.
        for e in &rewrap.keyring {
            let done =
                sqlx::query("UPDATE keyring SET wrapped = $1 WHERE purpose = $2 AND version = $3")
                    .bind(&e.wrapped)
                    .bind(e.purpose.as_str())
                    .bind(i64::from(e.version))
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        }
        for (tenant, kid, wrapped) in &rewrap.signing_keys {
            let done = sqlx::query(
                "UPDATE signing_keys SET private_wrapped = $1 WHERE tenant = $2 AND kid = $3",
            )
            .bind(wrapped)
            .bind(tenant.as_str())
            .bind(kid)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        }
        let (entries, keys): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM keyring), (SELECT COUNT(*) FROM signing_keys)",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        if usize::try_from(entries).ok() != Some(rewrap.keyring.len())
            || usize::try_from(keys).ok() != Some(rewrap.signing_keys.len())
        {
            return Err(StoreError::RevisionMismatch);
        }
        for e in &rewrap.added {
            insert_keyring_row(&mut *tx, e).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn create_tenant(&self, t: &Tenant) -> StoreResult<()> {
        insert_tenant_row(&self.pool, t, None).await
    }

    async fn get_tenant(&self, name: &TenantName) -> StoreResult<Option<Tenant>> {
        let row = sqlx::query(
            "SELECT name, signing_alg, key_rotation_period, key_source, token_endpoint_audience, created_at, updated_at, revision FROM tenants WHERE name = $1 AND deleted_at IS NULL",
        )
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(rows::tenant).transpose()
    }

    async fn list_tenants(
        &self,
        after: Option<&TenantName>,
        limit: u32,
    ) -> StoreResult<Vec<Tenant>> {
        sqlx::query(
            "SELECT name, signing_alg, key_rotation_period, key_source, token_endpoint_audience, created_at, updated_at, revision FROM tenants \
             WHERE deleted_at IS NULL AND name > $1 ORDER BY name LIMIT $2",
        )
        .bind(after.map_or("", TenantName::as_str))
        .bind(i64::from(limit))
        .fetch_rows(&self.pool, rows::tenant)
        .await
    }

    async fn update_tenant(&self, t: &Tenant, expected_revision: i64) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE tenants SET signing_alg = $1, key_rotation_period = $2, key_source = $3, \
             token_endpoint_audience = $4, updated_at = $5, revision = $6 WHERE name = $7 \
             AND revision = $8 AND deleted_at IS NULL",
        )
        .bind(t.signing_alg.as_str())
        .bind(rotation_period(t)?)
        .bind(t.key_source.to_stored())
        .bind(t.token_endpoint_audience)
        .bind(ms(t.updated_at))
        .bind(expected_revision + 1)
        .bind(t.name.as_str())
        .bind(expected_revision)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        match self.get_tenant(&t.name).await? {
            Some(_) => Err(StoreError::RevisionMismatch),
            None => Err(StoreError::NotFound),
        }
    }

    async fn delete_tenant(&self, name: &TenantName, at: Timestamp) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let done = sqlx::query("UPDATE tenants SET deleted_at = $1, updated_at = $2, revision = revision + 1 WHERE name = $3 AND deleted_at IS NULL")
            .bind(ms(at))
            .bind(ms(at))
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "UPDATE secrets SET revoked_at = $1 WHERE revoked_at IS NULL AND account_id IN \
             (SELECT id FROM service_accounts WHERE tenant = $2)",
        )
        .bind(ms(at))
        .bind(name.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        sqlx::query(
            "UPDATE service_accounts SET deleted_at = $1 WHERE tenant = $2 AND deleted_at IS NULL",
        )
        .bind(ms(at))
        .bind(name.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        apis::TABLE.delete_tenant(&mut *tx, name, at).await?;
        trusts::TABLE.delete_tenant(&mut *tx, name, at).await?;
        tx.commit().await.map_err(backend)
    }

    async fn create_account(&self, a: &ServiceAccount) -> StoreResult<()> {
        insert_account_row(&self.pool, a, None).await
    }

    async fn get_account(
        &self,
        tenant: &TenantName,
        id: &AccountId,
    ) -> StoreResult<Option<ServiceAccount>> {
        let sql = const_format_account("WHERE id = $1 AND tenant = $2 AND deleted_at IS NULL");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(rows::account).transpose()
    }

    async fn get_account_by_name(
        &self,
        tenant: &TenantName,
        name: &AccountName,
    ) -> StoreResult<Option<ServiceAccount>> {
        let sql = const_format_account("WHERE tenant = $1 AND name = $2 AND deleted_at IS NULL");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(rows::account).transpose()
    }

    async fn list_accounts(
        &self,
        tenant: &TenantName,
        after: Option<&AccountId>,
        limit: u32,
    ) -> StoreResult<Vec<ServiceAccount>> {
        let sql = const_format_account(
            "WHERE tenant = $1 AND deleted_at IS NULL AND id > $2 ORDER BY id LIMIT $3",
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(after.map_or("", AccountId::as_str))
            .bind(i64::from(limit))
            .fetch_rows(&self.pool, rows::account)
            .await
    }

    async fn all_accounts(&self) -> StoreResult<Vec<ServiceAccount>> {
        let sql = const_format_account(
            "WHERE deleted_at IS NULL AND tenant IN (SELECT name FROM tenants WHERE deleted_at IS NULL)",
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_rows(&self.pool, rows::account)
            .await
    }

    async fn update_account(&self, a: &ServiceAccount, expected_revision: i64) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE service_accounts SET description = $1, enabled = $2, default_audience = $3, grants = $4, \
             default_lifetime = $5, max_lifetime = $6, claims = $7, auth_methods = $8, credentials = $9, \
             updated_at = $10, revision = $11 WHERE id = $12 AND tenant = $13 AND revision = $14 \
             AND deleted_at IS NULL",
        )
        .bind(&a.description)
        .bind(a.enabled)
        .bind(a.default_audience.as_ref().map(|x| x.as_str()))
        .bind(codec::grants_to_json(&a.grants))
        .bind(a.default_lifetime as i64)
        .bind(a.max_lifetime as i64)
        .bind(codec::claims_to_json(&a.claims))
        .bind(codec::methods_to_json(&a.auth_methods))
        .bind(codec::credentials_to_json(&a.credentials))
        .bind(ms(a.updated_at))
        .bind(expected_revision + 1)
        .bind(a.id.as_str())
        .bind(a.tenant.as_str())
        .bind(expected_revision)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        match self.get_account(&a.tenant, &a.id).await? {
            Some(_) => Err(StoreError::RevisionMismatch),
            None => Err(StoreError::NotFound),
        }
    }

    async fn delete_account(
        &self,
        tenant: &TenantName,
        id: &AccountId,
        at: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let done = sqlx::query(
            "UPDATE service_accounts SET deleted_at = $1, revision = revision + 1 \
             WHERE id = $2 AND tenant = $3 AND deleted_at IS NULL",
        )
        .bind(ms(at))
        .bind(id.as_str())
        .bind(tenant.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "UPDATE secrets SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL",
        )
        .bind(ms(at))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn create_api(&self, a: &Api) -> StoreResult<()> {
        apis::insert(&self.pool, a, None).await
    }

    async fn get_api(&self, tenant: &TenantName, id: &ApiId) -> StoreResult<Option<Api>> {
        apis::TABLE.get(&self.pool, tenant, id.as_str()).await
    }

    async fn get_api_by_name(
        &self,
        tenant: &TenantName,
        name: &ApiName,
    ) -> StoreResult<Option<Api>> {
        apis::TABLE
            .get_by_name(&self.pool, tenant, name.as_str())
            .await
    }

    async fn list_apis(
        &self,
        tenant: &TenantName,
        after: Option<&ApiId>,
        limit: u32,
    ) -> StoreResult<Vec<Api>> {
        apis::TABLE
            .list(&self.pool, tenant, after.map(ApiId::as_str), limit)
            .await
    }

    async fn update_api(&self, a: &Api, expected_revision: i64) -> StoreResult<()> {
        apis::update(&self.pool, a, expected_revision).await
    }

    async fn delete_api(&self, tenant: &TenantName, id: &ApiId, at: Timestamp) -> StoreResult<()> {
        apis::TABLE
            .delete(&self.pool, tenant, id.as_str(), at)
            .await
    }

    async fn create_trust(&self, t: &Trust) -> StoreResult<()> {
        trusts::insert(&self.pool, t, None).await
    }

    async fn get_trust(&self, tenant: &TenantName, id: &TrustId) -> StoreResult<Option<Trust>> {
        trusts::TABLE.get(&self.pool, tenant, id.as_str()).await
    }

    async fn get_trust_by_name(
        &self,
        tenant: &TenantName,
        name: &TrustName,
    ) -> StoreResult<Option<Trust>> {
        trusts::TABLE
            .get_by_name(&self.pool, tenant, name.as_str())
            .await
    }

    async fn list_trusts(
        &self,
        tenant: &TenantName,
        after: Option<&TrustId>,
        limit: u32,
    ) -> StoreResult<Vec<Trust>> {
        trusts::TABLE
            .list(&self.pool, tenant, after.map(TrustId::as_str), limit)
            .await
    }

    async fn update_trust(&self, t: &Trust, expected_revision: i64) -> StoreResult<()> {
        trusts::update(&self.pool, t, expected_revision).await
    }

    async fn delete_trust(
        &self,
        tenant: &TenantName,
        id: &TrustId,
        at: Timestamp,
    ) -> StoreResult<()> {
        trusts::TABLE
            .delete(&self.pool, tenant, id.as_str(), at)
            .await
    }

    async fn add_secret(&self, s: &SecretRecord) -> StoreResult<()> {
        insert_secret_row(&self.pool, s, None).await
    }

    async fn list_secrets(&self, account: &AccountId) -> StoreResult<Vec<SecretRecord>> {
        sqlx::query(
            "SELECT account_id, name, hash, key_version, created_at, expires_at, last_used_at FROM secrets \
             WHERE account_id = $1 AND revoked_at IS NULL ORDER BY name",
        )
        .bind(account.as_str())
        .fetch_rows(&self.pool, rows::secret)
        .await
    }

    async fn all_secrets(&self) -> StoreResult<Vec<SecretRecord>> {
        sqlx::query(
            "SELECT s.account_id, s.name, s.hash, s.key_version, s.created_at, s.expires_at, s.last_used_at \
             FROM secrets s JOIN service_accounts a ON a.id = s.account_id \
             WHERE s.revoked_at IS NULL AND a.deleted_at IS NULL",
        )
        .fetch_rows(&self.pool, rows::secret)
        .await
    }

    async fn revoke_secret(
        &self,
        account: &AccountId,
        name: &SecretName,
        at: Timestamp,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE secrets SET revoked_at = $1 WHERE account_id = $2 AND name = $3 AND revoked_at IS NULL",
        )
        .bind(ms(at))
        .bind(account.as_str())
        .bind(name.as_str())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn touch_secrets(&self, used: &[(AccountId, SecretName, Timestamp)]) -> StoreResult<()> {
        // Rows are locked in one order whatever the batch's order, so two replicas flushing
        // overlapping batches at once cannot deadlock.
        let mut used: Vec<_> = used.iter().collect();
        used.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let mut tx = self.pool.begin().await.map_err(backend)?;
        for (id, name, at) in used {
            sqlx::query(
                "UPDATE secrets SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $1) \
                 WHERE account_id = $2 AND name = $3 AND revoked_at IS NULL",
            )
            .bind(ms(*at))
            .bind(id.as_str())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn add_signing_key(&self, k: &SigningKeyRecord) -> StoreResult<()> {
        insert_signing_key_row(&self.pool, k).await
    }

    async fn signing_keys(&self, now: Timestamp) -> StoreResult<Vec<SigningKeyRecord>> {
        sqlx::query(
            "SELECT k.kid, k.tenant, k.alg, k.private_wrapped, k.hsm_module, k.hsm_label, k.created_at, k.activates_at, k.retires_at, k.removed_at \
             FROM signing_keys k JOIN tenants t ON t.name = k.tenant \
             WHERE t.deleted_at IS NULL AND (k.removed_at IS NULL OR k.removed_at > $1) \
             ORDER BY k.tenant, k.activates_at",
        )
        .bind(ms(now))
        .fetch_rows(&self.pool, rows::signing_key)
        .await
    }

    async fn tenant_signing_keys(&self, tenant: &TenantName) -> StoreResult<Vec<SigningKeyRecord>> {
        sqlx::query(
            "SELECT kid, tenant, alg, private_wrapped, hsm_module, hsm_label, created_at, activates_at, retires_at, removed_at \
             FROM signing_keys WHERE tenant = $1 ORDER BY activates_at DESC",
        )
        .bind(tenant.as_str())
        .fetch_rows(&self.pool, rows::signing_key)
        .await
    }

    async fn update_signing_key_times(
        &self,
        tenant: &TenantName,
        kid: &str,
        retires_at: Option<Timestamp>,
        removed_at: Option<Timestamp>,
    ) -> StoreResult<()> {
        let times = KeyTimes {
            kid: kid.to_owned(),
            retires_at,
            removed_at,
        };
        update_key_times_row(&self.pool, tenant, &times).await
    }

    async fn rotate_signing_keys(
        &self,
        tenant: &TenantName,
        new: Option<&SigningKeyRecord>,
        updates: &[KeyTimes],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        if let Some(k) = new {
            insert_signing_key_row(&mut *tx, k).await?;
        }
        for times in updates {
            update_key_times_row(&mut *tx, tenant, times).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn add_revocation(&self, revocation: &NewRevocation) -> StoreResult<RevocationEntry> {
        revocations::add(&self.pool, revocation).await
    }

    async fn revocation_feed(
        &self,
        tenant: &TenantName,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<StoredFeedPage> {
        revocations::feed(&self.pool, tenant, after, limit).await
    }

    async fn revocations_after(&self, after: i64, limit: u32) -> StoreResult<Vec<RevocationEntry>> {
        revocations::after(&self.pool, after, limit).await
    }

    async fn use_once(
        &self,
        tenant: &TenantName,
        kind: &str,
        jti: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        use_once_row(&self.pool, tenant, kind, jti, expires_at, now).await
    }

    async fn use_once_batch(
        &self,
        jtis: &[warrant_core::store::UsedJti],
        now: Timestamp,
    ) -> StoreResult<Vec<bool>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let mut out = Vec::with_capacity(jtis.len());
        for j in jtis {
            out.push(use_once_row(&mut *tx, &j.tenant, j.kind, &j.jti, j.expires_at, now).await?);
        }
        tx.commit().await.map_err(backend)?;
        Ok(out)
    }

    async fn prune_used_jtis(&self, now: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM used_jtis WHERE expires_at <= $1")
            .bind(ms(now))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn prune_revocations(&self, now: Timestamp) -> StoreResult<u64> {
        revocations::prune(&self.pool, now).await
    }

    async fn append_audit(&self, batch: &AuditBatch) -> StoreResult<()> {
        audit::append(&self.pool, batch).await
    }

    async fn query_audit(&self, query: &AuditQuery) -> StoreResult<Vec<StoredAuditRecord>> {
        audit::query(&self.pool, query).await
    }

    async fn audit_segments(&self, tenant: &TenantName) -> StoreResult<Vec<SegmentHead>> {
        audit::segments(&self.pool, tenant).await
    }

    async fn audit_segment_records(
        &self,
        tenant: &TenantName,
        segment: &str,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredAuditRecord>> {
        audit::segment_records(&self.pool, tenant, segment, after_seq, limit).await
    }

    async fn add_audit_checkpoint(&self, checkpoint: &AuditCheckpoint) -> StoreResult<()> {
        audit::add_checkpoint(&self.pool, checkpoint).await
    }

    async fn audit_checkpoints(&self, tenant: &TenantName) -> StoreResult<Vec<AuditCheckpoint>> {
        audit::checkpoints(&self.pool, tenant).await
    }

    async fn prune_audit(
        &self,
        tenant: &TenantName,
        segment: &str,
        through_seq: i64,
        anchor_hash: &str,
    ) -> StoreResult<u64> {
        audit::prune(&self.pool, tenant, segment, through_seq, anchor_hash).await
    }
}

/// `SELECT <account columns> FROM service_accounts <tail>`; `tail` is always a literal.
fn const_format_account(tail: &'static str) -> String {
    format!("SELECT {ACCOUNT_COLS} FROM service_accounts {tail}")
}

// ---------------------------------------------------------------------------------------------
// row inserts, shared by the single-row methods (on the pool) and `import` (in its transaction)

async fn insert_keyring_row<'e>(db: impl PgExecutor<'e>, e: &KeyringEntry) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO keyring (purpose, version, wrapped, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(e.purpose.as_str())
    .bind(i64::from(e.version))
    .bind(&e.wrapped)
    .bind(ms(e.created_at))
    .execute(db)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Records one single-use identifier. One statement: the primary key decides between
/// concurrent replicas; an expired entry is taken over in place.
async fn use_once_row<'e>(
    db: impl PgExecutor<'e>,
    tenant: &TenantName,
    kind: &str,
    jti: &str,
    expires_at: Timestamp,
    now: Timestamp,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO used_jtis (tenant, kind, jti, expires_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant, kind, jti) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE used_jtis.expires_at <= $5",
    )
    .bind(tenant.as_str())
    .bind(kind)
    .bind(jti)
    .bind(ms(expires_at))
    .bind(ms(now))
    .execute(db)
    .await
    .map_err(backend)?;
    Ok(done.rows_affected() == 1)
}

async fn insert_tenant_row<'e>(
    db: impl PgExecutor<'e>,
    t: &Tenant,
    deleted_at: Option<Timestamp>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO tenants (name, signing_alg, key_rotation_period, key_source, \
         token_endpoint_audience, created_at, updated_at, revision, deleted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(t.name.as_str())
    .bind(t.signing_alg.as_str())
    .bind(rotation_period(t)?)
    .bind(t.key_source.to_stored())
    .bind(t.token_endpoint_audience)
    .bind(ms(t.created_at))
    .bind(ms(t.updated_at))
    .bind(t.revision)
    .bind(opt_ms(deleted_at))
    .execute(db)
    .await
    .map_err(backend)?;
    Ok(())
}

async fn insert_account_row<'e>(
    db: impl PgExecutor<'e>,
    a: &ServiceAccount,
    deleted_at: Option<Timestamp>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO service_accounts (id, tenant, name, description, enabled, default_audience, grants, \
         default_lifetime, max_lifetime, claims, auth_methods, credentials, created_at, updated_at, revision, deleted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(a.id.as_str())
    .bind(a.tenant.as_str())
    .bind(a.name.as_str())
    .bind(&a.description)
    .bind(a.enabled)
    .bind(a.default_audience.as_ref().map(|x| x.as_str()))
    .bind(codec::grants_to_json(&a.grants))
    .bind(a.default_lifetime as i64)
    .bind(a.max_lifetime as i64)
    .bind(codec::claims_to_json(&a.claims))
    .bind(codec::methods_to_json(&a.auth_methods))
    .bind(codec::credentials_to_json(&a.credentials))
    .bind(ms(a.created_at))
    .bind(ms(a.updated_at))
    .bind(a.revision)
    .bind(opt_ms(deleted_at))
    .execute(db)
    .await
    .map_err(backend)?;
    Ok(())
}

async fn insert_secret_row<'e>(
    db: impl PgExecutor<'e>,
    s: &SecretRecord,
    revoked_at: Option<Timestamp>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO secrets (account_id, name, hash, key_version, created_at, expires_at, \
         last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(s.account_id.as_str())
    .bind(s.name.as_str())
    .bind(&s.hash[..])
    .bind(i64::from(s.key_version))
    .bind(ms(s.created_at))
    .bind(opt_ms(s.expires_at))
    .bind(opt_ms(s.last_used_at))
    .bind(opt_ms(revoked_at))
    .execute(db)
    .await
    .map_err(backend)?;
    Ok(())
}

/// `key_rotation_period` as the column holds it (seconds, `BIGINT`).
fn rotation_period(t: &Tenant) -> StoreResult<Option<i64>> {
    t.key_rotation_period
        .map(|p| i64::try_from(p).map_err(|_| StoreError::Corrupt("key_rotation_period".into())))
        .transpose()
}

async fn update_key_times_row<'e>(
    db: impl PgExecutor<'e>,
    tenant: &TenantName,
    t: &KeyTimes,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE signing_keys SET retires_at = $1, removed_at = $2 WHERE tenant = $3 AND kid = $4",
    )
    .bind(opt_ms(t.retires_at))
    .bind(opt_ms(t.removed_at))
    .bind(tenant.as_str())
    .bind(&t.kid)
    .execute(db)
    .await
    .map_err(backend)?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

async fn insert_signing_key_row<'e>(
    db: impl PgExecutor<'e>,
    k: &SigningKeyRecord,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, tenant, alg, private_wrapped, hsm_module, hsm_label, created_at, \
         activates_at, retires_at, removed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&k.kid)
    .bind(k.tenant.as_str())
    .bind(k.alg.as_str())
    .bind(&k.private_wrapped)
    .bind(k.hsm_module.as_deref())
    .bind(k.hsm_label.as_deref())
    .bind(ms(k.created_at))
    .bind(ms(k.activates_at))
    .bind(opt_ms(k.retires_at))
    .bind(opt_ms(k.removed_at))
    .execute(db)
    .await
    .map_err(backend)?;
    Ok(())
}
