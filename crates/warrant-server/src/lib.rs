//! Warrant's HTTP adapter (axum): one file per endpoint, thin handlers (extract, call the core
//! once, map the result), and one place that maps errors to responses ([`error`]).
//!
//! The app is a function — [`app`] — so most HTTP tests run without a socket (tower `oneshot`);
//! end-to-end tests start the real binary. What it is not: the place for policy. Every decision
//! (who may have which token) is made in warrant-core.

pub mod admin;
mod client_addr;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod metrics;
mod ops;
pub mod outbound;
pub mod protocol;
mod state;
pub mod tls;

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
    use protocol::{discovery, introspect, jwks, revocations, revoke, token};
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
        .route(
            "/t/{tenant}/introspect",
            post(introspect::introspect).fallback(introspect::method_not_allowed),
        )
        .route(
            "/t/{tenant}/revoke",
            post(revoke::revoke).fallback(revoke::method_not_allowed),
        )
        .route("/t/{tenant}/revocations", get(revocations::feed))
        .route("/t/{tenant}/revocations/stream", get(revocations::stream))
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

/// Serves `router` on `listener` over plain HTTP until `shutdown` completes, then lets the
/// requests in flight finish (at most [`DRAIN_TIMEOUT`]). [`serve_with_tls`] without TLS.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    token_route: Option<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_tls(listener, router, token_route, None, shutdown).await
}

/// Serves `router` on `listener` — over HTTPS with `tls` — until `shutdown` completes, then
/// lets the requests in flight finish (at most [`DRAIN_TIMEOUT`]).
///
/// Our own accept loop rather than `axum::serve`: each connection's peer address goes into the
/// request extensions (as `ConnectInfo`), Nagle's algorithm is off (responses are written
/// whole), slow clients get [`HEADER_READ_TIMEOUT`] to send their headers, and the HTTP/1
/// connection is served directly (no protocol sniffing). With `tls`, the handshake runs in the
/// connection's own task (at most [`tls::HANDSHAKE_TIMEOUT`]), and every request of the
/// connection carries a [`tls::ConnectionCertificate`] extension: the client certificate, read
/// once per connection (STACK.md, trap 5).
///
/// With `token_route`, `POST /t/{tenant}/token` goes straight to the token endpoint's code
/// without the router's matching and extractors (it is most of the traffic); everything else,
/// and anything that does not look exactly like that path, goes through `router`.
pub async fn serve_with_tls(
    listener: tokio::net::TcpListener,
    router: Router,
    token_route: Option<AppState>,
    tls: Option<std::sync::Arc<tls::TlsServer>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::TokioTimer;

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .writev(false);
    let http = std::sync::Arc::new(http);
    let site = std::sync::Arc::new((router, token_route));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            site: site.clone(),
            http: http.clone(),
            peer,
            watcher: graceful.watcher(),
        };
        match &tls {
            None => {
                tokio::spawn(conn.serve(stream, None));
            }
            Some(tls) => {
                let tls = tls.clone();
                tokio::spawn(async move {
                    if let Some((stream, certificate)) = tls.handshake(stream, peer).await {
                        conn.serve(stream, Some(certificate)).await;
                    }
                });
            }
        }
    }
    drop(listener);
    // Revocation feed streams never finish by themselves: end them, or the drain would wait
    // for them until its timeout.
    if let Some(state) = &site.1 {
        state.close_streams();
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still busy after the drain timeout");
    }
    Ok(())
}

/// One accepted connection, before its (optional) TLS handshake.
struct Connection {
    /// The router and the direct token route; one reference-counted handle per request, not
    /// one per field of the state.
    site: std::sync::Arc<(Router, Option<AppState>)>,
    http: std::sync::Arc<hyper::server::conn::http1::Builder>,
    peer: std::net::SocketAddr,
    watcher: hyper_util::server::graceful::Watcher,
}

impl Connection {
    async fn serve<I>(self, io: I, certificate: Option<tls::ConnectionCertificate>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        use axum::extract::ConnectInfo;
        use tower::ServiceExt as _;

        let Connection {
            site,
            http,
            peer,
            watcher,
        } = self;
        let service =
            hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                if let Some(certificate) = &certificate {
                    req.extensions_mut().insert(certificate.clone());
                }
                let site = site.clone();
                async move {
                    let (router, token_route) = &*site;
                    let direct = token_route
                        .as_ref()
                        .filter(|_| req.method() == http::Method::POST)
                        .zip(protocol::token::token_path_tenant(req.uri().path()))
                        .map(|(state, tenant)| (state, tenant.to_owned()));
                    match direct {
                        Some((state, tenant)) => {
                            let req = req.map(axum::body::Body::new);
                            Ok(protocol::token::respond(state, &tenant, req).await)
                        }
                        None => router.clone().oneshot(req).await,
                    }
                }
            });
        let conn = http.serve_connection(hyper_util::rt::TokioIo::new(io), service);
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}

/// How long a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long shutdown waits for requests in flight.
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
