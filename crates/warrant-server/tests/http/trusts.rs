//! Federation trusts (`/admin/v1/tenants/{t}/trusts`): creation from each template's shape,
//! validation, conflicts, paging, ETag/If-Match, merge patches, deletion, the account they map
//! to, and `…/trusts/test` against a static JWKS (signature, conditions, `alg: none`). The
//! `jwks_uri` and discovery sources are tested in `outbound` (they need a TLS server).

use http::{Method, StatusCode};
use serde_json::{Value, json};
use warrant_jose::{Algorithm, JwkSet, SigningKey};

use crate::harness::{Env, T0, problem};

const TRUSTS: &str = "/admin/v1/tenants/default/trusts";
pub(crate) const GITHUB: &str = "https://token.actions.githubusercontent.com";
pub(crate) const AUD: &str = "https://warrant.example";

/// A trust's `jwks` holding `key`'s public half.
pub(crate) fn static_jwks(key: &SigningKey) -> Value {
    let set = JwkSet {
        keys: vec![key.public_jwk().clone()],
    };
    json!({"static": serde_json::to_value(set).unwrap()})
}

/// A GitHub Actions-shaped trust (what `warrant trust create --github` sends).
pub(crate) fn github_trust(name: &str, jwks: Value) -> Value {
    json!({
        "name": name, "issuer": GITHUB, "jwks": jwks, "audience": AUD,
        "conditions": [{"claim": "repository", "equals": "acme/api"},
                       {"claim": "ref", "equals": "refs/heads/main"}],
        "max_age_seconds": 600, "account": "deployer",
        "copy_claims": ["repository", "ref", "sha"], "max_lifetime_seconds": 900
    })
}

/// GitHub-shaped claims, issued now by `iss`.
pub(crate) fn github_claims(iss: &str, repository: &str) -> Value {
    json!({"iss": iss, "aud": AUD, "sub": format!("repo:{repository}:ref:refs/heads/main"),
           "repository": repository, "ref": "refs/heads/main", "sha": "abc123",
           "iat": T0, "nbf": T0, "exp": T0 + 300, "jti": "j1"})
}

pub(crate) fn sign(key: &SigningKey, claims: &Value) -> String {
    warrant_jose::sign_compact(key, "JWT", &serde_json::to_vec(claims).unwrap()).unwrap()
}

async fn create(env: &Env, body: Value) -> crate::harness::Resp {
    env.admin(Method::POST, TRUSTS, Some(body)).await
}

