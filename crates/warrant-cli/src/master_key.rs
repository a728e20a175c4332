//! `warrant master-key rotate` and `warrant master-key generate` (operator verbs).
//!
//! Rotation re-wraps every key the master key protects under a new one, in one database
//! transaction (`warrant_core::master_rotation`), and adds new secret-hashing and audit key
//! versions. Existing secrets, tokens and audit records stay valid: they name key versions and
//! kids, whose key bytes do not change.
//!
//! Where the new key goes:
//! - SQLite with `{data_dir}/master.key`: the new key is written to `master.key.new` (0600)
//!   *before* the transaction and renamed over `master.key` after it, so that the key opening
//!   the database is on disk at every moment (if the process dies between the two, the database
//!   opens with `master.key.new`: see the error at the next start).
//! - `WARRANT_MASTER_KEY` (always with PostgreSQL): the new key is written to `--new-key-out`
//!   (0600) or printed to stdout, once, before the transaction (after checking that the current
//!   key opens the keyring), for the same reason; the operator then restarts every replica
//!   with it.
//!
//! With SQLite the verb takes the data-directory lock, so it refuses to run beside `serve`. With
//! PostgreSQL nothing can stop a running replica: the rotation refuses to commit if a key was
//! added meanwhile, but running replicas keep using the keys they unwrapped at start, and one
//! that restarts with the old key fails to start.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use warrant_core::keyring::HashingKeys;
use warrant_core::master_rotation::rotate_master_key;
use warrant_core::{Clock as _, MasterKey, SystemClock};
use warrant_store_postgres::PostgresStore;
use zeroize::Zeroizing;

use crate::config::ServeConfig;
use crate::ops::DataArgs;
use crate::serve::{DataDir, Db, master_key_from_env, read_master_key_file, write_private};

#[derive(Debug, clap::Subcommand)]
pub enum MasterKeyCmd {
    /// Re-wrap every key under a new master key, in one transaction. Stop every server first.
    Rotate(RotateArgs),
    /// Print a fresh random master key (unpadded base64url of 32 bytes).
    Generate,
}

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Read the new master key from this file instead of generating one.
    #[arg(long)]
    pub new_key_file: Option<PathBuf>,
    /// Write the new key to this file (created 0600; must not exist) instead of stdout, when it
    /// is not kept in `{data_dir}/master.key`.
    #[arg(long)]
    pub new_key_out: Option<PathBuf>,
    /// Only re-wrap: do not add new secret-hashing and audit key versions.
    #[arg(long)]
    pub no_new_versions: bool,
}

pub async fn run(cmd: MasterKeyCmd) -> anyhow::Result<()> {
    match cmd {
        MasterKeyCmd::Rotate(args) => rotate(args).await,
        MasterKeyCmd::Generate => {
            let (_, text) = MasterKey::generate()?;
            println!("{}", text.as_str());
            Ok(())
        }
    }
}

/// Where the current master key comes from.
struct OldKey {
    key: MasterKey,
    from_env: bool,
    /// `{data_dir}/master.key`, if it exists (SQLite only): rotation replaces it.
    file: Option<PathBuf>,
}

fn old_key(cfg: &ServeConfig, shared: bool) -> anyhow::Result<OldKey> {
    let env = master_key_from_env();
    let path = cfg.data_dir.join("master.key");
    let file = if shared {
        None
    } else {
        read_master_key_file(&path)?
    };
    let text = match (&env, &file) {
        (Some(e), Some(f)) if e.trim() != f.trim() => bail!(
            "WARRANT_MASTER_KEY differs from {}: refusing to rotate (remove one of them)",
            path.display()
        ),
        (Some(e), _) => e,
        (None, Some(f)) => f,
        (None, None) if shared => {
            bail!("with PostgreSQL, WARRANT_MASTER_KEY must hold the current master key")
        }
        (None, None) => bail!(
            "no master key: neither WARRANT_MASTER_KEY nor {} exists",
            path.display()
        ),
    };
    Ok(OldKey {
        key: MasterKey::parse(text).context("the current master key")?,
        from_env: env.is_some(),
        file: file.map(|_| path),
    })
}

fn new_key(args: &RotateArgs) -> anyhow::Result<(MasterKey, Zeroizing<String>)> {
    match &args.new_key_file {
        Some(path) => {
            // Wiped when dropped, the file's text as well as the trimmed copy.
            let raw = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            );
            let text = Zeroizing::new(raw.trim().to_owned());
            let key = MasterKey::parse(&text)
                .with_context(|| format!("the new master key in {}", path.display()))?;
            Ok((key, text))
        }
        None => Ok(MasterKey::generate()?),
    }
}

fn pending_path(file: &Path) -> PathBuf {
    file.with_extension("key.new")
}

