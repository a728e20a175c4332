//! The admin API, `/admin/v1/…`: JSON, RFC 9457 problems, cursor lists, ETag/If-Match, JSON
//! Merge Patch. Authentication is a `system`-tenant token (see warrant-core `authorize_admin`).

mod accounts;
mod apis;
pub mod audit;
mod extract;
mod keys;
mod openapi;
mod revocations;
mod secrets;
mod tenants;
mod trusts;
mod views;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::AppState;

pub fn routes() -> Router<AppState> {
    let sa = "/admin/v1/tenants/{tenant}/service-accounts";
    let apis = "/admin/v1/tenants/{tenant}/apis";
    let trusts = "/admin/v1/tenants/{tenant}/trusts";
    Router::new()
        .route("/admin/v1/openapi.json", get(openapi::document))
        .route(
            "/admin/v1/tenants",
            get(tenants::list).post(tenants::create),
        )
        .route(
            "/admin/v1/tenants/{tenant}",
            get(tenants::show)
                .patch(tenants::patch)
                .delete(tenants::remove),
        )
        .route("/admin/v1/tenants/{tenant}/keys", get(keys::list))
        .route("/admin/v1/tenants/{tenant}/keys/rotate", post(keys::rotate))
        .route("/admin/v1/tenants/{tenant}/keys/{kid}", get(keys::show))
        .route(
            "/admin/v1/tenants/{tenant}/keys/{kid}/revoke",
            post(keys::revoke),
        )
        .route("/admin/v1/tenants/{tenant}/audit", get(audit::query))
        .route(
            "/admin/v1/tenants/{tenant}/audit/verify",
            get(audit::verify),
        )
        .route(
            "/admin/v1/tenants/{tenant}/audit/export",
            get(audit::export),
        )
        .route(
            "/admin/v1/tenants/{tenant}/revocations",
            get(revocations::list).post(revocations::create),
        )
        .route(sa, get(accounts::list).post(accounts::create))
        .route(
            &format!("{sa}/{{account}}"),
            get(accounts::show)
                .patch(accounts::patch)
                .delete(accounts::remove),
        )
        .route(
            &format!("{sa}/{{account}}/grants"),
            get(accounts::grants).put(accounts::put_grants),
        )
        .route(
            &format!("{sa}/{{account}}/secrets"),
            get(secrets::list).post(secrets::create),
        )
        .route(
            &format!("{sa}/{{account}}/secrets/{{name}}"),
            delete(secrets::revoke),
        )
        .route(apis, get(apis::list).post(apis::create))
        .route(
            &format!("{apis}/{{api}}"),
            get(apis::show).patch(apis::patch).delete(apis::remove),
        )
        .route(trusts, get(trusts::list).post(trusts::create))
        .route(&format!("{trusts}/test"), post(trusts::test))
        .route(
            &format!("{trusts}/{{trust}}"),
            get(trusts::show)
                .patch(trusts::patch)
                .delete(trusts::remove),
        )
        .route("/admin/v1/{*rest}", axum::routing::any(extract::not_found))
}
