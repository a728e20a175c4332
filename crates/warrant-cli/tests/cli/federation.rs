//! Workload identity federation and delegation end to end (issue 8): a real `warrant serve`
//! and local issuers on loopback, nothing leaving the machine.
//!
//! - A TLS issuer on 127.0.0.1 (its certificate signed by a test CA the server is given as
//!   `outbound.ca_file`, with `outbound.allow_networks = ["127.0.0.0/8"]`) serves discovery and
//!   JWKS for a GitHub Actions-shaped issuer (`/github`, trusted through discovery), a GitLab
//!   CI-shaped one (`/gitlab`, trusted through its `jwks_uri`) and one nobody trusts
//!   (`/unknown`). A Kubernetes-shaped cluster is trusted through a static JWKS.
//! - RFC 8693 token exchange and the RFC 7523 jwt-bearer grant with those tokens: the happy
//!   paths (the issued token checked with `warrant-verify` and independently with
//!   `jsonwebtoken`), and every refusal — forged signature, `alg: none`, untrusted issuer, wrong
//!   audience, each failing condition, too old, expired, replay under single use, another
//!   tenant's trust, escalation of scope, audience and lifetime — told to the client only by
//!   its class, never by the trust's expected values.
//! - Delegation between registered APIs: `act` chains over two hops, scopes intersected,
//!   `exp` capped, non-owners and revoked originals refused, and a watermark on an actor
//!   revoking the delegated tokens at introspection and at a verifier following the feed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warrant_jose::{Algorithm, JwkSet, SigningKey};

use super::{
    AUDIENCE, Server, b64std, b64url, client_of, create_sa_in, create_sa_with_scope,
    form_urlencode, free_port, now_secs, trust_create, verify_independently,
    verify_independently_for,
};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TT_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const TT_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const TT_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const TT_REFRESH_TOKEN: &str = "urn:ietf:params:oauth:token-type:refresh_token";

/// The audience the GitHub and Kubernetes trusts require of external tokens.
const TRUST_AUD: &str = super::TRUST_AUDIENCE;
/// The Kubernetes cluster's service-account issuer (never fetched: static JWKS).
const K8S_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The GitHub trust's repository owner id.
const OWNER_ID: &str = "1234567";

/// A `jti` no other token of this process has.
fn fresh_jti(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        now_secs(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------------------------------------
// External tokens

/// A compact JWS of `claims` signed by `key`, its header naming `kid` (which need not be
/// `key`'s own: a forger copies the trusted kid).
fn mint(key: &SigningKey, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": key.alg().as_str(), "typ": "JWT", "kid": kid});
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let sig = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64url(&sig))
}

/// `alg: none`, an empty signature.
fn unsigned(kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": kid});
    format!(
        "{}.{}.",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}

/// Claims shaped like a GitHub Actions OIDC token for a push to `git_ref` of `repository`.
fn github_claims(iss: &str, repository: &str, git_ref: &str) -> Value {
    let now = now_secs();
    let owner = repository.split('/').next().unwrap();
    json!({
        "jti": fresh_jti("gh"),
        "sub": format!("repo:{repository}:ref:{git_ref}"),
        "aud": TRUST_AUD,
        "ref": git_ref,
        "sha": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4",
        "repository": repository,
        "repository_owner": owner,
        "repository_owner_id": OWNER_ID,
        "repository_id": "987654321",
        "repository_visibility": "private",
        "run_id": "8123456789",
        "run_number": "42",
        "run_attempt": "1",
        "actor": "octocat",
        "actor_id": "583231",
        "workflow": "deploy",
        "workflow_ref": format!("{repository}/.github/workflows/deploy.yml@{git_ref}"),
        "job_workflow_ref": format!("{repository}/.github/workflows/deploy.yml@{git_ref}"),
        "event_name": "push",
        "ref_type": "branch",
        "ref_protected": "true",
        "head_ref": "",
        "base_ref": "",
        "runner_environment": "github-hosted",
        "iss": iss,
        "nbf": now - 5,
        "iat": now - 5,
        "exp": now + 300,
    })
}

/// Claims shaped like a GitLab CI `id_tokens` token (`ref_protected` is a *string*).
fn gitlab_claims(
    iss: &str,
    aud: &str,
    project_path: &str,
    git_ref: &str,
    protected: &str,
) -> Value {
    let now = now_secs();
    let namespace = project_path.rsplit_once('/').unwrap().0;
    json!({
        "namespace_id": "72",
        "namespace_path": namespace,
        "project_id": "20",
        "project_path": project_path,
        "user_id": "1",
        "user_login": "ci-bot",
        "user_email": "ci-bot@acme.example",
        "user_access_level": "maintainer",
        "pipeline_id": "574",
        "pipeline_source": "push",
        "job_id": "302",
        "ref": git_ref,
        "ref_type": "branch",
        "ref_path": format!("refs/heads/{git_ref}"),
        "ref_protected": protected,
        "runner_id": 1,
        "runner_environment": "self-hosted",
        "sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
        "project_visibility": "private",
        "ci_config_ref_uri": format!("gitlab.acme.example/{project_path}//.gitlab-ci.yml@refs/heads/{git_ref}"),
        "jti": fresh_jti("gl"),
        "iss": iss,
        "iat": now - 5,
        "nbf": now - 10,
        "exp": now + 3600,
        "sub": format!("project_path:{project_path}:ref_type:branch:ref:{git_ref}"),
        "aud": aud,
    })
}

/// Claims shaped like a projected Kubernetes service-account token.
fn k8s_claims(namespace: &str, service_account: &str) -> Value {
    let now = now_secs();
    json!({
        "aud": [TRUST_AUD],
        "exp": now + 3600,
        "iat": now - 5,
        "nbf": now - 5,
        "iss": K8S_ISSUER,
        "jti": fresh_jti("k8s"),
        "kubernetes.io": {
            "namespace": namespace,
            "node": {"name": "node-1", "uid": "6b1e2f3a-0000-4000-8000-000000000001"},
            "pod": {"name": "runner-7f9c4d-x2k8q", "uid": "6b1e2f3a-0000-4000-8000-000000000002"},
            "serviceaccount": {"name": service_account, "uid": "6b1e2f3a-0000-4000-8000-000000000003"},
        },
        "sub": format!("system:serviceaccount:{namespace}:{service_account}"),
    })
}

// ---------------------------------------------------------------------------------------------
// A TLS issuer on loopback: discovery and JWKS per issuer path

/// The issuers' server: `{base}/{name}` is an issuer for each name it was started with.
struct Issuers {
    base: String,
    /// The test CA (PEM) that signed the server's certificate, for `outbound.ca_file`.
    ca_file: std::path::PathBuf,
    dir: tempfile::TempDir,
    /// The paths requested so far, in order.
    requests: Arc<Mutex<Vec<String>>>,
}

impl Issuers {
    fn issuer(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    fn requested(&self, prefix: &str) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.starts_with(prefix))
            .cloned()
            .collect()
    }
}

/// A test CA and a certificate it signed for `127.0.0.1` and `localhost`, as rustls wants them.
fn pki() -> (
    String,
    rustls_pki_types::CertificateDer<'static>,
    rustls_pki_types::PrivateKeyDer<'static>,
) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "Federation test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (
        ca_pem,
        cert.der().clone(),
        rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    )
}

/// Starts the issuers' server; `keys` maps an issuer name to the keys its JWKS publishes.
async fn start_issuers(keys: &[(&str, &SigningKey)]) -> Issuers {
    let (ca_pem, cert, key) = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let base = format!("https://{addr}");
    let mut routes: HashMap<String, Vec<u8>> = HashMap::new();
    for (name, k) in keys {
        let issuer = format!("{base}/{name}");
        // What GitHub's discovery document holds, give or take the claims list.
        let discovery = json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/jwks"),
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref",
                                 "repository", "repository_owner_id", "project_path"],
            "id_token_signing_alg_values_supported": [k.alg().as_str()],
            "scopes_supported": ["openid"],
        });
        routes.insert(
            format!("/{name}/.well-known/openid-configuration"),
            discovery.to_string().into_bytes(),
        );
        let jwks = JwkSet {
            keys: vec![k.public_jwk().clone()],
        };
        routes.insert(format!("/{name}/jwks"), serde_json::to_vec(&jwks).unwrap());
    }
    let routes = Arc::new(routes);
    let requests: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, routes, seen) = (acceptor.clone(), routes.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 2048];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                seen.lock().unwrap().push(path.clone());
                let answer = match routes.get(&path) {
                    Some(body) => {
                        let mut a = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\ncache-control: max-age=60\r\n\
                             connection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        a.extend_from_slice(body);
                        a
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = tls.write_all(&answer).await;
                let _ = tls.flush().await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Issuers {
        base,
        ca_file,
        dir,
        requests,
    }
}

// ---------------------------------------------------------------------------------------------
// The server and requests to it

/// What the token endpoint answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    text: String,
    cache_control: Option<String>,
}

