//! The admin API: authentication, problem details, creation with Location, cursor lists, ETags
//! and If-Match, merge patches, grants, keys, the OpenAPI document, the last admin.

use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

use crate::harness::{Env, PUBLIC_URL};

#[tokio::test]
async fn requires_an_admin_token() {
    let env = Env::new().await;
    let r = env.get("/admin/v1/tenants").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    assert_eq!(r.json()["status"], 401);
    for bad in ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
        assert_eq!(
            env.admin_with(bad, Method::GET, "/admin/v1/tenants", None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    // an admin token for the wrong audience is refused
    let form = "grant_type=client_credentials&scope=admin".to_string();
    let t = env
        .token_request("system", Some((&env.admin_id, &env.admin_secret)), &form)
        .await
        .access_token();
    assert_eq!(
        env.admin_with(&t, Method::GET, "/admin/v1/tenants", None)
            .await
            .status,
        StatusCode::OK,
        "default audience is the admin API"
    );
    // an expired admin token is refused
    let t = env.admin_token().await;
    env.clock.advance_secs(601);
    assert_eq!(
        env.admin_with(&t, Method::GET, "/admin/v1/tenants", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // a bit-flipped one too
    let t = env.admin_token().await;
    let mut b = t.into_bytes();
    let n = b.len() - 3;
    b[n] = if b[n] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(b).unwrap();
    assert_eq!(
        env.admin_with(&flipped, Method::GET, "/admin/v1/tenants", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn create_returns_201_location_and_etag() {
    let env = Env::new().await;
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/default/service-accounts",
            Some(json!({"name": "api", "description": "the API"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let a = r.json();
    let id = a["id"].as_str().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/admin/v1/tenants/default/service-accounts/{id}").as_str())
    );
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(a["client_id"], id);
    assert_eq!(a["issuer"], format!("{PUBLIC_URL}/t/default"));
    assert_eq!(a["token_endpoint"], format!("{PUBLIC_URL}/t/default/token"));
    assert_eq!(a["default_lifetime_seconds"], 600);
    assert_eq!(a["max_lifetime_seconds"], 3600);
    assert_eq!(a["enabled"], true);
    assert!(a["created_at"].as_str().unwrap().ends_with('Z'));
    // by id and by name
    let by_name = env
        .admin(
            Method::GET,
            "/admin/v1/tenants/default/service-accounts/api",
            None,
        )
        .await;
    assert_eq!(by_name.json()["id"], id);
    // duplicate name → 409 problem
    let dup = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/default/service-accounts",
            Some(json!({"name": "api"})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.header("content-type"), Some("application/problem+json"));
    // bad names, unknown fields, bad JSON, wrong content type
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/default/service-accounts",
            Some(json!({"name": "Bad_Name"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/default/service-accounts",
            Some(json!({"name": "nul", "description": "a\u{0}b"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "control characters are refused, never a 5xx from a store"
    );
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/default/service-accounts",
            Some(json!({"name": "x", "colour": "red"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let token = env.admin_token().await;
    let r = env
        .send(
            Request::post("/admin/v1/tenants/default/service-accounts")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = env
        .send(
            Request::post("/admin/v1/tenants/default/service-accounts")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // unknown tenant and account
    assert_eq!(
        env.admin(Method::GET, "/admin/v1/tenants/nope/service-accounts", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        env.admin(
            Method::GET,
            "/admin/v1/tenants/default/service-accounts/ghost",
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        env.admin(Method::GET, "/admin/v1/nothing/here", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn lists_page_with_cursors() {
    let env = Env::new().await;
    for i in 0..5 {
        env.admin(
            Method::POST,
            "/admin/v1/tenants/default/service-accounts",
            Some(json!({"name": format!("svc-{i}")})),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/v1/tenants/default/service-accounts?limit=2&cursor={c}"),
            None => "/admin/v1/tenants/default/service-accounts?limit=2".into(),
        };
        let page = env.admin(Method::GET, &path, None).await.json();
        for it in page["items"].as_array().unwrap() {
            seen.push(it["name"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    // ids order the list; accounts created in one millisecond have random order among them
    seen.sort();
    assert_eq!(
        seen,
        ["svc-0", "svc-1", "svc-2", "svc-3", "svc-4"],
        "every account exactly once"
    );
    let r = env
        .admin(
            Method::GET,
            "/admin/v1/tenants/default/service-accounts?cursor=%%%",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let tenants = env
        .admin(Method::GET, "/admin/v1/tenants", None)
        .await
        .json();
    let names: Vec<&str> = tenants["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "system"]);
}

#[tokio::test]
async fn merge_patch_with_if_match() {
    let env = Env::new().await;
    env.admin(
        Method::POST,
        "/admin/v1/tenants/default/service-accounts",
        Some(json!({"name": "api", "claims": {"team": "a", "env": "prod"}})),
    )
    .await;
    let path = "/admin/v1/tenants/default/service-accounts/api";
    let token = env.admin_token().await;
    let patch = |if_match: Option<&str>, body: Value| {
        let mut req = Request::patch(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/merge-patch+json");
        if let Some(m) = if_match {
            req = req.header(header::IF_MATCH, m);
        }
        req.body(Body::from(body.to_string())).unwrap()
    };
    let r = env
        .send(patch(
            Some("\"1\""),
            json!({"description": "new", "claims": {"env": null, "tier": 1}}),
        ))
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("etag"), Some("\"2\""));
    let a = r.json();
    assert_eq!(a["description"], "new");
    assert_eq!(
        a["claims"],
        json!({"team": "a", "tier": 1}),
        "RFC 7396: null removes, others merge"
    );
    assert_eq!(a["revision"], 2);
    // a stale If-Match is 412 and changes nothing
    let r = env
        .send(patch(Some("\"1\""), json!({"description": "stale"})))
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        env.admin(Method::GET, path, None).await.json()["description"],
        "new"
    );
    // read-only fields cannot change
    let r = env
        .send(patch(None, json!({"id": "sa_01ARZ3NDEKTSV4RRFFQ69G5FAV"})))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = env.send(patch(None, json!({"enabled": "yes"}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = env.send(patch(None, json!(["not", "an", "object"]))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn grants_are_replaced_by_put() {
    let env = Env::new().await;
    let (id, secret) = env
        .account("default", "ci", "https://a.example", &["x"])
        .await;
    let path = "/admin/v1/tenants/default/service-accounts/ci/grants";
    let r = env.admin(Method::GET, path, None).await;
    assert_eq!(
        r.json(),
        json!([{"audience": "https://a.example", "scopes": ["x"]}])
    );
    let new = json!([{"audience": "https://a.example", "scopes": ["y", "z"]}, {"audience": "https://b.example", "scopes": ["q"]}]);
    let r = env.admin(Method::PUT, path, Some(new.clone())).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), new);
    // the token endpoint sees the change at once
    let r = env
        .token_request(
            "default",
            Some((&id, &secret)),
            "grant_type=client_credentials&scope=x",
        )
        .await;
    r.assert_oauth_error(400, "invalid_scope");
    let t = env
        .token_request(
            "default",
            Some((&id, &secret)),
            "grant_type=client_credentials&resource=https://b.example",
        )
        .await
        .access_token();
    assert_eq!(
        env.verify("default", &t, "https://b.example").await["scope"],
        "q"
    );
    // invalid grants
    for bad in [
        json!([{"audience": "nope", "scopes": []}]),
        json!([{"audience": "https://a.example", "scopes": ["\"q"]}]),
        json!([{"audience": "https://a.example"}, {"audience": "https://a.example"}]),
    ] {
        assert_eq!(
            env.admin(Method::PUT, path, Some(bad)).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}

#[tokio::test]
async fn the_last_admin_cannot_be_deleted_or_disabled() {
    let env = Env::new().await;
    let path = format!("/admin/v1/tenants/system/service-accounts/{}", env.admin_id);
    assert_eq!(
        env.admin(Method::DELETE, &path, None).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        env.admin(Method::PATCH, &path, Some(json!({"enabled": false})))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        env.admin(Method::PUT, &format!("{path}/grants"), Some(json!([])))
            .await
            .status,
        StatusCode::CONFLICT
    );
    // with a second admin, the first may go
    let aud = format!("{PUBLIC_URL}/admin");
    let r = env
        .admin(Method::POST, "/admin/v1/tenants/system/service-accounts", Some(json!({"name": "admin2", "default_audience": aud, "grants": [{"audience": aud, "scopes": ["admin"]}]})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        env.admin(Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn keys_and_openapi() {
    let env = Env::new().await;
    let r = env
        .admin(Method::GET, "/admin/v1/tenants/default/keys", None)
        .await;
    let keys = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["state"], "active");
    assert_eq!(keys[0]["alg"], "ES256");
    assert_eq!(keys[0]["kid"], env.jwks("default").await["keys"][0]["kid"]);
    assert!(keys[0].get("private_wrapped").is_none());

    let doc = env.get("/admin/v1/openapi.json").await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/admin/v1/tenants",
        "/admin/v1/tenants/{tenant}",
        "/admin/v1/tenants/{tenant}/keys",
        "/admin/v1/tenants/{tenant}/service-accounts",
        "/admin/v1/tenants/{tenant}/service-accounts/{account}",
        "/admin/v1/tenants/{tenant}/service-accounts/{account}/grants",
        "/admin/v1/tenants/{tenant}/service-accounts/{account}/secrets",
        "/admin/v1/tenants/{tenant}/service-accounts/{account}/secrets/{name}",
    ] {
        assert!(paths.contains_key(p), "OpenAPI documents {p}");
    }
}

#[tokio::test]
async fn tenants_can_be_created_listed_and_shown() {
    let env = Env::new().await;
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"name": "acme", "signing_alg": "EdDSA"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("location"), Some("/admin/v1/tenants/acme"));
    assert_eq!(r.json()["issuer"], format!("{PUBLIC_URL}/t/acme"));
    let jwks = env.jwks("acme").await;
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    // an EdDSA tenant issues tokens both verifiers accept
    let (id, secret) = env
        .account("acme", "svc", "https://a.example", &["x"])
        .await;
    let t = env
        .token_request(
            "acme",
            Some((&id, &secret)),
            "grant_type=client_credentials",
        )
        .await
        .access_token();
    env.verify("acme", &t, "https://a.example").await;
    assert_eq!(
        env.admin(Method::GET, "/admin/v1/tenants/acme", None)
            .await
            .json()["signing_alg"],
        "EdDSA"
    );
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"name": "x", "signing_alg": "HS256"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}
