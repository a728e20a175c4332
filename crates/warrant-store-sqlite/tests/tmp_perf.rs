#![allow(clippy::expect_used, clippy::unwrap_used)]
use std::time::Instant;
use warrant_core::Store;
use warrant_core::audit::{AuditBatch, StoredAuditRecord, SegmentHead, GENESIS};

pub async fn perf(store: &dyn Store, name: &str) {
    store.migrate().await.unwrap();
    let t = warrant_testkit::tenant_name("acme");
    let mut seq = 0;
    for n in [1usize, 64, 512, 512, 512, 100, 511] {
        let records: Vec<_> = (0..n).map(|_| { seq += 1; StoredAuditRecord { id: 0, tenant: t.clone(), segment: "w".into(), seq, at: warrant_testkit::T0, subject: Some("svc".into()), action: "token.issue".into(), outcome: "success".into(), body: "x".repeat(400), hash: "a".repeat(64), key_version: 1, mac: "m".repeat(43) } }).collect();
        let head = SegmentHead { tenant: t.clone(), segment: "w".into(), head_seq: seq, head_hash: "a".repeat(64), head_mac: "m".into(), key_version: 1, anchor_seq: 0, anchor_hash: GENESIS.into(), created_at: warrant_testkit::T0, updated_at: warrant_testkit::T0 };
        let start = Instant::now();
        store.append_audit(&AuditBatch { records, heads: vec![head] }).await.unwrap();
        eprintln!("{name} append {n}: {:?}", start.elapsed());
    }
    let all = store.audit_segment_records(&t, "w", 0, 100000).await.unwrap();
    assert_eq!(all.len() as i64, seq);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id && w[0].seq < w[1].seq));
}
#[tokio::test]
async fn perf_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = warrant_store_sqlite::SqliteStore::open(&dir.path().join("w.db")).await.unwrap();
    perf(&store, "sqlite").await;
}
