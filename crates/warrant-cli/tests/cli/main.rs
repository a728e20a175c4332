//! Tests of the `warrant` binary, run as a process.
//!
//! - `usage_*`, `url_*`, `inspect_*`, `token_get_*`: flags, precedence and refusals that need no
//!   server (a closed port stands in for an unreachable one).
//! - `walkthrough`: the README walk-through against a real `warrant serve` on 127.0.0.1: create an
//!   account, get a token, inspect and independently verify it, rotate secrets, revoke its
//!   tokens, query and verify the audit log, disable.
//! - `admin_verbs`: the other admin verbs (tenant, sa, grant, key, token get) against a server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Later verbs, one module each; they use the helpers of this file through `super::`.
mod agent;
mod apis;
mod audit;
mod client_auth;
mod crash;
mod exchange;
mod federation;
mod gateway;
mod hsm;
mod keys;
mod master_key;
mod revoke;
mod tls;
mod trusts;

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

/// Asserts that the command behind `o` exited with `code` and said `needle` on stderr.
#[track_caller]
fn assert_exit_says(o: &Output, code: i32, needle: &str) {
    assert_eq!(o.status.code(), Some(code), "{}", describe(o));
    assert!(stderr(o).contains(needle), "{}", describe(o));
}

/// The current Unix time in seconds.
fn now_secs() -> i64 {
    warrant_core::Clock::now(&warrant_core::SystemClock).secs()
}

/// A spawned child (an agent) killed when a test fails half-way.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    assert_exit_says(&o, 2, "is not a duration");
}

#[test]
fn usage_scope_needs_an_audience() {
    let o = run(warrant().args(["sa", "create", "x", "--tenant", "t", "--scope", "a"]));
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
}

#[test]
fn usage_env_output_is_only_for_token_verbs() {
    let o = run(warrant().args(["tenant", "list", "--output", "env"]));
    assert_exit_says(&o, 1, "only for token verbs");
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
    assert_exit_says(&o, 1, &format!("127.0.0.1:{file_port}"));

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
    assert_exit_says(&o, 1, "WARRANT_CLIENT_SECRET");
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
        Self::start_with(data, port, None).await
    }

    /// [`Server::start_in`], with `--config config` when there is one.
    async fn start_with(data: tempfile::TempDir, port: u16, config: Option<&Path>) -> Server {
        let logs = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(logs.path().join("server.log")).unwrap();
        let mut serve = warrant();
        serve
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--public-url", &url]);
        if let Some(config) = config {
            serve.arg("--config").arg(config);
        }
        let child = serve
            .arg("--data-dir")
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

/// `warrant sa create NAME --tenant default --audience AUDIENCE --scope deploy:write` through
/// `admin`; what it printed.
fn create_sa(admin: impl Fn(&[&str]) -> Value, name: &str) -> Value {
    create_sa_with_scope(admin, name, "deploy:write")
}

/// [`create_sa`] with another `--scope`.
fn create_sa_with_scope(admin: impl Fn(&[&str]) -> Value, name: &str, scope: &str) -> Value {
    create_sa_in(admin, name, AUDIENCE, scope, &[])
}

/// `warrant sa create NAME --tenant default --audience AUDIENCE --scope SCOPE REST…` through
/// `admin`; what it printed.
fn create_sa_in(
    admin: impl Fn(&[&str]) -> Value,
    name: &str,
    audience: &str,
    scope: &str,
    rest: &[&str],
) -> Value {
    let mut args = vec![
        "sa",
        "create",
        name,
        "--tenant",
        "default",
        "--audience",
        audience,
        "--scope",
        scope,
    ];
    args.extend_from_slice(rest);
    admin(&args)
}

/// The audience of the trusts the tests create with [`trust_create`].
const TRUST_AUDIENCE: &str = "https://warrant.example";

/// `warrant trust create NAME` in tenant `default` for `account` and audience
/// [`TRUST_AUDIENCE`], then `rest`.
fn trust_create<'a>(name: &'a str, account: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "trust",
        "create",
        name,
        "--tenant",
        "default",
        "--account",
        account,
        "--audience",
        TRUST_AUDIENCE,
    ];
    args.extend_from_slice(rest);
    args
}

