use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use warrant_core::{CoreConfig, MasterKey, Timestamp, Warrant};
use warrant_server::{AppState, Limits, TrustedProxies};
use warrant_store_sqlite::SqliteStore;
use warrant_testkit::FixedClock;

pub const PUBLIC_URL: &str = "http://127.0.0.1:8080";
pub const T0: i64 = 1_795_000_000;

/// The `detail` of a problem response, after checking its status and media type.
pub fn problem(r: &Resp, status: StatusCode) -> String {
    r.assert_status(status);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    r.json()["detail"].as_str().unwrap_or_default().to_owned()
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "not JSON ({}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, showing the body when it differs.
    pub fn assert_status(&self, status: StatusCode) -> &Self {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }

    /// Asserts an RFC 6749 error with `Cache-Control: no-store`.
    pub fn assert_oauth_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.json()["error"],
            code,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("cache-control"), Some("no-store"));
    }

    pub fn access_token(&self) -> String {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self.json()["access_token"].as_str().unwrap().to_owned()
    }
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub clock: Arc<FixedClock>,
    #[allow(dead_code)]
    pub warrant: Arc<Warrant>,
    pub store: SqliteStore,
    pub app: Router,
    pub master_text: String,
    pub admin_id: String,
    pub admin_secret: String,
}

pub struct Options {
    pub limits: Limits,
    pub max_token_lifetime: u64,
    pub trusted_proxies: Vec<String>,
    pub dpop_require_nonce: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: Limits::unlimited(),
            max_token_lifetime: 3600,
            trusted_proxies: Vec::new(),
            dpop_require_nonce: false,
        }
    }
}

pub fn core_config(max_token_lifetime: u64) -> CoreConfig {
    CoreConfig {
        public_url: PUBLIC_URL.into(),
        max_token_lifetime,
        jwks_max_age: 300,
        audit: Default::default(),
    }
}

