//! Tamper checks of the audit log, run by each store crate on its own database: the engine
//! writes a log through the store, the check edits the store's rows behind its back with raw
//! SQL — as someone with database access but without the master key would — and online
//! verification must name the segment and record that was touched.
//!
//! Each check takes a fresh store (migrated here) and a [`RawSql`] on the same database. The SQL
//! is written once, valid on SQLite and PostgreSQL alike, against the tables of migration 0002
//! (`audit_records`, `audit_segments`, `audit_checkpoints`). A store crate runs them like this:
//!
//! ```ignore
//! #[tokio::test]
//! async fn edited_body_is_found() {
//!     let f = fresh().await;
//!     warrant_testkit::audit_tamper::edited_body_is_found(f.store(), &f.sql()).await;
//! }
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use warrant_core::admin::{AccountSpec, AdminPrincipal, NewAccount};
use warrant_core::audit::verify::VerifyReport;
use warrant_core::audit::{AuditSettings, SegmentHead, StoredAuditRecord, chain, export};
use warrant_core::{AccountId, CoreConfig, MasterKey, Store, TenantName, Warrant};

use crate::{FixedClock, T0, account_name};

/// Runs one SQL statement on the store's database.
#[async_trait]
pub trait RawSql: Send + Sync {
    /// Executes `sql`; returns how many rows it changed (the check asserts it touched some).
    async fn execute(&self, sql: &str) -> u64;
}

/// Records written before the checkpoint, and after it.
const SIGNED: i64 = 5;
const AFTER: i64 = 2;

/// An engine over the store, with a log of `SIGNED` records of tenant `default` covered by a
/// checkpoint and `AFTER` more that are not.
struct Log {
    warrant: Warrant,
    clock: Arc<FixedClock>,
    admin: AdminPrincipal,
    tenant: TenantName,
    segment: String,
    accounts: u32,
}

impl Log {
    async fn open(store: Arc<dyn Store>) -> Log {
        if let Err(e) = store.migrate().await {
            panic!("migrate: {e:?}");
        }
        let clock = Arc::new(FixedClock::new(T0));
        let (master, _) = MasterKey::generate().unwrap();
        let config = CoreConfig {
            public_url: "https://id.example".into(),
            max_token_lifetime: 3600,
            jwks_max_age: 300,
            audit: AuditSettings::default(),
        };
        let (warrant, _) = Warrant::open(store, clock.clone(), master, config)
            .await
            .unwrap();
        let segment = warrant.audit().segment().to_owned();
        let mut log = Log {
            warrant,
            clock,
            admin: AdminPrincipal::operator(AccountId::generate(T0).unwrap()),
            tenant: TenantName::parse(TenantName::DEFAULT).unwrap(),
            segment,
            accounts: 0,
        };
        log.write(SIGNED).await;
        log.checkpoint().await;
        log.write(AFTER).await;
        assert_eq!(
            log.head().await.head_seq,
            SIGNED + AFTER,
            "one record per account"
        );
        log
    }

    /// Writes `n` records (one account created each).
    async fn write(&mut self, n: i64) {
        for _ in 0..n {
            self.accounts += 1;
            let new = NewAccount {
                name: account_name(&format!("svc-{}", self.accounts)),
                spec: AccountSpec {
                    description: String::new(),
                    enabled: true,
                    default_audience: None,
                    grants: Vec::new(),
                    default_lifetime: None,
                    max_lifetime: None,
                    claims: Default::default(),
                    auth_methods: None,
                    credentials: Default::default(),
                },
            };
            self.clock.advance_millis(1_007);
            self.warrant
                .create_account(&self.admin, &self.tenant, new)
                .await
                .unwrap();
        }
    }

    async fn checkpoint(&self) {
        self.warrant.audit().checkpoint_now().await.unwrap();
    }

    async fn head(&self) -> SegmentHead {
        let heads = self
            .warrant
            .store()
            .audit_segments(&self.tenant)
            .await
            .unwrap();
        heads
            .into_iter()
            .find(|h| h.segment == self.segment)
            .expect("the engine's segment of tenant default")
    }