/// The `(client_id, secret)` of an account as `warrant sa create` printed it.
fn client_of(account: &Value) -> (&str, &str) {
    (
        account["client_id"].as_str().unwrap(),
        account["secret"]["value"].as_str().unwrap(),
    )
}

/// Creates an account in `default`; returns (client_id, secret, token endpoint).
fn create_account(admin: impl Fn(&[&str]) -> Value, name: &str) -> (String, String, String) {
    let created = create_sa(admin, name);
    (
        created["client_id"].as_str().unwrap().to_owned(),
        created["secret"]["value"].as_str().unwrap().to_owned(),
        created["token_endpoint"].as_str().unwrap().to_owned(),
    )
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

/// Sends `request` and reads the answer as JSON (panicking on any failure).
async fn json_of<T: serde::de::DeserializeOwned>(request: reqwest::RequestBuilder) -> T {
    request.send().await.unwrap().json().await.unwrap()
}

/// Verifies an access token with the `jsonwebtoken` crate, independently of warrant-jose.
async fn verify_independently(token: &str, issuer: &str) -> Value {
    verify_independently_for(token, issuer, AUDIENCE).await
}

/// [`verify_independently`] for a token addressed to `audience`, from the issuer's discovery
/// and JWKS.
async fn verify_independently_for(token: &str, issuer: &str, audience: &str) -> Value {
    let http = reqwest::Client::new();
    let discovery: Value =
        json_of(http.get(format!("{issuer}/.well-known/openid-configuration"))).await;
    assert_eq!(discovery["issuer"], issuer);
    let jwks: jsonwebtoken::jwk::JwkSet =
        json_of(http.get(discovery["jwks_uri"].as_str().unwrap())).await;
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.unwrap();
    let jwk = jwks.find(&kid).expect("the token's kid is in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
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
    let created = create_sa(|args| server.admin_json(args), "ci-deployer");
    let keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = vec![
        "auth_methods",
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

    // Revoke every token of the account; introspection says so; the audit log shows it all.
    server.admin(&["revoke", "--tenant", "default", "--account", "ci-deployer"]);
    let r = reqwest::Client::new()
        .post(format!("{issuer}/introspect"))
        .basic_auth(client_id, Some(next_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"active": false}));
    let o = server.admin(&[
        "audit",
        "query",
        "--tenant",
        "default",
        "--subject",
        client_id,
    ]);
    for action in [
        "account.create",
        "secret.create",
        "token.issue",
        "token.refuse",
        "secret.revoke",
        "revocation.subject",
    ] {
        assert!(
            stdout(&o).contains(action),
            "{action} missing: {}",
            describe(&o)
        );
    }
    server.admin(&["audit", "verify", "--tenant", "default"]);

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

    // RSA tenants, and a tenant's algorithm changed for its future keys.
    let rsa = server.admin_json(&["tenant", "create", "legacy", "--alg", "RS256"]);
    assert_eq!(rsa["signing_alg"], "RS256");
    let updated = server.admin_json(&["tenant", "update", "legacy", "--alg", "PS256"]);
    assert_eq!(updated["signing_alg"], "PS256");
    assert_eq!(updated["revision"], 2);
    let o = server.admin(&["tenant", "update", "payments", "--signing-alg", "EdDSA"]);
    assert!(stdout(&o).contains("EdDSA"), "{}", describe(&o));
    let o = server.admin_status(&["tenant", "update", "payments", "--alg", "HS256"]);
    assert_exit_says(&o, 1, "ES256, EdDSA, RS256, PS256");

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
    let log = server.log();
    terminate_child(&mut server.child, Duration::from_secs(15), &log)
}

/// Sends SIGTERM to `child` and waits at most `within` for it to exit (else fails, showing
/// `log`); returns its exit status.
fn terminate_child(child: &mut Child, within: Duration, log: &str) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "no exit {within:?} after SIGTERM:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
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
    let (id, secret, endpoint) = create_account(|args| server.admin_json(args), "svc");
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

// ---------------------------------------------------------------------------------------------
// Replicas on PostgreSQL: several `warrant serve` sharing one database on 127.0.0.1:5432 (user
// `postgres`, trust auth). Each test creates its own database and drops it at the end. Without
// `psql` or a reachable server these tests fail (they never skip).

const PG_HOST: &str = "127.0.0.1";
const PG_PORT: &str = "5432";

/// Runs one statement with `psql` as `postgres` on `database`; returns its unaligned output.
fn psql(database: &str, sql: &str) -> String {
    let o = psql_output(database, sql)
        .unwrap_or_else(|e| panic!("these tests need `psql` (the PostgreSQL client) on PATH: {e}"));
    assert!(
        o.status.success(),
        "psql -d {database} -c {sql:?} failed; these tests need PostgreSQL on \
         {PG_HOST}:{PG_PORT} with trust auth for user postgres: {}",
        describe(&o)
    );
    stdout(&o).trim().to_owned()
}

fn psql_output(database: &str, sql: &str) -> std::io::Result<Output> {
    Command::new("psql")
        .args([
            "-h", PG_HOST, "-p", PG_PORT, "-U", "postgres", "-d", database,
        ])
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
}

/// A database of its own, dropped (with its connections) when the guard is dropped.
struct TestDb {
    name: String,
}

impl TestDb {
    fn create() -> TestDb {
        use std::sync::atomic::{AtomicU32, Ordering};
        use warrant_core::Clock as _;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let millis = warrant_core::SystemClock.now().millis();
        let name = format!(
            "wtest_{}_{millis}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        psql("postgres", &format!("CREATE DATABASE {name}"));
        TestDb { name }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@{PG_HOST}:{PG_PORT}/{}", self.name)
    }

    fn query(&self, sql: &str) -> String {
        psql(&self.name, sql)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Never panics: this also runs while a failing test unwinds.
        let _ = psql_output(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// A `warrant serve` replica on PostgreSQL: the same guard as [`Server`], started differently.
type Replica = Server;

impl Server {
    /// Starts `warrant serve` on `port` without waiting for it; `master_key: None` leaves
    /// `WARRANT_MASTER_KEY` unset.
    fn spawn(public_url: &str, port: u16, database_url: &str, master_key: Option<&str>) -> Replica {
        let data = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(logs.path().join("server.log")).unwrap();
        let mut cmd = warrant();
        cmd.env_remove("WARRANT_MASTER_KEY")
            .env_remove("WARRANT_DATABASE_URL");
        if let Some(key) = master_key {
            cmd.env("WARRANT_MASTER_KEY", key);
        }
        let child = cmd
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--public-url", public_url, "--database-url", database_url])
            .arg("--data-dir")
            .arg(data.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Replica {
            child,
            url: format!("http://127.0.0.1:{port}"),
            data,
            logs,
        }
    }

    fn token_endpoint(&self, tenant: &str) -> String {
        format!("{}/t/{tenant}/token", self.url)
    }

    /// Sends SIGKILL (`kill -9`) and reaps the process; returns its exit status.
    fn kill_9(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let o = run(Command::new("kill").args(["-9", &pid]));
        assert!(o.status.success(), "kill -9 {pid}: {}", describe(&o));
        self.child.wait().unwrap()
    }

    /// Waits (at most `within`) for the process to exit by itself; panics if it does not.
    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "warrant serve still running after {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Replicas sharing one database and one public URL (that of the first), so that their issuers
/// are identical. Fields drop in order: the replicas are killed before the database is dropped.
struct Cluster {
    replicas: Vec<Replica>,
    db: TestDb,
    public_url: String,
}

impl Cluster {
    /// Creates a fresh database and starts `n` replicas on it at the same moment (all spawned
    /// before any is waited for); returns once every one answers `/readyz` with 200.
    async fn start(n: usize) -> Cluster {
        let db = TestDb::create();
        let (_, key) = warrant_core::MasterKey::generate().unwrap();
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < n {
            let p = free_port();
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        let public_url = format!("http://127.0.0.1:{}", ports[0]);
        let url = db.url();
        let replicas = ports
            .iter()
            .map(|&port| Replica::spawn(&public_url, port, &url, Some(key.as_str())))
            .collect();
        let mut cluster = Cluster {
            replicas,
            db,
            public_url,
        };
        cluster.wait_ready().await;
        cluster
    }

    /// Every replica's log, labelled, for assertion messages.
    fn logs(&self) -> String {
        let mut out = String::new();
        for (i, r) in self.replicas.iter().enumerate() {
            out.push_str(&format!(
                "\n--- log of replica {i} ({})\n{}",
                r.url,
                r.log()
            ));
        }
        out
    }

    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        for i in 0..self.replicas.len() {
            loop {
                if let Some(status) = self.replicas[i].child.try_wait().unwrap() {
                    panic!("replica {i} exited with {status}:{}", self.logs());
                }
                let ready = http
                    .get(format!("{}/readyz", self.replicas[i].url))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .map(|r| r.status() == 200)
                    .unwrap_or(false);
                if ready {
                    break;
                }
                if Instant::now() > deadline {
                    panic!("replica {i} not ready after 60 s:{}", self.logs());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// The index of the one replica that wrote `admin-credentials.json` (the one whose bootstrap
    /// created the admin); panics unless exactly one did.
    fn credentials_holder(&self) -> usize {
        let holders: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| self.replicas[i].credentials().exists())
            .collect();
        assert_eq!(
            holders.len(),
            1,
            "exactly one replica writes admin-credentials.json; these did: {holders:?}{}",
            self.logs()
        );
        holders[0]
    }

    /// Runs an admin verb against replica `i` with the shared admin credentials; panics with
    /// every replica's log unless it succeeds.
    fn admin(&self, i: usize, args: &[&str]) -> Output {
        let creds = self.replicas[self.credentials_holder()].credentials();
        let o = run(warrant()
            .args(args)
            .args(["--url", &self.replicas[i].url, "--credentials"])
            .arg(creds));
        assert!(
            o.status.success(),
            "warrant {} --url {} failed: {}{}",
            args.join(" "),
            self.replicas[i].url,
            describe(&o),
            self.logs()
        );
        o
    }

    fn admin_json(&self, i: usize, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let o = self.admin(i, &all);
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", describe(&o)))
    }
}

/// `GET url`: the status and the JSON body.
async fn get_json(url: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status().as_u16();
    (status, r.json::<Value>().await.unwrap_or(Value::Null))
}

/// Asks `endpoint` for a token every 50 ms until it answers `want` or `within` has passed;
/// returns the last answer and the time since the first request.
async fn poll_token(
    endpoint: &str,
    client_id: &str,
    secret: &str,
    want: u16,
    within: Duration,
) -> (u16, Value, Duration) {
    let start = Instant::now();
    loop {
        let (status, body) = request_token(endpoint, client_id, secret).await;
        let elapsed = start.elapsed();
        if status == want || elapsed >= within {
            return (status, body, elapsed);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Verifies an access token with the `jsonwebtoken` crate against the given JWKS document.
fn verify_with_jwks(token: &str, jwks: &Value, issuer: &str) -> Result<Value, String> {
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(jwks.clone()).map_err(|e| format!("not a JWKS ({e}): {jwks}"))?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("the token has no kid")?;
    let jwk = set
        .find(&kid)
        .ok_or_else(|| format!("kid {kid} is not in the JWKS {jwks}"))?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_accounts_and_revocations() {
    let cluster = Cluster::start(2).await;
    let (a, b) = (0, 1);
    let holder = cluster.credentials_holder();
    let creds: Value = serde_json::from_str(
        &std::fs::read_to_string(cluster.replicas[holder].credentials()).unwrap(),
    )
    .unwrap();
    assert_eq!(creds["url"], cluster.public_url.as_str(), "{creds}");

    // An account created through A…
    let created = create_sa(|args| cluster.admin_json(a, args), "ci-deployer");
    let issuer = format!("{}/t/default", cluster.public_url);
    assert_eq!(created["issuer"], issuer.as_str(), "{created}");
    let client_id = created["client_id"].as_str().unwrap();
    let initial = created["secret"]["value"].as_str().unwrap();
    let at_a = cluster.replicas[a].token_endpoint("default");
    let at_b = cluster.replicas[b].token_endpoint("default");

    // …gets a token at B.
    let (status, body, elapsed) =
        poll_token(&at_b, client_id, initial, 200, Duration::from_secs(1)).await;
    assert!(
        status == 200 && elapsed < Duration::from_secs(1),
        "B answered {status} {body} {elapsed:?} after A created the account{}",
        cluster.logs()
    );
    let token = body["access_token"].as_str().unwrap();

    // B's token verifies with B's JWKS and with A's: the same keys, the same issuer.
    let (sa, jwks_a) = get_json(&format!("{}/t/default/jwks", cluster.replicas[a].url)).await;
    let (sb, jwks_b) = get_json(&format!("{}/t/default/jwks", cluster.replicas[b].url)).await;
    assert_eq!((sa, sb), (200, 200), "{}", cluster.logs());
    assert_eq!(jwks_a, jwks_b, "A and B serve different JWKS");
    for (name, jwks) in [("B", &jwks_b), ("A", &jwks_a)] {
        let claims = verify_with_jwks(token, jwks, &issuer)
            .unwrap_or_else(|e| panic!("B's token does not verify with {name}'s JWKS: {e}"));
        assert_eq!(claims["client_id"], client_id, "{claims}");
        assert_eq!(claims["iss"], issuer.as_str(), "{claims}");
    }
    let (_, discovery) = get_json(&format!(
        "{}/t/default/.well-known/openid-configuration",
        cluster.replicas[b].url
    ))
    .await;
    assert_eq!(discovery["issuer"], issuer.as_str(), "{discovery}");

    // A second secret added at B works at A.
    let next = cluster.admin_json(
        b,
        &[
            "secret",
            "add",
            "ci-deployer",
            "--tenant",
            "default",
            "--name",
            "next",
        ],
    );
    let next_secret = next["value"].as_str().unwrap();
    let (status, body, elapsed) =
        poll_token(&at_a, client_id, next_secret, 200, Duration::from_secs(1)).await;
    assert!(
        status == 200 && elapsed < Duration::from_secs(1),
        "A answered {status} {body} {elapsed:?} to the secret added at B{}",
        cluster.logs()
    );

    // The initial secret revoked at A stops working at B within a second (timed from the
    // moment the admin call returned).
    assert_eq!(request_token(&at_b, client_id, initial).await.0, 200);
    cluster.admin(
        a,
        &[
            "secret",
            "revoke",
            "ci-deployer",
            "initial",
            "--tenant",
            "default",
        ],
    );
    let (status, body, elapsed) =
        poll_token(&at_b, client_id, initial, 401, Duration::from_secs(1)).await;
    assert!(
        status == 401 && elapsed < Duration::from_secs(1),
        "B still answered {status} {body} {elapsed:?} after the secret was revoked at A{}",
        cluster.logs()
    );
    assert_eq!(body["error"], "invalid_client", "{body}");
    let (status, body) = request_token(&at_b, client_id, next_secret).await;
    assert_eq!(status, 200, "the other secret still works at B: {body}");

    // The account disabled at B is refused at A within a second.
    assert_eq!(request_token(&at_a, client_id, next_secret).await.0, 200);
    cluster.admin(b, &["sa", "disable", "ci-deployer", "--tenant", "default"]);
    let (status, body) = request_token(&at_b, client_id, next_secret).await;
    assert_eq!(status, 401, "B refuses the account it disabled: {body}");
    let (status, body, elapsed) =
        poll_token(&at_a, client_id, next_secret, 401, Duration::from_secs(1)).await;
    assert!(
        status == 401 && elapsed < Duration::from_secs(1),
        "A still answered {status} {body} {elapsed:?} after the account was disabled at B{}",
        cluster.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_starts_bootstrap_once() {
    // A race shows only sometimes: three rounds, each on a fresh database.
    for _ in 0..3 {
        let cluster = Cluster::start(4).await;
        check_bootstrapped_once(&cluster).await;
    }
}

/// After replicas started together on a fresh database: what first start creates exists once.
async fn check_bootstrapped_once(cluster: &Cluster) {
    // Exactly one data dir holds admin-credentials.json.
    let holder = cluster.credentials_holder();
    let any = (holder + 1) % cluster.replicas.len();

    // Through the admin API (of a replica that did not write the credentials).
    let tenants = cluster.admin_json(any, &["tenant", "list"]);
    let mut names: Vec<&str> = tenants
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["default", "system"], "{tenants}{}", cluster.logs());
    for tenant in ["system", "default"] {
        let keys = cluster.admin_json(any, &["key", "list", "--tenant", tenant]);
        assert_eq!(
            keys.as_array().unwrap().len(),
            1,
            "signing keys of {tenant}: {keys}{}",
            cluster.logs()
        );
    }
    let accounts = cluster.admin_json(any, &["sa", "list", "--tenant", "system"]);
    assert_eq!(
        accounts.as_array().unwrap().len(),
        1,
        "{accounts}{}",
        cluster.logs()
    );
    assert_eq!(accounts[0]["name"], "admin", "{accounts}");

    // In the database itself.
    let db = &cluster.db;
    assert_eq!(
        db.query("SELECT string_agg(name, ',' ORDER BY name) FROM tenants"),
        "default,system"
    );
    assert_eq!(
        db.query(
            "SELECT string_agg(tenant || ':' || n, ',' ORDER BY tenant) \
             FROM (SELECT tenant, count(*) AS n FROM signing_keys GROUP BY tenant) k"
        ),
        "default:1,system:1",
        "one signing key per tenant{}",
        cluster.logs()
    );
    assert_eq!(
        db.query("SELECT count(*) FROM service_accounts WHERE tenant = 'system'"),
        "1"
    );
    assert_eq!(db.query("SELECT count(*) FROM secrets"), "1");
    assert_eq!(db.query("SELECT count(*) FROM schema_migrations"), "7");

    // Every replica serves the same JWKS for `default`.
    let mut first: Option<Value> = None;
    for r in &cluster.replicas {
        let (status, jwks) = get_json(&format!("{}/t/default/jwks", r.url)).await;
        assert_eq!(status, 200, "{jwks}{}", cluster.logs());
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1), "{jwks}");
        match &first {
            None => first = Some(jwks),
            Some(f) => assert_eq!(&jwks, f, "{} serves another JWKS", r.url),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_leaves_the_other_serving() {
    let mut cluster = Cluster::start(2).await;
    let (a, b) = (0, 1);
    let (client_id, secret, _) = create_account(|args| cluster.admin_json(a, args), "svc");
    let at_b = cluster.replicas[b].token_endpoint("default");
    let (status, body, _) =
        poll_token(&at_b, &client_id, &secret, 200, Duration::from_secs(1)).await;
    assert_eq!(status, 200, "{body}{}", cluster.logs());

    // A client asks B for tokens for 2 s (about every 10 ms); A is killed after 1 s.
    let start = Instant::now();
    let load = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let basic = b64std(format!(
            "{}:{}",
            form_urlencode(&client_id),
            form_urlencode(&secret)
        ));
        let mut answers: Vec<(Duration, Result<u16, String>)> = Vec::new();
        while start.elapsed() < Duration::from_secs(2) {
            let sent = start.elapsed();
            let answer = http
                .post(&at_b)
                .header("authorization", format!("Basic {basic}"))
                .form(&[("grant_type", "client_credentials"), ("resource", AUDIENCE)])
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string());
            answers.push((sent, answer));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        answers
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed_at = start.elapsed();
    let exit = cluster.replicas[a].kill_9();
    let dead_at = start.elapsed();
    let answers = load.await.unwrap();

    {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(exit.signal(), Some(9), "A died of SIGKILL: {exit:?}");
    }
    let failed: Vec<_> = answers.iter().filter(|(_, r)| r != &Ok(200)).collect();
    assert!(
        failed.is_empty(),
        "B failed {} of {} requests (A killed at {killed_at:?}, dead at {dead_at:?}): {failed:?}{}",
        failed.len(),
        answers.len(),
        cluster.logs()
    );
    let before = answers.iter().filter(|(t, _)| *t < killed_at).count();
    let after = answers.iter().filter(|(t, _)| *t > dead_at).count();
    assert!(
        before >= 10 && after >= 10,
        "too few requests around the kill: {before} before, {after} after"
    );
    // A is really gone, and B still answers the admin API and its JWKS.
    assert!(
        reqwest::Client::new()
            .get(format!("{}/healthz", cluster.replicas[a].url))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_err(),
        "A still answers after SIGKILL"
    );
    cluster.admin(b, &["sa", "show", "svc", "--tenant", "default"]);
    let (status, _) = get_json(&format!("{}/t/default/jwks", cluster.replicas[b].url)).await;
    assert_eq!(status, 200, "{}", cluster.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_needs_the_master_key_from_the_environment() {
    let db = TestDb::create();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut replica = Replica::spawn(&url, port, &db.url(), None);
    let exit = replica.wait_exit(Duration::from_secs(30));
    let log = replica.log();
    assert!(
        !exit.success(),
        "serve started without WARRANT_MASTER_KEY:\n{log}"
    );
    assert!(log.contains("WARRANT_MASTER_KEY"), "{log}");
    assert_eq!(
        db.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"),
        "0",
        "serve wrote to the database before refusing:\n{log}"
    );
    assert!(
        !replica.data.path().join("master.key").exists(),
        "serve invented a master key of its own"
    );
    assert!(!replica.credentials().exists());
}

// ---------------------------------------------------------------------------------------------
// Operator verbs: backup → restore, and SQLite → PostgreSQL import, keep every account and key.

/// A scratch PostgreSQL database, dropped when the guard goes.
struct ScratchDb {
    name: String,
}

impl ScratchDb {
    fn create() -> ScratchDb {
        let name = format!("wops_{}_{}", std::process::id(), free_port());
        let o = run(Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
            .arg(format!("CREATE DATABASE {name}")));
        assert!(
            o.status.success(),
            "PostgreSQL on 127.0.0.1:5432 is required: {}",
            describe(&o)
        );
        ScratchDb { name }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// Creates an account and a second tenant that is then deleted; returns (id, secret, endpoint).
fn populate(server: &Server) -> (String, String, String) {
    let account = create_account(|args| server.admin_json(args), "keep");
    server.admin(&[
        "api",
        "create",
        "deploy",
        "--tenant",
        "default",
        "--audience",
        AUDIENCE,
        "--scope",
        "deploy:write",
        "--owner",
        "keep",
    ]);
    server.admin(&[
        "trust",
        "create",
        "k8s",
        "--tenant",
        "default",
        "--account",
        "keep",
        "--audience",
        AUDIENCE,
        "--kubernetes",
        "ci/deployer",
        "--issuer",
        "https://k8s.example",
    ]);
    server.admin(&["tenant", "create", "gone"]);
    server.admin(&["tenant", "delete", "gone"]);
    account
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_then_restore_keeps_accounts_and_keys() {
    let mut server = Server::start().await;
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let (id, secret, endpoint) = populate(&server);
    let (_, before) = request_token(&endpoint, &id, &secret).await;
    let token = before["access_token"].as_str().unwrap().to_owned();
    // online: the server keeps running while the backup is taken
    let backup = server.logs.path().join("backup.db");
    let o = run(warrant()
        .args(["backup", "--to"])
        .arg(&backup)
        .arg("--data-dir")
        .arg(server.data.path()));
    assert!(o.status.success(), "{}", describe(&o));
    assert!(
        stderr(&o).contains("master key"),
        "the backup warns about the master key"
    );
    assert_eq!(mode(&backup), 0o600);
    assert!(
        !run(warrant()
            .args(["backup", "--to"])
            .arg(&backup)
            .arg("--data-dir")
            .arg(server.data.path()))
        .status
        .success(),
        "never overwrites"
    );
    assert!(terminate(&mut server).success());

    // restore into a new data dir: the backup plus the same master key and credentials
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&backup, restored.path().join("warrant.db")).unwrap();
    std::fs::copy(
        server.data.path().join("master.key"),
        restored.path().join("master.key"),
    )
    .unwrap();
    std::fs::copy(
        server.credentials(),
        restored.path().join("admin-credentials.json"),
    )
    .unwrap();
    drop(server);
    let server = Server::start_in(restored, port).await;
    let (status, _) = request_token(&endpoint, &id, &secret).await;
    assert_eq!(
        status, 200,
        "the account and its secret survive backup and restore"
    );
    assert_eq!(
        verify_independently(&token, &format!("{}/t/default", server.url)).await["sub"],
        id,
        "so does the signing key"
    );
    assert_eq!(
        server.admin_json(&["api", "show", "deploy", "--tenant", "default"])["audience"],
        AUDIENCE,
        "so does the registered API"
    );
    assert_eq!(
        server.admin_json(&["trust", "show", "k8s", "--tenant", "default"])["issuer"],
        "https://k8s.example",
        "so does the trust"
    );
    let again = server.admin_status(&["tenant", "create", "gone"]);
    assert!(
        !again.status.success(),
        "a deleted tenant's name stays taken: {}",
        describe(&again)
    );
    let o = run(warrant()
        .args(["migrate", "status", "--data-dir"])
        .arg(server.data.path()));
    assert!(
        o.status.success() && stdout(&o).contains("init"),
        "{}",
        describe(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_moves_a_sqlite_deployment_to_postgres() {
    let mut server = Server::start().await;
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let (id, secret, endpoint) = populate(&server);
    let (_, before) = request_token(&endpoint, &id, &secret).await;
    let token = before["access_token"].as_str().unwrap().to_owned();
    assert!(terminate(&mut server).success());

    let db = ScratchDb::create();
    // a wrong master key is refused before anything is written
    let (_, wrong) = warrant_core::MasterKey::generate().unwrap();
    let o = run(warrant()
        .env("WARRANT_MASTER_KEY", wrong.as_str())
        .args(["import", "--from"])
        .arg(server.data.path())
        .args(["--database-url", &db.url()]));
    assert!(
        !o.status.success() && stderr(&o).contains("master key"),
        "{}",
        describe(&o)
    );
    let o = run(warrant()
        .args(["import", "--from"])
        .arg(server.data.path())
        .args(["--database-url", &db.url()]));
    assert!(o.status.success(), "{}", describe(&o));
    assert!(stdout(&o).contains("3 tenants"), "{}", describe(&o));
    assert!(stdout(&o).contains("1 APIs"), "{}", describe(&o));
    assert!(stdout(&o).contains("1 trusts"), "{}", describe(&o));
    let o = run(warrant()
        .args(["import", "--from"])
        .arg(server.data.path())
        .args(["--database-url", &db.url()]));
    assert!(
        !o.status.success() && stderr(&o).contains("not empty"),
        "only into an empty database: {}",
        describe(&o)
    );

    // serve from PostgreSQL with the SQLite deployment's master key
    let key = std::fs::read_to_string(server.data.path().join("master.key")).unwrap();
    let pg_dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        server.credentials(),
        pg_dir.path().join("admin-credentials.json"),
    )
    .unwrap();
    drop(server);
    let logs = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(logs.path().join("server.log")).unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let child = warrant()
        .env("WARRANT_MASTER_KEY", key.trim())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--public-url",
            &url,
            "--database-url",
            &db.url(),
            "--data-dir",
        ])
        .arg(pg_dir.path())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut server = Server {
        child,
        url,
        data: pg_dir,
        logs,
    };
    server.wait_ready().await;
    let (status, _) = request_token(&endpoint, &id, &secret).await;
    assert_eq!(
        status,
        200,
        "the account works from PostgreSQL:\n{}",
        server.log()
    );
    assert_eq!(
        verify_independently(&token, &format!("{}/t/default", server.url)).await["sub"],
        id
    );
    server.admin(&["sa", "show", "keep", "--tenant", "default"]);
    assert_eq!(
        server.admin_json(&["api", "show", "deploy", "--tenant", "default"])["scopes"],
        json!(["deploy:write"]),
        "the registered API moves too"
    );
    assert_eq!(
        server.admin_json(&["trust", "show", "k8s", "--tenant", "default"])["conditions"][0]["equals"],
        "system:serviceaccount:ci:deployer",
        "the trust moves too"
    );
    assert!(
        !server
            .admin_status(&["tenant", "create", "gone"])
            .status
            .success(),
        "deleted names stay taken"
    );
    // `server` (declared after `db`) is dropped first: the replica stops before the database goes.
}
