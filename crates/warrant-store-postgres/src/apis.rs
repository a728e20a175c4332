//! Registered APIs (PostgreSQL): one row per API, deleted ones kept (ids are never reused); the partial
//! unique indexes keep live names and audiences unique per tenant.

use sqlx::{PgExecutor, PgPool};
use warrant_core::Timestamp;
use warrant_core::model::Api;
use warrant_core::store::{StoreResult, codec};

use crate::rows;
use crate::store::backend;
use crate::tenant_table::TenantTable;

const COLS: &str = "id, tenant, name, audience, scopes, owner, description, created_at, \
     updated_at, revision";

/// The shared statements (get, list, delete, export) on `apis`.
pub(crate) const TABLE: TenantTable<Api> = TenantTable {
    table: "apis",
    cols: COLS,
    row: rows::api,
    row_with_deleted: rows::api_with_deleted,
};

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

pub(crate) async fn update(pool: &PgPool, a: &Api, expected_revision: i64) -> StoreResult<()> {
    let set = sqlx::query(
        "UPDATE apis SET scopes = $1, owner = $2, description = $3, updated_at = $4, revision = $5 \
         WHERE id = $6 AND tenant = $7 AND revision = $8 AND deleted_at IS NULL",
    )
    .bind(codec::scopes_to_json(&a.scopes))
    .bind(a.owner.as_str())
    .bind(a.description.as_deref())
    .bind(a.updated_at.millis());
    TABLE
        .update(pool, set, &a.tenant, a.id.as_str(), expected_revision)
        .await
}
