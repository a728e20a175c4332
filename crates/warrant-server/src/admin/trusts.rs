//! `/admin/v1/tenants/{t}/trusts[/{id|name}]`: federation trusts (docs/federation.md), and
//! `…/trusts/test`, which shows which trusts an external token satisfies and why the others
//! refuse it.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use warrant_core::admin::NewTrust;
use warrant_core::{TrustId, TrustName};
use warrant_proto::admin::{
    CreateTrust, TrustFailure, TrustTestRequest, TrustTestResponse, TrustVerdict,
};

use super::extract::{
    Admin, IfMatch, JsonBody, PageQuery, created, page, tagged, tenant, trust_ref,
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
    let after = q.after(TrustId::parse)?;
    let items = s
        .warrant
        .list_trusts(&p, &t, after.as_ref(), Some(q.limit()))
        .await?;
    Ok(Json(page(&items, q.limit(), |tr| tr.id.as_str(), views::trust)).into_response())
}

pub(crate) async fn create(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path(t): Path<String>,
    JsonBody(b): JsonBody<CreateTrust>,
) -> Result<Response, ApiError> {
    let t = tenant(&t)?;
    let name = TrustName::parse(&b.name).map_err(|e| views::invalid(e.to_string()))?;
    let policy = views::trust_policy_in(b.policy)?;
    let tr = s
        .warrant
        .create_trust(&p, &t, NewTrust { name, policy })
        .await?;
    let location = format!("/admin/v1/tenants/{t}/trusts/{}", tr.id);
    Ok(created(location, tr.revision, views::trust(&tr)))
}

pub(crate) async fn show(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path((t, r)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let tr = s
        .warrant
        .get_trust(&p, &tenant(&t)?, &trust_ref(&r)?)
        .await?;
    Ok(tagged(tr.revision, views::trust(&tr)))
}

pub(crate) async fn patch(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path((t, r)): Path<(String, String)>,
    if_match: IfMatch,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let (t, r) = (tenant(&t)?, trust_ref(&r)?);
    let current = s.warrant.get_trust(&p, &t, &r).await?;
    if_match.check(current.revision)?;
    let policy = views::patched_trust(&current, &patch)?;
    let tr = s
        .warrant
        .update_trust(&p, &t, &r, Some(current.revision), policy)
        .await?;
    Ok(tagged(tr.revision, views::trust(&tr)))
}

pub(crate) async fn remove(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path((t, r)): Path<(String, String)>,
    IfMatch(if_match): IfMatch,
) -> Result<Response, ApiError> {
    s.warrant
        .delete_trust(&p, &tenant(&t)?, &trust_ref(&r)?, if_match)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Admin only: the details name what each trust expects. The token is never logged.
pub(crate) async fn test(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path(t): Path<String>,
    JsonBody(b): JsonBody<TrustTestRequest>,
) -> Result<Response, ApiError> {
    let report = s.warrant.test_trusts(&p, &tenant(&t)?, &b.token).await?;
    let verdicts = report
        .verdicts
        .into_iter()
        .map(|v| TrustVerdict {
            trust: v.id.to_string(),
            name: v.name.to_string(),
            matched: v.verdict.matched(),
            failures: v
                .verdict
                .failures
                .into_iter()
                .map(|f| TrustFailure {
                    class: f.class.code().to_owned(),
                    detail: f.detail,
                })
                .collect(),
            federated: v
                .verdict
                .federated
                .and_then(|f| serde_json::to_value(f).ok()),
        })
        .collect();
    Ok(Json(TrustTestResponse {
        verdicts,
        signature: report.signature,
    })
    .into_response())
}
