//! `…/tenants/{t}/keys`: list, show, rotate, revoke (docs/key-rotation.md).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use warrant_core::Timestamp;
use warrant_core::admin::AdminError;
use warrant_core::model::{KeyState, SigningKeyRecord};
use warrant_proto::admin::{Page, RotateKey, SigningKeyInfo};

use super::extract::{Admin, JsonBody, tenant};
use crate::AppState;
use crate::error::ApiError;

fn info(k: &SigningKeyRecord, state: KeyState) -> SigningKeyInfo {
    SigningKeyInfo {
        kid: k.kid.clone(),
        alg: k.alg.as_str().into(),
        state: state.as_str().into(),
        created_at: k.created_at.to_rfc3339(),
        activates_at: k.activates_at.to_rfc3339(),
        retires_at: k.retires_at.map(Timestamp::to_rfc3339),
        removed_at: k.removed_at.map(Timestamp::to_rfc3339),
    }
}

fn page(keys: &[(SigningKeyRecord, KeyState)]) -> Response {
    Json(Page {
        items: keys.iter().map(|(k, s)| info(k, *s)).collect(),
        next_cursor: None,
    })
    .into_response()
}

pub(crate) async fn list(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path(t): Path<String>,
) -> Result<Response, ApiError> {
    let keys = s.warrant.list_keys(&p, &tenant(&t)?).await?;
    Ok(page(&keys))
}

pub(crate) async fn show(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path((t, kid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let keys = s.warrant.list_keys(&p, &tenant(&t)?).await?;
    let (k, state) = keys
        .iter()
        .find(|(k, _)| k.kid == kid)
        .ok_or_else(|| AdminError::NotFound(format!("tenant {t} has no key {kid}")))?;
    Ok(Json(info(k, *state)).into_response())
}

/// 201 with the new key; 200 with the waiting successor if one exists (normal rotation is
/// idempotent until the successor signs).
pub(crate) async fn rotate(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path(t): Path<String>,
    JsonBody(body): JsonBody<RotateKey>,
) -> Result<Response, ApiError> {
    let name = tenant(&t)?;
    let (k, state, created) = s.warrant.rotate_key(&p, &name, body.now).await?;
    let body = Json(info(&k, state));
    if !created {
        return Ok(body.into_response());
    }
    let location = format!("/admin/v1/tenants/{name}/keys/{}", k.kid);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], body).into_response())
}

/// 200 with the tenant's keys afterwards (the replacement among them, if one was made).
pub(crate) async fn revoke(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path((t, kid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let keys = s.warrant.revoke_key(&p, &tenant(&t)?, &kid).await?;
    Ok(page(&keys))
}
