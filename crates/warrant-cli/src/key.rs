//! `warrant key list`: a tenant's signing keys (public information only).

use anyhow::Result;
use clap::Subcommand;
use warrant_proto::admin::SigningKeyInfo;

use crate::client::Admin;
use crate::globals::{GlobalArgs, Output};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// List a tenant's signing keys and their states.
    List {
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
            if out == Output::Json {
                return output::json(&keys);
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
    }
}
