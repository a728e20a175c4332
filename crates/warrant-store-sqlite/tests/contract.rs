//! The store contract suite (warrant-testkit) against SQLite: one test per check, each on a
//! new database file in its own temporary directory.

mod common;

use common::fresh_store;

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
