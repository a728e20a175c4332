//! `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9) at the token and introspection endpoints,
//! and no downgrade between secrets and keys: one test per attack the issue names.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use warrant_jose::{Algorithm, SigningKey, b64};

use crate::harness::{Env, PUBLIC_URL, T0, form_encode};

const AUD: &str = "https://api.example";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn issuer(tenant: &str) -> String {
    format!("{PUBLIC_URL}/t/{tenant}")
}

/// A compact JWS with exactly this header and these claims, signed by `key` (the header's
/// `alg` is whatever the test says, so forged headers can be built too).
fn jws(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let mut out = b64::encode(header.to_string());
    out.push('.');
    out.push_str(&b64::encode(claims.to_string()));
    let sig = key.sign(out.as_bytes()).unwrap();
    out.push('.');
    out.push_str(&b64::encode(sig));
    out
}

/// The claims of a valid assertion for `client_id` at `now`.
fn claims(client_id: &str, jti: &str) -> Value {
    json!({
        "iss": client_id, "sub": client_id, "aud": issuer("default"),
        "jti": jti, "iat": T0, "exp": T0 + 60,
    })
}

fn header(key: &SigningKey) -> Value {
    json!({"alg": key.alg().as_str(), "kid": key.kid(), "typ": "JWT"})
}

fn assertion(key: &SigningKey, client_id: &str, jti: &str) -> String {
    jws(key, &header(key), &claims(client_id, jti))
}

fn form(assertion: &str) -> String {
    format!(
        "grant_type=client_credentials&client_assertion_type={}&client_assertion={}",
        form_encode(ASSERTION_TYPE),
        form_encode(assertion)
    )
}

/// A key-bound account in `default` with the given public keys; returns its id.
async fn key_account(env: &Env, name: &str, keys: &[&SigningKey]) -> String {
    let jwks: Vec<Value> = keys
        .iter()
        .map(|k| serde_json::to_value(k.public_jwk()).unwrap())
        .collect();
    let created = env
        .create_account_json(
            "default",
            json!({
                "name": name, "default_audience": AUD,
                "grants": [{"audience": AUD, "scopes": ["read"]}],
                "jwks": {"keys": jwks},
            }),
        )
        .await;
    assert_eq!(created["auth_methods"], json!(["private_key_jwt"]));
    created["id"].as_str().unwrap().to_owned()
}

async fn refused(env: &Env, body: &str) -> Value {
    let r = env.token_request("default", None, body).await;
    r.assert_oauth_error(401, "invalid_client");
    r.json()
}

#[tokio::test]
async fn every_algorithm_authenticates_and_the_token_verifies() {
    let env = Env::new().await;
    for alg in Algorithm::ALL {
        let (key, _) = SigningKey::generate(alg).unwrap();
        let id = key_account(
            &env,
            &format!("svc-{}", alg.as_str().to_lowercase()),
            &[&key],
        )
        .await;
        let r = env
            .token_request("default", None, &form(&assertion(&key, &id, "a1")))
            .await;
        let token = r.access_token();
        let c = env.verify("default", &token, AUD).await;
        assert_eq!(c["sub"], id.as_str());
        assert!(
            c.get("cnf").is_none(),
            "a key-authenticated Bearer token carries no cnf"
        );
        assert_eq!(r.json()["token_type"], "Bearer");
    }
}

