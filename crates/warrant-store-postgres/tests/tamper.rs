//! The audit tamper checks (warrant-testkit `audit_tamper`) against a real PostgreSQL: the
//! engine writes its log through the store, raw SQL in the same schema edits it, and
//! verification must name what was touched. One test per check, each in a new schema of its
//! own from the fixture shared with the contract suite (`common`), dropped when the test ends.

// A test fixture: a statement that fails should abort the test loudly.
#![allow(clippy::panic)]

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use warrant_core::Store;
use warrant_testkit::audit_tamper::{Fixture, RawSql};

#[async_trait]
impl RawSql for common::Fixture {
    async fn execute(&self, sql: &str) -> u64 {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(self.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .rows_affected()
    }
}

impl Fixture for common::Fixture {
    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }

    fn sql(&self) -> &dyn RawSql {
        self
    }
}

warrant_testkit::audit_tamper_tests!(common::fresh_store());
