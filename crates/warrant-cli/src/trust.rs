//! `warrant trust …`: federation trusts (docs/federation.md) — when tokens of an external
//! issuer (GitHub Actions, GitLab CI, a Kubernetes cluster, any OpenID provider) may act as an
//! account; `trust update` changes one in place (a cluster's rotated keys) — and `trust test`,
//! which shows which trusts a token satisfies and why the others do not.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value};
use warrant_core::federation::templates::{self, GithubActions, GitlabCi};
use warrant_core::federation::{Check, ClaimPath, Condition, TrustKeys, TrustPolicy};
use warrant_jose::JwkSet;
use warrant_proto::admin::{CreateTrust, Trust, TrustTestRequest, TrustTestResponse};

use crate::client::Admin;
use crate::duration::{format_duration, parse_duration};
use crate::globals::{GlobalArgs, Output};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum TrustCmd {
    /// Create a trust: from a template (--github, --gitlab, --kubernetes) or for any issuer
    /// (--issuer with at least one --condition).
    Create(Box<CreateArgs>),
    /// List the trusts of a tenant.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Show one trust (TRUST is an id `trust_…` or a name).
    Show {
        trust: String,
        #[arg(long)]
        tenant: String,
    },
    /// Change a trust (JSON Merge Patch of the given fields; the name stays). --condition and
    /// --copy-claim replace their whole lists.
    Update(Box<UpdateArgs>),
    /// Delete a trust.
    Delete {
        trust: String,
        #[arg(long)]
        tenant: String,
    },
    /// Which trusts an external token satisfies, and why the others do not. Exits 0 if one
    /// matches, 1 otherwise.
    Test {
        /// The token, or `-` to read it from stdin.
        token: String,
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("template").args(["github", "gitlab", "kubernetes"])))]
pub struct CreateArgs {
    name: String,
    #[arg(long)]
    tenant: String,
    /// The account the external tokens act as (an id `sa_…` or a name).
    #[arg(long)]
    account: String,
    /// The audience the external tokens must carry in `aud`.
    #[arg(long)]
    audience: String,
    /// The external issuer (required without a template and with --kubernetes; overrides
    /// --github's).
    #[arg(long)]
    issuer: Option<String>,
    /// Fetch keys from this JWKS URL instead of the issuer's discovery document.
    #[arg(long, conflicts_with = "jwks_file")]
    jwks_uri: Option<String>,
    /// Use the keys of this JWKS file (an issuer Warrant cannot reach, e.g. a private cluster's
    /// `kubectl get --raw /openid/v1/jwks`).
    #[arg(long)]
    jwks_file: Option<PathBuf>,
    /// GitHub Actions: the repository `owner/name`.
    #[arg(long, value_name = "REPOSITORY")]
    github: Option<String>,
    /// GitLab CI: the project path `group/project`.
    #[arg(long, value_name = "PROJECT_PATH")]
    gitlab: Option<String>,
    /// GitLab CI: a self-managed instance (default https://gitlab.com).
    #[arg(long, requires = "gitlab")]
    gitlab_issuer: Option<String>,
    /// Kubernetes: the service account `NAMESPACE/NAME` (with --issuer).
    #[arg(long, value_name = "NAMESPACE/SERVICEACCOUNT", requires = "issuer")]
    kubernetes: Option<String>,
    /// A condition on the claims: `claim=value` (exact string), `claim~glob`, or
    /// `claim in a,b` (one of). Nested claims are dotted: `a.b`. Repeatable; all must hold.
    #[arg(long)]
    condition: Vec<String>,
    /// GitHub or GitLab: the ref (a glob if it holds `*` or `?`).
    #[arg(long = "ref", value_name = "REF")]
    git_ref: Option<String>,
    /// GitHub: the deployment environment.
    #[arg(long, requires = "github")]
    environment: Option<String>,
    /// GitHub: the reusable workflow that must run the job.
    #[arg(long, requires = "github")]
    job_workflow_ref: Option<String>,
    /// GitHub: the owner's numeric id (recommended: names can be re-registered, ids cannot).
    #[arg(long, requires = "github")]
    repository_owner_id: Option<String>,
    /// GitLab: whether the ref must be protected.
    #[arg(long, requires = "gitlab")]
    ref_protected: Option<bool>,
    /// The maximum age of a presented token (`iat`), e.g. 10m (template default otherwise;
    /// 10m without a template).
    #[arg(long, value_parser = parse_duration)]
    max_age: Option<u64>,
    /// Accept each token once (by its `jti`).
    #[arg(long)]
    single_use: bool,
    /// An external claim to copy under `federated` (repeatable; added to the template's).
    #[arg(long)]
    copy_claim: Vec<String>,
    /// A cap on the lifetime of what is issued through the trust, e.g. 15m.
    #[arg(long, value_parser = parse_duration)]
    max_lifetime: Option<u64>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("keys").args(["jwks_uri", "jwks_file", "discovery"])))]
