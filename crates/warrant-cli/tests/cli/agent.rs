//! `warrant agent` against a real `warrant serve`: `--once` with a secret and with a private key
//! (private_key_jwt), a refused secret, and the long-running agent replacing a short-lived token
//! atomically before it expires, riding out an issuer outage and a restart, and stopping on
//! SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use super::{
    AUDIENCE, Running, Server, create_account, describe, mode, now_secs, run, terminate_child,
    verify_independently,
};

/// The claims of a compact JWS, or why the text is not a complete one.
fn claims_of(text: &str) -> Result<Value, String> {
    let token = text
        .strip_suffix('\n')
        .ok_or_else(|| format!("no final newline: {text:?}"))?;
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(format!("not a complete JWS: {text:?}"));
    }
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .map_err(|e| format!("{e}: {text:?}"))?;
    serde_json::from_slice(&payload).map_err(|e| format!("{e}: {text:?}"))
}

/// `warrant agent ARGS` with the agent's stderr in `dir/agent.log`.
fn agent(dir: &Path, args: &[&str]) -> Command {
    let mut c = super::warrant();
    c.arg("agent").args(args);
    let log = std::fs::File::create(dir.join("agent.log")).unwrap();
    c.stdout(Stdio::null()).stderr(log);
    c
}

fn agent_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_once_with_a_secret_or_a_private_key() {
    let server = Server::start().await;
    let (client_id, secret, endpoint) = create_account(|a| server.admin_json(a), "worker");
    let issuer = endpoint.strip_suffix("/token").unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("token");
    let out_json = dir.path().join("token.json");

    // Secret from the environment.
    let o = run(agent(dir.path(), &["--once", "--issuer", &issuer])
        .args(["--client-id", &client_id, "--resource", AUDIENCE])
        .args(["--scope", "deploy:write", "--out"])
        .arg(&out)
        .arg("--out-json")
        .arg(&out_json)
        .env("WARRANT_CLIENT_SECRET", &secret));
    let log = agent_log(dir.path());
    assert!(o.status.success(), "{}\n{log}", describe(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(claims_of(&text).is_ok(), "{text:?}");
    let claims = verify_independently(text.trim_end(), &issuer).await;
    assert_eq!(claims["sub"], client_id.as_str());
    assert_eq!(claims["scope"], "deploy:write");
    assert_eq!(mode(&out), 0o600);
    assert_eq!(mode(&out_json), 0o600);
    let body: Value = serde_json::from_slice(&std::fs::read(&out_json).unwrap()).unwrap();
    assert_eq!(body["access_token"], text.trim_end());
    assert!(log.contains("token refreshed"), "{log}");
    assert!(
        !log.contains(&secret) && !log.contains(text.trim_end()),
        "{log}"
    );

    // A wrong secret: a clear failure, and nothing written (no temp file left either).
    let empty = tempfile::tempdir().unwrap();
    let o = run(agent(dir.path(), &["--once", "--issuer", &issuer])
        .args(["--client-id", &client_id, "--out"])
        .arg(empty.path().join("token"))
        .env("WARRANT_CLIENT_SECRET", "not-the-secret"));
    let log = agent_log(dir.path());
    assert_eq!(o.status.code(), Some(1), "{log}");
    assert!(
        log.contains("error: cannot get a token") && log.contains("invalid_client"),
        "{log}"
    );
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);

    // private_key_jwt: an account with a registered ES256 key; the agent gets the PKCS#8 PEM.
    let (key, der) = warrant_jose::SigningKey::generate(warrant_jose::Algorithm::Es256).unwrap();
    let jwk = dir.path().join("key.jwk.json");
    std::fs::write(&jwk, serde_json::to_vec(key.public_jwk()).unwrap()).unwrap();
    let created = server.admin_json(&[
        "sa",
        "create",
        "keyed",
        "--tenant",
        "default",
        "--audience",
        AUDIENCE,
        "--jwks",
        jwk.to_str().unwrap(),
    ]);
    let keyed = created["client_id"].as_str().unwrap().to_owned();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&*der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = dir.path().join("key.pem");
    std::fs::write(
        &pem,
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        ),
    )
    .unwrap();
    let keyed_out = dir.path().join("keyed-token");
    for _ in 0..2 {
        // Twice: each request carries a fresh assertion (a replayed jti would be refused).
        let o = run(agent(dir.path(), &["--once", "--issuer", &issuer])
            .args(["--client-id", &keyed, "--private-key"])
            .arg(&pem)
            .arg("--out")
            .arg(&keyed_out));
        assert!(
            o.status.success(),
            "{}\n{}",
            describe(&o),
            agent_log(dir.path())
        );
    }
    let text = std::fs::read_to_string(&keyed_out).unwrap();
    let claims = verify_independently(text.trim_end(), &issuer).await;
    assert_eq!(claims["sub"], keyed.as_str());
    assert_eq!(mode(&keyed_out), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_refreshes_atomically_and_rides_out_an_issuer_restart() {
    let mut server = Server::start().await;
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let created = server.admin_json(&[
        "sa",
        "create",
        "short",
        "--tenant",
        "default",
        "--audience",
        AUDIENCE,
        "--default-lifetime",
        "3s",
        "--max-lifetime",
        "3s",
    ]);
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["secret"]["value"].as_str().unwrap().to_owned();
    let issuer = created["issuer"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("token");
    let mut child = Running(
        agent(
            dir.path(),
            &["--issuer", &issuer, "--client-id", &client_id],
        )
        .arg("--out")
        .arg(&out)
        .env("WARRANT_CLIENT_SECRET", &secret)
        .spawn()
        .unwrap(),
    );

    // Poll every few ms: every read is a complete token; jtis change before the previous
    // token's exp.
    let mut seen: Vec<(String, i64)> = Vec::new();
    let mut last_text = String::new();
    let mut reads = 0u32;
    let deadline = Instant::now() + Duration::from_secs(15);
    while seen.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "fewer than 3 tokens in 15 s: {seen:?}\n{}",
            agent_log(dir.path())
        );
        assert!(child.0.try_wait().unwrap().is_none(), "the agent exited");
        match std::fs::read_to_string(&out) {
            Ok(text) => {
                reads += 1;
                let claims = claims_of(&text).unwrap_or_else(|e| panic!("read {reads}: {e}"));
                let jti = claims["jti"].as_str().unwrap().to_owned();
                if seen.last().map(|(j, _)| j) != Some(&jti) {
                    if let Some((_, exp)) = seen.last() {
                        assert!(
                            now_secs() <= *exp,
                            "the new token came after the old one expired"
                        );
                    }
                    seen.push((jti, claims["exp"].as_i64().unwrap()));
                }
                last_text = text;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && seen.is_empty() => {}
            Err(e) => panic!("the token file went away: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    assert!(reads > 100, "only {reads} reads");
    assert_eq!(mode(&out), 0o600);
    verify_independently(last_text.trim_end(), &issuer).await;

    // The issuer goes down: the file keeps the last token, the agent keeps retrying.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let data = std::mem::replace(&mut server.data, tempfile::tempdir().unwrap());
    drop(server);
    let down_until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < down_until {
        let text = std::fs::read_to_string(&out).unwrap();
        let jti = claims_of(&text).unwrap()["jti"]
            .as_str()
            .unwrap()
            .to_owned();
        if jti != seen.last().unwrap().0 {
            // A refresh that was on the wire as the server died.
            seen.push((jti, 0));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(child.0.try_wait().unwrap().is_none(), "the agent exited");
    let log = agent_log(dir.path());
    assert!(log.contains("cannot refresh the token"), "{log}");
    let before_restart = std::fs::read_to_string(&out).unwrap();

    // Back on the same data dir and port: a fresh token again.
    let server = Server::start_in(data, port).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&out).unwrap();
        if text != before_restart {
            claims_of(&text).unwrap();
            assert_eq!(
                verify_independently(text.trim_end(), &issuer).await["sub"],
                client_id.as_str()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new token 30 s after the restart\n{}\n{}",
            agent_log(dir.path()),
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // SIGTERM: exit 0, promptly; nothing secret in the log.
    let status = terminate_child(&mut child.0, Duration::from_secs(5), &agent_log(dir.path()));
    let log = agent_log(dir.path());
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(!log.contains(&secret), "the secret is in the log");
    assert!(!log.contains(last_text.trim_end()), "a token is in the log");
    assert!(
        std::fs::read_to_string(&out).is_ok(),
        "the last token stays"
    );
}
