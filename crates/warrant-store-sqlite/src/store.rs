use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use warrant_core::keyring::KeyringEntry;
use warrant_core::model::{SecretRecord, ServiceAccount, SigningKeyRecord, Tenant};
use warrant_core::store::{StoreResult, codec};
use warrant_core::{AccountId, AccountName, SecretName, Store, StoreError, TenantName, Timestamp};

use crate::rows;

/// Maps a database error: unique violations are `Conflict`, the rest `Backend` (logged only).
pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    if let Some(db) = e.as_database_error()
        && db.is_unique_violation()
    {
        return StoreError::Conflict;
    }
    StoreError::Backend(e.to_string())
}

/// The SQLite store. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

const ACCOUNT_COLS: &str = "id, tenant, name, description, enabled, default_audience, grants, \
     default_lifetime, max_lifetime, claims, auth_methods, created_at, updated_at, revision";

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path`.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        Self::with_options(opts).await
    }

    /// Opens a `sqlite:` URL (`sqlite://path/to/file.db`).
    pub async fn open_url(url: &str) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|_| StoreError::Backend("invalid sqlite URL".into()))?
            .create_if_missing(true);
        Self::with_options(opts).await
    }

    async fn with_options(opts: SqliteConnectOptions) -> StoreResult<Self> {
        let opts = opts
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(backend)?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
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

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> StoreResult<()> {
        let now: i64 = sqlx::query_scalar("SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER)")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        crate::migrate::run(&self.pool, now).await
    }

    async fn keyring(&self) -> StoreResult<Vec<KeyringEntry>> {
        let rows = sqlx::query(
            "SELECT purpose, version, wrapped, created_at FROM keyring ORDER BY purpose, version",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(rows::keyring_entry).collect()
    }

    async fn insert_keyring_entry(&self, e: &KeyringEntry) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO keyring (purpose, version, wrapped, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(e.purpose.as_str())
        .bind(i64::from(e.version))
        .bind(&e.wrapped)
        .bind(ms(e.created_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn create_tenant(&self, t: &Tenant) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO tenants (name, signing_alg, created_at, updated_at, revision) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(t.name.as_str())
        .bind(t.signing_alg.as_str())
        .bind(ms(t.created_at))
        .bind(ms(t.updated_at))
        .bind(t.revision)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn get_tenant(&self, name: &TenantName) -> StoreResult<Option<Tenant>> {
        let row = sqlx::query(
            "SELECT name, signing_alg, created_at, updated_at, revision FROM tenants WHERE name = ? AND deleted_at IS NULL",
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
        let rows = sqlx::query(
            "SELECT name, signing_alg, created_at, updated_at, revision FROM tenants \
             WHERE deleted_at IS NULL AND name > ? ORDER BY name LIMIT ?",
        )
        .bind(after.map_or("", TenantName::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(rows::tenant).collect()
    }

    async fn delete_tenant(&self, name: &TenantName, at: Timestamp) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let done = sqlx::query("UPDATE tenants SET deleted_at = ?, updated_at = ?, revision = revision + 1 WHERE name = ? AND deleted_at IS NULL")
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
            "UPDATE secrets SET revoked_at = ? WHERE revoked_at IS NULL AND account_id IN \
             (SELECT id FROM service_accounts WHERE tenant = ?)",
        )
        .bind(ms(at))
        .bind(name.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        sqlx::query(
            "UPDATE service_accounts SET deleted_at = ? WHERE tenant = ? AND deleted_at IS NULL",
        )
        .bind(ms(at))
        .bind(name.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn create_account(&self, a: &ServiceAccount) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO service_accounts (id, tenant, name, description, enabled, default_audience, grants, \
             default_lifetime, max_lifetime, claims, auth_methods, created_at, updated_at, revision) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .bind(ms(a.created_at))
        .bind(ms(a.updated_at))
        .bind(a.revision)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn get_account(
        &self,
        tenant: &TenantName,
        id: &AccountId,
    ) -> StoreResult<Option<ServiceAccount>> {
        let sql = const_format_account("WHERE id = ? AND tenant = ? AND deleted_at IS NULL");
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
        let sql = const_format_account("WHERE tenant = ? AND name = ? AND deleted_at IS NULL");
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
            "WHERE tenant = ? AND deleted_at IS NULL AND id > ? ORDER BY id LIMIT ?",
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(after.map_or("", AccountId::as_str))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(rows::account).collect()
    }

    async fn all_accounts(&self) -> StoreResult<Vec<ServiceAccount>> {
        let sql = const_format_account(
            "WHERE deleted_at IS NULL AND tenant IN (SELECT name FROM tenants WHERE deleted_at IS NULL)",
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(rows::account).collect()
    }

    async fn update_account(&self, a: &ServiceAccount, expected_revision: i64) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE service_accounts SET description = ?, enabled = ?, default_audience = ?, grants = ?, \
             default_lifetime = ?, max_lifetime = ?, claims = ?, auth_methods = ?, updated_at = ?, \
             revision = ? WHERE id = ? AND tenant = ? AND revision = ? AND deleted_at IS NULL",
        )
        .bind(&a.description)
        .bind(a.enabled)
        .bind(a.default_audience.as_ref().map(|x| x.as_str()))
        .bind(codec::grants_to_json(&a.grants))
        .bind(a.default_lifetime as i64)
        .bind(a.max_lifetime as i64)
        .bind(codec::claims_to_json(&a.claims))
        .bind(codec::methods_to_json(&a.auth_methods))
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
            "UPDATE service_accounts SET deleted_at = ?, revision = revision + 1 \
             WHERE id = ? AND tenant = ? AND deleted_at IS NULL",
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
            "UPDATE secrets SET revoked_at = ? WHERE account_id = ? AND revoked_at IS NULL",
        )
        .bind(ms(at))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn add_secret(&self, s: &SecretRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO secrets (account_id, name, hash, key_version, created_at, expires_at, last_used_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(s.account_id.as_str())
        .bind(s.name.as_str())
        .bind(&s.hash[..])
        .bind(i64::from(s.key_version))
        .bind(ms(s.created_at))
        .bind(opt_ms(s.expires_at))
        .bind(opt_ms(s.last_used_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn list_secrets(&self, account: &AccountId) -> StoreResult<Vec<SecretRecord>> {
        let rows = sqlx::query(
            "SELECT account_id, name, hash, key_version, created_at, expires_at, last_used_at FROM secrets \
             WHERE account_id = ? AND revoked_at IS NULL ORDER BY name",
        )
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(rows::secret).collect()
    }

    async fn all_secrets(&self) -> StoreResult<Vec<SecretRecord>> {
        let rows = sqlx::query(
            "SELECT s.account_id, s.name, s.hash, s.key_version, s.created_at, s.expires_at, s.last_used_at \
             FROM secrets s JOIN service_accounts a ON a.id = s.account_id \
             WHERE s.revoked_at IS NULL AND a.deleted_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(rows::secret).collect()
    }

    async fn revoke_secret(
        &self,
        account: &AccountId,
        name: &SecretName,
        at: Timestamp,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE secrets SET revoked_at = ? WHERE account_id = ? AND name = ? AND revoked_at IS NULL",
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
        let mut tx = self.pool.begin().await.map_err(backend)?;
        for (id, name, at) in used {
            sqlx::query(
                "UPDATE secrets SET last_used_at = max(coalesce(last_used_at, 0), ?) \
                 WHERE account_id = ? AND name = ? AND revoked_at IS NULL",
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
        sqlx::query(
            "INSERT INTO signing_keys (kid, tenant, alg, private_wrapped, created_at, activates_at, retires_at, removed_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&k.kid)
        .bind(k.tenant.as_str())
        .bind(k.alg.as_str())
        .bind(&k.private_wrapped)
        .bind(ms(k.created_at))
        .bind(ms(k.activates_at))
        .bind(opt_ms(k.retires_at))
        .bind(opt_ms(k.removed_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn signing_keys(&self, now: Timestamp) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(
            "SELECT k.kid, k.tenant, k.alg, k.private_wrapped, k.created_at, k.activates_at, k.retires_at, k.removed_at \
             FROM signing_keys k JOIN tenants t ON t.name = k.tenant \
             WHERE t.deleted_at IS NULL AND (k.removed_at IS NULL OR k.removed_at > ?) \
             ORDER BY k.tenant, k.activates_at",
        )
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(rows::signing_key).collect()
    }

    async fn tenant_signing_keys(&self, tenant: &TenantName) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(
            "SELECT kid, tenant, alg, private_wrapped, created_at, activates_at, retires_at, removed_at \
             FROM signing_keys WHERE tenant = ? ORDER BY activates_at DESC",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(rows::signing_key).collect()
    }
}

/// `SELECT <account columns> FROM service_accounts <tail>`; `tail` is always a literal.
fn const_format_account(tail: &'static str) -> String {
    format!("SELECT {ACCOUNT_COLS} FROM service_accounts {tail}")
}
