//! `warrant revoke` against a real `warrant serve`: by `jti` and by account, seen through
//! introspection (RFC 7662) and the revocation feed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;

use super::{AUDIENCE, Server, b64std, describe, form_urlencode, request_token, stderr, stdout};

/// `POST {issuer}/introspect` with client_secret_basic; the JSON body.
async fn introspect(issuer: &str, client: (&str, &str), token: &str) -> Value {
    let basic = b64std(format!(
        "{}:{}",
        form_urlencode(client.0),
        form_urlencode(client.1)
    ));
    let r = reqwest::Client::new()
        .post(format!("{issuer}/introspect"))
        .header("authorization", format!("Basic {basic}"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_by_jti_and_by_account() {
    let server = Server::start().await;
    let worker = server.admin_json(&[
        "sa",
        "create",
        "worker",
        "--tenant",
        "default",
        "--audience",
        AUDIENCE,
        "--scope",
        "deploy",
    ]);
    let api = server.admin_json(&[
        "sa",
        "create",
        "api",
        "--tenant",
        "default",
        "--audience",
        AUDIENCE,
        "--scope",
        "x",
    ]);
    let issuer = worker["issuer"].as_str().unwrap().to_owned();
    let endpoint = worker["token_endpoint"].as_str().unwrap();
    let worker_id = worker["id"].as_str().unwrap();
    let worker_secret = worker["secret"]["value"].as_str().unwrap();
    let api_creds = (
        api["id"].as_str().unwrap(),
        api["secret"]["value"].as_str().unwrap(),
    );
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let (status, body) = request_token(endpoint, worker_id, worker_secret).await;
        assert_eq!(status, 200, "{body}");
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
    }
    let first = introspect(&issuer, api_creds, &tokens[0]).await;
    assert_eq!(first["active"], true, "{first}");
    let jti = first["jti"].as_str().unwrap();
    let exp = first["exp"].as_i64().unwrap();

    // By jti, with the token's exp.
    let out = server.admin_json(&[
        "revoke",
        "--tenant",
        "default",
        "--jti",
        jti,
        "--exp",
        &exp.to_string(),
    ]);
    assert_eq!(out["tenant"], "default");
    assert_eq!(out["type"], "jti");
    assert_eq!(out["jti"], jti);
    assert_eq!(out["exp"], exp);
    assert!(out["cursor"].is_string(), "{out}");
    assert_eq!(
        introspect(&issuer, api_creds, &tokens[0]).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(
        introspect(&issuer, api_creds, &tokens[1]).await["active"],
        true,
        "only that token"
    );

    // By account name, text output.
    let o = server.admin(&["revoke", "--tenant", "default", "--account", "worker"]);
    assert!(
        stdout(&o).contains(&format!("revoked every token of worker ({worker_id})")),
        "{}",
        describe(&o)
    );
    assert_eq!(
        introspect(&issuer, api_creds, &tokens[1]).await,
        serde_json::json!({"active": false})
    );

    // Verifiers see both in the feed.
    let basic = b64std(format!("{}:{}", api_creds.0, form_urlencode(api_creds.1)));
    let feed: Value = reqwest::Client::new()
        .get(format!("{issuer}/revocations"))
        .header("authorization", format!("Basic {basic}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = feed["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{feed}");
    assert_eq!(entries[0]["jti"], jti);
    assert_eq!(entries[1]["type"], "subject");
    assert_eq!(entries[1]["sub"], worker_id);

    // Refusals: an unknown account, and flags that do not go together.
    let o = server.admin_status(&["revoke", "--tenant", "default", "--account", "nobody"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(
        stderr(&o).contains("cannot find account nobody"),
        "{}",
        describe(&o)
    );
    for args in [
        &["revoke", "--tenant", "default"][..],
        &[
            "revoke",
            "--tenant",
            "default",
            "--jti",
            "j",
            "--account",
            "worker",
        ],
        &[
            "revoke",
            "--tenant",
            "default",
            "--account",
            "worker",
            "--exp",
            "5",
        ],
        &[
            "revoke", "--tenant", "default", "--jti", "j", "--exp", "soon",
        ],
    ] {
        let o = server.admin_status(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", describe(&o));
    }
}
