//! The statements registered APIs and federation trusts share: rows owned by a tenant, keyed by a
//! text `id`, with a per-tenant `name`, an optimistic `revision`, and deleted ones kept with
//! `deleted_at` set (ids are never reused).
//!
//! A [`TenantTable`] is only ever a `const` written in this crate: its table name and column list
//! are literals, never input, which is what makes composing them into SQL (and the
//! `sqlx::AssertSqlSafe` below) sound. Every value is bound.
//!
//! `warrant-store-postgres` has the same file in its own dialect (placeholders, row and executor
//! types): each store crate owns its SQL, and a piece generic over both sqlx drivers would
//! cost more bounds than these few statements.

use sqlx::sqlite::SqliteRow;
use sqlx::{SqliteExecutor, SqlitePool};
use warrant_core::store::StoreResult;
use warrant_core::{StoreError, TenantName, Timestamp};

use crate::rows::FetchRows;
use crate::store::backend;

/// Converts one row, checked.
type Mapper<T> = fn(&SqliteRow) -> StoreResult<T>;

/// One soft-deleted, tenant-owned table; see the module documentation.
pub(crate) struct TenantTable<T: 'static> {
    /// The table name: a literal.
    pub(crate) table: &'static str,
    /// The comma-separated columns `row` reads: a literal.
    pub(crate) cols: &'static str,
    pub(crate) row: Mapper<T>,
    pub(crate) row_with_deleted: Mapper<(T, Option<Timestamp>)>,
}

impl<T> TenantTable<T> {
    /// `SELECT <cols> FROM <table> <tail>`; `tail` is always a literal.
    fn select(&self, tail: &'static str) -> String {
        format!("SELECT {} FROM {} {tail}", self.cols, self.table)
    }

    /// `UPDATE <table> <tail>`; `tail` is always a literal.
    fn update_sql(&self, tail: &'static str) -> String {
        format!("UPDATE {} {tail}", self.table)
    }

    pub(crate) async fn get(
        &self,
        pool: &SqlitePool,
        tenant: &TenantName,
        id: &str,
    ) -> StoreResult<Option<T>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(
            self.select("WHERE id = ? AND tenant = ? AND deleted_at IS NULL"),
        ))
        .bind(id)
        .bind(tenant.as_str())
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(self.row).transpose()
    }

    pub(crate) async fn get_by_name(
        &self,
        pool: &SqlitePool,
        tenant: &TenantName,
        name: &str,
    ) -> StoreResult<Option<T>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(
            self.select("WHERE tenant = ? AND name = ? AND deleted_at IS NULL"),
        ))
        .bind(tenant.as_str())
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(self.row).transpose()
    }

    /// Live rows of `tenant` in id order, after the cursor `after` (exclusive).
    pub(crate) async fn list(
        &self,
        pool: &SqlitePool,
        tenant: &TenantName,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<T>> {
        sqlx::query(sqlx::AssertSqlSafe(self.select(
            "WHERE tenant = ? AND deleted_at IS NULL AND id > ? ORDER BY id LIMIT ?",
        )))
        .bind(tenant.as_str())
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_rows(pool, self.row)
        .await
    }

    /// Runs `update`, an `UPDATE <table> SET …, revision = ? WHERE id = ? AND tenant = ? AND
    /// revision = ? AND deleted_at IS NULL` with its `SET` values bound up to (not including) the
    /// new revision: binds that revision and the `WHERE` values. A live row left unchanged means
    /// the revision moved on.
    pub(crate) async fn update<'q>(
        &self,
        pool: &SqlitePool,
        update: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
        tenant: &'q TenantName,
        id: &'q str,
        expected_revision: i64,
    ) -> StoreResult<()> {
        let done = update
            .bind(expected_revision + 1)
            .bind(id)
            .bind(tenant.as_str())
            .bind(expected_revision)
            .execute(pool)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        match self.get(pool, tenant, id).await? {
            Some(_) => Err(StoreError::RevisionMismatch),
            None => Err(StoreError::NotFound),
        }
    }

    /// Marks one live row deleted (bumping its revision).
    pub(crate) async fn delete(
        &self,
        pool: &SqlitePool,
        tenant: &TenantName,
        id: &str,
        at: Timestamp,
    ) -> StoreResult<()> {
        let done = sqlx::query(sqlx::AssertSqlSafe(self.update_sql(
            "SET deleted_at = ?, revision = revision + 1 \
             WHERE id = ? AND tenant = ? AND deleted_at IS NULL",
        )))
        .bind(at.millis())
        .bind(id)
        .bind(tenant.as_str())
        .execute(pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Marks a deleted tenant's rows deleted (in its deletion's transaction).
    pub(crate) async fn delete_tenant<'e>(
        &self,
        db: impl SqliteExecutor<'e>,
        tenant: &TenantName,
        at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(sqlx::AssertSqlSafe(self.update_sql(
            "SET deleted_at = ? WHERE tenant = ? AND deleted_at IS NULL",
        )))
        .bind(at.millis())
        .bind(tenant.as_str())
        .execute(db)
        .await
        .map_err(backend)?;
        Ok(())
    }

    /// Every row, deleted ones included, for export.
    pub(crate) async fn export<'e>(
        &self,
        db: impl SqliteExecutor<'e>,
    ) -> StoreResult<Vec<(T, Option<Timestamp>)>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {}, deleted_at FROM {} ORDER BY id",
            self.cols, self.table
        )))
        .fetch_rows(db, self.row_with_deleted)
        .await
    }
}
