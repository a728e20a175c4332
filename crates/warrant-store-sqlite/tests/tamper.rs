//! The audit tamper checks (warrant-testkit `audit_tamper`) against SQLite: the engine writes
//! its log through the store, raw SQL on the same database file edits it, and verification
//! must name what was touched. One test per check, each on a new database file.

// A test fixture: failing to create the temporary database or to run a statement should abort
// the test loudly.
#![allow(clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use async_trait::async_trait;
use tempfile::TempDir;
use warrant_core::Store;
use warrant_store_sqlite::SqliteStore;
use warrant_testkit::audit_tamper::{Fixture, RawSql};

struct Sqlite {
    store: SqliteStore,
    _dir: TempDir,
}

#[async_trait]
impl RawSql for Sqlite {
    async fn execute(&self, sql: &str) -> u64 {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(self.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .rows_affected()
    }
}

impl Fixture for Sqlite {
    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }

    fn sql(&self) -> &dyn RawSql {
        self
    }
}

async fn fresh() -> Sqlite {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store = SqliteStore::open(&dir.path().join("warrant.db"))
        .await
        .expect("open a fresh SQLite store");
    Sqlite { store, _dir: dir }
}

warrant_testkit::audit_tamper_tests!(fresh());
