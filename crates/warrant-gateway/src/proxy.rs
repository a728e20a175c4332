//! One request through the gateway: route, RFC 9728 metadata, verification, the forwarded
//! request, the relayed response, then one access-log line and the metrics.
//!
//! Bodies stream both ways (hyper's `Incoming` goes to the upstream client as it arrives, and
//! the upstream's body comes back the same way). Responses the gateway makes itself carry a
//! fixed JSON body and never an internal error's text.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::{Bytes, Incoming};
use warrant_verify::{DenialKind, Presented, VerifiedToken};

use crate::access_log::Entry;
use crate::headers;
use crate::metrics::Outcome;
use crate::path::canonical_path;
use crate::routes::{Route, match_host, valid_authority};
use crate::runtime::{Runtime, Shared};

/// A response body: the upstream's, streamed, or one the gateway made.
pub(crate) type Body = Either<Incoming, Full<Bytes>>;

/// Facts about the connection a request came on.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    pub(crate) remote: SocketAddr,
    pub(crate) https: bool,
    /// The DER end-entity certificate the client presented in the TLS handshake.
    pub(crate) client_certificate: Option<Vec<u8>>,
}

/// How a request ended, for the log and the metrics.
struct Done {
    response: Response<Body>,
    outcome: Outcome,
    route: Option<Arc<str>>,
    token: Option<Arc<VerifiedToken>>,
    reason: Option<&'static str>,
}

impl Done {
    fn new(response: Response<Body>, outcome: Outcome, route: Option<&Route>) -> Self {
        Self {
            response,
            outcome,
            route: route.map(|r| r.name.clone()),
            token: None,
            reason: None,
        }
    }
}

/// Serves one request.
pub(crate) async fn handle(
    shared: &Shared,
    conn: &ConnInfo,
    req: Request<Incoming>,
) -> Response<Body> {
    let started = Instant::now();
    let rt = shared.runtime();
    let (mut parts, body) = req.into_parts();
    let uri = std::mem::take(&mut parts.uri);
    let method = parts.method.clone();
    // RFC 9112 §3.2.2: an absolute-form target's authority replaces Host. One with userinfo
    // is refused below, and not logged (it may hold a password).
    let host = match uri.authority() {
        Some(a) if a.as_str().contains('@') => None,
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => parts.headers.get(header::HOST).cloned(),
    };
    let host_str = host.as_ref().and_then(|h| h.to_str().ok()).unwrap_or("");
    let (done, logged_path) = match admit(&parts, &uri) {
        Ok(path) => {
            let done = route(
                &rt,
                conn,
                parts,
                body,
                &path,
                uri.query(),
                host.as_ref(),
                host_str,
            )
            .await;
            (done, path)
        }
        Err(r) => (r.done(), Cow::Borrowed(uri.path())),
    };

    let latency = started.elapsed();
    let status = done.response.status().as_u16();
    shared
        .metrics
        .request(done.route.as_ref(), done.outcome, status, latency);
    if let (Some(route), Some(reason)) = (&done.route, done.reason) {
        shared.metrics.denial(route, reason);
    }
    shared.log.write(
        &Entry {
            method: method.as_str(),
            host: host_str,
            path: &logged_path,
            route: done.route.as_deref(),
            status,
            latency_ms: latency.as_secs_f64() * 1000.0,
            token: done.token.as_deref(),
            outcome: done.outcome,
            reason: done.reason,
            remote: conn.remote.ip(),
        },
        &shared.metrics,
    );
    done.response
}

/// What is refused before any route is looked up: `CONNECT` and `TRACE` (405; TRACE would echo
/// the identity headers back), a malformed host (400), and a path that has no safe canonical
/// form (400). Otherwise the canonical path ([`canonical_path`]), which is matched, verified
/// (DPoP `htu`), logged and forwarded.
fn admit<'u>(parts: &Parts, uri: &'u Uri) -> Result<Cow<'u, str>, Rejection> {
    if parts.method == Method::CONNECT || parts.method == Method::TRACE {
        return Err(rejected(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"error":"method_not_allowed"}"#,
            "method_not_allowed",
        ));
    }
    let host_ok = match uri.authority() {
        // Absolute-form: userinfo (`http://user@host/`) is refused (RFC 9110 §4.2.4).
        Some(a) => valid_authority(a.as_str()),
        None => {
            let mut values = parts.headers.get_all(header::HOST).iter();
            match (values.next(), values.next()) {
                (None, _) => true,
                (Some(v), None) => v.is_empty() || v.to_str().is_ok_and(valid_authority),
                // RFC 9112 §3.2: more than one Host is a bad request.
                (Some(_), Some(_)) => false,
            }
        }
    };
    if !host_ok {
        return Err(rejected(
            StatusCode::BAD_REQUEST,
            r#"{"error":"invalid_request"}"#,
            "invalid_host",
        ));
    }
    canonical_path(uri.path()).map_err(|e| {
        tracing::debug!(error = ?e, "request path refused");
        rejected(
            StatusCode::BAD_REQUEST,
            r#"{"error":"invalid_request"}"#,
            "invalid_path",
        )
    })
}

/// A request refused before routing.
struct Rejection {
    status: StatusCode,
    body: &'static str,
    reason: &'static str,
}

impl Rejection {
    fn done(self) -> Done {
        let mut done = Done::new(json(self.status, self.body), Outcome::Rejected, None);
        done.reason = Some(self.reason);
        done
    }
}

fn rejected(status: StatusCode, body: &'static str, reason: &'static str) -> Rejection {
    Rejection {
        status,
        body,
        reason,
    }
}

