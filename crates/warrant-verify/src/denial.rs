//! Why a request was refused, and how to say it: RFC 6750 §3 and RFC 9449 §7 challenges,
//! with RFC 9728's `resource_metadata`.
//!
//! - no token (or an authentication scheme we do not take): `401`, `Bearer` and `DPoP`
//!   challenges without an `error` (RFC 6750 §3.1);
//! - a malformed request (two `Authorization` headers, say): `400 invalid_request`;
//! - a bad, expired, revoked, wrong-audience or wrongly bound token: `401 invalid_token`;
//! - a DPoP proof that fails its checks: `401 invalid_dpop_proof` (DPoP challenge);
//! - a valid token without the scopes or claims the route needs: `403 insufficient_scope`;
//! - revocation state too stale to trust, or no keys yet for the issuer: `503`.
//!
//! The `error_description` never quotes the token or what was expected of it.

use http::{HeaderValue, StatusCode};

use crate::token::TokenFailure;

/// The algorithms a DPoP proof may use, for the `DPoP` challenge's `algs`.
pub const DPOP_ALGS: &str = "ES256 EdDSA RS256 PS256";

/// What went wrong, by the standard's classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialKind {
    NoToken,
    InvalidRequest,
    InvalidToken,
    InvalidDpopProof,
    InsufficientScope,
    Unavailable,
}

/// Which challenge scheme answers: the one the client used, or `DPoP` for a DPoP-bound token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    Dpop,
}

/// A refused request.
#[derive(Debug, Clone)]
pub struct Denial {
    pub kind: DenialKind,
    pub scheme: Scheme,
    /// Safe to send; never quotes the token or the expected values.
    pub description: &'static str,
    /// A stable label for logs and metrics (`expired`, `audience`, `feed_stale`, …).
    pub reason: &'static str,
    /// For `insufficient_scope`: the scopes the resource needs (RFC 6750 §3).
    pub scope: Option<String>,
    /// The token, when it verified and a later check refused it (revoked, wrong audience,
    /// binding, scopes): who was refused, for the access log. Never sent to the caller.
    pub token: Option<crate::Verified>,
}

impl Denial {
    pub(crate) fn new(
        kind: DenialKind,
        scheme: Scheme,
        reason: &'static str,
        description: &'static str,
    ) -> Self {
        Self {
            kind,
            scheme,
            description,
            reason,
            scope: None,
            token: None,
        }
    }

    pub(crate) fn no_token() -> Self {
        Self::new(
            DenialKind::NoToken,
            Scheme::Bearer,
            "no_token",
            "no access token was sent",
        )
    }

    pub(crate) fn token(failure: TokenFailure, scheme: Scheme) -> Self {
        Self::new(
            DenialKind::InvalidToken,
            scheme,
            failure.as_str(),
            match failure {
                TokenFailure::Malformed => "the token is malformed",
                TokenFailure::Type => "the token is not an access token",
                TokenFailure::Signature | TokenFailure::UnknownKey => {
                    "the token's signature is not valid"
                }
                TokenFailure::Issuer => "the token's issuer is not trusted",
                TokenFailure::MissingClaim => "the token lacks a required claim",
                TokenFailure::Expired => "the token has expired",
                TokenFailure::NotYetValid => "the token is not valid yet",
                TokenFailure::Audience => "the token is not meant for this resource",
                TokenFailure::Revoked => "the token has been revoked",
                TokenFailure::Confirmation => "the token's binding cannot be checked",
            },
        )
    }

    pub(crate) fn unavailable(reason: &'static str, description: &'static str) -> Self {
        Self::new(DenialKind::Unavailable, Scheme::Bearer, reason, description)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            DenialKind::NoToken | DenialKind::InvalidToken | DenialKind::InvalidDpopProof => {
                StatusCode::UNAUTHORIZED
            }
            DenialKind::InvalidRequest => StatusCode::BAD_REQUEST,
            DenialKind::InsufficientScope => StatusCode::FORBIDDEN,
            DenialKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The OAuth error code, if any.
    pub fn error_code(&self) -> Option<&'static str> {
        match self.kind {
            DenialKind::NoToken | DenialKind::Unavailable => None,
            DenialKind::InvalidRequest => Some("invalid_request"),
            DenialKind::InvalidToken => Some("invalid_token"),
            DenialKind::InvalidDpopProof => Some("invalid_dpop_proof"),
            DenialKind::InsufficientScope => Some("insufficient_scope"),
        }
    }

    /// The `WWW-Authenticate` values, one per challenge. `resource_metadata` is the RFC 9728
    /// metadata URL of the resource, when it publishes one.
    pub fn challenges(&self, resource_metadata: Option<&str>) -> Vec<String> {
        let params = |scheme: &str, error: Option<&str>, algs: bool| {
            let mut c = format!("{scheme} realm=\"warrant\"");
            if let Some(e) = error {
                c.push_str(&format!(
                    ", error=\"{e}\", error_description=\"{}\"",
                    self.description
                ));
            }
            if let Some(s) = &self.scope {
                c.push_str(&format!(", scope=\"{}\"", quoted(s)));
            }
            if let Some(m) = resource_metadata {
                c.push_str(&format!(", resource_metadata=\"{}\"", quoted(m)));
            }
            if algs {
                c.push_str(&format!(", algs=\"{DPOP_ALGS}\""));
            }
            c
        };
        match (self.kind, self.scheme) {
            (DenialKind::Unavailable, _) => Vec::new(),
            (DenialKind::NoToken, _) => {
                vec![params("Bearer", None, false), params("DPoP", None, true)]
            }
            (_, Scheme::Bearer) => vec![params("Bearer", self.error_code(), false)],
            (_, Scheme::Dpop) => vec![params("DPoP", self.error_code(), true)],
        }
    }

    /// The JSON body: `{"error", "error_description"}` (empty object without an error code).
    pub fn body(&self) -> String {
        match self.error_code() {
            Some(e) => serde_json::json!({"error": e, "error_description": self.description}),
            None if self.kind == DenialKind::Unavailable => serde_json::json!({
                "error": "temporarily_unavailable", "error_description": self.description
            }),
            None => serde_json::json!({}),
        }
        .to_string()
    }

    /// The whole response.
    pub fn to_response<B: From<String>>(
        &self,
        resource_metadata: Option<&str>,
    ) -> http::Response<B> {
        let mut resp = http::Response::new(B::from(self.body()));
        *resp.status_mut() = self.status();
        let h = resp.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        for c in self.challenges(resource_metadata) {
            if let Ok(v) = HeaderValue::from_str(&c) {
                h.append(http::header::WWW_AUTHENTICATE, v);
            }
        }
        if self.kind == DenialKind::Unavailable {
            h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

/// A quoted-string's content: `"` and `\` escaped, control characters dropped.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
