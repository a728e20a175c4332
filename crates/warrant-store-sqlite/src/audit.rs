//! The audit log: records, segment heads and checkpoints.
//!
//! `append` is on the token hot path (the writer's group commit, up to a few hundred records):
//! one `IMMEDIATE` transaction sent as a single multi-statement query (one multi-row insert,
//! one upsert per head), one `fsync` at commit (`synchronous=FULL`).

use sqlx::sqlite::SqliteArguments;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use warrant_core::audit::{
    AuditBatch, AuditCheckpoint, AuditQuery, SegmentHead, StoredAuditRecord,
};
use warrant_core::store::StoreResult;
use warrant_core::{StoreError, TenantName};

use crate::rows;
use crate::rows::FetchRows;
use crate::store::backend;

const RECORD_COLS: &str =
    "id, tenant, segment, seq, at, subject, action, outcome, body, hash, key_version, mac";
const SEGMENT_COLS: &str = "tenant, segment, head_seq, head_hash, head_mac, key_version, \
     anchor_seq, anchor_hash, created_at, updated_at";
const CHECKPOINT_COLS: &str = "tenant, segment, seq, hash, at, jws";

/// `INSERT` of `rows` records without ids (the store assigns them in `VALUES` order).
fn insert_records_sql(rows: usize) -> String {
    let one = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    format!(
        "INSERT INTO audit_records \
         (tenant, segment, seq, at, subject, action, outcome, body, hash, key_version, mac) \
         VALUES {}",
        vec![one; rows].join(", ")
    )
}
const INSERT_RECORD_WITH_ID: &str = "INSERT INTO audit_records \
     (id, tenant, segment, seq, at, subject, action, outcome, body, hash, key_version, mac) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
/// A new segment takes every field; a known one moves its head only (never its anchor, which
/// pruning sets, nor its creation time).
const UPSERT_HEAD: &str = "INSERT INTO audit_segments \
     (tenant, segment, head_seq, head_hash, head_mac, key_version, anchor_seq, anchor_hash, \
     created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (tenant, segment) DO UPDATE SET head_seq = excluded.head_seq, \
     head_hash = excluded.head_hash, head_mac = excluded.head_mac, \
     key_version = excluded.key_version, updated_at = excluded.updated_at";
const INSERT_SEGMENT: &str = "INSERT INTO audit_segments \
     (tenant, segment, head_seq, head_hash, head_mac, key_version, anchor_seq, anchor_hash, \
     created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const INSERT_CHECKPOINT: &str = "INSERT INTO audit_checkpoints \
     (tenant, segment, seq, hash, at, jws) VALUES (?, ?, ?, ?, ?, ?)";

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

/// Binds a record's columns after `id`, in table order.
fn bind_record<'q>(q: Query<'q>, r: &StoredAuditRecord) -> Query<'q> {
    q.bind(r.tenant.as_str())
        .bind(r.segment.as_str())
        .bind(r.seq)
        .bind(r.at.millis())
        .bind(r.subject.as_deref())
        .bind(r.action.as_str())
        .bind(r.outcome.as_str())
        .bind(r.body.as_str())
        .bind(r.hash.as_str())
        .bind(i64::from(r.key_version))
        .bind(r.mac.as_str())
}

fn bind_segment<'q>(q: Query<'q>, h: &SegmentHead) -> Query<'q> {
    q.bind(h.tenant.as_str())
        .bind(h.segment.as_str())
        .bind(h.head_seq)
        .bind(h.head_hash.as_str())
        .bind(h.head_mac.as_str())
        .bind(i64::from(h.key_version))
        .bind(h.anchor_seq)
        .bind(h.anchor_hash.as_str())
        .bind(h.created_at.millis())
        .bind(h.updated_at.millis())
}