async fn rotate(args: RotateArgs) -> anyhow::Result<()> {
    let cfg = args.data.clone().load()?;
    let shared = Db::is_shared(&cfg)?;
    if !shared && cfg.database_url.is_none() {
        let db = cfg.data_dir.join("warrant.db");
        if !db.exists() {
            bail!("no database at {} (is --data-dir right?)", db.display());
        }
    }
    // SQLite: the data-directory lock, held until we return, keeps `serve` out. PostgreSQL
    // needs no directory at all.
    let dir = if shared {
        None
    } else {
        Some(DataDir::open(&cfg.data_dir, true)?)
    };
    let old = old_key(&cfg, shared)?;
    let (new, new_text) = new_key(&args)?;
    let pending = old.file.as_deref().map(pending_path);
    if let Some(p) = &pending
        && p.exists()
    {
        bail!(
            "{} exists: an earlier rotation was interrupted. One of master.key and \
             master.key.new opens the database: start `warrant serve` with master.key; if it \
             reports that the master key does not match, move master.key.new over master.key. \
             Then remove master.key.new and rotate again.",
            p.display()
        );
    }
    let emit = old.from_env || args.new_key_out.is_some();

    let db = match (&dir, cfg.database_url.as_deref()) {
        (Some(dir), _) => Db::open(&cfg, dir).await?,
        (None, Some(url)) => Db::Postgres(
            PostgresStore::connect(url)
                .await
                .context("connecting to PostgreSQL (database_url)")?,
        ),
        (None, None) => bail!("no database_url"),
    };
    let store = db.store();
    let states = store
        .migrations()
        .await
        .context("reading the migration state")?;
    if states.iter().any(|m| m.applied_at.is_none()) {
        db.close().await;
        bail!("the database has pending migrations: apply them first (`warrant migrate up`)");
    }

    // Check the current key before showing anything: a wrong one changes nothing.
    let opens = match store.keyring().await {
        Ok(entries) => HashingKeys::load(&old.key, &entries).is_ok(),
        Err(e) => {
            db.close().await;
            return Err(anyhow::Error::new(e).context("reading the keyring"));
        }
    };
    if !opens {
        db.close().await;
        bail!("the current master key does not open this database's keyring; nothing was changed");
    }

    // Put the new key where the operator will find it before the transaction commits: from
    // then on, only the new key opens the database.
    if let Some(p) = &pending {
        write_private(p, new_text.as_bytes(), true)?;
    }
    if emit {
        match &args.new_key_out {
            Some(out) => {
                if let Err(e) = write_private(out, new_text.as_bytes(), true) {
                    discard(pending.as_deref());
                    db.close().await;
                    return Err(e.context("the new key file must not exist"));
                }
            }
            None => {
                println!("{}", new_text.as_str());
                std::io::Write::flush(&mut std::io::stdout())?;
            }
        }
    }
    let rotated = rotate_master_key(
        &*store,
        &old.key,
        &new,
        SystemClock.now(),
        !args.no_new_versions,
    )
    .await;
    let report = match rotated {
        Ok(r) => {
            db.close().await;
            r
        }
        Err(e) => {
            // A failed commit may still have committed: forget the new key only if the current
            // one still opens the keyring.
            let unchanged = match store.keyring().await {
                Ok(entries) => HashingKeys::load(&old.key, &entries).is_ok(),
                Err(_) => false,
            };
            db.close().await;
            if !unchanged {
                return Err(anyhow::Error::new(e).context(
                    "rotating the master key failed, and the database could not be shown to be \
                     unchanged: keep both the current and the new master key until `warrant \
                     serve` starts with one of them",
                ));
            }
            discard(pending.as_deref());
            if emit {
                match &args.new_key_out {
                    Some(out) => discard(Some(out)),
                    None => eprintln!(
                        "The key printed above was NOT put in use: keep the current master key."
                    ),
                }
            }
            return Err(anyhow::Error::new(e).context("rotating the master key"));
        }
    };

    if let (Some(file), Some(p)) = (&old.file, &pending) {
        std::fs::rename(p, file)
            .with_context(|| format!("moving {} over {}", p.display(), file.display()))?;
        if let Some(d) = file.parent().and_then(|p| std::fs::File::open(p).ok()) {
            // Makes the rename durable; a failure here leaves it merely not yet on disk.
            let _ = d.sync_all();
        }
    }
    let added: Vec<String> = report
        .added
        .iter()
        .map(|(purpose, version)| format!("{} key v{version}", purpose.as_str()))
        .collect();
    eprintln!(
        "Re-wrapped {} keyring entries and {} signing keys under the new master key{}.",
        report.keyring_entries,
        report.signing_keys,
        if added.is_empty() {
            String::new()
        } else {
            format!("; added {}", added.join(" and "))
        }
    );
    if let Some(file) = &old.file {
        eprintln!("{} now holds the new master key.", file.display());
    }
    if emit {
        match &args.new_key_out {
            Some(out) => eprintln!("The new master key is in {}.", out.display()),
            None => eprintln!("The new master key is the line printed on stdout."),
        }
        eprintln!(
            "Set WARRANT_MASTER_KEY to the new key and restart every server{}; the old key no \
             longer opens the database.",
            if shared { " (every replica)" } else { "" }
        );
    }
    Ok(())
}

/// Removes a new-key file written for a rotation that did not happen.
fn discard(path: Option<&Path>) {
    if let Some(p) = path {
        let _ = std::fs::remove_file(p);
    }
}
