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

// ---------------------------------------------------------------------------------------------
// revocations

/// Cursors are positive and strictly increasing; entries come back with every field (both
/// kinds); the feed pages by `after` and `limit`, ascending, and reports the head even on an
/// empty page; nothing is pruned yet.
pub async fn revocation_cursors_increase_and_feed_pages(store: &dyn Store) {
    let empty = feed(store, "acme", None, 10).await;
    assert_eq!(
        empty,
        StoredFeedPage {
            entries: vec![],
            pruned_through: 0,
            head: 0
        },
        "the feed of an empty store"
    );
    let made = [
        jti("acme", "jti-1", 3_600_000),
        watermark("acme", "svc:ünïcødé/1", 7_200_000),
        jti("acme", &"x".repeat(256), 3_600_000),
        watermark("acme", "svc-2", 1),
        jti("acme", "jti-5", -1),
    ];
    let mut added = Vec::new();
    for r in &made {
        added.push(add(store, r).await);
    }
    let c = cursors(&added);
    assert!(c[0] > 0, "cursors are positive: {c:?}");
    assert!(c.windows(2).all(|w| w[0] < w[1]), "cursors increase: {c:?}");
    let head = c[4];

    let all = feed(store, "acme", None, 100).await;
    assert_eq!(
        all,
        StoredFeedPage {
            entries: added.clone(),
            pruned_through: 0,
            head
        }
    );
    let page = feed(store, "acme", Some(c[1]), 2).await;
    assert_eq!(page.entries, added[2..4].to_vec(), "after the second, two");
    assert_eq!(page.head, head);
    assert_eq!(
        feed(store, "acme", None, 2).await.entries,
        added[..2].to_vec(),
        "a snapshot is limited too"
    );
    assert_eq!(
        feed(store, "acme", Some(c[3]), 100).await.entries,
        added[4..].to_vec()
    );
    assert_eq!(
        feed(store, "acme", Some(0), 100).await.entries,
        added,
        "after 0: everything"
    );
    let past_the_end = feed(store, "acme", Some(head), 100).await;
    assert_eq!(
        past_the_end,
        StoredFeedPage {
            entries: vec![],
            pruned_through: 0,
            head
        },
        "an empty page still reports the head"
    );
}

/// A tenant's feed holds only its entries; the head is the whole store's (another tenant's
/// newer entry moves it); an unknown tenant has an empty feed with the same head.
pub async fn revocation_feed_is_per_tenant(store: &dyn Store) {
    let a1 = add(store, &jti("acme", "a1", 3_600_000)).await;
    let b1 = add(store, &jti("beta", "b1", 3_600_000)).await;
    let a2 = add(store, &watermark("acme", "svc", 3_600_000)).await;
    let b2 = add(store, &watermark("beta", "svc", 3_600_000)).await;

    let acme = feed(store, "acme", None, 100).await;
    assert_eq!(acme.entries, vec![a1.clone(), a2.clone()]);
    assert_eq!(acme.head, b2.cursor, "the head is store-wide");
    let beta = feed(store, "beta", Some(b1.cursor), 100).await;
    assert_eq!(beta.entries, vec![b2.clone()]);
    assert_eq!(beta.head, b2.cursor);
    let acme_after = feed(store, "acme", Some(a2.cursor), 100).await;
    assert_eq!(
        acme_after.entries,
        vec![],
        "beta's newer entry is not acme's"
    );
    assert_eq!(acme_after.head, b2.cursor);
    let nobody = feed(store, "nobody", None, 100).await;
    assert_eq!(
        nobody,
        StoredFeedPage {
            entries: vec![],
            pruned_through: 0,
            head: b2.cursor
        }
    );
}

