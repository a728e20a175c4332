//! `warrant trust …` against a real `warrant serve`: create a GitHub Actions trust with a
//! static JWKS, list and show it, `trust test` a matching and a non-matching token (exit 0 and
//! 1, the failing condition named), delete it; `trust update` a Kubernetes trust: its rotated
//! keys from a file, its conditions and other fields, and the refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use serde_json::{Value, json};
use warrant_jose::{Algorithm, JwkSet, SigningKey};

use super::{
    Server, TRUST_AUDIENCE, assert_exit_says, create_sa, describe, now_secs, stderr, stdout,
    trust_create,
};

const GITHUB: &str = "https://token.actions.githubusercontent.com";
const K8S_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

fn github_token(key: &SigningKey, repository: &str) -> String {
    let now = now_secs();
    let claims = json!({"iss": GITHUB, "aud": TRUST_AUDIENCE,
        "sub": format!("repo:{repository}:ref:refs/heads/main"),
        "repository": repository, "ref": "refs/heads/main", "sha": "abc123",
        "iat": now, "exp": now + 300});
    warrant_jose::sign_compact(key, "JWT", &serde_json::to_vec(&claims).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_verbs_and_trust_test() {
    let server = Server::start().await;
    let account = create_sa(|a| server.admin_json(a), "deployer");
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwks = server.data.path().join("github-jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_vec(&JwkSet {
            keys: vec![key.public_jwk().clone()],
        })
        .unwrap(),
    )
    .unwrap();

    let o = server.admin(&trust_create(
        "github",
        "deployer",
        &[
            "--github",
            "acme/api",
            "--ref",
            "refs/heads/main",
            "--jwks-file",
            jwks.to_str().unwrap(),
            "--max-lifetime",
            "15m",
        ],
    ));
    assert!(
        stdout(&o).contains("created trust github in tenant default"),
        "{}",
        describe(&o)
    );
    let shown = trust_show(&server, "github");
    assert_eq!(shown["account"], account["id"]);
    assert_eq!(shown["issuer"], GITHUB);
    assert_eq!(shown["max_lifetime_seconds"], 900);
    assert_eq!(
        shown["conditions"],
        json!([{"claim": "repository", "equals": "acme/api"},
               {"claim": "ref", "equals": "refs/heads/main"}])
    );
    let listed = server.admin_json(&["trust", "list", "--tenant", "default"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // A matching token: MATCH, exit 0.
    let good = github_token(&key, "acme/api");
    let o = run_trust_test(&server, &good);
    assert!(o.status.success(), "{}", describe(&o));
    assert!(stdout(&o).contains("MATCH     github"), "{}", describe(&o));

    // A fork: NO MATCH, exit 1, the failing condition named.
    let fork = github_token(&key, "fork/api");
    let o = run_trust_test(&server, &fork);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let text = stdout(&o);
    assert!(text.contains("NO MATCH  github"), "{}", describe(&o));
    assert!(
        text.contains("condition: repository") && text.contains("fork/api"),
        "{}",
        describe(&o)
    );
    assert!(
        !server.log().contains(&good) && !server.log().contains(&fork),
        "a tested token was logged"
    );

    // A trust without a template needs a condition; the server explains other refusals.
    let o = server.admin_status(&trust_create(
        "bare",
        "deployer",
        &["--issuer", "https://issuer.example"],
    ));
    assert!(!o.status.success(), "{}", describe(&o));

    let o = server.admin(&["trust", "delete", "github", "--tenant", "default"]);
    assert!(
        stdout(&o).contains("deleted trust github"),
        "{}",
        describe(&o)
    );
    let listed = server.admin_json(&["trust", "list", "--tenant", "default"]);
    assert_eq!(listed, json!([]));
}

/// A projected service-account token of `ci/{service_account}`, signed by `key`.
fn k8s_token(key: &SigningKey, service_account: &str) -> String {
    let now = now_secs();
    let claims = json!({"iss": K8S_ISSUER, "aud": [TRUST_AUDIENCE],
        "sub": format!("system:serviceaccount:ci:{service_account}"),
        "kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": service_account}},
        "iat": now - 5, "exp": now + 600, "jti": format!("{service_account}-{now}")});
    warrant_jose::sign_compact(key, "JWT", &serde_json::to_vec(&claims).unwrap()).unwrap()
}

/// Writes the public JWK Set of `keys` to `path`.
fn write_jwks(path: &std::path::Path, keys: &[&SigningKey]) {
    let set = JwkSet {
        keys: keys.iter().map(|k| k.public_jwk().clone()).collect(),
    };
    std::fs::write(path, serde_json::to_vec(&set).unwrap()).unwrap();
}

/// `warrant trust test TOKEN --tenant default`, whatever its exit code.
fn run_trust_test(server: &Server, token: &str) -> Output {
    server.admin_status(&["trust", "test", token, "--tenant", "default"])
}

