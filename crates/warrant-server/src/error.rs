//! The one place where errors become HTTP responses: RFC 6749 §5.2 JSON for the protocol
//! endpoints, RFC 9457 problem details for the admin API. Causes are logged here; clients get
//! only a safe description.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use warrant_core::admin::AdminError;
use warrant_core::grants::TokenError;
use warrant_proto::admin::Problem;
use warrant_proto::oauth::ErrorResponse;

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1) on every token response.
pub(crate) fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A protocol error response.
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
    /// `WWW-Authenticate` challenge (RFC 6749 §5.2: when the client used HTTP authentication).
    pub challenge: Option<&'static str>,
    /// `Retry-After` seconds for 429.
    pub retry_after: Option<u64>,
    /// `Allow` for 405.
    pub allow: Option<&'static str>,
    /// `DPoP-Nonce` (RFC 9449 §8): a fresh server nonce, with `use_dpop_nonce` and whenever
    /// nonces are in use.
    pub dpop_nonce: Option<String>,
}

impl OAuthError {
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            challenge: None,
            retry_after: None,
            allow: None,
            dpop_nonce: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 401 `invalid_client`, with a Basic challenge when the client tried Basic.
    pub fn invalid_client(basic: bool) -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
        if basic {
            e.challenge = Some(r#"Basic realm="warrant", charset="UTF-8""#);
        }
        e
    }

    pub fn too_many(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            "too many requests; retry later",
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// Maps a core refusal. `basic` says whether the client used HTTP Basic.
    pub fn from_token_error(e: &TokenError, basic: bool) -> Self {
        match e {
            TokenError::InvalidClient(_) => Self::invalid_client(basic),
            TokenError::InvalidRequest(d) => Self::invalid_request(d.clone()),
            TokenError::InvalidTarget(d) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_target", d.clone())
            }
            TokenError::InvalidScope(d) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d.clone())
            }
            TokenError::UnknownTenant => {
                Self::new(StatusCode::NOT_FOUND, "invalid_request", "no such tenant")
            }
            TokenError::Unavailable(cause) | TokenError::SigningUnavailable(cause) => {
                tracing::error!(cause = %cause, "token issuance unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the issuer cannot sign tokens right now",
                )
            }
            TokenError::UnauthorizedClient(d) => {
                Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", d.clone())
            }
            TokenError::DpopRequired => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_dpop_proof",
                "this client must send a DPoP proof",
            ),
            TokenError::IssuerKeysUnavailable(cause) => {
                tracing::warn!(cause = %cause, "federation: the issuer's keys are unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the keys of the token's issuer cannot be had right now; retry later",
                )
            }
            // The class of check only: never what the trust expected.
            TokenError::Untrusted { code, mismatch } => {
                Self::new(StatusCode::BAD_REQUEST, code, mismatch.class.as_str())
            }
            TokenError::DpopReplayed => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_dpop_proof",
                "the DPoP proof was already used",
            ),
            _ => Self::invalid_request("the request was refused"),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            error: self.code.to_owned(),
            error_description: Some(self.description),
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        no_store(&mut resp);
        let h = resp.headers_mut();
        if let Some(c) = self.challenge {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if let Some(a) = self.allow {
            h.insert(header::ALLOW, HeaderValue::from_static(a));
        }
        if let Some(v) = self.dpop_nonce.and_then(|n| HeaderValue::try_from(n).ok()) {
            h.insert(crate::protocol::dpop::DPOP_NONCE, v);
        }
        resp
    }
}

/// An admin API error as RFC 9457 problem details.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    pub challenge: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            challenge: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let status = match &e {
            AdminError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AdminError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Internal(cause) => {
                tracing::error!(cause = %cause, "admin request failed");
                return Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log",
                );
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut out = Self::new(status, e.to_string());
        if status == StatusCode::UNAUTHORIZED {
            out.challenge = Some(r#"Bearer realm="warrant-admin", error="invalid_token""#);
        }
        out
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            type_: "about:blank".into(),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: Some(self.detail),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(c) = self.challenge {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        resp
    }
}