/// Pruning every entry, the newest included, keeps the head (and `pruned_through`) where they
/// were, and the next cursor is above both: a cursor is never handed out twice.
pub async fn revocation_head_survives_pruning_the_highest(store: &dyn Store) {
    let mut last = 0;
    for i in 0..3 {
        last = add(store, &jti("acme", &format!("j{i}"), 1_000))
            .await
            .cursor;
    }
    assert_eq!(
        ok(
            store.prune_revocations(ms(2_000)).await,
            "prune_revocations"
        ),
        3
    );
    assert_eq!(
        feed(store, "acme", None, 100).await,
        StoredFeedPage {
            entries: vec![],
            pruned_through: last,
            head: last
        }
    );
    assert_eq!(
        feed(store, "acme", Some(last), 100).await.head,
        last,
        "the head after pruning the highest entry"
    );
    assert_eq!(
        ok(store.revocations_after(0, 100).await, "revocations_after"),
        vec![]
    );
    let next = add(store, &jti("beta", "after-prune", 3_600_000)).await;
    assert!(
        next.cursor > last,
        "a cursor was reused after pruning: {} ≤ {last}",
        next.cursor
    );
    assert_eq!(feed(store, "acme", None, 100).await.head, next.cursor);
}

/// Per tenant, pruning removes the longest prefix of entries past their `prune_after` (strictly
/// before now), stopping at the first one still needed even if later ones are prunable, and
/// raises that tenant's `pruned_through` to the last cursor removed. It returns how many it
/// removed; pruning again at the same time removes nothing.
pub async fn revocation_prune_removes_only_a_prefix(store: &dyn Store) {
    add(store, &jti("acme", "a1", 1_000)).await;
    let b1 = add(store, &jti("beta", "b1", 1_000)).await;
    let a2 = add(store, &watermark("acme", "a2", 2_000)).await;
    // Exactly at `now`: not yet prunable.
    let a3 = add(store, &jti("acme", "a3", 5_000)).await;
    let a4 = add(store, &jti("acme", "a4", 1_000)).await;
    let b2 = add(store, &jti("beta", "b2", 9_000)).await;
    let c1 = add(store, &jti("gamma", "c1", 9_000)).await;

    assert_eq!(
        ok(
            store.prune_revocations(ms(5_000)).await,
            "prune_revocations"
        ),
        3,
        "a1, a2 and b1"
    );
    let acme = feed(store, "acme", None, 100).await;
    assert_eq!(
        acme.entries,
        vec![a3.clone(), a4.clone()],
        "a4 is prunable but follows a3, still needed"
    );
    assert_eq!(acme.pruned_through, a2.cursor);
    assert_eq!(acme.head, c1.cursor);
    let beta = feed(store, "beta", None, 100).await;
    assert_eq!(beta.entries, vec![b2.clone()]);
    assert_eq!(beta.pruned_through, b1.cursor);
    assert_eq!(feed(store, "gamma", None, 100).await.pruned_through, 0);
    assert_eq!(
        ok(store.prune_revocations(ms(5_000)).await, "prune again"),
        0
    );
    assert_eq!(
        feed(store, "acme", None, 100).await.pruned_through,
        a2.cursor
    );

    assert_eq!(
        ok(store.prune_revocations(ms(5_001)).await, "prune later"),
        2,
        "a3, then a4"
    );
    let acme = feed(store, "acme", None, 100).await;
    assert_eq!(acme.entries, vec![]);
    assert_eq!(acme.pruned_through, a4.cursor);
    assert_eq!(
        cursors(&ok(
            store.revocations_after(0, 100).await,
            "revocations_after"
        )),
        vec![b2.cursor, c1.cursor]
    );
    // Pruning an earlier time never lowers a mark.
    assert_eq!(ok(store.prune_revocations(ms(0)).await, "prune at T0"), 0);
    assert_eq!(
        feed(store, "acme", None, 100).await.pruned_through,
        a4.cursor
    );
    assert_eq!(
        feed(store, "beta", None, 100).await.pruned_through,
        b1.cursor
    );
}