#[tokio::test]
async fn an_assertion_made_by_jsonwebtoken_is_accepted_without_kid() {
    // An independent implementation signs; no `kid`: the one registered key of the alg is used.
    let env = Env::new().await;
    let (key, der) = SigningKey::generate(Algorithm::Es256).unwrap();
    let id = key_account(&env, "svc", &[&key]).await;
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = None;
    let enc = jsonwebtoken::EncodingKey::from_ec_der(&der);
    let jwt = jsonwebtoken::encode(&h, &claims(&id, "jwt-1"), &enc).unwrap();
    env.token_request("default", None, &form(&jwt))
        .await
        .access_token();
    // and with client_id repeated in the body, as RFC 7521 §4.2 allows
    let jwt2 = jsonwebtoken::encode(&h, &claims(&id, "jwt-2"), &enc).unwrap();
    let body = format!("{}&client_id={id}", form(&jwt2));
    env.token_request("default", None, &body)
        .await
        .access_token();
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let env = Env::new().await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let id = key_account(&env, "svc", &[&key]).await;
    let a = assertion(&key, &id, "once");
    env.token_request("default", None, &form(&a))
        .await
        .access_token();
    refused(&env, &form(&a)).await;
    // The same jti with a fresh signature (other claims changed) is still a replay.
    let mut c = claims(&id, "once");
    c["iat"] = json!(T0 + 1);
    c["exp"] = json!(T0 + 120);
    refused(&env, &form(&jws(&key, &header(&key), &c))).await;
    // Replays are per client: another client may use the same jti.
    let other = key_account(&env, "other", &[&key]).await;
    env.token_request("default", None, &form(&assertion(&key, &other, "once")))
        .await
        .access_token();
}

