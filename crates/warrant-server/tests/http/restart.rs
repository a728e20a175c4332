//! State survives a restart: same keys, same accounts, no second admin.

use std::sync::Arc;

use http::StatusCode;
use warrant_core::{MasterKey, Warrant};
use warrant_server::{AppState, Limits, TrustedProxies};
use warrant_store_sqlite::SqliteStore;

use crate::harness::{Env, core_config};

#[tokio::test]
async fn restart_keeps_accounts_keys_and_admin() {
    let env = Env::new().await;
    let (id, secret) = env
        .account("default", "ci", "https://a.example", &["x"])
        .await;
    let before = env
        .token_request(
            "default",
            Some((&id, &secret)),
            "grant_type=client_credentials",
        )
        .await
        .access_token();
    let jwks = env.jwks("default").await;
    env.store.close().await;

    let store = SqliteStore::open(&env.dir.path().join("warrant.db"))
        .await
        .unwrap();
    let (warrant, outcome) = Warrant::open(
        Arc::new(store),
        env.clock.clone(),
        MasterKey::parse(&env.master_text).unwrap(),
        core_config(3600),
    )
    .await
    .unwrap();
    assert!(
        outcome.admin_credentials.is_none(),
        "the admin is created once"
    );
    let app = warrant_server::app(AppState::new(
        Arc::new(warrant),
        Limits::unlimited(),
        TrustedProxies::default(),
    ));
    let env2 = Env { app, ..env };
    assert_eq!(env2.jwks("default").await, jwks);
    let after = env2
        .token_request(
            "default",
            Some((&id, &secret)),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(after.status, StatusCode::OK);
    env2.verify("default", &before, "https://a.example").await;
    assert_eq!(
        env2.admin(
            http::Method::GET,
            "/admin/v1/tenants/default/service-accounts/ci",
            None
        )
        .await
        .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_different_master_key_is_refused() {
    let env = Env::new().await;
    env.store.close().await;
    let store = SqliteStore::open(&env.dir.path().join("warrant.db"))
        .await
        .unwrap();
    let (other, _) = MasterKey::generate().unwrap();
    let err = Warrant::open(Arc::new(store), env.clock.clone(), other, core_config(3600))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("master key"), "{err}");
}

#[tokio::test]
async fn an_admin_left_without_a_secret_gets_a_new_one_at_start() {
    let env = Env::new().await;
    // the operator revokes the last admin secret: nobody can administer any more
    let path = format!(
        "/admin/v1/tenants/system/service-accounts/{}/secrets/initial",
        env.admin_id
    );
    assert_eq!(
        env.admin(http::Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );
    let form = format!(
        "grant_type=client_credentials&resource={}/admin&scope=admin",
        crate::harness::PUBLIC_URL
    );
    env.token_request("system", Some((&env.admin_id, &env.admin_secret)), &form)
        .await
        .assert_oauth_error(401, "invalid_client");
    env.store.close().await;

    let store = SqliteStore::open(&env.dir.path().join("warrant.db"))
        .await
        .unwrap();
    let (warrant, outcome) = Warrant::open(
        Arc::new(store),
        env.clock.clone(),
        MasterKey::parse(&env.master_text).unwrap(),
        core_config(3600),
    )
    .await
    .unwrap();
    let (id, secret) = outcome
        .admin_credentials
        .expect("a new admin secret is issued");
    assert_eq!(
        id.to_string(),
        env.admin_id,
        "the same admin account, not a second one"
    );
    let app = warrant_server::app(AppState::new(
        Arc::new(warrant),
        Limits::unlimited(),
        TrustedProxies::default(),
    ));
    let env2 = Env {
        app,
        admin_secret: secret.expose().to_owned(),
        ..env
    };
    let token = env2.admin_token().await;
    let r = env2
        .admin_with(&token, http::Method::GET, "/admin/v1/tenants", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
}
