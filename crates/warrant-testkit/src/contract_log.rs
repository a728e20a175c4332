//! The store contract for the append-mostly logs: revocations (cursors, the feed, pruning) and
//! the audit log (records, segment heads, checkpoints, retention). Same shape as
//! [`crate::contract`]: each check takes a fresh, migrated store (two for the pair checks) and
//! panics on the first deviation.
//!
//! Audit records here are synthetic: a store never reads a body or checks a chain, it keeps
//! what it is given byte for byte, so the bodies hold unicode and escapes to catch mangling.

use std::fmt::Debug;

use warrant_core::audit::{
    AuditBatch, AuditCheckpoint, AuditQuery, GENESIS, Outcome, SegmentHead, StoredAuditRecord,
};
use warrant_core::revocation::{NewRevocation, RevocationEntry, RevocationKind, StoredFeedPage};
use warrant_core::store::StoreResult;
use warrant_core::{Snapshot, Store, StoreError, TenantName, Timestamp};

use crate::builders::{T0, tenant_name};

// ---------------------------------------------------------------------------------------------
// helpers

fn ok<T>(r: StoreResult<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: expected Ok, got Err({e:?})"),
    }
}

fn conflict<T: Debug>(r: StoreResult<T>, what: &str) {
    if !matches!(r, Err(StoreError::Conflict)) {
        panic!("{what}: expected Err(Conflict), got {r:?}");
    }
}

fn ms(delta_ms: i64) -> Timestamp {
    Timestamp::from_millis(T0.millis() + delta_ms)
}

/// A `jti` revocation of `tenant`, made at [`T0`], prunable after `T0 + prune_in_ms`.
fn jti(tenant: &str, jti: &str, prune_in_ms: i64) -> NewRevocation {
    let prune_after = ms(prune_in_ms);
    NewRevocation {
        tenant: tenant_name(tenant),
        kind: RevocationKind::Jti {
            jti: jti.to_owned(),
            exp: prune_after.secs() - 60,
        },
        created_at: T0,
        prune_after,
    }
}

/// A subject watermark of `tenant`, made at [`T0`], prunable after `T0 + prune_in_ms`.
fn watermark(tenant: &str, sub: &str, prune_in_ms: i64) -> NewRevocation {
    NewRevocation {
        tenant: tenant_name(tenant),
        kind: RevocationKind::Subject {
            sub: sub.to_owned(),
            not_before: T0.secs(),
        },
        created_at: ms(1),
        prune_after: ms(prune_in_ms),
    }
}

/// Adds `r` and checks that the entry returned is `r` with a cursor.
async fn add(store: &dyn Store, r: &NewRevocation) -> RevocationEntry {
    let e = ok(store.add_revocation(r).await, "add_revocation");
    let want = RevocationEntry {
        cursor: e.cursor,
        tenant: r.tenant.clone(),
        kind: r.kind.clone(),
        created_at: r.created_at,
        prune_after: r.prune_after,
    };
    assert_eq!(e, want, "add_revocation returns what it stored");
    e
}

async fn feed(store: &dyn Store, tenant: &str, after: Option<i64>, limit: u32) -> StoredFeedPage {
    ok(
        store
            .revocation_feed(&tenant_name(tenant), after, limit)
            .await,
        &format!("revocation_feed({tenant}, {after:?}, {limit})"),
    )
}

fn cursors(v: &[RevocationEntry]) -> Vec<i64> {
    v.iter().map(|e| e.cursor).collect()
}

/// Record `seq` of `segment`: `at` is `T0 + seq` seconds; the id is left for the store.
fn record(tenant: &str, segment: &str, seq: i64) -> StoredAuditRecord {
    StoredAuditRecord {
        id: 0,
        tenant: tenant_name(tenant),
        segment: segment.to_owned(),
        seq,
        at: ms(seq * 1000),
        subject: Some("svc-1".into()),
        action: "token.issue".into(),
        outcome: "success".into(),
        body: format!(
            r#"{{"v":1,"tenant":"{tenant}","segment":"{segment}","seq":{seq},"note":"ünï \"q\" \\ 🚀"}}"#
        ),
        hash: format!("{:064x}", seq * 7919 + segment.len() as i64),
        key_version: 3,
        mac: format!("mac-{tenant}-{segment}-{seq}"),
    }
}

