//! What one durable audit commit costs: `Store::append_audit` called directly, one commit after
//! another, on a fresh store (SQLite in WAL mode with `synchronous=FULL`; PostgreSQL with its
//! defaults, i.e. `synchronous_commit=on`). Each commit carries `records` chained records of a
//! `token.issue` shape and the segment's new head, as the audit writer sends them.
//!
//! This is the floor under issuance with auditing: the writer's group commit shares one such
//! commit among every request that arrived while the previous one was in flight, so under load
//! the cost per token is about (commit latency at batch size b) / b.

use std::time::Instant;

use anyhow::{Context, Result};
use warrant_core::audit::{AuditBatch, AuditEvent, GENESIS, Outcome, SegmentHead, action, chain};
use warrant_core::{Clock as _, Store, SystemClock, TenantName, Timestamp};
use warrant_jose::crypto::HmacKey;

use crate::report::percentile_ms;

/// Sequential commits per batch size.
pub const COMMITS: usize = 300;
/// Records per commit: one (a lone request) and 64 (a busy group commit).
pub const BATCH_SIZES: &[usize] = &[1, 64];
/// The audit key version the records claim.
const KEY_VERSION: u32 = 1;

/// The figures for one (store, records per commit) run.
pub struct CommitRow {
    pub store: &'static str,
    pub records: usize,
    pub commits: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
}

impl CommitRow {
    fn mean_ms_per_record(&self) -> f64 {
        self.mean_ms / self.records as f64
    }
}

/// One segment's chain, extended a batch at a time.
struct Chain {
    key: HmacKey,
    tenant: TenantName,
    segment: String,
    seq: i64,
    hash: String,
    created_at: Timestamp,
}

impl Chain {
    fn new(segment: &str) -> Result<Self> {
        Ok(Self {
            key: HmacKey::new(&[7; 32]),
            tenant: TenantName::parse("default").context("tenant name")?,
            segment: segment.to_owned(),
            seq: 0,
            hash: GENESIS.to_owned(),
            created_at: SystemClock.now(),
        })
    }

    /// The next `n` records and the head after them, shaped like the writer's.
    fn batch(&mut self, n: usize) -> Result<AuditBatch> {
        let now = SystemClock.now();
        let mut batch = AuditBatch::default();
        for _ in 0..n {
            let seq = self.seq + 1;
            let event = token_issue(&self.tenant, now, seq);
            let record = chain::seal(
                &event,
                &self.segment,
                seq,
                &self.hash,
                1,
                &self.key,
                KEY_VERSION,
            )?;
            self.seq = seq;
            self.hash = record.hash.clone();
            batch.records.push(record);
        }
        batch.heads.push(SegmentHead {
            tenant: self.tenant.clone(),
            segment: self.segment.clone(),
            head_seq: self.seq,
            head_hash: self.hash.clone(),
            head_mac: chain::head_mac(
                &self.key,
                self.tenant.as_str(),
                &self.segment,
                self.seq,
                &self.hash,
            ),
            key_version: KEY_VERSION,
            anchor_seq: 0,
            anchor_hash: GENESIS.to_owned(),
            created_at: self.created_at,
            updated_at: now,
        });
        Ok(batch)
    }
}

/// A `token.issue` event with every field the token endpoint fills in.
fn token_issue(tenant: &TenantName, at: Timestamp, seq: i64) -> AuditEvent {
    let client = "sa_01JDBENCHBENCHBENCHBENCH00";
    let mut e = AuditEvent::new(
        tenant.clone(),
        at,
        client,
        action::TOKEN_ISSUE,
        Outcome::Success,
    );
    e.subject = Some(client.to_owned());
    e.jti = Some(format!("bench-{seq:016x}"));
    e.scopes = Some("bench:read".to_owned());
    e.audience = Some("https://bench.internal".to_owned());
    e.client_addr = Some("127.0.0.1".to_owned());
    e.auth_method = Some("client_secret_basic".to_owned());
    e
}

/// [`COMMITS`] sequential commits per batch size on `store` (migrated, empty), each size in
/// its own segment.
pub async fn measure(name: &'static str, store: &dyn Store) -> Result<Vec<CommitRow>> {
    let mut rows = Vec::new();
    for &records in BATCH_SIZES {
        let mut chain = Chain::new(&format!("seg_bench_{records}"))?;
        // Not timed: creates the segment's row, and warms the connection and its statements.
        store
            .append_audit(&chain.batch(records)?)
            .await
            .with_context(|| format!("append_audit on {name}"))?;
        let mut us = Vec::with_capacity(COMMITS);
        for _ in 0..COMMITS {
            // Sealing is the writer's work, not the store's: done before the clock starts.
            let batch = chain.batch(records)?;
            let start = Instant::now();
            store
                .append_audit(&batch)
                .await
                .with_context(|| format!("append_audit on {name}"))?;
            let elapsed = start.elapsed().as_micros();
            us.push(u32::try_from(elapsed).unwrap_or(u32::MAX));
        }
        let mean_ms = us.iter().map(|&u| f64::from(u)).sum::<f64>() / us.len() as f64 / 1000.0;
        us.sort_unstable();
        rows.push(CommitRow {
            store: name,
            records,
            commits: COMMITS,
            p50_ms: percentile_ms(&us, 0.50),
            p99_ms: percentile_ms(&us, 0.99),
            mean_ms,
        });
    }
    Ok(rows)
}

pub fn print_table(rows: &[CommitRow]) {
    println!(
        "{:<9} {:>12} {:>8} {:>8} {:>8} {:>8} {:>14} {:>12}",
        "store",
        "records/cmt",
        "commits",
        "p50 ms",
        "p99 ms",
        "mean ms",
        "mean ms/record",
        "records/s"
    );
    for r in rows {
        let per_record = r.mean_ms_per_record();
        println!(
            "{:<9} {:>12} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>14.3} {:>12.0}",
            r.store,
            r.records,
            r.commits,
            r.p50_ms,
            r.p99_ms,
            r.mean_ms,
            per_record,
            if per_record > 0.0 {
                1000.0 / per_record
            } else {
                0.0
            }
        );
    }
    println!(
        "(records/s: one writer committing back to back at that batch size, the ceiling of audited \
         issuance if it never batched more)"
    );
}
