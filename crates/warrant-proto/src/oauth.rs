//! OAuth 2.0 / OpenID Connect protocol bodies.

use serde::{Deserialize, Serialize};

/// RFC 6749 §5.1 successful token response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

/// RFC 6749 §5.2 error response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// OIDC Discovery 1.0 / RFC 8414 metadata. Only endpoints that exist are listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub subject_types_supported: Vec<String>,
    pub id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// RFC 8414 §2 / RFC 7662.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 8414 §2 / RFC 7009.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 8414 §2: algorithms accepted for `private_key_jwt` assertions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// RFC 8705 §3.3: tokens of certificate-authenticated clients carry `cnf.x5t#S256`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls_client_certificate_bound_access_tokens: bool,
    /// RFC 9449 §5.1: algorithms accepted for DPoP proofs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dpop_signing_alg_values_supported: Vec<String>,
}

/// The access-token claims Warrant issues (RFC 9068 §2.2), as a client reads them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    pub tenant: String,
}

/// One entry of a tenant's revocation feed (`GET {issuer}/revocations`, and the `data:` of each
/// `/revocations/stream` event); see docs/revocation-feed.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RevocationFeedEntry {
    /// One token, by `jti`; `exp` is the token's own (NumericDate seconds).
    Jti { jti: String, exp: i64 },
    /// Every token with this `sub`, `client_id` or `act.sub` whose `iat` ≤ `not_before`
    /// (NumericDate seconds).
    Subject { sub: String, not_before: i64 },
}

/// `GET {issuer}/revocations?after=CURSOR&limit=N`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationFeedPage {
    pub entries: Vec<RevocationFeedEntry>,
    /// Where to resume (`after=`): always present, decimal text, opaque to the reader.
    pub next_cursor: String,
}
