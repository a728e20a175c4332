//! Operations endpoints: liveness, readiness, metrics, and the JSON 404.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the store answers and every tenant has a signing key.
pub(crate) async fn readyz(State(s): State<AppState>) -> Response {
    let store_ok = s
        .warrant
        .store()
        .get_tenant(&warrant_core::TenantName::system())
        .await
        .is_ok();
    let keys_ok = s
        .warrant
        .tenant_keys(&warrant_core::TenantName::system())
        .is_some_and(|k| k.signer.is_some());
    if store_ok && keys_ok {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

pub(crate) async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

pub(crate) async fn not_found() -> Response {
    let body = warrant_proto::oauth::ErrorResponse {
        error: "not_found".into(),
        error_description: Some("no such endpoint".into()),
    };
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}