impl Answer {
    /// The access token, or a placeholder that decodes to `{}` when there is none.
    fn token_or_empty(&self) -> &str {
        self.body["access_token"].as_str().unwrap_or("e30.e30.")
    }

    fn token(&self) -> &str {
        self.body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token: {} {}", self.status, self.text))
    }
}

/// `POST endpoint` with `form`, authenticated with client_secret_basic when `client` is set.
async fn post_form(endpoint: &str, form: &[(&str, &str)], client: Option<(&str, &str)>) -> Answer {
    let mut req = reqwest::Client::new().post(endpoint).form(form);
    if let Some((id, secret)) = client {
        let basic = b64std(format!("{}:{}", form_urlencode(id), form_urlencode(secret)));
        req = req.header("authorization", format!("Basic {basic}"));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let cache_control = r
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        body,
        text,
        cache_control,
    }
}

/// A token exchange of `subject` (of `subject_type`) with `extra` parameters.
async fn exchange(
    endpoint: &str,
    subject: &str,
    subject_type: &str,
    extra: &[(&str, &str)],
    client: Option<(&str, &str)>,
) -> Answer {
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", subject_type),
    ];
    form.extend_from_slice(extra);
    post_form(endpoint, &form, client).await
}

/// A jwt-bearer grant with `assertion` and `extra` parameters.
async fn jwt_bearer(endpoint: &str, assertion: &str, extra: &[(&str, &str)]) -> Answer {
    let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
    form.extend_from_slice(extra);
    post_form(endpoint, &form, None).await
}

/// A client_credentials grant at `endpoint` for `client`, with `extra` parameters; it must
/// succeed.
async fn client_credentials(
    endpoint: &str,
    client: (&str, &str),
    extra: &[(&str, &str)],
) -> Answer {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    let a = post_form(endpoint, &form, Some(client)).await;
    assert_eq!(a.status, 200, "{}: {}", client.0, a.text);
    a
}

/// A token exchange of `subject` (a JWT) at `endpoint` for a token to [`AUDIENCE`], with
/// `extra` parameters.
async fn exchange_jwt(
    endpoint: &str,
    subject: &str,
    extra: &[(&str, &str)],
    client: Option<(&str, &str)>,
) -> Answer {
    let mut form = vec![("audience", AUDIENCE)];
    form.extend_from_slice(extra);
    exchange(endpoint, subject, TT_JWT, &form, client).await
}

/// [`refusal`] with status 400, any description and nothing in particular to hide.
fn refused(what: &str, a: &Answer, error: &str) -> Option<String> {
    refusal(what, a, 400, error, "", &[])
}

/// [`refusal`] with 400 invalid_request.
fn invalid_request(what: &str, a: &Answer, class: &str, never: &[&str]) -> Option<String> {
    refusal(what, a, 400, "invalid_request", class, never)
}

/// Checks a refusal: `status`, `error`, no token, an `error_description` containing `class`
/// (when not empty), and none of `never` anywhere in the body. Returns what is wrong.
fn refusal(
    what: &str,
    a: &Answer,
    status: u16,
    error: &str,
    class: &str,
    never: &[&str],
) -> Option<String> {
    let mut wrong = Vec::new();
    if a.status != status || a.body["error"] != error {
        wrong.push(format!("expected {status} {error}"));
    }
    if a.body.get("access_token").is_some() {
        wrong.push("a token was issued".to_owned());
    }
    let description = a.body["error_description"].as_str().unwrap_or_default();
    if !class.is_empty() && !description.contains(class) {
        wrong.push(format!("error_description should name the class {class:?}"));
    }
    for n in never {
        if a.text.contains(n) {
            wrong.push(format!("the body reveals {n:?}"));
        }
    }
    (!wrong.is_empty())
        .then(|| format!("{what}: {}; got {} {}", wrong.join(", "), a.status, a.text))
}

/// Panics listing every problem, if there are any.
fn all_hold(problems: Vec<Option<String>>, log: &str) {
    let problems: Vec<String> = problems.into_iter().flatten().collect();
    assert!(
        problems.is_empty(),
        "{} problem(s):\n- {}\n--- server log (tail)\n{}",
        problems.len(),
        problems.join("\n- "),
        tail(log)
    );
}

/// Panics unless `a` is a successful exchange answer (see [`exchange_answer_problems`]).
fn assert_exchanged(what: &str, a: &Answer, server: &Server) {
    all_hold(vec![exchange_answer_problems(what, a)], &server.log());
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The claims of a token, unverified (for the ones verified elsewhere).
fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Warrant's own verifier (`warrant-verify`) for `issuer`, following its revocation feed with
/// `feed` (any account of the tenant), ready.
async fn our_verifier(issuer: &str, feed: (&str, &str)) -> warrant_verify::Verifier {
    let config = warrant_verify::VerifierConfig::new(vec![warrant_verify::IssuerConfig {
        issuer: issuer.to_owned(),
        jwks_uri: None,
        feed: Some(warrant_verify::FeedCredentials {
            client_id: feed.0.to_owned(),
            client_secret: feed.1.to_owned(),
        }),
    }]);
    let v = warrant_verify::Verifier::start(config).unwrap();
    assert!(
        v.wait_ready(Duration::from_secs(15)).await,
        "the verifier has no keys or feed for {issuer}"
    );
    v
}

/// A request bearing `token`, checked by `v` for `audience`.
async fn our_check(
    v: &warrant_verify::Verifier,
    token: &str,
    audience: &str,
) -> Result<warrant_verify::Verified, warrant_verify::Denial> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    let presented = warrant_verify::Presented {
        method: "GET",
        url: "http://127.0.0.1/resource",
        headers: &headers,
        client_certificate: None,
    };
    let rule = warrant_verify::Requirement {
        audiences: vec![audience.to_owned()],
        ..Default::default()
    };
    v.check(&presented, &rule).await
}

/// [`our_check`], which must accept the token.
async fn our_accepts(
    v: &warrant_verify::Verifier,
    token: &str,
    audience: &str,
) -> warrant_verify::Verified {
    our_check(v, token, audience)
        .await
        .unwrap_or_else(|d| panic!("warrant-verify refuses it: {d:?}"))
}

