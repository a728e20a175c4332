//! Secret rotation with overlap, expiry on the injected clock, disable/delete, tenant isolation.

use http::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Env, PUBLIC_URL};

const AUD: &str = "https://deploy.internal";
const FORM: &str = "grant_type=client_credentials";

#[tokio::test]
async fn rotation_overlaps_then_the_old_secret_stops_at_once() {
    let env = Env::new().await;
    let (id, initial) = env.account("default", "ci", AUD, &["deploy"]).await;
    let next = env.add_secret("default", "ci", "next").await;
    assert_eq!(
        env.token_request("default", Some((&id, &initial)), FORM)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        env.token_request("default", Some((&id, &next)), FORM)
            .await
            .status,
        StatusCode::OK
    );
    let r = env
        .admin(
            Method::DELETE,
            "/admin/v1/tenants/default/service-accounts/ci/secrets/initial",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    env.token_request("default", Some((&id, &initial)), FORM)
        .await
        .assert_oauth_error(401, "invalid_client");
    assert_eq!(
        env.token_request("default", Some((&id, &next)), FORM)
            .await
            .status,
        StatusCode::OK
    );
    // revoking again is a 404 problem
    let r = env
        .admin(
            Method::DELETE,
            "/admin/v1/tenants/default/service-accounts/ci/secrets/initial",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // the list shows the live secret with its last use
    let r = env
        .admin(
            Method::GET,
            "/admin/v1/tenants/default/service-accounts/ci/secrets",
            None,
        )
        .await;
    let items = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], "next");
    assert!(items[0]["last_used_at"].is_string());
    assert!(
        items[0].get("value").is_none(),
        "a secret's value is shown only at creation"
    );
}

