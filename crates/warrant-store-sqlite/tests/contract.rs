//! The store contract suite (warrant-testkit) against SQLite: one test per check, each on a
//! new database file in its own temporary directory.

// A test fixture: failing to create the temporary database should abort the test loudly.
#![allow(clippy::expect_used)]

use tempfile::TempDir;
use warrant_core::Store;
use warrant_store_sqlite::SqliteStore;

/// A fresh store and the directory holding its file, removed when the test ends.
struct Fixture {
    store: SqliteStore,
    _dir: TempDir,
}

impl AsRef<dyn Store> for Fixture {
    fn as_ref(&self) -> &(dyn Store + 'static) {
        &self.store
    }
}

async fn fresh_store() -> Fixture {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store = SqliteStore::open(&dir.path().join("warrant.db"))
        .await
        .expect("open a fresh SQLite store");
    Fixture { store, _dir: dir }
}

warrant_testkit::store_contract_tests!(fresh_store());

/// Before the first `migrate` every migration is pending; afterwards every one is applied.
#[tokio::test]
async fn migrations_pending_before_first_migrate() {
    let fixture = fresh_store().await;
    warrant_testkit::contract::migrations_pending_before_first_migrate(
        fixture.as_ref(),
        warrant_store_sqlite::MIGRATIONS,
    )
    .await;
}
