//! `warrant revoke` against a real `warrant serve`: by `jti` and by account, seen through
//! introspection (RFC 7662) and the revocation feed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;

use super::{
    Server, b64std, create_sa_with_scope, describe, form_urlencode, json_of, request_token, stderr,
    stdout,
};

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
    let worker = create_sa_with_scope(|args| server.admin_json(args), "worker", "deploy");
    let api = create_sa_with_scope(|args| server.admin_json(args), "api", "x");
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
    let feed: Value = json_of(
        reqwest::Client::new()
            .get(format!("{issuer}/revocations"))
            .header("authorization", format!("Basic {basic}")),
    )
    .await;
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

/// Reads SSE events from a streaming response until one whose data contains `needle`, or
/// `within` passes; returns the event's `id` and `data`.
async fn next_event_with(
    resp: &mut reqwest::Response,
    buf: &mut String,
    needle: &str,
    within: std::time::Duration,
) -> Option<(String, Value)> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let mut id = None;
            let mut data = None;
            for line in event.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(v.to_owned());
                }
            }
            if let (Some(id), Some(data)) = (id, data)
                && data.contains(needle)
            {
                return Some((id, serde_json::from_str(&data).unwrap()));
            }
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk()).await.ok()?;
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()?));
    }
}

/// Revocations made at one replica reach a verifier streaming from another, and that replica's
/// introspection, within a second (PostgreSQL LISTEN/NOTIFY).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_at_one_replica_reaches_the_others_within_a_second() {
    let cluster = super::Cluster::start(2).await;
    let (a, b) = (0, 1);
    let worker = create_sa_with_scope(|args| cluster.admin_json(a, args), "worker", "deploy");
    let verifier = create_sa_with_scope(|args| cluster.admin_json(a, args), "verifier", "x");
    let worker_id = worker["id"].as_str().unwrap();
    let worker_secret = worker["secret"]["value"].as_str().unwrap();
    let v = (
        verifier["id"].as_str().unwrap(),
        verifier["secret"]["value"].as_str().unwrap(),
    );
    let issuer_b = format!("{}/t/default", cluster.replicas[b].url);

    // A token from A; B must know both accounts before the test starts.
    let (status, body) = request_token(
        &cluster.replicas[a].token_endpoint("default"),
        worker_id,
        worker_secret,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while introspect_status(&issuer_b, v, &token).await != Some(true) {
        assert!(
            std::time::Instant::now() < deadline,
            "B never learned the accounts{}",
            cluster.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // A verifier streams B's feed.
    let mut stream = reqwest::Client::new()
        .get(format!("{issuer_b}/revocations/stream"))
        .basic_auth(v.0, Some(v.1))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut buf = String::new();

    let jti = introspect(&issuer_b, v, &token).await["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = std::time::Instant::now();
    cluster.admin(a, &["revoke", "--tenant", "default", "--jti", &jti]);
    let event = next_event_with(
        &mut stream,
        &mut buf,
        &jti,
        std::time::Duration::from_secs(1),
    )
    .await;
    assert!(
        event.is_some(),
        "B's stream did not deliver A's jti revocation within a second of the command{}",
        cluster.logs()
    );
    assert_eq!(
        introspect(&issuer_b, v, &token).await,
        serde_json::json!({"active": false}),
        "B's introspection knows A's revocation"
    );

    // Disabling the account at A: a subject watermark at B's stream.
    cluster.admin(a, &["sa", "disable", "worker", "--tenant", "default"]);
    let event = next_event_with(
        &mut stream,
        &mut buf,
        worker_id,
        std::time::Duration::from_secs(1),
    )
    .await
    .unwrap_or_else(|| panic!("no watermark event at B{}", cluster.logs()));
    assert_eq!(event.1["type"], "subject");
    assert_eq!(event.1["sub"], worker_id);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the whole exchange is quick"
    );
}

async fn introspect_status(issuer: &str, client: (&str, &str), token: &str) -> Option<bool> {
    let r = reqwest::Client::new()
        .post(format!("{issuer}/introspect"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("token", token)])
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    r.json::<Value>().await.ok()?["active"].as_bool()
}
