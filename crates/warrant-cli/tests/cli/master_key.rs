//! `master-key` tests: rotate the master key of a stopped deployment (SQLite, then PostgreSQL
//! replicas), and check that every secret, token and audit record made before still works, that
//! new ones work, and that the old key no longer opens the database.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{
    Replica, Server, TestDb, create_account, describe, free_port, mode, request_token, run, stderr,
    stdout, terminate, verify_independently, warrant,
};

/// Gets a token (200) and makes one refused request (an audit record of each kind).
async fn issue(endpoint: &str, id: &str, secret: &str) -> String {
    let (status, body) = request_token(endpoint, id, secret).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = request_token(endpoint, id, "not-the-secret").await;
    assert_eq!(status, 401);
    body["access_token"].as_str().unwrap().to_owned()
}

fn read_key(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

fn rotate_sqlite(data: &Path) -> std::process::Output {
    run(warrant()
        .env_remove("WARRANT_MASTER_KEY")
        .args(["master-key", "rotate", "--data-dir"])
        .arg(data))
}

/// `warrant serve` on `data` with `master.key` only; returns its output once it exits (it must
/// refuse to start).
fn serve_must_fail(data: &Path) -> std::process::Output {
    run(warrant()
        .env_remove("WARRANT_MASTER_KEY")
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--data-dir",
        ])
        .arg(data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rotation_keeps_secrets_tokens_and_the_audit_log() {
    let mut server = Server::start().await;
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let key_file = server.data.path().join("master.key");
    let old_key = read_key(&key_file);
    let (id, secret, endpoint) = create_account(|a| server.admin_json(a), "svc");
    let token = issue(&endpoint, &id, &secret).await;

    // Not beside a running server.
    let o = rotate_sqlite(server.data.path());
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(
        stderr(&o).contains("already using the data directory"),
        "{}",
        describe(&o)
    );
    assert_eq!(read_key(&key_file), old_key);

    assert!(terminate(&mut server).success(), "{}", server.log());
    let data = std::mem::replace(&mut server.data, tempfile::tempdir().unwrap());
    drop(server);

    let o = rotate_sqlite(data.path());
    assert!(o.status.success(), "{}", describe(&o));
    let new_key = read_key(&key_file);
    assert_ne!(new_key, old_key, "master.key was not replaced");
    assert_eq!(new_key.len(), 43);
    assert_eq!(mode(&key_file), 0o600, "master.key mode");
    assert!(!data.path().join("master.key.new").exists());
    assert!(
        stdout(&o).is_empty(),
        "the key stays in master.key: {}",
        describe(&o)
    );
    for key in [&old_key, &new_key] {
        assert!(!stderr(&o).contains(key.as_str()), "a key was printed");
    }
    assert!(stderr(&o).contains("signing keys"), "{}", describe(&o));

    // A copy of the rotated database with the old key: serve refuses, saying why.
    let stale = tempfile::tempdir().unwrap();
    for name in ["warrant.db", "warrant.db-wal"] {
        let from = data.path().join(name);
        if from.exists() {
            std::fs::copy(&from, stale.path().join(name)).unwrap();
        }
    }
    std::fs::write(stale.path().join("master.key"), &old_key).unwrap();
    let o = serve_must_fail(stale.path());
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(
        stderr(&o).contains("master key does not match"),
        "{}",
        describe(&o)
    );
    assert!(!stderr(&o).contains(&old_key), "the key was printed");
    // ... and a rotation with the wrong (old) key fails and changes nothing.
    let o = rotate_sqlite(stale.path());
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(stderr(&o).contains("does not open"), "{}", describe(&o));
    assert_eq!(read_key(&stale.path().join("master.key")), old_key);
    assert!(!stale.path().join("master.key.new").exists());

    // Restart with the new key: everything made before works, and new things too.
    let server = Server::start_in(data, port).await;
    let (status, _) = request_token(&endpoint, &id, &secret).await;
    assert_eq!(status, 200, "an old secret after rotation");
    let claims = verify_independently(&token, &format!("{}/t/default", server.url)).await;
    assert_eq!(claims["sub"], id, "an old token after rotation");
    let (id2, secret2, _) = create_account(|a| server.admin_json(a), "after");
    issue(&endpoint, &id2, &secret2).await;
    let report = server.admin_json(&["audit", "verify", "--tenant", "default"]);
    assert_eq!(report["ok"], true, "{report}");
    let o = server.admin(&["audit", "verify", "--tenant", "default"]);
    assert!(stdout(&o).contains("every MAC checked"), "{}", describe(&o));
}

/// Waits until `/readyz` answers 200 (a restarted replica writes no credentials file).
async fn wait_ready(replica: &mut Replica) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = replica.child.try_wait().unwrap() {
            panic!("replica exited with {status}:\n{}", replica.log());
        }
        let ready = http
            .get(format!("{}/readyz", replica.url))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false);
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica not ready after 30 s:\n{}",
            replica.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rotate_postgres(database_url: &str, key: &str, extra: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    run(warrant()
        .current_dir(dir.path())
        .env("WARRANT_MASTER_KEY", key)
        .args(["master-key", "rotate", "--database-url", database_url])
        .args(extra))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rotation_then_replicas_restart_with_the_new_key() {
    let db = TestDb::create();
    let (_, old_key) = warrant_core::MasterKey::generate().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut replica = Replica::spawn(&url, port, &db.url(), Some(&old_key));
    replica.wait_ready().await;
    let (id, secret, endpoint) = create_account(|a| replica.admin_json(a), "svc");
    let token = issue(&endpoint, &id, &secret).await;
    assert!(terminate(&mut replica).success(), "{}", replica.log());
    // The first replica's admin credentials, kept for the restarted ones.
    let creds_dir = std::mem::replace(&mut replica.data, tempfile::tempdir().unwrap());
    let creds = creds_dir.path().join("admin-credentials.json");
    drop(replica);

    // A wrong current key: fails, prints no key, changes nothing (the restart below proves it).
    let (_, stranger) = warrant_core::MasterKey::generate().unwrap();
    let o = rotate_postgres(&db.url(), &stranger, &[]);
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(stdout(&o).is_empty(), "{}", describe(&o));
    assert!(stderr(&o).contains("does not open"), "{}", describe(&o));

    // Rotate: the new key on stdout, once.
    let o = rotate_postgres(&db.url(), &old_key, &[]);
    assert!(o.status.success(), "{}", describe(&o));
    let first = stdout(&o).trim().to_owned();
    assert_eq!(first.len(), 43, "{}", describe(&o));
    assert_eq!(stdout(&o).lines().count(), 1);
    assert!(stderr(&o).contains("every replica"), "{}", describe(&o));
    assert!(!stderr(&o).contains(&first) && !stderr(&o).contains(old_key.as_str()));

    // Again, the new key to a file this time.
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("new.key");
    let o = rotate_postgres(&db.url(), &first, &["--new-key-out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", describe(&o));
    assert!(stdout(&o).is_empty(), "{}", describe(&o));
    assert_eq!(mode(&out), 0o600);
    let new_key = read_key(&out);
    assert_eq!(new_key.len(), 43);
    assert_ne!(new_key, first);

    // A replica restarted with an old key refuses to start, saying why (same port: the
    // account's token endpoint names it).
    let mut stale = Replica::spawn(&url, port, &db.url(), Some(&old_key));
    let exit = stale.wait_exit(Duration::from_secs(30));
    assert!(!exit.success());
    let log = stale.log();
    assert!(log.contains("master key does not match"), "{log}");
    assert!(!log.contains(old_key.as_str()), "the key was logged");

    // Replicas restarted with the new key: old secrets, old tokens and the audit log hold.
    let mut replica = Replica::spawn(&url, port, &db.url(), Some(&new_key));
    wait_ready(&mut replica).await;
    let admin = |args: &[&str]| -> Value {
        let o = run(warrant()
            .args(args)
            .args(["--output", "json", "--url", &replica.url, "--credentials"])
            .arg(&creds));
        assert!(o.status.success(), "{}\n{}", describe(&o), replica.log());
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let (status, _) = request_token(&endpoint, &id, &secret).await;
    assert_eq!(status, 200, "an old secret after rotation");
    let claims = verify_independently(&token, &format!("{url}/t/default")).await;
    assert_eq!(claims["sub"], id, "an old token after rotation");
    let (id2, secret2, _) = create_account(admin, "after");
    issue(&endpoint, &id2, &secret2).await;
    let report = admin(&["audit", "verify", "--tenant", "default"]);
    assert_eq!(report["ok"], true, "{report}");
    // Records and secrets made before name version 1, those made after version 3: the
    // versioned derivation at work (old MACs and hashes verified above under version 1).
    let versions = |table: &str| {
        db.query(&format!(
            "SELECT string_agg(DISTINCT key_version::text, ',') FROM {table}"
        ))
    };
    assert_eq!(versions("audit_records"), "1,3");
    assert_eq!(versions("secrets"), "1,3");
    // Two rotations, two new versions of each key.
    assert_eq!(
        db.query("SELECT max(version) FROM keyring WHERE purpose = 'audit'"),
        "3"
    );
}