/// `revocations_after` lists every tenant's entries after a cursor, ascending, at most `limit`.
pub async fn revocations_after_spans_tenants(store: &dyn Store) {
    let mut added = Vec::new();
    for (i, t) in ["acme", "beta", "acme", "gamma", "beta"].iter().enumerate() {
        added.push(add(store, &jti(t, &format!("j{i}"), 3_600_000)).await);
    }
    assert_eq!(
        ok(
            store.revocations_after(0, 100).await,
            "revocations_after(0)"
        ),
        added
    );
    assert_eq!(
        ok(
            store.revocations_after(added[1].cursor, 2).await,
            "revocations_after(second, 2)"
        ),
        added[2..4].to_vec()
    );
    assert_eq!(
        ok(
            store.revocations_after(added[4].cursor, 100).await,
            "revocations_after(last)"
        ),
        vec![]
    );
}

/// Writers adding at once get distinct cursors, increasing in each writer's order, and a
/// reader polling meanwhile never finds a new entry below a cursor it has already seen
/// (cursors follow commit order).
pub async fn concurrent_revocations_get_increasing_cursors(store: &dyn Store) {
    const WRITERS: usize = 6;
    const EACH: usize = 8;
    const TOTAL: usize = WRITERS * EACH;
    let writer = |w: usize| async move {
        let mut mine = Vec::new();
        for i in 0..EACH {
            let tenant = if w.is_multiple_of(2) { "acme" } else { "beta" };
            let r = jti(tenant, &format!("w{w}-{i}"), 3_600_000);
            mine.push(ok(store.add_revocation(&r).await, "concurrent add_revocation").cursor);
        }
        mine
    };
    let reader = async {
        let mut seen: Vec<i64> = Vec::new();
        for _ in 0..100_000 {
            let now = cursors(&ok(
                store.revocations_after(0, 1_000).await,
                "revocations_after while writing",
            ));
            let high = seen.last().copied().unwrap_or(0);
            let late: Vec<_> = now
                .iter()
                .filter(|c| **c < high && !seen.contains(c))
                .collect();
            assert!(
                late.is_empty(),
                "entries {late:?} appeared below cursor {high} after it was seen"
            );
            seen = now;
            if seen.len() == TOTAL {
                return seen;
            }
            tokio::task::yield_now().await;
        }
        panic!(
            "the reader never saw all {TOTAL} entries (saw {})",
            seen.len()
        );
    };
    let (w0, w1, w2, w3, w4, w5, seen) = tokio::join!(
        writer(0),
        writer(1),
        writer(2),
        writer(3),
        writer(4),
        writer(5),
        reader
    );
    let mut all = Vec::new();
    for mine in [w0, w1, w2, w3, w4, w5] {
        assert!(
            mine.windows(2).all(|p| p[0] < p[1]),
            "one writer's cursors must increase: {mine:?}"
        );
        all.extend(mine);
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), TOTAL, "cursors must be distinct");
    assert_eq!(
        seen, all,
        "the reader's final view is every cursor, ascending"
    );
    let acme = feed(store, "acme", None, 1_000).await;
    assert_eq!(acme.entries.len(), TOTAL / 2);
    assert_eq!(acme.head, all[TOTAL - 1]);
}

// ---------------------------------------------------------------------------------------------
// audit

