//! `warrant tenant …`: create, list, show, update and delete tenants.

use anyhow::Result;
use clap::Subcommand;
use warrant_proto::admin::{CreateTenant, Tenant};

use crate::client::Admin;
use crate::globals::{GlobalArgs, Output};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum TenantCmd {
    /// Create a tenant (its own issuer, keys and accounts).
    Create {
        name: String,
        /// Signing algorithm of the tenant's keys: ES256, EdDSA, RS256 or PS256 [default: ES256].
        #[arg(long, visible_alias = "alg")]
        signing_alg: Option<String>,
    },
    /// List all tenants.
    List,
    /// Show one tenant.
    Show { name: String },
    /// Change a tenant. A new signing algorithm applies to the keys the tenant gets from now on;
    /// its existing keys, and the tokens they signed, keep theirs.
    Update {
        name: String,
        /// Signing algorithm of the tenant's next keys: ES256, EdDSA, RS256 or PS256.
        #[arg(long, visible_alias = "alg")]
        signing_alg: String,
    },
    /// Delete a tenant and everything in it.
    Delete { name: String },
}

pub async fn run(cmd: TenantCmd, global: &GlobalArgs) -> Result<()> {
    let out = global.plain_output()?;
    let admin = Admin::connect(global).await?;
    match cmd {
        TenantCmd::Create { name, signing_alg } => {
            let body = CreateTenant { name, signing_alg };
            let tenant: Tenant = admin.post(&["tenants"], &body).await?;
            print_tenant(&tenant, out)
        }
        TenantCmd::List => {
            let tenants: Vec<Tenant> = admin.list(&["tenants"]).await?;
            if out == Output::Json {
                return output::json(&tenants);
            }
            let rows = tenants
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.signing_alg.clone(),
                        t.created_at.clone(),
                        t.issuer.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            output::table(&["NAME", "ALG", "CREATED", "ISSUER"], &rows, "no tenants")
        }
        TenantCmd::Show { name } => {
            let tenant: Tenant = admin.get(&["tenants", &name]).await?;
            print_tenant(&tenant, out)
        }
        TenantCmd::Update { name, signing_alg } => {
            let tenant: Tenant = admin
                .merge_patch(
                    &["tenants", &name],
                    &serde_json::json!({ "signing_alg": signing_alg }),
                )
                .await?;
            print_tenant(&tenant, out)
        }
        TenantCmd::Delete { name } => {
            admin.delete(&["tenants", &name]).await?;
            match out {
                Output::Json => output::json(&serde_json::json!({ "deleted": true, "name": name })),
                _ => output::line(&format!("deleted tenant {name}")),
            }
        }
    }
}

fn print_tenant(t: &Tenant, out: Output) -> Result<()> {
    if out == Output::Json {
        return output::json(t);
    }
    output::fields(&[
        ("name", t.name.clone()),
        ("issuer", t.issuer.clone()),
        ("signing alg", t.signing_alg.clone()),
        ("created", t.created_at.clone()),
        ("updated", t.updated_at.clone()),
        ("revision", t.revision.to_string()),
    ])
}