pub struct UpdateArgs {
    /// The trust: an id `trust_…` or a name.
    trust: String,
    #[arg(long)]
    tenant: String,
    /// The account the external tokens act as from now on (an id `sa_…` or a name).
    #[arg(long)]
    account: Option<String>,
    /// The audience the external tokens must carry in `aud` from now on.
    #[arg(long)]
    audience: Option<String>,
    /// The external issuer, compared exactly with the tokens' `iss`.
    #[arg(long)]
    issuer: Option<String>,
    /// Fetch keys from this JWKS URL (instead of discovery or a static JWKS).
    #[arg(long)]
    jwks_uri: Option<String>,
    /// Use the keys of this JWKS file from now on, e.g. a cluster's rotated service-account keys
    /// (`kubectl get --raw /openid/v1/jwks`). Replaces the trust's keys.
    #[arg(long)]
    jwks_file: Option<PathBuf>,
    /// Fetch keys through the issuer's discovery document (instead of a JWKS URL or file).
    #[arg(long)]
    discovery: bool,
    /// A condition on the claims, as for `trust create` (repeatable; replaces all the trust's
    /// conditions, including a template's).
    #[arg(long)]
    condition: Vec<String>,
    /// The maximum age of a presented token (`iat`), e.g. 10m.
    #[arg(long, value_parser = parse_duration)]
    max_age: Option<u64>,
    /// Accept each token once (by its `jti`): true or false.
    #[arg(long, value_name = "BOOL")]
    single_use: Option<bool>,
    /// An external claim to copy under `federated` (repeatable; replaces the list). An empty
    /// value removes them all.
    #[arg(long)]
    copy_claim: Vec<String>,
    /// A cap on the lifetime of what is issued through the trust, e.g. 15m; `none` removes it.
    #[arg(long, value_name = "DURATION|none", value_parser = parse_lifetime_cap)]
    max_lifetime: Option<LifetimeCap>,
}

/// `--max-lifetime` of `trust update`: seconds, or `None` for `none` (no cap).
#[derive(Debug, Clone, Copy)]
pub struct LifetimeCap(Option<u64>);

fn parse_lifetime_cap(text: &str) -> Result<LifetimeCap, String> {
    match text {
        "none" => Ok(LifetimeCap(None)),
        _ => parse_duration(text).map(|s| LifetimeCap(Some(s))),
    }
}

/// The flags of `trust update` that change something, for "nothing to update".
const UPDATE_FLAGS: &[&str] = &[
    "--account",
    "--audience",
    "--issuer",
    "--jwks-uri",
    "--jwks-file",
    "--discovery",
    "--condition",
    "--max-age",
    "--single-use",
    "--copy-claim",
    "--max-lifetime",
];

