//! Ready-made trusts for the common external issuers. Each returns a [`TrustPolicy`] with an
//! empty `audience` and `account`, which the caller fills in (from the admin's command) before
//! [`TrustPolicy::validate`]; everything else may be adjusted too.
//!
//! Claim names and formats are those the issuers document: GitHub Actions' OIDC token,
//! GitLab CI's `id_tokens`, and Kubernetes' projected service-account token.

use serde_json::Value;

use super::conditions::{Check, ClaimPath, Condition};
use super::policy::{TrustKeys, TrustPolicy, is_issuer_url};
use crate::policy::PolicyViolation;

/// The issuer of GitHub Actions' OIDC tokens (github.com; GitHub Enterprise Server and
/// customised enterprise issuers differ).
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// The issuer of GitLab.com's CI ID tokens; a self-managed GitLab's is its own URL.
pub const GITLAB_COM_ISSUER: &str = "https://gitlab.com";

/// A GitHub Actions trust. `ref` and `job_workflow_ref` are globs when they contain `*` or
/// `?`, exact otherwise; the other values are exact.
#[derive(Debug, Clone, Default)]
pub struct GithubActions {
    /// `owner/name`, e.g. `acme/api`.
    pub repository: String,
    /// The owner's numeric id (as the token carries it: a string of digits). Recommended: a
    /// deleted or renamed owner's name can be registered again by someone else, its id cannot.
    pub repository_owner_id: Option<String>,
    /// The token's `ref`, e.g. `refs/heads/main` or `refs/tags/v*`.
    pub git_ref: Option<String>,
    /// The deployment environment the job runs in.
    pub environment: Option<String>,
    /// The reusable workflow that must run the job, e.g.
    /// `acme/deploy/.github/workflows/deploy.yml@refs/heads/main`.
    pub job_workflow_ref: Option<String>,
}

/// A trust for GitHub Actions: discovery on [`GITHUB_ACTIONS_ISSUER`], a 10-minute maximum
/// age (GitHub's tokens are short-lived and fetched just before use), and `repository`,
/// `ref`, `sha`, `workflow`, `run_id`, `actor` copied under `federated`.
pub fn github_actions(t: &GithubActions) -> Result<TrustPolicy, PolicyViolation> {
    let mut conditions = vec![equals("repository", &t.repository)?];
    if !is_github_repository(&t.repository) {
        return Err(violation("repository must be `owner/name`"));
    }
    if let Some(id) = &t.repository_owner_id {
        if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(violation("repository_owner_id is the owner's numeric id"));
        }
        conditions.push(equals("repository_owner_id", id)?);
    }
    if let Some(r) = &t.git_ref {
        conditions.push(exact_or_glob("ref", r)?);
    }
    if let Some(env) = &t.environment {
        conditions.push(equals("environment", env)?);
    }
    if let Some(w) = &t.job_workflow_ref {
        conditions.push(exact_or_glob("job_workflow_ref", w)?);
    }
    finish(
        GITHUB_ACTIONS_ISSUER,
        conditions,
        600,
        &["repository", "ref", "sha", "workflow", "run_id", "actor"],
    )
}

/// A GitLab CI trust. GitLab's `ref` is a bare branch or tag name (`main`, not
/// `refs/heads/main`); a glob when it contains `*` or `?`.
#[derive(Debug, Clone, Default)]
pub struct GitlabCi {
    /// The GitLab instance; [`GITLAB_COM_ISSUER`] when `None`.
    pub issuer: Option<String>,
    /// `group/project` or `group/subgroup/project`.
    pub project_path: String,
    pub git_ref: Option<String>,
    /// Whether the ref must be protected. GitLab sends `ref_protected` as the *string*
    /// `"true"` or `"false"`, so the condition compares with that string.
    pub ref_protected: Option<bool>,
}