/// `POST {issuer}/introspect` with client_secret_basic; the JSON body.
async fn introspect(issuer: &str, client: (&str, &str), token: &str) -> Value {
    let a = post_form(
        &format!("{issuer}/introspect"),
        &[("token", token)],
        Some(client),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

/// An admin token (audience `{url}/admin`, scope `admin`) from the credentials file.
async fn admin_token(server: &Server) -> String {
    let creds: Value =
        serde_json::from_slice(&std::fs::read(server.credentials()).unwrap()).unwrap();
    let a = client_credentials(
        &format!("{}/token", creds["issuer"].as_str().unwrap()),
        (
            creds["client_id"].as_str().unwrap(),
            creds["client_secret"].as_str().unwrap(),
        ),
        &[
            ("resource", &format!("{}/admin", server.url)),
            ("scope", "admin"),
        ],
    )
    .await;
    a.token().to_owned()
}

/// Whether one of the `audit` records is of `action` and mentions `needle`.
fn audited(audit: &[String], action: &str, needle: &str) -> bool {
    audit
        .iter()
        .any(|r| r.contains(action) && r.contains(needle))
}

/// A problem unless a `token.refuse` record of tenant `default` names `needle`.
fn refusal_unaudited(server: &Server, needle: &str) -> Option<String> {
    let audit = token_audit(server, "default");
    (!audited(&audit, "token.refuse", needle))
        .then(|| format!("no token.refuse record names {needle:?}: {audit:#?}"))
}

/// The token and refusal records of a tenant's audit log, as JSON text, one per record.
fn token_audit(server: &Server, tenant: &str) -> Vec<String> {
    let records = server.admin_json(&[
        "audit", "query", "--tenant", tenant, "--action", "token.", "--all",
    ]);
    records
        .as_array()
        .unwrap()
        .iter()
        .map(Value::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The federation fixture

/// A server trusting three external issuers for the account `deployer` of tenant `default`:
///
/// - `github`: GitHub Actions template, discovery at `{issuers}/github`, `acme/api` on
///   `refs/heads/main` with owner id [`OWNER_ID`], audience [`TRUST_AUD`], capped at 5 min;
/// - `gitlab`: created over the admin API, `jwks_uri` at `{issuers}/gitlab/jwks`, `acme/api`
///   on protected `main`, audience = the tenant's issuer (so its tokens also serve as
///   jwt-bearer assertions), single use;
/// - `k8s`: Kubernetes template, static JWKS, `system:serviceaccount:ci:deployer`, audience
///   [`TRUST_AUD`].
///
/// `deployer` holds `deploy:read deploy:write` on [`AUDIENCE`] (its default audience, default
/// lifetime 10 min); `bystander` holds `deploy:read` there.
struct Fed {
    server: Server,
    issuers: Issuers,
    github: SigningKey,
    gitlab: SigningKey,
    k8s: SigningKey,
    /// Signs for `{issuers}/unknown`, which no trust names.
    unknown: SigningKey,
    /// A key nobody publishes, for forgeries.
    forger: SigningKey,
    /// `{url}/t/default`.
    issuer: String,
    endpoint: String,
    deployer: Value,
    bystander: Value,
}

impl Fed {
    async fn start() -> Fed {
        let (github, _) = SigningKey::generate(Algorithm::Rs256).unwrap();
        let (gitlab, _) = SigningKey::generate(Algorithm::Rs256).unwrap();
        let (k8s, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let (unknown, _) = SigningKey::generate(Algorithm::Rs256).unwrap();
        let (forger, _) = SigningKey::generate(Algorithm::Rs256).unwrap();
        let issuers = start_issuers(&[
            ("github", &github),
            ("gitlab", &gitlab),
            ("unknown", &unknown),
        ])
        .await;
        let config = issuers.dir.path().join("warrant.toml");
        std::fs::write(
            &config,
            format!(
                "[outbound]\nallow_networks = [\"127.0.0.0/8\"]\nca_file = {:?}\n",
                issuers.ca_file.display().to_string()
            ),
        )
        .unwrap();
        let server =
            Server::start_with(tempfile::tempdir().unwrap(), free_port(), Some(&config)).await;
        let deployer = create_sa_with_scope(
            |a| server.admin_json(a),
            "deployer",
            "deploy:read deploy:write",
        );
        let bystander = create_sa_with_scope(|a| server.admin_json(a), "bystander", "deploy:read");
        let issuer = deployer["issuer"].as_str().unwrap().to_owned();
        let endpoint = deployer["token_endpoint"].as_str().unwrap().to_owned();

        let trust =
            |name: &str, rest: &[&str]| server.admin_json(&trust_create(name, "deployer", rest));
        let gh = trust(
            "github",
            &[
                "--github",
                "acme/api",
                "--ref",
                "refs/heads/main",
                "--repository-owner-id",
                OWNER_ID,
                "--issuer",
                &issuers.issuer("github"),
                "--max-lifetime",
                "5m",
            ],
        );
        assert_eq!(gh["jwks"], "discovery", "{gh}");
        let jwks_file = issuers.dir.path().join("cluster-jwks.json");
        std::fs::write(
            &jwks_file,
            serde_json::to_vec(&JwkSet {
                keys: vec![k8s.public_jwk().clone()],
            })
            .unwrap(),
        )
        .unwrap();
        trust(
            "k8s",
            &[
                "--kubernetes",
                "ci/deployer",
                "--issuer",
                K8S_ISSUER,
                "--jwks-file",
                jwks_file.to_str().unwrap(),
            ],
        );
        // GitLab over the admin API itself.
        let body = json!({
            "name": "gitlab",
            "issuer": issuers.issuer("gitlab"),
            "jwks": {"jwks_uri": format!("{}/jwks", issuers.issuer("gitlab"))},
            "audience": issuer,
            "conditions": [{"claim": "project_path", "equals": "acme/api"},
                           {"claim": "ref", "equals": "main"},
                           {"claim": "ref_protected", "equals": "true"}],
            "max_age_seconds": 3600,
            "single_use": true,
            "account": "deployer",
            "copy_claims": ["project_path", "ref", "pipeline_id", "namespace_path"],
        });
        let r = reqwest::Client::new()
            .post(format!("{}/admin/v1/tenants/default/trusts", server.url))
            .bearer_auth(admin_token(&server).await)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
        Fed {
            server,
            issuers,
            github,
            gitlab,
            k8s,
            unknown,
            forger,
            issuer,
            endpoint,
            deployer,
            bystander,
        }
    }

    fn deployer_id(&self) -> &str {
        self.deployer["id"].as_str().unwrap()
    }

    fn deployer_client(&self) -> (&str, &str) {
        client_of(&self.deployer)
    }

    fn bystander_client(&self) -> (&str, &str) {
        client_of(&self.bystander)
    }

    fn github_token(&self, claims: &Value) -> String {
        mint(&self.github, self.github.kid(), claims)
    }

    fn good_github(&self) -> String {
        self.github_token(&github_claims(
            &self.issuers.issuer("github"),
            "acme/api",
            "refs/heads/main",
        ))
    }

    fn gitlab_token(&self, claims: &Value) -> String {
        mint(&self.gitlab, self.gitlab.kid(), claims)
    }

    fn good_gitlab(&self) -> String {
        self.gitlab_token(&gitlab_claims(
            &self.issuers.issuer("gitlab"),
            &self.issuer,
            "acme/api",
            "main",
            "true",
        ))
    }

    fn k8s_token(&self, claims: &Value) -> String {
        mint(&self.k8s, self.k8s.kid(), claims)
    }

    /// Exchanges `subject` (a JWT) for a token to [`AUDIENCE`], no client authentication.
    async fn exchange(&self, subject: &str, extra: &[(&str, &str)]) -> Answer {
        exchange_jwt(&self.endpoint, subject, extra, None).await
    }

    /// The claims of `token`, verified independently and checked to be a token of
    /// `deployer` federated from `iss`.
    async fn verified_deployers(&self, token: &str, iss: &str) -> Value {
        let issued = verify_independently(token, &self.issuer).await;
        assert_eq!(issued["sub"], self.deployer_id(), "{issued}");
        assert_eq!(issued["client_id"], self.deployer["client_id"], "{issued}");
        assert_eq!(issued["federated"]["iss"], iss, "{issued}");
        issued
    }
}

/// The checks every successful exchange answer passes: RFC 8693 §2.2.1 fields, `no-store`.
fn exchange_answer_problems(what: &str, a: &Answer) -> Option<String> {
    if a.status != 200 {
        return Some(format!("{what}: expected 200, got {} {}", a.status, a.text));
    }
    let mut wrong = Vec::new();
    if a.body["issued_token_type"] != TT_ACCESS_TOKEN {
        wrong.push("issued_token_type");
    }
    if !a.body["token_type"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
    {
        wrong.push("token_type");
    }
    if a.body["expires_in"].as_i64().is_none_or(|e| e <= 0) {
        wrong.push("expires_in");
    }
    if !a.body["scope"].is_string() {
        wrong.push("scope");
    }
    if !a
        .cache_control
        .as_deref()
        .is_some_and(|c| c.contains("no-store"))
    {
        wrong.push("Cache-Control: no-store");
    }
    (!wrong.is_empty()).then(|| format!("{what}: wrong or missing {wrong:?} in {}", a.text))
}

// ---------------------------------------------------------------------------------------------
// GitHub Actions

/// A GitHub Actions-shaped token, its keys found by discovery over https, is exchanged without
/// any client secret for a token of the mapped account; the token verifies with Warrant's
/// verifier and with jsonwebtoken, carries `federated`, and the issuance is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_actions_token_is_exchanged_through_discovery() {
    let fed = Fed::start().await;
    let gh_iss = fed.issuers.issuer("github");
    let claims = github_claims(&gh_iss, "acme/api", "refs/heads/main");
    let subject = fed.github_token(&claims);
    let a = fed.exchange(&subject, &[("scope", "deploy:write")]).await;
    assert_exchanged("exchange", &a, &fed.server);
    assert_eq!(a.body["scope"], "deploy:write", "{}", a.text);
    assert!(
        !fed.issuers
            .requested("/github/.well-known/openid-configuration")
            .is_empty()
            && !fed.issuers.requested("/github/jwks").is_empty(),
        "the keys came from discovery: {:?}",
        fed.issuers.requests.lock().unwrap()
    );

    // Independently verified: ES256 at+jwt of the tenant, for AUDIENCE.
    let token = a.token();
    let issued = fed.verified_deployers(token, &gh_iss).await;
    assert_eq!(issued["aud"], AUDIENCE, "{issued}");
    assert_eq!(issued["scope"], "deploy:write", "{issued}");
    assert!(issued.get("act").is_none(), "no actor: {issued}");
    let federated = &issued["federated"];
    assert_eq!(federated["sub"], "repo:acme/api:ref:refs/heads/main");
    for copied in ["repository", "ref", "sha", "workflow", "run_id", "actor"] {
        assert_eq!(federated[copied], claims[copied], "{copied}: {issued}");
    }
    for not_copied in ["repository_visibility", "aud", "exp", "jti", "actor_id"] {
        assert!(
            federated.get(not_copied).is_none(),
            "{not_copied} copied: {issued}"
        );
    }
    let lifetime = issued["exp"].as_i64().unwrap() - issued["iat"].as_i64().unwrap();
    assert!(
        lifetime <= 300 && a.body["expires_in"].as_i64().unwrap() <= 300,
        "the trust caps the lifetime at 5 min: {lifetime} s, {}",
        a.text
    );

    // Warrant's own verifier agrees.
    let v = our_verifier(&fed.issuer, fed.bystander_client()).await;
    let verified = our_accepts(&v, token, AUDIENCE).await;
    assert_eq!(verified.sub, fed.deployer_id());
    assert_eq!(
        verified.claim("federated.repository"),
        Some(&json!("acme/api"))
    );

    // The other subject token types, an explicit requested_token_type, and `aud` as an array.
    let mut problems = Vec::new();
    for (subject_type, requested) in [
        (TT_ID_TOKEN, None),
        (TT_JWT, Some(TT_ACCESS_TOKEN)),
        (TT_JWT, Some(TT_JWT)),
        (TT_ID_TOKEN, Some(TT_ACCESS_TOKEN)),
    ] {
        let mut extra = vec![("audience", AUDIENCE)];
        if let Some(r) = requested {
            extra.push(("requested_token_type", r));
        }
        let a = exchange(&fed.endpoint, &subject, subject_type, &extra, None).await;
        problems.push(exchange_answer_problems(
            &format!("subject_token_type {subject_type}, requested {requested:?}"),
            &a,
        ));
    }
    let mut listed = github_claims(&gh_iss, "acme/api", "refs/heads/main");
    listed["aud"] = json!(["https://someone-else.example", TRUST_AUD]);
    let a = fed.exchange(&fed.github_token(&listed), &[]).await;
    problems.push(exchange_answer_problems("aud as an array", &a));
    // `resource` names the audience as well as `audience` does.
    let a = exchange(
        &fed.endpoint,
        &subject,
        TT_JWT,
        &[("resource", AUDIENCE)],
        None,
    )
    .await;
    problems.push(exchange_answer_problems("resource", &a));
    if a.status == 200 && claims_of(a.token())["aud"] != AUDIENCE {
        problems.push(Some(format!("resource: wrong aud in {}", a.text)));
    }
    all_hold(problems, &fed.server.log());

    // The issuance is audited with the token's jti.
    let jti = issued["jti"].as_str().unwrap();
    let audit = token_audit(&fed.server, "default");
    assert!(
        audited(&audit, "token.issue", jti),
        "no token.issue record for {jti}: {audit:#?}"
    );
}

/// Every way a GitHub-shaped token can fail the trust is refused with 400 invalid_request
/// naming only the class of the failure, never what the trust expects; the audit record
/// names the exact condition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_actions_refusals_name_only_the_class() {
    let fed = Fed::start().await;
    let gh_iss = fed.issuers.issuer("github");
    let claims = |repo: &str, git_ref: &str| github_claims(&gh_iss, repo, git_ref);
    let good = || claims("acme/api", "refs/heads/main");
    // What the trust expects must never reach a client.
    let secrets = [
        "acme/api\"",
        "\"acme/api",
        OWNER_ID,
        "refs/heads/main\"",
        TRUST_AUD,
    ];
    let condition = "condition";

    let mut cases: Vec<(&str, String, &str)> = Vec::new();
    // First: only the first refusal from one source within the audit's aggregation window is
    // recorded one by one (later ones with the same error code are counted together).
    let mut renamed = good();
    renamed["repository_owner_id"] = json!("7654321");
    cases.push((
        "a re-registered owner name",
        fed.github_token(&renamed),
        condition,
    ));
    cases.push((
        "a fork",
        fed.github_token(&claims("acme-evil/api", "refs/heads/main")),
        condition,
    ));
    cases.push((
        "another branch",
        fed.github_token(&claims("acme/api", "refs/heads/main-evil")),
        condition,
    ));
    let mut no_repo = good();
    no_repo.as_object_mut().unwrap().remove("repository");
    cases.push(("no repository claim", fed.github_token(&no_repo), condition));
    cases.push((
        "a forged signature (another key, the trusted kid)",
        mint(&fed.forger, fed.github.kid(), &good()),
        "signature",
    ));
    cases.push((
        "a flipped signature bit",
        super::bit_flipped(&fed.good_github()),
        "signature",
    ));
    cases.push((
        "signed by the GitLab issuer's key but claiming GitHub",
        mint(&fed.gitlab, fed.gitlab.kid(), &good()),
        "signature",
    ));
    let mut untrusted = good();
    untrusted["iss"] = json!(fed.issuers.issuer("unknown"));
    cases.push((
        "an untrusted issuer",
        mint(&fed.unknown, fed.unknown.kid(), &untrusted),
        // Told apart from a bad signature, it would list the tenant's trusted issuers.
        "signature",
    ));
    let mut wrong_aud = good();
    wrong_aud["aud"] = json!("https://attacker.example");
    cases.push((
        "the wrong audience",
        fed.github_token(&wrong_aud),
        "audience",
    ));
    let now = now_secs();
    let mut old = good();
    old["iat"] = json!(now - 700);
    old["nbf"] = json!(now - 700);
    old["exp"] = json!(now + 300);
    cases.push((
        "issued 700 s ago (max age 600 s)",
        fed.github_token(&old),
        "too long ago",
    ));
    let mut expired = good();
    expired["iat"] = json!(now - 400);
    expired["nbf"] = json!(now - 400);
    expired["exp"] = json!(now - 100);
    cases.push(("expired", fed.github_token(&expired), "expired"));

    let mut problems = Vec::new();
    for (what, token, class) in &cases {
        let a = fed.exchange(token, &[]).await;
        problems.push(invalid_request(what, &a, class, &secrets));
    }
    // alg none: refused, whatever the class given.
    let a = fed
        .exchange(&unsigned(fed.github.kid(), &good()), &[])
        .await;
    problems.push(invalid_request("alg none", &a, "", &secrets));
    // A token that is no JWT at all.
    let a = fed.exchange("not-a-jwt", &[]).await;
    problems.push(invalid_request("garbage", &a, "", &secrets));
    // The server never fetched anything for the issuer no trust names.
    let fetched = fed.issuers.requested("/unknown/");
    if !fetched.is_empty() {
        problems.push(Some(format!(
            "the server fetched {fetched:?} for an untrusted issuer"
        )));
    }
    // The same good token still works: nothing above was a side effect on the trust.
    problems.push(exchange_answer_problems(
        "the good token afterwards",
        &fed.exchange(&fed.good_github(), &[]).await,
    ));
    // The audit records name the exact failing condition (the claim), which clients never see.
    problems.push(refusal_unaudited(&fed.server, "repository_owner_id"));
    all_hold(problems, &fed.server.log());
}

/// RFC 8693 parameters: unsupported subject and requested token types, an actor token and
/// missing parameters are `invalid_request`; two audiences are `invalid_target`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_parameters_are_checked() {
    let fed = Fed::start().await;
    let subject = fed.good_github();
    let e = &fed.endpoint;
    let mut problems = Vec::new();
    let a = exchange(e, &subject, TT_REFRESH_TOKEN, &[], None).await;
    problems.push(refused(
        "subject_token_type refresh_token",
        &a,
        "invalid_request",
    ));
    let a = exchange(e, &subject, "urn:example:unknown", &[], None).await;
    problems.push(refused(
        "an unknown subject_token_type",
        &a,
        "invalid_request",
    ));
    for requested in [
        TT_REFRESH_TOKEN,
        TT_ID_TOKEN,
        "urn:ietf:params:oauth:token-type:saml2",
    ] {
        let a = exchange(
            e,
            &subject,
            TT_JWT,
            &[("requested_token_type", requested)],
            None,
        )
        .await;
        problems.push(refused(
            &format!("requested_token_type {requested}"),
            &a,
            "invalid_request",
        ));
    }
    let actor = fed.good_github();
    let a = exchange(
        e,
        &subject,
        TT_JWT,
        &[("actor_token", &actor), ("actor_token_type", TT_JWT)],
        None,
    )
    .await;
    problems.push(refused("an actor_token", &a, "invalid_request"));
    let a = post_form(
        e,
        &[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token_type", TT_JWT),
        ],
        None,
    )
    .await;
    problems.push(refused("no subject_token", &a, "invalid_request"));
    let a = post_form(
        e,
        &[("grant_type", TOKEN_EXCHANGE), ("subject_token", &subject)],
        None,
    )
    .await;
    problems.push(refused("no subject_token_type", &a, "invalid_request"));
    let a = exchange(
        e,
        &subject,
        TT_JWT,
        &[
            ("audience", AUDIENCE),
            ("audience", "https://other.internal"),
        ],
        None,
    )
    .await;
    problems.push(refused("two audiences", &a, "invalid_target"));
    let a = post_form(e, &[("grant_type", JWT_BEARER)], None).await;
    problems.push(refused(
        "jwt-bearer without an assertion",
        &a,
        "invalid_request",
    ));
    // The same subject token with acceptable parameters works (the refusals were the
    // parameters' doing).
    problems.push(exchange_answer_problems(
        "the control",
        &exchange_jwt(e, &subject, &[], None).await,
    ));
    all_hold(problems, &fed.server.log());
}

/// Federation cannot escalate: a scope or an audience the account is not granted is refused
/// (`invalid_scope`, `invalid_target`), the trust's lifetime cap holds, and a client that
/// authenticates as well must be the trust's own account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federation_cannot_escalate_scope_audience_or_lifetime() {
    let fed = Fed::start().await;
    let subject = fed.good_github();
    let mut problems = Vec::new();
    let a = fed.exchange(&subject, &[("scope", "deploy:admin")]).await;
    problems.push(refused("a scope not granted", &a, "invalid_scope"));
    let a = fed
        .exchange(&subject, &[("scope", "deploy:read deploy:admin")])
        .await;
    problems.push(refused("one scope granted, one not", &a, "invalid_scope"));
    let a = exchange(
        &fed.endpoint,
        &subject,
        TT_JWT,
        &[("audience", "https://other.internal")],
        None,
    )
    .await;
    problems.push(refused("an audience not granted", &a, "invalid_target"));
    let admin_aud = format!("{}/admin", fed.server.url);
    let a = exchange(
        &fed.endpoint,
        &subject,
        TT_JWT,
        &[("audience", &admin_aud), ("scope", "admin")],
        None,
    )
    .await;
    if a.status == 200 {
        problems.push(Some(format!("the admin audience was issued: {}", a.text)));
    }

    // Lifetime: the account's default is 10 min, the trust caps at 5 min.
    let a = fed.exchange(&subject, &[]).await;
    problems.push(exchange_answer_problems("no scope asked", &a));
    if a.status == 200 {
        let claims = claims_of(a.token());
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        if lifetime > 300 || a.body["expires_in"].as_i64().unwrap_or(i64::MAX) > 300 {
            problems.push(Some(format!(
                "lifetime {lifetime} s beyond the trust's 300 s cap: {}",
                a.text
            )));
        }
        if a.body["scope"] != "deploy:read deploy:write"
            && a.body["scope"] != "deploy:write deploy:read"
        {
            problems.push(Some(format!(
                "no scope asked: the granted set expected: {}",
                a.text
            )));
        }
    }

    // A client that authenticates too: the trust's account may, another may not.
    let a = exchange_jwt(&fed.endpoint, &subject, &[], Some(fed.deployer_client())).await;
    problems.push(exchange_answer_problems(
        "authenticated as the trust's account",
        &a,
    ));
    if a.status == 200 && claims_of(a.token())["sub"] != fed.deployer_id() {
        problems.push(Some(format!("wrong sub: {}", a.text)));
    }
    let a = exchange_jwt(&fed.endpoint, &subject, &[], Some(fed.bystander_client())).await;
    if a.status == 200
        || !(a.body["error"] == "invalid_request" || a.body["error"] == "unauthorized_client")
    {
        problems.push(Some(format!(
            "authenticated as another account: expected 400 invalid_request (or \
             unauthorized_client), got {} {}",
            a.status, a.text
        )));
    }
    let a = exchange_jwt(
        &fed.endpoint,
        &subject,
        &[],
        Some((fed.deployer_client().0, "not-the-secret")),
    )
    .await;
    problems.push(refusal(
        "the trust's account with a wrong secret",
        &a,
        401,
        "invalid_client",
        "",
        &[],
    ));
    all_hold(problems, &fed.server.log());
}

// ---------------------------------------------------------------------------------------------
// GitLab CI

/// A GitLab CI-shaped token, its keys from the trust's `jwks_uri`, with `ref_protected` the
/// string "true", is exchanged; the copied claims are under `federated`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_ci_token_is_exchanged_through_its_jwks_uri() {
    let fed = Fed::start().await;
    let gl_iss = fed.issuers.issuer("gitlab");
    let claims = gitlab_claims(&gl_iss, &fed.issuer, "acme/api", "main", "true");
    let a = fed
        .exchange(&fed.gitlab_token(&claims), &[("scope", "deploy:read")])
        .await;
    assert_exchanged("exchange", &a, &fed.server);
    assert!(
        !fed.issuers.requested("/gitlab/jwks").is_empty(),
        "{:?}",
        fed.issuers.requests.lock().unwrap()
    );
    assert!(
        fed.issuers
            .requested("/gitlab/.well-known/openid-configuration")
            .is_empty(),
        "a jwks_uri trust needs no discovery"
    );
    let issued = fed.verified_deployers(a.token(), &gl_iss).await;
    assert_eq!(issued["scope"], "deploy:read", "{issued}");
    let federated = &issued["federated"];
    assert_eq!(
        federated["sub"],
        "project_path:acme/api:ref_type:branch:ref:main"
    );
    assert_eq!(federated["project_path"], "acme/api", "{issued}");
    assert_eq!(federated["ref"], "main", "{issued}");
    assert_eq!(federated["pipeline_id"], "574", "{issued}");
    assert_eq!(federated["namespace_path"], "acme", "{issued}");
    assert!(federated.get("user_email").is_none(), "{issued}");
    // No cap on this trust: the account's 10 min.
    let lifetime = issued["exp"].as_i64().unwrap() - issued["iat"].as_i64().unwrap();
    assert!((1..=600).contains(&lifetime), "{issued}");
    let v = our_verifier(&fed.issuer, fed.bystander_client()).await;
    let verified = our_accepts(&v, a.token(), AUDIENCE).await;
    assert_eq!(verified.sub, fed.deployer_id());
}

/// GitLab conditions: an unprotected ref, `ref_protected` as a boolean rather than GitLab's
/// string, another project, another branch — each refused as a condition, without the
/// expected values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_ci_conditions_refuse() {
    let fed = Fed::start().await;
    let gl_iss = fed.issuers.issuer("gitlab");
    let aud = fed.issuer.clone();
    let secrets = ["acme/api\"", "\"main\"", "\"true\""];
    let mut problems = Vec::new();
    let mut boolean = gitlab_claims(&gl_iss, &aud, "acme/api", "main", "true");
    boolean["ref_protected"] = json!(true);
    for (what, claims) in [
        (
            "an unprotected ref",
            gitlab_claims(&gl_iss, &aud, "acme/api", "main", "false"),
        ),
        ("ref_protected as a boolean", boolean),
        (
            "another project",
            gitlab_claims(&gl_iss, &aud, "acme/web", "main", "true"),
        ),
        (
            "a fork's project path",
            gitlab_claims(&gl_iss, &aud, "acme-evil/api", "main", "true"),
        ),
        (
            "another branch",
            gitlab_claims(&gl_iss, &aud, "acme/api", "feature", "true"),
        ),
    ] {
        let a = fed.exchange(&fed.gitlab_token(&claims), &[]).await;
        problems.push(invalid_request(what, &a, "condition", &secrets));
    }
    let a = fed.exchange(&fed.good_gitlab(), &[]).await;
    problems.push(exchange_answer_problems("the control", &a));
    problems.push(refusal_unaudited(&fed.server, "ref_protected"));
    all_hold(problems, &fed.server.log());
}

