//! RFC 8693 token exchange and the RFC 7523 jwt-bearer grant at `POST {issuer}/token`, in
//! process, with static-JWKS trusts (the discovery and `jwks_uri` sources, and the real binary
//! with GitHub/GitLab/Kubernetes-shaped issuers, are tested end to end in the CLI suite):
//! parameters, federation (claims, lifetime, errors that name only the class, audit with the
//! exact condition, single use, client authentication, tenants), jwt-bearer's audience, and
//! delegation (owner only, scope intersection, `exp` cap, `act` chains, revocation).

use http::{Method, StatusCode};
use serde_json::{Value, json};
use warrant_jose::{Algorithm, SigningKey};

use crate::harness::independent as Verify;
use crate::harness::{Env, PUBLIC_URL, T0, form_encode};
use crate::trusts::{GITHUB, github_claims, github_trust, sign, static_jwks};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const DEPLOY: &str = "https://deploy.internal";
const ORDERS: &str = "https://orders.internal";
const BILLING: &str = "https://billing.internal";

/// A tenant with an account `deployer` (granted `deploy:write deploy:read` on DEPLOY) and a
/// GitHub-shaped trust mapping `acme/api` on main to it; returns the env, the trust key and
/// the account id.
async fn federation() -> (Env, SigningKey, String) {
    let env = Env::new().await;
    let created = env
        .create_account_json(
            "default",
            json!({"name": "deployer", "default_audience": DEPLOY,
                   "grants": [{"audience": DEPLOY, "scopes": ["deploy:write", "deploy:read"]}]}),
        )
        .await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    env.admin(
        Method::POST,
        "/admin/v1/tenants/default/trusts",
        Some(github_trust("github", static_jwks(&key))),
    )
    .await
    .assert_status(StatusCode::CREATED);
    (env, key, created["id"].as_str().unwrap().to_owned())
}

/// What a refusal for a failing condition says.
const CONDITION: &str = "a condition on the token's claims does not hold";
/// What a refusal for a bad signature (or none, or no JWT at all) says.
const SIGNATURE: &str = "the token's signature does not verify with the keys of a trusted issuer";

/// A token exchange form for `token` of `subject_type`, then `extra` (`&name=value…`).
fn subject_form(token: &str, subject_type: &str, extra: &str) -> String {
    format!(
        "grant_type={}&subject_token={}&subject_token_type={}{extra}",
        form_encode(EXCHANGE),
        form_encode(token),
        form_encode(subject_type)
    )
}

fn exchange_form(token: &str, extra: &str) -> String {
    subject_form(token, JWT, extra)
}

/// `&audience=…`, encoded.
fn audience(aud: &str) -> String {
    format!("&audience={}", form_encode(aud))
}

/// `PATCH`es the `github` trust of `default` with `patch`.
async fn patch_trust(env: &Env, patch: Value) {
    env.admin(
        Method::PATCH,
        "/admin/v1/tenants/default/trusts/github",
        Some(patch),
    )
    .await
    .assert_status(StatusCode::OK);
}

/// The records of `default`'s audit log for `action`, as JSON text.
async fn audit_text(env: &Env, action: &str) -> String {
    env.admin(
        Method::GET,
        &format!("/admin/v1/tenants/default/audit?action={action}"),
        None,
    )
    .await
    .json()
    .to_string()
}

async fn exchange(env: &Env, token: &str, extra: &str) -> crate::harness::Resp {
    env.token_request("default", None, &exchange_form(token, extra))
        .await
}

fn claims_of(env_jwks: &Value, token: &str) -> Value {
    Verify::ours(token, env_jwks)
}

