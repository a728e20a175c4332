//! Revocations: one table for every tenant, cursors in commit order across every replica.
//!
//! A writer takes a transaction-scoped advisory lock, then the next cursor from the one-row
//! `revocation_head`, inserts, and commits (which releases the lock): writers go one at a time,
//! so a transaction that takes cursor N commits before any other takes N + 1, and a reader that
//! sees N sees everything below it. (The head row's own lock would serialise them too; the
//! advisory lock says so explicitly and keeps waiting writers off the row.) Revocations are
//! rare, so the serialisation costs nothing that matters. The head lives in a table, not a
//! sequence, because a sequence's last value shows numbers of transactions not yet committed:
//! a reader would then report a head above entries it cannot see yet, and skip them.

use sqlx::{PgConnection, PgPool};
use warrant_core::revocation::{NewRevocation, RevocationEntry, RevocationKind, StoredFeedPage};
use warrant_core::store::StoreResult;
use warrant_core::{TenantName, Timestamp};

use crate::rows;
use crate::rows::FetchRows;
use crate::store::backend;

/// Advisory-lock key of revocation writers ("WRNTREVO").
const LOCK_KEY: i64 = 0x5752_4e54_5245_564f;

const COLS: &str = "cursor, tenant, type, value, time, created_at, prune_after";

/// The `type`, `value` and `time` columns of a kind.
fn columns(kind: &RevocationKind) -> (&'static str, &str, i64) {
    match kind {
        RevocationKind::Jti { jti, exp } => ("jti", jti, *exp),
        RevocationKind::Subject { sub, not_before } => ("subject", sub, *not_before),
    }
}

pub(crate) async fn add(pool: &PgPool, r: &NewRevocation) -> StoreResult<RevocationEntry> {
    let (kind, value, time) = columns(&r.kind);
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let cursor: i64 = sqlx::query_scalar(
        "WITH next AS (UPDATE revocation_head SET cursor = cursor + 1 RETURNING cursor) \
         INSERT INTO revocations (cursor, tenant, type, value, time, created_at, prune_after) \
         SELECT next.cursor, $1, $2, $3, $4, $5, $6 FROM next RETURNING cursor",
    )
    .bind(r.tenant.as_str())
    .bind(kind)
    .bind(value)
    .bind(time)
    .bind(r.created_at.millis())
    .bind(r.prune_after.millis())
    .fetch_one(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(RevocationEntry {
        cursor,
        tenant: r.tenant.clone(),
        kind: r.kind.clone(),
        created_at: r.created_at,
        prune_after: r.prune_after,
    })
}

pub(crate) async fn feed(
    pool: &PgPool,
    tenant: &TenantName,
    after: Option<i64>,
    limit: u32,
) -> StoreResult<StoredFeedPage> {
    // One snapshot: the head and the entries are of the same moment.
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(backend)?;
    let (head, pruned_through): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT cursor FROM revocation_head), \
         COALESCE((SELECT pruned_through FROM revocations_pruned WHERE tenant = $1), 0)",
    )
    .bind(tenant.as_str())
    .fetch_one(&mut *tx)
    .await
    .map_err(backend)?;
    let sql = format!(
        "SELECT {COLS} FROM revocations WHERE tenant = $1 AND cursor > $2 \
         ORDER BY cursor LIMIT $3"
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
    pool: &PgPool,
    after: i64,
    limit: u32,
) -> StoreResult<Vec<RevocationEntry>> {
    let sql = format!("SELECT {COLS} FROM revocations WHERE cursor > $1 ORDER BY cursor LIMIT $2");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_rows(pool, rows::revocation)
        .await
}

pub(crate) async fn prune(pool: &PgPool, now: Timestamp) -> StoreResult<u64> {
    // One statement, one snapshot: per tenant, every entry before the first one still needed
    // (`prune_after` ≥ now), or all of them if none is, goes; the tenant's mark rises to the
    // last cursor this statement deleted (never lower: replicas may prune at once).
    let deleted: i64 = sqlx::query_scalar(
        "WITH keep AS MATERIALIZED (\
             SELECT tenant, MIN(cursor) AS first FROM revocations \
             WHERE prune_after >= $1 GROUP BY tenant), \
         gone AS (\
             DELETE FROM revocations r WHERE r.cursor < COALESCE(\
                 (SELECT k.first FROM keep k WHERE k.tenant = r.tenant), 9223372036854775807) \
             RETURNING r.tenant, r.cursor), \
         marks AS (\
             INSERT INTO revocations_pruned (tenant, pruned_through) \
             SELECT tenant, MAX(cursor) FROM gone GROUP BY tenant \
             ON CONFLICT (tenant) DO UPDATE SET pruned_through = \
                 GREATEST(revocations_pruned.pruned_through, EXCLUDED.pruned_through)) \
         SELECT COUNT(*) FROM gone",
    )
    .bind(now.millis())
    .fetch_one(pool)
    .await
    .map_err(backend)?;
    Ok(u64::try_from(deleted).unwrap_or(0))
}

/// Every kept entry by cursor, and every tenant's `pruned_through` by tenant (for export).
pub(crate) async fn export(
    db: &mut PgConnection,
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
    db: &mut PgConnection,
    entries: &[RevocationEntry],
    pruned: &[(TenantName, i64)],
) -> StoreResult<()> {
    let (mut cursors, mut tenants, mut kinds, mut values, mut times, mut created, mut prune_after) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for e in entries {
        let (kind, value, time) = columns(&e.kind);
        cursors.push(e.cursor);
        tenants.push(e.tenant.as_str());
        kinds.push(kind);
        values.push(value);
        times.push(time);
        created.push(e.created_at.millis());
        prune_after.push(e.prune_after.millis());
    }
    sqlx::query(
        "INSERT INTO revocations (cursor, tenant, type, value, time, created_at, prune_after) \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], \
         $6::bigint[], $7::bigint[])",
    )
    .bind(&cursors)
    .bind(&tenants)
    .bind(&kinds)
    .bind(&values)
    .bind(&times)
    .bind(&created)
    .bind(&prune_after)
    .execute(&mut *db)
    .await
    .map_err(backend)?;
    let (marks_tenants, marks): (Vec<&str>, Vec<i64>) = pruned
        .iter()
        .map(|(t, through)| (t.as_str(), *through))
        .unzip();
    sqlx::query(
        "INSERT INTO revocations_pruned (tenant, pruned_through) \
         SELECT * FROM UNNEST($1::text[], $2::bigint[])",
    )
    .bind(&marks_tenants)
    .bind(&marks)
    .execute(&mut *db)
    .await
    .map_err(backend)?;
    let top = cursors.iter().chain(&marks).copied().max().unwrap_or(0);
    sqlx::query("UPDATE revocation_head SET cursor = GREATEST(cursor, $1)")
        .bind(top)
        .execute(&mut *db)
        .await
        .map_err(backend)?;
    Ok(())
}