/// [`run_trust_test`]: the exit code and what it printed.
fn trust_test(server: &Server, token: &str) -> (Option<i32>, String) {
    let o = run_trust_test(server, token);
    (o.status.code(), describe(&o))
}

/// `warrant trust update TRUST --tenant default`, then `rest`.
fn trust_update<'a>(trust: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["trust", "update", trust, "--tenant", "default"];
    args.extend_from_slice(rest);
    args
}

/// `warrant trust show TRUST --tenant default` as JSON.
fn trust_show(server: &Server, trust: &str) -> Value {
    server.admin_json(&["trust", "show", trust, "--tenant", "default"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_update_rotates_keys_and_replaces_conditions() {
    let server = Server::start().await;
    create_sa(|a| server.admin_json(a), "deployer");
    let (old_key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let (new_key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let old_jwks = server.data.path().join("cluster-jwks.json");
    let new_jwks = server.data.path().join("cluster-jwks-rotated.json");
    write_jwks(&old_jwks, &[&old_key]);
    write_jwks(&new_jwks, &[&new_key]);

    let created = server.admin_json(&trust_create(
        "ci-runner",
        "deployer",
        &[
            "--kubernetes",
            "ci/runner",
            "--issuer",
            K8S_ISSUER,
            "--jwks-file",
            old_jwks.to_str().unwrap(),
        ],
    ));
    let id = created["id"].as_str().unwrap().to_owned();
    let (code, out) = trust_test(&server, &k8s_token(&old_key, "runner"));
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = trust_test(&server, &k8s_token(&new_key, "runner"));
    assert_eq!(code, Some(1), "{out}");

    // The cluster rotated its signing key: the new JWKS from a file, by name, text output.
    let o = server.admin(&trust_update(
        "ci-runner",
        &["--jwks-file", new_jwks.to_str().unwrap()],
    ));
    let text = stdout(&o);
    assert!(
        text.contains("static JWKS") && text.contains("revision") && text.contains(&id),
        "{}",
        describe(&o)
    );
    let shown = trust_show(&server, "ci-runner");
    assert_eq!(shown["revision"], 2);
    assert_eq!(
        shown["jwks"],
        json!({"static": {"keys": [new_key.public_jwk()]}})
    );
    // Everything else is as it was.
    for k in [
        "issuer",
        "audience",
        "account",
        "conditions",
        "max_age_seconds",
    ] {
        assert_eq!(shown[k], created[k], "{k}");
    }
    let (code, out) = trust_test(&server, &k8s_token(&new_key, "runner"));
    assert_eq!(code, Some(0), "the new key must match: {out}");
    assert!(out.contains("MATCH     ci-runner"), "{out}");
    let (code, out) = trust_test(&server, &k8s_token(&old_key, "runner"));
    assert_eq!(code, Some(1), "the old key must no longer match: {out}");
    assert!(
        out.contains("NO MATCH  ci-runner") && out.contains("signature"),
        "{out}"
    );

    // Conditions replace the whole list (the template's included); other fields alongside.
    let updated = server.admin_json(&trust_update(
        &id,
        &[
            "--condition",
            "sub in system:serviceaccount:ci:runner,system:serviceaccount:ci:builder",
            "--condition",
            "iss~https://kubernetes.*",
            "--max-age",
            "10m",
            "--single-use",
            "true",
            "--copy-claim",
            "team",
            "--max-lifetime",
            "15m",
        ],
    ));
    assert_eq!(
        updated["conditions"],
        json!([
            {"claim": "sub", "one_of": ["system:serviceaccount:ci:runner",
                                        "system:serviceaccount:ci:builder"]},
            {"claim": "iss", "glob": "https://kubernetes.*"},
        ])
    );
    assert_eq!(updated["max_age_seconds"], 600);
    assert_eq!(updated["single_use"], true);
    assert_eq!(updated["copy_claims"], json!(["team"]));
    assert_eq!(updated["max_lifetime_seconds"], 900);
    assert_eq!(updated["jwks"], shown["jwks"]);
    assert_eq!(updated["revision"], 3);
    let (code, out) = trust_test(&server, &k8s_token(&new_key, "builder"));
    assert_eq!(code, Some(0), "builder now matches: {out}");
    let (code, out) = trust_test(&server, &k8s_token(&new_key, "other"));
    assert_eq!(code, Some(1), "{out}");

    // Clearing: `--max-lifetime none`, an empty --copy-claim, `--single-use false`.
    let updated = server.admin_json(&trust_update(
        "ci-runner",
        &[
            "--max-lifetime",
            "none",
            "--copy-claim",
            "",
            "--single-use",
            "false",
        ],
    ));
    assert!(updated.get("max_lifetime_seconds").is_none(), "{updated}");
    assert_eq!(updated["copy_claims"], json!([]));
    assert_eq!(updated["single_use"], false);

    // Switching the key source: a JWKS URL, back to a file, then discovery.
    let uri = "https://127.0.0.1:9/jwks";
    let updated = server.admin_json(&trust_update("ci-runner", &["--jwks-uri", uri]));
    assert_eq!(updated["jwks"], json!({"jwks_uri": uri}));
    let updated = server.admin_json(&trust_update(
        "ci-runner",
        &["--jwks-file", old_jwks.to_str().unwrap()],
    ));
    assert_eq!(
        updated["jwks"],
        json!({"static": {"keys": [old_key.public_jwk()]}})
    );
    let updated = server.admin_json(&trust_update("ci-runner", &["--discovery"]));
    assert_eq!(updated["jwks"], "discovery");
    // The server lets the issuer change too.
    let updated = server.admin_json(&trust_update(
        "ci-runner",
        &["--issuer", "https://oidc.example/cluster"],
    ));
    assert_eq!(updated["issuer"], "https://oidc.example/cluster");
    assert_eq!(updated["jwks"], "discovery");
    let revision = updated["revision"].clone();

    // Refusals: an unknown trust, an invalid condition, a non-https jwks_uri (the server's 422),
    // no change at all, two key sources, an unreadable file. None changes the trust.
    let update = |rest: &[&str]| server.admin_status(&trust_update("ci-runner", rest));
    let o = server.admin_status(&trust_update("nope", &["--audience", "https://x.example"]));
    assert_exit_says(&o, 1, "no such trust");
    assert!(stderr(&o).contains("Not Found"), "{}", describe(&o));
    let o = update(&["--condition", "nothing"]);
    assert_exit_says(&o, 1, "condition \"nothing\"");
    let o = update(&["--condition", "ref~**"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let o = update(&["--jwks-uri", "http://keys.example/jwks"]);
    assert_exit_says(&o, 1, "jwks_uri must be an https URL");
    assert!(
        stderr(&o).contains("Unprocessable Entity"),
        "{}",
        describe(&o)
    );
    let o = update(&[]);
    assert_exit_says(&o, 1, "nothing to update: give at least one of --account");
    let o = update(&["--discovery", "--jwks-uri", uri]);
    assert_exit_says(&o, 2, "cannot be used with");
    let o = update(&["--jwks-file", "/nonexistent/jwks.json"]);
    assert_exit_says(&o, 1, "cannot read /nonexistent/jwks.json");
    let o = update(&["--max-lifetime", "soon"]);
    assert_exit_says(&o, 2, "is not a duration");
    let shown = trust_show(&server, "ci-runner");
    assert_eq!(shown["revision"], revision);
}

/// The GitHub and GitLab template flags through the CLI, as the recipes use them: each becomes
/// the condition it names (`ref_protected` is the *string* "true", a `*` makes a glob), and a
/// self-managed GitLab's issuer is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_flags_become_their_conditions() {
    let server = Server::start().await;
    create_sa(|a| server.admin_json(a), "deployer");
    let o = server.admin(&trust_create(
        "gh",
        "deployer",
        &[
            "--github",
            "acme/api",
            "--repository-owner-id",
            "1234567",
            "--ref",
            "refs/heads/main",
            "--environment",
            "production",
            "--job-workflow-ref",
            "acme/workflows/.github/workflows/deploy.yml@refs/tags/v*",
        ],
    ));
    assert!(o.status.success(), "{}", describe(&o));
    let shown = trust_show(&server, "gh");
    assert_eq!(shown["issuer"], GITHUB);
    assert_eq!(shown["jwks"], "discovery");
    let conditions = shown["conditions"].as_array().unwrap();
    for expected in [
        json!({"claim": "repository", "equals": "acme/api"}),
        json!({"claim": "repository_owner_id", "equals": "1234567"}),
        json!({"claim": "ref", "equals": "refs/heads/main"}),
        json!({"claim": "environment", "equals": "production"}),
        json!({"claim": "job_workflow_ref",
               "glob": "acme/workflows/.github/workflows/deploy.yml@refs/tags/v*"}),
    ] {
        assert!(conditions.contains(&expected), "{expected} in {shown}");
    }

    let o = server.admin(&trust_create(
        "gl",
        "deployer",
        &[
            "--gitlab",
            "acme/api",
            "--gitlab-issuer",
            "https://gitlab.acme.example",
            "--ref",
            "main",
            "--ref-protected",
            "true",
        ],
    ));
    assert!(o.status.success(), "{}", describe(&o));
    let shown = trust_show(&server, "gl");
    assert_eq!(shown["issuer"], "https://gitlab.acme.example");
    let conditions = shown["conditions"].as_array().unwrap();
    for expected in [
        json!({"claim": "project_path", "equals": "acme/api"}),
        json!({"claim": "ref", "equals": "main"}),
        json!({"claim": "ref_protected", "equals": "true"}),
    ] {
        assert!(conditions.contains(&expected), "{expected} in {shown}");
    }
}