    async fn record(&self, seq: i64) -> StoredAuditRecord {
        let page = self
            .warrant
            .store()
            .audit_segment_records(&self.tenant, &self.segment, seq - 1, 1)
            .await
            .unwrap();
        page.into_iter()
            .find(|r| r.seq == seq)
            .unwrap_or_else(|| panic!("record {seq}"))
    }

    async fn verify(&self) -> VerifyReport {
        self.warrant
            .verify_audit(&self.admin, &self.tenant)
            .await
            .unwrap()
    }

    /// `WHERE` clause of this log's records (`and` is appended).
    fn rows(&self, and: &str) -> String {
        format!(
            "tenant = '{}' AND segment = '{}' AND {and}",
            self.tenant, self.segment
        )
    }

    /// Runs a statement that must change at least one row.
    async fn tamper(&self, sql: &dyn RawSql, statement: &str) {
        let n = sql.execute(statement).await;
        assert!(n > 0, "the statement changed nothing: {statement}");
    }

    /// Asserts verification fails at `seq` of this log's segment with a problem saying `says`.
    async fn fails_at(&self, seq: i64, says: &str) {
        let report = self.verify().await;
        assert!(!report.ok, "tampering went unnoticed: {report:?}");
        let bad = report.first_bad.expect("a first bad record");
        assert_eq!(
            (bad.segment.as_str(), bad.seq),
            (self.segment.as_str(), seq),
            "{bad:?}"
        );
        assert!(bad.problem.contains(says), "expected {says:?}: {bad:?}");
    }
}

/// The untouched log verifies online, and its export verifies offline.
pub async fn untouched_log_verifies(store: Arc<dyn Store>, _sql: &dyn RawSql) {
    let log = Log::open(store).await;
    let report = log.verify().await;
    assert!(report.ok, "{report:?}");
    assert!(report.macs_checked);
    assert!(report.records >= (SIGNED + AFTER) as u64, "{report:?}");
    assert!(report.checkpoints >= 1, "{report:?}");
    assert_eq!(report.unsigned_tail, AFTER as u64, "{report:?}");

    let mut export = log
        .warrant
        .export_audit(&log.admin, &log.tenant)
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(lines) = export.next_lines().await.unwrap() {
        for l in lines {
            text.push_str(&l);
            text.push('\n');
        }
    }
    let offline = export::verify_export(text.as_bytes()).unwrap();
    assert_eq!(offline.tenant, "default");
    assert!(offline.report.ok, "{:?}", offline.report);
    assert!(!offline.report.macs_checked);
    assert_eq!(offline.report.records, report.records);
    assert_eq!(offline.report.unsigned_tail, AFTER as u64);
}

/// One character added to a record's body.
pub async fn edited_body_is_found(store: Arc<dyn Store>, sql: &dyn RawSql) {
    let log = Log::open(store).await;
    let stmt = format!(
        "UPDATE audit_records SET body = replace(body, '\"actor\":\"', '\"actor\":\"x') WHERE {}",
        log.rows("seq = 3")
    );
    log.tamper(sql, &stmt).await;
    log.fails_at(3, "edited").await;
}

/// An indexed column changed (the body and its hash left alone).
pub async fn edited_column_is_found(store: Arc<dyn Store>, sql: &dyn RawSql) {
    let log = Log::open(store).await;
    let stmt = format!(
        "UPDATE audit_records SET action = 'account.delete' WHERE {}",
        log.rows("seq = 4")
    );
    log.tamper(sql, &stmt).await;
    log.fails_at(4, "action column").await;
}

/// A record edited and its hash recomputed (no master key, so no MAC).
pub async fn rehashed_record_is_found_by_its_mac(store: Arc<dyn Store>, sql: &dyn RawSql) {
    let log = Log::open(store).await;
    let r = log.record(2).await;
    let body = r.body.replacen("\"actor\":\"", "\"actor\":\"x", 1);
    let stmt = format!(
        "UPDATE audit_records SET body = '{}', hash = '{}' WHERE {}",
        body.replace('\'', "''"),
        chain::body_hash(&body),
        log.rows("seq = 2")
    );
    log.tamper(sql, &stmt).await;
    log.fails_at(2, "MAC").await;
}

/// A record deleted from the middle of the chain.
pub async fn deleted_middle_record_is_found(store: Arc<dyn Store>, sql: &dyn RawSql) {
    let log = Log::open(store).await;
    let stmt = format!("DELETE FROM audit_records WHERE {}", log.rows("seq = 3"));
    log.tamper(sql, &stmt).await;
    log.fails_at(3, "record 3 is missing").await;
}

