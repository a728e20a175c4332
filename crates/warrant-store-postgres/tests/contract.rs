//! The store contract suite (warrant-testkit) against a real PostgreSQL: one test per check,
//! each in a new schema of its own, dropped when the test ends.
//!
//! The server is `WARRANT_TEST_POSTGRES_URL` (CI sets it), else the local development server
//! `postgres://root@127.0.0.1:5432/test`. There is no skipping: without a reachable server
//! every test fails.

// A test fixture: failing to reach the database or create a schema should abort the test loudly.
#![allow(clippy::expect_used, clippy::panic)]

use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use warrant_core::Store;
use warrant_store_postgres::PostgresStore;

const URL_VAR: &str = "WARRANT_TEST_POSTGRES_URL";
const DEFAULT_URL: &str = "postgres://root@127.0.0.1:5432/test";

/// Every schema this suite creates is `wtest_<unix seconds>_<32 hex digits>`.
const NAME_SQL: &str = "SELECT format('wtest_%s_%s', extract(epoch FROM now())::bigint, \
     md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text))";

/// Schemas left by a run that was killed before its guards ran, older than an hour.
const STALE_SQL: &str = "SELECT nspname::text FROM pg_namespace \
     WHERE nspname ~ '^wtest_[0-9]+_[0-9a-f]{32}$' \
     AND split_part(nspname, '_', 2)::bigint < extract(epoch FROM now())::bigint - 3600";

fn server() -> PgConnectOptions {
    let url = std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned());
    PgConnectOptions::from_str(&url)
        .unwrap_or_else(|e| panic!("{URL_VAR} is not a valid postgres URL: {e}"))
}

async fn admin(server: &PgConnectOptions) -> PgConnection {
    PgConnection::connect_with(server)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach the test PostgreSQL ({e}); start it or set {URL_VAR} \
             (default {DEFAULT_URL})"
            )
        })
}

/// Drops the schema (and all its tables). The store's own sessions, found by the
/// `application_name` they carry, are ended first: one of them may still hold a lock in a
/// transaction whose rollback was queued but not yet sent when the test returned.
async fn drop_schema(server: &PgConnectOptions, schema: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect_with(server).await?;
    sqlx::query("SET lock_timeout = '10s'")
        .execute(&mut conn)
        .await?;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(schema)
    .execute(&mut conn)
    .await?;
    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await?;
    conn.close().await
}

/// A fresh store in its own schema; dropping it drops the schema.
struct Fixture {
    store: PostgresStore,
    server: PgConnectOptions,
    schema: String,
}

impl AsRef<dyn Store> for Fixture {
    fn as_ref(&self) -> &(dyn Store + 'static) {
        &self.store
    }
}

impl Drop for Fixture {
    /// `Drop` cannot await and the test's runtime is single-threaded, so the cleanup runs on a
    /// runtime of its own in another thread, waited for here.
    fn drop(&mut self) {
        let server = self.server.clone();
        let schema = std::mem::take(&mut self.schema);
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the cleanup");
            let done = rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), drop_schema(&server, &schema)).await
            });
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("warning: could not drop test schema {schema}: {e}"),
                Err(_) => eprintln!("warning: dropping test schema {schema} timed out"),
            }
        });
        if cleanup.join().is_err() {
            eprintln!("warning: the test schema cleanup panicked");
        }
    }
}

static SWEEP: Once = Once::new();

/// Drops stale schemas of killed runs, once per test process (best effort).
async fn sweep_stale(server: &PgConnectOptions, conn: &mut PgConnection) {
    let mut first = false;
    SWEEP.call_once(|| first = true);
    if !first {
        return;
    }
    let stale: Vec<String> = match sqlx::query_scalar(STALE_SQL).fetch_all(&mut *conn).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("warning: could not list stale test schemas: {e}");
            return;
        }
    };
    for schema in stale {
        if let Err(e) = drop_schema(server, &schema).await {
            eprintln!("warning: could not drop stale test schema {schema}: {e}");
        }
    }
}

async fn fresh_store() -> Fixture {
    let server = server();
    let mut conn = admin(&server).await;
    sweep_stale(&server, &mut conn).await;
    let schema: String = sqlx::query_scalar(NAME_SQL)
        .fetch_one(&mut conn)
        .await
        .expect("make a schema name");
    let sql = format!("CREATE SCHEMA \"{schema}\"");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .expect("create the test schema");
    conn.close().await.expect("close the admin connection");
    // The store's sessions carry the schema's name, so the cleanup can find and end them.
    let opts = server
        .clone()
        .application_name(&schema)
        .options([("search_path", schema.as_str())]);
    let store = match PostgresStore::connect_with(opts).await {
        Ok(store) => store,
        Err(e) => {
            // No guard yet: drop the schema here before failing.
            let _ = drop_schema(&server, &schema).await;
            panic!("connect the store to schema {schema}: {e:?}");
        }
    };
    Fixture {
        store,
        server,
        schema,
    }
}

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
