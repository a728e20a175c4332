//! The audit log: records, segment heads, checkpoints, retention.

use super::*;

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
