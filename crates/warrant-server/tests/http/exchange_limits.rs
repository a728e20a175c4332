//! The edges of token exchange found in review: how deep a delegation chain may grow, whose
//! custom claims a delegated token carries, watermarks and disabled subjects, sender-constrained
//! originals, an authenticated client among several trusts of one issuer, and an issuer whose
//! keys cannot be had (503, not "forged").

use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use warrant_jose::{Algorithm, SigningKey};

use crate::harness::independent as verify;
use crate::harness::{Env, PUBLIC_URL, Resp, T0, basic_header, form_encode};
use crate::trusts::{GITHUB, github_claims, github_trust, sign, static_jwks};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const LOOP: &str = "https://loop.internal";
const DEPLOY: &str = "https://deploy.internal";

fn delegate_form(token: &str, extra: &str) -> String {
    format!(
        "grant_type={}&subject_token={}&subject_token_type={}{extra}",
        form_encode(EXCHANGE),
        form_encode(token),
        form_encode(ACCESS)
    )
}

/// `user` (granted `loop:read` on LOOP, custom claim `roles: ["reader"]`) and `loop-svc`, which
/// owns the API LOOP and is granted on it too — so it can delegate to itself, hop after hop.
async fn looping() -> (Env, (String, String), (String, String)) {
    let env = Env::new().await;
    let user = env
        .create_account_json(
            "default",
            json!({"name": "user", "default_audience": LOOP,
                   "grants": [{"audience": LOOP, "scopes": ["loop:read"]}],
                   "claims": {"roles": ["reader"]}}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let user_secret = env.add_secret("default", &user, "s").await;
    let svc = env
        .account("default", "loop-svc", LOOP, &["loop:read"])
        .await;
    env.admin(
        Method::POST,
        "/admin/v1/tenants/default/apis",
        Some(json!({"name": "loop", "audience": LOOP, "scopes": ["loop:read"], "owner": svc.0})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    (env, (user, user_secret), svc)
}

fn claims(env_jwks: &Value, token: &str) -> Value {
    verify::ours(token, env_jwks)
}

#[tokio::test]
async fn a_delegation_chain_stops_at_the_limit() {
    let (env, user, svc) = looping().await;
    let jwks = env.jwks("default").await;
    let mut token = env.token_for("default", &user.0, &user.1).await;
    for hop in 1..=warrant_jose::MAX_ACT_DEPTH {
        let r = env
            .token_request(
                "default",
                Some((&svc.0, &svc.1)),
                &delegate_form(&token, ""),
            )
            .await;
        r.assert_status(StatusCode::OK);
        token = r.access_token();
        let c = claims(&jwks, &token);
        let (actors, too_deep) = warrant_jose::act_subjects(c.as_object().unwrap());
        assert_eq!((actors.len(), too_deep), (hop, false));
        assert!(env.is_active("default", (&svc.0, &svc.1), &token).await);
    }
    let r = env
        .token_request(
            "default",
            Some((&svc.0, &svc.1)),
            &delegate_form(&token, ""),
        )
        .await;
    r.assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn a_delegated_token_carries_the_originals_custom_claims_not_the_subjects_current_ones() {
    let (env, user, svc) = looping().await;
    let original = env.token_for("default", &user.0, &user.1).await;
    env.admin(
        Method::PATCH,
        &format!("/admin/v1/tenants/default/service-accounts/{}", user.0),
        Some(json!({"claims": {"roles": ["reader", "admin"]}})),
    )
    .await
    .assert_status(StatusCode::OK);
    let r = env
        .token_request(
            "default",
            Some((&svc.0, &svc.1)),
            &delegate_form(&original, ""),
        )
        .await;
    r.assert_status(StatusCode::OK);
    let c = claims(&env.jwks("default").await, &r.access_token());
    assert_eq!(c["roles"], json!(["reader"]));
    assert_eq!(c["sub"], user.0);
}

#[tokio::test]
async fn watermarks_and_disabled_subjects_stop_delegation() {
    let (env, user, svc) = looping().await;
    let caller = Some((svc.0.as_str(), svc.1.as_str()));
    // A watermark on the original's subject.
    let original = env.token_for("default", &user.0, &user.1).await;
    env.admin(
        Method::POST,
        "/admin/v1/tenants/default/revocations",
        Some(json!({"type": "subject", "sub": user.0})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let r = env
        .token_request("default", caller, &delegate_form(&original, ""))
        .await;
    r.assert_oauth_error(400, "invalid_request");
    assert_eq!(
        r.json()["error_description"],
        "the subject token has been revoked"
    );
    // A later token of a disabled subject.
    env.clock.advance_secs(2);
    let later = env.token_for("default", &user.0, &user.1).await;
    env.admin(
        Method::PATCH,
        &format!("/admin/v1/tenants/default/service-accounts/{}", user.0),
        Some(json!({"enabled": false})),
    )
    .await
    .assert_status(StatusCode::OK);
    env.token_request("default", caller, &delegate_form(&later, ""))
        .await
        .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn a_non_owner_learns_nothing_of_revocation() {
    let (env, user, _svc) = looping().await;
    let stranger = env
        .account("default", "stranger", LOOP, &["loop:read"])
        .await;
    let original = env.token_for("default", &user.0, &user.1).await;
    let ask = || async {
        env.token_request(
            "default",
            Some((&stranger.0, &stranger.1)),
            &delegate_form(&original, ""),
        )
        .await
        .json()["error_description"]
            .clone()
    };
    let before = ask().await;
    env.admin(
        Method::POST,
        "/admin/v1/tenants/default/revocations",
        Some(json!({"type": "subject", "sub": user.0})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    assert_eq!(ask().await, before);
}

fn dpop_proof(key: &SigningKey, jti: &str) -> String {
    let claims = json!({"jti": jti, "htm": "POST",
                        "htu": format!("{PUBLIC_URL}/t/default/token"), "iat": T0});
    warrant_jose::sign_with_embedded_jwk(key, "dpop+jwt", claims.to_string().as_bytes()).unwrap()
}

async fn post(env: &Env, basic: (&str, &str), form: String, dpop: Option<&str>) -> Resp {
    let mut req = Request::post("/t/default/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, basic_header(basic.0, basic.1));
    if let Some(p) = dpop {
        req = req.header("dpop", p);
    }
    env.send(req.body(Body::from(form)).unwrap()).await
}

#[tokio::test]
async fn a_sender_constrained_original_is_only_exchanged_for_a_bound_token() {
    let (env, user, svc) = looping().await;
    let (user_key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let bound = post(
        &env,
        (&user.0, &user.1),
        "grant_type=client_credentials".into(),
        Some(&dpop_proof(&user_key, "u1")),
    )
    .await;
    bound.assert_status(StatusCode::OK);
    assert_eq!(bound.json()["token_type"], "DPoP");
    let original = bound.access_token();
    // As a bearer token: refused.
    post(&env, (&svc.0, &svc.1), delegate_form(&original, ""), None)
        .await
        .assert_oauth_error(400, "invalid_request");
    // With the caller's own proof: bound to the caller's key.
    let (svc_key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let r = post(
        &env,
        (&svc.0, &svc.1),
        delegate_form(&original, ""),
        Some(&dpop_proof(&svc_key, "s1")),
    )
    .await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.json()["token_type"], "DPoP");
    let c = claims(&env.jwks("default").await, &r.access_token());
    assert_eq!(
        c["cnf"]["jkt"].as_str().unwrap(),
        svc_key.public_jwk().thumbprint().unwrap()
    );
}

/// Two accounts with a trust each for the same issuer and repository.
async fn two_trusts() -> (Env, SigningKey, (String, String), (String, String)) {
    let env = Env::new().await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let mut accounts = Vec::new();
    for name in ["deployer", "auditor"] {
        let a = env.account("default", name, DEPLOY, &["deploy:read"]).await;
        let mut trust = github_trust(name, static_jwks(&key));
        trust["account"] = json!(name);
        env.admin(
            Method::POST,
            "/admin/v1/tenants/default/trusts",
            Some(trust),
        )
        .await
        .assert_status(StatusCode::CREATED);
        accounts.push(a);
    }
    let auditor = accounts.pop().unwrap();
    let deployer = accounts.pop().unwrap();
    (env, key, deployer, auditor)
}

/// The `sub` of the token issued for `external` (with `basic`, if given); panics unless one
/// is issued.
async fn exchanged_sub(env: &Env, basic: Option<(&str, &str)>, external: &str) -> Value {
    let r = env
        .token_request("default", basic, &exchange_form(external))
        .await;
    r.assert_status(StatusCode::OK);
    claims(&env.jwks("default").await, &r.access_token())["sub"].clone()
}

fn exchange_form(token: &str) -> String {
    format!(
        "grant_type={}&subject_token={}&subject_token_type={}",
        form_encode(EXCHANGE),
        form_encode(token),
        form_encode(JWT)
    )
}

#[tokio::test]
async fn an_authenticated_client_is_matched_only_against_its_own_trusts() {
    let (env, key, deployer, auditor) = two_trusts().await;
    let external = sign(&key, &github_claims(GITHUB, "acme/api"));
    // Without a client, the first trust in id order decides (the ids were made in the same
    // millisecond here, so either).
    let sub = exchanged_sub(&env, None, &external).await;
    assert!(
        sub == deployer.0.as_str() || sub == auditor.0.as_str(),
        "{sub}"
    );
    // Each account that authenticates gets a token for itself, whichever trust comes first.
    for account in [&deployer, &auditor] {
        let sub = exchanged_sub(&env, Some((&account.0, &account.1)), &external).await;
        assert_eq!(sub, account.0.as_str());
    }
    // An account no trust maps to: refused, naming the class only.
    let other = env
        .account("default", "other", DEPLOY, &["deploy:read"])
        .await;
    let r = env
        .token_request(
            "default",
            Some((&other.0, &other.1)),
            &exchange_form(&external),
        )
        .await;
    r.assert_oauth_error(400, "invalid_request");
    // Said as for a token of an issuer no trust names, so that an account holder cannot tell
    // "trusted for someone else" from "not trusted" with unsigned tokens.
    let not_trusted = "the token's signature does not verify with the keys of a trusted issuer";
    assert_eq!(r.json()["error_description"], not_trusted);
    let unsigned = |iss: &str| {
        let h = warrant_jose::b64::encode(br#"{"alg":"none","typ":"JWT"}"#);
        let p =
            warrant_jose::b64::encode(serde_json::to_vec(&github_claims(iss, "acme/api")).unwrap());
        format!("{h}.{p}.")
    };
    for iss in [GITHUB, "https://never-trusted.example"] {
        let r = env
            .token_request(
                "default",
                Some((&other.0, &other.1)),
                &exchange_form(&unsigned(iss)),
            )
            .await;
        r.assert_oauth_error(400, "invalid_request");
        assert_eq!(r.json()["error_description"], not_trusted, "{iss}");
    }
}

#[tokio::test]
async fn an_issuer_whose_keys_cannot_be_had_is_a_503_not_a_forgery() {
    let env = Env::new().await;
    env.account("default", "deployer", DEPLOY, &["deploy:read"])
        .await;
    // This in-process server has no outbound fetcher: a jwks_uri trust can never get keys.
    let trust = github_trust("github", json!({"jwks_uri": "https://keys.example/jwks"}));
    env.admin(
        Method::POST,
        "/admin/v1/tenants/default/trusts",
        Some(trust),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let r = env
        .token_request(
            "default",
            None,
            &exchange_form(&sign(&key, &github_claims(GITHUB, "acme/api"))),
        )
        .await;
    r.assert_oauth_error(503, "temporarily_unavailable");
    assert!(!String::from_utf8_lossy(&r.body).contains("keys.example"));
    // With a static-JWKS trust beside it that rejects the signature, it is a forgery again.
    let (other, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let mut second = github_trust("static", static_jwks(&other));
    second["account"] = json!("deployer");
    env.admin(
        Method::POST,
        "/admin/v1/tenants/default/trusts",
        Some(second),
    )
    .await
    .assert_status(StatusCode::CREATED);
    env.token_request(
        "default",
        None,
        &exchange_form(&sign(&key, &github_claims(GITHUB, "acme/api"))),
    )
    .await
    .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn each_kind_of_refusal_keeps_its_condition_in_the_audit() {
    let (env, key, _, _) = two_trusts().await;
    let mut wrong_ref = github_claims(GITHUB, "acme/api");
    wrong_ref["ref"] = json!("refs/heads/main-evil");
    let mut too_old = github_claims(GITHUB, "acme/api");
    too_old["iat"] = json!(T0 - 3600);
    // A fork first, then a wrong ref twice, then a too-old token: one source, one minute.
    for claims in [
        github_claims(GITHUB, "acme-evil/api"),
        wrong_ref.clone(),
        wrong_ref,
        too_old,
    ] {
        env.token_request("default", None, &exchange_form(&sign(&key, &claims)))
            .await
            .assert_oauth_error(400, "invalid_request");
    }
    env.warrant.audit().checkpoint_now().await.unwrap();
    let refused = crate::audit_writer::records(&env, "default", "token.refuse", None).await;
    let aggregated =
        crate::audit_writer::records(&env, "default", "token.refuse.aggregated", None).await;
    let text = |records: &[warrant_core::audit::RecordBody]| {
        records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (refused, aggregated) = (text(&refused), text(&aggregated));
    // The first of each class is written at once, with its condition.
    assert!(refused.contains("invalid_request: condition"), "{refused}");
    assert!(refused.contains("acme-evil/api"), "{refused}");
    assert!(refused.contains("invalid_request: too_old"), "{refused}");
    // The repeats of the condition class: one aggregated record that still names the last one.
    assert!(aggregated.contains("main-evil"), "{aggregated}");
}

#[tokio::test]
async fn trust_and_api_changes_apply_to_the_next_exchange() {
    // Trusts are read from memory after the first exchange: a change must still apply at once.
    let (env, key, deployer, auditor) = two_trusts().await;
    let external = sign(&key, &github_claims(GITHUB, "acme/api"));
    env.token_request("default", None, &exchange_form(&external))
        .await
        .assert_status(StatusCode::OK);
    for name in ["deployer", "auditor"] {
        env.admin(
            Method::PATCH,
            &format!("/admin/v1/tenants/default/trusts/{name}"),
            Some(json!({"conditions": [{"claim": "repository", "equals": "acme/other"}]})),
        )
        .await
        .assert_status(StatusCode::OK);
    }
    env.token_request("default", None, &exchange_form(&external))
        .await
        .assert_oauth_error(400, "invalid_request");
    // Deleting one and restoring the other's condition: only that trust's account is issued.
    env.admin(
        Method::DELETE,
        "/admin/v1/tenants/default/trusts/deployer",
        None,
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    env.admin(
        Method::PATCH,
        "/admin/v1/tenants/default/trusts/auditor",
        Some(json!({"conditions": [{"claim": "repository", "equals": "acme/api"}]})),
    )
    .await
    .assert_status(StatusCode::OK);
    let sub = exchanged_sub(&env, None, &external).await;
    assert_eq!(sub, auditor.0.as_str());
    assert_ne!(sub, deployer.0.as_str());

    // APIs: a new owner may delegate at once, the old one no longer.
    let (env, user, svc) = looping().await;
    let original = env.token_for("default", &user.0, &user.1).await;
    env.token_request(
        "default",
        Some((&svc.0, &svc.1)),
        &delegate_form(&original, ""),
    )
    .await
    .assert_status(StatusCode::OK);
    let heir = env.account("default", "heir", LOOP, &["loop:read"]).await;
    env.admin(
        Method::PATCH,
        "/admin/v1/tenants/default/apis/loop",
        Some(json!({"owner": heir.0})),
    )
    .await
    .assert_status(StatusCode::OK);
    env.token_request(
        "default",
        Some((&svc.0, &svc.1)),
        &delegate_form(&original, ""),
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    env.token_request(
        "default",
        Some((&heir.0, &heir.1)),
        &delegate_form(&original, ""),
    )
    .await
    .assert_status(StatusCode::OK);
}