/// Under `single_use`, the first presentation of a token works and the second is refused as a
/// replay — through either grant; a token without `jti` is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_use_trust_refuses_a_replay() {
    let fed = Fed::start().await;
    let mut problems = Vec::new();
    let token = fed.good_gitlab();
    let first = fed.exchange(&token, &[]).await;
    problems.push(exchange_answer_problems("first use", &first));
    let second = fed.exchange(&token, &[]).await;
    problems.push(invalid_request(
        "second use",
        &second,
        "already been used",
        &[],
    ));
    let third = jwt_bearer(&fed.endpoint, &token, &[]).await;
    problems.push(refusal(
        "third use, as a jwt-bearer assertion",
        &third,
        400,
        "invalid_grant",
        "already been used",
        &[],
    ));
    // Used first as an assertion, then in an exchange.
    let other = fed.good_gitlab();
    let a = jwt_bearer(&fed.endpoint, &other, &[]).await;
    if a.status != 200 {
        problems.push(Some(format!(
            "jwt-bearer first use: {} {}",
            a.status, a.text
        )));
    }
    let a = fed.exchange(&other, &[]).await;
    problems.push(invalid_request(
        "an assertion replayed in an exchange",
        &a,
        "already been used",
        &[],
    ));
    let mut no_jti = gitlab_claims(
        &fed.issuers.issuer("gitlab"),
        &fed.issuer,
        "acme/api",
        "main",
        "true",
    );
    no_jti.as_object_mut().unwrap().remove("jti");
    let a = fed.exchange(&fed.gitlab_token(&no_jti), &[]).await;
    problems.push(invalid_request("no jti", &a, "jti", &[]));
    // Other trusts are not single use: the same GitHub token twice is fine.
    let gh = fed.good_github();
    problems.push(exchange_answer_problems(
        "GitHub once",
        &fed.exchange(&gh, &[]).await,
    ));
    problems.push(exchange_answer_problems(
        "GitHub twice",
        &fed.exchange(&gh, &[]).await,
    ));
    all_hold(problems, &fed.server.log());
}

