//! `warrant api …` against a real `warrant serve`: register, list, show, update and delete an
//! API, and the grant rule seen from `sa create --scope` and `grant`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;

use super::{AUDIENCE, Server, create_sa_with_scope, describe, request_token, stderr, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_verbs_and_the_grant_rule() {
    let server = Server::start().await;
    let owner = create_sa_with_scope(|a| server.admin_json(a), "owner", "deploy:read");
    let owner_id = owner["id"].as_str().unwrap();

    // create (text and JSON), with the owner by name
    let o = server.admin(&[
        "api",
        "create",
        "deploy",
        "--tenant",
        "default",
        "--audience",
        AUDIENCE,
        "--scope",
        "deploy:read",
        "--scope",
        "deploy:write deploy:admin",
        "--owner",
        "owner",
        "--description",
        "the deploy API",
    ]);
    assert!(
        stdout(&o).contains("registered API deploy in tenant default"),
        "{}",
        describe(&o)
    );
    let shown = server.admin_json(&["api", "show", "deploy", "--tenant", "default"]);
    let id = shown["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("api_"), "{shown}");
    assert_eq!(shown["owner"], owner_id);
    assert_eq!(
        shown["scopes"],
        json!(["deploy:admin", "deploy:read", "deploy:write"])
    );
    assert_eq!(shown["description"], "the deploy API");
    // by id too, in text
    let o = server.admin(&["api", "show", &id, "--tenant", "default"]);
    assert!(
        stdout(&o).contains(AUDIENCE) && stdout(&o).contains(owner_id),
        "{}",
        describe(&o)
    );

    // a second API for the same audience: refused, with the server's reason
    let o = server.admin_status(&[
        "api",
        "create",
        "again",
        "--tenant",
        "default",
        "--audience",
        AUDIENCE,
        "--scope",
        "x",
        "--owner",
        "owner",
    ]);
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(stderr(&o).contains(AUDIENCE), "{}", describe(&o));

    // list
    let listed = server.admin_json(&["api", "list", "--tenant", "default"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["name"], "deploy");
    let o = server.admin(&["api", "list", "--tenant", "default"]);
    assert!(
        stdout(&o).contains("deploy") && stdout(&o).contains(&id),
        "{}",
        describe(&o)
    );

    // sa create --scope: an undefined scope is refused, a defined one works and gets tokens
    let o = server.admin_status(&[
        "sa",
        "create",
        "ci",
        "--tenant",
        "default",
        "--audience",
        AUDIENCE,
        "--scope",
        "deploy:nuke",
    ]);
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(
        stderr(&o).contains("deploy:nuke") && stderr(&o).contains("deploy"),
        "{}",
        describe(&o)
    );
    let ci = create_sa_with_scope(|a| server.admin_json(a), "ci", "deploy:write");
    let (status, body) = request_token(
        ci["token_endpoint"].as_str().unwrap(),
        ci["client_id"].as_str().unwrap(),
        ci["secret"]["value"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "deploy:write");

    // update: dropping a granted scope is refused; dropping an ungranted one works
    let o = server.admin_status(&[
        "api",
        "update",
        "deploy",
        "--tenant",
        "default",
        "--scope",
        "deploy:read",
    ]);
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(stderr(&o).contains("1 grant(s)"), "{}", describe(&o));
    let updated = server.admin_json(&[
        "api",
        "update",
        &id,
        "--tenant",
        "default",
        "--scope",
        "deploy:read deploy:write",
        "--owner",
        "ci",
        "--description",
        "",
    ]);
    assert_eq!(updated["scopes"], json!(["deploy:read", "deploy:write"]));
    assert_eq!(updated["owner"], ci["id"]);
    assert!(updated.get("description").is_none(), "{updated}");
    assert_eq!(updated["revision"], 2);
    let o = server.admin_status(&["api", "update", "deploy", "--tenant", "default"]);
    assert!(
        !o.status.success() && stderr(&o).contains("nothing to update"),
        "{}",
        describe(&o)
    );

    // the owner of an API cannot be deleted
    let o = server.admin_status(&["sa", "delete", "ci", "--tenant", "default"]);
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(stderr(&o).contains("owns the API"), "{}", describe(&o));

    // delete
    let o = server.admin_json(&["api", "delete", "deploy", "--tenant", "default"]);
    assert_eq!(o["deleted"], true);
    let o = server.admin_status(&["api", "show", "deploy", "--tenant", "default"]);
    assert!(!o.status.success(), "{}", describe(&o));
    let listed = server.admin_json(&["api", "list", "--tenant", "default"]);
    assert_eq!(listed, json!([]));
    // grants are no longer held to its scopes
    create_sa_with_scope(|a| server.admin_json(a), "free", "deploy:nuke");
}
