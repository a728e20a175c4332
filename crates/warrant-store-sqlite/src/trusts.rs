//! Federation trusts: one row per API, deleted ones kept (ids are never reused); the partial
//! unique index keeps live names unique per tenant.

use sqlx::{SqliteExecutor, SqlitePool};
use warrant_core::model::Trust;
use warrant_core::store::{StoreResult, codec};
use warrant_core::{StoreError, TenantName, Timestamp, TrustId, TrustName};

use crate::rows;
use crate::rows::FetchRows;
use crate::store::backend;

const COLS: &str = "id, tenant, name, account, policy, created_at, updated_at, revision";

/// `SELECT <trust columns> FROM trusts <tail>`; `tail` is always a literal.
fn select(tail: &'static str) -> String {
    format!("SELECT {COLS} FROM trusts {tail}")
}

pub(crate) async fn insert<'e>(
    db: impl SqliteExecutor<'e>,
    a: &Trust,
    deleted_at: Option<Timestamp>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO trusts (id, tenant, name, issuer, account, policy, created_at, updated_at, \
         revision, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(a.id.as_str())
    .bind(a.tenant.as_str())
    .bind(a.name.as_str())
    .bind(a.policy.issuer.as_str())
    .bind(a.account())
    .bind(codec::trust_policy_to_json(&a.policy)?)
    .bind(a.created_at.millis())
    .bind(a.updated_at.millis())
    .bind(a.revision)
    .bind(deleted_at.map(Timestamp::millis))
    .execute(db)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn get(
    pool: &SqlitePool,
    tenant: &TenantName,
    id: &TrustId,
) -> StoreResult<Option<Trust>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(select(
        "WHERE id = ? AND tenant = ? AND deleted_at IS NULL",
    )))
    .bind(id.as_str())
    .bind(tenant.as_str())
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    row.as_ref().map(rows::trust).transpose()
}

pub(crate) async fn get_by_name(
    pool: &SqlitePool,
    tenant: &TenantName,
    name: &TrustName,
) -> StoreResult<Option<Trust>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(select(
        "WHERE tenant = ? AND name = ? AND deleted_at IS NULL",
    )))
    .bind(tenant.as_str())
    .bind(name.as_str())
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    row.as_ref().map(rows::trust).transpose()
}

pub(crate) async fn list(
    pool: &SqlitePool,
    tenant: &TenantName,
    after: Option<&TrustId>,
    limit: u32,
) -> StoreResult<Vec<Trust>> {
    sqlx::query(sqlx::AssertSqlSafe(select(
        "WHERE tenant = ? AND deleted_at IS NULL AND id > ? ORDER BY id LIMIT ?",
    )))
    .bind(tenant.as_str())
    .bind(after.map_or("", TrustId::as_str))
    .bind(i64::from(limit))
    .fetch_rows(pool, rows::trust)
    .await
}

pub(crate) async fn update(
    pool: &SqlitePool,
    a: &Trust,
    expected_revision: i64,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE trusts SET issuer = ?, account = ?, policy = ?, updated_at = ?, revision = ? \
         WHERE id = ? AND tenant = ? AND revision = ? AND deleted_at IS NULL",
    )
    .bind(a.policy.issuer.as_str())
    .bind(a.account())
    .bind(codec::trust_policy_to_json(&a.policy)?)
    .bind(a.updated_at.millis())
    .bind(expected_revision + 1)
    .bind(a.id.as_str())
    .bind(a.tenant.as_str())
    .bind(expected_revision)
    .execute(pool)
    .await
    .map_err(backend)?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    match get(pool, &a.tenant, &a.id).await? {
        Some(_) => Err(StoreError::RevisionMismatch),
        None => Err(StoreError::NotFound),
    }
}

pub(crate) async fn delete(
    pool: &SqlitePool,
    tenant: &TenantName,
    id: &TrustId,
    at: Timestamp,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE trusts SET deleted_at = ?, revision = revision + 1 \
         WHERE id = ? AND tenant = ? AND deleted_at IS NULL",
    )
    .bind(at.millis())
    .bind(id.as_str())
    .bind(tenant.as_str())
    .execute(pool)
    .await
    .map_err(backend)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Marks a deleted tenant's trusts deleted (in its deletion's transaction).
pub(crate) async fn delete_tenant<'e>(
    db: impl SqliteExecutor<'e>,
    tenant: &TenantName,
    at: Timestamp,
) -> StoreResult<()> {
    sqlx::query("UPDATE trusts SET deleted_at = ? WHERE tenant = ? AND deleted_at IS NULL")
        .bind(at.millis())
        .bind(tenant.as_str())
        .execute(db)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Every row, deleted ones included, for export.
pub(crate) async fn export<'e>(
    db: impl SqliteExecutor<'e>,
) -> StoreResult<Vec<(Trust, Option<Timestamp>)>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS}, deleted_at FROM trusts ORDER BY id"
    )))
    .fetch_rows(db, rows::trust_with_deleted)
    .await
}