/// RFC 7523 jwt-bearer: an assertion addressed to the tenant's issuer that a trust accepts
/// gets a token without a client secret; one not addressed to the tenant, or failing the
/// trust, is `invalid_grant`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_bearer_grant_accepts_assertions_for_this_tenant_only() {
    let fed = Fed::start().await;
    let gl_iss = fed.issuers.issuer("gitlab");
    let a = jwt_bearer(
        &fed.endpoint,
        &fed.good_gitlab(),
        &[("scope", "deploy:write")],
    )
    .await;
    assert_eq!(a.status, 200, "{}\n{}", a.text, tail(&fed.server.log()));
    assert!(
        a.cache_control
            .as_deref()
            .is_some_and(|c| c.contains("no-store")),
        "{a:?}"
    );
    assert!(
        a.body["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "{}",
        a.text
    );
    let issued = verify_independently(a.token(), &fed.issuer).await;
    assert_eq!(issued["sub"], fed.deployer_id(), "{issued}");
    assert_eq!(
        issued["aud"], AUDIENCE,
        "the account's default audience: {issued}"
    );
    assert_eq!(issued["scope"], "deploy:write", "{issued}");
    assert_eq!(issued["federated"]["iss"], gl_iss.as_str(), "{issued}");
    assert_eq!(issued["federated"]["project_path"], "acme/api", "{issued}");

    let mut problems = Vec::new();
    // A GitHub token the GitHub trust accepts — but addressed to TRUST_AUD, not this tenant.
    let a = jwt_bearer(&fed.endpoint, &fed.good_github(), &[]).await;
    problems.push(refusal(
        "an assertion not addressed to the tenant",
        &a,
        400,
        "invalid_grant",
        "",
        &[TRUST_AUD],
    ));
    // Addressed to the trust's audience *and* the tenant: accepted.
    let mut both = github_claims(&fed.issuers.issuer("github"), "acme/api", "refs/heads/main");
    both["aud"] = json!([TRUST_AUD, fed.issuer]);
    let a = jwt_bearer(&fed.endpoint, &fed.github_token(&both), &[]).await;
    if a.status != 200 || claims_of(a.token_or_empty())["sub"] != fed.deployer_id() {
        problems.push(Some(format!(
            "a GitHub assertion addressed to the trust's audience and the tenant: expected 200 \
             for deployer, got {} {}",
            a.status, a.text
        )));
    }
    // Addressed to the token endpoint URL or to another tenant's issuer.
    for aud in [
        fed.endpoint.clone(),
        format!("{}/t/system", fed.server.url),
        "https://attacker.example".to_owned(),
    ] {
        let claims = gitlab_claims(&gl_iss, &aud, "acme/api", "main", "true");
        let a = jwt_bearer(&fed.endpoint, &fed.gitlab_token(&claims), &[]).await;
        problems.push(refused(
            &format!("an assertion for {aud}"),
            &a,
            "invalid_grant",
        ));
    }
    // A condition failing, a forged signature, an escalation.
    let claims = gitlab_claims(&gl_iss, &fed.issuer, "acme/api", "main", "false");
    let a = jwt_bearer(&fed.endpoint, &fed.gitlab_token(&claims), &[]).await;
    problems.push(refusal(
        "an unprotected ref",
        &a,
        400,
        "invalid_grant",
        "condition",
        &["\"true\""],
    ));
    let claims = gitlab_claims(&gl_iss, &fed.issuer, "acme/api", "main", "true");
    let a = jwt_bearer(
        &fed.endpoint,
        &mint(&fed.forger, fed.gitlab.kid(), &claims),
        &[],
    )
    .await;
    problems.push(refusal(
        "a forged assertion",
        &a,
        400,
        "invalid_grant",
        "signature",
        &[],
    ));
    let a = jwt_bearer(&fed.endpoint, &unsigned(fed.gitlab.kid(), &claims), &[]).await;
    problems.push(refused("alg none", &a, "invalid_grant"));
    let a = jwt_bearer(
        &fed.endpoint,
        &fed.good_gitlab(),
        &[("scope", "deploy:admin")],
    )
    .await;
    problems.push(refused("a scope not granted", &a, "invalid_scope"));
    all_hold(problems, &fed.server.log());
}

