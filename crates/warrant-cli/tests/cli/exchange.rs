//! `warrant token exchange` and the agent's `--subject-token-file` source, client side: flag
//! handling and refusals, and the exact requests they send, against a fake token endpoint (and a
//! fake GitHub Actions runner) on 127.0.0.1 — no Warrant server needed. The grants themselves,
//! end to end, are in `federation`; `agent_exchanges_a_rotating_subject_token_file` runs the
//! agent against a real `warrant serve` with a static-JWKS trust.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{
    AUDIENCE, Running, Server, assert_exit_says, b64url, create_sa_in, describe, now_secs, run,
    stderr, stdout, trust_create, verify_independently,
};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// What a subject token looks like to the CLI (never verified client side).
const SUBJECT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUvYXBpIn0.c2lnbmF0dXJl";

/// `warrant` without any GitHub Actions runner variables of the machine running the tests.
fn warrant() -> Command {
    let mut c = super::warrant();
    c.env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN");
    c
}

/// `warrant token exchange --issuer ISSUER`.
fn token_exchange(issuer: &str) -> Command {
    let mut c = warrant();
    c.args(["token", "exchange", "--issuer", issuer]);
    c
}

/// One HTTP request as a fake endpoint received it.
#[derive(Debug)]
struct Received {
    /// `POST /t/default/token HTTP/1.1`
    line: String,
    /// Lower-case names.
    headers: HashMap<String, String>,
    body: String,
}

impl Received {
    /// The body's form fields, decoded, in order.
    fn form(&self) -> Vec<(String, String)> {
        reqwest::Url::parse(&format!("http://x/?{}", self.body))
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// A one-shot HTTP server on 127.0.0.1: answers each of `answers` (status, JSON body) to one
/// connection in turn, then returns what it received. Gives up after 20 s without a caller.
fn fake_endpoint(answers: Vec<(u16, Value)>) -> (String, JoinHandle<Vec<Received>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut received = Vec::new();
        for (status, answer) in answers {
            let deadline = Instant::now() + Duration::from_secs(20);
            let stream = loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() > deadline {
                            return received;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut headers = HashMap::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
            let len: usize = headers
                .get("content-length")
                .map_or(0, |l| l.parse().unwrap());
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            received.push(Received {
                line: line.trim_end().to_string(),
                headers,
                body: String::from_utf8(body).unwrap(),
            });
            let text = answer.to_string();
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 cache-control: no-store\r\nconnection: close\r\n\r\n{text}",
                text.len()
            )
            .unwrap();
            stream.flush().unwrap();
        }
        received
    });
    (base, handle)
}

fn issued(token: &str) -> Value {
    json!({
        "access_token": token,
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "token_type": "Bearer",
        "expires_in": 600,
        "scope": "deploy:write",
    })
}

fn assert_no_secret(o: &Output, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !stderr(o).contains(s),
            "a secret is on stderr: {}",
            describe(o)
        );
    }
}

#[test]
fn exchange_needs_exactly_one_subject_token_source() {
    let o = run(&mut token_exchange("http://127.0.0.1:1/t/x"));
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let e = stderr(&o);
    for flag in [
        "--subject-token-file",
        "--subject-token-env",
        "--subject-token",
        "--github-actions",
    ] {
        assert!(e.contains(flag), "{e}");
    }
    let o = run(token_exchange("http://127.0.0.1:1/t/x").args([
        "--subject-token-env",
        "A",
        "--subject-token-file",
        "/dev/null",
    ]));
    assert_exit_says(&o, 2, "cannot be used with");
}

#[test]
fn exchange_never_takes_the_token_on_the_command_line() {
    let o = run(token_exchange("http://127.0.0.1:1/t/x").args(["--subject-token", SUBJECT]));
    assert_exit_says(&o, 1, "only `-`");
    assert_no_secret(&o, &[SUBJECT]);
}

