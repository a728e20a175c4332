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
    #[command(group = clap::ArgGroup::new("change").required(true).multiple(true))]
    Update {
        name: String,
        /// Signing algorithm of the tenant's next keys: ES256, EdDSA, RS256 or PS256.
        #[arg(long, visible_alias = "alg", group = "change")]
        signing_alg: Option<String>,
        /// Scheduled key rotation: a new key signs this long after the current one did (`30d`,
        /// `12h`; `off` for manual rotation only). At least 2 × (jwks_max_age + 60 s), at most
        /// 365 days. See docs/key-rotation.md.
        #[arg(long, value_name = "DURATION|off", value_parser = parse_period, group = "change")]
        key_rotation_period: Option<Period>,
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
        TenantCmd::Update {
            name,
            signing_alg,
            key_rotation_period,
        } => {
            let mut patch = serde_json::Map::new();
            if let Some(alg) = signing_alg {
                patch.insert("signing_alg".into(), alg.into());
            }
            if let Some(Period(p)) = key_rotation_period {
                patch.insert("key_rotation_period_seconds".into(), p.into());
            }
            let tenant: Tenant = admin
                .merge_patch(&["tenants", &name], &serde_json::Value::Object(patch))
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

/// A rotation period as `--key-rotation-period` takes it: seconds, or `None` for `off`.
#[derive(Debug, Clone, Copy)]
pub struct Period(Option<u64>);

fn parse_period(text: &str) -> Result<Period, String> {
    match text {
        "off" | "none" | "manual" => Ok(Period(None)),
        _ => crate::duration::parse_duration(text).map(|s| Period(Some(s))),
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
        (
            "key rotation",
            t.key_rotation_period_seconds
                .map_or_else(|| "manual".into(), crate::duration::format_duration),
        ),
        ("created", t.created_at.clone()),
        ("updated", t.updated_at.clone()),
        ("revision", t.revision.to_string()),
    ])
}
