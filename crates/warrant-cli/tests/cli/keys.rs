//! `warrant key rotate | list | revoke` and `warrant tenant update --key-rotation-period`
//! against a real `warrant serve` (docs/key-rotation.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;

use super::{
    Server, create_sa_with_scope, describe, get_json, request_token, stdout, verify_independently,
};

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn state_of(keys: &Value, kid: &str) -> String {
    keys.as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("no key {kid} in {keys}"))["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn published(issuer: &str) -> Vec<String> {
    let (status, jwks) = get_json(&format!("{issuer}/jwks")).await;
    assert_eq!(status, 200);
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotate_list_and_revoke() {
    let server = Server::start().await;
    let worker = create_sa_with_scope(|args| server.admin_json(args), "worker", "deploy");
    let issuer = worker["issuer"].as_str().unwrap().to_owned();
    let endpoint = worker["token_endpoint"].as_str().unwrap().to_owned();
    let id = worker["id"].as_str().unwrap().to_owned();
    let secret = worker["secret"]["value"].as_str().unwrap().to_owned();
    let token = || async {
        let (status, body) = request_token(&endpoint, &id, &secret).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    };
    let first_token = token().await;
    let first = kid_of(&first_token);

    // Normal rotation: published now, not yet signing; again: the same waiting key.
    let next = server.admin_json(&["key", "rotate", "--tenant", "default"]);
    assert_eq!(next["state"], "next", "{next}");
    let next_kid = next["kid"].as_str().unwrap().to_owned();
    let again = server.admin_json(&["key", "rotate", "--tenant", "default"]);
    assert_eq!(again["kid"], next_kid.as_str());
    assert!(published(&issuer).await.contains(&next_kid));
    assert_eq!(
        kid_of(&token().await),
        first,
        "the waiting key does not sign yet"
    );
    let keys = server.admin_json(&["key", "list", "--tenant", "default"]);
    assert_eq!(state_of(&keys, &first), "active");
    assert_eq!(state_of(&keys, &next_kid), "next");
    assert!(keys[0]["activates_at"].is_string() && keys[1]["retires_at"].is_string());
    let table = stdout(&server.admin(&["key", "list", "--tenant", "default"]));
    for word in [
        "KID", "STATE", "RETIRES", "REMOVED", "next", "active", &next_kid,
    ] {
        assert!(table.contains(word), "{word} in:\n{table}");
    }

    // --now: a new key signs at once (the waiting one is dropped); old tokens still verify.
    let now = server.admin_json(&["key", "rotate", "--tenant", "default", "--now"]);
    assert_eq!(now["state"], "active", "{now}");
    let now_kid = now["kid"].as_str().unwrap().to_owned();
    let fresh = token().await;
    assert_eq!(kid_of(&fresh), now_kid);
    verify_independently(&fresh, &issuer).await;
    verify_independently(&first_token, &issuer).await;
    let keys = server.admin_json(&["key", "list", "--tenant", "default"]);
    assert_eq!(state_of(&keys, &first), "retired");
    assert_eq!(state_of(&keys, &next_kid), "removed");

    // Revoke the signing key: it leaves the JWKS at once and a replacement signs.
    let out = server.admin(&["key", "revoke", &now_kid, "--tenant", "default"]);
    assert!(
        stdout(&out).contains(&format!("revoked key {now_kid}")),
        "{}",
        describe(&out)
    );
    let jwks = published(&issuer).await;
    assert!(!jwks.contains(&now_kid), "{jwks:?}");
    let replacement = kid_of(&token().await);
    assert!(![first.clone(), next_kid.clone(), now_kid.clone()].contains(&replacement));
    assert!(jwks.contains(&replacement) && jwks.contains(&first));

    // A kid is base64url and may start with `-`: it is still taken as the kid.
    let o = server.admin_status(&["key", "revoke", "-nope", "--tenant", "default"]);
    assert!(describe(&o).contains("no key -nope"), "{}", describe(&o));

    // An unknown kid is refused with the server's reason.
    let o = server.admin_status(&["key", "revoke", "nope", "--tenant", "default"]);
    assert!(!o.status.success());
    assert!(describe(&o).contains("no key nope"), "{}", describe(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_update_sets_and_clears_the_key_rotation_period() {
    let server = Server::start().await;
    let t = server.admin_json(&[
        "tenant",
        "update",
        "default",
        "--key-rotation-period",
        "30d",
    ]);
    assert_eq!(t["key_rotation_period_seconds"], 30 * 86_400, "{t}");
    assert_eq!(t["signing_alg"], "ES256");
    let shown = stdout(&server.admin(&["tenant", "show", "default"]));
    assert!(shown.contains("30d"), "{shown}");
    // Shorter than 2 × (jwks_max_age + 60 s): refused.
    let o = server.admin_status(&["tenant", "update", "default", "--key-rotation-period", "5m"]);
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(
        describe(&o).contains("key_rotation_period"),
        "{}",
        describe(&o)
    );
    let t = server.admin_json(&[
        "tenant",
        "update",
        "default",
        "--key-rotation-period",
        "off",
    ]);
    assert_eq!(t["key_rotation_period_seconds"], Value::Null, "{t}");
    // Nothing to change: clap refuses.
    let o = server.admin_status(&["tenant", "update", "default"]);
    assert!(!o.status.success());
}
