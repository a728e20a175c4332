//! The audit log: records, segment heads and checkpoints.
//!
//! `append` is on the token hot path (the writer's group commit, up to a few hundred records):
//! the records and the heads go in as column arrays (`UNNEST`) in a single statement — one
//! round trip, one implicit transaction, all or nothing.
//!
//! Record ids come from an identity column. Within a batch they follow the batch's order; across
//! replicas committing at once they follow the order the rows were inserted, which may differ
//! from commit order by the length of a commit (serialising every replica's audit commits to
//! close that gap would put them all on one lock, which segments exist to avoid).

use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
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

/// Inserts records `$1`…`$11` (column arrays, in batch order) and upserts heads `$12`…`$21`.
/// A new segment takes every field; a known one moves its head only (never its anchor, which
/// pruning sets, nor its creation time).
const APPEND_SQL: &str = "WITH records AS (\
         INSERT INTO audit_records \
         (tenant, segment, seq, at, subject, action, outcome, body, hash, key_version, mac) \
         SELECT u.tenant, u.segment, u.seq, u.at, u.subject, u.action, u.outcome, u.body, \
         u.hash, u.key_version, u.mac \
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], \
         $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::text[]) \
         WITH ORDINALITY AS u (tenant, segment, seq, at, subject, action, outcome, body, hash, \
         key_version, mac, n) \
         ORDER BY u.n) \
     INSERT INTO audit_segments (tenant, segment, head_seq, head_hash, head_mac, key_version, \
         anchor_seq, anchor_hash, created_at, updated_at) \
     SELECT * FROM UNNEST($12::text[], $13::text[], $14::bigint[], $15::text[], $16::text[], \
         $17::bigint[], $18::bigint[], $19::text[], $20::bigint[], $21::bigint[]) \
     ON CONFLICT (tenant, segment) DO UPDATE SET head_seq = EXCLUDED.head_seq, \
         head_hash = EXCLUDED.head_hash, head_mac = EXCLUDED.head_mac, \
         key_version = EXCLUDED.key_version, updated_at = EXCLUDED.updated_at";

/// Records with their ids, as column arrays `$1`…`$12` (import).
const IMPORT_RECORDS_SQL: &str = "INSERT INTO audit_records \
     (id, tenant, segment, seq, at, subject, action, outcome, body, hash, key_version, mac) \
     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], \
     $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::text[])";

/// Segments whole, as column arrays `$1`…`$10` (import).
const IMPORT_SEGMENTS_SQL: &str = "INSERT INTO audit_segments (tenant, segment, head_seq, \
     head_hash, head_mac, key_version, anchor_seq, anchor_hash, created_at, updated_at) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
     $6::bigint[], $7::bigint[], $8::text[], $9::bigint[], $10::bigint[])";

const INSERT_CHECKPOINT: &str = "INSERT INTO audit_checkpoints \
     (tenant, segment, seq, hash, at, jws) VALUES ($1, $2, $3, $4, $5, $6)";

/// Rows per statement when importing (each column array stays a few MB at most).
const IMPORT_CHUNK: usize = 5_000;

/// Records as column arrays, in order.
#[derive(Default)]
struct RecordColumns<'a> {
    id: Vec<i64>,
    tenant: Vec<&'a str>,
    segment: Vec<&'a str>,
    seq: Vec<i64>,
    at: Vec<i64>,
    subject: Vec<Option<&'a str>>,
    action: Vec<&'a str>,
    outcome: Vec<&'a str>,
    body: Vec<&'a str>,
    hash: Vec<&'a str>,
    key_version: Vec<i64>,
    mac: Vec<&'a str>,
}

impl<'a> RecordColumns<'a> {
    fn of(records: &'a [StoredAuditRecord]) -> Self {
        let mut c = Self::default();
        for r in records {
            c.id.push(r.id);
            c.tenant.push(r.tenant.as_str());
            c.segment.push(&r.segment);
            c.seq.push(r.seq);
            c.at.push(r.at.millis());
            c.subject.push(r.subject.as_deref());
            c.action.push(&r.action);
            c.outcome.push(&r.outcome);
            c.body.push(&r.body);
            c.hash.push(&r.hash);
            c.key_version.push(i64::from(r.key_version));
            c.mac.push(&r.mac);
        }
        c
    }
}

