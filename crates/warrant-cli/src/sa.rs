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
        #[command(flatten)]
        credentials: CredentialArgs,
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
        /// Require DPoP-bound tokens (RFC 9449): true or false.
        #[arg(long)]
        dpop: Option<bool>,
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

/// Secretless credentials for `sa create` (docs/client-authentication.md). With any of them the
/// account gets no secret: key- and certificate-bound accounts never hold one (no downgrade).
#[derive(Debug, Default, clap::Args)]
pub struct CredentialArgs {
    /// private_key_jwt: a file holding the account's public keys (a JWK Set, or one JWK).
    #[arg(long, value_name = "FILE", conflicts_with = "jwks_uri")]
    jwks: Option<std::path::PathBuf>,
    /// private_key_jwt: an https URL Warrant fetches the account's public keys from.
    #[arg(long, value_name = "URL")]
    jwks_uri: Option<String>,
    /// tls_client_auth: the certificate's subject DN (RFC 4514, e.g. "CN=api,O=Example").
    #[arg(long, value_name = "DN", group = "tls_rule")]
    tls_subject_dn: Option<String>,
    /// tls_client_auth: a DNS subject alternative name the certificate must carry.
    #[arg(long, value_name = "NAME", group = "tls_rule")]
    tls_san_dns: Option<String>,
    /// tls_client_auth: a URI SAN the certificate must carry (a SPIFFE ID, e.g.
    /// spiffe://example.org/ns/prod/sa/api).
    #[arg(long, value_name = "URI", group = "tls_rule")]
    tls_san_uri: Option<String>,
    /// self_signed_tls_client_auth: a PEM certificate file the client presents (repeatable).
    #[arg(long, value_name = "FILE")]
    tls_certificate: Vec<std::path::PathBuf>,
    /// Require DPoP-bound tokens (RFC 9449).
    #[arg(long)]
    dpop: bool,
}

impl CredentialArgs {
    /// Whether the account authenticates without a secret.
    fn secretless(&self) -> bool {
        self.jwks.is_some()
            || self.jwks_uri.is_some()
            || self.tls_subject_dn.is_some()
            || self.tls_san_dns.is_some()
            || self.tls_san_uri.is_some()
            || !self.tls_certificate.is_empty()
    }

    fn apply(self, body: &mut CreateServiceAccount) -> Result<()> {
        if let Some(path) = &self.jwks {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --jwks {}", path.display()))?;
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("--jwks {} is not JSON", path.display()))?;
            // One JWK is accepted as a set of one.
            body.jwks = Some(if v.get("keys").is_some() {
                v
            } else {
                serde_json::json!({ "keys": [v] })
            });
        }
        body.jwks_uri = self.jwks_uri;
        body.tls_client_auth_subject_dn = self.tls_subject_dn;
        body.tls_client_auth_san_dns = self.tls_san_dns;
        body.tls_client_auth_san_uri = self.tls_san_uri;
        for path in &self.tls_certificate {
            body.tls_client_certificates
                .push(std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read --tls-certificate {}", path.display())
                })?);
        }
        body.dpop_bound_access_tokens = self.dpop.then_some(true);
        Ok(())
    }
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
    auth_methods: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<CreatedSecretOut<'a>>,
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
            credentials,
        } => {
            let grants = match &audience {
                Some(a) => vec![Grant {
                    audience: a.clone(),
                    scopes: split_scopes(&scope),
                }],
                None => Vec::new(),
            };
            let mut body = CreateServiceAccount {
                name,
                description,
                default_audience: audience,
                grants,
                default_lifetime_seconds: default_lifetime,
                max_lifetime_seconds: max_lifetime,
                claims,
                ..CreateServiceAccount::default()
            };
            let secretless = credentials.secretless();
            credentials.apply(&mut body)?;
            let sa: ServiceAccount = admin
                .post(&["tenants", &tenant, "service-accounts"], &body)
                .await?;
            if secretless {
                return print_created(&sa, None, out);
            }
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
            print_created(&sa, Some(&secret), out)
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
            dpop,
        } => {
            let mut patch = Map::new();
            if let Some(d) = dpop {
                patch.insert("dpop_bound_access_tokens".into(), Value::Bool(d));
            }
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
                     --default-lifetime, --max-lifetime, --claims, --dpop"
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

fn print_created(sa: &ServiceAccount, secret: Option<&CreatedSecret>, out: Output) -> Result<()> {
    if out == Output::Json {
        return output::json(&Created {
            id: &sa.id,
            name: &sa.name,
            tenant: &sa.tenant,
            client_id: &sa.client_id,
            issuer: &sa.issuer,
            token_endpoint: &sa.token_endpoint,
            auth_methods: &sa.auth_methods,
            secret: secret.map(|secret| CreatedSecretOut {
                name: &secret.name,
                value: &secret.value,
                expires_at: secret.expires_at.as_deref(),
            }),
        });
    }
    let Some(secret) = secret else {
        output::line(&format!(
            "created service account {} in tenant {} (no secret: it authenticates with {})",
            sa.name,
            sa.tenant,
            sa.auth_methods.join(", ")
        ))?;
        return output::fields(&[
            ("id", sa.id.clone()),
            ("client_id", sa.client_id.clone()),
            ("issuer", sa.issuer.clone()),
            ("token endpoint", sa.token_endpoint.clone()),
            ("grants", grants_text(&sa.grants)),
        ]);
    };
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
        ("credentials", credentials_text(sa)),
        (
            "dpop required",
            if sa.dpop_bound_access_tokens {
                "yes"
            } else {
                "no"
            }
            .into(),
        ),
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

/// The secretless credentials of an account, one line.
fn credentials_text(sa: &ServiceAccount) -> String {
    let mut parts = Vec::new();
    if let Some(n) = sa
        .jwks
        .as_ref()
        .and_then(|j| j.get("keys"))
        .and_then(Value::as_array)
        .map(Vec::len)
    {
        parts.push(format!("jwks ({n} keys)"));
    }
    if let Some(u) = &sa.jwks_uri {
        parts.push(format!("jwks_uri {u}"));
    }
    for (k, v) in [
        ("subject DN", &sa.tls_client_auth_subject_dn),
        ("DNS SAN", &sa.tls_client_auth_san_dns),
        ("URI SAN", &sa.tls_client_auth_san_uri),
    ] {
        if let Some(v) = v {
            parts.push(format!("certificate with {k} {v}"));
        }
    }
    if !sa.tls_client_certificate_thumbprints.is_empty() {
        parts.push(format!(
            "{} registered certificate(s)",
            sa.tls_client_certificate_thumbprints.len()
        ));
    }
    if parts.is_empty() {
        "secrets".into()
    } else {
        parts.join("; ")
    }
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