/// `append_audit` stores every field of every record (ids assigned, increasing in batch order)
/// and inserts new segment heads whole; a later batch moves only a head's head fields and
/// `updated_at` — never `created_at` or the anchor (pruning sets it). Segments list by
/// (created_at, segment), per tenant.
pub async fn audit_append_inserts_records_and_upserts_heads(store: &dyn Store) {
    let hb = head("acme", "b-writer", 2, 5);
    let mut beta_head = head("beta", "b-writer", 1, 0);
    beta_head.created_at = ms(-1);
    let first = AuditBatch {
        records: vec![
            record("acme", "b-writer", 1),
            record("acme", "b-writer", 2),
            StoredAuditRecord {
                subject: None,
                ..record("beta", "b-writer", 1)
            },
        ],
        heads: vec![hb.clone(), beta_head.clone()],
    };
    ok(store.append_audit(&first).await, "append_audit(first)");
    let stored = segment_records(store, "acme", "b-writer").await;
    assert_eq!(seqs(&stored), vec![1, 2]);
    assert!(stored[0].id < stored[1].id, "ids follow the batch order");
    for (got, want) in stored.iter().zip(&first.records) {
        assert_eq!(got, &with_id(want, got.id), "every field round-trips");
    }
    let beta = segment_records(store, "beta", "b-writer").await;
    assert_eq!(beta, vec![with_id(&first.records[2], beta[0].id)]);
    assert!(beta[0].id > stored[1].id);

    // A second segment of acme, created earlier but named later: segments list by creation.
    let mut ha = head("acme", "z-writer", 1, 1);
    ha.created_at = ms(1);
    ok(
        store
            .append_audit(&AuditBatch {
                records: vec![record("acme", "z-writer", 1)],
                heads: vec![ha.clone()],
            })
            .await,
        "append_audit(z-writer)",
    );
    assert_eq!(
        ok(
            store.audit_segments(&tenant_name("acme")).await,
            "audit_segments"
        ),
        vec![ha.clone(), hb.clone()]
    );
    assert_eq!(
        ok(
            store.audit_segments(&tenant_name("beta")).await,
            "audit_segments(beta)"
        ),
        vec![beta_head]
    );

    // Prune to set an anchor, then move the head with a batch whose head carries other
    // `created_at` and anchor values: only the head fields and `updated_at` change.
    ok(
        store
            .prune_audit(&tenant_name("acme"), "b-writer", 1, &stored[0].hash)
            .await,
        "prune_audit",
    );
    let moved = SegmentHead {
        head_seq: 4,
        head_hash: record("acme", "b-writer", 4).hash,
        head_mac: "moved-mac".into(),
        key_version: 4,
        anchor_seq: 0,
        anchor_hash: GENESIS.to_owned(),
        created_at: ms(999_999),
        updated_at: ms(4_321),
        ..hb.clone()
    };
    ok(
        store
            .append_audit(&AuditBatch {
                records: vec![record("acme", "b-writer", 3), record("acme", "b-writer", 4)],
                heads: vec![moved.clone()],
            })
            .await,
        "append_audit(second)",
    );
    let want = SegmentHead {
        anchor_seq: 1,
        anchor_hash: stored[0].hash.clone(),
        created_at: hb.created_at,
        ..moved
    };
    assert_eq!(
        ok(
            store.audit_segments(&tenant_name("acme")).await,
            "audit_segments"
        ),
        vec![ha, want]
    );
    assert_eq!(
        seqs(&segment_records(store, "acme", "b-writer").await),
        vec![2, 3, 4]
    );
    // An empty batch is fine (the writer may flush nothing).
    ok(
        store.append_audit(&AuditBatch::default()).await,
        "append_audit(empty)",
    );
}

/// A record whose (tenant, segment, seq) exists — in the store or earlier in the same batch —
/// is `Conflict`, and nothing of that batch is stored: no record, no head move. The same seq in
/// another segment or tenant is fine.
pub async fn audit_duplicate_seq_is_conflict_and_atomic(store: &dyn Store) {
    append(store, "acme", "w1", 1..=2).await;
    let before = ok(store.export().await, "export");
    let clash = AuditBatch {
        records: vec![
            record("acme", "w1", 3),
            record("acme", "other", 1),
            record("acme", "w1", 2),
        ],
        heads: vec![head("acme", "w1", 3, 0), head("acme", "other", 1, 0)],
    };
    conflict(
        store.append_audit(&clash).await,
        "append_audit with an existing seq",
    );
    let twice = AuditBatch {
        records: vec![record("acme", "w1", 3), record("acme", "w1", 3)],
        heads: vec![head("acme", "w1", 3, 0)],
    };
    conflict(
        store.append_audit(&twice).await,
        "append_audit with a seq twice in one batch",
    );
    assert_eq!(
        ok(store.export().await, "export"),
        before,
        "a failed batch left something behind"
    );
    append(store, "acme", "w2", 1..=2).await;
    append(store, "beta", "w1", 1..=2).await;
    append(store, "acme", "w1", 3..=3).await;
    assert_eq!(
        seqs(&segment_records(store, "acme", "w1").await),
        vec![1, 2, 3]
    );
}