#[tokio::test]
async fn a_trusted_external_token_becomes_a_token_for_the_mapped_account() {
    let (env, key, account) = federation().await;
    let external = sign(&key, &github_claims(GITHUB, "acme/api"));
    let r = exchange(&env, &external, "&scope=deploy%3Aread").await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(body["issued_token_type"], ACCESS);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "deploy:read");
    // The trust caps the lifetime at 900 s; the account's default is 600 s.
    assert_eq!(body["expires_in"], 600);
    let token = body["access_token"].as_str().unwrap();
    let jwks = env.jwks("default").await;
    let claims = claims_of(&jwks, token);
    assert_eq!(claims["sub"], account);
    assert_eq!(claims["client_id"], account);
    assert_eq!(claims["aud"], DEPLOY);
    assert_eq!(
        claims["federated"],
        json!({"iss": GITHUB, "sub": "repo:acme/api:ref:refs/heads/main",
               "repository": "acme/api", "ref": "refs/heads/main", "sha": "abc123"})
    );
    // Independently verified too.
    let independent =
        Verify::jsonwebtoken(token, &jwks, &format!("{}/t/default", PUBLIC_URL), DEPLOY);
    assert_eq!(independent["federated"]["repository"], "acme/api");

    // The audit record names the trust and the external identity.
    let text = audit_text(&env, "token.issue").await;
    assert!(text.contains("\"trust\":\"github\""), "{text}");
    assert!(text.contains("repo:acme/api:ref:refs/heads/main"), "{text}");
}

#[tokio::test]
async fn the_lifetime_is_capped_by_the_trust() {
    let (env, key, _) = federation().await;
    patch_trust(&env, json!({"max_lifetime_seconds": 120})).await;
    let r = exchange(&env, &sign(&key, &github_claims(GITHUB, "acme/api")), "").await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.json()["expires_in"], 120);
    let claims = claims_of(&env.jwks("default").await, &r.access_token());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
}

