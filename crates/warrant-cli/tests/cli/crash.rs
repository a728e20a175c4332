//! Durability of the audit log: no token is returned before its record is committed, so a
//! server killed with SIGKILL while clients fetch tokens has a record for every token any
//! client received.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use super::{AUDIENCE, Server, request_token};

fn jti_of(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: Value = serde_json::from_slice(&bytes).unwrap();
    claims["jti"].as_str().unwrap().to_owned()
}

/// An admin token from the server's credentials file.
async fn admin_token(server: &Server) -> String {
    let creds: Value =
        serde_json::from_str(&std::fs::read_to_string(server.credentials()).unwrap()).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/t/system/token", server.url))
        .basic_auth(
            creds["client_id"].as_str().unwrap(),
            Some(creds["client_secret"].as_str().unwrap()),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", &format!("{}/admin", server.url)),
            ("scope", "admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Every `jti` of the tenant's `token.issue` records for `subject`, through the admin API.
async fn issued_jtis(server: &Server, tenant: &str, subject: &str) -> HashSet<String> {
    let token = admin_token(server).await;
    let http = reqwest::Client::new();
    let mut out = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!(
            "{}/admin/v1/tenants/{tenant}/audit?action=token.issue&subject={subject}&limit=1000",
            server.url
        );
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let r = http.get(url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        let page: Value = r.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        for item in items {
            out.insert(item["jti"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) if !items.is_empty() => cursor = Some(c.to_owned()),
            _ => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_issuance_loses_no_audit_record() {
    let mut server = Server::start().await;
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let created = server.admin_json(&[
        "sa",
        "create",
        "crashy",
        "--tenant",
        "default",
        "--audience",
        AUDIENCE,
        "--scope",
        "deploy:write",
    ]);
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["secret"]["value"].as_str().unwrap().to_owned();
    let endpoint = created["token_endpoint"].as_str().unwrap().to_owned();

    // Four clients fetch tokens as fast as they can, keeping the jti of every token received.
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (endpoint, id, secret) = (endpoint.clone(), id.clone(), secret.clone());
        let received = received.clone();
        clients.push(tokio::spawn(async move {
            loop {
                let (status, body) = request_token(&endpoint, &id, &secret).await;
                if status != 200 {
                    return;
                }
                let jti = jti_of(body["access_token"].as_str().unwrap());
                received.lock().unwrap().push(jti);
            }
        }));
    }
    // Let them run, then kill the server mid-flight.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while received.lock().unwrap().len() < 300 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = server.kill_9();
    assert!(!status.success(), "killed, not exited: {status:?}");
    for c in clients {
        // request_token panics on a refused connection: the task ends either way
        let _ = c.await;
    }
    let received: Vec<String> = received.lock().unwrap().clone();
    assert!(
        received.len() >= 50,
        "too few tokens before the kill: {}",
        received.len()
    );

    let data = std::mem::replace(&mut server.data, tempfile::tempdir().unwrap());
    drop(server);
    let server = Server::start_in(data, port).await;
    let recorded = issued_jtis(&server, "default", &id).await;
    let missing: Vec<&String> = received.iter().filter(|j| !recorded.contains(*j)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} tokens a client received have no audit record (e.g. {:?})",
        missing.len(),
        received.len(),
        missing.first()
    );
    // The log still verifies after the crash (the killed writer's segment simply ends).
    let verify = server.admin_status(&["audit", "verify", "--tenant", "default"]);
    assert!(
        verify.status.success(),
        "audit verify after a crash: {}",
        super::describe(&verify)
    );
}
