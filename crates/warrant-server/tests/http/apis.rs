//! Registered APIs (`/admin/v1/tenants/{t}/apis`) and the grant rule they impose: creation,
//! conflicts, paging, ETag/If-Match, merge patches, deletion, audit records, and grants on a
//! registered audience limited to its scopes on every path that writes grants.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Env, PUBLIC_URL, problem};

const APIS: &str = "/admin/v1/tenants/default/apis";
const DEPLOY: &str = "https://deploy.internal";

async fn register(env: &Env, body: Value) -> crate::harness::Resp {
    env.admin(Method::POST, APIS, Some(body)).await
}

#[tokio::test]
async fn create_show_by_id_and_name_with_etag_and_location() {
    let env = Env::new().await;
    let owner = env.plain_account("deployer").await;
    let r = register(
        &env,
        json!({"name": "deploy", "audience": DEPLOY, "scopes": ["deploy:write", "deploy:read"],
               "owner": "deployer", "description": "the deploy API"}),
    )
    .await;
    r.assert_status(StatusCode::CREATED);
    let a = r.json();
    let id = a["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("api_"), "{id}");
    assert_eq!(r.header("location").unwrap(), format!("{APIS}/{id}"));
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(a["owner"], owner.as_str(), "the owner is stored by id");
    assert_eq!(a["scopes"], json!(["deploy:read", "deploy:write"]));
    assert_eq!(a["tenant"], "default");
    assert_eq!(a["description"], "the deploy API");
    for path in [format!("{APIS}/{id}"), format!("{APIS}/deploy")] {
        let r = env.admin(Method::GET, &path, None).await;
        r.assert_status(StatusCode::OK);
        assert_eq!(r.header("etag"), Some("\"1\""));
        assert_eq!(r.json(), a);
    }
    let r = env.admin(Method::GET, &format!("{APIS}/nope"), None).await;
    problem(&r, StatusCode::NOT_FOUND);
    // Another tenant does not see it.
    env.create_tenant("acme").await;
    let r = env
        .admin(
            Method::GET,
            &format!("/admin/v1/tenants/acme/apis/{id}"),
            None,
        )
        .await;
    problem(&r, StatusCode::NOT_FOUND);
    // The change is audited like account changes.
    let r = env
        .admin(
            Method::GET,
            "/admin/v1/tenants/default/audit?action=api.create",
            None,
        )
        .await;
    r.assert_status(StatusCode::OK);
    let items = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["subject"], id.as_str());
}

