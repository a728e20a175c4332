//! `POST {issuer}/introspect` (RFC 7662): any authenticated client of the tenant may ask
//! whether a token is active.
//!
//! The client authenticates as at the token endpoint (`client_secret_basic` or
//! `client_secret_post`); nothing is answered without authentication (§2.1). An active token
//! gets its claims and `token_type` (§2.2); every inactive one — forged, expired, revoked,
//! another tenant's, an unknown account's — gets exactly `{"active":false}`, so the caller
//! learns nothing about why (§2.2, §4). The decision is warrant-core's
//! (`Warrant::introspect`); introspection reads no store and writes no audit record.

use axum::extract::{Path, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::client_auth::{post_only, token_request};
use crate::AppState;
use crate::error::{OAuthError, no_store};

/// The axum handler.
pub async fn introspect(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
    req: Request,
) -> Response {
    match respond(&s, &tenant, req).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::info!(tenant = %tenant, error = e.code, "introspection request refused");
            e.into_response()
        }
    }
}

async fn respond(s: &AppState, tenant: &str, req: Request) -> Result<Response, OAuthError> {
    let r = token_request(s, tenant, req, "introspection endpoint").await?;
    let body = match s.warrant.introspect(&r.keys, &r.token) {
        Ok(members) => members,
        Err(why) => {
            tracing::debug!(tenant = %r.keys.tenant, client_id = %r.client.account.id, why = ?why, "introspected an inactive token");
            let mut m = Map::new();
            m.insert("active".into(), Value::Bool(false));
            m
        }
    };
    let active = body.get("active") == Some(&Value::Bool(true));
    s.metrics.introspected(r.keys.tenant.as_str(), active);
    let bytes = serde_json::to_vec(&body).map_err(|_| {
        OAuthError::from_token_error(
            &warrant_core::grants::TokenError::Unavailable(
                "introspection response serialisation".into(),
            ),
            false,
        )
    })?;
    let mut resp = ([(header::CONTENT_TYPE, "application/json")], bytes).into_response();
    no_store(&mut resp);
    Ok(resp)
}

/// Any method but POST: 405 with `Allow: POST`.
pub async fn method_not_allowed() -> Response {
    post_only("introspection endpoint")
}