#[tokio::test]
async fn secrets_expire_on_the_clock() {
    let env = Env::new().await;
    let (id, _) = env.account("default", "ci", AUD, &["deploy"]).await;
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/default/service-accounts/ci/secrets",
            Some(json!({"name": "short", "expires_in_seconds": 60})),
        )
        .await;
    let short = r.json()["value"].as_str().unwrap().to_owned();
    assert!(r.json()["expires_at"].is_string());
    assert_eq!(
        env.token_request("default", Some((&id, &short)), FORM)
            .await
            .status,
        StatusCode::OK
    );
    env.clock.advance_secs(59);
    assert_eq!(
        env.token_request("default", Some((&id, &short)), FORM)
            .await
            .status,
        StatusCode::OK
    );
    env.clock.advance_secs(1);
    env.token_request("default", Some((&id, &short)), FORM)
        .await
        .assert_oauth_error(401, "invalid_client");
    // an expiry in the past is refused when written
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/default/service-accounts/ci/secrets",
            Some(json!({"name": "past", "expires_at": "2001-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn disabled_and_deleted_accounts_cannot_authenticate() {
    let env = Env::new().await;
    let (id, secret) = env.account("default", "ci", AUD, &["deploy"]).await;
    let path = format!("/admin/v1/tenants/default/service-accounts/{id}");
    let r = env
        .admin(Method::PATCH, &path, Some(json!({"enabled": false})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["enabled"], false);
    env.token_request("default", Some((&id, &secret)), FORM)
        .await
        .assert_oauth_error(401, "invalid_client");
    env.admin(Method::PATCH, &path, Some(json!({"enabled": true})))
        .await;
    // Disabling set a watermark: its second issues nothing (tests/http/revocation.rs).
    env.clock.advance_secs(1);
    assert_eq!(
        env.token_request("default", Some((&id, &secret)), FORM)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        env.admin(Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );
    env.token_request("default", Some((&id, &secret)), FORM)
        .await
        .assert_oauth_error(401, "invalid_client");
    assert_eq!(
        env.admin(Method::GET, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    // the name can be reused, the id never is
    let (id2, _) = env.account("default", "ci", AUD, &["deploy"]).await;
    assert_ne!(id, id2);
}

#[tokio::test]
async fn tenants_are_isolated_both_ways() {
    let env = Env::new().await;
    env.create_tenant("acme").await;
    let (d_id, d_secret) = env.account("default", "svc", AUD, &["deploy"]).await;
    let (a_id, a_secret) = env.account("acme", "svc", AUD, &["deploy"]).await;
    // each credential works at home and nowhere else
    assert_eq!(
        env.token_request("default", Some((&d_id, &d_secret)), FORM)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        env.token_request("acme", Some((&a_id, &a_secret)), FORM)
            .await
            .status,
        StatusCode::OK
    );
    env.token_request("acme", Some((&d_id, &d_secret)), FORM)
        .await
        .assert_oauth_error(401, "invalid_client");
    env.token_request("default", Some((&a_id, &a_secret)), FORM)
        .await
        .assert_oauth_error(401, "invalid_client");
    env.token_request("system", Some((&d_id, &d_secret)), FORM)
        .await
        .assert_oauth_error(401, "invalid_client");
    // a token of one tenant does not verify with another tenant's keys
    let t = env
        .token_request("acme", Some((&a_id, &a_secret)), FORM)
        .await
        .access_token();
    let default_jwks = env.jwks("default").await;
    assert!(!crate::harness::independent::try_jsonwebtoken(
        &t,
        &default_jwks
    ));
    assert_ne!(env.jwks("acme").await, default_jwks);
    // a workload token is worthless at the admin API, even the admin tenant's own workloads
    let r = env
        .admin_with(&t, Method::GET, "/admin/v1/tenants", None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // an admin token scoped to acme cannot touch default or system
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/system/service-accounts",
            Some(json!({"name": "acme-admin", "default_audience": format!("{PUBLIC_URL}/admin"), "grants": [{"audience": format!("{PUBLIC_URL}/admin"), "scopes": ["admin:acme"]}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let scoped_id = r.json()["id"].as_str().unwrap().to_owned();
    let scoped_secret = env.add_secret("system", &scoped_id, "s").await;
    let form =
        format!("grant_type=client_credentials&resource={PUBLIC_URL}/admin&scope=admin:acme");
    let scoped = env
        .token_request("system", Some((&scoped_id, &scoped_secret)), &form)
        .await
        .access_token();
    assert_eq!(
        env.admin_with(
            &scoped,
            Method::GET,
            "/admin/v1/tenants/acme/service-accounts",
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        env.admin_with(
            &scoped,
            Method::GET,
            "/admin/v1/tenants/default/service-accounts",
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        env.admin_with(
            &scoped,
            Method::GET,
            "/admin/v1/tenants/system/service-accounts",
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        env.admin_with(
            &scoped,
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"name": "x"}))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let listed = env
        .admin_with(&scoped, Method::GET, "/admin/v1/tenants", None)
        .await
        .json();
    let names: Vec<_> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["acme"]);
    // admin:system can never be granted
    let r = env
        .admin(
            Method::PUT,
            &format!("/admin/v1/tenants/system/service-accounts/{scoped_id}/grants"),
            Some(json!([{"audience": format!("{PUBLIC_URL}/admin"), "scopes": ["admin:system"]}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn deleting_a_tenant_stops_it_and_its_name_is_never_reused() {
    let env = Env::new().await;
    env.create_tenant("acme").await;
    let (id, secret) = env.account("acme", "svc", AUD, &["deploy"]).await;
    assert_eq!(
        env.admin(Method::DELETE, "/admin/v1/tenants/acme", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    env.token_request("acme", Some((&id, &secret)), FORM)
        .await
        .assert_oauth_error(404, "invalid_request");
    assert_eq!(env.get("/t/acme/jwks").await.status, StatusCode::NOT_FOUND);
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"name": "acme"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        env.admin(Method::DELETE, "/admin/v1/tenants/system", None)
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        env.admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"name": "system"}))
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
}
