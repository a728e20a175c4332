//! Token grants, one file per grant type. Each authenticates the client, applies the account's
//! policy and hands the result to the `issue` module, which builds the RFC 9068 access token's
//! claims and signs them (inline, or on a blocking thread when the key is held in an HSM).

mod client_credentials;
mod exchange;
mod issue;

pub use client_credentials::{ClientCredentials, DPOP_JTI, DpopBinding, SecretCredentials};
pub use exchange::{
    ExchangeGrant, ExchangeRequest, FEDERATION_JTI, GRANT_JWT_BEARER, GRANT_TOKEN_EXCHANGE,
    TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT,
};
pub(crate) use issue::JtiSource;
pub use issue::{Confirmation, IssuedToken};

/// Why a client failed to authenticate. Shown to operators (logs, metrics) but never to the
/// client, which only learns `invalid_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFailure {
    /// The grant needs an authenticated client and the request carried no credential.
    NoCredentials,
    MalformedClientId,
    MalformedSecret,
    UnknownClient,
    WrongSecret,
    SecretExpired,
    Disabled,
    MethodNotAllowed,
    /// The certificate neither chains to the client CA and matches the account's rule, nor is
    /// one the account registered.
    CertificateMismatch,
    /// The account's `jwks_uri` could not be fetched and no keys are cached.
    KeysUnavailable,
    /// A client assertion failed one check (the check's name, e.g. `audience`, `replayed`).
    Assertion(&'static str),
}

impl ClientFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientFailure::NoCredentials => "no_credentials",
            ClientFailure::MalformedClientId => "malformed_client_id",
            ClientFailure::MalformedSecret => "malformed_secret",
            ClientFailure::UnknownClient => "unknown_client",
            ClientFailure::WrongSecret => "wrong_secret",
            ClientFailure::SecretExpired => "secret_expired",
            ClientFailure::Disabled => "disabled",
            ClientFailure::MethodNotAllowed => "method_not_allowed",
            ClientFailure::CertificateMismatch => "certificate_mismatch",
            ClientFailure::KeysUnavailable => "client_keys_unavailable",
            ClientFailure::Assertion(why) => why,
        }
    }
}

/// A refused token request, shaped after RFC 6749 §5.2. Descriptions are safe to show the
/// (authenticated) client: they name its own request, never stored policy of others or
/// internal state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("invalid_client ({})", .0.as_str())]
    InvalidClient(ClientFailure),
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error("unknown tenant")]
    UnknownTenant,
    /// RFC 7009 §2.1: the token was issued to another client.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    /// Issuance cannot proceed (no signing key, store down): fails closed. Logged, not shown.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// The tenant's key is held in an HSM and the HSM could not sign (token gone, logged out,
    /// pool exhausted): fails closed like [`TokenError::Unavailable`], counted apart.
    #[error("temporarily unavailable: {0}")]
    SigningUnavailable(String),
    /// RFC 9449: the account requires DPoP and the request carried no proof.
    #[error("invalid_dpop_proof: this client must send a DPoP proof")]
    DpopRequired,
    /// RFC 9449 §11.1: the proof's `jti` was seen before.
    #[error("invalid_dpop_proof: the DPoP proof was already used")]
    DpopReplayed,
    /// No trust of the external token's issuer could get its keys (discovery or `jwks_uri`
    /// unreachable, nothing cached): 503, so that a CI job retries instead of failing as if
    /// its token were forged. The cause is logged, not shown.
    #[error("temporarily unavailable: {0}")]
    IssuerKeysUnavailable(String),
    /// An external token satisfied no federation trust (RFC 8693 §2.2.2 `invalid_request`,
    /// RFC 7523 §3.1 `invalid_grant`, as `code` says). `Display` and the client see only the
    /// class of check; `mismatch.detail`, the exact condition, is for the audit record.
    #[error("{code}: {mismatch}")]
    Untrusted {
        code: &'static str,
        mismatch: crate::federation::Mismatch,
    },
}

impl TokenError {
    /// The RFC 6749 error code.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::InvalidRequest(_) => "invalid_request",
            TokenError::InvalidClient(_) => "invalid_client",
            TokenError::InvalidTarget(_) => "invalid_target",
            TokenError::InvalidScope(_) => "invalid_scope",
            TokenError::UnknownTenant => "invalid_request",
            TokenError::UnauthorizedClient(_) => "unauthorized_client",
            TokenError::DpopRequired | TokenError::DpopReplayed => "invalid_dpop_proof",
            TokenError::Untrusted { code, .. } => code,
            TokenError::Unavailable(_)
            | TokenError::SigningUnavailable(_)
            | TokenError::IssuerKeysUnavailable(_) => "temporarily_unavailable",
        }
    }
}
