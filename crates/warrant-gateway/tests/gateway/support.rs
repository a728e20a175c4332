//! A fake issuer, an echoing upstream, and the harness that starts a gateway between them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Either, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use warrant_gateway::{MemorySink, RunningGateway};
use warrant_jose::{Algorithm, SigningKey, sign_compact};
use warrant_verify::{Clock as _, SystemClock};

pub const AUDIENCE: &str = "https://orders.example.com";

/// An event stream that sends one ping and then stays open.
struct Sse {
    sent: bool,
}

impl Body for Sse {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.sent {
            return Poll::Pending;
        }
        self.sent = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b": ping\n\n")))))
    }
}

type TestBody = Either<Full<Bytes>, Sse>;

fn json_response(status: StatusCode, v: &Value) -> Response<TestBody> {
    let mut r = Response::new(Either::Left(Full::new(Bytes::from(v.to_string()))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// Serves `handler` on 127.0.0.1:0 until the test ends.
async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<TestBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// An issuer at `http://127.0.0.1:port`: discovery, a JWKS with `key`, an empty revocation
/// snapshot and a stream that stays open.
async fn fake_issuer(key: &SigningKey) -> String {
    let jwk = serde_json::to_value(key.public_jwk()).unwrap();
    let issuer: Arc<std::sync::OnceLock<String>> = Arc::default();
    let iss = issuer.clone();
    let addr = serve(move |req| {
        let jwk = jwk.clone();
        let issuer = iss.get().cloned().unwrap_or_default();
        async move {
            let basic = req
                .headers()
                .get("authorization")
                .is_some_and(|v| v.as_bytes().starts_with(b"Basic "));
            match req.uri().path() {
                "/.well-known/openid-configuration" => json_response(
                    StatusCode::OK,
                    &json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}),
                ),
                "/jwks" => json_response(StatusCode::OK, &json!({"keys": [jwk]})),
                "/revocations" if basic => {
                    json_response(StatusCode::OK, &json!({"entries": [], "next_cursor": "0"}))
                }
                "/revocations/stream" if basic => {
                    let mut r = Response::new(Either::Right(Sse { sent: false }));
                    r.headers_mut().insert(
                        "content-type",
                        http::HeaderValue::from_static("text/event-stream"),
                    );
                    r
                }
                _ => json_response(StatusCode::UNAUTHORIZED, &json!({})),
            }
        }
    })
    .await;
    let url = format!("http://{addr}");
    let _ = issuer.set(url.clone());
    url
}

/// An upstream that answers with what it received: method, URI and headers. A path ending in
/// `/slow` answers after 2 s.
async fn echo_upstream() -> SocketAddr {
    serve(|req: Request<Incoming>| async move {
        if req.uri().path().ends_with("/slow") {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let mut headers = serde_json::Map::new();
        for (name, value) in req.headers() {
            let entry = headers
                .entry(name.as_str())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = entry {
                list.push(Value::from(
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                ));
            }
        }
        let method = req.method().to_string();
        let uri = req.uri().to_string();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        json_response(
            StatusCode::OK,
            &json!({
                "method": method,
                "uri": uri,
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
            }),
        )
    })
    .await
}

pub struct Harness {
    pub gateway: RunningGateway,
    pub key: SigningKey,
    pub issuer: String,
    pub upstream: SocketAddr,
    pub log: MemorySink,
    pub http: reqwest::Client,
    pub config_path: PathBuf,
    scheme: &'static str,
    top: String,
    _dir: tempfile::TempDir,
}

/// The routes most tests use.
pub fn default_routes(upstream: SocketAddr) -> String {
    format!(
        r#"
[[routes]]
name = "orders"
path_prefix = "/orders"
upstream = "http://{upstream}"
audience = "{AUDIENCE}"
scopes_all = ["orders:read"]

[[routes]]
name = "public"
path_prefix = "/public"
upstream = "http://{upstream}"
verify = false

[[routes]]
name = "down"
path_prefix = "/down"
upstream = "http://127.0.0.1:1"
verify = false
"#
    )
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| String::new(), None).await
    }

    /// A harness whose configuration has `top_level(dir)` among its top-level keys and tables
    /// (before `[[issuers]]`), and whose HTTP client is `client` (plain by default).
    pub async fn start_with(
        top_level: impl FnOnce(&std::path::Path) -> String,
        client: Option<reqwest::Client>,
    ) -> Self {
        let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let issuer = fake_issuer(&key).await;
        let upstream = echo_upstream().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("feed-secret"), "feed-secret-value\n").unwrap();
        let config_path = dir.path().join("gateway.toml");
        let top = top_level(dir.path());
        let log = MemorySink::default();
        let h = Self {
            gateway: {
                std::fs::write(
                    &config_path,
                    config(&top, &issuer, &default_routes(upstream)),
                )
                .unwrap();
                warrant_gateway::start_with_access_log(config_path.clone(), Box::new(log.clone()))
                    .await
                    .unwrap()
            },
            key,
            issuer,
            upstream,
            log,
            scheme: if top.contains("[tls]") {
                "https"
            } else {
                "http"
            },
            top,
            http: client.unwrap_or_else(|| reqwest::Client::builder().no_proxy().build().unwrap()),
            config_path,
            _dir: dir,
        };
        assert!(
            h.gateway.wait_ready(Duration::from_secs(10)).await,
            "gateway not ready"
        );
        h
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.gateway.local_addr())
    }

    /// `GET path` on the gateway with this harness's client, with `token` as a bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.get_with(&self.http, path, token).await
    }

    /// `GET path` on the gateway with `client`, with `token` as a bearer token.
    pub async fn get_with(
        &self,
        client: &reqwest::Client,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut req = client.get(self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap()
    }

    /// Rewrites the configuration with other routes.
    pub fn write_routes(&self, routes: &str) {
        std::fs::write(&self.config_path, config(&self.top, &self.issuer, routes)).unwrap();
    }

    /// An access token for `sa_caller`, with `extra` claims merged over the defaults.
    pub fn token(&self, extra: Value) -> String {
        let now = SystemClock.now_secs();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": "sa_caller",
            "client_id": "sa_caller",
            "aud": AUDIENCE,
            "jti": format!("jti-{now}-{}", rand_suffix()),
            "iat": now,
            "exp": now + 300,
            "scope": "orders:read orders:write",
            "tenant": "prod",
        });
        if let (Value::Object(c), Value::Object(e)) = (&mut claims, extra) {
            for (k, v) in e {
                c.insert(k, v);
            }
        }
        sign_compact(&self.key, "at+jwt", &serde_json::to_vec(&claims).unwrap()).unwrap()
    }

    /// The access log so far, once `lines` lines are in.
    pub async fn log_lines(&self, lines: usize) -> Vec<Value> {
        for _ in 0..200 {
            let text = self.log.contents();
            if text.lines().count() >= lines {
                return text
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "the access log has fewer than {lines} lines:\n{}",
            self.log.contents()
        );
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn config(top: &str, issuer: &str, routes: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"
upstream_timeout = "500ms"
connect_timeout = "1s"
{top}

[[issuers]]
issuer = "{issuer}"
feed_client_id = "sa_feed"
feed_client_secret_file = "feed-secret"
{routes}
"#
    )
}

/// The `WWW-Authenticate` challenges of `resp`.
pub fn challenges(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// Asserts that `resp` has `status` and at least one challenge, and that the first challenge
/// (for a refused token, the only one) contains every one of `needles`. Returns the challenges.
pub fn assert_challenge(resp: &reqwest::Response, status: u16, needles: &[&str]) -> Vec<String> {
    assert_eq!(resp.status(), status);
    let all = challenges(resp);
    let first = all
        .first()
        .unwrap_or_else(|| panic!("no www-authenticate challenge"));
    for needle in needles {
        assert!(first.contains(needle), "{needle} missing from {all:?}");
    }
    all
}