/// A segment head at `seq`, created at `T0 + created_in_ms`, no anchor.
fn head(tenant: &str, segment: &str, seq: i64, created_in_ms: i64) -> SegmentHead {
    SegmentHead {
        tenant: tenant_name(tenant),
        segment: segment.to_owned(),
        head_seq: seq,
        head_hash: record(tenant, segment, seq).hash,
        head_mac: format!("head-mac-{segment}-{seq}"),
        key_version: 3,
        anchor_seq: 0,
        anchor_hash: GENESIS.to_owned(),
        created_at: ms(created_in_ms),
        updated_at: ms(seq * 1000),
    }
}

fn checkpoint(tenant: &str, segment: &str, seq: i64) -> AuditCheckpoint {
    AuditCheckpoint {
        tenant: tenant_name(tenant),
        segment: segment.to_owned(),
        seq,
        hash: record(tenant, segment, seq).hash,
        at: ms(seq * 1000 + 1),
        jws: format!("eyJhbGciOiJFUzI1NiJ9.{segment}-{seq}.c2ln"),
    }
}

/// Records `seqs` of one segment and that segment's head, appended in one batch.
async fn append(
    store: &dyn Store,
    tenant: &str,
    segment: &str,
    seqs: std::ops::RangeInclusive<i64>,
) {
    let last = *seqs.end();
    let batch = AuditBatch {
        records: seqs.map(|s| record(tenant, segment, s)).collect(),
        heads: vec![head(tenant, segment, last, 0)],
    };
    ok(
        store.append_audit(&batch).await,
        &format!("append_audit({tenant}/{segment} ..={last})"),
    );
}

/// Every record of a segment, ascending.
async fn segment_records(store: &dyn Store, tenant: &str, segment: &str) -> Vec<StoredAuditRecord> {
    ok(
        store
            .audit_segment_records(&tenant_name(tenant), segment, 0, 10_000)
            .await,
        "audit_segment_records",
    )
}

fn seqs(v: &[StoredAuditRecord]) -> Vec<i64> {
    v.iter().map(|r| r.seq).collect()
}

/// `r` as the store should return it, with the id it assigned.
fn with_id(r: &StoredAuditRecord, id: i64) -> StoredAuditRecord {
    StoredAuditRecord { id, ..r.clone() }
}

fn query(tenant: &str) -> AuditQuery {
    AuditQuery {
        tenant: tenant_name(tenant),
        subject: None,
        action: None,
        outcome: None,
        since: None,
        until: None,
        after: None,
        limit: 1_000,
    }
}

// The checks, by log.
mod audit;
mod revocations;
pub use audit::*;
pub use revocations::*;

// ---------------------------------------------------------------------------------------------
// export and import

/// What [`seed_log`] made that the round trip looks at again.
pub(crate) struct SeededLog {
    /// The highest cursor assigned (the newest entry was pruned).
    pub head: i64,
    /// The cursor of acme's pruned entry.
    pub acme_pruned: i64,
    pub tenant: TenantName,
}

