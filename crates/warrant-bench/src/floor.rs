//! The floor: the least a token endpoint can do. A bare hyper HTTP/1.1 server that answers
//! every POST with an ES256-signed JWT shaped like Warrant's, with no authentication, no
//! policy and no store. It runs in a child process (`warrant-bench floor`) that prints its
//! port on stdout and exits when its stdin closes.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::process::{self, ChildServer};

const TOKEN_TTL_SECS: u64 = 300;

/// Parent side: starts `<this binary> floor` and reads the port it prints.
pub async fn spawn() -> Result<ChildServer> {
    process::spawn_self("floor").await
}

/// Child side (`warrant-bench floor`): serves until stdin closes or it is killed.
pub fn serve_child() -> Result<()> {
    process::serve_self("floor", |port| {
        let signer = Arc::new(Signer::new(format!("http://127.0.0.1:{port}/t/default"))?);
        Ok(move |req| {
            let signer = signer.clone();
            async move { signer.respond(req).await }
        })
    })
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
