//! Tests of the `warrant` binary, run as a process.
//!
//! - `usage_*`, `url_*`, `inspect_*`, `token_get_*`: flags, precedence and refusals that need no
//!   server (a closed port stands in for an unreachable one).
//! - `walkthrough`: the README walk-through against a real `warrant serve` on 127.0.0.1: create an
//!   account, get a token, inspect and independently verify it, rotate secrets, disable.
//! - `admin_verbs`: the other admin verbs (tenant, sa, grant, key, token get) against a server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_warrant");
const AUDIENCE: &str = "https://deploy.internal";

/// The binary with an environment that cannot leak the developer's own settings.
fn warrant() -> Command {
    let mut c = Command::new(BIN);
    for var in [
        "WARRANT_URL",
        "WARRANT_CREDENTIALS",
        "WARRANT_CLIENT_SECRET",
        "WARRANT_CONFIG",
    ] {
        c.env_remove(var);
    }
    c.stdin(Stdio::null());
    c
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("cannot run the warrant binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn describe(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

/// A port nothing listens on (bound, read, released).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS with the given header and claims and a junk signature.
fn fake_token(header: Value, claims: Value) -> String {
    format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes()),
        b64url(&[7u8; 64])
    )
}

// ---------------------------------------------------------------------------------------------
// No server needed

#[test]
fn usage_bad_duration_is_refused_by_the_parser() {
    let o = run(warrant().args([
        "sa",
        "create",
        "x",
        "--tenant",
        "t",
        "--default-lifetime",
        "5x",
    ]));
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    assert!(stderr(&o).contains("is not a duration"), "{}", describe(&o));
}

#[test]
fn usage_scope_needs_an_audience() {
    let o = run(warrant().args(["sa", "create", "x", "--tenant", "t", "--scope", "a"]));
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
}

#[test]
fn usage_env_output_is_only_for_token_verbs() {
    let o = run(warrant().args(["tenant", "list", "--output", "env"]));
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(
        stderr(&o).contains("only for token verbs"),
        "{}",
        describe(&o)
    );
}

#[test]
fn usage_missing_credentials_file_says_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let o = run(warrant()
        .args(["tenant", "list", "--credentials"])
        .arg(&missing));
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let e = stderr(&o);
    assert!(e.starts_with("error: "), "{e}");
    assert!(
        e.contains("nope.json") && e.contains("warrant serve"),
        "{e}"
    );
}

fn write_credentials(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("admin-credentials.json");
    let body = json!({
        "url": url,
        "issuer": format!("{url}/t/system"),
        "client_id": "sa_01TEST",
        "client_secret": "not-a-real-secret",
    });
    std::fs::write(&path, body.to_string()).unwrap();
    path
}

#[test]
fn url_explicit_flag_and_env_beat_the_credentials_file() {
    let dir = tempfile::tempdir().unwrap();
    let (file_port, flag_port, env_port) = (free_port(), free_port(), free_port());
    let creds = write_credentials(dir.path(), &format!("http://127.0.0.1:{file_port}"));

    // Only the file: its url is used.
    let o = run(warrant()
        .args(["tenant", "list", "--credentials"])
        .arg(&creds));
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(
        stderr(&o).contains(&format!("127.0.0.1:{file_port}")),
        "{}",
        describe(&o)
    );

    // --url beats the file.
    let o = run(warrant()
        .args(["tenant", "list", "--credentials"])
        .arg(&creds)
        .args(["--url", &format!("http://127.0.0.1:{flag_port}")]));
    assert!(
        stderr(&o).contains(&format!("127.0.0.1:{flag_port}")),
        "{}",
        describe(&o)
    );
    assert!(!stderr(&o).contains(&format!(":{file_port}")));

    // WARRANT_URL and WARRANT_CREDENTIALS work like the flags; the flag beats the variable.
    let o = run(warrant()
        .args(["tenant", "list"])
        .env("WARRANT_CREDENTIALS", &creds)
        .env("WARRANT_URL", format!("http://127.0.0.1:{env_port}")));
    assert!(
        stderr(&o).contains(&format!("127.0.0.1:{env_port}")),
        "{}",
        describe(&o)
    );
    let o = run(warrant()
        .args([
            "tenant",
            "list",
            "--url",
            &format!("http://127.0.0.1:{flag_port}"),
        ])
        .env("WARRANT_CREDENTIALS", &creds)
        .env("WARRANT_URL", format!("http://127.0.0.1:{env_port}")));
    assert!(
        stderr(&o).contains(&format!("127.0.0.1:{flag_port}")),
        "{}",
        describe(&o)
    );
}

