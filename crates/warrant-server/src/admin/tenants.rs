use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use warrant_proto::admin::CreateTenant;

use super::extract::{
    Admin, IfMatch, JsonBody, PageQuery, created, decode_cursor, page, tagged, tenant,
};
use super::views;
use crate::AppState;
use crate::error::ApiError;

pub(crate) async fn list(
    State(s): State<AppState>,
    Admin(p): Admin,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let after = decode_cursor(&q.cursor)?.map(|c| tenant(&c)).transpose()?;
    let items = s
        .warrant
        .list_tenants(&p, after.as_ref(), Some(q.limit()))
        .await?;
    let cfg = s.warrant.config();
    Ok(Json(page(
        &items,
        q.limit(),
        |t| t.name.as_str(),
        |t| views::tenant(t, cfg),
    ))
    .into_response())
}

pub(crate) async fn create(
    State(s): State<AppState>,
    Admin(p): Admin,
    JsonBody(body): JsonBody<CreateTenant>,
) -> Result<Response, ApiError> {
    let name = warrant_core::TenantName::parse(&body.name)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let alg = body
        .signing_alg
        .as_deref()
        .map(|a| views::signing_alg_in(Some(a)))
        .transpose()?;
    let t = s.warrant.create_tenant(&p, name, alg).await?;
    let location = format!("/admin/v1/tenants/{}", t.name);
    Ok(created(
        location,
        t.revision,
        views::tenant(&t, s.warrant.config()),
    ))
}

pub(crate) async fn show(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path(t): Path<String>,
) -> Result<Response, ApiError> {
    let t = s.warrant.get_tenant(&p, &tenant(&t)?).await?;
    Ok(tagged(t.revision, views::tenant(&t, s.warrant.config())))
}

/// JSON Merge Patch of a tenant: `signing_alg`, `key_rotation_period_seconds` and `key_source`
/// (`"software"` or `{"hsm":{"module":"<configured module>"}}`) are editable.
/// The algorithm applies to the keys the tenant gets from now on; existing keys keep theirs.
pub(crate) async fn patch(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path(t): Path<String>,
    if_match: IfMatch,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let name = tenant(&t)?;
    let current = s.warrant.get_tenant(&p, &name).await?;
    if_match.check(current.revision)?;
    let settings = views::patched_tenant(&current, s.warrant.config(), &patch)?;
    let t = s
        .warrant
        .update_tenant(&p, &name, Some(current.revision), settings)
        .await?;
    Ok(tagged(t.revision, views::tenant(&t, s.warrant.config())))
}

pub(crate) async fn remove(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path(t): Path<String>,
) -> Result<Response, ApiError> {
    s.warrant.delete_tenant(&p, &tenant(&t)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