/// Each filter of `query_audit` alone and together: subject and action exact; an action
/// ending in `.` is a prefix, in which `_` and `%` are plain characters; outcome; `since`
/// inclusive, `until` exclusive; `after` an id; ordered by id, at most `limit`; one tenant only.
pub async fn audit_query_filters_and_pages(store: &dyn Store) {
    let rows: [(Option<&str>, &str, Outcome); 11] = [
        (Some("alice"), "token.issue", Outcome::Success),
        (Some("bob"), "token.refuse", Outcome::Failure),
        (None, "tenant.create", Outcome::Success),
        (Some("alice"), "key_ring.rotate", Outcome::Success),
        (Some("alice"), "keyXring.rotate", Outcome::Success),
        (Some("bob"), "token.refuse.aggregated", Outcome::Failure),
        (Some("alice"), "token", Outcome::Success),
        (Some("alice"), "tokens.issue", Outcome::Success),
        (Some("alice"), "token-x.issue", Outcome::Success),
        (Some("al%"), "100%.x", Outcome::Success),
        (Some("al_"), "100ab.x", Outcome::Success),
    ];
    let make = |tenant: &str| -> Vec<StoredAuditRecord> {
        rows.iter()
            .enumerate()
            .map(|(i, (subject, action, outcome))| StoredAuditRecord {
                subject: subject.map(str::to_owned),
                action: (*action).to_owned(),
                outcome: outcome.as_str().to_owned(),
                ..record(tenant, "w1", i as i64 + 1)
            })
            .collect()
    };
    // The other tenant's records come first and last, with the same values.
    let beta = make("beta");
    ok(
        store
            .append_audit(&AuditBatch {
                records: beta[..5].to_vec(),
                heads: vec![],
            })
            .await,
        "append_audit(beta)",
    );
    ok(
        store
            .append_audit(&AuditBatch {
                records: make("acme"),
                heads: vec![head("acme", "w1", 11, 0)],
            })
            .await,
        "append_audit(acme)",
    );
    ok(
        store
            .append_audit(&AuditBatch {
                records: beta[5..].to_vec(),
                heads: vec![],
            })
            .await,
        "append_audit(beta)",
    );
    let run = |q: AuditQuery| async move {
        let what = format!("query_audit({q:?})");
        let got = ok(store.query_audit(&q).await, &what);
        assert!(
            got.iter().all(|r| r.tenant == q.tenant),
            "{what}: another tenant's records"
        );
        assert!(
            got.windows(2).all(|w| w[0].id < w[1].id),
            "{what}: not by id"
        );
        got
    };
    let all = run(query("acme")).await;
    assert_eq!(seqs(&all), (1..=11).collect::<Vec<_>>());
    let acme = make("acme");
    for (got, want) in all.iter().zip(&acme) {
        assert_eq!(got, &with_id(want, got.id));
    }
    let id = |seq: i64| all[(seq - 1) as usize].id;

    let cases: Vec<(AuditQuery, Vec<i64>)> = vec![
        (
            AuditQuery {
                subject: Some("alice".into()),
                ..query("acme")
            },
            vec![1, 4, 5, 7, 8, 9],
        ),
        (
            AuditQuery {
                subject: Some("nobody".into()),
                ..query("acme")
            },
            vec![],
        ),
        (
            AuditQuery {
                subject: Some("al_".into()),
                ..query("acme")
            },
            vec![11],
        ),
        (
            AuditQuery {
                action: Some("token.refuse".into()),
                ..query("acme")
            },
            vec![2],
        ),
        (
            AuditQuery {
                action: Some("token.".into()),
                ..query("acme")
            },
            vec![1, 2, 6],
        ),
        (
            AuditQuery {
                action: Some("token.refuse.".into()),
                ..query("acme")
            },
            vec![6],
        ),
        (
            AuditQuery {
                action: Some("key_ring.".into()),
                ..query("acme")
            },
            vec![4],
        ),
        (
            AuditQuery {
                action: Some("100%.".into()),
                ..query("acme")
            },
            vec![10],
        ),
        (
            AuditQuery {
                action: Some("token".into()),
                ..query("acme")
            },
            vec![7],
        ),
        (
            AuditQuery {
                outcome: Some(Outcome::Failure),
                ..query("acme")
            },
            vec![2, 6],
        ),
        (
            AuditQuery {
                since: Some(ms(9_000)),
                ..query("acme")
            },
            vec![9, 10, 11],
        ),
        (
            AuditQuery {
                until: Some(ms(3_000)),
                ..query("acme")
            },
            vec![1, 2],
        ),
        (
            AuditQuery {
                since: Some(ms(3_000)),
                until: Some(ms(5_001)),
                ..query("acme")
            },
            vec![3, 4, 5],
        ),
        (
            AuditQuery {
                after: Some(id(8)),
                ..query("acme")
            },
            vec![9, 10, 11],
        ),
        (
            AuditQuery {
                limit: 2,
                ..query("acme")
            },
            vec![1, 2],
        ),
        (
            AuditQuery {
                subject: Some("alice".into()),
                action: Some("token.".into()),
                outcome: Some(Outcome::Success),
                since: Some(ms(1_000)),
                until: Some(ms(9_000)),
                after: Some(0),
                limit: 10,
                ..query("acme")
            },
            vec![1],
        ),
        (
            AuditQuery {
                subject: Some("bob".into()),
                after: Some(id(2)),
                limit: 1,
                ..query("acme")
            },
            vec![6],
        ),
        (query("nobody"), vec![]),
    ];
    for (q, want) in cases {
        let what = format!("{q:?}");
        assert_eq!(seqs(&run(q).await), want, "{what}");
    }

    // Paging by the last id seen, three at a time, visits every record once, in order.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = run(AuditQuery {
            after,
            limit: 3,
            ..query("acme")
        })
        .await;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        paged.extend(seqs(&page));
    }
    assert_eq!(paged, (1..=11).collect::<Vec<_>>());
}

