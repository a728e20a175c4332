//! The store contract suite (warrant-testkit) against a real PostgreSQL: one test per check,
//! each in a new schema of its own, dropped when the test ends.
//!
//! The server is `WARRANT_TEST_POSTGRES_URL` (CI sets it), else the local development server
//! `postgres://root@127.0.0.1:5432/test`. There is no skipping: without a reachable server
//! every test fails.

// A test fixture: failing to reach the database should abort the test loudly.
#![allow(clippy::expect_used, clippy::panic)]

mod common;

use common::fresh_store;
use warrant_core::Store;
use warrant_store_postgres::PostgresStore;

warrant_testkit::store_contract_tests!(fresh_store());

/// Before the first `migrate` every migration is pending; afterwards every one is applied.
#[tokio::test]
async fn migrations_pending_before_first_migrate() {
    let fixture = fresh_store().await;
    warrant_testkit::contract::migrations_pending_before_first_migrate(
        fixture.as_ref(),
        warrant_store_postgres::MIGRATIONS,
    )
    .await;
}

/// Replicas starting at once share one schema: each migration is applied exactly once (the
/// advisory lock serializes them), and every replica's `migrate` succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrate_applies_each_migration_once() {
    let fixture = fresh_store().await;
    let opts = fixture
        .server
        .clone()
        .application_name(&fixture.schema)
        .options([("search_path", fixture.schema.as_str())]);
    let mut replicas = Vec::new();
    for _ in 0..6 {
        let opts = opts.clone();
        replicas.push(tokio::spawn(async move {
            let store = PostgresStore::connect_with(opts)
                .await
                .expect("connect a replica");
            let done = store.migrate().await;
            store.close().await;
            done
        }));
    }
    for r in replicas {
        if let Err(e) = r.await.expect("a replica task") {
            panic!("a concurrent migrate failed: {e:?}");
        }
    }
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(fixture.store.pool())
            .await
            .expect("read schema_migrations");
    let want: Vec<i64> = warrant_store_postgres::MIGRATIONS
        .iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(applied, want);
    warrant_testkit::contract::fresh_store_is_empty(&fixture.store).await;
}

/// Replicas revoking at once (each its own pool, on several threads) get distinct cursors, and
/// a reader never finds a new entry at or below a head it was already given: cursors follow
/// commit order across replicas, and the feed's head is never ahead of what its page could see.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_revoking_at_once_keep_cursors_in_commit_order() {
    use warrant_core::revocation::{NewRevocation, RevocationKind};

    const REPLICAS: usize = 4;
    const EACH: usize = 25;
    let fixture = fresh_store().await;
    fixture.store.migrate().await.expect("migrate");
    let opts = fixture
        .server
        .clone()
        .application_name(&fixture.schema)
        .options([("search_path", fixture.schema.as_str())]);
    let tenant = warrant_testkit::tenant_name("acme");
    let mut writers = Vec::new();
    for w in 0..REPLICAS {
        let opts = opts.clone();
        let tenant = tenant.clone();
        writers.push(tokio::spawn(async move {
            let store = PostgresStore::connect_with(opts)
                .await
                .expect("connect a replica");
            let mut mine = Vec::new();
            for i in 0..EACH {
                let r = NewRevocation {
                    tenant: tenant.clone(),
                    kind: RevocationKind::Jti {
                        jti: format!("r{w}-{i}"),
                        exp: warrant_testkit::T0.secs() + 3600,
                    },
                    created_at: warrant_testkit::T0,
                    prune_after: warrant_testkit::T0.plus_secs(3660),
                };
                mine.push(
                    store
                        .add_revocation(&r)
                        .await
                        .expect("add_revocation")
                        .cursor,
                );
            }
            store.close().await;
            mine
        }));
    }
    let reader = {
        let store = PostgresStore::connect_with(opts.clone())
            .await
            .expect("connect the reader");
        let tenant = tenant.clone();
        tokio::spawn(async move {
            let mut seen: Vec<i64> = Vec::new();
            let mut covered = 0; // every entry at or below this was in a page
            for _ in 0..100_000 {
                let page = store
                    .revocation_feed(&tenant, None, 10_000)
                    .await
                    .expect("revocation_feed");
                let now: Vec<i64> = page.entries.iter().map(|e| e.cursor).collect();
                let late: Vec<_> = now
                    .iter()
                    .filter(|c| **c <= covered && !seen.contains(c))
                    .collect();
                assert!(
                    late.is_empty(),
                    "entries {late:?} appeared at or below head {covered} after it was read"
                );
                assert!(
                    now.last().is_none_or(|last| *last <= page.head),
                    "an entry above the head: {now:?} > {}",
                    page.head
                );
                covered = page.head;
                seen = now;
                if seen.len() == REPLICAS * EACH {
                    break;
                }
                tokio::task::yield_now().await;
            }
            store.close().await;
            seen
        })
    };
    let mut all = Vec::new();
    for w in writers {
        let mine = w.await.expect("a writer task");
        assert!(mine.windows(2).all(|p| p[0] < p[1]), "{mine:?}");
        all.extend(mine);
    }
    let seen = reader.await.expect("the reader task");
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), REPLICAS * EACH, "cursors must be distinct");
    assert_eq!(seen, all, "the reader saw every entry");
}

/// Replicas checking the same `jti` at once (each its own pool, on several threads): exactly
/// one of them sees it first — a replayed assertion or DPoP proof is refused on every replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_racing_on_one_jti_admit_it_once() {
    use warrant_core::Timestamp;

    const REPLICAS: usize = 8;
    let fixture = fresh_store().await;
    fixture.store.migrate().await.expect("migrate");
    let opts = fixture
        .server
        .clone()
        .application_name(&fixture.schema)
        .options([("search_path", fixture.schema.as_str())]);
    for round in 0..5 {
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(REPLICAS));
        let mut replicas = Vec::new();
        for _ in 0..REPLICAS {
            let opts = opts.clone();
            let barrier = barrier.clone();
            replicas.push(tokio::spawn(async move {
                let store = PostgresStore::connect_with(opts)
                    .await
                    .expect("connect a replica");
                let tenant = warrant_testkit::tenant_name("acme");
                let now = Timestamp::from_secs(1_800_000_000);
                barrier.wait().await;
                let first = store
                    .use_once(
                        &tenant,
                        "client_assertion",
                        &format!("sa_x:jti-{round}"),
                        Timestamp::from_secs(1_800_000_060),
                        now,
                    )
                    .await
                    .expect("use_once");
                store.close().await;
                first
            }));
        }
        let mut firsts = 0;
        for r in replicas {
            if r.await.expect("a replica task") {
                firsts += 1;
            }
        }
        assert_eq!(
            firsts, 1,
            "round {round}: exactly one replica admits the jti"
        );
    }
}
