//! Revocations: one table for every tenant, cursors from AUTOINCREMENT.
//!
//! SQLite has one writer at a time, so cursors are assigned in commit order without more ado;
//! `sqlite_sequence` holds the highest cursor ever assigned (the feed's head), which stays put
//! when the highest rows are pruned. A deferred read transaction fixes its view at its first
//! read, so the head and the entries of a feed page come from the same moment.

use sqlx::{SqliteConnection, SqlitePool};
use warrant_core::revocation::{NewRevocation, RevocationEntry, RevocationKind, StoredFeedPage};
use warrant_core::store::StoreResult;
use warrant_core::{TenantName, Timestamp};

use crate::rows;
use crate::rows::FetchRows;
use crate::store::backend;

const COLS: &str = "cursor, tenant, type, value, time, created_at, prune_after";

/// The highest cursor ever assigned (0 before the first), and the tenant's `pruned_through`
/// (0 if nothing was pruned): one read, so that it also fixes the feed transaction's view.
const HEAD_SQL: &str = "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'revocations'), 0), \
     COALESCE((SELECT pruned_through FROM revocations_pruned WHERE tenant = ?), 0)";

/// The rows `prune` removes (`?1`: now): per tenant, every entry before the first one still
/// needed (`prune_after` ≥ now), or all of them if none is. `keep` is computed once.
const PRUNABLE: &str = "WITH keep AS MATERIALIZED (\
         SELECT tenant, MIN(cursor) AS first FROM revocations \
         WHERE prune_after >= ?1 GROUP BY tenant) ";
const PRUNABLE_WHERE: &str = "WHERE r.cursor < COALESCE(\
         (SELECT k.first FROM keep k WHERE k.tenant = r.tenant), 9223372036854775807)";

/// The `type`, `value` and `time` columns of a kind.
fn columns(kind: &RevocationKind) -> (&'static str, &str, i64) {
    match kind {
        RevocationKind::Jti { jti, exp } => ("jti", jti, *exp),
        RevocationKind::Subject { sub, not_before } => ("subject", sub, *not_before),
    }
}

pub(crate) async fn add(pool: &SqlitePool, r: &NewRevocation) -> StoreResult<RevocationEntry> {
    let (kind, value, time) = columns(&r.kind);
    let cursor: i64 = sqlx::query_scalar(
        "INSERT INTO revocations (tenant, type, value, time, created_at, prune_after) \
         VALUES (?, ?, ?, ?, ?, ?) RETURNING cursor",
    )
    .bind(r.tenant.as_str())
    .bind(kind)
    .bind(value)
    .bind(time)
    .bind(r.created_at.millis())
    .bind(r.prune_after.millis())
    .fetch_one(pool)
    .await
    .map_err(backend)?;
    Ok(RevocationEntry {
        cursor,
        tenant: r.tenant.clone(),
        kind: r.kind.clone(),
        created_at: r.created_at,
        prune_after: r.prune_after,
    })
}

pub(crate) async fn feed(
    pool: &SqlitePool,
    tenant: &TenantName,
    after: Option<i64>,
    limit: u32,
) -> StoreResult<StoredFeedPage> {
    let mut tx = pool.begin().await.map_err(backend)?;
    let (head, pruned_through): (i64, i64) = sqlx::query_as(HEAD_SQL)
        .bind(tenant.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
    let sql = format!(
        "SELECT {COLS} FROM revocations WHERE tenant = ? AND cursor > ? ORDER BY cursor LIMIT ?"
    );
    let entries = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(after.unwrap_or(i64::MIN))
        .bind(i64::from(limit))
        .fetch_rows(&mut *tx, rows::revocation)
        .await?;
    tx.commit().await.map_err(backend)?;
    Ok(StoredFeedPage {
        entries,
        pruned_through,
        head,
    })
}

pub(crate) async fn after(
    pool: &SqlitePool,
    after: i64,
    limit: u32,
) -> StoreResult<Vec<RevocationEntry>> {
    let sql = format!("SELECT {COLS} FROM revocations WHERE cursor > ? ORDER BY cursor LIMIT ?");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_rows(pool, rows::revocation)
        .await
}

pub(crate) async fn prune(pool: &SqlitePool, now: Timestamp) -> StoreResult<u64> {
    // IMMEDIATE: both statements see the same rows (no writer in between).
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    // `WHERE` before `ON CONFLICT`: SQLite's upsert needs it to parse an INSERT … SELECT.
    let raise = format!(
        "{PRUNABLE}INSERT INTO revocations_pruned (tenant, pruned_through) \
         SELECT r.tenant, MAX(r.cursor) FROM revocations r {PRUNABLE_WHERE} GROUP BY r.tenant \
         ON CONFLICT (tenant) DO UPDATE \
         SET pruned_through = max(pruned_through, excluded.pruned_through)"
    );
    sqlx::query(sqlx::AssertSqlSafe(raise))
        .bind(now.millis())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let delete = format!("{PRUNABLE}DELETE FROM revocations AS r {PRUNABLE_WHERE}");
    let deleted = sqlx::query(sqlx::AssertSqlSafe(delete))
        .bind(now.millis())
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
    tx.commit().await.map_err(backend)?;
    Ok(deleted)
}

/// Every kept entry by cursor, and every tenant's `pruned_through` by tenant (for export).
pub(crate) async fn export(
    db: &mut SqliteConnection,
) -> StoreResult<(Vec<RevocationEntry>, Vec<(TenantName, i64)>)> {
    let sql = format!("SELECT {COLS} FROM revocations ORDER BY cursor");
    let entries = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_rows(&mut *db, rows::revocation)
        .await?;
    let pruned =
        sqlx::query("SELECT tenant, pruned_through FROM revocations_pruned ORDER BY tenant")
            .fetch_rows(&mut *db, rows::pruned)
            .await?;
    Ok((entries, pruned))
}

/// Loads exported entries with their cursors, and the `pruned_through` marks. The head becomes
/// the highest cursor either names (pruned cursors were assigned too, and readers may hold
/// them), so that the next cursor assigned is above every one a verifier could have seen.
pub(crate) async fn import(
    db: &mut SqliteConnection,
    entries: &[RevocationEntry],
    pruned: &[(TenantName, i64)],
) -> StoreResult<()> {
    for e in entries {
        let (kind, value, time) = columns(&e.kind);
        sqlx::query(
            "INSERT INTO revocations (cursor, tenant, type, value, time, created_at, prune_after) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(e.cursor)
        .bind(e.tenant.as_str())
        .bind(kind)
        .bind(value)
        .bind(time)
        .bind(e.created_at.millis())
        .bind(e.prune_after.millis())
        .execute(&mut *db)
        .await
        .map_err(backend)?;
    }
    for (tenant, through) in pruned {
        sqlx::query("INSERT INTO revocations_pruned (tenant, pruned_through) VALUES (?, ?)")
            .bind(tenant.as_str())
            .bind(through)
            .execute(&mut *db)
            .await
            .map_err(backend)?;
    }
    // Inserting explicit cursors already raised `sqlite_sequence` to the highest of them.
    if let Some(top) = pruned.iter().map(|(_, through)| *through).max() {
        sqlx::query(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'revocations', 0 \
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'revocations')",
        )
        .execute(&mut *db)
        .await
        .map_err(backend)?;
        sqlx::query("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'revocations'")
            .bind(top)
            .execute(&mut *db)
            .await
            .map_err(backend)?;
    }
    Ok(())
}