// ---------------------------------------------------------------------------------------------
// Kubernetes

/// A projected Kubernetes service-account token, trusted through a static JWKS (nothing
/// fetched), is exchanged; the nested `kubernetes.io` claims are copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_token_with_a_static_jwks_is_exchanged() {
    let fed = Fed::start().await;
    let claims = k8s_claims("ci", "deployer");
    let a = fed.exchange(&fed.k8s_token(&claims), &[]).await;
    assert_exchanged("exchange", &a, &fed.server);
    let issued = fed.verified_deployers(a.token(), K8S_ISSUER).await;
    let federated = &issued["federated"];
    assert_eq!(
        federated["sub"], "system:serviceaccount:ci:deployer",
        "{issued}"
    );
    let k = &federated["kubernetes.io"];
    assert_eq!(k["namespace"], "ci", "{issued}");
    assert_eq!(k["serviceaccount"]["name"], "deployer", "{issued}");
    assert_eq!(k["pod"]["name"], "runner-7f9c4d-x2k8q", "{issued}");
    assert!(
        k.get("node").is_none() && k["pod"].get("uid").is_none(),
        "only the template's claims are copied: {issued}"
    );
    let v = our_verifier(&fed.issuer, fed.bystander_client()).await;
    let verified = our_accepts(&v, a.token(), AUDIENCE).await;
    assert_eq!(
        verified.claim("federated.sub"),
        Some(&json!("system:serviceaccount:ci:deployer"))
    );
    assert!(
        fed.issuers.requests.lock().unwrap().is_empty(),
        "a static JWKS trust fetches nothing (and neither did anything else here)"
    );
}

/// Another namespace's or another service account's token, a forged one, and one signed by a
/// key the cluster does not publish are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_other_service_accounts_are_refused() {
    let fed = Fed::start().await;
    let secrets = ["system:serviceaccount:ci:deployer\"", "ci:deployer\""];
    let mut problems = Vec::new();
    for (what, claims) in [
        ("another namespace", k8s_claims("prod", "deployer")),
        ("another service account", k8s_claims("ci", "deployer-evil")),
        ("the default service account", k8s_claims("ci", "default")),
    ] {
        let a = fed.exchange(&fed.k8s_token(&claims), &[]).await;
        problems.push(invalid_request(what, &a, "condition", &secrets));
    }
    // The right subject, but namespace claims that disagree with it do not help or hurt: the
    // template's condition is on `sub`. A token for another namespace with a forged `sub` needs
    // the cluster's key:
    let (other_cluster, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let a = fed
        .exchange(
            &mint(&other_cluster, fed.k8s.kid(), &k8s_claims("ci", "deployer")),
            &[],
        )
        .await;
    problems.push(invalid_request(
        "another cluster's key under the trusted kid",
        &a,
        "signature",
        &secrets,
    ));
    let a = fed
        .exchange(&unsigned(fed.k8s.kid(), &k8s_claims("ci", "deployer")), &[])
        .await;
    problems.push(invalid_request("alg none", &a, "", &secrets));
    let mut wrong_aud = k8s_claims("ci", "deployer");
    wrong_aud["aud"] = json!(["https://kubernetes.default.svc"]);
    let a = fed.exchange(&fed.k8s_token(&wrong_aud), &[]).await;
    problems.push(invalid_request(
        "the cluster's default audience",
        &a,
        "audience",
        &[TRUST_AUD],
    ));
    problems.push(exchange_answer_problems(
        "the control",
        &fed.exchange(&fed.k8s_token(&k8s_claims("ci", "deployer")), &[])
            .await,
    ));
    all_hold(problems, &fed.server.log());
}

