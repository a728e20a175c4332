//! What every client-authenticated form endpoint (token, introspection, revocation) reads the
//! same way: a form body under the right content type and size, and exactly one client
//! authentication method (RFC 6749 §2.3: Basic, `client_id` + `client_secret` in the body, a
//! `client_assertion` (RFC 7523), or `client_id` with a client certificate (RFC 8705)).

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{StatusCode, header, request::Parts};
use warrant_core::client_auth::assertion::{
    AssertionFailure, CLIENT_ASSERTION_TYPE, MAX_ASSERTION_LEN,
};
use warrant_core::client_auth::{Authenticated, ClientAuth, PresentedCertificate};
use warrant_core::grants::{ClientFailure, SecretCredentials, TokenError};
use warrant_core::model::AuthMethod;

use crate::tls::presented_certificate;

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

/// Client credentials as presented. `Debug` names the method and client id, never a secret
/// or an assertion.
pub(crate) enum Presented<'a> {
    Basic {
        client_id: String,
        secret: String,
    },
    Post {
        client_id: &'a str,
        secret: &'a str,
    },
    /// RFC 7523 §2.2 `private_key_jwt`.
    Assertion {
        client_id: Option<&'a str>,
        assertion: &'a str,
    },
    /// RFC 8705 §2: `client_id` and a client certificate, no secret or assertion.
    Certificate {
        client_id: &'a str,
        certificate: Arc<PresentedCertificate>,
    },
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.auth().fmt(f)
    }
}

impl Presented<'_> {
    /// The credential as the core takes it.
    pub(crate) fn auth(&self) -> ClientAuth<'_> {
        match self {
            Presented::Basic { client_id, secret } => ClientAuth::Secret(SecretCredentials {
                method: AuthMethod::ClientSecretBasic,
                client_id,
                secret,
            }),
            Presented::Post { client_id, secret } => ClientAuth::Secret(SecretCredentials {
                method: AuthMethod::ClientSecretPost,
                client_id,
                secret,
            }),
            Presented::Assertion {
                client_id,
                assertion,
            } => ClientAuth::Assertion {
                client_id: *client_id,
                assertion,
            },
            Presented::Certificate {
                client_id,
                certificate,
            } => ClientAuth::Certificate {
                client_id,
                certificate,
            },
        }
    }

    /// The method as the request shows it, for logs and audit records.
    pub(crate) fn method_name(&self) -> &'static str {
        self.auth().method_name()
    }

    /// The client id as presented (attacker-controlled: cut short where it is logged). Borrowed
    /// except for an assertion without `client_id`, whose unverified `sub` is read.
    pub(crate) fn client_id(&self) -> Cow<'_, str> {
        self.auth().client_id().unwrap_or(Cow::Borrowed("-"))
    }

    /// Whether a refusal must carry a `WWW-Authenticate` challenge (RFC 6749 §5.2).
    pub(crate) fn used_basic(&self) -> bool {
        matches!(self, Presented::Basic { .. })
    }
}

