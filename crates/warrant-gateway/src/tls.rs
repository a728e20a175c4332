//! HTTPS on the gateway's listener (`[tls]`): rustls with the aws-lc-rs provider named
//! explicitly, HTTP/1.1 only.
//!
//! With `client_ca`, the handshake asks for a client certificate but does not require one:
//! most clients send bearer or DPoP tokens. A certificate that is sent must chain to
//! `client_ca` (webpki checks it, and the client's possession of its key); its end-entity DER
//! is what a certificate-bound token's `cnf.x5t#S256` is compared with (RFC 8705 §3).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::GatewayError;
use crate::config::TlsFiles;

/// How long a client may take to finish the handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The acceptor for `files`. Errors name the file, never its contents.
pub(crate) fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, GatewayError> {
    let err = |what: &str, path: &Path, why: &str| {
        GatewayError::Tls(format!("tls.{what} ({}): {why}", path.display()))
    };
    let read = |what: &str, path: &Path| {
        std::fs::read(path).map_err(|e| err(what, path, &format!("cannot read it ({})", e.kind())))
    };
    let certs = |what: &str, path: &Path| -> Result<Vec<CertificateDer<'static>>, GatewayError> {
        let pem = read(what, path)?;
        let list = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| err(what, path, "not a valid PEM certificate file"))?;
        if list.is_empty() {
            return Err(err(what, path, "no PEM certificate in it"));
        }
        Ok(list)
    };
    let chain = certs("cert", &files.cert)?;
    let key_pem = read("key", &files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        err(
            "key",
            &files.key,
            "no PEM private key could be read from it",
        )
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Tls(format!("the TLS configuration: {e}")))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for c in certs("client_ca", path)? {
                roots.add(c).map_err(|e| {
                    err(
                        "client_ca",
                        path,
                        &format!("not a usable CA certificate ({e})"),
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| err("client_ca", path, &e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        err(
            "cert",
            &files.cert,
            &format!("does not go with tls.key ({e})"),
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
