//! Extractors shared by the admin handlers: the admin principal, JSON bodies that fail as
//! problems (not plain text), `If-Match`, and cursor pagination.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use warrant_core::admin::{AdminError, AdminPrincipal};
use warrant_core::{AccountRef, ApiRef, TenantName, TrustRef};

use crate::AppState;
use crate::error::ApiError;

/// The authorised caller.
pub(crate) struct Admin(pub AdminPrincipal);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        let Some(token) = token else {
            let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "a bearer token is required");
            e.challenge = Some(r#"Bearer realm="warrant-admin""#);
            return Err(e);
        };
        let mut principal = s.warrant.authorize_admin(token)?;
        // Where the change came from, for its audit record.
        principal.client_addr =
            Some(crate::client_addr::client_ip(parts, &s.trusted_proxies).to_string());
        Ok(Admin(principal))
    }
}

/// A JSON body; errors become 400/415 problems that say what was wrong.
pub(crate) struct JsonBody<T>(pub T);

/// Admin bodies are small.
const MAX_ADMIN_BODY: usize = 256 * 1024;

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        match ct.as_deref() {
            Some("application/json" | "application/merge-patch+json") => {}
            _ => {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "the content type must be application/json (or application/merge-patch+json for PATCH)",
                ));
            }
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_ADMIN_BODY)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the request body is too large",
                )
            })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// `If-Match: "N"` as a revision; `*` or absent means no precondition.
pub(crate) struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let v = v
            .to_str()
            .map_err(|_| ApiError::bad_request("malformed If-Match"))?
            .trim();
        if v == "*" {
            return Ok(IfMatch(None));
        }
        // A weak or unknown tag can never match a strong revision tag: that is a failed
        // precondition, not a malformed request.
        let rev = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .and_then(|x| x.parse::<i64>().ok())
            .unwrap_or(-1);
        Ok(IfMatch(Some(rev)))
    }
}

impl IfMatch {
    /// `412` when `If-Match` names a revision other than `current`'s.
    pub(crate) fn check(&self, current: i64) -> Result<(), ApiError> {
        if self.0.is_some_and(|rev| rev != current) {
            return Err(AdminError::PreconditionFailed.into());
        }
        Ok(())
    }
}

pub(crate) fn etag(revision: i64) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{revision}\""))
}

/// `200`: a resource's view with its revision as the ETag.
pub(crate) fn tagged(revision: i64, view: impl Serialize) -> Response {
    ([etag(revision)], Json(view)).into_response()
}

/// `201`: a new resource's view with its `Location` and its revision as the ETag.
pub(crate) fn created(location: String, revision: i64, view: impl Serialize) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, location), etag(revision)],
        Json(view),
    )
        .into_response()
}

/// `?cursor=&limit=`.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

impl PageQuery {
    pub(crate) fn limit(&self) -> u32 {
        self.limit
            .unwrap_or(warrant_core::admin::DEFAULT_PAGE)
            .clamp(1, warrant_core::admin::MAX_PAGE)
    }

    /// The decoded cursor parsed with `parse` (an id's); anything else is a `400`.
    pub(crate) fn after<I, E>(
        &self,
        parse: impl FnOnce(&str) -> Result<I, E>,
    ) -> Result<Option<I>, ApiError> {
        decode_cursor(&self.cursor)?
            .map(|c| parse(&c).map_err(|_| ApiError::bad_request("invalid cursor")))
            .transpose()
    }
}

/// A page of `items` (fetched with `limit`): the cursor is set only when the page is full.
pub(crate) fn page<T, W>(
    items: &[T],
    limit: u32,
    key: impl Fn(&T) -> &str,
    view: impl Fn(&T) -> W,
) -> warrant_proto::admin::Page<W> {
    let next_cursor = if items.len() as u32 >= limit {
        items.last().map(|last| encode_cursor(key(last)))
    } else {
        None
    };
    warrant_proto::admin::Page {
        items: items.iter().map(view).collect(),
        next_cursor,
    }
}

/// Cursors are opaque to clients: base64url of the last key of the previous page.
pub(crate) fn encode_cursor(last: &str) -> String {
    warrant_jose::b64::encode(last.as_bytes())
}

pub(crate) fn decode_cursor(c: &Option<String>) -> Result<Option<String>, ApiError> {
    match c.as_deref() {
        None | Some("") => Ok(None),
        Some(c) => warrant_jose::b64::decode(c)
            .and_then(|b| String::from_utf8(b).ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("invalid cursor")),
    }
}

pub(crate) fn tenant(raw: &str) -> Result<TenantName, ApiError> {
    TenantName::parse(raw).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no tenant {}", raw.chars().take(63).collect::<String>()),
        )
    })
}

pub(crate) fn account_ref(raw: &str) -> Result<AccountRef, ApiError> {
    AccountRef::parse(raw).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "no such account"))
}

pub(crate) fn api_ref(raw: &str) -> Result<ApiRef, ApiError> {
    ApiRef::parse(raw).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "no such API"))
}

pub(crate) fn trust_ref(raw: &str) -> Result<TrustRef, ApiError> {
    TrustRef::parse(raw).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "no such trust"))
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such admin resource")
}