#[tokio::test]
async fn create_each_template_shape_show_and_audit() {
    let env = Env::new().await;
    let account = env.plain_account("deployer").await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let r = create(&env, github_trust("github", static_jwks(&key))).await;
    r.assert_status(StatusCode::CREATED);
    let t = r.json();
    let id = t["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("trust_"), "{id}");
    assert_eq!(r.header("location").unwrap(), format!("{TRUSTS}/{id}"));
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(
        t["account"],
        account.as_str(),
        "the account is stored by id"
    );
    assert_eq!(t["issuer"], GITHUB);
    assert_eq!(
        t["conditions"][0],
        json!({"claim": "repository", "equals": "acme/api"})
    );
    for path in [format!("{TRUSTS}/{id}"), format!("{TRUSTS}/github")] {
        let r = env.admin(Method::GET, &path, None).await;
        r.assert_status(StatusCode::OK);
        assert_eq!(r.json(), t);
    }
    // GitLab CI: discovery, a protected-ref condition on the *string* "true".
    create(
        &env,
        json!({"name": "gitlab", "issuer": "https://gitlab.com", "jwks": "discovery",
               "audience": AUD, "max_age_seconds": 3600, "account": account,
               "conditions": [{"claim": "project_path", "equals": "acme/api"},
                              {"claim": "ref_protected", "equals": "true"}]}),
    )
    .await
    .assert_status(StatusCode::CREATED);
    // Kubernetes: a jwks_uri, a nested claim under a dotted name, one_of, a glob.
    let r = create(
        &env,
        json!({"name": "k8s", "issuer": "https://k8s.example", "audience": AUD,
               "jwks": {"jwks_uri": "https://k8s.example/openid/v1/jwks"},
               "max_age_seconds": 3600, "account": "deployer", "single_use": true,
               "conditions": [{"claim": "sub", "glob": "system:serviceaccount:ci:*"},
                              {"claim": ["kubernetes.io", "namespace"], "one_of": ["ci"]}],
               "copy_claims": [["kubernetes.io", "pod", "name"]]}),
    )
    .await;
    r.assert_status(StatusCode::CREATED);
    assert_eq!(r.json()["single_use"], true);
    let r = env
        .admin(
            Method::GET,
            "/admin/v1/tenants/default/audit?action=trust.create",
            None,
        )
        .await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn invalid_trusts_are_refused() {
    let env = Env::new().await;
    env.plain_account("deployer").await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let base = github_trust("github", static_jwks(&key));
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (body, want) in [
        (with("conditions", json!([])), "at least one condition"),
        (with("issuer", json!("http://issuer.example")), "issuer"),
        (with("max_age_seconds", json!(0)), "max_age_seconds"),
        (with("single_us", json!(true)), "single_us"),
        (with("name", json!("Bad_Name")), "trust name"),
        (
            with("conditions", json!([{"claim": "ref", "glob": "**"}])),
            "glob",
        ),
        (with("copy_claims", json!(["exp"])), "shadow"),
    ] {
        let d = problem(&create(&env, body).await, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(d.contains(want), "{want}: {d}");
    }
    let d = problem(
        &create(&env, with("account", json!("nobody"))).await,
        StatusCode::CONFLICT,
    );
    assert!(d.contains("nobody"), "{d}");
    create(&env, base.clone())
        .await
        .assert_status(StatusCode::CREATED);
    let d = problem(&create(&env, base).await, StatusCode::CONFLICT);
    assert!(d.contains("github"), "{d}");
}

#[tokio::test]
async fn list_patch_if_match_and_delete() {
    let env = Env::new().await;
    env.plain_account("deployer").await;
    let other = env.plain_account("other").await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    for n in ["a", "b", "c"] {
        create(&env, github_trust(n, static_jwks(&key)))
            .await
            .assert_status(StatusCode::CREATED);
    }
    let page = env
        .admin(Method::GET, &format!("{TRUSTS}?limit=2"), None)
        .await
        .json();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = env
        .admin(
            Method::GET,
            &format!("{TRUSTS}?limit=2&cursor={cursor}"),
            None,
        )
        .await
        .json();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());

    let path = format!("{TRUSTS}/a");
    let r = env
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"account": "other", "max_lifetime_seconds": null,
                        "conditions": [{"claim": "repository", "equals": "acme/web"}]})),
        )
        .await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.header("etag"), Some("\"2\""));
    let t = r.json();
    assert_eq!(t["account"], other.as_str());
    assert!(t.get("max_lifetime_seconds").is_none(), "{t}");
    assert_eq!(t["conditions"].as_array().unwrap().len(), 1);
    // The name cannot change; a patch that breaks the policy is refused.
    problem(
        &env.admin(Method::PATCH, &path, Some(json!({"name": "z"})))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    problem(
        &env.admin(Method::PATCH, &path, Some(json!({"conditions": []})))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    // A stale If-Match.
    let stale = env
        .admin_if_match(
            Method::PATCH,
            &path,
            Some("\"1\""),
            Some(json!({"audience": "x:y"})),
        )
        .await;
    problem(&stale, StatusCode::PRECONDITION_FAILED);
    let stale = env
        .admin_if_match(Method::DELETE, &path, Some("\"1\""), None)
        .await;
    problem(&stale, StatusCode::PRECONDITION_FAILED);
    env.admin_if_match(Method::DELETE, &path, Some("\"2\""), None)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    problem(
        &env.admin(Method::GET, &path, None).await,
        StatusCode::NOT_FOUND,
    );
    // Its name is free again.
    create(&env, github_trust("a", static_jwks(&key)))
        .await
        .assert_status(StatusCode::CREATED);
}

#[tokio::test]
async fn an_account_that_trusts_map_to_cannot_be_deleted() {
    let env = Env::new().await;
    env.plain_account("deployer").await;
    env.plain_account("next").await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    create(&env, github_trust("github", static_jwks(&key)))
        .await
        .assert_status(StatusCode::CREATED);
    let account = "/admin/v1/tenants/default/service-accounts/deployer";
    let d = problem(
        &env.admin(Method::DELETE, account, None).await,
        StatusCode::CONFLICT,
    );
    assert!(d.contains("github"), "{d}");
    env.admin(
        Method::PATCH,
        &format!("{TRUSTS}/github"),
        Some(json!({"account": "next"})),
    )
    .await
    .assert_status(StatusCode::OK);
    env.admin(Method::DELETE, account, None)
        .await
        .assert_status(StatusCode::NO_CONTENT);
}

async fn test_token(env: &Env, token: &str) -> Value {
    let r = env
        .admin(
            Method::POST,
            &format!("{TRUSTS}/test"),
            Some(json!({"token": token})),
        )
        .await;
    r.assert_status(StatusCode::OK);
    r.json()
}

/// The verdict of the trust named `name`.
pub(crate) fn verdict<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no verdict for {name}: {report}"))
}