async fn insert_checkpoint(db: &mut SqliteConnection, c: &AuditCheckpoint) -> StoreResult<()> {
    sqlx::query(INSERT_CHECKPOINT)
        .bind(c.tenant.as_str())
        .bind(c.segment.as_str())
        .bind(c.seq)
        .bind(c.hash.as_str())
        .bind(c.at.millis())
        .bind(c.jws.as_str())
        .execute(db)
        .await
        .map_err(backend)?;
    Ok(())
}

pub(crate) async fn append(pool: &SqlitePool, batch: &AuditBatch) -> StoreResult<()> {
    // The whole transaction is one multi-statement query: one trip to the connection's worker
    // thread instead of one per statement. Under load every trip waits for a CPU, and the
    // group commit's latency is what every waiting token request pays.
    let mut sql = String::with_capacity(128 + 64 * batch.records.len());
    sql.push_str("BEGIN IMMEDIATE;\n");
    if !batch.records.is_empty() {
        sql.push_str(&insert_records_sql(batch.records.len()));
        sql.push_str(";\n");
    }
    for _ in &batch.heads {
        sql.push_str(UPSERT_HEAD);
        sql.push_str(";\n");
    }
    sql.push_str("COMMIT;");
    // Prepared once per (batch size, heads) and cached by the connection: preparing a 64-row
    // insert costs more than running it. Batches are at most as large as the number of
    // requests in flight, so few sizes recur.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in &batch.records {
        q = bind_record(q, r);
    }
    for h in &batch.heads {
        q = bind_segment(q, h);
    }
    let mut conn = pool.acquire().await.map_err(backend)?;
    match q.execute(&mut *conn).await {
        Ok(_) => Ok(()),
        Err(e) => {
            // A statement failed inside the transaction (a duplicate seq is `Conflict`): undo
            // the batch before the connection goes back to the pool.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(backend(e))
        }
    }
}

/// The exclusive upper bound of the strings starting with `prefix` (in byte order): the prefix
/// with its last character incremented (`token.` → `token/`). Range bounds, not `LIKE`, so that
/// `_` and `%` in a prefix mean themselves.
fn prefix_end(prefix: &str) -> Option<String> {
    let last = prefix.chars().next_back()?;
    let next = char::from_u32(u32::from(last) + 1)?;
    let mut end = prefix[..prefix.len() - last.len_utf8()].to_owned();
    end.push(next);
    Some(end)
}

pub(crate) async fn query(
    pool: &SqlitePool,
    q: &AuditQuery,
) -> StoreResult<Vec<StoredAuditRecord>> {
    let mut sql = QueryBuilder::<Sqlite>::new(format!(
        "SELECT {RECORD_COLS} FROM audit_records WHERE tenant = "
    ));
    sql.push_bind(q.tenant.as_str().to_owned());
    if let Some(subject) = &q.subject {
        sql.push(" AND subject = ").push_bind(subject.clone());
    }
    match &q.action {
        Some(action) if action.ends_with('.') => {
            let end = prefix_end(action)
                .ok_or_else(|| StoreError::Backend("an action prefix without an end".into()))?;
            sql.push(" AND action >= ").push_bind(action.clone());
            sql.push(" AND action < ").push_bind(end);
        }
        Some(action) => {
            sql.push(" AND action = ").push_bind(action.clone());
        }
        None => {}
    }
    if let Some(outcome) = q.outcome {
        sql.push(" AND outcome = ").push_bind(outcome.as_str());
    }
    if let Some(since) = q.since {
        sql.push(" AND at >= ").push_bind(since.millis());
    }
    if let Some(until) = q.until {
        sql.push(" AND at < ").push_bind(until.millis());
    }
    if let Some(after) = q.after {
        sql.push(" AND id > ").push_bind(after);
    }
    sql.push(" ORDER BY id LIMIT ")
        .push_bind(i64::from(q.limit));
    sql.build().fetch_rows(pool, rows::audit_record).await
}