#[tokio::test]
async fn refusals_name_the_class_and_the_audit_names_the_condition() {
    let (env, key, _) = federation().await;
    let (other_key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let good = github_claims(GITHUB, "acme/api");
    let mut wrong_ref = good.clone();
    wrong_ref["ref"] = json!("refs/heads/main-evil");
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("https://elsewhere.example");
    let mut too_old = good.clone();
    too_old["iat"] = json!(T0 - 3600);
    let mut expired = good.clone();
    expired["exp"] = json!(T0 - 10);
    let mut untrusted = good.clone();
    untrusted["iss"] = json!("https://gitlab.example");
    let none = {
        let h = warrant_jose::b64::encode(br#"{"alg":"none","typ":"JWT"}"#);
        let p = warrant_jose::b64::encode(serde_json::to_vec(&good).unwrap());
        format!("{h}.{p}.")
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "fork",
            sign(&key, &github_claims(GITHUB, "acme-evil/api")),
            CONDITION,
        ),
        ("ref", sign(&key, &wrong_ref), CONDITION),
        ("forged", sign(&other_key, &good), SIGNATURE),
        ("alg none", none, SIGNATURE),
        ("garbage", "not-a-jwt".into(), SIGNATURE),
        (
            "audience",
            sign(&key, &wrong_aud),
            "the token is not addressed to the audience the trust requires",
        ),
        (
            "too old",
            sign(&key, &too_old),
            "the token was issued too long ago",
        ),
        ("expired", sign(&key, &expired), "the token has expired"),
        ("issuer", sign(&key, &untrusted), SIGNATURE),
    ];
    for (what, token, description) in cases {
        let r = exchange(&env, &token, "").await;
        r.assert_oauth_error(400, "invalid_request");
        let body = r.json();
        assert_eq!(body["error_description"], description, "{what}");
        let text = String::from_utf8_lossy(&r.body);
        // Nothing of what the trust expects.
        for secret in [
            "acme/api",
            "refs/heads/main\"",
            "warrant.example",
            "deployer",
        ] {
            assert!(!text.contains(secret), "{what}: {text}");
        }
    }
    // The refusal's audit record names the exact condition (written in the background).
    let mut found = false;
    for _ in 0..50 {
        let audit = audit_text(&env, "token.refuse").await;
        if audit.contains("repository") && audit.contains("acme-evil/api") {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(found, "the audit names the failing condition");
}

#[tokio::test]
async fn single_use_trusts_refuse_a_replay() {
    let (env, key, _) = federation().await;
    patch_trust(&env, json!({"single_use": true})).await;
    let external = sign(&key, &github_claims(GITHUB, "acme/api"));
    exchange(&env, &external, "")
        .await
        .assert_status(StatusCode::OK);
    let r = exchange(&env, &external, "").await;
    r.assert_oauth_error(400, "invalid_request");
    assert_eq!(
        r.json()["error_description"],
        "the token has already been used"
    );
    // Without a jti a single-use trust refuses.
    let mut claims = github_claims(GITHUB, "acme/api");
    claims.as_object_mut().unwrap().remove("jti");
    let r = exchange(&env, &sign(&key, &claims), "").await;
    r.assert_oauth_error(400, "invalid_request");
    // A token refused for its target does not burn its jti.
    let mut claims = github_claims(GITHUB, "acme/api");
    claims["jti"] = json!("j2");
    let fresh = sign(&key, &claims);
    exchange(&env, &fresh, "&audience=https%3A%2F%2Fnot-granted.example")
        .await
        .assert_oauth_error(400, "invalid_target");
    exchange(&env, &fresh, "")
        .await
        .assert_status(StatusCode::OK);
}

#[tokio::test]
async fn escalation_through_federation_is_refused() {
    let (env, key, _) = federation().await;
    let external = sign(&key, &github_claims(GITHUB, "acme/api"));
    exchange(&env, &external, "&scope=deploy%3Aadmin")
        .await
        .assert_oauth_error(400, "invalid_scope");
    exchange(&env, &external, &audience(ORDERS))
        .await
        .assert_oauth_error(400, "invalid_target");
    exchange(
        &env,
        &external,
        &format!(
            "&audience={}&resource={}",
            form_encode(DEPLOY),
            form_encode(ORDERS)
        ),
    )
    .await
    .assert_oauth_error(400, "invalid_target");
}

#[tokio::test]
async fn parameters_are_checked() {
    let (env, key, _) = federation().await;
    let external = sign(&key, &github_claims(GITHUB, "acme/api"));
    let t = form_encode(&external);
    let g = form_encode(EXCHANGE);
    for (form, what) in [
        (
            format!("grant_type={g}&subject_token_type={}", form_encode(JWT)),
            "no subject_token",
        ),
        (
            format!("grant_type={g}&subject_token={t}"),
            "no subject_token_type",
        ),
        (
            format!("grant_type={g}&subject_token={t}&subject_token_type=urn%3Ax"),
            "unknown type",
        ),
        (
            format!(
                "{}&actor_token={t}&actor_token_type={}",
                exchange_form(&external, ""),
                form_encode(JWT)
            ),
            "actor token",
        ),
        (
            format!(
                "{}&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Arefresh_token",
                exchange_form(&external, "")
            ),
            "refresh token asked",
        ),
        (
            format!("grant_type={}", form_encode(JWT_BEARER)),
            "no assertion",
        ),
        (
            format!("{}&subject_token=x", exchange_form(&external, "")),
            "repeated",
        ),
    ] {
        let r = env.token_request("default", None, &form).await;
        r.assert_oauth_error(400, "invalid_request");
        assert!(
            !String::from_utf8_lossy(&r.body).contains(&external),
            "{what}"
        );
    }
    // requested_token_type access_token is fine; the response says what was issued.
    let r = exchange(
        &env,
        &external,
        &format!("&requested_token_type={}", form_encode(ACCESS)),
    )
    .await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.json()["issued_token_type"], ACCESS);
    // Client credentials still need a client.
    env.token_request("default", None, "grant_type=client_credentials")
        .await
        .assert_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn a_client_that_authenticates_must_be_the_mapped_account() {
    let (env, key, account) = federation().await;
    let secret = env.add_secret("default", &account, "s").await;
    let (other, other_secret) = env
        .account("default", "other", DEPLOY, &["deploy:read"])
        .await;
    let external = sign(&key, &github_claims(GITHUB, "acme/api"));
    let form = exchange_form(&external, "");
    env.token_request("default", Some((&account, &secret)), &form)
        .await
        .assert_status(StatusCode::OK);
    let r = env
        .token_request("default", Some((&other, &other_secret)), &form)
        .await;
    r.assert_oauth_error(400, "invalid_request");
    assert!(!String::from_utf8_lossy(&r.body).contains(&account));
    // A wrong secret is invalid_client, whatever the token.
    env.token_request("default", Some((&account, "wrt_wrong")), &form)
        .await
        .assert_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn a_disabled_account_gets_nothing_through_its_trust() {
    let (env, key, account) = federation().await;
    env.admin(
        Method::PATCH,
        &format!("/admin/v1/tenants/default/service-accounts/{account}"),
        Some(json!({"enabled": false})),
    )
    .await
    .assert_status(StatusCode::OK);
    env.clock.advance_secs(2);
    let mut claims = github_claims(GITHUB, "acme/api");
    claims["iat"] = json!(T0 + 2);
    exchange(&env, &sign(&key, &claims), "")
        .await
        .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn one_tenants_trust_is_not_another_tenants() {
    let (env, key, _) = federation().await;
    env.create_tenant("other").await;
    env.create_account_json(
        "other",
        json!({"name": "deployer", "default_audience": DEPLOY,
               "grants": [{"audience": DEPLOY, "scopes": ["deploy:read"]}]}),
    )
    .await;
    let external = sign(&key, &github_claims(GITHUB, "acme/api"));
    let r = env
        .token_request("other", None, &exchange_form(&external, ""))
        .await;
    r.assert_oauth_error(400, "invalid_request");
    assert_eq!(r.json()["error_description"], SIGNATURE);
    let r = env
        .token_request(
            "other",
            None,
            &format!(
                "grant_type={}&assertion={}",
                form_encode(JWT_BEARER),
                form_encode(&external)
            ),
        )
        .await;
    r.assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn jwt_bearer_needs_an_assertion_addressed_to_the_tenant() {
    let (env, key, account) = federation().await;
    let issuer = format!("{}/t/default", PUBLIC_URL);
    // The trust's audience is this tenant's issuer, as RFC 7523 §3 wants of an assertion.
    patch_trust(&env, json!({"audience": issuer})).await;
    let grant = |token: &str| {
        format!(
            "grant_type={}&assertion={}&scope=deploy%3Awrite",
            form_encode(JWT_BEARER),
            form_encode(token)
        )
    };
    let mut claims = github_claims(GITHUB, "acme/api");
    claims["aud"] = json!(issuer);
    let r = env
        .token_request("default", None, &grant(&sign(&key, &claims)))
        .await;
    r.assert_status(StatusCode::OK);
    let body = r.json();
    assert!(body.get("issued_token_type").is_none(), "{body}");
    assert_eq!(body["scope"], "deploy:write");
    let c = claims_of(
        &env.jwks("default").await,
        body["access_token"].as_str().unwrap(),
    );
    assert_eq!(c["sub"], account);

    // Not addressed to this tenant: invalid_grant, whose description names the class only.
    let r = env
        .token_request(
            "default",
            None,
            &grant(&sign(&key, &github_claims(GITHUB, "acme/api"))),
        )
        .await;
    r.assert_oauth_error(400, "invalid_grant");
    assert!(!String::from_utf8_lossy(&r.body).contains("acme"));
    // A condition failing: invalid_grant.
    claims["repository"] = json!("acme/other");
    env.token_request("default", None, &grant(&sign(&key, &claims)))
        .await
        .assert_oauth_error(400, "invalid_grant");
    // A token of this tenant is not an assertion.
    let (id, secret) = env
        .account("default", "plain", DEPLOY, &["deploy:read"])
        .await;
    let own = env.token_for("default", &id, &secret).await;
    env.token_request("default", None, &grant(&own))
        .await
        .assert_oauth_error(400, "invalid_grant");
}

// --- delegation -------------------------------------------------------------------------------

struct Delegation {
    env: Env,
    /// The caller of `orders`: granted `orders:read orders:write` there.
    user: (String, String),
    /// Owns `orders`; granted `billing:read orders:read` on billing.
    orders: (String, String),
    /// Owns `billing`; granted `ledger:read` on deploy.
    billing: (String, String),
    /// Granted on billing, owns nothing.
    stranger: (String, String),
}

fn pair(p: &(String, String)) -> (&str, &str) {
    (&p.0, &p.1)
}

async fn delegation() -> Delegation {
    let env = Env::new().await;
    let user = env
        .account("default", "user", ORDERS, &["orders:read", "orders:write"])
        .await;
    let orders = env
        .account(
            "default",
            "orders-svc",
            BILLING,
            &["orders:read", "billing:read"],
        )
        .await;
    let billing = env
        .account(
            "default",
            "billing-svc",
            DEPLOY,
            &["orders:read", "ledger:read"],
        )
        .await;
    let stranger = env
        .account(
            "default",
            "stranger",
            BILLING,
            &["orders:read", "billing:read"],
        )
        .await;
    for (name, aud, scopes, owner) in [
        (
            "orders",
            ORDERS,
            json!(["orders:read", "orders:write"]),
            &orders.0,
        ),
        (
            "billing",
            BILLING,
            json!(["orders:read", "billing:read"]),
            &billing.0,
        ),
    ] {
        env.admin(
            Method::POST,
            "/admin/v1/tenants/default/apis",
            Some(json!({"name": name, "audience": aud, "scopes": scopes, "owner": owner})),
        )
        .await
        .assert_status(StatusCode::CREATED);
    }
    Delegation {
        env,
        user,
        orders,
        billing,
        stranger,
    }
}

/// `caller` exchanges `token` (an access token of `default`) with `extra` parameters.
async fn delegate(
    env: &Env,
    caller: Option<&(String, String)>,
    token: &str,
    extra: &str,
) -> crate::harness::Resp {
    env.token_request(
        "default",
        caller.map(pair),
        &subject_form(token, ACCESS, extra),
    )
    .await
}

/// Revokes in `default` (`revocation` as the admin API takes it).
async fn revoke(env: &Env, revocation: Value) {
    env.admin(
        Method::POST,
        "/admin/v1/tenants/default/revocations",
        Some(revocation),
    )
    .await
    .assert_status(StatusCode::CREATED);
}

#[tokio::test]
async fn the_owner_of_an_api_delegates_with_act_and_intersected_scopes() {
    let d = delegation().await;
    let env = &d.env;
    let original = env.token_for("default", &d.user.0, &d.user.1).await;
    let r = delegate(env, Some(&d.orders), &original, "").await;
    r.assert_status(StatusCode::OK);
    let body = r.json();
    assert_eq!(body["issued_token_type"], ACCESS);
    // orders-svc on billing: orders:read billing:read; the original: orders:read orders:write.
    assert_eq!(body["scope"], "orders:read");
    let jwks = env.jwks("default").await;
    let delegated = body["access_token"].as_str().unwrap().to_owned();
    let c = claims_of(&jwks, &delegated);
    assert_eq!(c["sub"], d.user.0);
    assert_eq!(c["client_id"], d.orders.0);
    assert_eq!(c["aud"], BILLING);
    assert_eq!(c["act"], json!({"sub": d.orders.0}));
    let o = claims_of(&jwks, &original);
    assert!(c["exp"].as_i64() <= o["exp"].as_i64());

    // A second hop: billing-svc exchanges the delegated token for deploy; act nests.
    let r = delegate(env, Some(&d.billing), &delegated, &audience(DEPLOY)).await;
    r.assert_status(StatusCode::OK);
    let twice = r.access_token();
    let c2 = claims_of(&jwks, &twice);
    assert_eq!(c2["sub"], d.user.0);
    assert_eq!(c2["client_id"], d.billing.0);
    assert_eq!(
        c2["act"],
        json!({"sub": d.billing.0, "act": {"sub": d.orders.0}})
    );
    assert_eq!(c2["scope"], "orders:read");
    let issuer = format!("{}/t/default", PUBLIC_URL);
    Verify::jsonwebtoken(&twice, &jwks, &issuer, DEPLOY);

    // A watermark on the first actor revokes the two-hop token at introspection.
    assert!(env.is_active("default", pair(&d.stranger), &twice).await);
    revoke(env, json!({"type": "subject", "sub": d.orders.0})).await;
    assert!(!env.is_active("default", pair(&d.stranger), &twice).await);
    assert!(
        !env.is_active("default", pair(&d.stranger), &delegated)
            .await
    );
}

#[tokio::test]
async fn delegation_cannot_escalate() {
    let d = delegation().await;
    let env = &d.env;
    let original = env.token_for("default", &d.user.0, &d.user.1).await;
    let caller = Some(&d.orders);
    // A scope the original does not hold (though granted to the caller on the target).
    delegate(env, caller, &original, "&scope=billing%3Aread")
        .await
        .assert_oauth_error(400, "invalid_scope");
    // A scope the caller is not granted on the target (though the original holds it).
    delegate(env, caller, &original, "&scope=orders%3Awrite")
        .await
        .assert_oauth_error(400, "invalid_scope");
    // A target the caller has no grant on.
    delegate(env, caller, &original, &audience(DEPLOY))
        .await
        .assert_oauth_error(400, "invalid_target");
    // Only the owner of the original's API may exchange it.
    let r = delegate(env, Some(&d.stranger), &original, "").await;
    r.assert_oauth_error(400, "invalid_request");
    delegate(env, Some(&d.billing), &original, "")
        .await
        .assert_oauth_error(400, "invalid_request");
    // Without client authentication: invalid_client.
    delegate(env, None, &original, "")
        .await
        .assert_oauth_error(401, "invalid_client");
    // A token addressed to an unregistered audience cannot be delegated at all, even by
    // the account it was issued to.
    let plain = env.token_for("default", &d.billing.0, &d.billing.1).await;
    delegate(env, Some(&d.billing), &plain, "")
        .await
        .assert_oauth_error(400, "invalid_request");
    // Tampered, and another tenant's token: not an active token of this tenant.
    let mut tampered = original.clone();
    tampered.pop();
    tampered.push(if original.ends_with('A') { 'B' } else { 'A' });
    delegate(env, caller, &tampered, "")
        .await
        .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn delegated_tokens_never_outlive_the_original_and_revoked_originals_are_refused() {
    let d = delegation().await;
    let env = &d.env;
    // The user's tokens live 60 s; orders-svc's default is 600 s.
    env.admin(
        Method::PATCH,
        &format!("/admin/v1/tenants/default/service-accounts/{}", d.user.0),
        Some(json!({"default_lifetime_seconds": 60})),
    )
    .await
    .assert_status(StatusCode::OK);
    let original = env.token_for("default", &d.user.0, &d.user.1).await;
    env.clock.advance_secs(20);
    let r = delegate(env, Some(&d.orders), &original, "").await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.json()["expires_in"], 40);
    let jwks = env.jwks("default").await;
    let c = claims_of(&jwks, &r.access_token());
    assert_eq!(c["exp"], claims_of(&jwks, &original)["exp"]);

    // Revoked by jti: refused.
    let jti = claims_of(&jwks, &original)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    revoke(env, json!({"type": "jti", "jti": jti, "exp": T0 + 60})).await;
    let r = delegate(env, Some(&d.orders), &original, "").await;
    r.assert_oauth_error(400, "invalid_request");
    // Expired: refused.
    let fresh = env.token_for("default", &d.user.0, &d.user.1).await;
    env.clock.advance_secs(61);
    delegate(env, Some(&d.orders), &fresh, "")
        .await
        .assert_oauth_error(400, "invalid_request");
}