#[tokio::test]
async fn trust_test_with_a_static_jwks() {
    let env = Env::new().await;
    env.plain_account("deployer").await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let (stranger, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    create(&env, github_trust("github", static_jwks(&key)))
        .await
        .assert_status(StatusCode::CREATED);
    create(
        &env,
        json!({"name": "gitlab", "issuer": "https://gitlab.com", "jwks": "discovery",
               "audience": AUD, "max_age_seconds": 3600, "account": "deployer",
               "conditions": [{"claim": "project_path", "equals": "acme/api"}]}),
    )
    .await
    .assert_status(StatusCode::CREATED);

    // A matching token: `federated` carries the copied claims.
    let report = test_token(&env, &sign(&key, &github_claims(GITHUB, "acme/api"))).await;
    let v = verdict(&report, "github");
    assert_eq!(v["matched"], true, "{report}");
    assert_eq!(v["failures"], json!([]));
    assert_eq!(v["federated"]["copied"]["repository"], "acme/api");
    assert!(v["trust"].as_str().unwrap().starts_with("trust_"));
    assert!(
        report["signature"].as_str().unwrap().contains("ES256"),
        "{report}"
    );
    // The trust of another issuer only says so.
    let g = verdict(&report, "gitlab");
    assert_eq!(g["matched"], false);
    assert_eq!(g["failures"][0]["class"], "issuer");

    // A fork: the condition on `repository` fails, and the detail names it.
    let report = test_token(&env, &sign(&key, &github_claims(GITHUB, "fork/api"))).await;
    let v = verdict(&report, "github");
    assert_eq!(v["matched"], false);
    assert_eq!(v["federated"], Value::Null);
    let f = &v["failures"][0];
    assert_eq!(f["class"], "condition");
    let detail = f["detail"].as_str().unwrap();
    assert!(
        detail.contains("repository") && detail.contains("fork/api"),
        "{detail}"
    );

    // Signed by another key: a signature failure, and the claims are not evaluated.
    let report = test_token(&env, &sign(&stranger, &github_claims(GITHUB, "acme/api"))).await;
    let v = verdict(&report, "github");
    assert_eq!(v["matched"], false);
    assert_eq!(v["failures"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["failures"][0]["class"], "signature");

    // `alg: none`.
    let b64 = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&github_claims(GITHUB, "acme/api"))
    );
    let report = test_token(&env, &none).await;
    let v = verdict(&report, "github");
    assert_eq!(v["matched"], false);
    assert_eq!(v["failures"][0]["class"], "signature");

    // Not a JWS at all.
    let r = env
        .admin(
            Method::POST,
            &format!("{TRUSTS}/test"),
            Some(json!({"token": "nope"})),
        )
        .await;
    problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_openapi_document_describes_trusts() {
    let env = Env::new().await;
    let doc = env.get("/admin/v1/openapi.json").await.json();
    let paths = doc["paths"].as_object().unwrap();
    let coll = &paths["/admin/v1/tenants/{tenant}/trusts"];
    assert_eq!(coll["get"]["operationId"], "listTrusts");
    assert_eq!(coll["post"]["operationId"], "createTrust");
    let one = &paths["/admin/v1/tenants/{tenant}/trusts/{trust}"];
    for (m, id) in [
        ("get", "getTrust"),
        ("patch", "updateTrust"),
        ("delete", "deleteTrust"),
    ] {
        assert_eq!(one[m]["operationId"], id);
    }
    assert_eq!(
        paths["/admin/v1/tenants/{tenant}/trusts/test"]["post"]["operationId"],
        "testTrusts"
    );
}
