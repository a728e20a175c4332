//! `POST {issuer}/introspect` (RFC 7662): an active token's members, exactly `{"active":false}`
//! for every kind of inactive token, and client authentication before anything is answered.

use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use warrant_jose::b64;

use crate::harness::{Env, PUBLIC_URL, T0, basic_header, form_encode};

const AUD: &str = "https://deploy.internal";

fn inactive() -> Value {
    json!({"active": false})
}

/// The account, a second client of the same tenant (the introspecting resource server) and
/// a token of the account.
async fn setup() -> (Env, (String, String), (String, String), String) {
    let env = Env::new().await;
    let owner = env
        .account("default", "ci", AUD, &["deploy:read", "deploy:write"])
        .await;
    let rs = env.account("default", "api", AUD, &["x"]).await;
    let token = env.token_for("default", &owner.0, &owner.1).await;
    (env, owner, rs, token)
}

fn pair(c: &(String, String)) -> (&str, &str) {
    (&c.0, &c.1)
}

#[tokio::test]
async fn an_active_token_reports_its_claims() {
    let (env, owner, rs, token) = setup().await;
    let claims = env.verify("default", &token, AUD).await;
    let r = env.introspect("default", pair(&rs), &token).await;
    assert_eq!(r["active"], true);
    assert_eq!(r["token_type"], "Bearer");
    for k in [
        "scope",
        "client_id",
        "sub",
        "aud",
        "iss",
        "exp",
        "iat",
        "nbf",
        "jti",
        "tenant",
    ] {
        assert_eq!(r[k], claims[k], "{k}");
    }
    assert_eq!(r["scope"], "deploy:read deploy:write");
    assert_eq!(r["client_id"], owner.0);
    assert_eq!(r["sub"], owner.0);
    assert_eq!(r["aud"], AUD);
    assert_eq!(r["iss"], format!("{PUBLIC_URL}/t/default"));
    assert_eq!(r["exp"], T0 + 600);
    // The owner may introspect too, with client_secret_post.
    let r = env
        .post_form(
            "/t/default/introspect",
            None,
            &format!(
                "token={token}&token_type_hint=access_token&client_id={}&client_secret={}",
                owner.0, owner.1
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["active"], true);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
}

/// `header.claims.signature`, base64url, from JSON values.
fn compact(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(claims.to_string().as_bytes()),
        b64::encode(signature)
    )
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_exactly_inactive() {
    let (env, _, rs, token) = setup().await;
    let (header, claims) = warrant_jose::dangerous::decode_unverified(&token).unwrap();
    let header = Value::Object(header);
    let claims = Value::Object(claims);
    let jwks = env.jwks("default").await;
    let jwk = &jwks["keys"][0];
    let kid = jwk["kid"].clone();

    // Signed by a key we do not publish, claiming our kid.
    let (key, _) = warrant_jose::SigningKey::generate(warrant_jose::Algorithm::Es256).unwrap();
    let h = b64::encode(header.to_string().as_bytes());
    let c = b64::encode(claims.to_string().as_bytes());
    let forged_sig = key.sign(format!("{h}.{c}").as_bytes()).unwrap();
    let forged = format!("{h}.{c}.{}", b64::encode(&forged_sig));
    // The same, with the key's own kid.
    let foreign =
        warrant_jose::sign_compact(&key, "at+jwt", claims.to_string().as_bytes()).unwrap();
    // alg none.
    let none = compact(
        &json!({"alg": "none", "typ": "at+jwt", "kid": kid}),
        &claims,
        b"",
    );
    // HS256 keyed with our public key (the JWK as published, and its `x` coordinate).
    let hs = json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
    let hmac = |secret: &[u8]| {
        let h = b64::encode(hs.to_string().as_bytes());
        let sig = warrant_jose::crypto::HmacKey::new(secret).sign(format!("{h}.{c}").as_bytes());
        format!("{h}.{c}.{}", b64::encode(sig))
    };
    let hs_jwk = hmac(jwk.to_string().as_bytes());
    let hs_x = hmac(&b64::decode(jwk["x"].as_str().unwrap()).unwrap());
    // Our signature over other claims (a raised scope).
    let mut raised = claims.clone();
    raised["scope"] = json!("deploy:read deploy:write admin");
    let spliced = format!(
        "{}.{}",
        {
            let (hc, _) = token.rsplit_once('.').unwrap();
            let (h, _) = hc.split_once('.').unwrap();
            format!("{h}.{}", b64::encode(raised.to_string().as_bytes()))
        },
        token.rsplit_once('.').unwrap().1
    );
    // Bit-flipped signature, truncated token, two segments, garbage.
    let flipped = {
        let (signed, sig) = token.rsplit_once('.').unwrap();
        let mut sig = b64::decode(sig).unwrap();
        sig[10] ^= 0x01;
        format!("{signed}.{}", b64::encode(&sig))
    };
    let truncated = token[..token.len() - 10].to_owned();
    let two_segments = token.rsplit_once('.').unwrap().0.to_owned();

    for (what, t) in [
        ("forged signature", forged),
        ("foreign key", foreign),
        ("alg none", none),
        ("HS256 with the JWK", hs_jwk),
        ("HS256 with x", hs_x),
        ("spliced claims", spliced),
        ("bit-flipped", flipped),
        ("truncated", truncated),
        ("two segments", two_segments),
        ("garbage", "not-a-token".to_owned()),
        ("empty-ish", "..".to_owned()),
    ] {
        assert_eq!(
            env.introspect("default", pair(&rs), &t).await,
            inactive(),
            "{what}"
        );
    }
    assert!(env.is_active("default", pair(&rs), &token).await);
}

#[tokio::test]
async fn an_expired_token_is_inactive() {
    let (env, _, rs, token) = setup().await;
    env.clock.advance_secs(599);
    assert!(env.is_active("default", pair(&rs), &token).await);
    env.clock.advance_secs(1);
    assert_eq!(
        env.introspect("default", pair(&rs), &token).await,
        inactive()
    );
}

#[tokio::test]
async fn another_tenants_token_is_inactive() {
    let (env, _, rs, _) = setup().await;
    env.create_tenant("acme").await;
    let (a_id, a_secret) = env.account("acme", "svc", AUD, &["x"]).await;
    let acme_token = env.token_for("acme", &a_id, &a_secret).await;
    assert_eq!(
        env.introspect("default", pair(&rs), &acme_token).await,
        inactive()
    );
    assert!(env.is_active("acme", (&a_id, &a_secret), &acme_token).await);
    // The admin token of the system tenant is not a token of `default` either.
    let admin = env.admin_token().await;
    assert_eq!(
        env.introspect("default", pair(&rs), &admin).await,
        inactive()
    );
}

#[tokio::test]
async fn revoked_tokens_are_inactive() {
    let (env, owner, rs, token) = setup().await;
    // By its owner (RFC 7009).
    assert_eq!(
        env.revoke("default", pair(&owner), &token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        env.introspect("default", pair(&rs), &token).await,
        inactive()
    );

    // By an admin, by jti.
    let second = env.token_for("default", &owner.0, &owner.1).await;
    let jti = env.verify("default", &second, AUD).await["jti"].clone();
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/default/revocations",
            Some(json!({"type": "jti", "jti": jti})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["type"], "jti");
    assert_eq!(r.json()["jti"], jti);
    assert_eq!(
        r.json()["exp"],
        T0 + 3600,
        "exp defaults to now + max_token_lifetime"
    );
    assert!(r.json()["cursor"].is_string());
    assert_eq!(
        env.introspect("default", pair(&rs), &second).await,
        inactive()
    );
    assert!(
        env.is_active(
            "default",
            pair(&rs),
            &env.token_for("default", &rs.0, &rs.1).await
        )
        .await,
        "other tokens are untouched"
    );
}

#[tokio::test]
async fn an_admin_watermark_revokes_every_token_of_the_subject() {
    let (env, owner, rs, token) = setup().await;
    let rs_token = env.token_for("default", &rs.0, &rs.1).await;
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/default/revocations",
            Some(json!({"type": "subject", "sub": owner.0})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["not_before"], T0);
    assert_eq!(
        env.introspect("default", pair(&rs), &token).await,
        inactive()
    );
    assert!(env.is_active("default", pair(&rs), &rs_token).await);
    // A token issued after the watermark's second is active.
    env.clock.advance_secs(1);
    let fresh = env.token_for("default", &owner.0, &owner.1).await;
    assert!(env.is_active("default", pair(&rs), &fresh).await);
    assert_eq!(
        env.introspect("default", pair(&rs), &token).await,
        inactive()
    );
}

#[tokio::test]
async fn disabling_an_account_revokes_its_tokens_for_good() {
    let (env, owner, rs, token) = setup().await;
    let path = format!("/admin/v1/tenants/default/service-accounts/{}", owner.0);
    let r = env
        .admin(Method::PATCH, &path, Some(json!({"enabled": false})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        env.introspect("default", pair(&rs), &token).await,
        inactive()
    );
    // Enabling it again does not bring the old tokens back.
    env.clock.advance_secs(1);
    env.admin(Method::PATCH, &path, Some(json!({"enabled": true})))
        .await;
    assert_eq!(
        env.introspect("default", pair(&rs), &token).await,
        inactive()
    );
    let fresh = env.token_for("default", &owner.0, &owner.1).await;
    assert!(env.is_active("default", pair(&rs), &fresh).await);
}

#[tokio::test]
async fn a_deleted_accounts_tokens_are_inactive() {
    let (env, owner, rs, token) = setup().await;
    let path = format!("/admin/v1/tenants/default/service-accounts/{}", owner.0);
    assert_eq!(
        env.admin(Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        env.introspect("default", pair(&rs), &token).await,
        inactive()
    );
    // A deleted account cannot introspect either.
    let r = env
        .post_form(
            "/t/default/introspect",
            Some(pair(&owner)),
            &format!("token={token}"),
        )
        .await;
    r.assert_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn introspection_needs_client_authentication() {
    let (env, owner, rs, token) = setup().await;
    let form = format!("token={}", form_encode(&token));
    // No credentials at all.
    env.post_form("/t/default/introspect", None, &form)
        .await
        .assert_oauth_error(401, "invalid_client");
    // A wrong secret, with Basic: a challenge.
    let r = env
        .post_form("/t/default/introspect", Some((&rs.0, "wrt_nope")), &form)
        .await;
    r.assert_oauth_error(401, "invalid_client");
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    // A malformed Basic header.
    let r = env
        .send(
            Request::post("/t/default/introspect")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::AUTHORIZATION, "Basic !!!")
                .body(Body::from(form.clone()))
                .unwrap(),
        )
        .await;
    r.assert_oauth_error(401, "invalid_client");
    // Another tenant's client.
    env.create_tenant("acme").await;
    let (a_id, a_secret) = env.account("acme", "svc", AUD, &["x"]).await;
    env.post_form("/t/default/introspect", Some((&a_id, &a_secret)), &form)
        .await
        .assert_oauth_error(401, "invalid_client");
    // Authenticated, but no token: 400.
    env.post_form(
        "/t/default/introspect",
        Some(pair(&rs)),
        "token_type_hint=access_token",
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    // Two methods, a repeated token, the query string, the wrong content type.
    env.post_form(
        "/t/default/introspect",
        Some(pair(&rs)),
        &format!("{form}&client_secret={}", rs.1),
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    env.post_form(
        "/t/default/introspect",
        Some(pair(&rs)),
        &format!("{form}&{form}"),
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    env.post_form(
        &format!("/t/default/introspect?{form}"),
        Some(pair(&rs)),
        &form,
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    let r = env
        .send(
            Request::post("/t/default/introspect")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, basic_header(&rs.0, &rs.1))
                .body(Body::from(json!({"token": token}).to_string()))
                .unwrap(),
        )
        .await;
    r.assert_oauth_error(400, "invalid_request");
    // GET: 405 with Allow: POST.
    let r = env.get("/t/default/introspect").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("POST"));
    // An unknown tenant.
    let r = env
        .post_form("/t/nope/introspect", Some(pair(&rs)), &form)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Nothing above leaked the token's state, and the token is still fine.
    assert!(env.is_active("default", pair(&owner), &token).await);
}

#[tokio::test]
async fn introspections_are_counted() {
    let (env, _, rs, token) = setup().await;
    env.introspect("default", pair(&rs), &token).await;
    env.introspect("default", pair(&rs), "nope").await;
    let m = String::from_utf8(env.get("/metrics").await.body).unwrap();
    assert!(
        m.contains("warrant_introspections_total{tenant=\"default\",active=\"true\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("warrant_introspections_total{tenant=\"default\",active=\"false\"} 1"),
        "{m}"
    );
    assert!(!m.contains(&token));
}
