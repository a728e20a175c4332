//! Discovery metadata (both well-known forms) and the JWKS.

use http::StatusCode;

use crate::harness::{Env, PUBLIC_URL};

#[tokio::test]
async fn both_well_known_forms_serve_truthful_metadata() {
    let env = Env::new().await;
    let a = env.get("/t/default/.well-known/openid-configuration").await;
    let b = env
        .get("/.well-known/oauth-authorization-server/t/default")
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), b.json());
    let m = a.json();
    let issuer = format!("{PUBLIC_URL}/t/default");
    assert_eq!(m["issuer"], issuer);
    assert_eq!(m["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(m["jwks_uri"], format!("{issuer}/jwks"));
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!([
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        ])
    );
    // Without HTTPS or a client CA no certificate can reach the server: mTLS methods and
    // certificate-bound tokens are not advertised.
    let methods = serde_json::json!([
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt"
    ]);
    assert_eq!(m["token_endpoint_auth_methods_supported"], methods);
    assert!(
        m.get("tls_client_certificate_bound_access_tokens")
            .is_none()
    );
    let algs = serde_json::json!(["ES256", "EdDSA", "RS256", "PS256"]);
    assert_eq!(m["token_endpoint_auth_signing_alg_values_supported"], algs);
    assert_eq!(m["dpop_signing_alg_values_supported"], algs);
    assert_eq!(m["subject_types_supported"], serde_json::json!(["public"]));
    assert_eq!(
        m["response_types_supported"],
        serde_json::json!(["id_token"])
    );
    assert_eq!(
        m["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );
    assert_eq!(m["introspection_endpoint"], format!("{issuer}/introspect"));
    assert_eq!(m["revocation_endpoint"], format!("{issuer}/revoke"));
    for methods in [
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        assert_eq!(
            m[methods],
            serde_json::json!([
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt"
            ]),
            "{methods}"
        );
    }
    // nothing that does not exist
    for absent in [
        "authorization_endpoint",
        "userinfo_endpoint",
        "end_session_endpoint",
        "registration_endpoint",
    ] {
        assert!(m.get(absent).is_none(), "{absent} must not be advertised");
    }
    // every advertised endpoint exists
    assert_eq!(env.get("/t/default/jwks").await.status, StatusCode::OK);
    for endpoint in ["token", "introspect", "revoke"] {
        assert_eq!(
            env.get(&format!("/t/default/{endpoint}")).await.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{endpoint}"
        );
        let r = env
            .post_form(&format!("/t/default/{endpoint}"), None, "")
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{endpoint}");
    }
    assert_eq!(
        env.get("/t/nope/.well-known/openid-configuration")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        env.get("/.well-known/oauth-authorization-server/t/nope")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn jwks_is_public_only_and_cacheable() {
    let env = Env::new().await;
    let r = env.get("/t/default/jwks").await;
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
    let keys = r.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(k["kty"], "EC");
    assert_eq!(k["crv"], "P-256");
    assert_eq!(k["use"], "sig");
    assert_eq!(k["alg"], "ES256");
    assert!(k["kid"].is_string());
    assert!(k.get("d").is_none(), "never a private member");
    assert_ne!(
        env.jwks("system").await,
        r.json(),
        "each tenant has its own key"
    );
}

#[tokio::test]
async fn operations_endpoints() {
    let env = Env::new().await;
    assert_eq!(env.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(env.get("/readyz").await.status, StatusCode::OK);
    let (id, secret) = env
        .account("default", "m", "https://a.example", &["x"])
        .await;
    env.token_request(
        "default",
        Some((&id, &secret)),
        "grant_type=client_credentials",
    )
    .await
    .access_token();
    env.token_request(
        "default",
        Some((&id, "nope")),
        "grant_type=client_credentials",
    )
    .await;
    let m = String::from_utf8(env.get("/metrics").await.body).unwrap();
    assert!(
        m.contains(
            "warrant_tokens_issued_total{tenant=\"default\",grant=\"client_credentials\"} 1"
        ),
        "{m}"
    );
    assert!(m.contains("warrant_tokens_refused_total{tenant=\"default\",grant=\"client_credentials\",reason=\"invalid_client\"} 1"), "{m}");
    assert!(m.contains("warrant_token_request_duration_seconds_count"));
    assert!(!m.contains(&secret));
    assert_eq!(env.get("/nowhere").await.status, StatusCode::NOT_FOUND);
}
