//! A small migration runner: numbered SQL files applied once each, in one transaction each.

use sqlx::SqlitePool;
use warrant_core::StoreError;

use crate::store::backend;

/// `(version, name, sql)` in order.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (
        2,
        "revocations_audit",
        include_str!("../migrations/0002_revocations_audit.sql"),
    ),
    (
        3,
        "key_rotation",
        include_str!("../migrations/0003_key_rotation.sql"),
    ),
    (
        4,
        "hsm_keys",
        include_str!("../migrations/0004_hsm_keys.sql"),
    ),
    (
        5,
        "client_auth",
        include_str!("../migrations/0005_client_auth.sql"),
    ),
    (6, "apis", include_str!("../migrations/0006_apis.sql")),
    (7, "trusts", include_str!("../migrations/0007_trusts.sql")),
];

pub(crate) async fn run(pool: &SqlitePool, now_ms: i64) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .execute(pool)
    .await
    .map_err(backend)?;
    for (version, name, sql) in MIGRATIONS {
        let mut tx = pool.begin().await.map_err(backend)?;
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        if done.is_some() {
            continue;
        }
        sqlx::raw_sql(*sql)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
            .bind(version)
            .bind(name)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}
