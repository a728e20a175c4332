use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use warrant_core::Timestamp;
use warrant_proto::admin::{Page, SigningKeyInfo};

use super::extract::{Admin, tenant};
use crate::AppState;
use crate::error::ApiError;

pub(crate) async fn list(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path(t): Path<String>,
) -> Result<Response, ApiError> {
    let keys = s.warrant.list_keys(&p, &tenant(&t)?).await?;
    let items = keys
        .iter()
        .map(|(k, state)| SigningKeyInfo {
            kid: k.kid.clone(),
            alg: k.alg.as_str().into(),
            state: state.as_str().into(),
            created_at: k.created_at.to_rfc3339(),
            activates_at: k.activates_at.to_rfc3339(),
            retires_at: k.retires_at.map(Timestamp::to_rfc3339),
            removed_at: k.removed_at.map(Timestamp::to_rfc3339),
        })
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    })
    .into_response())
}
