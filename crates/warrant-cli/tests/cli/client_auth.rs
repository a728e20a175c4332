//! `warrant sa create` with secretless credentials against a real `warrant serve`: a
//! private_key_jwt account gets no secret and authenticates with an assertion signed by an
//! independent implementation (`jsonwebtoken`); certificate and DPoP options reach the account.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};

use super::{Server, create_sa_in, verify_independently};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sa_create_with_keys_certificates_and_dpop() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (key, der) = warrant_jose::SigningKey::generate(warrant_jose::Algorithm::Es256).unwrap();
    let jwk_path = dir.path().join("key.jwk.json");
    // One JWK (not a set) is accepted as a set of one.
    std::fs::write(&jwk_path, serde_json::to_vec(key.public_jwk()).unwrap()).unwrap();

    let created = create_sa_in(
        |a| server.admin_json(a),
        "deployer",
        "https://deploy.internal",
        "deploy:write",
        &["--jwks", jwk_path.to_str().unwrap()],
    );
    assert_eq!(created["auth_methods"], json!(["private_key_jwt"]));
    assert!(
        created.get("secret").is_none(),
        "no secret for a key-bound account: {created}"
    );
    let id = created["client_id"].as_str().unwrap().to_owned();
    let issuer = created["issuer"].as_str().unwrap().to_owned();
    let endpoint = created["token_endpoint"].as_str().unwrap().to_owned();

    // An assertion made by jsonwebtoken (no kid: the one registered key is used).
    let now = warrant_core::Clock::now(&warrant_core::SystemClock).secs();
    let assertion = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &json!({"iss": id, "sub": id, "aud": issuer, "jti": "cli-1", "iat": now, "exp": now + 60}),
        &jsonwebtoken::EncodingKey::from_ec_der(&der),
    )
    .unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.as_str()),
    ];
    let http = reqwest::Client::new();
    let r = http.post(&endpoint).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let claims = verify_independently(token, &issuer).await;
    assert_eq!(claims["sub"], id.as_str());
    // The same assertion again is a replay.
    let r = http.post(&endpoint).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // `secret add` is refused for it (no downgrade).
    let o = server.admin_status(&[
        "secret", "add", "deployer", "--tenant", "default", "--name", "x",
    ]);
    assert!(!o.status.success());

    // Certificate rules and DPoP land on the account, and `sa show` says so.
    let api = server.admin_json(&[
        "sa",
        "create",
        "api",
        "--tenant",
        "default",
        "--audience",
        "https://orders.internal",
        "--tls-san-uri",
        "spiffe://example.org/ns/prod/sa/api",
        "--dpop",
    ]);
    assert_eq!(api["auth_methods"], json!(["tls_client_auth"]));
    let shown = server.admin_json(&["sa", "show", "api", "--tenant", "default"]);
    assert_eq!(
        shown["tls_client_auth_san_uri"],
        "spiffe://example.org/ns/prod/sa/api"
    );
    assert_eq!(shown["dpop_bound_access_tokens"], true);
    let plain = server.admin(&["sa", "show", "api", "--tenant", "default"]);
    let text = String::from_utf8_lossy(&plain.stdout).to_string();
    assert!(
        text.contains("URI SAN spiffe://example.org/ns/prod/sa/api"),
        "{text}"
    );
    // --dpop false on update
    server.admin(&[
        "sa", "update", "api", "--tenant", "default", "--dpop", "false",
    ]);
    let shown = server.admin_json(&["sa", "show", "api", "--tenant", "default"]);
    assert_eq!(shown["dpop_bound_access_tokens"], false);
}
