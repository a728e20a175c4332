//! The token endpoint: issuance, claims, policy, and every bad input with its status and code.

use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use serde_json::json;

use crate::harness::{Env, PUBLIC_URL, T0, basic_header};

const AUD: &str = "https://deploy.internal";

async fn env_with_account() -> (Env, String, String) {
    let env = Env::new().await;
    let (id, secret) = env
        .account(
            "default",
            "ci-deployer",
            AUD,
            &["deploy:write", "deploy:read"],
        )
        .await;
    (env, id, secret)
}

#[tokio::test]
async fn client_secret_basic_issues_an_rfc9068_token() {
    let (env, id, secret) = env_with_account().await;
    let r = env
        .token_request(
            "default",
            Some((&id, &secret)),
            &format!("grant_type=client_credentials&resource={AUD}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "deploy:read deploy:write");
    let token = body["access_token"].as_str().unwrap();
    let header = warrant_jose::dangerous::decode_unverified(token).unwrap().0;
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], env.jwks("default").await["keys"][0]["kid"]);
    let c = env.verify("default", token, AUD).await;
    assert_eq!(c["iss"], format!("{PUBLIC_URL}/t/default"));
    assert_eq!(c["sub"], id);
    assert_eq!(c["client_id"], id);
    assert!(id.starts_with("sa_") && id.len() == 29);
    assert_eq!(c["aud"], AUD, "aud is a single string");
    assert_eq!(c["tenant"], "default");
    assert_eq!(c["scope"], "deploy:read deploy:write");
    assert_eq!(c["iat"], T0);
    assert_eq!(c["nbf"], T0);
    assert_eq!(c["exp"], T0 + 600);
    assert_eq!(c["jti"].as_str().unwrap().len(), 22);
}

#[tokio::test]
async fn client_secret_post_works_and_jti_is_unique() {
    let (env, id, secret) = env_with_account().await;
    let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    let a = env
        .token_request("default", None, &form)
        .await
        .access_token();
    let b = env
        .token_request("default", None, &form)
        .await
        .access_token();
    let ca = env.verify("default", &a, AUD).await;
    let cb = env.verify("default", &b, AUD).await;
    assert_ne!(ca["jti"], cb["jti"]);
}

