//! Tokens signed by a key held in SoftHSM2, end to end through the HTTP app: a tenant switched
//! to an HSM key source rotates `--now`, the new key is generated on the token, its public key
//! is in the JWKS, and tokens it signs verify with our verifier and with jsonwebtoken. When
//! the HSM cannot sign (a key label that no longer exists at load, or a signer that fails),
//! that tenant's token endpoint answers 503 `temporarily_unavailable` with nothing internal,
//! and a software tenant keeps issuing.
//!
//! Like tests/softhsm.rs, the body runs in a child process of this binary with its own
//! `SOFTHSM2_CONF` and token (never the system token store).
//!
//! Index: hsm_tenant_issues_and_fails_closed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use warrant_core::hsm::HsmKeys;
use warrant_core::{CoreConfig, MasterKey, Timestamp, Warrant};
use warrant_hsm::{Algorithm, HsmModule, KeyRef};
use warrant_jose::{JoseError, Jwk, RawSigner};
use warrant_server::{AppState, Limits, TrustedProxies};
use warrant_store_sqlite::SqliteStore;
use warrant_testkit::FixedClock;
use warrant_testkit::softhsm;
use zeroize::Zeroizing;

const TOKEN: &str = "warrant-test";
const PIN: &str = "1234";
const CHILD: &str = "WARRANT_HSM_ISSUANCE_CHILD";
const PUBLIC_URL: &str = "http://127.0.0.1:8080";
const AUD: &str = "https://api.example";

/// Runs `body` in a child process with its own SoftHSM2 token store.
fn with_token(name: &str, body: impl FnOnce()) {
    if softhsm::in_child_with_token(name, CHILD, TOKEN, PIN, "5678") {
        body();
    }
}

/// A signer whose signatures fail once `broken` is set (an HSM that went away mid-flight).
#[derive(Debug)]
struct Breakable {
    inner: Arc<dyn RawSigner>,
    broken: Arc<AtomicBool>,
}

impl RawSigner for Breakable {
    fn alg(&self) -> Algorithm {
        self.inner.alg()
    }
    fn kid(&self) -> &str {
        self.inner.kid()
    }
    fn public_jwk(&self) -> &Jwk {
        self.inner.public_jwk()
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, JoseError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(JoseError::SignerUnavailable);
        }
        self.inner.sign(msg)
    }
    fn is_blocking(&self) -> bool {
        self.inner.is_blocking()
    }
}

/// The core's HSM port over one SoftHSM2 module named `main` (what warrant-cli does over the
/// configured modules), with two ways to break it: `renamed` makes lookups ask the token for
/// another label (a key that no longer exists: real `KeyNotFound`), `broken` makes signers fail.
struct Port {
    module: HsmModule,
    renamed: Option<String>,
    broken: Arc<AtomicBool>,
    generated: Mutex<Vec<String>>,
}

impl Port {
    fn wrap(&self, key: warrant_hsm::HsmKey) -> Arc<dyn RawSigner> {
        Arc::new(Breakable {
            inner: Arc::new(key),
            broken: self.broken.clone(),
        })
    }
}

impl HsmKeys for Port {
    fn has_module(&self, module: &str) -> bool {
        module == "main"
    }
    fn key(&self, module: &str, label: &str, alg: Algorithm) -> Result<Arc<dyn RawSigner>, String> {
        assert_eq!(module, "main");
        let label = self.renamed.as_deref().unwrap_or(label);
        let key = self
            .module
            .key(KeyRef::Label(label), alg)
            .map_err(|e| e.to_string())?;
        Ok(self.wrap(key))
    }
    fn generate(
        &self,
        module: &str,
        label: &str,
        alg: Algorithm,
    ) -> Result<Arc<dyn RawSigner>, String> {
        assert_eq!(module, "main");
        self.generated.lock().unwrap().push(label.to_owned());
        let key = self
            .module
            .generate_key(label, alg)
            .map_err(|e| e.to_string())?;
        Ok(self.wrap(key))
    }
}