/// A tenant's trusts are its own: tokens that `default`'s trusts accept are refused at another
/// tenant (which has an account of the same name and a trust for another repository of the
/// same issuer), through either grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_trust_is_not_used_at_another() {
    let fed = Fed::start().await;
    let tenant = fed.server.admin_json(&["tenant", "create", "payments"]);
    let other_issuer = tenant["issuer"].as_str().unwrap().to_owned();
    let other_endpoint = format!("{other_issuer}/token");
    fed.server.admin_json(&[
        "sa",
        "create",
        "deployer",
        "--tenant",
        "payments",
        "--audience",
        AUDIENCE,
        "--scope",
        "deploy:read deploy:write",
    ]);
    fed.server.admin_json(&[
        "trust",
        "create",
        "github",
        "--tenant",
        "payments",
        "--account",
        "deployer",
        "--audience",
        TRUST_AUD,
        "--github",
        "acme/payments",
        "--issuer",
        &fed.issuers.issuer("github"),
    ]);
    let mut problems = Vec::new();
    for (what, token) in [
        ("GitHub", fed.good_github()),
        ("Kubernetes", fed.k8s_token(&k8s_claims("ci", "deployer"))),
    ] {
        // Accepted at home…
        let home = fed.exchange(&token, &[]).await;
        problems.push(exchange_answer_problems(
            &format!("{what} at default"),
            &home,
        ));
        // …refused next door.
        let a = exchange_jwt(&other_endpoint, &token, &[], None).await;
        problems.push(invalid_request(
            &format!("{what} at payments"),
            &a,
            "",
            &["acme/api\"", "acme/payments"],
        ));
    }
    // A GitLab assertion addressed to default, presented at payments.
    let a = jwt_bearer(&other_endpoint, &fed.good_gitlab(), &[]).await;
    problems.push(refused(
        "a GitLab assertion for default at payments",
        &a,
        "invalid_grant",
    ));
    // Addressed to payments, but only default trusts GitLab.
    let claims = gitlab_claims(
        &fed.issuers.issuer("gitlab"),
        &other_issuer,
        "acme/api",
        "main",
        "true",
    );
    let a = jwt_bearer(&other_endpoint, &fed.gitlab_token(&claims), &[]).await;
    problems.push(refused(
        "a GitLab assertion for payments",
        &a,
        "invalid_grant",
    ));
    // And payments' own trust works there, mapping to payments' account.
    let payments_token = fed.github_token(&github_claims(
        &fed.issuers.issuer("github"),
        "acme/payments",
        "refs/heads/main",
    ));
    let a = exchange_jwt(&other_endpoint, &payments_token, &[], None).await;
    problems.push(exchange_answer_problems("payments' own trust", &a));
    if a.status == 200 {
        let c = claims_of(a.token());
        if c["iss"] != other_issuer.as_str() || c["sub"] == fed.deployer_id() {
            problems.push(Some(format!("payments' token: {c}")));
        }
    }
    // …and not at default.
    let a = fed.exchange(&payments_token, &[]).await;
    problems.push(invalid_request(
        "payments' repository at default",
        &a,
        "condition",
        &["acme/api\""],
    ));
    all_hold(problems, &fed.server.log());
}

// ---------------------------------------------------------------------------------------------
// Delegation

const FRONTEND: &str = "https://frontend.internal";
const BACKEND: &str = "https://backend.internal";
const DB: &str = "https://db.internal";

/// A tenant with three registered APIs and their owners, and callers:
///
/// - `frontend` (`read write admin`, owner `frontend-svc`), `backend` (`read write admin`,
///   owner `backend-svc`), `db` (`read write`, owner `db-svc`);
/// - `alice` holds `read write` on frontend, default lifetime 2 min; `bob` holds `read` there;
/// - `frontend-svc` holds `read admin` on backend (lifetime 10 min); `backend-svc` holds
///   `read write` on db; `intruder` holds `read` on backend but owns nothing.
struct Deleg {
    server: Server,
    issuer: String,
    endpoint: String,
    accounts: HashMap<&'static str, Value>,
}

impl Deleg {
    async fn start() -> Deleg {
        let server = Server::start().await;
        let mut accounts = HashMap::new();
        for (name, aud, scope, lifetime) in [
            ("alice", FRONTEND, "read write", "2m"),
            ("bob", FRONTEND, "read", "2m"),
            ("frontend-svc", BACKEND, "read admin", "10m"),
            ("backend-svc", DB, "read write", "10m"),
            ("intruder", BACKEND, "read", "10m"),
            ("db-svc", "https://unrelated.internal", "x", "10m"),
        ] {
            let created = create_sa_in(
                |a| server.admin_json(a),
                name,
                aud,
                scope,
                &["--default-lifetime", lifetime],
            );
            accounts.insert(name, created);
        }
        for (api, aud, scopes, owner) in [
            ("frontend", FRONTEND, "read write admin", "frontend-svc"),
            ("backend", BACKEND, "read write admin", "backend-svc"),
            ("db", DB, "read write", "db-svc"),
        ] {
            server.admin_json(&[
                "api",
                "create",
                api,
                "--tenant",
                "default",
                "--audience",
                aud,
                "--scope",
                scopes,
                "--owner",
                owner,
            ]);
        }
        let issuer = accounts["alice"]["issuer"].as_str().unwrap().to_owned();
        let endpoint = accounts["alice"]["token_endpoint"]
            .as_str()
            .unwrap()
            .to_owned();
        Deleg {
            server,
            issuer,
            endpoint,
            accounts,
        }
    }

    fn id(&self, name: &str) -> &str {
        self.accounts[name]["id"].as_str().unwrap()
    }

    fn client(&self, name: &str) -> (&str, &str) {
        client_of(&self.accounts[name])
    }

    /// A client_credentials token of `name` for `resource` with `scope`.
    async fn token(&self, name: &str, resource: &str, scope: &str) -> (String, Value) {
        let a = client_credentials(
            &self.endpoint,
            self.client(name),
            &[("resource", resource), ("scope", scope)],
        )
        .await;
        let t = a.token().to_owned();
        let claims = verify_independently_for(&t, &self.issuer, resource).await;
        (t, claims)
    }

    /// frontend-svc, the owner of frontend, delegates `subject` to `audience`.
    async fn by_frontend(&self, subject: &str, audience: &str, scope: Option<&str>) -> Answer {
        self.delegate(Some("frontend-svc"), subject, audience, scope)
            .await
    }

    /// `caller` exchanges `subject` (a Warrant access token) for a token to `audience`.
    async fn delegate(
        &self,
        caller: Option<&str>,
        subject: &str,
        audience: &str,
        scope: Option<&str>,
    ) -> Answer {
        let mut extra = vec![("audience", audience)];
        if let Some(s) = scope {
            extra.push(("scope", s));
        }
        exchange(
            &self.endpoint,
            subject,
            TT_ACCESS_TOKEN,
            &extra,
            caller.map(|c| self.client(c)),
        )
        .await
    }
}

/// The owner of an API exchanges a token addressed to it for a token to the API it calls:
/// `sub` stays, `client_id` is the caller, `act` names it, scopes are the original's ∩ the
/// caller's grant on the target, `exp` is no later than the original's; a second hop nests
/// the first actor under the second (RFC 8693 §4.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_chains_act_intersects_scopes_and_caps_exp() {
    let d = Deleg::start().await;
    let (t0, c0) = d.token("alice", FRONTEND, "read write").await;
    assert_eq!(c0["sub"], d.id("alice"));

    // Hop 1: frontend-svc calls backend on alice's behalf. No scope asked: the intersection.
    let a = d.by_frontend(&t0, BACKEND, None).await;
    assert_exchanged("hop 1", &a, &d.server);
    let t1 = a.token().to_owned();
    let c1 = verify_independently_for(&t1, &d.issuer, BACKEND).await;
    assert_eq!(c1["sub"], d.id("alice"), "{c1}");
    assert_eq!(
        c1["client_id"], d.accounts["frontend-svc"]["client_id"],
        "{c1}"
    );
    assert_eq!(c1["act"], json!({"sub": d.id("frontend-svc")}), "{c1}");
    assert_eq!(c1["aud"], BACKEND, "{c1}");
    assert_eq!(
        c1["scope"], "read",
        "{{read, write}} ∩ {{read, admin}}: {c1}"
    );
    assert_eq!(a.body["scope"], "read", "{}", a.text);
    assert!(
        c1["exp"].as_i64().unwrap() <= c0["exp"].as_i64().unwrap(),
        "the original expires at {}, its delegation at {} (frontend-svc's lifetime is 10 min, \
         alice's 2 min)",
        c0["exp"],
        c1["exp"]
    );
    assert!(
        a.body["expires_in"].as_i64().unwrap() <= c0["exp"].as_i64().unwrap() - now_secs() + 1,
        "{}",
        a.text
    );
    assert!(c1.get("federated").is_none(), "{c1}");
    assert_ne!(c1["jti"], c0["jti"]);

    // Warrant's verifier accepts it, and sees every subject of the chain.
    let v = our_verifier(&d.issuer, d.client("db-svc")).await;
    let verified = our_check(&v, &t1, BACKEND)
        .await
        .unwrap_or_else(|e| panic!("warrant-verify refuses the delegated token: {e:?}"));
    let subjects = verified.subjects();
    assert!(
        subjects.contains(&d.id("alice")) && subjects.contains(&d.id("frontend-svc")),
        "{subjects:?}"
    );

    // An explicit subset, and requested_token_type jwt.
    let a = exchange(
        &d.endpoint,
        &t0,
        TT_ACCESS_TOKEN,
        &[
            ("audience", BACKEND),
            ("scope", "read"),
            ("requested_token_type", TT_JWT),
        ],
        Some(d.client("frontend-svc")),
    )
    .await;
    assert_exchanged("hop 1, scope read", &a, &d.server);

    // Hop 2: backend-svc calls db on alice's behalf, with frontend-svc's delegated token.
    let a = d.delegate(Some("backend-svc"), &t1, DB, Some("read")).await;
    assert_exchanged("hop 2", &a, &d.server);
    let t2 = a.token().to_owned();
    let c2 = verify_independently_for(&t2, &d.issuer, DB).await;
    assert_eq!(c2["sub"], d.id("alice"), "{c2}");
    assert_eq!(
        c2["client_id"], d.accounts["backend-svc"]["client_id"],
        "{c2}"
    );
    assert_eq!(
        c2["act"],
        json!({"sub": d.id("backend-svc"), "act": {"sub": d.id("frontend-svc")}}),
        "the second actor, then the first: {c2}"
    );
    assert_eq!(c2["scope"], "read", "{c2}");
    assert!(
        c2["exp"].as_i64().unwrap() <= c1["exp"].as_i64().unwrap(),
        "{c1}\n{c2}"
    );
    // `write` was granted to backend-svc on db but is not in the token it was handed.
    let a = d
        .delegate(Some("backend-svc"), &t1, DB, Some("write"))
        .await;
    all_hold(
        vec![refused("hop 2 asking for write", &a, "invalid_scope")],
        &d.server.log(),
    );
    // Issuance of delegated tokens is audited.
    let audit = token_audit(&d.server, "default");
    let jti = c2["jti"].as_str().unwrap();
    assert!(audited(&audit, "token.issue", jti), "{audit:#?}");
}

