//! `GET {issuer}/jwks`: the tenant's published public keys (next, active, retired), served from
//! a pre-serialised document with `Cache-Control: max-age` = `jwks_max_age`.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::tenant_keys;
use crate::AppState;
use crate::error::OAuthError;

pub async fn jwks(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Response, OAuthError> {
    let keys = tenant_keys(&s, &tenant)?;
    let max_age = s.warrant.config().jwks_max_age;
    let cache = HeaderValue::from_str(&format!("public, max-age={max_age}"))
        .unwrap_or(HeaderValue::from_static("public, max-age=300"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jwk-set+json"),
            ),
            (header::CACHE_CONTROL, cache),
        ],
        keys.jwks_json.to_string(),
    )
        .into_response())
}
