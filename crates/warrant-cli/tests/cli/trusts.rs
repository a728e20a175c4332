//! `warrant trust …` against a real `warrant serve`: create a GitHub Actions trust with a
//! static JWKS, list and show it, `trust test` a matching and a non-matching token (exit 0 and
//! 1, the failing condition named), delete it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use warrant_jose::{Algorithm, JwkSet, SigningKey};

use super::{Server, TRUST_AUDIENCE, create_sa, describe, stdout, trust_create};

const GITHUB: &str = "https://token.actions.githubusercontent.com";

fn now_secs() -> i64 {
    warrant_core::Clock::now(&warrant_core::SystemClock).secs()
}

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
    let shown = server.admin_json(&["trust", "show", "github", "--tenant", "default"]);
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
    let o = server.admin_status(&["trust", "test", &good, "--tenant", "default"]);
    assert!(o.status.success(), "{}", describe(&o));
    assert!(stdout(&o).contains("MATCH     github"), "{}", describe(&o));

    // A fork: NO MATCH, exit 1, the failing condition named.
    let fork = github_token(&key, "fork/api");
    let o = server.admin_status(&["trust", "test", &fork, "--tenant", "default"]);
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
