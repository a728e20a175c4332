//! `warrant sa …`: service accounts (the OAuth clients of workloads).

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use serde::Serialize;
use serde_json::{Map, Value};
use warrant_proto::admin::{
    CreateSecret, CreateServiceAccount, CreatedSecret, Grant, ServiceAccount,
};

use crate::client::Admin;
use crate::duration::{format_duration, parse_duration};
use crate::globals::{GlobalArgs, Output};
use crate::grant::split_scopes;
use crate::output;

/// Name of the secret `sa create` makes.
const INITIAL_SECRET: &str = "initial";

#[derive(Debug, Subcommand)]
pub enum SaCmd {
    /// Create an account, optionally with a grant, and its first secret (named `initial`).
    Create {
        name: String,
        #[arg(long)]
        tenant: String,
        /// Default audience of its tokens; also grants this audience the --scope values.
        #[arg(long)]
        audience: Option<String>,
        /// Scope granted at --audience (repeatable; space-separated lists also work).
        #[arg(long, requires = "audience")]
        scope: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// Token lifetime when the request asks for none (e.g. 10m, 1h).
        #[arg(long, value_parser = parse_duration)]
        default_lifetime: Option<u64>,
        /// Longest token lifetime the account may get (e.g. 1h).
        #[arg(long, value_parser = parse_duration)]
        max_lifetime: Option<u64>,
        /// Custom claims added to its tokens, as a JSON object.
        #[arg(long, value_parser = parse_claims)]
        claims: Option<Map<String, Value>>,
    },
    /// List the accounts of a tenant.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Show one account (ACCOUNT is an id `sa_…` or a name).
    Show {
        account: String,
        #[arg(long)]
        tenant: String,
    },
    /// Change an account's settings (JSON Merge Patch of the given fields).
    Update {
        account: String,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        description: Option<String>,
        /// New default audience; an empty string removes it.
        #[arg(long)]
        default_audience: Option<String>,
        #[arg(long, value_parser = parse_duration)]
        default_lifetime: Option<u64>,
        #[arg(long, value_parser = parse_duration)]
        max_lifetime: Option<u64>,
        /// Claims merged into the account's claims (RFC 7396: a `null` member removes a claim).
        #[arg(long, value_parser = parse_claims)]
        claims: Option<Map<String, Value>>,
    },
    /// Stop the account from getting tokens (its secrets are kept).
    Disable {
        account: String,
        #[arg(long)]
        tenant: String,
    },
    /// Let a disabled account get tokens again.
    Enable {
        account: String,
        #[arg(long)]
        tenant: String,
    },
    /// Delete the account and its secrets.
    Delete {
        account: String,
        #[arg(long)]
        tenant: String,
    },
}

/// Parses `--claims`: a JSON object.
fn parse_claims(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("--claims must be a JSON object, e.g. '{\"team\":\"payments\"}'".into()),
        Err(e) => Err(format!("--claims is not valid JSON: {e}")),
    }
}

/// What `sa create` prints: everything a workload needs, the secret included (shown once).
#[derive(Debug, Serialize)]
struct Created<'a> {
    id: &'a str,
    name: &'a str,
    tenant: &'a str,
    client_id: &'a str,
    issuer: &'a str,
    token_endpoint: &'a str,
    secret: CreatedSecretOut<'a>,
}

#[derive(Debug, Serialize)]
struct CreatedSecretOut<'a> {
    name: &'a str,
    value: &'a str,
    expires_at: Option<&'a str>,
}