/// Routes, verifies and forwards a request whose canonical path is `path`.
#[allow(clippy::too_many_arguments)]
async fn route(
    rt: &Runtime,
    conn: &ConnInfo,
    mut parts: Parts,
    body: Incoming,
    path: &str,
    query: Option<&str>,
    host_value: Option<&HeaderValue>,
    host: &str,
) -> Done {
    let bare_host = match_host(host);
    if (parts.method == Method::GET || parts.method == Method::HEAD)
        && let Some(route) = rt.routes.metadata(bare_host, path)
    {
        let origin = origin(rt, conn, host);
        return Done::new(metadata(rt, route, &origin), Outcome::Allowed, Some(route));
    }
    let Some(route) = rt.routes.find(bare_host, path) else {
        return Done::new(
            json(StatusCode::NOT_FOUND, r#"{"error":"not_found"}"#),
            Outcome::NotFound,
            None,
        );
    };
    let mut token = None;
    if route.config.verify {
        let origin = origin(rt, conn, host);
        let mut url = String::with_capacity(origin.len() + path.len());
        url.push_str(&origin);
        url.push_str(path);
        let presented = Presented {
            method: parts.method.as_str(),
            url: &url,
            headers: &parts.headers,
            client_certificate: conn.client_certificate.as_deref(),
        };
        let checked = match &rt.verifier {
            Some(v) => v.check(&presented, &route.config.requirement).await,
            // Validation requires an issuer when a route verifies; refuse rather than pass.
            None => {
                return Done::new(
                    json(
                        StatusCode::SERVICE_UNAVAILABLE,
                        r#"{"error":"temporarily_unavailable"}"#,
                    ),
                    Outcome::Denied,
                    Some(route),
                );
            }
        };
        match checked {
            Ok(t) => token = Some(t),
            Err(denial) => {
                let url = match &route.metadata_url {
                    Some(u) => Cow::Borrowed(u.as_str()),
                    None => Cow::Owned(route.metadata_url_for(&origin)),
                };
                let response = denial
                    .to_response::<String>(Some(&url))
                    .map(|b| Either::Right(Full::new(Bytes::from(b))));
                if denial.kind != DenialKind::NoToken {
                    tracing::debug!(route = %route.name, reason = denial.reason, "request refused");
                }
                let mut done = Done::new(response, Outcome::Denied, Some(route));
                done.reason = Some(denial.reason);
                // Who was refused, when the token itself verified (revoked, wrong audience, …).
                done.token = denial.token;
                return done;
            }
        }
    }

    let identity = &rt.config.identity_headers;
    headers::remove_hop_by_hop(&mut parts.headers);
    headers::remove_untrusted(&mut parts.headers, identity);
    if let Some(t) = &token {
        headers::set_identity(&mut parts.headers, identity, t);
    }
    if !route.config.forward_authorization {
        headers::remove_credentials(&mut parts.headers);
    }
    headers::set_forwarded(&mut parts.headers, conn.remote.ip(), conn.https, host_value);
    // The upstream gets its own authority as Host (the client's is in X-Forwarded-Host).
    parts.headers.remove(header::HOST);
    parts.version = Version::HTTP_11;
    let target = Uri::builder()
        .scheme("http")
        .authority(route.config.upstream.authority.clone())
        .path_and_query(route.upstream_path_and_query(path, query))
        .build();
    parts.uri = match target {
        Ok(u) => u,
        Err(_) => {
            return Done::new(
                json(StatusCode::BAD_REQUEST, r#"{"error":"invalid_request"}"#),
                Outcome::UpstreamError,
                Some(route),
            );
        }
    };
    let sent = rt.client.request(Request::from_parts(parts, body));
    let mut done = match tokio::time::timeout(rt.config.upstream_timeout, sent).await {
        Ok(Ok(mut resp)) => {
            headers::remove_hop_by_hop(resp.headers_mut());
            Done::new(resp.map(Either::Left), Outcome::Allowed, Some(route))
        }
        Ok(Err(e)) => {
            tracing::warn!(route = %route.name, error = %e, cause = ?std::error::Error::source(&e), "the upstream request failed");
            Done::new(
                json(StatusCode::BAD_GATEWAY, r#"{"error":"bad_gateway"}"#),
                Outcome::UpstreamError,
                Some(route),
            )
        }
        Err(_) => {
            tracing::warn!(route = %route.name, "the upstream did not answer in time");
            Done::new(
                json(
                    StatusCode::GATEWAY_TIMEOUT,
                    r#"{"error":"upstream_timeout"}"#,
                ),
                Outcome::UpstreamError,
                Some(route),
            )
        }
    };
    done.token = token;
    done
}

/// The origin the client addressed: `public_url`, or the connection's scheme and `Host`.
fn origin<'a>(rt: &'a Runtime, conn: &ConnInfo, host: &str) -> Cow<'a, str> {
    match &rt.config.public_url {
        Some(u) => Cow::Borrowed(u.as_str()),
        None => Cow::Owned(format!(
            "{}://{}",
            if conn.https { "https" } else { "http" },
            if host.is_empty() { "localhost" } else { host }
        )),
    }
}

/// RFC 9728 §3.2: the protected resource metadata of a verified route.
fn metadata(rt: &Runtime, route: &Route, origin: &str) -> Response<Body> {
    let body = serde_json::json!({
        "resource": route.resource(origin),
        "authorization_servers": rt.config.issuers.iter().map(|i| i.issuer.as_str()).collect::<Vec<_>>(),
        "scopes_supported": route.scopes,
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": warrant_verify::DPOP_ALGS.split(' ').collect::<Vec<_>>(),
    });
    let mut resp = json(StatusCode::OK, body.to_string());
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// A JSON response the gateway makes itself.
fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Either::Right(Full::new(body.into())));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
