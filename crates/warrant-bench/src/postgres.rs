//! A fresh PostgreSQL database per scenario, created and dropped with `psql` on the local
//! server (127.0.0.1:5432, user `postgres`, trust authentication).

use std::process::Stdio;

use anyhow::{Context, Result, bail};
use tokio::process::Command;

const HOST: &str = "127.0.0.1";
const PORT: u16 = 5432;
const USER: &str = "postgres";

/// A database this run created; [`Database::drop_now`] removes it.
pub struct Database {
    pub name: String,
    /// `postgres://postgres@127.0.0.1:5432/{name}`, for `warrant serve --database-url`.
    pub url: String,
}

impl Database {
    /// `CREATE DATABASE warrant_bench_{pid}_{random}`.
    pub async fn create() -> Result<Self> {
        let mut nonce = [0u8; 8];
        aws_lc_rs::rand::fill(&mut nonce)?;
        // Lower-case letters, digits and '_' (at most 38 characters): a valid unquoted identifier.
        let name = format!(
            "warrant_bench_{}_{:016x}",
            std::process::id(),
            u64::from_le_bytes(nonce)
        );
        psql(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating database {name}"))?;
        Ok(Self {
            url: format!("postgres://{USER}@{HOST}:{PORT}/{name}"),
            name,
        })
    }

    /// `DROP DATABASE … WITH (FORCE)`: call after the replicas are stopped (FORCE ends any
    /// connection left over all the same).
    pub async fn drop_now(self) -> Result<()> {
        psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .await
        .with_context(|| format!("dropping database {}", self.name))
    }
}

/// Fails early, with a clear message, if the PostgreSQL server cannot be reached.
pub async fn check_reachable() -> Result<()> {
    psql("SELECT 1").await.with_context(|| {
        format!(
            "the stores scenario needs PostgreSQL on {HOST}:{PORT} (user {USER}, trust auth) and psql"
        )
    })
}

/// Runs one SQL statement on the `postgres` database.
async fn psql(sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p"])
        .arg(PORT.to_string())
        .args(["-U", USER, "-d", "postgres", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .await
        .context("running psql")?;
    if !out.status.success() {
        bail!(
            "psql -c {sql:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
