//! Warrant's HTTP adapter (axum): one file per endpoint, thin handlers (extract, call the core
//! once, map the result), and one place that maps errors to responses ([`error`]).
//!
//! The app is a function — [`app`] — so most HTTP tests run without a socket (tower `oneshot`);
//! end-to-end tests start the real binary. What it is not: the place for policy. Every decision
//! (who may have which token) is made in warrant-core.

pub mod admin;
mod client_addr;
pub mod error;
pub mod metrics;
mod ops;
pub mod protocol;
mod state;

use axum::Router;
use axum::routing::{get, post};

pub use client_addr::TrustedProxies;
pub use state::{AppState, Limits};

/// Every route on one listener: protocol, admin and operations.
pub fn app(state: AppState) -> Router {
    protocol_app(state.clone()).merge(admin_app(state))
}

/// Protocol endpoints per tenant and the operations endpoints, without the admin API (for
/// deployments that put the admin API on `--admin-listen`).
pub fn protocol_app(state: AppState) -> Router {
    use protocol::{discovery, jwks, token};
    Router::new()
        .route(
            "/t/{tenant}/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server/t/{tenant}",
            get(discovery::oauth_metadata),
        )
        .route("/t/{tenant}/jwks", get(jwks::jwks))
        .route(
            "/t/{tenant}/token",
            post(token::token).fallback(token::method_not_allowed),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(ops::not_found)
        .with_state(state)
}

/// The admin API under `/admin/v1`.
pub fn admin_app(state: AppState) -> Router {
    admin::routes().with_state(state)
}

/// Serves `router` on `listener` (with each connection's peer address available to handlers)
/// until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    // Responses are written whole; Nagle's algorithm would only delay them.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