pub async fn run(cmd: TrustCmd, global: &GlobalArgs) -> Result<ExitCode> {
    let out = global.plain_output()?;
    let admin = Admin::connect(global).await?;
    match cmd {
        TrustCmd::Create(args) => {
            let tenant = args.tenant.clone();
            let body = create_body(*args)?;
            let t: Trust = admin.post(&["tenants", &tenant, "trusts"], &body).await?;
            if out != Output::Json {
                output::line(&format!("created trust {} in tenant {}", t.name, t.tenant))?;
            }
            print_trust(&t, out)?;
        }
        TrustCmd::List { tenant } => {
            let trusts: Vec<Trust> = admin.list(&["tenants", &tenant, "trusts"]).await?;
            if out == Output::Json {
                output::json(&trusts)?;
                return Ok(ExitCode::SUCCESS);
            }
            let rows = trusts
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.id.clone(),
                        field(t, "issuer"),
                        field(t, "audience"),
                        field(t, "account"),
                    ]
                })
                .collect::<Vec<_>>();
            output::table(
                &["NAME", "ID", "ISSUER", "AUDIENCE", "ACCOUNT"],
                &rows,
                &format!("no trusts in tenant {tenant}"),
            )?;
        }
        TrustCmd::Show { trust, tenant } => {
            let t: Trust = admin.get(&["tenants", &tenant, "trusts", &trust]).await?;
            print_trust(&t, out)?;
        }
        TrustCmd::Update(args) => {
            let (tenant, trust) = (args.tenant.clone(), args.trust.clone());
            let patch = update_patch(*args)?;
            let t: Trust = admin
                .update(&["tenants", &tenant, "trusts", &trust], patch, UPDATE_FLAGS)
                .await?;
            print_trust(&t, out)?;
        }
        TrustCmd::Delete { trust, tenant } => {
            admin
                .delete(&["tenants", &tenant, "trusts", &trust])
                .await?;
            match out {
                Output::Json => output::json(&serde_json::json!({
                    "deleted": true, "tenant": tenant, "trust": trust
                }))?,
                _ => output::line(&format!("deleted trust {trust} in tenant {tenant}"))?,
            }
        }
        TrustCmd::Test { token, tenant } => {
            let token = crate::token::read_token(&token)?;
            let report: TrustTestResponse = admin
                .post(
                    &["tenants", &tenant, "trusts", "test"],
                    &TrustTestRequest { token },
                )
                .await?;
            let matched = report.verdicts.iter().any(|v| v.matched);
            if out == Output::Json {
                output::json(&report)?;
            } else {
                print_report(&report, &tenant)?;
            }
            return Ok(if matched {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The policy the arguments describe, as the admin API takes it.
fn create_body(a: CreateArgs) -> Result<CreateTrust> {
    if a.git_ref.is_some() && a.github.is_none() && a.gitlab.is_none() {
        bail!("--ref applies to --github and --gitlab trusts only");
    }
    let mut policy = if let Some(repository) = &a.github {
        let mut p = templates::github_actions(&GithubActions {
            repository: repository.clone(),
            repository_owner_id: a.repository_owner_id.clone(),
            git_ref: a.git_ref.clone(),
            environment: a.environment.clone(),
            job_workflow_ref: a.job_workflow_ref.clone(),
        })?;
        if let Some(i) = &a.issuer {
            p.issuer = i.clone();
        }
        p
    } else if let Some(project_path) = &a.gitlab {
        if a.issuer.is_some() {
            bail!("--gitlab takes the instance as --gitlab-issuer");
        }
        templates::gitlab_ci(&GitlabCi {
            issuer: a.gitlab_issuer.clone(),
            project_path: project_path.clone(),
            git_ref: a.git_ref.clone(),
            ref_protected: a.ref_protected,
        })?
    } else if let Some(sa) = &a.kubernetes {
        let Some((ns, name)) = sa.split_once('/') else {
            bail!("--kubernetes takes NAMESPACE/SERVICEACCOUNT");
        };
        let issuer = a.issuer.as_deref().unwrap_or_default();
        templates::kubernetes(issuer, ns, name)?
    } else {
        let Some(issuer) = &a.issuer else {
            bail!(
                "give --issuer (with --condition), or a template: --github, --gitlab, --kubernetes"
            );
        };
        if a.condition.is_empty() {
            bail!("a trust without a template needs at least one --condition");
        }
        TrustPolicy {
            issuer: issuer.clone(),
            jwks: TrustKeys::Discovery,
            audience: String::new(),
            conditions: Vec::new(),
            max_age_seconds: 600,
            single_use: false,
            account: String::new(),
            copy_claims: Vec::new(),
            max_lifetime_seconds: None,
        }
    };
    if let Some(keys) = key_source(a.jwks_uri, a.jwks_file.as_deref())? {
        policy.jwks = keys;
    }
    policy.conditions.extend(parse_conditions(&a.condition)?);
    add_copy_claims(&mut policy.copy_claims, &a.copy_claim)?;
    if let Some(age) = a.max_age {
        policy.max_age_seconds = age;
    }
    policy.single_use |= a.single_use;
    policy.max_lifetime_seconds = a.max_lifetime.or(policy.max_lifetime_seconds);
    policy.audience = a.audience;
    policy.account = a.account;
    let Value::Object(fields) = serde_json::to_value(&policy)? else {
        bail!("a trust policy serialises to an object");
    };
    Ok(CreateTrust {
        name: a.name,
        policy: fields,
    })
}

/// The merge patch `trust update` sends: only the fields its flags set.
fn update_patch(a: UpdateArgs) -> Result<Map<String, Value>> {
    let mut patch = Map::new();
    let mut set = |k: &str, v: Value| {
        patch.insert(k.into(), v);
    };
    if let Some(account) = a.account {
        set("account", Value::String(account));
    }
    if let Some(audience) = a.audience {
        set("audience", Value::String(audience));
    }
    if let Some(issuer) = a.issuer {
        set("issuer", Value::String(issuer));
    }
    let keys = if a.discovery {
        Some(TrustKeys::Discovery)
    } else {
        key_source(a.jwks_uri, a.jwks_file.as_deref())?
    };
    if let Some(keys) = keys {
        set("jwks", jwks_patch(&keys)?);
    }
    if !a.condition.is_empty() {
        set(
            "conditions",
            serde_json::to_value(parse_conditions(&a.condition)?)?,
        );
    }
    if let Some(age) = a.max_age {
        set("max_age_seconds", age.into());
    }
    if let Some(once) = a.single_use {
        set("single_use", Value::Bool(once));
    }
    if !a.copy_claim.is_empty() {
        let mut claims = Vec::new();
        let named = a.copy_claim.iter().filter(|c| !c.is_empty()).cloned();
        add_copy_claims(&mut claims, &named.collect::<Vec<_>>())?;
        set("copy_claims", serde_json::to_value(claims)?);
    }
    if let Some(LifetimeCap(cap)) = a.max_lifetime {
        set("max_lifetime_seconds", cap.into());
    }
    Ok(patch)
}

/// `jwks` in a merge patch. A key source is an object with one member (or `"discovery"`), and
/// a merge patch merges objects: switching kinds must also remove the other kind's member.
fn jwks_patch(keys: &TrustKeys) -> Result<Value> {
    let mut v = serde_json::to_value(keys)?;
    if let Value::Object(m) = &mut v {
        for kind in ["jwks_uri", "static"] {
            m.entry(kind).or_insert(Value::Null);
        }
    }
    Ok(v)
}

/// The key source `--jwks-uri` or `--jwks-file` names, if either is given (clap lets at most one
/// through).
fn key_source(jwks_uri: Option<String>, jwks_file: Option<&Path>) -> Result<Option<TrustKeys>> {
    if let Some(path) = jwks_file {
        return Ok(Some(TrustKeys::Static(read_jwks_file(path)?)));
    }
    Ok(jwks_uri.map(TrustKeys::JwksUri))
}

/// A JWK Set file, e.g. `kubectl get --raw /openid/v1/jwks`.
fn read_jwks_file(path: &Path) -> Result<JwkSet> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a JWK Set", path.display()))
}

/// Each `--condition`, in order.
fn parse_conditions(texts: &[String]) -> Result<Vec<Condition>> {
    texts.iter().map(|c| parse_condition(c)).collect()
}

/// Adds each `--copy-claim` not already in `list`.
fn add_copy_claims(list: &mut Vec<ClaimPath>, claims: &[String]) -> Result<()> {
    for c in claims {
        let path = ClaimPath::parse(c)?;
        if !list.contains(&path) {
            list.push(path);
        }
    }
    Ok(())
}

/// `claim=value`, `claim~glob` or `claim in a,b`.
fn parse_condition(text: &str) -> Result<Condition> {
    let bad = || {
        anyhow::anyhow!("condition {text:?}: write `claim=value`, `claim~glob` or `claim in a,b`")
    };
    let (claim, check) = if let Some((claim, values)) = text.split_once(" in ") {
        let values = values
            .split(',')
            .map(|v| Value::from(v.trim()))
            .collect::<Vec<_>>();
        (claim, Check::OneOf(values))
    } else {
        let at = text.find(['=', '~']).ok_or_else(bad)?;
        let (claim, rest) = text.split_at(at);
        let value = &rest[1..];
        if rest.starts_with('~') {
            (claim, Check::Glob(value.to_owned()))
        } else {
            (claim, Check::Equals(Value::from(value)))
        }
    };
    let claim = claim.trim();
    if claim.is_empty() {
        return Err(bad());
    }
    let c = Condition::new(claim, check)?;
    c.validate()?;
    Ok(c)
}

fn field(t: &Trust, k: &str) -> String {
    match t.policy.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "-".into(),
    }
}

fn print_trust(t: &Trust, out: Output) -> Result<()> {
    if out == Output::Json {
        return output::json(t);
    }
    let jwks = match t.policy.get("jwks") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(m)) if m.contains_key("static") => "static JWKS".into(),
        Some(Value::Object(m)) => m
            .get("jwks_uri")
            .and_then(Value::as_str)
            .map_or_else(|| "-".into(), |u| format!("jwks_uri {u}")),
        _ => "-".into(),
    };
    let conditions = t
        .policy
        .get("conditions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let secs = |k: &str| {
        t.policy
            .get(k)
            .and_then(Value::as_u64)
            .map_or_else(|| "-".into(), format_duration)
    };
    output::fields(&[
        ("name", t.name.clone()),
        ("id", t.id.clone()),
        ("tenant", t.tenant.clone()),
        ("issuer", field(t, "issuer")),
        ("keys", jwks),
        ("audience", field(t, "audience")),
        ("account", field(t, "account")),
        ("conditions", conditions),
        ("max age", secs("max_age_seconds")),
        ("single use", field(t, "single_use")),
        ("copy claims", field(t, "copy_claims")),
        ("max lifetime", secs("max_lifetime_seconds")),
        ("created", t.created_at.clone()),
        ("updated", t.updated_at.clone()),
        ("revision", t.revision.to_string()),
    ])
}