/// Segment heads as column arrays, in order.
#[derive(Default)]
struct SegmentColumns<'a> {
    tenant: Vec<&'a str>,
    segment: Vec<&'a str>,
    head_seq: Vec<i64>,
    head_hash: Vec<&'a str>,
    head_mac: Vec<&'a str>,
    key_version: Vec<i64>,
    anchor_seq: Vec<i64>,
    anchor_hash: Vec<&'a str>,
    created_at: Vec<i64>,
    updated_at: Vec<i64>,
}

impl<'a> SegmentColumns<'a> {
    fn of(heads: impl IntoIterator<Item = &'a SegmentHead>) -> Self {
        let mut c = Self::default();
        for h in heads {
            c.tenant.push(h.tenant.as_str());
            c.segment.push(&h.segment);
            c.head_seq.push(h.head_seq);
            c.head_hash.push(&h.head_hash);
            c.head_mac.push(&h.head_mac);
            c.key_version.push(i64::from(h.key_version));
            c.anchor_seq.push(h.anchor_seq);
            c.anchor_hash.push(&h.anchor_hash);
            c.created_at.push(h.created_at.millis());
            c.updated_at.push(h.updated_at.millis());
        }
        c
    }
}

/// The last head given for each (tenant, segment), in first-seen order: one upsert statement
/// may not update a row twice.
fn last_heads(heads: &[SegmentHead]) -> Vec<&SegmentHead> {
    let mut out: Vec<&SegmentHead> = Vec::with_capacity(heads.len());
    for h in heads {
        match out
            .iter_mut()
            .find(|o| o.tenant == h.tenant && o.segment == h.segment)
        {
            Some(o) => *o = h,
            None => out.push(h),
        }
    }
    out
}

pub(crate) async fn append(pool: &PgPool, batch: &AuditBatch) -> StoreResult<()> {
    let r = RecordColumns::of(&batch.records);
    let h = SegmentColumns::of(last_heads(&batch.heads));
    // A duplicate (tenant, segment, seq) is `Conflict`, and the statement changes nothing.
    sqlx::query(APPEND_SQL)
        .bind(&r.tenant)
        .bind(&r.segment)
        .bind(&r.seq)
        .bind(&r.at)
        .bind(&r.subject)
        .bind(&r.action)
        .bind(&r.outcome)
        .bind(&r.body)
        .bind(&r.hash)
        .bind(&r.key_version)
        .bind(&r.mac)
        .bind(&h.tenant)
        .bind(&h.segment)
        .bind(&h.head_seq)
        .bind(&h.head_hash)
        .bind(&h.head_mac)
        .bind(&h.key_version)
        .bind(&h.anchor_seq)
        .bind(&h.anchor_hash)
        .bind(&h.created_at)
        .bind(&h.updated_at)
        .execute(pool)
        .await
        .map_err(backend)?;
    Ok(())
}

/// The exclusive upper bound of the strings starting with `prefix` (in byte order, which
/// `COLLATE "C"` gives): the prefix with its last character incremented (`token.` → `token/`).
/// Range bounds, not `LIKE`, so that `_` and `%` in a prefix mean themselves.
fn prefix_end(prefix: &str) -> Option<String> {
    let last = prefix.chars().next_back()?;
    let next = char::from_u32(u32::from(last) + 1)?;
    let mut end = prefix[..prefix.len() - last.len_utf8()].to_owned();
    end.push(next);
    Some(end)
}