#[tokio::test]
async fn the_audience_must_be_the_issuer_as_one_string() {
    let env = Env::new().await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let id = key_account(&env, "svc", &[&key]).await;
    let token_endpoint = format!("{}/token", issuer("default"));
    for (n, aud) in [
        json!("https://evil.example"),
        json!([issuer("default")]),
        json!([issuer("default"), "https://evil.example"]),
        json!(token_endpoint),
        json!(issuer("other")),
        Value::Null,
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = claims(&id, &format!("aud-{n}"));
        c["aud"] = aud.clone();
        let body = refused(&env, &form(&jws(&key, &header(&key), &c))).await;
        if aud.is_string() {
            // The error says what to send (the issuer is public).
            let d = body["error_description"].as_str().unwrap();
            assert!(d.contains(&issuer("default")), "{d}");
        }
    }
    // Once the tenant opts in, the token endpoint is accepted as well (old clients).
    let r = env
        .admin(
            Method::PATCH,
            "/admin/v1/tenants/default",
            Some(json!({"token_endpoint_audience": true})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["token_endpoint_audience"], true);
    let mut c = claims(&id, "aud-te");
    c["aud"] = json!(token_endpoint);
    env.token_request("default", None, &form(&jws(&key, &header(&key), &c)))
        .await
        .access_token();
    // ...but never an array, and never another URL.
    let mut c = claims(&id, "aud-te-array");
    c["aud"] = json!([token_endpoint]);
    refused(&env, &form(&jws(&key, &header(&key), &c))).await;
}

#[tokio::test]
async fn expired_far_future_and_not_yet_valid_assertions_are_refused() {
    let env = Env::new().await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let id = key_account(&env, "svc", &[&key]).await;
    let cases: [(&str, Value); 5] = [
        ("expired", json!({"exp": T0 - 120, "iat": T0 - 180})),
        ("far-future", json!({"exp": T0 + 3600})),
        ("no-exp", json!({"exp": null})),
        ("future-iat", json!({"iat": T0 + 600, "exp": T0 + 660})),
        ("future-nbf", json!({"nbf": T0 + 600})),
    ];
    for (jti, patch) in cases {
        let mut c = claims(&id, jti);
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        refused(&env, &form(&jws(&key, &header(&key), &c))).await;
    }
    // Within the skew it is fine.
    let mut c = claims(&id, "skewed");
    c["iat"] = json!(T0 + 30);
    env.token_request("default", None, &form(&jws(&key, &header(&key), &c)))
        .await
        .access_token();
}

#[tokio::test]
async fn forged_signatures_and_foreign_keys_are_refused() {
    let env = Env::new().await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let (attacker, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let id = key_account(&env, "victim", &[&key]).await;
    let c = claims(&id, "forged");
    let signing_input = |h: &Value| {
        format!(
            "{}.{}",
            b64::encode(h.to_string()),
            b64::encode(c.to_string())
        )
    };

    // alg none
    let none = format!("{}.", signing_input(&json!({"alg": "none", "typ": "JWT"})));
    refused(&env, &form(&none)).await;
    // HS256 keyed with the registered public key's JSON and with its x coordinate
    for secret in [
        serde_json::to_vec(key.public_jwk()).unwrap(),
        b64::decode(key.public_jwk().x.as_deref().unwrap()).unwrap(),
    ] {
        let h = json!({"alg": "HS256", "kid": key.kid(), "typ": "JWT"});
        let input = signing_input(&h);
        let mac = warrant_jose::crypto::HmacKey::new(&secret).sign(input.as_bytes());
        refused(&env, &form(&format!("{input}.{}", b64::encode(mac)))).await;
    }
    // The attacker's key, with the victim's kid, and carried in jwk / jku / x5c headers
    let attacker_jwk = serde_json::to_value(attacker.public_jwk()).unwrap();
    for h in [
        json!({"alg": "ES256", "kid": key.kid()}),
        json!({"alg": "ES256", "jwk": attacker_jwk}),
        json!({"alg": "ES256", "kid": attacker.kid(), "jwk": attacker_jwk}),
        json!({"alg": "ES256", "jku": "https://attacker.example/jwks"}),
        json!({"alg": "ES256", "x5c": ["MIIBszCCAVmgAwIBAgIUattacker"]}),
        json!({"alg": "ES256", "x5u": "https://attacker.example/cert.pem"}),
    ] {
        refused(&env, &form(&jws(&attacker, &h, &c))).await;
    }
    // Another account's key: the other account's own key cannot speak for the victim.
    let (other_key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    key_account(&env, "other", &[&other_key]).await;
    refused(&env, &form(&assertion(&other_key, &id, "other-key"))).await;
    // Bit-flipped signature, truncated token
    let good = assertion(&key, &id, "flip");
    let mut bytes = good.clone().into_bytes();
    let last = bytes.len() - 3;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    refused(&env, &form(&String::from_utf8(bytes).unwrap())).await;
    refused(&env, &form(&good[..good.len() - 10])).await;
    // Unknown critical header
    let mut h = header(&key);
    h["crit"] = json!(["exp"]);
    h["exp"] = json!(1);
    refused(&env, &form(&jws(&key, &h, &claims(&id, "crit")))).await;
    // iss and sub must both be the client
    let mut c2 = claims(&id, "iss");
    c2["iss"] = json!("someone-else");
    refused(&env, &form(&jws(&key, &header(&key), &c2))).await;
    // a client_id in the body that is not the assertion's
    let body = format!(
        "{}&client_id=sa_01JAAAAAAAAAAAAAAAAAAAAAAA",
        form(&assertion(&key, &id, "mismatch"))
    );
    let r = env.token_request("default", None, &body).await;
    assert!(r.status == 401 || r.status == 400, "{}", r.status);
    // After all that, the real key still works (nothing was locked out or consumed).
    env.token_request("default", None, &form(&assertion(&key, &id, "real")))
        .await
        .access_token();
}

#[tokio::test]
async fn no_downgrade_between_secrets_and_keys() {
    let env = Env::new().await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let id = key_account(&env, "keyed", &[&key]).await;
    // A key-bound account cannot get a secret...
    let r = env
        .admin(
            Method::POST,
            &format!("/admin/v1/tenants/default/service-accounts/{id}/secrets"),
            Some(json!({"name": "sneaky"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // ...nor authenticate with one (Basic or post).
    env.token_request(
        "default",
        Some((&id, "wrong-but-well-formed-secret")),
        "grant_type=client_credentials",
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    // A secret account cannot use an assertion, even signed by a key it never registered.
    let (secret_id, secret) = env.account("default", "secretive", AUD, &["read"]).await;
    refused(&env, &form(&assertion(&key, &secret_id, "downgrade"))).await;
    env.token_for("default", &secret_id, &secret).await;
    // Methods cannot be mixed, and keys need the method.
    for body in [
        json!({"name": "mixed", "auth_methods": ["client_secret_basic", "private_key_jwt"],
               "jwks": {"keys": [serde_json::to_value(key.public_jwk()).unwrap()]}}),
        json!({"name": "nokeys", "auth_methods": ["private_key_jwt"]}),
        json!({"name": "keys-no-method", "auth_methods": ["client_secret_basic"],
               "jwks": {"keys": [serde_json::to_value(key.public_jwk()).unwrap()]}}),
        json!({"name": "bad-jwks", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
        json!({"name": "http-uri", "jwks_uri": "http://keys.example/jwks"}),
        json!({"name": "both", "jwks_uri": "https://keys.example/jwks",
               "jwks": {"keys": [serde_json::to_value(key.public_jwk()).unwrap()]}}),
        json!({"name": "badmethod", "auth_methods": ["none"]}),
    ] {
        let r = env
            .admin(
                Method::POST,
                "/admin/v1/tenants/default/service-accounts",
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // Switching a secret account to keys: refused while it holds secrets (a later switch back
    // would revive them), then one patch once they are revoked.
    let to_keys = json!({"auth_methods": ["private_key_jwt"],
                         "jwks": {"keys": [serde_json::to_value(key.public_jwk()).unwrap()]}});
    let path = format!("/admin/v1/tenants/default/service-accounts/{secret_id}");
    env.admin(Method::PATCH, &path, Some(to_keys.clone()))
        .await
        .assert_status(StatusCode::CONFLICT);
    let r = env
        .admin(Method::DELETE, &format!("{path}/secrets/initial"), None)
        .await;
    assert!(
        r.status.is_success(),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    env.admin(Method::PATCH, &path, Some(to_keys.clone()))
        .await
        .assert_status(StatusCode::OK);
    // Back to secrets: the revoked secret stays revoked.
    let to_secrets = json!({"auth_methods": null, "jwks": null});
    env.admin(Method::PATCH, &path, Some(to_secrets))
        .await
        .assert_status(StatusCode::OK);
    env.token_request(
        "default",
        Some((&secret_id, &secret)),
        "grant_type=client_credentials",
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    env.admin(Method::PATCH, &path, Some(to_keys))
        .await
        .assert_status(StatusCode::OK);
    env.token_request(
        "default",
        Some((&secret_id, &secret)),
        "grant_type=client_credentials",
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    env.token_request(
        "default",
        None,
        &form(&assertion(&key, &secret_id, "switched")),
    )
    .await
    .access_token();
}

#[tokio::test]
async fn malformed_assertion_requests_are_clear_errors() {
    let env = Env::new().await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let id = key_account(&env, "svc", &[&key]).await;
    let a = assertion(&key, &id, "m");
    // wrong or missing client_assertion_type
    for body in [
        format!(
            "grant_type=client_credentials&client_assertion={}",
            form_encode(&a)
        ),
        format!(
            "grant_type=client_credentials&client_assertion_type=urn%3Aother&client_assertion={}",
            form_encode(&a)
        ),
        format!(
            "grant_type=client_credentials&client_assertion_type={}",
            form_encode(ASSERTION_TYPE)
        ),
        // two methods
        format!("{}&client_secret=x&client_id={id}", form(&a)),
    ] {
        env.token_request("default", None, &body)
            .await
            .assert_oauth_error(400, "invalid_request");
    }
    let r = env
        .token_request("default", Some((&id, "x")), &form(&a))
        .await;
    r.assert_oauth_error(400, "invalid_request");
    // garbage assertions are 401, never 5xx
    for junk in [
        "",
        "a",
        "a.b",
        "a.b.c",
        "....",
        "eyJhbGciOiJFUzI1NiJ9.e30.AAAA",
        "\u{1F600}.x.y",
    ] {
        let r = env.token_request("default", None, &form(junk)).await;
        assert!(r.status == 401 || r.status == 400, "{junk:?}: {}", r.status);
    }
    // oversized assertion
    let big = "a".repeat(15_000);
    let r = env.token_request("default", None, &form(&big)).await;
    assert!(r.status == 401 || r.status == 413, "{}", r.status);
}

#[tokio::test]
async fn another_tenants_account_cannot_authenticate_here() {
    let env = Env::new().await;
    env.create_tenant("acme").await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let id = key_account(&env, "svc", &[&key]).await;
    // A valid assertion for `default`, sent to `acme` (aud adjusted so only the tenant differs).
    let mut c = claims(&id, "cross");
    c["aud"] = json!(issuer("acme"));
    let r = env
        .token_request("acme", None, &form(&jws(&key, &header(&key), &c)))
        .await;
    r.assert_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn introspection_accepts_private_key_jwt() {
    let env = Env::new().await;
    let (key, _) = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let id = key_account(&env, "svc", &[&key]).await;
    let token = env
        .token_request("default", None, &form(&assertion(&key, &id, "t")))
        .await
        .access_token();
    let body = format!(
        "token={}&client_assertion_type={}&client_assertion={}",
        form_encode(&token),
        form_encode(ASSERTION_TYPE),
        form_encode(&assertion(&key, &id, "i"))
    );
    let r = env.post_form("/t/default/introspect", None, &body).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["active"], true);
    // The assertion was used: the same one again is refused.
    let r = env.post_form("/t/default/introspect", None, &body).await;
    r.assert_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn refusals_are_audited_with_the_failed_check() {
    let env = Env::new().await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let id = key_account(&env, "svc", &[&key]).await;
    let a = assertion(&key, &id, "audit");
    env.token_request("default", None, &form(&a))
        .await
        .access_token();
    refused(&env, &form(&a)).await;
    // The refusal is noted asynchronously; give the writer a moment (not a timing assertion).
    let mut found = false;
    for _ in 0..50 {
        let r = env
            .admin(
                Method::GET,
                "/admin/v1/tenants/default/audit?action=token.refuse",
                None,
            )
            .await;
        let text = String::from_utf8_lossy(&r.body).to_string();
        if text.contains("replayed") {
            found = true;
            assert!(text.contains("private_key_jwt"), "{text}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(found, "the refusal names the failed check");
    let issued = env
        .admin(
            Method::GET,
            "/admin/v1/tenants/default/audit?action=token.issue",
            None,
        )
        .await;
    assert!(String::from_utf8_lossy(&issued.body).contains("private_key_jwt"));
}

#[tokio::test]
async fn an_rsa_key_registered_without_alg_verifies_rs256_and_ps256() {
    let env = Env::new().await;
    let (rs, der) = SigningKey::generate(Algorithm::Rs256).unwrap();
    let ps = SigningKey::from_pkcs8(Algorithm::Ps256, &der).unwrap();
    let mut jwk = serde_json::to_value(rs.public_jwk()).unwrap();
    jwk.as_object_mut().unwrap().remove("alg");
    let created = env
        .create_account_json(
            "default",
            json!({"name": "rsa", "default_audience": AUD,
                   "grants": [{"audience": AUD, "scopes": ["read"]}],
                   "jwks": {"keys": [jwk]}}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    for (key, jti) in [(&rs, "rs"), (&ps, "ps")] {
        env.token_request("default", None, &form(&assertion(key, id, jti)))
            .await
            .access_token();
    }
    // An ES256 header on the RSA key's kid is still refused (the key decides the algorithm).
    let (ec, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let h = json!({"alg": "ES256", "kid": rs.kid()});
    refused(&env, &form(&jws(&ec, &h, &claims(id, "ec")))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_replays_get_exactly_one_token_per_assertion() {
    // Group commit of single-use ids: 30 assertions each sent 3 times at once, so replays
    // land in the same batch as their original — exactly one of each is accepted.
    let env = std::sync::Arc::new(Env::new().await);
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let id = key_account(&env, "svc", &[&key]).await;
    let mut set = tokio::task::JoinSet::new();
    for n in 0..30 {
        let body = form(&assertion(&key, &id, &format!("c{n}")));
        for _ in 0..3 {
            let (env, body) = (env.clone(), body.clone());
            set.spawn(async move {
                let r = env.token_request("default", None, &body).await;
                (body, r.status.as_u16())
            });
        }
    }
    let mut ok_per_body = std::collections::HashMap::<String, usize>::new();
    while let Some(done) = set.join_next().await {
        let (body, status) = done.unwrap();
        assert!(status == 200 || status == 401, "{status}");
        *ok_per_body.entry(body).or_default() += usize::from(status == 200);
    }
    assert_eq!(ok_per_body.len(), 30);
    assert!(ok_per_body.values().all(|&n| n == 1), "{ok_per_body:?}");
}