/// `audit_segment_records` pages one segment by seq (after `after_seq`, at most `limit`),
/// never another segment's or tenant's records.
pub async fn audit_segment_records_page_by_seq(store: &dyn Store) {
    append(store, "acme", "w1", 1..=3).await;
    append(store, "acme", "w2", 1..=2).await;
    append(store, "beta", "w1", 1..=2).await;
    append(store, "acme", "w1", 4..=6).await;
    let acme = tenant_name("acme");
    let page = |after: i64, limit: u32| {
        let acme = acme.clone();
        async move {
            seqs(&ok(
                store.audit_segment_records(&acme, "w1", after, limit).await,
                "audit_segment_records",
            ))
        }
    };
    assert_eq!(page(0, 100).await, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(page(2, 3).await, vec![3, 4, 5]);
    assert_eq!(page(5, 3).await, vec![6]);
    assert_eq!(page(6, 3).await, Vec::<i64>::new());
    assert_eq!(
        seqs(&segment_records(store, "acme", "w2").await),
        vec![1, 2]
    );
    assert_eq!(
        seqs(&segment_records(store, "acme", "w3").await),
        Vec::<i64>::new()
    );
    let w1 = segment_records(store, "acme", "w1").await;
    assert_eq!(w1[0], with_id(&record("acme", "w1", 1), w1[0].id));
}

/// Checkpoints come back whole, per tenant, ordered by (segment, seq) whatever the insertion
/// order; a second one for the same (tenant, segment, seq) is `Conflict` and changes nothing.
pub async fn audit_checkpoints_add_list_and_conflict(store: &dyn Store) {
    let made = [
        checkpoint("acme", "w2", 1),
        checkpoint("acme", "w1", 10),
        checkpoint("beta", "w1", 2),
        checkpoint("acme", "w1", 9),
    ];
    for c in &made {
        ok(store.add_audit_checkpoint(c).await, "add_audit_checkpoint");
    }
    let acme = ok(
        store.audit_checkpoints(&tenant_name("acme")).await,
        "audit_checkpoints",
    );
    assert_eq!(
        acme,
        vec![made[3].clone(), made[1].clone(), made[0].clone()]
    );
    let again = AuditCheckpoint {
        jws: "another.signature.here".into(),
        ..made[1].clone()
    };
    conflict(
        store.add_audit_checkpoint(&again).await,
        "add_audit_checkpoint twice",
    );
    assert_eq!(
        ok(
            store.audit_checkpoints(&tenant_name("acme")).await,
            "audit_checkpoints"
        ),
        acme
    );
    assert_eq!(
        ok(
            store.audit_checkpoints(&tenant_name("beta")).await,
            "audit_checkpoints(beta)"
        ),
        vec![made[2].clone()]
    );
    assert_eq!(
        ok(
            store.audit_checkpoints(&tenant_name("nobody")).await,
            "audit_checkpoints"
        ),
        vec![]
    );
}

/// `prune_audit` deletes the segment's records up to and including `through_seq` (no other
/// segment's), returns how many, and sets the anchor; the head is untouched. A segment the
/// store does not know is `NotFound`.
pub async fn audit_prune_deletes_through_seq_and_sets_anchor(store: &dyn Store) {
    append(store, "acme", "w1", 1..=5).await;
    append(store, "acme", "w2", 1..=3).await;
    append(store, "beta", "w1", 1..=5).await;
    let acme = tenant_name("acme");
    let heads_before = ok(store.audit_segments(&acme).await, "audit_segments");
    let anchor = record("acme", "w1", 3).hash;
    assert_eq!(
        ok(
            store.prune_audit(&acme, "w1", 3, &anchor).await,
            "prune_audit"
        ),
        3
    );
    assert_eq!(
        seqs(&segment_records(store, "acme", "w1").await),
        vec![4, 5]
    );
    assert_eq!(
        seqs(&segment_records(store, "acme", "w2").await),
        vec![1, 2, 3]
    );
    assert_eq!(
        seqs(&segment_records(store, "beta", "w1").await),
        vec![1, 2, 3, 4, 5]
    );
    let want: Vec<SegmentHead> = heads_before
        .iter()
        .map(|h| match h.segment.as_str() {
            "w1" => SegmentHead {
                anchor_seq: 3,
                anchor_hash: anchor.clone(),
                ..h.clone()
            },
            _ => h.clone(),
        })
        .collect();
    assert_eq!(
        ok(store.audit_segments(&acme).await, "audit_segments"),
        want
    );
    assert_eq!(
        seqs(&ok(store.query_audit(&query("acme")).await, "query_audit")),
        vec![4, 5, 1, 2, 3]
    );
    // Nothing left up to 3: nothing deleted, the anchor still moves to what it is told.
    let anchor4 = record("acme", "w1", 4).hash;
    assert_eq!(
        ok(
            store.prune_audit(&acme, "w1", 4, &anchor4).await,
            "prune_audit again"
        ),
        1
    );
    assert_eq!(
        ok(
            store.prune_audit(&acme, "w1", 4, &anchor4).await,
            "prune_audit, nothing left"
        ),
        0
    );
    let w1 = ok(store.audit_segments(&acme).await, "audit_segments")
        .into_iter()
        .find(|h| h.segment == "w1")
        .expect("segment w1");
    assert_eq!((w1.anchor_seq, w1.anchor_hash), (4, anchor4));
    let missing = store.prune_audit(&acme, "w9", 1, GENESIS).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound)),
        "prune_audit of an unknown segment: {missing:?}"
    );
    assert_eq!(
        seqs(&segment_records(store, "beta", "w1").await),
        vec![1, 2, 3, 4, 5]
    );
}

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