pub(crate) async fn query(pool: &PgPool, q: &AuditQuery) -> StoreResult<Vec<StoredAuditRecord>> {
    let mut sql = QueryBuilder::<Postgres>::new(format!(
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

pub(crate) async fn segments(pool: &PgPool, tenant: &TenantName) -> StoreResult<Vec<SegmentHead>> {
    let sql = format!(
        "SELECT {SEGMENT_COLS} FROM audit_segments WHERE tenant = $1 \
         ORDER BY created_at, segment"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .fetch_rows(pool, rows::segment_head)
        .await
}

pub(crate) async fn segment_records(
    pool: &PgPool,
    tenant: &TenantName,
    segment: &str,
    after_seq: i64,
    limit: u32,
) -> StoreResult<Vec<StoredAuditRecord>> {
    let sql = format!(
        "SELECT {RECORD_COLS} FROM audit_records WHERE tenant = $1 AND segment = $2 \
         AND seq > $3 ORDER BY seq LIMIT $4"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(segment)
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_rows(pool, rows::audit_record)
        .await
}

async fn insert_checkpoint<'e>(
    db: impl sqlx::PgExecutor<'e>,
    c: &AuditCheckpoint,
) -> StoreResult<()> {
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

pub(crate) async fn add_checkpoint(pool: &PgPool, c: &AuditCheckpoint) -> StoreResult<()> {
    insert_checkpoint(pool, c).await
}

pub(crate) async fn checkpoints(
    pool: &PgPool,
    tenant: &TenantName,
) -> StoreResult<Vec<AuditCheckpoint>> {
    let sql = format!(
        "SELECT {CHECKPOINT_COLS} FROM audit_checkpoints WHERE tenant = $1 \
         ORDER BY segment, seq"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .fetch_rows(pool, rows::checkpoint)
        .await
}

pub(crate) async fn prune(
    pool: &PgPool,
    tenant: &TenantName,
    segment: &str,
    through_seq: i64,
    anchor_hash: &str,
) -> StoreResult<u64> {
    // One statement: the records go only if the segment exists and takes the anchor.
    let (anchored, deleted): (i64, i64) = sqlx::query_as(
        "WITH anchored AS (\
             UPDATE audit_segments SET anchor_seq = $3, anchor_hash = $4 \
             WHERE tenant = $1 AND segment = $2 RETURNING 1), \
         gone AS (\
             DELETE FROM audit_records WHERE tenant = $1 AND segment = $2 AND seq <= $3 \
             AND EXISTS (SELECT 1 FROM anchored) RETURNING 1) \
         SELECT (SELECT COUNT(*) FROM anchored), (SELECT COUNT(*) FROM gone)",
    )
    .bind(tenant.as_str())
    .bind(segment)
    .bind(through_seq)
    .bind(anchor_hash)
    .fetch_one(pool)
    .await
    .map_err(backend)?;
    if anchored == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(u64::try_from(deleted).unwrap_or(0))
}

/// The whole log for export: records by id, segments by (tenant, segment), checkpoints by
/// (tenant, segment, seq).
pub(crate) async fn export(
    db: &mut PgConnection,
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

/// Loads an exported log, keeping record ids (the identity then continues above the highest)
/// and segments' anchors.
pub(crate) async fn import(
    db: &mut PgConnection,
    records: &[StoredAuditRecord],
    segments: &[SegmentHead],
    checkpoints: &[AuditCheckpoint],
) -> StoreResult<()> {
    for chunk in records.chunks(IMPORT_CHUNK) {
        let r = RecordColumns::of(chunk);
        sqlx::query(IMPORT_RECORDS_SQL)
            .bind(&r.id)
            .bind(&r.tenant)
            .bind(&r.segment)
            .bind(&r.seq)
            .bind(&r.at)
            .bind(&r.subject)
            .bind(&r.action)
            .bind(&r.outcome)
            .bind(&r.body)
            .bind(&r.hash)
            .bind(&r.key_version)
            .bind(&r.mac)
            .execute(&mut *db)
            .await
            .map_err(backend)?;
    }
    if let Some(top) = records.iter().map(|r| r.id).max() {
        sqlx::query("SELECT setval(pg_get_serial_sequence('audit_records', 'id'), $1)")
            .bind(top)
            .execute(&mut *db)
            .await
            .map_err(backend)?;
    }
    for chunk in segments.chunks(IMPORT_CHUNK) {
        let h = SegmentColumns::of(chunk);
        sqlx::query(IMPORT_SEGMENTS_SQL)
            .bind(&h.tenant)
            .bind(&h.segment)
            .bind(&h.head_seq)
            .bind(&h.head_hash)
            .bind(&h.head_mac)
            .bind(&h.key_version)
            .bind(&h.anchor_seq)
            .bind(&h.anchor_hash)
            .bind(&h.created_at)
            .bind(&h.updated_at)
            .execute(&mut *db)
            .await
            .map_err(backend)?;
    }
    for c in checkpoints {
        insert_checkpoint(&mut *db, c).await?;
    }
    Ok(())
}
