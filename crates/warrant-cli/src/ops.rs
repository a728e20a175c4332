//! Operator verbs, run beside the server against its data: `migrate`, `backup`, `import`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use warrant_core::keyring::HashingKeys;
use warrant_core::{MasterKey, Store};
use warrant_store_postgres::PostgresStore;
use warrant_store_sqlite::SqliteStore;

use crate::config::{self, Flags, ServeConfig};
use crate::serve::{DataDir, Db};

/// Where the data is: the same keys as `warrant serve` (flags > `WARRANT_*` > `--config`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DataArgs {
    /// TOML configuration file (the server's).
    #[arg(long, env = "WARRANT_CONFIG")]
    pub config: Option<PathBuf>,
    /// The server's data directory [default: ./warrant-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Database URL [default: sqlite://{data_dir}/warrant.db].
    #[arg(long)]
    pub database_url: Option<String>,
}

impl DataArgs {
    pub(crate) fn load(self) -> anyhow::Result<ServeConfig> {
        config::load(
            self.config.as_deref(),
            Flags {
                data_dir: self.data_dir,
                database_url: self.database_url,
                ..Flags::default()
            },
            std::env::vars(),
        )
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum MigrateCmd {
    /// Show which schema migrations are applied and which are pending.
    Status(DataArgs),
    /// Apply pending migrations (`serve` also does this at start).
    Up(DataArgs),
}

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The file to write (must not exist).
    #[arg(long)]
    pub to: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The SQLite deployment's data directory (holding warrant.db and master.key).
    #[arg(long)]
    pub from: PathBuf,
    /// The PostgreSQL database to fill (empty; migrations are applied).
    #[arg(long)]
    pub database_url: String,
}

/// Opens the configured store without taking the data-directory lock (these verbs run beside a
/// live server), refusing to create a database that is not there.
async fn open(cfg: &ServeConfig) -> anyhow::Result<Db> {
    if !Db::is_shared(cfg)? && cfg.database_url.is_none() {
        let db = cfg.data_dir.join("warrant.db");
        if !db.exists() {
            bail!("no database at {} (is --data-dir right?)", db.display());
        }
    }
    let dir = DataDir::open(&cfg.data_dir, false)?;
    Db::open(cfg, &dir).await
}

pub async fn migrate(cmd: MigrateCmd) -> anyhow::Result<()> {
    let (args, apply) = match cmd {
        MigrateCmd::Status(a) => (a, false),
        MigrateCmd::Up(a) => (a, true),
    };
    let db = open(&args.load()?).await?;
    let store = db.store();
    if apply {
        store.migrate().await.context("applying migrations")?;
    }
    let states = store
        .migrations()
        .await
        .context("reading the migration state")?;
    println!("{:<8} {:<24} APPLIED", "VERSION", "NAME");
    for m in &states {
        let applied = m
            .applied_at
            .map_or_else(|| "pending".to_owned(), |t| t.to_rfc3339());
        println!("{:<8} {:<24} {applied}", m.version, m.name);
    }
    db.close().await;
    Ok(())
}

pub async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let cfg = args.data.load()?;
    if Db::is_shared(&cfg)? {
        bail!("`warrant backup` copies SQLite deployments; back PostgreSQL up with pg_dump");
    }
    let db = open(&cfg).await?;
    let Db::Sqlite(store) = &db else {
        bail!("`warrant backup` copies SQLite deployments only");
    };
    store.backup_to(&args.to).await.with_context(|| {
        format!(
            "writing the backup to {} (it must not exist)",
            args.to.display()
        )
    })?;
    db.close().await;
    println!(
        "wrote a consistent copy of the database to {}",
        args.to.display()
    );
    eprintln!(
        "The backup does NOT contain the master key ({}/master.key or WARRANT_MASTER_KEY), \
         and is useless without it. Keep the key backed up apart from the database.\n\
         To restore: stop the server, copy the backup to DATA_DIR/warrant.db (removing any \
         warrant.db-wal and warrant.db-shm there), put the same master.key beside it, start.",
        cfg.data_dir.display()
    );
    Ok(())
}

pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    if !(args.database_url.starts_with("postgres://")
        || args.database_url.starts_with("postgresql://"))
    {
        bail!("--database-url must be a postgres:// URL");
    }
    let db_path = args.from.join("warrant.db");
    if !db_path.exists() {
        bail!("no SQLite database at {}", db_path.display());
    }
    let master = match std::env::var("WARRANT_MASTER_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
    {
        Some(k) => MasterKey::parse(&k)?,
        None => {
            let file = args.from.join("master.key");
            let text = std::fs::read_to_string(&file).with_context(|| {
                format!("reading {} (or set WARRANT_MASTER_KEY)", file.display())
            })?;
            MasterKey::parse(&text)?
        }
    };
    let source = SqliteStore::open(&db_path).await?;
    let snapshot = source
        .export()
        .await
        .context("reading the SQLite database")?;
    source.close().await;
    // The rows move wrapped; prove the key opens them before anyone relies on the copy.
    HashingKeys::load(&master, &snapshot.keyring)
        .context("the master key does not open this database's keyring")?;
    let target = PostgresStore::connect(&args.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    target.migrate().await.context("migrating PostgreSQL")?;
    target.import(&snapshot).await.map_err(|e| match e {
        warrant_core::StoreError::Conflict => {
            anyhow::anyhow!("the PostgreSQL database is not empty; import only into a fresh one")
        }
        other => anyhow::Error::new(other).context("writing to PostgreSQL"),
    })?;
    target.close().await;
    println!(
        "imported {} tenants, {} accounts, {} secrets, {} APIs, {} trusts, {} signing keys",
        snapshot.tenants.len(),
        snapshot.accounts.len(),
        snapshot.secrets.len(),
        snapshot.apis.len(),
        snapshot.trusts.len(),
        snapshot.signing_keys.len()
    );
    eprintln!(
        "Start every replica with WARRANT_MASTER_KEY set to the key in {}/master.key: \
         the imported keys and secret hashes are wrapped under it.",
        args.from.display()
    );
    Ok(())
}