#[test]
fn exchange_refuses_plain_http_off_loopback_and_reports_missing_sources() {
    let o = run(token_exchange("http://id.example/t/x")
        .args(["--subject-token-env", "WARRANT_TEST_SUBJECT"])
        .env("WARRANT_TEST_SUBJECT", SUBJECT));
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(
        stderr(&o).starts_with("error: refusing to send a token over plain http to id.example"),
        "{}",
        describe(&o)
    );
    assert_no_secret(&o, &[SUBJECT]);

    let o = run(token_exchange("https://id.example/t/x")
        .args(["--subject-token-env", "WARRANT_TEST_UNSET"]));
    assert_exit_says(&o, 1, "$WARRANT_TEST_UNSET is not set");

    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("token");
    std::fs::write(&empty, "\n").unwrap();
    let o = run(token_exchange("https://id.example/t/x")
        .arg("--subject-token-file")
        .arg(&empty));
    assert_exit_says(&o, 1, "is empty");

    // --github-actions outside a runner, and a runner URL that is not https.
    let o = run(token_exchange("https://id.example/t/x").arg("--github-actions"));
    assert_exit_says(&o, 1, "permissions: id-token: write");
    let o = run(token_exchange("https://id.example/t/x")
        .arg("--github-actions")
        .env(
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "http://runner.example/idtoken?api-version=2.0",
        )
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-request-token"));
    assert_exit_says(&o, 1, "must be https");
    assert_no_secret(&o, &["runner-request-token"]);
}

#[test]
fn exchange_sends_rfc_8693_without_client_auth_and_prints_the_oauth_error() {
    let (base, endpoint) = fake_endpoint(vec![
        (200, issued("eyJ.issued.token")),
        (
            400,
            json!({"error": "invalid_grant", "error_description": "the token matches no trust"}),
        ),
    ]);
    let issuer = format!("{base}/t/default");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("subject");
    std::fs::write(&file, format!("{SUBJECT}\n")).unwrap();

    let o = run(token_exchange(&issuer)
        .args(["--subject-token-file"])
        .arg(&file)
        .args([
            "--audience",
            AUDIENCE,
            "--scope",
            "deploy:write",
            "--scope",
            "b",
        ]));
    assert!(o.status.success(), "{}", describe(&o));
    assert_eq!(stdout(&o), "eyJ.issued.token\n");

    // Stdin, id_token, json output; the refusal is the server's error as it is.
    let mut child = token_exchange(&issuer)
        .args(["--subject-token", "-"])
        .args(["--subject-token-type", "id-token", "--resource", AUDIENCE])
        .args(["--output", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{SUBJECT}").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert_eq!(
        stderr(&o),
        "error: invalid_grant: the token matches no trust\n"
    );
    assert_eq!(stdout(&o), "");

    let received = endpoint.join().unwrap();
    assert_eq!(received.len(), 2, "{received:?}");
    for r in &received {
        assert_eq!(r.line, "POST /t/default/token HTTP/1.1");
        assert_eq!(
            r.headers["content-type"],
            "application/x-www-form-urlencoded"
        );
        assert!(
            !r.headers.contains_key("authorization"),
            "no client authentication: {r:?}"
        );
    }
    let s = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        received[0].form(),
        s(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", SUBJECT),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token"
            ),
            ("audience", AUDIENCE),
            ("scope", "deploy:write b"),
        ])
    );
    assert_eq!(
        received[1].form(),
        s(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", SUBJECT),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token"
            ),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token"
            ),
            ("resource", AUDIENCE),
        ])
    );
}

#[test]
fn exchange_env_output_with_client_auth_and_the_jwt_bearer_grant() {
    let (base, endpoint) = fake_endpoint(vec![(200, issued("eyJ.issued.token"))]);
    let issuer = format!("{base}/t/default");
    // The jwt-bearer grant with the subject token in $CI_JOB_JWT.
    let jwt_bearer = || {
        let mut c = token_exchange(&issuer);
        c.args(["--grant", "jwt-bearer", "--subject-token-env", "CI_JOB_JWT"])
            .env("CI_JOB_JWT", SUBJECT);
        c
    };
    let o = run(jwt_bearer()
        .args(["--client-id", "sa_01X", "--output", "env"])
        .env("WARRANT_CLIENT_SECRET", "wrt_not-a-secret"));
    assert!(o.status.success(), "{}", describe(&o));
    assert_eq!(
        stdout(&o),
        "WARRANT_TOKEN=eyJ.issued.token\nWARRANT_TOKEN_EXPIRES_IN=600\n"
    );
    // What a shell makes of it.
    let sh = run(Command::new("sh")
        .arg("-c")
        .arg("eval \"$0\"; printf '%s|%s' \"$WARRANT_TOKEN\" \"$WARRANT_TOKEN_EXPIRES_IN\"")
        .arg(stdout(&o)));
    assert_eq!(stdout(&sh), "eyJ.issued.token|600");

    let received = endpoint.join().unwrap();
    let r = &received[0];
    assert_eq!(
        r.headers["authorization"],
        format!("Basic {}", super::b64std("sa_01X:wrt_not-a-secret".into()))
    );
    assert_eq!(
        r.form(),
        vec![
            ("grant_type".to_string(), JWT_BEARER.to_string()),
            ("assertion".to_string(), SUBJECT.to_string()),
        ]
    );

    // The jwt-bearer grant presents a JWT, nothing else.
    let o = run(jwt_bearer().args(["--subject-token-type", "access-token"]));
    assert_exit_says(&o, 1, "jwt-bearer");
}