impl Env {
    pub async fn new() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(opts: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (_, master_text) = MasterKey::generate().unwrap();
        let master_text = master_text.to_string();
        let clock = Arc::new(FixedClock::new(Timestamp::from_secs(T0)));
        let store = SqliteStore::open(&dir.path().join("warrant.db"))
            .await
            .unwrap();
        let (warrant, outcome) = Warrant::open(
            Arc::new(store.clone()),
            clock.clone(),
            MasterKey::parse(&master_text).unwrap(),
            core_config(opts.max_token_lifetime),
        )
        .await
        .unwrap();
        let (admin_id, admin_secret) = outcome
            .admin_credentials
            .expect("first start creates the admin");
        let warrant = Arc::new(warrant);
        let mut state = AppState::new(
            warrant.clone(),
            opts.limits,
            TrustedProxies::parse(&opts.trusted_proxies).unwrap(),
        );
        state.dpop_require_nonce = opts.dpop_require_nonce;
        Self {
            app: warrant_server::app(state),
            dir,
            clock,
            warrant,
            store,
            master_text,
            admin_id: admin_id.to_string(),
            admin_secret: admin_secret.expose().to_owned(),
        }
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        assert!(
            !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
            "5xx: {status} {}",
            String::from_utf8_lossy(&body)
        );
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    /// `POST /t/{tenant}/token` with a form body and optional Basic credentials.
    pub async fn token_request(
        &self,
        tenant: &str,
        basic: Option<(&str, &str)>,
        form: &str,
    ) -> Resp {
        let mut req = Request::post(format!("/t/{tenant}/token"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            req = req.header(header::AUTHORIZATION, basic_header(id, secret));
        }
        self.send(req.body(Body::from(form.to_owned())).unwrap())
            .await
    }

    pub async fn admin_token(&self) -> String {
        let form = format!("grant_type=client_credentials&resource={PUBLIC_URL}/admin&scope=admin");
        self.token_request("system", Some((&self.admin_id, &self.admin_secret)), &form)
            .await
            .access_token()
    }

    pub async fn admin_with(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    /// `method` on `path` as the admin, with `If-Match: <if_match>` (sent verbatim) when given,
    /// and `body`, when given, as a JSON merge patch.
    pub async fn admin_if_match(
        &self,
        method: Method,
        path: &str,
        if_match: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let token = self.admin_token().await;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if let Some(m) = if_match {
            req = req.header(header::IF_MATCH, m);
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/merge-patch+json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    /// Creates an account `name` in `default` with no grants; returns its id.
    pub async fn plain_account(&self, name: &str) -> String {
        self.create_account_json("default", json!({"name": name}))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let token = self.admin_token().await;
        self.admin_with(&token, method, path, body).await
    }

    /// `POST /admin/v1/tenants/{tenant}/service-accounts` with `body`; panics unless 201.
    /// Returns the account as shown.
    pub async fn create_account_json(&self, tenant: &str, body: Value) -> Value {
        let r = self
            .admin(
                Method::POST,
                &format!("/admin/v1/tenants/{tenant}/service-accounts"),
                Some(body),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    /// Creates an account with one grant and a secret named `initial`; returns (id, secret).
    pub async fn account(
        &self,
        tenant: &str,
        name: &str,
        audience: &str,
        scopes: &[&str],
    ) -> (String, String) {
        let created = self
            .create_account_json(
                tenant,
                json!({"name": name, "default_audience": audience, "grants": [{"audience": audience, "scopes": scopes}]}),
            )
            .await;
        let id = created["id"].as_str().unwrap().to_owned();
        let secret = self.add_secret(tenant, &id, "initial").await;
        (id, secret)
    }

    pub async fn add_secret(&self, tenant: &str, account: &str, name: &str) -> String {
        let r = self
            .admin(
                Method::POST,
                &format!("/admin/v1/tenants/{tenant}/service-accounts/{account}/secrets"),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()["value"].as_str().unwrap().to_owned()
    }

    pub async fn create_tenant(&self, name: &str) {
        let r = self
            .admin(
                Method::POST,
                "/admin/v1/tenants",
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
    }

    pub async fn jwks(&self, tenant: &str) -> Value {
        self.get(&format!("/t/{tenant}/jwks")).await.json()
    }

    /// Verifies with our verifier and with `jsonwebtoken`; returns the claims.
    pub async fn verify(&self, tenant: &str, token: &str, audience: &str) -> Value {
        let jwks = self.jwks(tenant).await;
        let issuer = format!("{PUBLIC_URL}/t/{tenant}");
        let ours = independent::ours(token, &jwks);
        let theirs = independent::jsonwebtoken(token, &jwks, &issuer, audience);
        assert_eq!(ours, theirs, "both implementations read the same claims");
        assert_eq!(theirs["iss"], issuer);
        theirs
    }
}

pub fn basic_header(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

pub mod independent {
    use serde_json::Value;

    /// Our verifier (warrant-jose).
    pub fn ours(token: &str, jwks: &Value) -> Value {
        let set: warrant_jose::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
        let keys: Vec<_> = set
            .keys
            .iter()
            .map(|k| warrant_jose::PublicKey::from_jwk(k).unwrap())
            .collect();
        let v = warrant_jose::verify_compact(token, &keys, Some("at+jwt"))
            .expect("our verifier accepts it");
        Value::Object(v.claims)
    }

    /// An independent implementation: jsonwebtoken with RustCrypto (not aws-lc-rs).
    pub fn jsonwebtoken(token: &str, jwks: &Value, issuer: &str, audience: &str) -> Value {
        use jsonwebtoken::{DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
        let header = decode_header(token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let set: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
        let kid = header.kid.clone().expect("kid");
        let jwk = set.find(&kid).expect("kid published in the JWKS");
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        v.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "sub", "aud"]);
        // The harness clock is fixed in the future; jsonwebtoken reads the system clock.
        v.validate_exp = false;
        v.validate_nbf = false;
        decode::<Value>(token, &key, &v)
            .expect("jsonwebtoken accepts it")
            .claims
    }

    pub fn try_jsonwebtoken(token: &str, jwks: &Value) -> bool {
        use jsonwebtoken::{DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
        let Ok(header) = decode_header(token) else {
            return false;
        };
        let set: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
        let Some(jwk) = header.kid.as_deref().and_then(|k| set.find(k)) else {
            return false;
        };
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            return false;
        };
        let mut v = Validation::new(header.alg);
        v.validate_aud = false;
        v.validate_exp = false;
        v.required_spec_claims.clear();
        decode::<Value>(token, &key, &v).is_ok()
    }
}

// --- introspection, revocation and the feed ---------------------------------------------------

impl Env {
    /// `POST {path}` with a form body and optional Basic credentials.
    pub async fn post_form(&self, path: &str, basic: Option<(&str, &str)>, form: &str) -> Resp {
        let mut req =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            req = req.header(header::AUTHORIZATION, basic_header(id, secret));
        }
        self.send(req.body(Body::from(form.to_owned())).unwrap())
            .await
    }

    /// A token for the account (client_credentials, Basic); panics unless one is issued.
    pub async fn token_for(&self, tenant: &str, id: &str, secret: &str) -> String {
        self.token_request(tenant, Some((id, secret)), "grant_type=client_credentials")
            .await
            .access_token()
    }

    /// `POST /t/{tenant}/introspect` by `caller` (Basic); returns the JSON body, after checking
    /// the status and `Cache-Control: no-store`.
    pub async fn introspect(&self, tenant: &str, caller: (&str, &str), token: &str) -> Value {
        let r = self
            .post_form(
                &format!("/t/{tenant}/introspect"),
                Some(caller),
                &format!("token={}", form_encode(token)),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));
        r.json()
    }

    /// Whether introspection by `caller` says the token is active.
    pub async fn is_active(&self, tenant: &str, caller: (&str, &str), token: &str) -> bool {
        self.introspect(tenant, caller, token).await["active"] == Value::Bool(true)
    }

    /// `POST /t/{tenant}/revoke` by `caller` (Basic).
    pub async fn revoke(&self, tenant: &str, caller: (&str, &str), token: &str) -> Resp {
        self.post_form(
            &format!("/t/{tenant}/revoke"),
            Some(caller),
            &format!("token={}", form_encode(token)),
        )
        .await
    }

    /// `GET {path}` with Basic credentials.
    pub async fn get_basic(&self, path: &str, basic: (&str, &str)) -> Resp {
        self.send(
            Request::get(path)
                .header(header::AUTHORIZATION, basic_header(basic.0, basic.1))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
