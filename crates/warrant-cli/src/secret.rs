//! `warrant secret …`: an account's client secrets. Several can be live at once, so a rotation
//! is `add` the next, deploy it, `revoke` the old.

use anyhow::Result;
use clap::Subcommand;
use warrant_proto::admin::{CreateSecret, CreatedSecret, SecretInfo};

use crate::client::Admin;
use crate::duration::parse_duration;
use crate::globals::{GlobalArgs, Output};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum SecretCmd {
    /// Add a secret to an account; its value is printed once.
    Add {
        account: String,
        #[arg(long)]
        tenant: String,
        /// A name for the secret, unique within the account (e.g. `2025-06`, `next`).
        #[arg(long)]
        name: String,
        /// Stop accepting the secret after this long (e.g. 30d) [default: never].
        #[arg(long, value_parser = parse_duration)]
        expires_in: Option<u64>,
    },
    /// List an account's secrets (names and dates; values are never shown again).
    List {
        account: String,
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a secret: it stops working at once.
    Revoke {
        account: String,
        name: String,
        #[arg(long)]
        tenant: String,
    },
}

pub async fn run(cmd: SecretCmd, global: &GlobalArgs) -> Result<()> {
    let out = global.plain_output()?;
    let admin = Admin::connect(global).await?;
    match cmd {
        SecretCmd::Add {
            account,
            tenant,
            name,
            expires_in,
        } => {
            let body = CreateSecret {
                name,
                expires_at: None,
                expires_in_seconds: expires_in,
            };
            let secret: CreatedSecret = admin
                .post(
                    &["tenants", &tenant, "service-accounts", &account, "secrets"],
                    &body,
                )
                .await?;
            if out == Output::Json {
                return output::json(&secret);
            }
            output::line(&format!("added secret {} to {account}", secret.name))?;
            output::fields(&[
                ("name", secret.name.clone()),
                ("secret", secret.value.clone()),
                ("created", secret.created_at.clone()),
                (
                    "expires",
                    secret.expires_at.clone().unwrap_or_else(|| "never".into()),
                ),
            ])?;
            output::line("The secret is shown only this once: store it now.")
        }
        SecretCmd::List { account, tenant } => {
            let secrets: Vec<SecretInfo> = admin
                .list(&["tenants", &tenant, "service-accounts", &account, "secrets"])
                .await?;
            if out == Output::Json {
                return output::json(&secrets);
            }
            let rows = secrets
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.created_at.clone(),
                        s.expires_at.clone().unwrap_or_else(|| "never".into()),
                        s.last_used_at.clone().unwrap_or_else(|| "never".into()),
                    ]
                })
                .collect::<Vec<_>>();
            output::table(
                &["NAME", "CREATED", "EXPIRES", "LAST USED"],
                &rows,
                &format!("{account} has no secrets"),
            )
        }
        SecretCmd::Revoke {
            account,
            name,
            tenant,
        } => {
            admin
                .delete(&[
                    "tenants",
                    &tenant,
                    "service-accounts",
                    &account,
                    "secrets",
                    &name,
                ])
                .await?;
            match out {
                Output::Json => output::json(&serde_json::json!({
                    "revoked": true, "tenant": tenant, "account": account, "name": name
                })),
                _ => output::line(&format!("revoked secret {name} of {account}")),
            }
        }
    }
}