#[test]
fn exchange_reads_the_github_actions_token_from_the_runner() {
    let (runner, github) = fake_endpoint(vec![(200, json!({"value": SUBJECT}))]);
    let (base, endpoint) = fake_endpoint(vec![(200, issued("eyJ.issued.token"))]);
    let o = run(warrant()
        .args(["token", "exchange", "--github-actions"])
        .args(["--github-audience", "https://warrant.example"])
        .args(["--issuer", &format!("{base}/t/default")])
        .env(
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            format!("{runner}/idtoken?api-version=2.0"),
        )
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-request-token"));
    assert!(o.status.success(), "{}", describe(&o));
    assert_eq!(stdout(&o), "eyJ.issued.token\n");

    let asked = github.join().unwrap();
    assert_eq!(
        asked[0].line,
        "GET /idtoken?api-version=2.0&audience=https%3A%2F%2Fwarrant.example HTTP/1.1"
    );
    assert_eq!(
        asked[0].headers["authorization"],
        "bearer runner-request-token"
    );
    let exchanged = endpoint.join().unwrap();
    assert!(
        exchanged[0]
            .form()
            .contains(&("subject_token".into(), SUBJECT.into())),
        "{exchanged:?}"
    );
}

#[test]
fn agent_subject_token_file_is_one_source_only() {
    for other in [
        &["--private-key", "k.pem"][..],
        &["--credentials-file", "c.json"],
        &["--client-id", "sa_1"],
    ] {
        let o = run(warrant()
            .args(["agent", "--issuer", "https://id.example/t/x", "--out", "t"])
            .args(["--subject-token-file", "s"])
            .args(other));
        assert_exit_says(&o, 2, "cannot be used with");
    }
    let o = run(warrant().args(["agent", "--out", "t", "--subject-token-file", "s"]));
    assert_exit_says(&o, 2, "--issuer");
}

#[test]
fn agent_once_exchanges_the_subject_token_file_without_client_auth() {
    let (base, endpoint) = fake_endpoint(vec![(200, issued("eyJ.issued.token"))]);
    let dir = tempfile::tempdir().unwrap();
    let subject = dir.path().join("subject");
    std::fs::write(&subject, SUBJECT).unwrap();
    let out = dir.path().join("token");
    let o = run(warrant()
        .args(["agent", "--once", "--issuer", &format!("{base}/t/default")])
        .args(["--resource", AUDIENCE, "--subject-token-file"])
        .arg(&subject)
        .args(["--subject-token-type", "id-token", "--out"])
        .arg(&out)
        // Ignored: the federation source sends no client authentication.
        .env("WARRANT_CLIENT_SECRET", "wrt_not-a-secret"));
    assert!(o.status.success(), "{}", describe(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "eyJ.issued.token\n");
    assert_eq!(super::mode(&out), 0o600);
    assert_no_secret(&o, &[SUBJECT, "eyJ.issued.token"]);
    let r = &endpoint.join().unwrap()[0];
    assert!(!r.headers.contains_key("authorization"), "{r:?}");
    let form = r.form();
    assert!(form.contains(&("grant_type".into(), TOKEN_EXCHANGE.into())));
    assert!(form.contains(&("subject_token".into(), SUBJECT.into())));
    assert!(form.contains(&(
        "subject_token_type".into(),
        "urn:ietf:params:oauth:token-type:id_token".into()
    )));
    assert!(form.contains(&("resource".into(), AUDIENCE.into())));
}

// ---------------------------------------------------------------------------------------------
// Against a real server

/// A projected service account token of `ci/runner` in pod `pod`, signed by `key`.
fn k8s_token(key: &warrant_jose::SigningKey, issuer: &str, pod: &str) -> String {
    let now = now_secs();
    let header = json!({"alg": "ES256", "kid": key.kid(), "typ": "JWT"});
    let claims = json!({
        "iss": issuer,
        "sub": "system:serviceaccount:ci:runner",
        "aud": ["https://warrant.example"],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": b64url(&warrant_jose::crypto::random_array::<12>().unwrap()),
        "kubernetes.io": {
            "namespace": "ci",
            "serviceaccount": {"name": "runner", "uid": "0b1c"},
            "pod": {"name": pod, "uid": "9a8b"},
        },
    });
    let mut jws = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let sig = key.sign(jws.as_bytes()).unwrap();
    jws.push('.');
    jws.push_str(&b64url(&sig));
    jws
}

/// Waits until `path` holds a token other than `not`; returns it.
async fn next_token(path: &Path, not: Option<&str>, log: &dyn Fn() -> String) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            let t = text.trim_end().to_string();
            if !t.is_empty() && Some(t.as_str()) != not {
                return t;
            }
        }
        assert!(Instant::now() < deadline, "no new token in 30 s\n{}", log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_exchanges_a_rotating_subject_token_file() {
    const K8S_ISSUER: &str = "https://cluster.example";
    let server = Server::start().await;
    // A short-lived account, so that the agent refreshes within the test.
    let created = create_sa_in(
        |a| server.admin_json(a),
        "runner",
        AUDIENCE,
        "deploy:write",
        &["--default-lifetime", "3s", "--max-lifetime", "3s"],
    );
    let account = created["client_id"].as_str().unwrap().to_owned();
    let issuer = created["issuer"].as_str().unwrap().to_owned();
    let (key, _) = warrant_jose::SigningKey::generate(warrant_jose::Algorithm::Es256).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("cluster-jwks.json");
    std::fs::write(&jwks, json!({"keys": [key.public_jwk()]}).to_string()).unwrap();
    // The docs/federation.md recipe: a static JWKS, as `kubectl get --raw /openid/v1/jwks`.
    server.admin(&trust_create(
        "ci-runner",
        "runner",
        &[
            "--kubernetes",
            "ci/runner",
            "--issuer",
            K8S_ISSUER,
            "--jwks-file",
            jwks.to_str().unwrap(),
        ],
    ));

    let subject = dir.path().join("sa-token");
    let first = k8s_token(&key, K8S_ISSUER, "runner-1");
    std::fs::write(&subject, &first).unwrap();
    let out = dir.path().join("token");
    let log_path = dir.path().join("agent.log");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut child = Running(
        warrant()
            .args(["agent", "--issuer", &issuer, "--resource", AUDIENCE])
            .arg("--subject-token-file")
            .arg(&subject)
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );

    let token = next_token(&out, None, &log).await;
    let claims = verify_independently(&token, &issuer).await;
    assert_eq!(claims["sub"], account.as_str(), "{claims}");
    assert_eq!(claims["aud"], AUDIENCE, "{claims}");
    assert_eq!(
        claims["federated"]["sub"], "system:serviceaccount:ci:runner",
        "{claims}"
    );
    assert_eq!(claims["federated"]["iss"], K8S_ISSUER, "{claims}");
    assert_eq!(
        claims["federated"]["kubernetes.io"]["pod"]["name"], "runner-1",
        "{claims}"
    );
    assert_eq!(super::mode(&out), 0o600);

    // The kubelet rotates the file: a later refresh presents the new token (its pod name shows
    // in `federated`), without a restart.
    let rotated = k8s_token(&key, K8S_ISSUER, "runner-2");
    std::fs::write(&subject, &rotated).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = token;
    loop {
        let next = next_token(&out, Some(&last), &log).await;
        let c = verify_independently(&next, &issuer).await;
        if c["federated"]["kubernetes.io"]["pod"]["name"] == "runner-2" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rotated subject token was never used: {c}\n{}",
            log()
        );
        last = next;
    }

    let status = super::terminate_child(&mut child.0, Duration::from_secs(5), &log());
    let log = log();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("token refreshed"), "{log}");
    assert!(
        !log.contains(&first) && !log.contains(&rotated) && !log.contains(&last),
        "a token is in the log"
    );
}
