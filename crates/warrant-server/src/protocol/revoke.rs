//! `POST {issuer}/revoke` (RFC 7009): a client revokes one of its own access tokens.
//!
//! Authentication as at the token endpoint. The answer is 200 with an empty body whether the
//! token was revoked now, was already revoked, or is unknown, malformed, expired or another
//! tenant's (§2.2: the client learns nothing about tokens that are not its own); another
//! client's valid token of this tenant is refused with 400 `unauthorized_client` (§2.1) and
//! stays valid. 503 when the revocation could not be stored: the client may retry (§2.2.1).
//! The revocation is stored, audited, applied here and announced to other replicas and to
//! verifiers (the feed) before the 200.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use warrant_core::audit::Origin;
use warrant_core::revocation::RevokeOutcome;

use super::client_auth::{post_only, token_request};
use crate::AppState;
use crate::error::{OAuthError, no_store};

/// The axum handler.
pub async fn revoke(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
    req: Request,
) -> Response {
    match respond(&s, &tenant, req).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::info!(tenant = %tenant, error = e.code, "revocation request refused");
            e.into_response()
        }
    }
}

async fn respond(s: &AppState, tenant: &str, req: Request) -> Result<Response, OAuthError> {
    let r = token_request(s, tenant, req, "revocation endpoint").await?;
    let origin = Origin::client(
        r.client.account.id.as_str(),
        Some(r.ip.to_string()),
        Some(r.method.as_str()),
    );
    match s
        .warrant
        .revoke_token(&r.keys, &r.client, &r.token, &origin)
        .await
    {
        Ok(RevokeOutcome::Revoked(entry)) => {
            s.metrics.revoked(r.keys.tenant.as_str(), "client");
            tracing::info!(tenant = %r.keys.tenant, client_id = %r.client.account.id, cursor = entry.cursor, "token revoked by its client");
        }
        Ok(RevokeOutcome::Unchanged) => {}
        Err(e) => return Err(OAuthError::from_token_error(&e, false)),
    }
    let mut resp = StatusCode::OK.into_response();
    no_store(&mut resp);
    Ok(resp)
}

/// Any method but POST: 405 with `Allow: POST`.
pub async fn method_not_allowed() -> Response {
    post_only("revocation endpoint")
}
