//! Durability of the audit log: no token is returned before its record is committed, so a
//! server killed with SIGKILL while clients fetch tokens has a record for every token any
//! client received.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use super::{AUDIENCE, Server, TestDb, create_account, free_port};

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
async fn kill_9_during_issuance_loses_no_audit_record_on_sqlite() {
    let server = Server::start().await;
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    crash_and_check(server, |mut killed| async move {
        let data = std::mem::replace(&mut killed.data, tempfile::tempdir().unwrap());
        drop(killed);
        Server::start_in(data, port).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_issuance_loses_no_audit_record_on_postgres() {
    let db = TestDb::create();
    let (_, key) = warrant_core::MasterKey::generate().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut first = Server::spawn(&url, port, &db.url(), Some(key.as_str()));
    first.wait_ready().await;
    let (db_url, key_text) = (db.url(), key.to_string());
    crash_and_check(first, |killed| async move {
        // A new replica on the same database; the bootstrap credentials stay with the first.
        let creds = std::fs::read(killed.credentials()).unwrap();
        drop(killed);
        let mut next = Server::spawn(&url, port, &db_url, Some(&key_text));
        std::fs::write(next.credentials(), creds).unwrap();
        next.wait_ready().await;
        next
    })
    .await;
    drop(db);
}

/// Kills `server` with SIGKILL while four clients fetch tokens, restarts it with `restart`, and
/// checks that every token a client received has its `token.issue` record and that the log
/// still verifies.
async fn crash_and_check<F, Fut>(mut server: Server, restart: F)
where
    F: FnOnce(Server) -> Fut,
    Fut: std::future::Future<Output = Server>,
{
    let (id, secret, endpoint) = create_account(|args| server.admin_json(args), "crashy");

    // Four clients fetch tokens as fast as they can, keeping the jti of every token received.
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (endpoint, id, secret) = (endpoint.clone(), id.clone(), secret.clone());
        let received = received.clone();
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                // Ends quietly at the first failure (the server is gone).
                let Ok(r) = http
                    .post(&endpoint)
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "client_credentials"), ("resource", AUDIENCE)])
                    .send()
                    .await
                else {
                    return;
                };
                if r.status() != 200 {
                    return;
                }
                let Ok(body) = r.json::<Value>().await else {
                    return;
                };
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
        c.await.unwrap();
    }
    let received: Vec<String> = received.lock().unwrap().clone();
    assert!(
        received.len() >= 50,
        "too few tokens before the kill: {}",
        received.len()
    );
    eprintln!("{} tokens received before the kill", received.len());

    let server = restart(server).await;
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
