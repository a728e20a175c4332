//! What every client-authenticated form endpoint (token, introspection, revocation) reads the
//! same way: a form body under the right content type and size, and exactly one client
//! authentication method (RFC 6749 §2.3: Basic, or `client_id` + `client_secret` in the body).

use axum::body::Body;
use axum::http::{StatusCode, header, request::Parts};
use warrant_core::model::AuthMethod;

use super::form::{Params, parse_basic};
use crate::error::OAuthError;

/// Form requests are small; anything larger is refused with 413.
pub const MAX_BODY: usize = 16 * 1024;

/// Reads a `application/x-www-form-urlencoded` POST body: no query string (credentials must
/// never travel in a URL), the right content type, at most [`MAX_BODY`], no repeated
/// parameter (except those RFC 8707 lets repeat).
pub(crate) async fn read_form(parts: &Parts, body: Body, what: &str) -> Result<Params, OAuthError> {
    if parts.uri.query().is_some_and(|q| !q.is_empty()) {
        return Err(OAuthError::invalid_request(format!(
            "the {what} takes its parameters in the POST body, never in the query string"
        )));
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
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        OAuthError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "the request body is too large",
        )
    })?;
    Params::parse(&bytes)
}

/// Client credentials as presented. `Debug` names the method and client id, never the secret.
pub(crate) enum Presented<'a> {
    Basic { client_id: String, secret: String },
    Post { client_id: &'a str, secret: &'a str },
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("method", &self.method())
            .field("client_id", &self.client_id())
            .finish_non_exhaustive()
    }
}

impl Presented<'_> {
    pub(crate) fn method(&self) -> AuthMethod {
        match self {
            Presented::Basic { .. } => AuthMethod::ClientSecretBasic,
            Presented::Post { .. } => AuthMethod::ClientSecretPost,
        }
    }

    pub(crate) fn client_id(&self) -> &str {
        match self {
            Presented::Basic { client_id, .. } => client_id,
            Presented::Post { client_id, .. } => client_id,
        }
    }

    pub(crate) fn secret(&self) -> &str {
        match self {
            Presented::Basic { secret, .. } => secret,
            Presented::Post { secret, .. } => secret,
        }
    }

    /// Whether a refusal must carry a `WWW-Authenticate` challenge (RFC 6749 §5.2).
    pub(crate) fn used_basic(&self) -> bool {
        matches!(self, Presented::Basic { .. })
    }

    pub(crate) fn credentials(&self) -> warrant_core::grants::SecretCredentials<'_> {
        warrant_core::grants::SecretCredentials {
            method: self.method(),
            client_id: self.client_id(),
            secret: self.secret(),
        }
    }
}

/// Exactly one client authentication method: 400 for two, 401 (with a challenge) for a
/// malformed Basic header, 401 for none.
pub(crate) fn presented<'a>(
    parts: &Parts,
    params: &'a Params,
) -> Result<Presented<'a>, OAuthError> {
    let basic = parts.headers.get(header::AUTHORIZATION);
    let body_secret = params.get("client_secret");
    let body_id = params.get("client_id");
    match basic {
        Some(h) => {
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not Basic and client_secret together",
                ));
            }
            let (client_id, secret) =
                parse_basic(h.as_bytes()).map_err(|()| OAuthError::invalid_client(true))?;
            if body_id.is_some_and(|id| id != client_id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            Ok(Presented::Basic { client_id, secret })
        }
        None => match (body_id, body_secret) {
            (Some(client_id), Some(secret)) => Ok(Presented::Post { client_id, secret }),
            _ => Err(OAuthError::invalid_client(false)),
        },
    }
}

/// Client ids in logs, audit records and limiter keys are cut short: they are
/// attacker-controlled.
pub(crate) fn truncate(s: &str) -> String {
    super::form::truncate(s, 64)
}

/// Authenticates the presented secret against the tenant's directory. A failure counts
/// against the client id's failed-authentication limit (429 once exceeded), else 401.
pub(crate) fn authenticate(
    s: &crate::AppState,
    tenant: &warrant_core::TenantName,
    p: &Presented<'_>,
) -> Result<std::sync::Arc<warrant_core::ClientEntry>, OAuthError> {
    let now = s.warrant.now();
    s.warrant
        .authenticate_secret(tenant, p.credentials(), now)
        .map_err(|why| {
            let key = truncate(p.client_id());
            tracing::info!(tenant = %tenant, client_id = %key, why = why.as_str(), "client authentication failed");
            match s.limits.failed_auth_per_client.check(&key, now) {
                Err(retry) => OAuthError::too_many(retry.0),
                Ok(()) => OAuthError::invalid_client(p.used_basic()),
            }
        })
}

/// A client-authenticated request about one token: RFC 7662 introspection and RFC 7009
/// revocation read it the same way.
pub(crate) struct TokenRequest {
    pub keys: std::sync::Arc<warrant_core::TenantKeys>,
    pub client: std::sync::Arc<warrant_core::ClientEntry>,
    /// The `token` parameter (`token_type_hint` is ignored: Warrant issues one kind of token).
    pub token: String,
    pub ip: std::net::IpAddr,
    pub method: AuthMethod,
}

/// Reads a [`TokenRequest`], checking in the token endpoint's order: per-address rate limit
/// (429), tenant (404), query string, content type, body size and repeats (400/413), exactly
/// one authentication method (400/401), the client's secret (401, or 429 once a client id
/// keeps failing), then `token` (400 if missing: only an authenticated client learns that).
pub(crate) async fn token_request(
    s: &crate::AppState,
    tenant: &str,
    req: axum::extract::Request,
    what: &str,
) -> Result<TokenRequest, OAuthError> {
    let (parts, body) = req.into_parts();
    let ip = crate::client_addr::client_ip(&parts, &s.trusted_proxies);
    if let Err(retry) = s.limits.per_address.check(&ip, s.warrant.now()) {
        return Err(OAuthError::too_many(retry.0));
    }
    let keys = super::tenant_keys(s, tenant)?;
    let params = read_form(&parts, body, what).await?;
    let p = presented(&parts, &params)?;
    let client = authenticate(s, &keys.tenant, &p)?;
    let method = p.method();
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("the token parameter is required"))?
        .to_owned();
    Ok(TokenRequest {
        keys,
        client,
        token,
        ip,
        method,
    })
}

/// 405 with `Allow: POST`, for any other method on a form endpoint.
pub(crate) fn post_only(what: &str) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let mut e = OAuthError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        format!("the {what} accepts POST only"),
    );
    e.allow = Some("POST");
    e.into_response()
}
