use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use warrant_core::admin::SecretView;
use warrant_core::{SecretName, Timestamp};
use warrant_proto::admin::{CreateSecret, CreatedSecret, Page, SecretInfo};

use super::extract::{Admin, JsonBody, account_ref, tenant};
use crate::AppState;
use crate::error::ApiError;

fn info(v: &SecretView) -> SecretInfo {
    SecretInfo {
        name: v.name.to_string(),
        created_at: v.created_at.to_rfc3339(),
        expires_at: v.expires_at.map(Timestamp::to_rfc3339),
        last_used_at: v.last_used_at.map(Timestamp::to_rfc3339),
    }
}

fn unprocessable(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, msg)
}

pub(crate) async fn list(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path((t, a)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let items = s
        .warrant
        .list_secrets(&p, &tenant(&t)?, &account_ref(&a)?)
        .await?;
    Ok(Json(Page {
        items: items.iter().map(info).collect(),
        next_cursor: None,
    })
    .into_response())
}

pub(crate) async fn create(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path((t, a)): Path<(String, String)>,
    JsonBody(b): JsonBody<CreateSecret>,
) -> Result<Response, ApiError> {
    let (t, r) = (tenant(&t)?, account_ref(&a)?);
    let name = SecretName::parse(&b.name).map_err(|e| unprocessable(e.to_string()))?;
    let expires_at = match (b.expires_at.as_deref(), b.expires_in_seconds) {
        (Some(_), Some(_)) => {
            return Err(unprocessable(
                "give expires_at or expires_in_seconds, not both",
            ));
        }
        (Some(at), None) => Some(
            Timestamp::parse_rfc3339(at)
                .ok_or_else(|| unprocessable("expires_at must be an RFC 3339 time"))?,
        ),
        (None, Some(secs)) => Some(s.warrant.now().plus_secs(
            i64::try_from(secs).map_err(|_| unprocessable("expires_in_seconds is too large"))?,
        )),
        (None, None) => None,
    };
    let (view, secret) = s.warrant.add_secret(&p, &t, &r, name, expires_at).await?;
    let location = format!(
        "/admin/v1/tenants/{t}/service-accounts/{a}/secrets/{}",
        view.name
    );
    let body = CreatedSecret {
        name: view.name.to_string(),
        value: secret.expose().to_owned(),
        created_at: view.created_at.to_rfc3339(),
        expires_at: view.expires_at.map(Timestamp::to_rfc3339),
    };
    let mut resp = (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response();
    crate::error::no_store(&mut resp);
    Ok(resp)
}

pub(crate) async fn revoke(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path((t, a, n)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let name = SecretName::parse(&n)
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "no such secret"))?;
    s.warrant
        .revoke_secret(&p, &tenant(&t)?, &account_ref(&a)?, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