fn print_report(report: &TrustTestResponse, tenant: &str) -> Result<()> {
    if report.verdicts.is_empty() {
        return output::line(&format!("no trusts in tenant {tenant}"));
    }
    let mut text = format!("signature: {}\n", report.signature);
    for v in &report.verdicts {
        if v.matched {
            text.push_str(&format!("MATCH     {} ({})\n", v.name, v.trust));
            if let Some(f) = &v.federated {
                text.push_str(&format!("  federated: {f}\n"));
            }
        } else {
            text.push_str(&format!("NO MATCH  {} ({})\n", v.name, v.trust));
            for f in &v.failures {
                text.push_str(&format!("  {}: {}\n", f.class, f.detail));
            }
        }
    }
    output::line(text.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_as_the_cli_writes_them() {
        let c = |s: &str| serde_json::to_value(parse_condition(s).unwrap()).unwrap();
        assert_eq!(
            c("repository=acme/api"),
            json!({"claim": "repository", "equals": "acme/api"})
        );
        assert_eq!(
            c("ref~refs/heads/*"),
            json!({"claim": "ref", "glob": "refs/heads/*"})
        );
        assert_eq!(
            c("env in staging, prod"),
            json!({"claim": "env", "one_of": ["staging", "prod"]})
        );
        assert_eq!(c("a.b=x=y"), json!({"claim": "a.b", "equals": "x=y"}));
        for bad in ["nothing", "=x", "ref~*", "ref~**"] {
            assert!(parse_condition(bad).is_err(), "{bad}");
        }
    }
}
