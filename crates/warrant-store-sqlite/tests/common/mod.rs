//! The fixture shared by this crate's test binaries: a fresh store on a new database file in
//! its own temporary directory.

// A test fixture: failing to create the temporary database should abort the test loudly.
#![allow(clippy::expect_used)]

use tempfile::TempDir;
use warrant_core::Store;
use warrant_store_sqlite::SqliteStore;

/// A fresh store and the directory holding its file, removed when the test ends.
pub struct Fixture {
    pub store: SqliteStore,
    _dir: TempDir,
}

impl AsRef<dyn Store> for Fixture {
    fn as_ref(&self) -> &(dyn Store + 'static) {
        &self.store
    }
}

pub async fn fresh_store() -> Fixture {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store = SqliteStore::open(&dir.path().join("warrant.db"))
        .await
        .expect("open a fresh SQLite store");
    Fixture { store, _dir: dir }
}