/// The newest records deleted (the head still names the last one).
pub async fn truncated_tail_is_found(store: Arc<dyn Store>, sql: &dyn RawSql) {
    let log = Log::open(store).await;
    let last = SIGNED + AFTER;
    let stmt = format!(
        "DELETE FROM audit_records WHERE {}",
        log.rows(&format!("seq > {SIGNED}"))
    );
    log.tamper(sql, &stmt).await;
    log.fails_at(
        SIGNED + 1,
        &format!("records after {SIGNED} are missing (the head says {last})"),
    )
    .await;
}

/// The oldest records deleted without an anchor (not pruning).
pub async fn deleted_start_without_anchor_is_found(store: Arc<dyn Store>, sql: &dyn RawSql) {
    let log = Log::open(store).await;
    let stmt = format!("DELETE FROM audit_records WHERE {}", log.rows("seq <= 2"));
    log.tamper(sql, &stmt).await;
    log.fails_at(1, "record 1 is missing").await;
}

/// The oldest records deleted and the segment's anchor moved to fake a pruning: no checkpoint
/// vouches for that anchor.
pub async fn forged_anchor_is_found(store: Arc<dyn Store>, sql: &dyn RawSql) {
    let log = Log::open(store).await;
    let anchor = log.record(2).await;
    log.tamper(
        sql,
        &format!("DELETE FROM audit_records WHERE {}", log.rows("seq <= 2")),
    )
    .await;
    log.tamper(
        sql,
        &format!(
            "UPDATE audit_segments SET anchor_seq = 2, anchor_hash = '{}' WHERE {}",
            anchor.hash,
            log.rows("head_seq > 0")
        ),
    )
    .await;
    log.fails_at(2, "no valid checkpoint vouches for the anchor")
        .await;
}

/// Pruning by retention leaves a log that verifies (from its anchor); deleting the checkpoint
/// that vouches for the anchor does not.
pub async fn pruned_log_verifies_until_its_anchor_checkpoint_goes(
    store: Arc<dyn Store>,
    sql: &dyn RawSql,
) {
    let mut log = Log::open(store).await;
    // Past the retention: the checkpoint at SIGNED is old enough to prune up to.
    log.clock.advance_secs(91 * 86_400);
    log.write(1).await;
    log.checkpoint().await;
    let head = log.head().await;
    assert_eq!(
        head.anchor_seq, SIGNED,
        "pruned through the old checkpoint: {head:?}"
    );
    let report = log.verify().await;
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, (AFTER + 1) as u64, "{report:?}");
    log.tamper(
        sql,
        &format!(
            "DELETE FROM audit_checkpoints WHERE {}",
            log.rows(&format!("seq = {SIGNED}"))
        ),
    )
    .await;
    log.fails_at(SIGNED, "no valid checkpoint vouches for the anchor")
        .await;
}

/// What a store crate's tamper tests need: the store, and raw SQL on the same database.
pub trait Fixture {
    fn store(&self) -> Arc<dyn Store>;
    fn sql(&self) -> &dyn RawSql;
}

/// One `#[tokio::test]` per check of this module, each on a fresh fixture made by `$make`
/// (an expression to `.await`, giving an [`audit_tamper::Fixture`](Fixture)).
#[macro_export]
macro_rules! audit_tamper_tests {
    ($make:expr) => {
        $crate::__audit_tamper_tests_expand! { ($make)
            untouched_log_verifies,
            edited_body_is_found,
            edited_column_is_found,
            rehashed_record_is_found_by_its_mac,
            deleted_middle_record_is_found,
            truncated_tail_is_found,
            deleted_start_without_anchor_is_found,
            forged_anchor_is_found,
            pruned_log_verifies_until_its_anchor_checkpoint_goes,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __audit_tamper_tests_expand {
    (($make:expr) $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $check() {
                let fixture = $make.await;
                $crate::audit_tamper::$check(
                    $crate::audit_tamper::Fixture::store(&fixture),
                    $crate::audit_tamper::Fixture::sql(&fixture),
                )
                .await;
            }
        )*
    };
}
