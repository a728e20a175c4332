//! `POST /admin/v1/tenants/{tenant}/revocations` — revoke one token by `jti`, or every token of a
//! subject issued up to a `not_before` watermark; the body is shaped like a feed entry, its
//! time optional — and `GET` of the same path, the tenant's feed as an admin list.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use warrant_core::revocation::{FeedError, RevocationEntry, RevocationRequest};
use warrant_proto::admin::{CreateRevocation, Page, Revocation};

use super::extract::{Admin, JsonBody, PageQuery, decode_cursor, encode_cursor, tenant};
use crate::AppState;
use crate::error::ApiError;
use crate::protocol::revocations::{parse_cursor, wire_entry};

fn view(e: &RevocationEntry) -> Revocation {
    Revocation {
        entry: wire_entry(&e.kind),
        cursor: e.cursor.to_string(),
        created_at: e.created_at.to_rfc3339(),
    }
}

pub(crate) async fn create(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path(t): Path<String>,
    JsonBody(b): JsonBody<CreateRevocation>,
) -> Result<Response, ApiError> {
    let t = tenant(&t)?;
    let request = match b {
        CreateRevocation::Jti { jti, exp } => RevocationRequest::Jti { jti, exp },
        CreateRevocation::Subject { sub, not_before } => {
            RevocationRequest::Subject { sub, not_before }
        }
    };
    let entry = s.warrant.admin_revoke(&p, &t, request).await?;
    s.metrics.revoked(t.as_str(), "admin");
    Ok((StatusCode::CREATED, Json(view(&entry))).into_response())
}

pub(crate) async fn list(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path(t): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let t = tenant(&t)?;
    if !p.may_manage(&t) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("this token's scope does not cover tenant {t} (needs admin or admin:{t})"),
        ));
    }
    if s.warrant.tenant_keys(&t).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("tenant {t} does not exist"),
        ));
    }
    let after = decode_cursor(&q.cursor)?
        .map(|c| match parse_cursor(&c) {
            Ok(Some(n)) => Ok(n),
            _ => Err(ApiError::bad_request("invalid cursor")),
        })
        .transpose()?;
    let limit = q.limit();
    let page = s
        .warrant
        .revocation_feed(&t, after, limit)
        .await
        .map_err(|e| match e {
            FeedError::Gone => ApiError::new(
                StatusCode::GONE,
                "the cursor is older than the oldest revocation kept; list again from the start",
            ),
            other => {
                tracing::error!(tenant = %t, error = %other, "the revocation feed could not be read");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the revocations cannot be read right now; retry",
                )
            }
        })?;
    let next_cursor =
        (page.entries.len() as u32 >= limit).then(|| encode_cursor(&page.next_cursor.to_string()));
    Ok(Json(Page {
        items: page.entries.iter().map(view).collect(),
        next_cursor,
    })
    .into_response())
}
