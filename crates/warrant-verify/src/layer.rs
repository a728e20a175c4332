//! A tower layer: verifies each request's token against a [`Requirement`] and puts the
//! [`Verified`] token in the request's extensions, or answers with the challenge itself.
//!
//! ```ignore
//! let app = Router::new()
//!     .route("/orders", get(list_orders))
//!     .layer(VerifyLayer::new(verifier, requirement).public_url("https://orders.example.com"));
//!
//! async fn list_orders(Extension(token): Extension<Verified>) -> String {
//!     format!("hello {}", token.sub)
//! }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use crate::verifier::{ClientCertificate, Presented, Requirement, Verifier};

/// Builds [`VerifyService`]s.
#[derive(Clone, Debug)]
pub struct VerifyLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    verifier: Verifier,
    requirement: Requirement,
    /// `scheme://host[:port]` the clients address (for DPoP `htu`); by default the request's
    /// `Host` over `http`.
    public_url: Option<String>,
    /// RFC 9728 metadata URL named in challenges.
    resource_metadata: Option<String>,
}

impl VerifyLayer {
    pub fn new(verifier: Verifier, requirement: Requirement) -> Self {
        Self {
            shared: Arc::new(Shared {
                verifier,
                requirement,
                public_url: None,
                resource_metadata: None,
            }),
        }
    }

    /// The origin clients address this service at (`https://orders.example.com`), for DPoP.
    pub fn public_url(self, url: impl Into<String>) -> Self {
        self.with(|s| s.public_url = Some(url.into().trim_end_matches('/').to_owned()))
    }

    /// The RFC 9728 metadata URL to name in challenges.
    pub fn resource_metadata(self, url: impl Into<String>) -> Self {
        self.with(|s| s.resource_metadata = Some(url.into()))
    }

    fn with(self, f: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Arc::try_unwrap(self.shared).unwrap_or_else(|a| Shared {
            verifier: a.verifier.clone(),
            requirement: a.requirement.clone(),
            public_url: a.public_url.clone(),
            resource_metadata: a.resource_metadata.clone(),
        });
        f(&mut shared);
        Self {
            shared: Arc::new(shared),
        }
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`VerifyLayer`] wraps around an inner one.
#[derive(Clone, Debug)]
pub struct VerifyService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, B, RB> Service<Request<B>> for VerifyService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    RB: From<String>,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The inner service that was polled ready handles this request; a fresh clone waits.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            let url = request_url(&req, shared.public_url.as_deref());
            let cert = req.extensions().get::<ClientCertificate>().cloned();
            let presented = Presented {
                method: req.method().as_str(),
                url: &url,
                headers: req.headers(),
                client_certificate: cert.as_ref().map(|c| c.0.as_slice()),
            };
            match shared.verifier.check(&presented, &shared.requirement).await {
                Ok(token) => {
                    req.extensions_mut().insert(token);
                    inner.call(req).await
                }
                Err(denial) => Ok(denial.to_response(shared.resource_metadata.as_deref())),
            }
        })
    }
}

/// The URL the client addressed, without the query: the configured origin (or `http://` and
/// the `Host` header) and the request's path.
pub fn request_url<B>(req: &Request<B>, public_url: Option<&str>) -> String {
    let path = req.uri().path();
    match public_url {
        Some(origin) => format!("{origin}{path}"),
        None => {
            let host = req
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri().authority().map(|a| a.as_str()))
                .unwrap_or("localhost");
            format!("http://{host}{path}")
        }
    }
}