/// A trust for GitLab CI ID tokens: discovery on the instance, a one-hour maximum age (GitLab
/// mints the token when the job starts, and a job may exchange it later), and `project_path`,
/// `ref`, `pipeline_id`, `namespace_path` copied under `federated`.
pub fn gitlab_ci(t: &GitlabCi) -> Result<TrustPolicy, PolicyViolation> {
    let issuer = t.issuer.as_deref().unwrap_or(GITLAB_COM_ISSUER);
    if !is_issuer_url(issuer) {
        return Err(violation("issuer must be the GitLab instance's https URL"));
    }
    let segments: Vec<&str> = t.project_path.split('/').collect();
    if segments.len() < 2 || !segments.iter().all(|s| is_path_name(s)) {
        return Err(violation("project_path must be `group/project`"));
    }
    let mut conditions = vec![equals("project_path", &t.project_path)?];
    if let Some(r) = &t.git_ref {
        conditions.push(exact_or_glob("ref", r)?);
    }
    if let Some(p) = t.ref_protected {
        conditions.push(equals("ref_protected", if p { "true" } else { "false" })?);
    }
    finish(
        issuer,
        conditions,
        3600,
        &["project_path", "ref", "pipeline_id", "namespace_path"],
    )
}

/// A trust for a Kubernetes service account's projected token: `sub` must be
/// `system:serviceaccount:NAMESPACE:NAME`; the namespace, service account and pod names
/// (under the `kubernetes.io` claim, whose name contains a dot) are copied under
/// `federated`. Keys come from discovery; for a cluster whose issuer Warrant cannot reach, set
/// [`TrustKeys::Static`] with the cluster's JWKS (`kubectl get --raw /openid/v1/jwks`).
/// Maximum age one hour: the kubelet refreshes a token once 80% of its lifetime has passed,
/// so a token with a longer `expirationSeconds` needs a larger age.
pub fn kubernetes(
    issuer: &str,
    namespace: &str,
    service_account: &str,
) -> Result<TrustPolicy, PolicyViolation> {
    if !is_issuer_url(issuer) {
        return Err(violation(
            "issuer must be the cluster's https service-account issuer",
        ));
    }
    if !is_dns_label(namespace) {
        return Err(violation("namespace must be a DNS label (RFC 1123)"));
    }
    if service_account.len() > 253 || !service_account.split('.').all(is_dns_label) {
        return Err(violation(
            "service account name must be a DNS subdomain (RFC 1123)",
        ));
    }
    let conditions = vec![equals(
        "sub",
        &format!("system:serviceaccount:{namespace}:{service_account}"),
    )?];
    let mut policy = finish(issuer, conditions, 3600, &[])?;
    let k8s = |rest: &[&str]| {
        let mut segments = vec!["kubernetes.io".to_owned()];
        segments.extend(rest.iter().map(|s| (*s).to_owned()));
        ClaimPath::from_segments(segments)
    };
    policy.copy_claims = vec![
        k8s(&["namespace"])?,
        k8s(&["serviceaccount", "name"])?,
        k8s(&["pod", "name"])?,
    ];
    Ok(policy)
}

fn finish(
    issuer: &str,
    conditions: Vec<Condition>,
    max_age_seconds: u64,
    copy: &[&str],
) -> Result<TrustPolicy, PolicyViolation> {
    conditions.iter().try_for_each(Condition::validate)?;
    Ok(TrustPolicy {
        issuer: issuer.to_owned(),
        jwks: TrustKeys::Discovery,
        audience: String::new(),
        conditions,
        max_age_seconds,
        single_use: false,
        account: String::new(),
        copy_claims: copy
            .iter()
            .map(|c| ClaimPath::parse(c))
            .collect::<Result<_, _>>()?,
        max_lifetime_seconds: None,
    })
}

fn equals(claim: &str, value: &str) -> Result<Condition, PolicyViolation> {
    if value.is_empty() {
        return Err(violation(&format!("{claim} must not be empty")));
    }
    Condition::new(claim, Check::Equals(Value::from(value)))
}

fn exact_or_glob(claim: &str, value: &str) -> Result<Condition, PolicyViolation> {
    if value.contains(['*', '?']) {
        Condition::new(claim, Check::Glob(value.to_owned()))
    } else {
        equals(claim, value)
    }
}

fn violation(s: &str) -> PolicyViolation {
    PolicyViolation(s.to_owned())
}

fn is_github_repository(s: &str) -> bool {
    let Some((owner, name)) = s.split_once('/') else {
        return false;
    };
    (1..=39).contains(&owner.len())
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && (1..=100).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A GitLab group or project path segment.
fn is_path_name(s: &str) -> bool {
    (1..=255).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// An RFC 1123 label: 1 to 63 lowercase letters, digits or `-`, starting and ending with a
/// letter or digit.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(|c| *c != b'-')
        && b.last().is_some_and(|c| *c != b'-')
}
