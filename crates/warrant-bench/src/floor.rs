//! The floor: the least a token endpoint can do. A bare hyper HTTP/1.1 server that answers
//! every POST with an ES256-signed JWT shaped like Warrant's, with no authentication, no
//! policy and no store. It runs in a child process (`warrant-bench floor`) that prints its
//! port on stdout and exits when its stdin closes.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;

use crate::process::ChildServer;

const TOKEN_TTL_SECS: u64 = 300;

/// Parent side: starts `<this binary> floor` and reads the port it prints.
pub async fn spawn() -> Result<ChildServer> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    let mut child = Command::new(exe)
        .arg("floor")
        .stdin(Stdio::piped()) // held open by `child`; the floor exits when it closes
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the floor child process")?;
    let stdout = child.stdout.take().context("floor stdout")?;
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .context("timed out waiting for the floor's port")?
    .context("reading the floor's port")?;
    let port: u16 = line
        .trim()
        .parse()
        .with_context(|| format!("floor printed {line:?}, not a port"))?;
    ChildServer::new(child, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Child side (`warrant-bench floor`): serves until stdin closes or it is killed.
pub fn serve_child() -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the floor runtime")?
        .block_on(serve())
}

async fn serve() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let signer = Arc::new(Signer::new(format!("http://127.0.0.1:{port}/t/default"))?);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{port}")?;
        out.flush()?;
    }
    crate::process::exit_when_stdin_closes();

    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let signer = signer.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let signer = signer.clone();
                async move { Ok::<_, Infallible>(signer.respond(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    issuer: String,
    header_b64: String,
}

impl Signer {
    fn new(issuer: String) -> Result<Self> {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)?;
        let header = serde_json::json!({"alg": "ES256", "kid": "floor", "typ": "at+jwt"});
        Ok(Self {
            key,
            rng: SystemRandom::new(),
            issuer,
            header_b64: URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
        })
    }

    async fn respond(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let is_post = req.method() == Method::POST;
        // Read the form body, as a real endpoint must.
        if req.into_body().collect().await.is_err() {
            return plain(StatusCode::BAD_REQUEST, "bad body");
        }
        if !is_post {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "POST only");
        }
        match self.token_response() {
            Ok(body) => {
                let mut resp = Response::new(Full::new(Bytes::from(body)));
                let headers = resp.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                resp
            }
            Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "signing failed"),
        }
    }

    fn token_response(&self) -> Result<Vec<u8>> {
        let now = unix_now()?;
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti)?;
        let claims = serde_json::json!({
            "iss": self.issuer,
            "sub": "floor-bench",
            "aud": "https://bench.internal",
            "exp": now + TOKEN_TTL_SECS,
            "iat": now,
            "nbf": now,
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "client_id": "floor-bench",
            "scope": "bench:read",
            "tenant": "default",
        });
        let mut jwt = format!(
            "{}.{}",
            self.header_b64,
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?)
        );
        let signature = self.key.sign(&self.rng, jwt.as_bytes())?;
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        Ok(serde_json::to_vec(&serde_json::json!({
            "access_token": jwt,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_SECS,
            "scope": "bench:read",
        }))?)
    }
}

/// Seconds since the Unix epoch. The floor reads the system clock directly: it is the baseline
/// and depends on no Warrant crate (so not on `warrant_core::Clock`).
#[allow(clippy::disallowed_methods)]
fn unix_now() -> Result<u64> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())
}

fn plain(status: StatusCode, msg: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(msg.as_bytes())));
    *resp.status_mut() = status;
    resp
}