struct Resp {
    status: StatusCode,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text()))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(app: &Router, req: Request<Body>) -> Resp {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Resp { status, body }
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

async fn token(app: &Router, tenant: &str, id: &str, secret: &str, form: &str) -> Resp {
    let req = Request::post(format!("/t/{tenant}/token"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, basic(id, secret))
        .body(Body::from(form.to_owned()))
        .unwrap();
    send(app, req).await
}

async fn admin(
    app: &Router,
    creds: &(String, String),
    method: Method,
    path: &str,
    body: Value,
) -> Resp {
    let form = format!("grant_type=client_credentials&resource={PUBLIC_URL}/admin&scope=admin");
    let t = token(app, "system", &creds.0, &creds.1, &form).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text());
    let bearer = t.json()["access_token"].as_str().unwrap().to_owned();
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {bearer}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(if body.is_null() {
            Body::empty()
        } else {
            Body::from(body.to_string())
        })
        .unwrap();
    send(app, req).await
}

/// An account with a grant on [`AUD`] and a secret; returns (id, secret).
async fn account(app: &Router, creds: &(String, String), tenant: &str) -> (String, String) {
    let r = admin(
        app,
        creds,
        Method::POST,
        &format!("/admin/v1/tenants/{tenant}/service-accounts"),
        json!({"name": "svc", "default_audience": AUD, "grants": [{"audience": AUD, "scopes": ["read"]}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = admin(
        app,
        creds,
        Method::POST,
        &format!("/admin/v1/tenants/{tenant}/service-accounts/{id}/secrets"),
        json!({"name": "initial"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    (id, r.json()["value"].as_str().unwrap().to_owned())
}

fn config() -> CoreConfig {
    CoreConfig {
        public_url: PUBLIC_URL.into(),
        max_token_lifetime: 3600,
        jwks_max_age: 300,
        audit: Default::default(),
    }
}

async fn open(
    store: &SqliteStore,
    clock: &Arc<FixedClock>,
    master: &str,
    port: Arc<Port>,
) -> (Arc<Warrant>, Router, Option<(String, String)>) {
    let (warrant, outcome) = Warrant::open_with_hsm(
        Arc::new(store.clone()),
        clock.clone(),
        MasterKey::parse(master).unwrap(),
        config(),
        Some(port),
    )
    .await
    .unwrap();
    let warrant = Arc::new(warrant);
    let state = AppState::new(
        warrant.clone(),
        Limits::unlimited(),
        TrustedProxies::parse(&[]).unwrap(),
    );
    let creds = outcome
        .admin_credentials
        .map(|(id, s)| (id.to_string(), s.expose().to_owned()));
    (warrant, warrant_server::app(state), creds)
}

fn port(renamed: Option<&str>) -> Arc<Port> {
    let path = softhsm::module().unwrap_or_else(|e| panic!("{e}"));
    // one module per process: the same token, opened once, shared by every port below
    static MODULE: std::sync::OnceLock<HsmModule> = std::sync::OnceLock::new();
    let module = MODULE
        .get_or_init(|| HsmModule::open(&path, TOKEN, Zeroizing::new(PIN.into()), 2).unwrap())
        .clone();
    Arc::new(Port {
        module,
        renamed: renamed.map(str::to_owned),
        broken: Arc::new(AtomicBool::new(false)),
        generated: Mutex::new(Vec::new()),
    })
}

/// Verifies with our verifier and with jsonwebtoken against the served JWKS; returns the kid.
async fn verify(app: &Router, tenant: &str, token: &str) -> String {
    let jwks = send(
        app,
        Request::get(format!("/t/{tenant}/jwks"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .json();
    let set: warrant_jose::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let keys: Vec<_> = set
        .keys
        .iter()
        .map(|k| warrant_jose::PublicKey::from_jwk(k).unwrap())
        .collect();
    let ours = warrant_jose::verify_compact(token, &keys, Some("at+jwt")).unwrap();
    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
    let header = decode_header(token).unwrap();
    let set: JwkSet = serde_json::from_value(jwks).unwrap();
    let kid = header.kid.clone().unwrap();
    let key = DecodingKey::from_jwk(set.find(&kid).expect("kid in the JWKS")).unwrap();
    let mut v = Validation::new(header.alg);
    v.set_audience(&[AUD]);
    v.set_issuer(&[format!("{PUBLIC_URL}/t/{tenant}")]);
    v.validate_exp = false; // the clock is fixed
    v.validate_nbf = false;
    let theirs = decode::<Value>(token, &key, &v).unwrap().claims;
    assert_eq!(Value::Object(ours.claims), theirs);
    kid
}

fn assert_unavailable(r: &Resp) {
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"], "temporarily_unavailable");
    let text = r.text();
    for leak in ["HSM", "hsm", "PKCS", "CKR", "label", "warrant-acme"] {
        assert!(!text.contains(leak), "internal detail in {text}");
    }
}

#[test]
fn hsm_tenant_issues_and_fails_closed() {
    with_token("hsm_tenant_issues_and_fails_closed", || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let (_, master) = MasterKey::generate().unwrap();
            let master = master.to_string();
            let clock = Arc::new(FixedClock::new(Timestamp::from_secs(1_795_000_000)));
            let store = SqliteStore::open(&dir.path().join("warrant.db"))
                .await
                .unwrap();
            let good = port(None);
            let (_w, app, creds) = open(&store, &clock, &master, good.clone()).await;
            let creds = creds.unwrap();

            admin(
                &app,
                &creds,
                Method::POST,
                "/admin/v1/tenants",
                json!({"name": "acme"}),
            )
            .await;
            let acme = account(&app, &creds, "acme").await;
            let other = account(&app, &creds, "default").await;
            let form = "grant_type=client_credentials";

            // an unknown module is refused; libraries, tokens and PINs are not admin fields
            let r = admin(
                &app,
                &creds,
                Method::PATCH,
                "/admin/v1/tenants/acme",
                json!({"key_source": {"hsm": {"module": "nope"}}}),
            )
            .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
            let r = admin(
                &app,
                &creds,
                Method::PATCH,
                "/admin/v1/tenants/acme",
                json!({"key_source": {"hsm": {"module": "main", "pin": "1234"}}}),
            )
            .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());

            let r = admin(
                &app,
                &creds,
                Method::PATCH,
                "/admin/v1/tenants/acme",
                json!({"key_source": {"hsm": {"module": "main"}}}),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            assert_eq!(r.json()["key_source"], json!({"hsm": {"module": "main"}}));

            // rotate --now: the new key is generated on the token
            let r = admin(
                &app,
                &creds,
                Method::POST,
                "/admin/v1/tenants/acme/keys/rotate",
                json!({"now": true}),
            )
            .await;
            assert!(r.status.is_success(), "{}", r.text());
            let generated = good.generated.lock().unwrap().clone();
            assert_eq!(generated.len(), 1);
            assert!(generated[0].starts_with("warrant-acme-"), "{generated:?}");
            let hsm_key = good
                .module
                .key(KeyRef::Label(&generated[0]), Algorithm::Es256)
                .unwrap();

            // tokens are signed by the HSM key and verify with both verifiers
            let t = token(&app, "acme", &acme.0, &acme.1, form).await;
            assert_eq!(t.status, StatusCode::OK, "{}", t.text());
            let kid = verify(&app, "acme", t.json()["access_token"].as_str().unwrap()).await;
            assert_eq!(kid, hsm_key.kid());
            let jwks = send(
                &app,
                Request::get("/t/acme/jwks").body(Body::empty()).unwrap(),
            )
            .await
            .json();
            assert!(
                jwks["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| *k == serde_json::to_value(hsm_key.public_jwk()).unwrap())
            );

            // the HSM fails to sign: 503, counted, nothing internal; the software tenant issues
            good.broken.store(true, Ordering::SeqCst);
            assert_unavailable(&token(&app, "acme", &acme.0, &acme.1, form).await);
            let t = token(&app, "default", &other.0, &other.1, form).await;
            assert_eq!(t.status, StatusCode::OK, "{}", t.text());
            let metrics = send(&app, Request::get("/metrics").body(Body::empty()).unwrap())
                .await
                .text();
            assert!(
                metrics.contains("warrant_hsm_sign_failures_total{tenant=\"acme\"} 1"),
                "{metrics}"
            );
            good.broken.store(false, Ordering::SeqCst);
            assert_eq!(
                token(&app, "acme", &acme.0, &acme.1, form).await.status,
                StatusCode::OK
            );

            // a restart where the key's label no longer exists on the token: the tenant has
            // no signer (fails closed, no older key signs), the others are unaffected
            let (_w2, app2, _) = open(&store, &clock, &master, port(Some("warrant-gone"))).await;
            assert_unavailable(&token(&app2, "acme", &acme.0, &acme.1, form).await);
            let t = token(&app2, "default", &other.0, &other.1, form).await;
            assert_eq!(t.status, StatusCode::OK, "{}", t.text());
            // and a server without the HSM configured at all
            let (w3, outcome) = Warrant::open(
                Arc::new(store.clone()),
                clock.clone(),
                MasterKey::parse(&master).unwrap(),
                config(),
            )
            .await
            .unwrap();
            assert!(outcome.admin_credentials.is_none());
            let app3 = warrant_server::app(AppState::new(
                Arc::new(w3),
                Limits::unlimited(),
                TrustedProxies::parse(&[]).unwrap(),
            ));
            assert_unavailable(&token(&app3, "acme", &acme.0, &acme.1, form).await);
            assert_eq!(
                token(&app3, "default", &other.0, &other.1, form)
                    .await
                    .status,
                StatusCode::OK
            );
        });
    });
}