#[test]
fn inspect_refuses_a_plain_http_issuer_off_loopback() {
    let token = fake_token(
        json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"}),
        json!({"iss": "http://id.example.com/t/x", "sub": "sa_1", "exp": 4_000_000_000u64}),
    );
    let o = run(warrant().args(["token", "inspect", &token]));
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let out = stdout(&o);
    assert!(out.contains("valid: no — refusing"), "{out}");
    assert!(out.contains("loopback"), "{out}");
    assert!(out.contains("sub: sa_1"), "{out}");

    let o = run(warrant().args(["token", "inspect", &token, "--output", "json"]));
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert!(v["error"].as_str().unwrap().contains("plain http"), "{v}");
    assert_eq!(v["header"]["kid"], "k1");
    assert_eq!(v["claims"]["sub"], "sa_1");
}

#[test]
fn inspect_refuses_alg_none_and_garbage() {
    let token = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"at+jwt"}"#),
        b64url(br#"{"iss":"http://127.0.0.1:1/t/x"}"#)
    );
    let o = run(warrant().args(["token", "inspect", &token]));
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(
        stdout(&o).contains("valid: no — alg none is never accepted"),
        "{}",
        describe(&o)
    );

    let o = run(warrant().args(["token", "inspect", "not-a-token"]));
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(stdout(&o).contains("valid: no"), "{}", describe(&o));
}