#[tokio::test]
async fn invalid_registrations_are_refused() {
    let env = Env::new().await;
    env.plain_account("deployer").await;
    let base = json!({"name": "deploy", "audience": DEPLOY, "scopes": ["deploy:read"], "owner": "deployer"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    register(&env, base.clone())
        .await
        .assert_status(StatusCode::CREATED);
    // The same audience under another name, the same name for another audience.
    let d = problem(
        &register(&env, with("name", json!("deploy-2"))).await,
        StatusCode::CONFLICT,
    );
    assert!(d.contains(DEPLOY), "{d}");
    let d = problem(
        &register(&env, with("audience", json!("https://other.internal"))).await,
        StatusCode::CONFLICT,
    );
    assert!(d.contains("named deploy"), "{d}");
    // An unknown owner, by name or by id.
    let other = |b: Value| {
        let mut b = b;
        b["name"] = json!("other");
        b["audience"] = json!("https://other.internal");
        b
    };
    let d = problem(
        &register(&env, other(with("owner", json!("ghost")))).await,
        StatusCode::CONFLICT,
    );
    assert!(d.contains("owner") && d.contains("ghost"), "{d}");
    problem(
        &register(
            &env,
            other(with("owner", json!("sa_01JH5V6Q8Y3M2N4P6R8T0W2Y4A"))),
        )
        .await,
        StatusCode::CONFLICT,
    );
    // Malformed fields are 422; the admin audience cannot be registered.
    for (k, v) in [
        ("scopes", json!([])),
        ("scopes", json!(["bad\"scope"])),
        ("audience", json!("not a uri")),
        ("audience", json!(format!("{PUBLIC_URL}/admin"))),
        ("name", json!("Bad_Name")),
        ("owner", json!("Bad Owner")),
        ("description", json!("a\u{0}b")),
    ] {
        let mut bad = other(base.clone());
        bad[k] = v.clone();
        let r = register(&env, bad).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{k}: {v}");
        problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Unknown fields are refused.
    problem(
        &register(&env, other(with("extra", json!(1)))).await,
        StatusCode::BAD_REQUEST,
    );
}

#[tokio::test]
async fn list_pages_with_a_cursor() {
    let env = Env::new().await;
    env.plain_account("owner").await;
    for i in 0..5 {
        register(
            &env,
            json!({"name": format!("api-{i}"), "audience": format!("https://a{i}.internal"),
                   "scopes": ["s"], "owner": "owner"}),
        )
        .await
        .assert_status(StatusCode::CREATED);
        env.clock.advance_millis(2);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("{APIS}?limit=2"),
            Some(c) => format!("{APIS}?limit=2&cursor={c}"),
        };
        let r = env.admin(Method::GET, &path, None).await;
        r.assert_status(StatusCode::OK);
        let page = r.json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|a| a["name"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["api-0", "api-1", "api-2", "api-3", "api-4"]);
    let r = env
        .admin(Method::GET, &format!("{APIS}?cursor=%%%"), None)
        .await;
    problem(&r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn merge_patch_with_if_match_and_delete() {
    let env = Env::new().await;
    env.plain_account("owner").await;
    let platform = env.plain_account("platform").await;
    register(
        &env,
        json!({"name": "deploy", "audience": DEPLOY, "scopes": ["deploy:read"], "owner": "owner",
               "description": "old"}),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let path = format!("{APIS}/deploy");
    let patch = |m, body| env.admin_if_match(Method::PATCH, &path, m, Some(body));
    let r = patch(
        Some("\"1\""),
        json!({"scopes": ["deploy:read", "deploy:write"], "owner": "platform", "description": null}),
    )
    .await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.header("etag"), Some("\"2\""));
    let a = r.json();
    assert_eq!(a["scopes"], json!(["deploy:read", "deploy:write"]));
    assert_eq!(a["owner"], platform.as_str());
    assert!(a.get("description").is_none(), "null removes: {a}");
    // A stale If-Match is 412 and changes nothing.
    let r = patch(Some("\"1\""), json!({"description": "stale"})).await;
    problem(&r, StatusCode::PRECONDITION_FAILED);
    // Read-only fields cannot change; a GET body patched is accepted.
    let r = patch(None, json!({"audience": "https://elsewhere.internal"})).await;
    problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let mut copy = a.clone();
    copy["description"] = json!("from a copy");
    let r = patch(Some("\"2\""), copy).await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.json()["revision"], 3);
    // An unknown owner is refused.
    let r = patch(None, json!({"owner": "ghost"})).await;
    problem(&r, StatusCode::CONFLICT);
    // Delete with a stale If-Match is 412, then 204, then 404.
    let del = |m| env.admin_if_match(Method::DELETE, &path, m, None);
    problem(&del(Some("\"1\"")).await, StatusCode::PRECONDITION_FAILED);
    del(Some("\"3\""))
        .await
        .assert_status(StatusCode::NO_CONTENT);
    problem(&del(None).await, StatusCode::NOT_FOUND);
    // The name and audience are free again.
    register(
        &env,
        json!({"name": "deploy", "audience": DEPLOY, "scopes": ["x"], "owner": "owner"}),
    )
    .await
    .assert_status(StatusCode::CREATED);
}

/// Grants on a registered API name only its scopes, on every path that writes grants: account
/// creation, `PUT …/grants` and the account merge patch. Tokens keep working for granted scopes.
#[tokio::test]
async fn grants_on_a_registered_api_may_only_name_its_scopes() {
    let env = Env::new().await;
    env.plain_account("owner").await;
    let r = register(
        &env,
        json!({"name": "deploy", "audience": DEPLOY, "scopes": ["deploy:read", "deploy:write"],
               "owner": "owner"}),
    )
    .await;
    r.assert_status(StatusCode::CREATED);
    let api_id = r.json()["id"].as_str().unwrap().to_owned();

    // Creation with an undefined scope: 422 naming the scope and the API.
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/default/service-accounts",
            Some(json!({"name": "ci", "grants": [{"audience": DEPLOY, "scopes": ["deploy:read", "deploy:nuke"]}]})),
        )
        .await;
    let d = problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        d.contains("deploy:nuke") && d.contains("deploy") && d.contains(&api_id),
        "{d}"
    );

    // A defined scope is accepted, and a token for it is issued.
    let (id, secret) = env.account("default", "ci", DEPLOY, &["deploy:read"]).await;
    let form = format!("grant_type=client_credentials&resource={DEPLOY}&scope=deploy:read");
    let token = env
        .token_request("default", Some((&id, &secret)), &form)
        .await
        .access_token();
    let claims = env.verify("default", &token, DEPLOY).await;
    assert_eq!(claims["scope"], "deploy:read");

    // PUT grants: undefined refused (nothing changes), defined accepted.
    let grants = format!("/admin/v1/tenants/default/service-accounts/{id}/grants");
    let r = env
        .admin(
            Method::PUT,
            &grants,
            Some(json!([{"audience": DEPLOY, "scopes": ["deploy:admin"]}])),
        )
        .await;
    let d = problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(d.contains("deploy:admin"), "{d}");
    let r = env.admin(Method::GET, &grants, None).await;
    assert_eq!(
        r.json(),
        json!([{"audience": DEPLOY, "scopes": ["deploy:read"]}])
    );
    let r = env
        .admin(
            Method::PUT,
            &grants,
            Some(
                json!([{"audience": DEPLOY, "scopes": ["deploy:read deploy:write"]},
                        {"audience": "https://unregistered.internal", "scopes": ["anything"]}]),
            ),
        )
        .await;
    r.assert_status(StatusCode::OK);

    // The account merge patch is held to the same rule.
    let r = env
        .admin(
            Method::PATCH,
            &format!("/admin/v1/tenants/default/service-accounts/{id}"),
            Some(json!({"grants": [{"audience": DEPLOY, "scopes": ["other"]}]})),
        )
        .await;
    problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    // A change that leaves grants alone is not checked again.
    env.admin(
        Method::PATCH,
        &format!("/admin/v1/tenants/default/service-accounts/{id}"),
        Some(json!({"description": "ci runner"})),
    )
    .await
    .assert_status(StatusCode::OK);

    // Tokens still work for the granted scopes.
    let form = format!("grant_type=client_credentials&resource={DEPLOY}");
    let token = env
        .token_request("default", Some((&id, &secret)), &form)
        .await
        .access_token();
    let claims = env.verify("default", &token, DEPLOY).await;
    assert_eq!(claims["scope"], "deploy:read deploy:write");

    // Dropping a granted scope from the API: 409; dropping an ungranted one is fine once
    // nobody holds it.
    let api = format!("{APIS}/deploy");
    let r = env
        .admin(
            Method::PATCH,
            &api,
            Some(json!({"scopes": ["deploy:read"]})),
        )
        .await;
    let d = problem(&r, StatusCode::CONFLICT);
    assert!(
        d.starts_with("1 grant(s)") && d.contains("deploy:write"),
        "{d}"
    );
    env.admin(
        Method::PUT,
        &grants,
        Some(json!([{"audience": DEPLOY, "scopes": ["deploy:read"]}])),
    )
    .await
    .assert_status(StatusCode::OK);
    env.admin(
        Method::PATCH,
        &api,
        Some(json!({"scopes": ["deploy:read"]})),
    )
    .await
    .assert_status(StatusCode::OK);

    // Deleting the API leaves grants as they are, and they are no longer held to its scopes.
    env.admin(Method::DELETE, &api, None)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    env.admin(
        Method::PUT,
        &grants,
        Some(json!([{"audience": DEPLOY, "scopes": ["deploy:anything"]}])),
    )
    .await
    .assert_status(StatusCode::OK);
}

#[tokio::test]
async fn registering_over_conflicting_grants_is_refused_with_their_count() {
    let env = Env::new().await;
    env.plain_account("owner").await;
    env.account("default", "a", DEPLOY, &["deploy:read", "deploy:nuke"])
        .await;
    env.account("default", "b", DEPLOY, &["deploy:other"]).await;
    env.account("default", "c", DEPLOY, &["deploy:read"]).await;
    let body =
        json!({"name": "deploy", "audience": DEPLOY, "scopes": ["deploy:read"], "owner": "owner"});
    let d = problem(&register(&env, body.clone()).await, StatusCode::CONFLICT);
    assert!(d.starts_with("2 grant(s)"), "{d}");
    // Defining every scope already granted, it registers.
    let mut wider = body.clone();
    wider["scopes"] = json!(["deploy:read", "deploy:nuke", "deploy:other"]);
    register(&env, wider)
        .await
        .assert_status(StatusCode::CREATED);
}

#[tokio::test]
async fn an_account_owning_apis_cannot_be_deleted() {
    let env = Env::new().await;
    env.plain_account("owner").await;
    env.plain_account("next").await;
    register(
        &env,
        json!({"name": "deploy", "audience": DEPLOY, "scopes": ["s"], "owner": "owner"}),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let owner = "/admin/v1/tenants/default/service-accounts/owner";
    let d = problem(
        &env.admin(Method::DELETE, owner, None).await,
        StatusCode::CONFLICT,
    );
    assert!(d.contains("deploy"), "{d}");
    env.admin(
        Method::PATCH,
        &format!("{APIS}/deploy"),
        Some(json!({"owner": "next"})),
    )
    .await
    .assert_status(StatusCode::OK);
    env.admin(Method::DELETE, owner, None)
        .await
        .assert_status(StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_openapi_document_describes_apis() {
    let env = Env::new().await;
    let doc = env.get("/admin/v1/openapi.json").await.json();
    let paths = doc["paths"].as_object().unwrap();
    let coll = &paths["/admin/v1/tenants/{tenant}/apis"];
    assert_eq!(coll["get"]["operationId"], "listApis");
    assert_eq!(coll["post"]["operationId"], "createApi");
    let one = &paths["/admin/v1/tenants/{tenant}/apis/{api}"];
    for (m, id) in [
        ("get", "getApi"),
        ("patch", "updateApi"),
        ("delete", "deleteApi"),
    ] {
        assert_eq!(one[m]["operationId"], id);
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in ["Api", "CreateApi", "ApiPatch", "ApiPage"] {
        assert!(schemas.contains_key(s), "schema {s}");
    }
    // Every $ref resolves.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/").skip(1) {
        let r = &part[..part.find('"').unwrap()];
        let mut node = &doc["components"];
        for seg in r.split('/') {
            node = &node[seg];
        }
        assert!(!node.is_null(), "unresolved $ref {r}");
    }
}