/// Fills the logs with every kind of row: kept and pruned revocations of two tenants (the
/// newest one pruned, so the head is above every kept cursor), audit records of two segments
/// (one pruned to an anchor), their heads, and checkpoints.
pub(crate) async fn seed_log(store: &dyn Store) -> SeededLog {
    let acme_pruned = add(store, &jti("acme", "gone-1", 1_000)).await.cursor;
    add(store, &watermark("acme", "kept", 3_600_000)).await;
    add(store, &jti("zeta", "z1", 3_600_000)).await;
    let newest = add(store, &jti("beta", "gone-2", 1_000)).await;
    assert_eq!(
        ok(
            store.prune_revocations(ms(2_000)).await,
            "prune_revocations"
        ),
        2
    );
    append(store, "acme", "w1", 1..=4).await;
    append(store, "acme", "w0", 1..=1).await;
    append(store, "beta", "w1", 1..=2).await;
    for c in [checkpoint("acme", "w1", 2), checkpoint("acme", "w1", 4)] {
        ok(store.add_audit_checkpoint(&c).await, "add_audit_checkpoint");
    }
    ok(
        store
            .prune_audit(&tenant_name("acme"), "w1", 2, &record("acme", "w1", 2).hash)
            .await,
        "prune_audit",
    );
    SeededLog {
        head: newest.cursor,
        acme_pruned,
        tenant: tenant_name("acme"),
    }
}

/// The log part of the round trip: the snapshot holds the seeded rows; after import the
/// feed (head and marks included) and queries agree, and new cursors and ids continue above
/// every imported (or pruned) one.
pub(crate) async fn check_log_round_trip(
    store: &dyn Store,
    other: &dyn Store,
    snapshot: &Snapshot,
    seeded: &SeededLog,
) {
    assert_eq!(snapshot.revocations.len(), 2, "{:?}", snapshot.revocations);
    assert_eq!(
        snapshot.revocations_pruned,
        vec![
            (tenant_name("acme"), seeded.acme_pruned),
            (tenant_name("beta"), seeded.head),
        ]
    );
    assert_eq!(
        snapshot.audit_records.len(),
        5,
        "{:?}",
        snapshot.audit_records
    );
    assert_eq!(
        snapshot.audit_segments.len(),
        3,
        "{:?}",
        snapshot.audit_segments
    );
    assert_eq!(snapshot.audit_checkpoints.len(), 2);

    for tenant in ["acme", "beta", "zeta"] {
        assert_eq!(
            feed(other, tenant, None, 100).await,
            feed(store, tenant, None, 100).await,
            "the feed of {tenant} after import"
        );
    }
    assert_eq!(feed(other, "acme", None, 100).await.head, seeded.head);
    let t = &seeded.tenant;
    assert_eq!(
        ok(other.query_audit(&query(t.as_str())).await, "query_audit"),
        ok(store.query_audit(&query(t.as_str())).await, "query_audit")
    );
    assert_eq!(
        ok(other.audit_segments(t).await, "audit_segments"),
        ok(store.audit_segments(t).await, "audit_segments")
    );
    let next = add(other, &jti("acme", "after-import", 3_600_000)).await;
    assert!(
        next.cursor > seeded.head,
        "a cursor at or below the source's head after import: {}",
        next.cursor
    );
    append(other, "acme", "w9", 1..=1).await;
    let new = segment_records(other, "acme", "w9").await;
    let top = snapshot
        .audit_records
        .iter()
        .map(|r| r.id)
        .max()
        .unwrap_or(0);
    assert!(
        new[0].id > top,
        "an id at or below an imported one: {}",
        new[0].id
    );
}

/// `import` into a store that holds only log rows — here only a pruned-revocation mark, there
/// only a checkpoint — is `Conflict` and changes nothing.
pub async fn import_refuses_a_store_holding_only_log_rows(store: &dyn Store, other: &dyn Store) {
    add(store, &jti("acme", "j", 1_000)).await;
    ok(
        store.prune_revocations(ms(2_000)).await,
        "prune_revocations",
    );
    ok(
        other
            .add_audit_checkpoint(&checkpoint("acme", "w1", 1))
            .await,
        "add_audit_checkpoint",
    );
    for (s, what) in [(store, "a pruned revocation"), (other, "a checkpoint")] {
        let before = ok(s.export().await, "export");
        conflict(
            s.import(&Snapshot::default()).await,
            &format!("import into a store holding only {what}"),
        );
        assert_eq!(
            ok(s.export().await, "export"),
            before,
            "import changed the store"
        );
    }
}