pub(crate) async fn segments(
    pool: &SqlitePool,
    tenant: &TenantName,
) -> StoreResult<Vec<SegmentHead>> {
    let sql = format!(
        "SELECT {SEGMENT_COLS} FROM audit_segments WHERE tenant = ? \
         ORDER BY created_at, segment"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .fetch_rows(pool, rows::segment_head)
        .await
}

pub(crate) async fn segment_records(
    pool: &SqlitePool,
    tenant: &TenantName,
    segment: &str,
    after_seq: i64,
    limit: u32,
) -> StoreResult<Vec<StoredAuditRecord>> {
    let sql = format!(
        "SELECT {RECORD_COLS} FROM audit_records WHERE tenant = ? AND segment = ? AND seq > ? \
         ORDER BY seq LIMIT ?"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(segment)
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_rows(pool, rows::audit_record)
        .await
}

pub(crate) async fn add_checkpoint(pool: &SqlitePool, c: &AuditCheckpoint) -> StoreResult<()> {
    let mut conn = pool.acquire().await.map_err(backend)?;
    insert_checkpoint(&mut conn, c).await
}

pub(crate) async fn checkpoints(
    pool: &SqlitePool,
    tenant: &TenantName,
) -> StoreResult<Vec<AuditCheckpoint>> {
    let sql = format!(
        "SELECT {CHECKPOINT_COLS} FROM audit_checkpoints WHERE tenant = ? ORDER BY segment, seq"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .fetch_rows(pool, rows::checkpoint)
        .await
}

pub(crate) async fn prune(
    pool: &SqlitePool,
    tenant: &TenantName,
    segment: &str,
    through_seq: i64,
    anchor_hash: &str,
) -> StoreResult<u64> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let anchored = sqlx::query(
        "UPDATE audit_segments SET anchor_seq = ?, anchor_hash = ? \
         WHERE tenant = ? AND segment = ?",
    )
    .bind(through_seq)
    .bind(anchor_hash)
    .bind(tenant.as_str())
    .bind(segment)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    if anchored.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    let deleted =
        sqlx::query("DELETE FROM audit_records WHERE tenant = ? AND segment = ? AND seq <= ?")
            .bind(tenant.as_str())
            .bind(segment)
            .bind(through_seq)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
    tx.commit().await.map_err(backend)?;
    Ok(deleted)
}

/// The whole log for export: records by id, segments by (tenant, segment), checkpoints by
/// (tenant, segment, seq).
pub(crate) async fn export(
    db: &mut SqliteConnection,
) -> StoreResult<(
    Vec<StoredAuditRecord>,
    Vec<SegmentHead>,
    Vec<AuditCheckpoint>,
)> {
    let sql = format!("SELECT {RECORD_COLS} FROM audit_records ORDER BY id");
    let records = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_rows(&mut *db, rows::audit_record)
        .await?;
    let sql = format!("SELECT {SEGMENT_COLS} FROM audit_segments ORDER BY tenant, segment");
    let segments = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_rows(&mut *db, rows::segment_head)
        .await?;
    let sql =
        format!("SELECT {CHECKPOINT_COLS} FROM audit_checkpoints ORDER BY tenant, segment, seq");
    let checkpoints = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_rows(&mut *db, rows::checkpoint)
        .await?;
    Ok((records, segments, checkpoints))
}

/// Loads an exported log, keeping record ids (new rows then continue above the highest)
/// and segments' anchors.
pub(crate) async fn import(
    db: &mut SqliteConnection,
    records: &[StoredAuditRecord],
    segments: &[SegmentHead],
    checkpoints: &[AuditCheckpoint],
) -> StoreResult<()> {
    for r in records {
        bind_record(sqlx::query(INSERT_RECORD_WITH_ID).bind(r.id), r)
            .execute(&mut *db)
            .await
            .map_err(backend)?;
    }
    for h in segments {
        bind_segment(sqlx::query(INSERT_SEGMENT), h)
            .execute(&mut *db)
            .await
            .map_err(backend)?;
    }
    for c in checkpoints {
        insert_checkpoint(db, c).await?;
    }
    Ok(())
}
