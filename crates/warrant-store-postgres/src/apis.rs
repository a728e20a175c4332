//! Registered APIs (PostgreSQL): one row per API, deleted ones kept (ids are never reused); the partial
//! unique indexes keep live names and audiences unique per tenant.

use sqlx::{PgExecutor, PgPool};
use warrant_core::model::Api;
use warrant_core::store::{StoreResult, codec};
use warrant_core::{ApiId, ApiName, StoreError, TenantName, Timestamp};

use crate::rows;
use crate::rows::FetchRows;
use crate::store::backend;

const COLS: &str = "id, tenant, name, audience, scopes, owner, description, created_at, \
     updated_at, revision";

/// `SELECT <api columns> FROM apis <tail>`; `tail` is always a literal.
fn select(tail: &'static str) -> String {
    format!("SELECT {COLS} FROM apis {tail}")
}

pub(crate) async fn insert<'e>(
    db: impl PgExecutor<'e>,
    a: &Api,
    deleted_at: Option<Timestamp>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO apis (id, tenant, name, audience, scopes, owner, description, created_at, \
         updated_at, revision, deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(a.id.as_str())
    .bind(a.tenant.as_str())
    .bind(a.name.as_str())
    .bind(a.audience.as_str())
    .bind(codec::scopes_to_json(&a.scopes))
    .bind(a.owner.as_str())
    .bind(a.description.as_deref())
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
    pool: &PgPool,
    tenant: &TenantName,
    id: &ApiId,
) -> StoreResult<Option<Api>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(select(
        "WHERE id = $1 AND tenant = $2 AND deleted_at IS NULL",
    )))
    .bind(id.as_str())
    .bind(tenant.as_str())
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    row.as_ref().map(rows::api).transpose()
}

pub(crate) async fn get_by_name(
    pool: &PgPool,
    tenant: &TenantName,
    name: &ApiName,
) -> StoreResult<Option<Api>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(select(
        "WHERE tenant = $1 AND name = $2 AND deleted_at IS NULL",
    )))
    .bind(tenant.as_str())
    .bind(name.as_str())
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    row.as_ref().map(rows::api).transpose()
}

pub(crate) async fn list(
    pool: &PgPool,
    tenant: &TenantName,
    after: Option<&ApiId>,
    limit: u32,
) -> StoreResult<Vec<Api>> {
    sqlx::query(sqlx::AssertSqlSafe(select(
        "WHERE tenant = $1 AND deleted_at IS NULL AND id > $2 ORDER BY id LIMIT $3",
    )))
    .bind(tenant.as_str())
    .bind(after.map_or("", ApiId::as_str))
    .bind(i64::from(limit))
    .fetch_rows(pool, rows::api)
    .await
}

pub(crate) async fn update(pool: &PgPool, a: &Api, expected_revision: i64) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE apis SET scopes = $1, owner = $2, description = $3, updated_at = $4, revision = $5 \
         WHERE id = $6 AND tenant = $7 AND revision = $8 AND deleted_at IS NULL",
    )
    .bind(codec::scopes_to_json(&a.scopes))
    .bind(a.owner.as_str())
    .bind(a.description.as_deref())
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
    pool: &PgPool,
    tenant: &TenantName,
    id: &ApiId,
    at: Timestamp,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE apis SET deleted_at = $1, revision = revision + 1 \
         WHERE id = $2 AND tenant = $3 AND deleted_at IS NULL",
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

/// Marks a deleted tenant's APIs deleted (in its deletion's transaction).
pub(crate) async fn delete_tenant<'e>(
    db: impl PgExecutor<'e>,
    tenant: &TenantName,
    at: Timestamp,
) -> StoreResult<()> {
    sqlx::query("UPDATE apis SET deleted_at = $1 WHERE tenant = $2 AND deleted_at IS NULL")
        .bind(at.millis())
        .bind(tenant.as_str())
        .execute(db)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Every row, deleted ones included, for export.
pub(crate) async fn export<'e>(
    db: impl PgExecutor<'e>,
) -> StoreResult<Vec<(Api, Option<Timestamp>)>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS}, deleted_at FROM apis ORDER BY id"
    )))
    .fetch_rows(db, rows::api_with_deleted)
    .await
}
