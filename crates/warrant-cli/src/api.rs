//! `warrant api …`: registered APIs (docs/apis.md) — an audience, the scopes it defines and
//! the account that owns it. Grants on a registered API may only name its scopes.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{Map, Value};
use warrant_proto::admin::{Api, CreateApi};

use crate::client::Admin;
use crate::globals::{GlobalArgs, Output};
use crate::grant::split_scopes;
use crate::output;

#[derive(Debug, Subcommand)]
pub enum ApiCmd {
    /// Register an API: its audience, the scopes it defines and its owning account.
    Create {
        name: String,
        #[arg(long)]
        tenant: String,
        /// The API's audience (an absolute URI); grants on it may then only name --scope values.
        #[arg(long)]
        audience: String,
        /// A scope the API defines (repeatable; space-separated lists also work).
        #[arg(long, required = true)]
        scope: Vec<String>,
        /// The owning account (an id `sa_…` or a name).
        #[arg(long)]
        owner: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List the registered APIs of a tenant.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Show one API (API is an id `api_…` or a name).
    Show {
        api: String,
        #[arg(long)]
        tenant: String,
    },
    /// Change an API (JSON Merge Patch of the given fields). --scope replaces the whole list.
    Update {
        api: String,
        #[arg(long)]
        tenant: String,
        /// The scopes the API defines from now on (repeatable; replaces the list). A scope still
        /// granted to an account cannot be dropped.
        #[arg(long)]
        scope: Vec<String>,
        /// The new owning account (an id or a name).
        #[arg(long)]
        owner: Option<String>,
        /// New description; an empty string removes it.
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete an API (grants on its audience stay as they are).
    Delete {
        api: String,
        #[arg(long)]
        tenant: String,
    },
}

pub async fn run(cmd: ApiCmd, global: &GlobalArgs) -> Result<()> {
    let out = global.plain_output()?;
    let admin = Admin::connect(global).await?;
    match cmd {
        ApiCmd::Create {
            name,
            tenant,
            audience,
            scope,
            owner,
            description,
        } => {
            let body = CreateApi {
                name,
                audience,
                scopes: split_scopes(&scope),
                owner,
                description,
            };
            let api: Api = admin.post(&["tenants", &tenant, "apis"], &body).await?;
            if out != Output::Json {
                output::line(&format!(
                    "registered API {} in tenant {}",
                    api.name, api.tenant
                ))?;
            }
            print_api(&api, out)
        }
        ApiCmd::List { tenant } => {
            let apis: Vec<Api> = admin.list(&["tenants", &tenant, "apis"]).await?;
            if out == Output::Json {
                return output::json(&apis);
            }
            let rows = apis
                .iter()
                .map(|a| {
                    vec![
                        a.name.clone(),
                        a.id.clone(),
                        a.audience.clone(),
                        a.scopes.join(" "),
                        a.owner.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            output::table(
                &["NAME", "ID", "AUDIENCE", "SCOPES", "OWNER"],
                &rows,
                &format!("no APIs in tenant {tenant}"),
            )
        }
        ApiCmd::Show { api, tenant } => {
            let api: Api = admin.get(&["tenants", &tenant, "apis", &api]).await?;
            print_api(&api, out)
        }
        ApiCmd::Update {
            api,
            tenant,
            scope,
            owner,
            description,
        } => {
            let mut patch = Map::new();
            if !scope.is_empty() {
                patch.insert("scopes".into(), split_scopes(&scope).into());
            }
            if let Some(o) = owner {
                patch.insert("owner".into(), Value::String(o));
            }
            if let Some(d) = description {
                let v = if d.is_empty() {
                    Value::Null
                } else {
                    Value::String(d)
                };
                patch.insert("description".into(), v);
            }
            let api: Api = admin
                .update(
                    &["tenants", &tenant, "apis", &api],
                    patch,
                    &["--scope", "--owner", "--description"],
                )
                .await?;
            print_api(&api, out)
        }
        ApiCmd::Delete { api, tenant } => {
            admin.delete(&["tenants", &tenant, "apis", &api]).await?;
            match out {
                Output::Json => output::json(&serde_json::json!({
                    "deleted": true, "tenant": tenant, "api": api
                })),
                _ => output::line(&format!("deleted API {api} in tenant {tenant}")),
            }
        }
    }
}

fn print_api(api: &Api, out: Output) -> Result<()> {
    if out == Output::Json {
        return output::json(api);
    }
    output::fields(&[
        ("name", api.name.clone()),
        ("id", api.id.clone()),
        ("tenant", api.tenant.clone()),
        ("audience", api.audience.clone()),
        ("scopes", api.scopes.join(" ")),
        ("owner", api.owner.clone()),
        ("description", output::or_dash(api.description.as_deref())),
        ("created", api.created_at.clone()),
        ("updated", api.updated_at.clone()),
        ("revision", api.revision.to_string()),
    ])
}