#[tokio::test]
async fn basic_credentials_are_form_decoded() {
    let (env, id, secret) = env_with_account().await;
    // RFC 6749 §2.3.1: the client id is form-encoded before base64; `_` may arrive as %5F.
    let encoded_id = id.replace('_', "%5F");
    let r = env
        .token_request(
            "default",
            Some((&encoded_id, &secret)),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn default_audience_and_scope_subsets() {
    let (env, id, secret) = env_with_account().await;
    let c = |form: &'static str| {
        let (id, secret) = (id.clone(), secret.clone());
        let env = &env;
        async move {
            env.token_request("default", Some((&id, &secret)), form)
                .await
        }
    };
    let r = c("grant_type=client_credentials&scope=deploy:read").await;
    let claims = env.verify("default", &r.access_token(), AUD).await;
    assert_eq!(claims["scope"], "deploy:read");
    assert_eq!(r.json()["scope"], "deploy:read");
    // repeated identical resource is one audience (RFC 8707 §2)
    let r = env
        .token_request(
            "default",
            Some((&id, &secret)),
            &format!("grant_type=client_credentials&resource={AUD}&resource={AUD}&audience={AUD}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn target_and_scope_errors() {
    let (env, id, secret) = env_with_account().await;
    let req = |form: String| {
        let (id, secret) = (id.clone(), secret.clone());
        let env = &env;
        async move {
            env.token_request("default", Some((&id, &secret)), &form)
                .await
        }
    };
    req(format!(
        "grant_type=client_credentials&resource={AUD}&resource=https://other.internal"
    ))
    .await
    .assert_oauth_error(400, "invalid_target");
    req(format!(
        "grant_type=client_credentials&resource={AUD}&audience=https://other.internal"
    ))
    .await
    .assert_oauth_error(400, "invalid_target");
    req("grant_type=client_credentials&resource=https://other.internal".into())
        .await
        .assert_oauth_error(400, "invalid_target");
    req("grant_type=client_credentials&resource=not-a-uri".into())
        .await
        .assert_oauth_error(400, "invalid_target");
    req(format!(
        "grant_type=client_credentials&resource={AUD}%23frag"
    ))
    .await
    .assert_oauth_error(400, "invalid_target");
    req("grant_type=client_credentials&scope=deploy:admin".into())
        .await
        .assert_oauth_error(400, "invalid_scope");
    req("grant_type=client_credentials&scope=deploy:read%20deploy:admin".into())
        .await
        .assert_oauth_error(400, "invalid_scope");
    req("grant_type=client_credentials&scope=%22bad".into())
        .await
        .assert_oauth_error(400, "invalid_scope");
}

#[tokio::test]
async fn no_default_audience_is_invalid_target() {
    let env = Env::new().await;
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/default/service-accounts",
            Some(json!({"name": "nodefault", "grants": [{"audience": AUD, "scopes": ["a"]}]})),
        )
        .await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let secret = env.add_secret("default", &id, "s1").await;
    env.token_request(
        "default",
        Some((&id, &secret)),
        "grant_type=client_credentials",
    )
    .await
    .assert_oauth_error(400, "invalid_target");
    let ok = env
        .token_request(
            "default",
            Some((&id, &secret)),
            &format!("grant_type=client_credentials&resource={AUD}"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn lifetimes_are_capped_by_account_and_server() {
    let env = crate::harness::Env::with(crate::harness::Options {
        max_token_lifetime: 900,
        ..Default::default()
    })
    .await;
    // account max above the server's maximum is refused when written
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/default/service-accounts",
            Some(json!({"name": "long", "max_lifetime_seconds": 3600})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // default above max is refused too
    let r = env
        .admin(Method::POST, "/admin/v1/tenants/default/service-accounts", Some(json!({"name": "inverted", "default_lifetime_seconds": 600, "max_lifetime_seconds": 300})))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/default/service-accounts",
            Some(json!({"name": "short", "default_audience": AUD, "grants": [{"audience": AUD, "scopes": []}], "default_lifetime_seconds": 120, "max_lifetime_seconds": 300})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let secret = env.add_secret("default", &id, "s").await;
    let r = env
        .token_request(
            "default",
            Some((&id, &secret)),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(r.json()["expires_in"], 120);
    let c = env.verify("default", &r.access_token(), AUD).await;
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 120);
    assert!(
        c.get("scope").is_none(),
        "an empty grant carries no scope claim"
    );
    // the default is 10 minutes capped by the server maximum
    let (id2, s2) = env.account("default", "dflt", AUD, &["x"]).await;
    let r = env
        .token_request(
            "default",
            Some((&id2, &s2)),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(r.json()["expires_in"], 600);
}

#[tokio::test]
async fn custom_claims_are_added_but_never_override_registered_ones() {
    let env = Env::new().await;
    let bad = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/default/service-accounts",
            Some(json!({"name": "evil", "claims": {"sub": "root"}})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.json()["detail"].as_str().unwrap().contains("sub"));
    for reserved in [
        "iss",
        "aud",
        "exp",
        "scope",
        "tenant",
        "client_id",
        "cnf",
        "act",
    ] {
        let r = env
            .admin(
                Method::POST,
                "/admin/v1/tenants/default/service-accounts",
                Some(json!({"name": "evil2", "claims": {reserved: 1}})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{reserved} must be refused"
        );
    }
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/default/service-accounts",
            Some(json!({"name": "good", "default_audience": AUD, "grants": [{"audience": AUD, "scopes": ["a"]}], "claims": {"roles": ["deployer"], "team": {"name": "payments"}}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let secret = env.add_secret("default", &id, "s").await;
    let token = env
        .token_request(
            "default",
            Some((&id, &secret)),
            "grant_type=client_credentials",
        )
        .await
        .access_token();
    let c = env.verify("default", &token, AUD).await;
    assert_eq!(c["roles"], json!(["deployer"]));
    assert_eq!(c["team"]["name"], "payments");
    // a patch cannot sneak a registered claim in either
    let r = env
        .admin(
            Method::PATCH,
            &format!("/admin/v1/tenants/default/service-accounts/{id}"),
            Some(json!({"claims": {"exp": 99}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Every malformed request gets its status and code, `no-store`, and never a 5xx.
#[tokio::test]
async fn bad_inputs_get_the_documented_errors() {
    let (env, id, secret) = env_with_account().await;
    let form = "grant_type=client_credentials";

    // wrong, unknown, empty, malformed, typo'd secrets
    let mut wrong = secret.clone().into_bytes();
    wrong[10] = if wrong[10] == b'a' { b'b' } else { b'a' };
    let wrong = String::from_utf8(wrong).unwrap();
    let fresh = warrant_core::ClientSecret::generate().unwrap();
    for (cid, sec) in [
        (id.as_str(), wrong.as_str()),
        (id.as_str(), fresh.expose()),
        ("sa_01ARZ3NDEKTSV4RRFFQ69G5FAV", secret.as_str()),
        ("nobody", secret.as_str()),
        (id.as_str(), "x"),
    ] {
        let r = env.token_request("default", Some((cid, sec)), form).await;
        r.assert_oauth_error(401, "invalid_client");
        assert!(
            r.header("www-authenticate").unwrap().starts_with("Basic"),
            "a Basic failure carries a challenge"
        );
        let r = env
            .token_request(
                "default",
                None,
                &format!("{form}&client_id={cid}&client_secret={sec}"),
            )
            .await;
        r.assert_oauth_error(401, "invalid_client");
    }
    // empty secret in the body = no secret at all
    env.token_request(
        "default",
        None,
        &format!("{form}&client_id={id}&client_secret="),
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    // no credentials at all
    env.token_request("default", None, form)
        .await
        .assert_oauth_error(401, "invalid_client");

    // malformed Basic headers: 401 with a challenge
    for h in [
        "Basic !!!",
        "Basic",
        "Basic Zm9v",
        "Bearer abc",
        "Basic OnNlY3JldA==",
    ] {
        let r = env
            .send(
                Request::post("/t/default/token")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header::AUTHORIZATION, h)
                    .body(Body::from(form))
                    .unwrap(),
            )
            .await;
        r.assert_oauth_error(401, "invalid_client");
        assert!(r.header("www-authenticate").is_some(), "{h}");
    }

    // two authentication methods at once
    env.token_request(
        "default",
        Some((&id, &secret)),
        &format!("{form}&client_secret={secret}"),
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    // a body client_id that differs from Basic
    env.token_request(
        "default",
        Some((&id, &secret)),
        &format!("{form}&client_id=sa_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    // repeated parameters
    env.token_request(
        "default",
        Some((&id, &secret)),
        &format!("{form}&grant_type=client_credentials"),
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    env.token_request(
        "default",
        Some((&id, &secret)),
        &format!("{form}&scope=a&scope=b"),
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    // grant types
    env.token_request("default", Some((&id, &secret)), "grant_type=password")
        .await
        .assert_oauth_error(400, "unsupported_grant_type");
    env.token_request("default", Some((&id, &secret)), "scope=x")
        .await
        .assert_oauth_error(400, "invalid_request");
    // wrong content type, and none
    for ct in [Some("application/json"), Some("text/plain"), None] {
        let mut req = Request::post("/t/default/token")
            .header(header::AUTHORIZATION, basic_header(&id, &secret));
        if let Some(ct) = ct {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        env.send(req.body(Body::from(form)).unwrap())
            .await
            .assert_oauth_error(400, "invalid_request");
    }
    // a charset parameter is fine
    let r = env
        .send(
            Request::post("/t/default/token")
                .header(
                    header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded; charset=UTF-8",
                )
                .header(header::AUTHORIZATION, basic_header(&id, &secret))
                .body(Body::from(form))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // oversized body
    let big = format!("{form}&pad={}", "a".repeat(64 * 1024));
    let r = env
        .token_request("default", Some((&id, &secret)), &big)
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // credentials in the query string
    let r = env
        .send(
            Request::post(format!(
                "/t/default/token?client_id={id}&client_secret={secret}"
            ))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap(),
        )
        .await;
    r.assert_oauth_error(400, "invalid_request");
    // GET and other methods
    for m in [Method::GET, Method::PUT, Method::DELETE] {
        let r = env
            .send(
                Request::builder()
                    .method(m)
                    .uri("/t/default/token")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.header("allow"), Some("POST"));
        assert_eq!(r.json()["error"], "invalid_request");
    }
    // unknown tenant, and a malformed one
    env.token_request("nope", Some((&id, &secret)), form)
        .await
        .assert_oauth_error(404, "invalid_request");
    env.token_request("NOT_A_TENANT", Some((&id, &secret)), form)
        .await
        .assert_oauth_error(404, "invalid_request");
    // non-UTF-8 and binary garbage in the body
    let r = env
        .send(
            Request::post("/t/default/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::AUTHORIZATION, basic_header(&id, &secret))
                .body(Body::from(vec![0xff, 0xfe, 0x00, b'=', 0x80]))
                .unwrap(),
        )
        .await;
    assert!(r.status.is_client_error());
    // none of the error responses leaks the secret
    let r = env
        .token_request("default", Some((&id, &wrong)), form)
        .await;
    assert!(!String::from_utf8_lossy(&r.body).contains(&wrong));
}
