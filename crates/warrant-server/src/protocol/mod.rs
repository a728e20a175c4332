//! Protocol endpoints, one file each: discovery (OIDC Discovery 1.0, RFC 8414), JWKS (RFC 7517),
//! the token endpoint (RFC 6749), introspection (RFC 7662), revocation (RFC 7009) and the
//! revocation feed for verifiers.

mod client_auth;
pub mod discovery;
pub(crate) mod dpop;
pub(crate) mod form; // pub(crate) for `crate::fuzzing`
pub mod introspect;
pub mod jwks;
pub mod revocations;
pub mod revoke;
pub mod token;

use std::sync::Arc;

use axum::http::StatusCode;
use warrant_core::{TenantKeys, TenantName};

use crate::AppState;
use crate::error::OAuthError;

/// The tenant named in the path, if it exists.
pub(crate) fn tenant_keys(state: &AppState, raw: &str) -> Result<Arc<TenantKeys>, OAuthError> {
    TenantName::parse(raw)
        .ok()
        .and_then(|t| state.warrant.tenant_keys(&t))
        .ok_or_else(|| OAuthError::new(StatusCode::NOT_FOUND, "invalid_request", "no such tenant"))
}
