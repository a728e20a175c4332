//! `GET /admin/v1/openapi.json`: the admin API's OpenAPI 3.1 document, written by hand
//! (`openapi.json` beside this file) and checked against the routes by a test.

use axum::http::header;
use axum::response::IntoResponse;

pub(crate) const DOCUMENT: &str = include_str!("openapi.json");

pub(crate) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
