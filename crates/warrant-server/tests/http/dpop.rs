//! DPoP (RFC 9449) at the token endpoint: bound tokens, replay, wrong URL or method, accounts
//! that require DPoP, server nonces. Proofs are made with warrant-jose's embedded-JWK signer
//! and, once, with `jsonwebtoken` (an independent implementation).

use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use warrant_jose::{Algorithm, SigningKey};

use crate::harness::{Env, Options, PUBLIC_URL, Resp, T0, basic_header};

const AUD: &str = "https://api.example";

fn htu() -> String {
    format!("{PUBLIC_URL}/t/default/token")
}

fn proof_with(key: &SigningKey, claims: &Value) -> String {
    warrant_jose::sign_with_embedded_jwk(key, "dpop+jwt", claims.to_string().as_bytes()).unwrap()
}

fn proof(key: &SigningKey, jti: &str) -> String {
    proof_with(
        key,
        &json!({"jti": jti, "htm": "POST", "htu": htu(), "iat": T0}),
    )
}

async fn token(env: &Env, id: &str, secret: &str, dpop: Option<&str>) -> Resp {
    let mut req = Request::post("/t/default/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, basic_header(id, secret));
    if let Some(p) = dpop {
        req = req.header("dpop", p);
    }
    env.send(
        req.body(Body::from("grant_type=client_credentials"))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_proof_binds_the_token_to_its_key() {
    let env = Env::new().await;
    let (id, secret) = env.account("default", "svc", AUD, &["read"]).await;
    for alg in [Algorithm::Es256, Algorithm::EdDsa, Algorithm::Rs256] {
        let (key, _) = SigningKey::generate(alg).unwrap();
        let r = token(
            &env,
            &id,
            &secret,
            Some(&proof(&key, &format!("p-{}", alg.as_str()))),
        )
        .await;
        let t = r.access_token();
        assert_eq!(r.json()["token_type"], "DPoP");
        let claims = env.verify("default", &t, AUD).await;
        assert_eq!(
            claims["cnf"]["jkt"],
            key.public_jwk().thumbprint().unwrap(),
            "cnf.jkt is the RFC 7638 thumbprint of the proof key"
        );
        // Introspection reports the binding.
        let i = env.introspect("default", (&id, &secret), &t).await;
        assert_eq!(i["active"], true);
        assert_eq!(i["cnf"]["jkt"], claims["cnf"]["jkt"]);
    }
    // Without a proof the same account gets a Bearer token with no cnf.
    let r = token(&env, &id, &secret, None).await;
    let t = r.access_token();
    assert_eq!(r.json()["token_type"], "Bearer");
    assert!(env.verify("default", &t, AUD).await.get("cnf").is_none());
}

#[tokio::test]
async fn a_proof_made_by_jsonwebtoken_is_accepted() {
    let env = Env::new().await;
    let (id, secret) = env.account("default", "svc", AUD, &["read"]).await;
    let (key, der) = SigningKey::generate(Algorithm::Es256).unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.typ = Some("dpop+jwt".into());
    h.jwk = Some(serde_json::from_value(serde_json::to_value(key.public_jwk()).unwrap()).unwrap());
    let p = jsonwebtoken::encode(
        &h,
        &json!({"jti": "jw-1", "htm": "POST", "htu": htu(), "iat": T0}),
        &jsonwebtoken::EncodingKey::from_ec_der(&der),
    )
    .unwrap();
    let r = token(&env, &id, &secret, Some(&p)).await;
    r.access_token();
    assert_eq!(r.json()["token_type"], "DPoP");
}

#[tokio::test]
async fn replayed_and_misdirected_proofs_are_refused() {
    let env = Env::new().await;
    let (id, secret) = env.account("default", "svc", AUD, &["read"]).await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let p = proof(&key, "once");
    token(&env, &id, &secret, Some(&p)).await.access_token();
    token(&env, &id, &secret, Some(&p))
        .await
        .assert_oauth_error(400, "invalid_dpop_proof");
    let bad = [
        json!({"jti": "url", "htm": "POST", "htu": format!("{PUBLIC_URL}/t/other/token"), "iat": T0}),
        json!({"jti": "host", "htm": "POST", "htu": "https://evil.example/t/default/token", "iat": T0}),
        json!({"jti": "method", "htm": "GET", "htu": htu(), "iat": T0}),
        json!({"jti": "stale", "htm": "POST", "htu": htu(), "iat": T0 - 600}),
        json!({"jti": "future", "htm": "POST", "htu": htu(), "iat": T0 + 600}),
        json!({"htm": "POST", "htu": htu(), "iat": T0}),
    ];
    for c in bad {
        token(&env, &id, &secret, Some(&proof_with(&key, &c)))
            .await
            .assert_oauth_error(400, "invalid_dpop_proof");
    }
    // Not a DPoP proof at all: an access token, a bare JWS, junk.
    let at = token(&env, &id, &secret, None).await.access_token();
    for junk in [at.as_str(), "a.b.c", "x", ""] {
        let r = token(&env, &id, &secret, Some(junk)).await;
        r.assert_oauth_error(400, "invalid_dpop_proof");
    }
    // Two DPoP headers.
    let req = Request::post("/t/default/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, basic_header(&id, &secret))
        .header("dpop", proof(&key, "two-a"))
        .header("dpop", proof(&key, "two-b"))
        .body(Body::from("grant_type=client_credentials"))
        .unwrap();
    env.send(req)
        .await
        .assert_oauth_error(400, "invalid_dpop_proof");
    // A proof is no credential: a wrong secret with a valid proof is still 401.
    token(&env, &id, "wrong-secret-value", Some(&proof(&key, "wrong")))
        .await
        .assert_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn an_account_can_require_dpop() {
    let env = Env::new().await;
    let (id, secret) = env.account("default", "svc", AUD, &["read"]).await;
    let r = env
        .admin(
            Method::PATCH,
            &format!("/admin/v1/tenants/default/service-accounts/{id}"),
            Some(json!({"dpop_bound_access_tokens": true})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    token(&env, &id, &secret, None)
        .await
        .assert_oauth_error(400, "invalid_dpop_proof");
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let r = token(&env, &id, &secret, Some(&proof(&key, "req"))).await;
    r.access_token();
    assert_eq!(r.json()["token_type"], "DPoP");
}

#[tokio::test]
async fn server_nonces_when_configured() {
    let env = Env::with(Options {
        dpop_require_nonce: true,
        ..Options::default()
    })
    .await;
    let (id, secret) = env.account("default", "svc", AUD, &["read"]).await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let r = token(&env, &id, &secret, Some(&proof(&key, "n1"))).await;
    r.assert_oauth_error(400, "use_dpop_nonce");
    let nonce = r
        .header("dpop-nonce")
        .expect("a nonce to retry with")
        .to_owned();
    let with = |jti: &str, nonce: &str| {
        proof_with(
            &key,
            &json!({"jti": jti, "htm": "POST", "htu": htu(), "iat": T0, "nonce": nonce}),
        )
    };
    let r = token(&env, &id, &secret, Some(&with("n2", &nonce))).await;
    r.access_token();
    assert!(r.header("dpop-nonce").is_some(), "a fresh nonce on success");
    // A made-up nonce is refused with a new one.
    let r = token(&env, &id, &secret, Some(&with("n3", "made-up"))).await;
    r.assert_oauth_error(400, "use_dpop_nonce");
    // Nonces expire: two buckets later the old one is refused.
    env.clock.advance_millis(300_000);
    let late = proof_with(
        &key,
        &json!({"jti": "n4", "htm": "POST", "htu": htu(), "iat": T0 + 300, "nonce": nonce}),
    );
    token(&env, &id, &secret, Some(&late))
        .await
        .assert_oauth_error(400, "use_dpop_nonce");
    // Bearer requests are unaffected.
    token(&env, &id, &secret, None).await.access_token();
}

#[tokio::test]
async fn the_admin_api_refuses_sender_constrained_tokens() {
    // A DPoP-bound admin token must not work as a Bearer token (RFC 9449 §7.1): the admin API
    // takes unbound Bearer tokens only.
    let env = Env::new().await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let req = Request::post("/t/system/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, basic_header(&env.admin_id, &env.admin_secret))
        .header(
            "dpop",
            proof_with(
                &key,
                &json!({"jti": "adm", "htm": "POST", "htu": format!("{PUBLIC_URL}/t/system/token"), "iat": T0}),
            ),
        )
        .body(Body::from(format!(
            "grant_type=client_credentials&resource={PUBLIC_URL}/admin&scope=admin"
        )))
        .unwrap();
    let bound = env.send(req).await.access_token();
    let r = env
        .admin_with(&bound, Method::GET, "/admin/v1/tenants", None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // The same account's unbound token works.
    let r = env.admin(Method::GET, "/admin/v1/tenants", None).await;
    assert_eq!(r.status, StatusCode::OK);
}