/// Delegation refusals: more scopes than the original, a target the caller has no grant on,
/// a caller that does not own the original's API, no client authentication, and revoked
/// originals (by jti and by a watermark on their subject).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_refuses_escalation_non_owners_and_revoked_originals() {
    let d = Deleg::start().await;
    let (t0, _) = d.token("alice", FRONTEND, "read").await;
    let mut problems = Vec::new();

    // `admin` is granted to frontend-svc on backend but not in the original.
    let a = d.by_frontend(&t0, BACKEND, Some("admin")).await;
    problems.push(refused("a scope beyond the original", &a, "invalid_scope"));
    let a = d.by_frontend(&t0, BACKEND, Some("read admin")).await;
    problems.push(refused(
        "the original's scope and one more",
        &a,
        "invalid_scope",
    ));
    let (tw, _) = d.token("alice", FRONTEND, "read write").await;
    let a = d.by_frontend(&tw, BACKEND, Some("write")).await;
    problems.push(refused(
        "a scope of the original the caller is not granted on the target",
        &a,
        "invalid_scope",
    ));
    let a = d.by_frontend(&t0, DB, None).await;
    problems.push(refused(
        "a target the caller has no grant on",
        &a,
        "invalid_target",
    ));
    let a = d.by_frontend(&t0, "https://nowhere.internal", None).await;
    problems.push(refused("an unknown target", &a, "invalid_target"));
    // Not the owner of frontend: intruder holds `read` on backend, so only ownership is
    // missing.
    let a = d
        .delegate(Some("intruder"), &t0, BACKEND, Some("read"))
        .await;
    problems.push(refused(
        "intruder, granted on the target but not frontend's owner",
        &a,
        "invalid_request",
    ));
    // backend-svc (owns another API) and alice (the token's own subject) lack more than
    // ownership; whatever the class, nothing is issued.
    for caller in ["backend-svc", "alice"] {
        let a = d.delegate(Some(caller), &t0, BACKEND, Some("read")).await;
        if a.status != 400 || a.body.get("access_token").is_some() {
            problems.push(Some(format!(
                "{caller}, not frontend's owner: expected 400, got {} {}",
                a.status, a.text
            )));
        }
    }
    // No client authentication: 400 invalid_request, or 401 invalid_client (RFC 6749 §5.2).
    let a = d.delegate(None, &t0, BACKEND, Some("read")).await;
    if !((a.status == 400 && a.body["error"] == "invalid_request")
        || (a.status == 401 && a.body["error"] == "invalid_client"))
    {
        problems.push(Some(format!(
            "no client authentication: expected 400 invalid_request or 401 invalid_client, \
             got {} {}",
            a.status, a.text
        )));
    }
    // A tampered original.
    let a = d.by_frontend(&super::bit_flipped(&t0), BACKEND, None).await;
    problems.push(refused("a tampered original", &a, "invalid_request"));
    // A Warrant token of another tenant is no subject token here (no trust names that issuer).
    d.server.admin_json(&["tenant", "create", "elsewhere"]);
    let stranger = d.server.admin_json(&[
        "sa",
        "create",
        "alice",
        "--tenant",
        "elsewhere",
        "--audience",
        FRONTEND,
        "--scope",
        "read",
    ]);
    let a = client_credentials(
        stranger["token_endpoint"].as_str().unwrap(),
        client_of(&stranger),
        &[("scope", "read")],
    )
    .await;
    let b = d.by_frontend(a.token(), BACKEND, Some("read")).await;
    problems.push(refused(
        "another tenant's token as the original",
        &b,
        "invalid_request",
    ));
    // The control: the same original works for its owner.
    let a = d.by_frontend(&t0, BACKEND, Some("read")).await;
    problems.push(exchange_answer_problems("the owner", &a));

    // Revoked by jti.
    let (tr, cr) = d.token("alice", FRONTEND, "read").await;
    d.server.admin_json(&[
        "revoke",
        "--tenant",
        "default",
        "--jti",
        cr["jti"].as_str().unwrap(),
        "--exp",
        &cr["exp"].to_string(),
    ]);
    let a = d.by_frontend(&tr, BACKEND, Some("read")).await;
    problems.push(refused("an original revoked by jti", &a, "invalid_request"));
    // Revoked by a watermark on its subject.
    let (tb, _) = d.token("bob", FRONTEND, "read").await;
    d.server
        .admin(&["revoke", "--tenant", "default", "--account", "bob"]);
    let a = d.by_frontend(&tb, BACKEND, Some("read")).await;
    problems.push(refused(
        "an original whose subject was revoked",
        &a,
        "invalid_request",
    ));
    // alice's other token is untouched by either revocation.
    let a = d.by_frontend(&t0, BACKEND, Some("read")).await;
    problems.push(exchange_answer_problems("an unrevoked original", &a));
    all_hold(problems, &d.server.log());
}

/// A watermark on an actor revokes the tokens delegated to it, at any depth of the chain:
/// introspection says inactive, and a verifier following the revocation feed refuses them,
/// while the original (alice's own token) stays active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_an_actor_revokes_its_delegated_tokens() {
    let d = Deleg::start().await;
    let (t0, _) = d.token("alice", FRONTEND, "read write").await;
    let a = d.by_frontend(&t0, BACKEND, None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let t1 = a.token().to_owned();
    let a = d.delegate(Some("backend-svc"), &t1, DB, None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let t2 = a.token().to_owned();
    let introspector = d.client("db-svc");
    for (what, t) in [("original", &t0), ("hop 1", &t1), ("hop 2", &t2)] {
        let i = introspect(&d.issuer, introspector, t).await;
        assert_eq!(i["active"], true, "{what} before: {i}");
    }
    let v = our_verifier(&d.issuer, introspector).await;
    assert!(our_check(&v, &t1, BACKEND).await.is_ok());
    assert!(our_check(&v, &t2, DB).await.is_ok());

    d.server
        .admin(&["revoke", "--tenant", "default", "--account", "frontend-svc"]);
    let mut problems = Vec::new();
    for (what, t) in [("hop 1", &t1), ("hop 2 (frontend-svc nested in act)", &t2)] {
        let i = introspect(&d.issuer, introspector, t).await;
        if i != json!({"active": false}) {
            problems.push(Some(format!(
                "{what}: introspection after frontend-svc's watermark: {i}"
            )));
        }
    }
    let i = introspect(&d.issuer, introspector, &t0).await;
    if i["active"] != true {
        problems.push(Some(format!("alice's own token was revoked too: {i}")));
    }
    // The verifier hears of the watermark through the feed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (r1, r2) = (
            our_check(&v, &t1, BACKEND).await,
            our_check(&v, &t2, DB).await,
        );
        if r1.is_err() && r2.is_err() {
            break;
        }
        if Instant::now() > deadline {
            problems.push(Some(format!(
                "warrant-verify still accepts a delegated token 10 s after the actor's \
                 watermark: hop 1 {:?}, hop 2 {:?}",
                r1.map(|t| t.jti.clone()),
                r2.map(|t| t.jti.clone())
            )));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // frontend-svc cannot launder the revoked chain either: t1 is refused as a subject.
    let a = d.delegate(Some("backend-svc"), &t1, DB, None).await;
    problems.push(refused(
        "a delegated token revoked through its actor, as a subject",
        &a,
        "invalid_request",
    ));
    all_hold(problems, &d.server.log());
}
