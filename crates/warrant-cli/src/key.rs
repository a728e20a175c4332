//! `warrant key …`: a tenant's signing keys (public information only): list them with their
//! lifecycle times, rotate (normal or `--now`), revoke a compromised one. See
//! docs/key-rotation.md.

use anyhow::Result;
use clap::Subcommand;
use warrant_proto::admin::{Page, RotateKey, SigningKeyInfo};

use crate::client::Admin;
use crate::globals::{GlobalArgs, Output};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// List a tenant's signing keys, their states and lifecycle times.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Rotate a tenant's signing key. The new key (the tenant's current algorithm) is published
    /// now and signs from jwks_max_age + 60 s on; the current key stays published until its
    /// tokens have expired. Rotating again while a new key waits shows that key.
    Rotate {
        #[arg(long)]
        tenant: String,
        /// Emergency: the new key signs at once. Verifiers whose cached JWKS predates it fail
        /// its tokens until they refetch (they do on an unknown kid).
        #[arg(long)]
        now: bool,
    },
    /// Revoke a compromised key: it leaves the JWKS at once and its tokens stop verifying. If
    /// it was signing, a replacement signs from now.
    Revoke {
        /// The key id (it may start with `-`: kids are base64url).
        #[arg(allow_hyphen_values = true)]
        kid: String,
        #[arg(long)]
        tenant: String,
    },
}

pub async fn run(cmd: KeyCmd, global: &GlobalArgs) -> Result<()> {
    let out = global.plain_output()?;
    let admin = Admin::connect(global).await?;
    match cmd {
        KeyCmd::List { tenant } => {
            let keys: Vec<SigningKeyInfo> = admin.list(&["tenants", &tenant, "keys"]).await?;
            print_keys(&tenant, &keys, out)
        }
        KeyCmd::Rotate { tenant, now } => {
            let key: SigningKeyInfo = admin
                .post(&["tenants", &tenant, "keys", "rotate"], &RotateKey { now })
                .await?;
            if out == Output::Json {
                return output::json(&key);
            }
            output::fields(&[
                ("kid", key.kid.clone()),
                ("alg", key.alg.clone()),
                ("state", key.state.clone()),
                ("published", key.created_at.clone()),
                ("signs from", key.activates_at.clone()),
            ])
        }
        KeyCmd::Revoke { kid, tenant } => {
            let page: Page<SigningKeyInfo> = admin
                .post(
                    &["tenants", &tenant, "keys", &kid, "revoke"],
                    &serde_json::json!({}),
                )
                .await?;
            if out != Output::Json {
                output::line(&format!("revoked key {kid} of tenant {tenant}"))?;
            }
            print_keys(&tenant, &page.items, out)
        }
    }
}

fn print_keys(tenant: &str, keys: &[SigningKeyInfo], out: Output) -> Result<()> {
    if out == Output::Json {
        return output::json(keys);
    }
    let rows = keys
        .iter()
        .map(|k| {
            vec![
                k.kid.clone(),
                k.alg.clone(),
                k.state.clone(),
                k.created_at.clone(),
                k.activates_at.clone(),
                output::or_dash(k.retires_at.as_deref()),
                output::or_dash(k.removed_at.as_deref()),
            ]
        })
        .collect::<Vec<_>>();
    output::table(
        &[
            "KID",
            "ALG",
            "STATE",
            "CREATED",
            "ACTIVATES",
            "RETIRES",
            "REMOVED",
        ],
        &rows,
        &format!("tenant {tenant} has no signing keys"),
    )
}
