//! Signing algorithms per tenant: RS256 and PS256 tenants beside ES256 and EdDSA (tokens, JWKS,
//! discovery, both verifiers), and changing a tenant's algorithm with a merge patch.

use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

use crate::harness::independent::try_jsonwebtoken;
use crate::harness::{Env, Resp};

const AUDIENCE: &str = "https://api.example";

/// Creates `tenant` with `alg` and an account in it; returns a token of that account.
async fn tenant_with_token(env: &Env, tenant: &str, alg: &str) -> String {
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"name": tenant, "signing_alg": alg})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["signing_alg"], alg);
    let (id, secret) = env.account(tenant, "svc", AUDIENCE, &["read"]).await;
    env.token_for(tenant, &id, &secret).await
}

fn header_of(token: &str) -> Value {
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

fn signature_len(token: &str) -> usize {
    let s = token.rsplit('.').next().unwrap();
    URL_SAFE_NO_PAD.decode(s).unwrap().len()
}

#[tokio::test]
async fn rsa_tenants_issue_tokens_both_verifiers_accept() {
    let env = Env::new().await;
    for (tenant, alg) in [("rs", "RS256"), ("ps", "PS256")] {
        let token = tenant_with_token(&env, tenant, alg).await;

        // The JWKS publishes the public RSA key: kty, n, e, alg, kid, use — nothing private.
        let jwks = env.jwks(tenant).await;
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{jwks}");
        let k = keys[0].as_object().unwrap();
        assert_eq!(k["kty"], "RSA");
        assert_eq!(k["alg"], alg);
        assert_eq!(k["use"], "sig");
        assert_eq!(k["e"], "AQAB");
        let n = URL_SAFE_NO_PAD.decode(k["n"].as_str().unwrap()).unwrap();
        assert_eq!(
            n.len(),
            256,
            "a 2048-bit modulus without a leading zero byte"
        );
        assert!(n[0] & 0x80 != 0);
        let mut members: Vec<&str> = k.keys().map(String::as_str).collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"], "{jwks}");
        // the kid is the RFC 7638 thumbprint, as an independent implementation computes it
        let theirs: jsonwebtoken::jwk::Jwk = serde_json::from_value(keys[0].clone()).unwrap();
        assert_eq!(
            k["kid"],
            theirs
                .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap()
        );

        // The token names the algorithm and the key, and both verifiers accept it.
        let h = header_of(&token);
        assert_eq!(h["alg"], alg);
        assert_eq!(h["typ"], "at+jwt");
        assert_eq!(h["kid"], k["kid"]);
        assert_eq!(signature_len(&token), 256);
        let claims = env.verify(tenant, &token, AUDIENCE).await;
        assert_eq!(claims["scope"], "read");
        assert_eq!(claims["tenant"], tenant);

        // Discovery lists the tenant's algorithm, in both well-known forms.
        for path in [
            format!("/t/{tenant}/.well-known/openid-configuration"),
            format!("/.well-known/oauth-authorization-server/t/{tenant}"),
        ] {
            assert_eq!(
                env.get(&path).await.json()["id_token_signing_alg_values_supported"],
                json!([alg]),
                "{path}"
            );
        }

        // The admin views agree.
        let keys = env
            .admin(
                Method::GET,
                &format!("/admin/v1/tenants/{tenant}/keys"),
                None,
            )
            .await
            .json();
        assert_eq!(keys["items"][0]["alg"], alg);
        assert_eq!(keys["items"][0]["kid"], k["kid"]);

        // Introspection reads the token with the tenant's RSA key too.
        let (id, secret) = env.account(tenant, "rs-client", AUDIENCE, &["read"]).await;
        assert!(env.is_active(tenant, (&id, &secret), &token).await);

        // The tenant's audit log (its checkpoints are signed with this key) verifies.
        let report = env
            .admin(
                Method::GET,
                &format!("/admin/v1/tenants/{tenant}/audit/verify"),
                None,
            )
            .await
            .json();
        assert_eq!(report["ok"], true, "{report}");
    }
}

#[tokio::test]
async fn rs256_and_ps256_tokens_do_not_verify_under_each_other() {
    let env = Env::new().await;
    let rs = tenant_with_token(&env, "rs", "RS256").await;
    let ps = tenant_with_token(&env, "ps", "PS256").await;
    let rs_jwks = env.jwks("rs").await;
    let ps_jwks = env.jwks("ps").await;
    // Each tenant's key set accepts its own token only.
    assert!(try_jsonwebtoken(&rs, &rs_jwks));
    assert!(!try_jsonwebtoken(&rs, &ps_jwks));
    assert!(try_jsonwebtoken(&ps, &ps_jwks));
    assert!(!try_jsonwebtoken(&ps, &rs_jwks));
    // Each key relabelled with the other algorithm: our verifier refuses the honest token (the
    // key's algorithm decides, not the header), and a header naming the key's new algorithm
    // over the old padding fails the signature check.
    for (token, jwks, other) in [(&rs, &rs_jwks, "PS256"), (&ps, &ps_jwks, "RS256")] {
        let mut relabelled = jwks.clone();
        relabelled["keys"][0]["alg"] = json!(other);
        let keys: warrant_jose::JwkSet = serde_json::from_value(relabelled).unwrap();
        let keys: Vec<_> = keys
            .keys
            .iter()
            .map(|k| warrant_jose::PublicKey::from_jwk(k).unwrap())
            .collect();
        assert_eq!(
            warrant_jose::verify_compact(token, &keys, Some("at+jwt")).unwrap_err(),
            warrant_jose::JoseError::AlgorithmMismatch,
            "{other}"
        );
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let mut h = header_of(token);
        h["alg"] = json!(other);
        parts[0] = URL_SAFE_NO_PAD.encode(h.to_string());
        let forged = parts.join(".");
        assert_eq!(
            warrant_jose::verify_compact(&forged, &keys, Some("at+jwt")).unwrap_err(),
            warrant_jose::JoseError::BadSignature,
            "{other}"
        );
        assert!(!try_jsonwebtoken(&forged, jwks));
    }
    // An RSA JWK that does not name its algorithm is not a verification key.
    let mut bare = ps_jwks["keys"][0].clone();
    bare.as_object_mut().unwrap().remove("alg");
    let bare: warrant_jose::Jwk = serde_json::from_value(bare).unwrap();
    assert!(warrant_jose::PublicKey::from_jwk(&bare).is_err());
}

/// `PATCH /admin/v1/tenants/{t}` as a merge patch, with an optional `If-Match`.
async fn patch_tenant(env: &Env, tenant: &str, if_match: Option<&str>, body: &str) -> Resp {
    let token = env.admin_token().await;
    let mut req = Request::builder()
        .method(Method::PATCH)
        .uri(format!("/admin/v1/tenants/{tenant}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/merge-patch+json");
    if let Some(m) = if_match {
        req = req.header(header::IF_MATCH, m);
    }
    env.send(req.body(Body::from(body.to_owned())).unwrap())
        .await
}

#[tokio::test]
async fn patching_the_alg_changes_future_keys_not_existing_ones() {
    let env = Env::new().await;
    let before = tenant_with_token(&env, "acme", "ES256").await;
    let kid = env.jwks("acme").await["keys"][0]["kid"].clone();
    let path = "/admin/v1/tenants/acme";
    let r = env.admin(Method::GET, path, None).await;
    assert_eq!(r.header("etag"), Some("\"1\""));

    env.clock.advance_secs(60);
    let r = patch_tenant(&env, "acme", Some("\"1\""), r#"{"signing_alg":"PS256"}"#).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("etag"), Some("\"2\""));
    let t = r.json();
    assert_eq!(t["signing_alg"], "PS256");
    assert_eq!(t["revision"], 2);
    assert_ne!(t["updated_at"], t["created_at"], "{t}");
    let shown = env.admin(Method::GET, path, None).await;
    assert_eq!(shown.json()["signing_alg"], "PS256");
    assert_eq!(shown.header("etag"), Some("\"2\""));
    let listed = env
        .admin(Method::GET, "/admin/v1/tenants", None)
        .await
        .json();
    let acme = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "acme")
        .unwrap()
        .clone();
    assert_eq!(acme["signing_alg"], "PS256");

    // The existing key keeps its algorithm: it still signs, and its tokens still verify.
    let jwks = env.jwks("acme").await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["kid"], kid);
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    env.verify("acme", &before, AUDIENCE).await;
    let (id, secret) = env.account("acme", "later", AUDIENCE, &["read"]).await;
    let after = env.token_for("acme", &id, &secret).await;
    assert_eq!(header_of(&after)["alg"], "ES256");
    env.verify("acme", &after, AUDIENCE).await;

    // A stale If-Match is 412 and changes nothing.
    let r = patch_tenant(&env, "acme", Some("\"1\""), r#"{"signing_alg":"RS256"}"#).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(
        env.admin(Method::GET, path, None).await.json()["signing_alg"],
        "PS256"
    );

    // Without If-Match it applies; the same value again changes nothing (no new revision).
    let r = patch_tenant(&env, "acme", None, r#"{"signing_alg":"RS256"}"#).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["revision"], 3);
    let r = patch_tenant(&env, "acme", Some("\"3\""), r#"{"signing_alg":"RS256"}"#).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["revision"], 3);
    // A modified copy of a GET response is a valid patch.
    let mut copy = env.admin(Method::GET, path, None).await.json();
    copy["signing_alg"] = json!("EdDSA");
    let r = patch_tenant(&env, "acme", Some("\"3\""), &copy.to_string()).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["signing_alg"], "EdDSA");
    // null resets to the default, as at creation
    let r = patch_tenant(&env, "acme", None, r#"{"signing_alg":null}"#).await;
    assert_eq!(r.json()["signing_alg"], "ES256");
    assert_eq!(r.json()["revision"], 5);

    // Each change is in the tenant's audit log, with the old and the new algorithm.
    let records = env
        .admin(
            Method::GET,
            "/admin/v1/tenants/acme/audit?action=tenant.update",
            None,
        )
        .await
        .json();
    let items = records["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{records}");
    let changes: Vec<(String, String)> = items
        .iter()
        .map(|r| {
            assert_eq!(r["subject"], "acme");
            assert_eq!(r["actor"], env.admin_id);
            (
                r["detail"]["previous_signing_alg"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                r["detail"]["signing_alg"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for change in [
        ("ES256", "PS256"),
        ("PS256", "RS256"),
        ("RS256", "EdDSA"),
        ("EdDSA", "ES256"),
    ] {
        assert!(
            changes.contains(&(change.0.into(), change.1.into())),
            "{change:?} in {changes:?}"
        );
    }
}

#[tokio::test]
async fn patching_a_tenant_refuses_bad_algorithms_and_read_only_fields() {
    let env = Env::new().await;
    env.create_tenant("acme").await;
    // Algorithms outside the allow-list are invalid values (422), like at creation.
    for body in [
        r#"{"signing_alg":"HS256"}"#,
        r#"{"signing_alg":"none"}"#,
        r#"{"signing_alg":"rs256"}"#,
        r#"{"signing_alg":"RS512"}"#,
        r#"{"signing_alg":42}"#,
        r#"{"signing_alg":["RS256"]}"#,
    ] {
        let r = patch_tenant(&env, "acme", None, body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert!(
            r.json()["detail"]
                .as_str()
                .unwrap()
                .contains("ES256, EdDSA, RS256, PS256"),
            "{body}: {}",
            r.json()
        );
    }
    for (alg, status) in [("HS256", 422), ("none", 422), ("PS256", 201)] {
        let r = env
            .admin(
                Method::POST,
                "/admin/v1/tenants",
                Some(json!({"name": format!("new-{}", alg.to_lowercase()), "signing_alg": alg})),
            )
            .await;
        assert_eq!(r.status.as_u16(), status, "create with {alg}");
    }
    // Read-only fields may not change; the body must be a JSON object.
    for body in [
        r#"{"name":"other"}"#,
        r#"{"revision":7}"#,
        r#"{"issuer":"https://evil.example/t/acme"}"#,
    ] {
        let r = patch_tenant(&env, "acme", None, body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    for body in [r#""PS256""#, "[]", "{"] {
        let r = patch_tenant(&env, "acme", None, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
    }
    let shown = env.admin(Method::GET, "/admin/v1/tenants/acme", None).await;
    assert_eq!(shown.json()["signing_alg"], "ES256");
    assert_eq!(shown.json()["revision"], 1);
    // Unknown and deleted tenants are 404.
    let r = patch_tenant(&env, "nope", None, r#"{"signing_alg":"PS256"}"#).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        env.admin(Method::DELETE, "/admin/v1/tenants/acme", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = patch_tenant(&env, "acme", None, r#"{"signing_alg":"PS256"}"#).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_tenant_scoped_admin_may_change_its_tenant_only() {
    let env = Env::new().await;
    env.create_tenant("acme").await;
    env.create_tenant("beta").await;
    let aud = format!("{}/admin", crate::harness::PUBLIC_URL);
    let (id, secret) = env
        .account("system", "acme-admin", &aud, &["admin:acme"])
        .await;
    let form = format!("grant_type=client_credentials&resource={aud}&scope=admin:acme");
    let token = env
        .token_request("system", Some((&id, &secret)), &form)
        .await
        .access_token();
    let patch = |tenant: &str| {
        Request::builder()
            .method(Method::PATCH)
            .uri(format!("/admin/v1/tenants/{tenant}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/merge-patch+json")
            .body(Body::from(r#"{"signing_alg":"RS256"}"#))
            .unwrap()
    };
    let r = env.send(patch("acme")).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["signing_alg"], "RS256");
    assert_eq!(env.send(patch("beta")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        env.send(patch("system")).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_openapi_document_lists_every_algorithm_and_the_tenant_patch() {
    let env = Env::new().await;
    let doc = env.get("/admin/v1/openapi.json").await.json();
    let op = &doc["paths"]["/admin/v1/tenants/{tenant}"]["patch"];
    assert_eq!(op["operationId"], "updateTenant");
    assert!(op["responses"]["412"].is_object());
    let all = json!(["ES256", "EdDSA", "RS256", "PS256"]);
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["Tenant"]["properties"]["signing_alg"]["enum"], all);
    assert_eq!(schemas["SigningKeyInfo"]["properties"]["alg"]["enum"], all);
    for s in ["CreateTenant", "TenantPatch"] {
        assert_eq!(
            schemas[s]["properties"]["signing_alg"]["enum"],
            json!(["ES256", "EdDSA", "RS256", "PS256", null]),
            "{s}"
        );
    }
}
