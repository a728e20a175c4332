//! `/admin/v1/tenants/{t}/apis[/{id|name}]`: registered APIs (docs/apis.md).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use warrant_core::admin::{ApiSpec, NewApi};
use warrant_core::{ApiId, ApiName, Audience};
use warrant_proto::admin::CreateApi;

use super::extract::{Admin, IfMatch, JsonBody, PageQuery, api_ref, created, page, tagged, tenant};
use super::views;
use crate::AppState;
use crate::error::ApiError;

pub(crate) async fn list(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path(t): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let t = tenant(&t)?;
    let after = q.after(ApiId::parse)?;
    let items = s
        .warrant
        .list_apis(&p, &t, after.as_ref(), Some(q.limit()))
        .await?;
    Ok(Json(page(&items, q.limit(), |a| a.id.as_str(), views::api)).into_response())
}

pub(crate) async fn create(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path(t): Path<String>,
    JsonBody(b): JsonBody<CreateApi>,
) -> Result<Response, ApiError> {
    let t = tenant(&t)?;
    let name = ApiName::parse(&b.name).map_err(|e| views::invalid(e.to_string()))?;
    let audience = Audience::parse(&b.audience).ok_or_else(|| {
        views::invalid(format!(
            "audience {:?} is not an absolute URI without a fragment",
            b.audience
        ))
    })?;
    let spec = ApiSpec {
        scopes: views::scopes_in(&b.scopes)?,
        owner: views::owner_in(&b.owner)?,
        description: b.description,
    };
    let a = s
        .warrant
        .create_api(
            &p,
            &t,
            NewApi {
                name,
                audience,
                spec,
            },
        )
        .await?;
    let location = format!("/admin/v1/tenants/{t}/apis/{}", a.id);
    Ok(created(location, a.revision, views::api(&a)))
}

pub(crate) async fn show(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path((t, a)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let a = s.warrant.get_api(&p, &tenant(&t)?, &api_ref(&a)?).await?;
    Ok(tagged(a.revision, views::api(&a)))
}

pub(crate) async fn patch(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path((t, a)): Path<(String, String)>,
    if_match: IfMatch,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let (t, r) = (tenant(&t)?, api_ref(&a)?);
    let current = s.warrant.get_api(&p, &t, &r).await?;
    if_match.check(current.revision)?;
    let spec = views::patched_api(&current, &patch)?;
    let a = s
        .warrant
        .update_api(&p, &t, &r, Some(current.revision), spec)
        .await?;
    Ok(tagged(a.revision, views::api(&a)))
}

pub(crate) async fn remove(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path((t, a)): Path<(String, String)>,
    IfMatch(if_match): IfMatch,
) -> Result<Response, ApiError> {
    s.warrant
        .delete_api(&p, &tenant(&t)?, &api_ref(&a)?, if_match)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
