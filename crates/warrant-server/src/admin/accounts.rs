use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use warrant_core::admin::{AccountSpec, NewAccount};
use warrant_core::{AccountId, AccountName};
use warrant_proto::admin::{CreateServiceAccount, Grant};

use super::extract::{
    Admin, IfMatch, JsonBody, PageQuery, account_ref, created, page, tagged, tenant,
};
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
    let after = q.after(AccountId::parse)?;
    let items = s
        .warrant
        .list_accounts(&p, &t, after.as_ref(), Some(q.limit()))
        .await?;
    let cfg = s.warrant.config();
    Ok(Json(page(
        &items,
        q.limit(),
        |a| a.id.as_str(),
        |a| views::account(a, cfg),
    ))
    .into_response())
}

pub(crate) async fn create(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path(t): Path<String>,
    JsonBody(b): JsonBody<CreateServiceAccount>,
) -> Result<Response, ApiError> {
    let t = tenant(&t)?;
    let name = AccountName::parse(&b.name)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let (auth_methods, credentials) = match serde_json::to_value(&b) {
        Ok(Value::Object(m)) => views::credentials_in(&m)?,
        _ => return Err(ApiError::bad_request("unserialisable account")),
    };
    let spec = AccountSpec {
        auth_methods,
        credentials,
        description: b.description.unwrap_or_default(),
        enabled: b.enabled.unwrap_or(true),
        default_audience: views::audience_in(b.default_audience.as_deref())?,
        grants: views::grants_in(&b.grants)?,
        default_lifetime: b.default_lifetime_seconds,
        max_lifetime: b.max_lifetime_seconds,
        claims: b.claims.unwrap_or_default(),
    };
    let a = s
        .warrant
        .create_account(&p, &t, NewAccount { name, spec })
        .await?;
    let location = format!("/admin/v1/tenants/{t}/service-accounts/{}", a.id);
    Ok(created(
        location,
        a.revision,
        views::account(&a, s.warrant.config()),
    ))
}

pub(crate) async fn show(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path((t, a)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let a = s
        .warrant
        .get_account(&p, &tenant(&t)?, &account_ref(&a)?)
        .await?;
    Ok(tagged(a.revision, views::account(&a, s.warrant.config())))
}

pub(crate) async fn patch(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path((t, a)): Path<(String, String)>,
    if_match: IfMatch,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let (t, r) = (tenant(&t)?, account_ref(&a)?);
    let current = s.warrant.get_account(&p, &t, &r).await?;
    if_match.check(current.revision)?;
    let spec = views::patched_spec(&current, s.warrant.config(), &patch)?;
    let a = s
        .warrant
        .update_account(&p, &t, &r, Some(current.revision), spec)
        .await?;
    Ok(tagged(a.revision, views::account(&a, s.warrant.config())))
}

pub(crate) async fn remove(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path((t, a)): Path<(String, String)>,
    IfMatch(if_match): IfMatch,
) -> Result<Response, ApiError> {
    s.warrant
        .delete_account(&p, &tenant(&t)?, &account_ref(&a)?, if_match)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn grants(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path((t, a)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let a = s
        .warrant
        .get_account(&p, &tenant(&t)?, &account_ref(&a)?)
        .await?;
    let out: Vec<Grant> = a.grants.iter().map(views::grant_out).collect();
    Ok(tagged(a.revision, out))
}

/// `PUT …/grants` replaces the list.
pub(crate) async fn put_grants(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path((t, a)): Path<(String, String)>,
    IfMatch(if_match): IfMatch,
    JsonBody(grants): JsonBody<Vec<Grant>>,
) -> Result<Response, ApiError> {
    let (t, r) = (tenant(&t)?, account_ref(&a)?);
    let current = s.warrant.get_account(&p, &t, &r).await?;
    let mut spec = AccountSpec::of(&current);
    spec.grants = views::grants_in(&grants)?;
    let rev = if_match.unwrap_or(current.revision);
    let a = s
        .warrant
        .update_account(&p, &t, &r, Some(rev), spec)
        .await?;
    let out: Vec<Grant> = a.grants.iter().map(views::grant_out).collect();
    Ok(tagged(a.revision, out))
}
