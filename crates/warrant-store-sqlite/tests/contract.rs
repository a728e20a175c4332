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

/// Before the first `migrate` (no `schema_migrations` table yet) every migration is pending;
/// afterwards every one is applied.
#[tokio::test]
async fn migrations_pending_before_first_migrate() {
    let fixture = fresh_store().await;
    let store: &dyn Store = fixture.as_ref();
    let pending = store
        .migrations()
        .await
        .expect("migrations of an empty database");
    let want: Vec<warrant_core::MigrationState> = warrant_store_sqlite::MIGRATIONS
        .iter()
        .map(|(version, name, _)| warrant_core::MigrationState {
            version: *version,
            name: (*name).to_owned(),
            applied_at: None,
        })
        .collect();
    assert_eq!(pending, want);
    store.migrate().await.expect("migrate");
    let applied = store.migrations().await.expect("migrations after migrate");
    assert_eq!(
        applied.iter().map(|m| m.version).collect::<Vec<_>>(),
        want.iter().map(|m| m.version).collect::<Vec<_>>()
    );
    assert!(
        applied.iter().all(|m| m.applied_at.is_some()),
        "pending after migrate: {applied:?}"
    );
}