#[test]
fn inspect_reads_stdin_and_reports_an_unreachable_issuer() {
    let port = free_port();
    let token = fake_token(
        json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"}),
        json!({"iss": format!("http://127.0.0.1:{port}/t/x")}),
    );
    let mut child = warrant()
        .args(["token", "inspect", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "Bearer {token}").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(
        stdout(&o).contains("cannot read the issuer's discovery document"),
        "{}",
        describe(&o)
    );
}

#[test]
fn token_get_needs_a_secret() {
    let o = run(warrant().args([
        "token",
        "get",
        "--issuer",
        "http://127.0.0.1:1/t/x",
        "--client-id",
        "sa_1",
    ]));
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(
        stderr(&o).contains("WARRANT_CLIENT_SECRET"),
        "{}",
        describe(&o)
    );
}

// ---------------------------------------------------------------------------------------------
// Against a real server

/// A `warrant serve` child, killed when dropped (also when a test panics).
struct Server {
    child: Child,
    url: String,
    /// The data dir (`--data-dir`), where `admin-credentials.json` appears.
    data: tempfile::TempDir,
    /// The server's stdout and stderr, kept apart from its data.
    logs: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start() -> Server {
        Self::start_in(tempfile::tempdir().unwrap(), free_port()).await
    }

    /// Starts on an existing data dir and port (for restarts).
    async fn start_in(data: tempfile::TempDir, port: u16) -> Server {
        let logs = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(logs.path().join("server.log")).unwrap();
        let child = warrant()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--public-url", &url, "--data-dir"])
            .arg(data.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            url,
            data,
            logs,
        };
        server.wait_ready().await;
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("server.log")).unwrap_or_default()
    }

    fn credentials(&self) -> PathBuf {
        self.data.path().join("admin-credentials.json")
    }

    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("warrant serve exited with {status}:\n{}", self.log());
            }
            let ready = http
                .get(format!("{}/readyz", self.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false);
            if ready && self.credentials().exists() {
                return;
            }
            if Instant::now() > deadline {
                panic!("warrant serve not ready after 30 s:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs an admin verb with `--url` and `--credentials` set; panics unless it succeeds.
    fn admin(&self, args: &[&str]) -> Output {
        let o = self.admin_status(args);
        assert!(
            o.status.success(),
            "warrant {} failed: {}\n--- server log\n{}",
            args.join(" "),
            describe(&o),
            self.log()
        );
        o
    }

    fn admin_status(&self, args: &[&str]) -> Output {
        run(warrant()
            .args(args)
            .args(["--url", &self.url, "--credentials"])
            .arg(self.credentials()))
    }

    fn admin_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let o = self.admin(&all);
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", describe(&o)))
    }
}

fn form_urlencode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `POST token_endpoint` with client_secret_basic; returns the status and the JSON body.
async fn request_token(endpoint: &str, client_id: &str, secret: &str) -> (u16, Value) {
    let basic = b64std(format!(
        "{}:{}",
        form_urlencode(client_id),
        form_urlencode(secret)
    ));
    let r = reqwest::Client::new()
        .post(endpoint)
        .header("authorization", format!("Basic {basic}"))
        .form(&[("grant_type", "client_credentials"), ("resource", AUDIENCE)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

fn b64std(s: String) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Verifies an access token with the `jsonwebtoken` crate, independently of warrant-jose.
async fn verify_independently(token: &str, issuer: &str) -> Value {
    let http = reqwest::Client::new();
    let discovery: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], issuer);
    let jwks: jsonwebtoken::jwk::JwkSet = http
        .get(discovery["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.unwrap();
    let jwk = jwks.find(&kid).expect("the token's kid is in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

/// Flips one bit in the middle of the signature.
fn bit_flipped(token: &str) -> String {
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let mut sig = sig.as_bytes().to_vec();
    let i = sig.len() / 2;
    sig[i] = match sig[i] {
        b'A' => b'B',
        _ => b'A',
    };
    format!("{signed}.{}", String::from_utf8(sig).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walkthrough() {
    let server = Server::start().await;

    // An account with a grant and an initial secret.
    let created = server.admin_json(&[
        "sa",
        "create",
        "ci-deployer",
        "--tenant",
        "default",
        "--audience",
        AUDIENCE,
        "--scope",
        "deploy:write",
    ]);
    let keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = vec![
        "client_id",
        "id",
        "issuer",
        "name",
        "secret",
        "tenant",
        "token_endpoint",
    ];
    want.sort();
    assert_eq!(keys, want, "{created}");
    assert_eq!(created["name"], "ci-deployer");
    assert_eq!(created["tenant"], "default");
    assert_eq!(created["secret"]["name"], "initial");
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("sa_"), "{created}");
    let client_id = created["client_id"].as_str().unwrap();
    let issuer = created["issuer"].as_str().unwrap();
    let endpoint = created["token_endpoint"].as_str().unwrap();
    let initial = created["secret"]["value"].as_str().unwrap();

    // A token for the audience.
    let (status, body) = request_token(endpoint, client_id, initial).await;
    assert_eq!(status, 200, "{body}\n{}", server.log());
    let token = body["access_token"].as_str().unwrap().to_string();

    // `token inspect` says valid, in text and JSON.
    let o = run(warrant().args(["token", "inspect", &token]));
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert!(stdout(&o).contains("valid: yes"), "{}", describe(&o));
    let o = run(warrant().args(["token", "inspect", &token, "--output", "json"]));
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["error"], Value::Null);
    assert_eq!(report["issuer"], issuer);
    assert_eq!(report["header"]["typ"], "at+jwt");

    // An independent verifier agrees.
    let claims = verify_independently(&token, issuer).await;
    assert_eq!(claims["sub"], id);
    assert_eq!(claims["client_id"], client_id);
    assert_eq!(claims["aud"], AUDIENCE);
    assert!(
        claims["scope"]
            .as_str()
            .unwrap_or_default()
            .split(' ')
            .any(|s| s == "deploy:write"),
        "{claims}"
    );

    // Rotation: a second secret; both work.
    let next = server.admin_json(&[
        "secret",
        "add",
        "ci-deployer",
        "--tenant",
        "default",
        "--name",
        "next",
    ]);
    assert_eq!(next["name"], "next");
    let next_secret = next["value"].as_str().unwrap();
    assert_eq!(request_token(endpoint, client_id, initial).await.0, 200);
    assert_eq!(request_token(endpoint, client_id, next_secret).await.0, 200);

    // Revoke the old one: it gets 401 invalid_client, the new one still works.
    server.admin(&[
        "secret",
        "revoke",
        "ci-deployer",
        "initial",
        "--tenant",
        "default",
    ]);
    let (status, body) = request_token(endpoint, client_id, initial).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
    assert_eq!(request_token(endpoint, client_id, next_secret).await.0, 200);

    // A disabled account gets no token.
    server.admin(&["sa", "disable", "ci-deployer", "--tenant", "default"]);
    let (status, body) = request_token(endpoint, client_id, next_secret).await;
    assert_eq!(status, 401, "{body}");

    // A token with a flipped bit does not verify.
    let o = run(warrant().args(["token", "inspect", &bit_flipped(&token)]));
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(
        stdout(&o).contains("valid: no — the signature does not verify"),
        "{}",
        describe(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_verbs() {
    let server = Server::start().await;

    // Tenants.
    let t = server.admin_json(&["tenant", "create", "payments"]);
    assert_eq!(t["name"], "payments");
    let tenants = server.admin_json(&["tenant", "list"]);
    let names: Vec<&str> = tenants
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"payments") && names.contains(&"system"),
        "{tenants}"
    );
    assert_eq!(
        server.admin_json(&["tenant", "show", "payments"])["issuer"],
        t["issuer"]
    );
    let o = server.admin(&["tenant", "list"]);
    assert!(stdout(&o).contains("payments"), "{}", describe(&o));

    // An error from the admin API is a readable problem on stderr.
    let o = server.admin_status(&["tenant", "show", "no-such-tenant"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(stderr(&o).starts_with("error: "), "{}", describe(&o));

    // Accounts.
    let created = server.admin_json(&[
        "sa",
        "create",
        "worker",
        "--tenant",
        "payments",
        "--audience",
        AUDIENCE,
        "--scope",
        "deploy:write deploy:read",
        "--default-lifetime",
        "5m",
    ]);
    let id = created["id"].as_str().unwrap().to_string();
    let shown = server.admin_json(&["sa", "show", &id, "--tenant", "payments"]);
    assert_eq!(shown["name"], "worker");
    assert_eq!(shown["default_lifetime_seconds"], 300);
    assert_eq!(shown["default_audience"], AUDIENCE);
    let updated = server.admin_json(&[
        "sa",
        "update",
        "worker",
        "--tenant",
        "payments",
        "--description",
        "the payments worker",
        "--max-lifetime",
        "1h",
        "--claims",
        r#"{"team":"payments"}"#,
    ]);
    assert_eq!(updated["description"], "the payments worker");
    assert_eq!(updated["max_lifetime_seconds"], 3600);
    assert_eq!(updated["claims"]["team"], "payments");
    let list = server.admin_json(&["sa", "list", "--tenant", "payments"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // Grants.
    let grants = server.admin_json(&[
        "grant",
        "set",
        "worker",
        "--tenant",
        "payments",
        "--audience",
        "https://other.internal",
        "--scope",
        "read",
    ]);
    assert_eq!(grants.as_array().unwrap().len(), 2, "{grants}");
    let grants = server.admin_json(&[
        "grant",
        "remove",
        "worker",
        "--tenant",
        "payments",
        "--audience",
        "https://other.internal",
    ]);
    assert_eq!(grants.as_array().unwrap().len(), 1, "{grants}");
    assert_eq!(grants[0]["audience"], AUDIENCE);
    let listed = server.admin_json(&["grant", "list", "worker", "--tenant", "payments"]);
    assert_eq!(listed, grants);

    // Keys.
    let keys = server.admin_json(&["key", "list", "--tenant", "payments"]);
    assert!(!keys.as_array().unwrap().is_empty(), "{keys}");

    // Secrets.
    let secrets = server.admin_json(&["secret", "list", "worker", "--tenant", "payments"]);
    assert_eq!(secrets[0]["name"], "initial", "{secrets}");

    // `token get` with the workload's own credentials, in each output format.
    let secret = created["secret"]["value"].as_str().unwrap();
    let issuer = created["issuer"].as_str().unwrap();
    let get = |format: &str| {
        run(warrant()
            .args(["token", "get", "--issuer", issuer, "--client-id", &id])
            .args(["--resource", AUDIENCE, "--scope", "deploy:read"])
            .args(["--output", format])
            .env("WARRANT_CLIENT_SECRET", secret))
    };
    let o = get("text");
    assert!(o.status.success(), "{}", describe(&o));
    let token = stdout(&o).trim().to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let o = run(warrant().args(["token", "inspect", &token]));
    assert!(o.status.success(), "{}", describe(&o));
    let o = get("env");
    assert!(
        stdout(&o).starts_with("WARRANT_TOKEN=ey"),
        "{}",
        describe(&o)
    );
    let o = get("json");
    let body: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        body["token_type"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("bearer")
    );
    assert_eq!(body["scope"], "deploy:read");

    // Enable after disable, then delete.
    server.admin(&["sa", "disable", "worker", "--tenant", "payments"]);
    let enabled = server.admin_json(&["sa", "enable", "worker", "--tenant", "payments"]);
    assert_eq!(enabled["enabled"], true);
    server.admin(&["sa", "delete", "worker", "--tenant", "payments"]);
    let o = server.admin_status(&["sa", "show", "worker", "--tenant", "payments"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    server.admin(&["tenant", "delete", "payments"]);
}

// ---------------------------------------------------------------------------------------------
// `warrant serve` itself: state on disk, one server per data dir, graceful stop, restart.

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Sends SIGTERM and waits (at most 15 s) for the server to exit; returns its exit status.
fn terminate(server: &mut Server) -> std::process::ExitStatus {
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "no exit 15 s after SIGTERM:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_creates_private_state_and_refuses_a_second_server_on_it() {
    let server = Server::start().await;
    let dir = server.data.path();
    assert_eq!(mode(dir), 0o700, "data dir");
    assert_eq!(mode(&dir.join("master.key")), 0o600, "master key");
    assert_eq!(mode(&server.credentials()), 0o600, "admin credentials");
    assert!(dir.join("warrant.db").exists());
    let log = server.log();
    assert!(
        log.contains(&format!("{}/t/system", server.url)),
        "logs the issuers: {log}"
    );
    assert!(log.contains(&format!("{}/t/default", server.url)));
    assert!(
        log.contains("admin-credentials.json"),
        "logs where the credentials are"
    );

    let second = run(warrant()
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--data-dir",
        ])
        .arg(dir));
    assert!(!second.status.success());
    assert!(
        stderr(&second).contains("already using the data directory"),
        "{}",
        describe(&second)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stops_on_sigterm_and_a_restart_keeps_everything() {
    let mut server = Server::start().await;
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let created = server.admin_json(&[
        "sa",
        "create",
        "svc",
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
    let (status, before) = request_token(&endpoint, &id, &secret).await;
    assert_eq!(status, 200);
    let token = before["access_token"].as_str().unwrap().to_owned();
    let admin_secret = std::fs::read_to_string(server.credentials()).unwrap();

    let exit = terminate(&mut server);
    assert!(
        exit.success(),
        "graceful stop exits 0: {exit:?}\n{}",
        server.log()
    );
    let log = server.log();
    assert!(log.contains("stopped"), "{log}");
    // nothing secret in the logs
    assert!(!log.contains(&secret), "a client secret reached the log");
    assert!(!log.contains(&token), "a token reached the log");
    let admin: Value = serde_json::from_str(&admin_secret).unwrap();
    assert!(
        !log.contains(admin["client_secret"].as_str().unwrap()),
        "the admin secret reached the log"
    );

    // restart on the same data dir and port
    let data = std::mem::replace(&mut server.data, tempfile::tempdir().unwrap());
    drop(server);
    let server = Server::start_in(data, port).await;
    assert_eq!(
        std::fs::read_to_string(server.credentials()).unwrap(),
        admin_secret,
        "credentials are not rewritten"
    );
    let (status, _) = request_token(&endpoint, &id, &secret).await;
    assert_eq!(status, 200, "the account and its secret survive a restart");
    let claims = verify_independently(&token, &format!("{}/t/default", server.url)).await;
    assert_eq!(claims["sub"], id, "the signing key survives a restart");
    server.admin(&["sa", "show", "svc", "--tenant", "default"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_master_key_that_differs_from_the_file() {
    let mut server = Server::start().await;
    assert!(terminate(&mut server).success());
    let (_, other) = warrant_core::MasterKey::generate().unwrap();
    let o = run(warrant()
        .env("WARRANT_MASTER_KEY", other.as_str())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--data-dir",
        ])
        .arg(server.data.path()));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("differs"), "{}", describe(&o));
    assert!(
        !stderr(&o).contains(other.as_str()),
        "the key is never printed"
    );
}
