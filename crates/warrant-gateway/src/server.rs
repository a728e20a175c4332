//! The accept loops: TCP (and TLS) connections served by hyper's HTTP/1.1 with keep-alive,
//! watched for graceful shutdown. The gateway listener and the metrics listener share it.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::proxy::{self, Body, ConnInfo};
use crate::runtime::Shared;
use crate::tls::HANDSHAKE_TIMEOUT;

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connections get to finish their requests at shutdown.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Answers requests on one listener.
pub(crate) trait Handler: Send + Sync + 'static {
    fn call(
        &self,
        conn: &ConnInfo,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<Body>> + Send;
}

/// The proxy.
pub(crate) struct Gateway(pub(crate) Arc<Shared>);

impl Handler for Gateway {
    fn call(
        &self,
        conn: &ConnInfo,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<Body>> + Send {
        proxy::handle(&self.0, conn, req)
    }
}

/// `/metrics`, `/healthz` and `/readyz`.
pub(crate) struct Operations(pub(crate) Arc<Shared>);

impl Handler for Operations {
    fn call(
        &self,
        _conn: &ConnInfo,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<Body>> + Send {
        let (status, content_type, body) = match req.uri().path() {
            "/metrics" => {
                let rt = self.0.runtime();
                (
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    self.0.metrics.render(rt.verifier.as_ref()),
                )
            }
            "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
            "/readyz" if self.0.runtime().is_ready() => {
                (StatusCode::OK, "text/plain", "ready\n".to_owned())
            }
            "/readyz" => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "not ready: waiting for issuer keys or a revocation snapshot\n".to_owned(),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found\n".to_owned(),
            ),
        };
        let mut resp = Response::new(Either::Right(Full::new(Bytes::from(body))));
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        std::future::ready(resp)
    }
}

/// Accepts connections until `stop` changes (or its sender is dropped), then lets open
/// connections finish their requests for at most [`SHUTDOWN_GRACE`].
pub(crate) async fn serve<H: Handler>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: Arc<H>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: back off a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let watcher = graceful.watcher();
        let handler = handler.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let Some(acceptor) = tls else {
                let conn = ConnInfo {
                    remote,
                    https: false,
                    client_certificate: None,
                };
                return connection(TokioIo::new(stream), conn, handler, watcher).await;
            };
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%remote, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%remote, "TLS handshake timed out");
                        return;
                    }
                };
            let client_certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| leaf.as_ref().to_vec());
            let conn = ConnInfo {
                remote,
                https: true,
                client_certificate,
            };
            connection(TokioIo::new(stream), conn, handler, watcher).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period: closing them");
    }
}

async fn connection<I, H>(io: TokioIo<I>, conn: ConnInfo, handler: Arc<H>, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    let conn = Arc::new(conn);
    let service = service_fn(move |req| {
        let handler = handler.clone();
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(handler.call(&conn, req).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    if let Err(e) = watcher.watch(builder.serve_connection(io, service)).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
