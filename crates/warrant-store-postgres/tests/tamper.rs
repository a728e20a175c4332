//! The audit tamper checks (warrant-testkit `audit_tamper`) against a real PostgreSQL: the
//! engine writes its log through the store, raw SQL in the same schema edits it, and
//! verification must name what was touched. One test per check, each in a new schema of its
//! own (named like the contract suite's, whose stale-schema sweep also removes these), dropped
//! when the test ends.
//!
//! The server is `WARRANT_TEST_POSTGRES_URL`, else `postgres://root@127.0.0.1:5432/test`.

// A test fixture: failing to reach the database or create a schema should abort the test loudly.
#![allow(clippy::expect_used, clippy::panic)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use warrant_core::Store;
use warrant_store_postgres::PostgresStore;
use warrant_testkit::audit_tamper::{Fixture, RawSql};

const URL_VAR: &str = "WARRANT_TEST_POSTGRES_URL";
const DEFAULT_URL: &str = "postgres://root@127.0.0.1:5432/test";
const NAME_SQL: &str = "SELECT format('wtest_%s_%s', extract(epoch FROM now())::bigint, \
     md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text))";

struct Postgres {
    store: PostgresStore,
    server: PgConnectOptions,
    schema: String,
}

#[async_trait]
impl RawSql for Postgres {
    async fn execute(&self, sql: &str) -> u64 {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(self.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .rows_affected()
    }
}

impl Fixture for Postgres {
    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }

    fn sql(&self) -> &dyn RawSql {
        self
    }
}

/// Ends the store's sessions (found by their application name) and drops the schema.
async fn drop_schema(server: &PgConnectOptions, schema: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect_with(server).await?;
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

impl Drop for Postgres {
    /// `Drop` cannot await: the cleanup runs on a runtime of its own in another thread.
    fn drop(&mut self) {
        let server = self.server.clone();
        let schema = std::mem::take(&mut self.schema);
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the cleanup");
            rt.block_on(async {
                match tokio::time::timeout(Duration::from_secs(30), drop_schema(&server, &schema))
                    .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => eprintln!("warning: could not drop test schema {schema}: {e}"),
                    Err(_) => eprintln!("warning: dropping test schema {schema} timed out"),
                }
            });
        });
        if cleanup.join().is_err() {
            eprintln!("warning: the test schema cleanup panicked");
        }
    }
}

async fn fresh() -> Postgres {
    let url = std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let server = PgConnectOptions::from_str(&url)
        .unwrap_or_else(|e| panic!("{URL_VAR} is not a valid postgres URL: {e}"));
    let mut conn = PgConnection::connect_with(&server)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL ({e}); set {URL_VAR}"));
    let schema: String = sqlx::query_scalar(NAME_SQL)
        .fetch_one(&mut conn)
        .await
        .expect("make a schema name");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&mut conn)
        .await
        .expect("create the test schema");
    conn.close().await.expect("close the admin connection");
    let opts = server
        .clone()
        .application_name(&schema)
        .options([("search_path", schema.as_str())]);
    let store = match PostgresStore::connect_with(opts).await {
        Ok(store) => store,
        Err(e) => {
            let _ = drop_schema(&server, &schema).await;
            panic!("connect the store to schema {schema}: {e:?}");
        }
    };
    Postgres {
        store,
        server,
        schema,
    }
}

warrant_testkit::audit_tamper_tests!(fresh());
