//! Federation trusts (PostgreSQL): one row per trust, deleted ones kept (ids are never reused); the partial
//! unique index keeps live names unique per tenant.

use sqlx::{PgExecutor, PgPool};
use warrant_core::Timestamp;
use warrant_core::model::Trust;
use warrant_core::store::{StoreResult, codec};

use crate::rows;
use crate::store::backend;
use crate::tenant_table::TenantTable;

const COLS: &str = "id, tenant, name, account, policy, created_at, updated_at, revision";

/// The shared statements (get, list, delete, export) on `trusts`.
pub(crate) const TABLE: TenantTable<Trust> = TenantTable {
    table: "trusts",
    cols: COLS,
    row: rows::trust,
    row_with_deleted: rows::trust_with_deleted,
};

pub(crate) async fn insert<'e>(
    db: impl PgExecutor<'e>,
    t: &Trust,
    deleted_at: Option<Timestamp>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO trusts (id, tenant, name, issuer, account, policy, created_at, updated_at, \
         revision, deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(t.id.as_str())
    .bind(t.tenant.as_str())
    .bind(t.name.as_str())
    .bind(t.policy.issuer.as_str())
    .bind(t.account())
    .bind(codec::trust_policy_to_json(&t.policy)?)
    .bind(t.created_at.millis())
    .bind(t.updated_at.millis())
    .bind(t.revision)
    .bind(deleted_at.map(Timestamp::millis))
    .execute(db)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn update(pool: &PgPool, t: &Trust, expected_revision: i64) -> StoreResult<()> {
    let set = sqlx::query(
        "UPDATE trusts SET issuer = $1, account = $2, policy = $3, updated_at = $4, revision = $5 \
         WHERE id = $6 AND tenant = $7 AND revision = $8 AND deleted_at IS NULL",
    )
    .bind(t.policy.issuer.as_str())
    .bind(t.account())
    .bind(codec::trust_policy_to_json(&t.policy)?)
    .bind(t.updated_at.millis());
    TABLE
        .update(pool, set, &t.tenant, t.id.as_str(), expected_revision)
        .await
}