pub async fn run(cmd: SaCmd, global: &GlobalArgs) -> Result<()> {
    let out = global.plain_output()?;
    let admin = Admin::connect(global).await?;
    match cmd {
        SaCmd::Create {
            name,
            tenant,
            audience,
            scope,
            description,
            default_lifetime,
            max_lifetime,
            claims,
        } => {
            let grants = match &audience {
                Some(a) => vec![Grant {
                    audience: a.clone(),
                    scopes: split_scopes(&scope),
                }],
                None => Vec::new(),
            };
            let body = CreateServiceAccount {
                name,
                description,
                enabled: None,
                default_audience: audience,
                grants,
                default_lifetime_seconds: default_lifetime,
                max_lifetime_seconds: max_lifetime,
                claims,
            };
            let sa: ServiceAccount = admin
                .post(&["tenants", &tenant, "service-accounts"], &body)
                .await?;
            let secret: CreatedSecret = admin
                .post(
                    &["tenants", &tenant, "service-accounts", &sa.id, "secrets"],
                    &CreateSecret {
                        name: INITIAL_SECRET.into(),
                        ..CreateSecret::default()
                    },
                )
                .await
                .with_context(|| {
                    format!(
                        "the account {} ({}) was created but its secret was not; add one with \
                         `warrant secret add {} --tenant {tenant} --name {INITIAL_SECRET}`",
                        sa.name, sa.id, sa.name
                    )
                })?;
            print_created(&sa, &secret, out)
        }
        SaCmd::List { tenant } => {
            let accounts: Vec<ServiceAccount> = admin
                .list(&["tenants", &tenant, "service-accounts"])
                .await?;
            if out == Output::Json {
                return output::json(&accounts);
            }
            let rows = accounts
                .iter()
                .map(|a| {
                    vec![
                        a.name.clone(),
                        a.id.clone(),
                        if a.enabled { "yes" } else { "no" }.into(),
                        output::or_dash(a.default_audience.as_deref()),
                        a.grants.len().to_string(),
                        a.created_at.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            output::table(
                &[
                    "NAME",
                    "ID",
                    "ENABLED",
                    "DEFAULT AUDIENCE",
                    "GRANTS",
                    "CREATED",
                ],
                &rows,
                &format!("no service accounts in tenant {tenant}"),
            )
        }
        SaCmd::Show { account, tenant } => {
            let sa: ServiceAccount = admin
                .get(&["tenants", &tenant, "service-accounts", &account])
                .await?;
            print_account(&sa, out)
        }
        SaCmd::Update {
            account,
            tenant,
            description,
            default_audience,
            default_lifetime,
            max_lifetime,
            claims,
        } => {
            let mut patch = Map::new();
            if let Some(d) = description {
                patch.insert("description".into(), Value::String(d));
            }
            if let Some(a) = default_audience {
                let v = if a.is_empty() {
                    Value::Null
                } else {
                    Value::String(a)
                };
                patch.insert("default_audience".into(), v);
            }
            if let Some(s) = default_lifetime {
                patch.insert("default_lifetime_seconds".into(), s.into());
            }
            if let Some(s) = max_lifetime {
                patch.insert("max_lifetime_seconds".into(), s.into());
            }
            if let Some(c) = claims {
                patch.insert("claims".into(), Value::Object(c));
            }
            if patch.is_empty() {
                bail!(
                    "nothing to update: give at least one of --description, --default-audience, \
                     --default-lifetime, --max-lifetime, --claims"
                );
            }
            let sa: ServiceAccount = admin
                .merge_patch(
                    &["tenants", &tenant, "service-accounts", &account],
                    &Value::Object(patch),
                )
                .await?;
            print_account(&sa, out)
        }
        SaCmd::Disable { account, tenant } => {
            set_enabled(&admin, &tenant, &account, false, out).await
        }
        SaCmd::Enable { account, tenant } => {
            set_enabled(&admin, &tenant, &account, true, out).await
        }
        SaCmd::Delete { account, tenant } => {
            admin
                .delete(&["tenants", &tenant, "service-accounts", &account])
                .await?;
            match out {
                Output::Json => output::json(&serde_json::json!({
                    "deleted": true, "tenant": tenant, "account": account
                })),
                _ => output::line(&format!(
                    "deleted service account {account} in tenant {tenant}"
                )),
            }
        }
    }
}

async fn set_enabled(
    admin: &Admin,
    tenant: &str,
    account: &str,
    enabled: bool,
    out: Output,
) -> Result<()> {
    let sa: ServiceAccount = admin
        .merge_patch(
            &["tenants", tenant, "service-accounts", account],
            &serde_json::json!({ "enabled": enabled }),
        )
        .await?;
    match out {
        Output::Json => output::json(&sa),
        _ => output::line(&format!(
            "{} service account {} ({}) in tenant {}",
            if sa.enabled { "enabled" } else { "disabled" },
            sa.name,
            sa.id,
            sa.tenant
        )),
    }
}

fn print_created(sa: &ServiceAccount, secret: &CreatedSecret, out: Output) -> Result<()> {
    if out == Output::Json {
        return output::json(&Created {
            id: &sa.id,
            name: &sa.name,
            tenant: &sa.tenant,
            client_id: &sa.client_id,
            issuer: &sa.issuer,
            token_endpoint: &sa.token_endpoint,
            secret: CreatedSecretOut {
                name: &secret.name,
                value: &secret.value,
                expires_at: secret.expires_at.as_deref(),
            },
        });
    }
    output::line(&format!(
        "created service account {} in tenant {}",
        sa.name, sa.tenant
    ))?;
    output::fields(&[
        ("id", sa.id.clone()),
        ("client_id", sa.client_id.clone()),
        ("issuer", sa.issuer.clone()),
        ("token endpoint", sa.token_endpoint.clone()),
        ("grants", grants_text(&sa.grants)),
        ("secret name", secret.name.clone()),
        ("secret", secret.value.clone()),
        (
            "secret expires",
            secret.expires_at.clone().unwrap_or_else(|| "never".into()),
        ),
    ])?;
    output::line(
        "The secret is shown only this once: store it now (e.g. as WARRANT_CLIENT_SECRET).",
    )
}

pub fn print_account(sa: &ServiceAccount, out: Output) -> Result<()> {
    if out == Output::Json {
        return output::json(sa);
    }
    output::fields(&[
        ("name", sa.name.clone()),
        ("id", sa.id.clone()),
        ("tenant", sa.tenant.clone()),
        ("description", output::or_dash(Some(&sa.description))),
        ("enabled", if sa.enabled { "yes" } else { "no" }.into()),
        ("client_id", sa.client_id.clone()),
        ("issuer", sa.issuer.clone()),
        ("token endpoint", sa.token_endpoint.clone()),
        (
            "default audience",
            output::or_dash(sa.default_audience.as_deref()),
        ),
        ("grants", grants_text(&sa.grants)),
        (
            "default lifetime",
            format_duration(sa.default_lifetime_seconds),
        ),
        ("max lifetime", format_duration(sa.max_lifetime_seconds)),
        (
            "claims",
            if sa.claims.is_empty() {
                "-".into()
            } else {
                Value::Object(sa.claims.clone()).to_string()
            },
        ),
        ("auth methods", sa.auth_methods.join(", ")),
        ("created", sa.created_at.clone()),
        ("updated", sa.updated_at.clone()),
        ("revision", sa.revision.to_string()),
    ])
}

/// `aud1 (s1 s2); aud2 (-)`, or `-` when there are none.
fn grants_text(grants: &[Grant]) -> String {
    if grants.is_empty() {
        return "-".into();
    }
    grants
        .iter()
        .map(|g| {
            let scopes = if g.scopes.is_empty() {
                "no scopes".to_string()
            } else {
                g.scopes.join(" ")
            };
            format!("{} ({scopes})", g.audience)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn claims_must_be_an_object() {
        assert_eq!(parse_claims(r#"{"team":"x"}"#).unwrap()["team"], "x");
        assert!(parse_claims("[1]").is_err());
        assert!(parse_claims("{").is_err());
    }
}