/// Exactly one client authentication method (RFC 6749 §2.3: "MUST NOT use more than one"):
/// Basic, `client_secret` in the body, a `client_assertion` (RFC 7523 §2.2), or `client_id`
/// alone with a client certificate (RFC 8705 §2). 400 for two methods or a wrong
/// `client_assertion_type`, 401 (with a challenge) for a malformed Basic header, 401 for none.
/// A certificate on the connection is not a method by itself: a client may present one and
/// still authenticate by secret or assertion.
pub(crate) fn presented<'a>(
    parts: &Parts,
    params: &'a Params,
    certificate: impl FnOnce() -> Option<Arc<PresentedCertificate>>,
) -> Result<Presented<'a>, OAuthError> {
    let basic = parts.headers.get(header::AUTHORIZATION);
    let body_secret = params.get("client_secret");
    let body_id = params.get("client_id");
    let assertion = params.get("client_assertion");
    let assertion_type = params.get("client_assertion_type");
    let two = || {
        OAuthError::invalid_request(
            "use one client authentication method (Basic, client_secret, client_assertion or a \
             client certificate), not several",
        )
    };
    if assertion.is_some() || assertion_type.is_some() {
        if basic.is_some() || body_secret.is_some() {
            return Err(two());
        }
        if assertion_type != Some(CLIENT_ASSERTION_TYPE) {
            return Err(OAuthError::invalid_request(format!(
                "client_assertion_type must be {CLIENT_ASSERTION_TYPE}"
            )));
        }
        let Some(assertion) = assertion else {
            return Err(OAuthError::invalid_request(
                "client_assertion_type was sent without client_assertion",
            ));
        };
        if assertion.len() > MAX_ASSERTION_LEN {
            return Err(OAuthError::invalid_client(false));
        }
        return Ok(Presented::Assertion {
            client_id: body_id,
            assertion,
        });
    }
    match basic {
        Some(h) => {
            if body_secret.is_some() {
                return Err(two());
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
        // The certificate is looked up only when it is the method: a secret never needs it.
        None => match (body_id, body_secret) {
            (Some(client_id), Some(secret)) => Ok(Presented::Post { client_id, secret }),
            (Some(client_id), None) => match certificate() {
                Some(certificate) => Ok(Presented::Certificate {
                    client_id,
                    certificate,
                }),
                None => Err(OAuthError::invalid_client(false)),
            },
            _ => Err(OAuthError::invalid_client(false)),
        },
    }
}

/// Client ids in logs, audit records and limiter keys are cut short: they are
/// attacker-controlled.
pub(crate) fn truncate(s: &str) -> String {
    super::form::truncate(s, 64)
}

/// Authenticates the presented credential (any method). A failure counts against the client
/// id's failed-authentication limit (429 once exceeded), else 401; a store failure is 503.
pub(crate) async fn authenticate(
    s: &crate::AppState,
    keys: &warrant_core::TenantKeys,
    p: &Presented<'_>,
) -> Result<Authenticated, OAuthError> {
    let now = s.warrant.now();
    s.warrant
        .authenticate_client(&keys.tenant, &keys.issuer, &p.auth(), now)
        .await
        .map_err(|e| match e {
            TokenError::InvalidClient(why) => {
                match failed_authentication(s, keys.tenant.as_str(), &p.client_id(), why, now) {
                    Err(retry) => OAuthError::too_many(retry),
                    Ok(()) => invalid_client(keys, why, p.used_basic()),
                }
            }
            other => OAuthError::from_token_error(&other, p.used_basic()),
        })
}

/// A failed client authentication, the same on every endpoint: logged with the client id cut
/// short (it is attacker-controlled) and counted against that id's failed-authentication
/// limit — `Err(retry_after_secs)` once it is exceeded. A correct credential is never counted,
/// so nobody can lock a client out by spraying its id.
pub(crate) fn failed_authentication(
    s: &crate::AppState,
    tenant: &str,
    client_id: &str,
    why: ClientFailure,
    now: warrant_core::Timestamp,
) -> Result<(), u64> {
    let key = truncate(client_id);
    tracing::info!(tenant, client_id = %key, why = why.as_str(), "client authentication failed");
    s.limits
        .failed_auth_per_client
        .check(&key, now)
        .map_err(|retry| retry.0)
}

/// `invalid_client` (401), saying what `aud` to send when that was the assertion's fault
/// (the issuer is public; nothing else about the account is told).
pub(crate) fn invalid_client(
    keys: &warrant_core::TenantKeys,
    why: ClientFailure,
    used_basic: bool,
) -> OAuthError {
    let mut e = OAuthError::invalid_client(used_basic);
    if why == ClientFailure::Assertion(AssertionFailure::Audience.as_str()) {
        e.description = format!(
            "client authentication failed: the client assertion's aud must be the issuer {}",
            keys.issuer
        );
    }
    e
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
    let p = presented(&parts, &params, || presented_certificate(&parts, s))?;
    let Authenticated { client, method, .. } = authenticate(s, &keys, &p).await?;
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
