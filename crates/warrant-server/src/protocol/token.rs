//! `POST {issuer}/token` (RFC 6749 §3.2, §4.4, §5): client credentials with
//! `client_secret_basic` or `client_secret_post`, exactly one per request.
//!
//! The checks run in this order, each answered with the status DESIGN.md gives: per-address rate
//! limit (429), tenant (404), parameters in the query string (400), content type (400), body size
//! (413), repeated parameters (400), client authentication method (400 for two methods, 401 for a
//! malformed Basic header), grant type (400), then the core decides (401/400) — and a client id
//! that keeps failing authentication is slowed down (429) without locking out the right secret.

use std::net::IpAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use warrant_core::grants::{ClientCredentials, SecretCredentials, TokenError};
use warrant_core::model::AuthMethod;
use warrant_proto::oauth::TokenResponse;

use super::form::{Params, parse_basic};
use crate::AppState;
use crate::client_addr::client_ip;
use crate::error::{OAuthError, no_store};

/// Token requests are small; anything larger is refused with 413.
pub const MAX_BODY: usize = 16 * 1024;

/// A refusal and its metric label.
struct Refusal(OAuthError, &'static str);

impl From<OAuthError> for Refusal {
    fn from(e: OAuthError) -> Self {
        let reason = match e.code {
            "invalid_client" => "invalid_client",
            "unsupported_grant_type" => "unsupported_grant_type",
            _ => "invalid_request",
        };
        Refusal(e, reason)
    }
}

/// The axum handler (the route table's entry for the token endpoint).
pub async fn token(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
    req: Request,
) -> Response {
    respond(&s, &tenant, req).await
}

/// The tenant of a `/t/{tenant}/token` path, for the accept loop's direct route to [`respond`].
/// `None` for anything else, including percent-encoded paths (the router decodes those).
pub fn token_path_tenant(path: &str) -> Option<&str> {
    let tenant = path.strip_prefix("/t/")?.strip_suffix("/token")?;
    (!tenant.is_empty() && !tenant.contains(['/', '%'])).then_some(tenant)
}

/// Answers one token request: the same code whether the router or the accept loop's direct
/// route (the hot path skips routing and extractors) got it here.
pub async fn respond(s: &AppState, tenant: &str, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let ip = client_ip(&parts, &s.trusted_proxies);
    let resp = match handle(s, tenant, &parts, body, ip).await {
        Ok(resp) => {
            s.metrics.issued(tenant, "client_credentials");
            resp
        }
        Err(Refusal(e, reason)) => {
            if reason != "unknown_tenant" {
                s.metrics.refused(tenant, "client_credentials", reason);
            }
            tracing::info!(tenant = %tenant, client_addr = %ip, error = e.code, reason, "token request refused");
            e.into_response()
        }
    };
    s.metrics.observe_token_latency(started.elapsed());
    resp
}

async fn handle(
    s: &AppState,
    tenant: &str,
    parts: &Parts,
    body: Body,
    ip: IpAddr,
) -> Result<Response, Refusal> {
    let now = s.warrant.now();
    if let Err(retry) = s.limits.per_address.check(&ip, now) {
        return Err(Refusal(OAuthError::too_many(retry.0), "rate_limited"));
    }
    let keys = super::tenant_keys(s, tenant).map_err(|e| Refusal(e, "unknown_tenant"))?;
    if parts.uri.query().is_some_and(|q| !q.is_empty()) {
        return Err(OAuthError::invalid_request(
            "the token endpoint takes its parameters in the POST body, never in the query string",
        )
        .into());
    }
    let form_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(OAuthError::invalid_request(
            "the content type must be application/x-www-form-urlencoded",
        )
        .into());
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        OAuthError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "the request body is too large",
        )
    })?;
    let params = Params::parse(&bytes)?;

    // Client authentication: exactly one method (RFC 6749 §2.3).
    let basic = parts.headers.get(header::AUTHORIZATION);
    let body_secret = params.get("client_secret");
    let body_id = params.get("client_id");
    let basic_creds;
    let (method, client_id, secret) = match basic {
        Some(h) => {
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not Basic and client_secret together",
                )
                .into());
            }
            basic_creds =
                parse_basic(h.as_bytes()).map_err(|()| OAuthError::invalid_client(true))?;
            if body_id.is_some_and(|id| id != basic_creds.0) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Basic credentials",
                )
                .into());
            }
            (
                AuthMethod::ClientSecretBasic,
                basic_creds.0.as_str(),
                basic_creds.1.as_str(),
            )
        }
        None => match (body_id, body_secret) {
            (Some(id), Some(secret)) => (AuthMethod::ClientSecretPost, id, secret),
            _ => return Err(OAuthError::invalid_client(false).into()),
        },
    };
    let used_basic = method == AuthMethod::ClientSecretBasic;

    match params.get("grant_type") {
        Some("client_credentials") => {}
        Some(_) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "this grant type is not supported",
            )
            .into());
        }
        None => return Err(OAuthError::invalid_request("grant_type is required").into()),
    }

    let audiences: Vec<&str> = params
        .all("resource")
        .chain(params.all("audience"))
        .collect();
    let request = ClientCredentials {
        keys: &keys,
        credentials: SecretCredentials {
            method,
            client_id,
            secret,
        },
        audiences: &audiences,
        scope: params.get("scope"),
    };
    let issued = match s.warrant.client_credentials(request) {
        Ok(t) => t,
        Err(TokenError::InvalidClient(why)) => {
            tracing::info!(tenant, client_id = %truncate(client_id), why = why.as_str(), "client authentication failed");
            let key: String = truncate(client_id);
            if let Err(retry) = s.limits.failed_auth_per_client.check(&key, now) {
                return Err(Refusal(OAuthError::too_many(retry.0), "rate_limited"));
            }
            return Err(Refusal(
                OAuthError::invalid_client(used_basic),
                "invalid_client",
            ));
        }
        Err(e) => {
            let reason = match &e {
                TokenError::InvalidTarget(_) => "invalid_target",
                TokenError::InvalidScope(_) => "invalid_scope",
                TokenError::Unavailable(_) => "unavailable",
                _ => "invalid_request",
            };
            return Err(Refusal(
                OAuthError::from_token_error(&e, used_basic),
                reason,
            ));
        }
    };
    tracing::debug!(tenant, client_id, jti = %issued.jti, aud = %issued.audience, "token issued");
    let body = TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer".into(),
        expires_in: issued.expires_in,
        scope: (!issued.scope.is_empty()).then_some(issued.scope),
        issued_token_type: None,
    };
    // Serialised into a buffer sized for the token, not grown from a small default.
    let mut buf = Vec::with_capacity(body.access_token.len() + 128);
    serde_json::to_writer(&mut buf, &body).map_err(|_| {
        Refusal(
            OAuthError::from_token_error(
                &TokenError::Unavailable("response serialisation".into()),
                false,
            ),
            "unavailable",
        )
    })?;
    let mut resp = ([(header::CONTENT_TYPE, "application/json")], buf).into_response();
    no_store(&mut resp);
    Ok(resp)
}

/// Client ids in logs and limiter keys are cut short: they are attacker-controlled.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Any method but POST: 405 with `Allow: POST`.
pub async fn method_not_allowed() -> Response {
    let mut e = OAuthError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        "the token endpoint accepts POST only",
    );
    e.allow = Some("POST");
    e.into_response()
}

#[cfg(test)]
mod tests {
    use super::token_path_tenant;

    #[test]
    fn only_exact_token_paths_take_the_direct_route() {
        assert_eq!(token_path_tenant("/t/default/token"), Some("default"));
        assert_eq!(token_path_tenant("/t/a-1/token"), Some("a-1"));
        for other in [
            "/t//token",
            "/t/a/b/token",
            "/t/%61/token",
            "/t/a/token/",
            "/t/a/jwks",
            "/admin/v1/t/a/token",
            "/x/t/a/token",
        ] {
            assert_eq!(token_path_tenant(other), None, "{other}");
        }
    }
}
