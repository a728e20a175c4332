//! The fixture shared by this crate's PostgreSQL test binaries: a fresh store in a new schema
//! of its own, dropped when the fixture is.
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
pub struct Fixture {
    pub store: PostgresStore,
    pub server: PgConnectOptions,
    pub schema: String,
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

pub async fn fresh_store() -> Fixture {
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
