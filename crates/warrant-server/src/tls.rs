//! HTTPS on Warrant's own listener, and the client certificate of a request (RFC 8705, the
//! transport side; RFC 9440 for certificates forwarded by a proxy). See docs/tls.md.
//!
//! The TLS layer accepts *any* client certificate, and none: `self_signed_tls_client_auth`
//! needs self-signed certificates to get through, and most requests carry a secret instead.
//! What the handshake does check is possession — the client's signature over the handshake with
//! the certificate's key. Whether the certificate chains to `tls.client_ca` is decided after
//! the handshake, once per connection, and recorded in [`PresentedCertificate::chain_verified`];
//! which account (if any) a certificate authenticates is the core's decision.
//!
//! What this module is not: a certificate policy. It never rejects a request because of its
//! certificate; it only reports facts about it.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http::HeaderMap;
use http::request::Parts;
use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, TrustAnchor, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use warrant_core::client_auth::PresentedCertificate;
use warrant_core::{Clock, Timestamp};
use x509_parser::asn1_rs::{Tag, ToDer as _};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

use crate::AppState;

/// How long a client may take to complete the TLS handshake after connecting.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many intermediates are taken from a `Client-Cert-Chain` header.
const MAX_FORWARDED_CHAIN: usize = 8;

/// Why a TLS configuration could not be loaded. Messages never include key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("the certificate chain: {0}")]
    Certificate(String),
    #[error("the private key: {0}")]
    PrivateKey(&'static str),
    #[error("the client CA bundle: {0}")]
    ClientCa(String),
    #[error("the TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Installs aws-lc-rs as the process's rustls crypto provider, once (STACK.md, trap 4). Our own
/// configurations name their provider explicitly; this is for other rustls users in the
/// process (reqwest) that look for a process default.
fn install_crypto_provider() {
    // `Err` means a provider is already installed: by an earlier call, or by someone else.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn signature_algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms
}

/// The CAs trusted to issue client certificates for `tls_client_auth` (`tls.client_ca`).
#[derive(Clone)]
pub struct ClientCa {
    anchors: Vec<TrustAnchor<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for ClientCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCa")
            .field("anchors", &self.anchors.len())
            .finish()
    }
}

impl ClientCa {
    /// A PEM bundle of one or more CA certificates.
    pub fn from_pem(pem: &[u8]) -> Result<Self, TlsError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::ClientCa(pem_error(&e)))?;
        if certs.is_empty() {
            return Err(TlsError::ClientCa("no PEM certificate in it".into()));
        }
        let anchors = certs
            .iter()
            .map(|c| {
                webpki::anchor_from_trusted_cert(c)
                    .map(|a| a.to_owned())
                    .map_err(|e| TlsError::ClientCa(format!("not a usable CA certificate ({e})")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            anchors,
            algorithms: signature_algorithms(),
        })
    }

    /// Whether `leaf` (with the intermediates the client sent) chains to one of these CAs, is
    /// valid at `now` and may be used for client authentication (the client-auth extended key
    /// usage, when the certificate restricts its usages at all).
    pub(crate) fn verifies(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: Timestamp,
    ) -> bool {
        let Ok(end_entity) = webpki::EndEntityCert::try_from(leaf) else {
            return false;
        };
        let time =
            UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now.secs()).unwrap_or(0)));
        end_entity
            .verify_for_usage(
                self.algorithms.all,
                &self.anchors,
                intermediates,
                time,
                webpki::KeyUsage::client_auth(),
                None,
                None,
            )
            .is_ok()
    }
}

/// HTTPS for one listener: the server's certificate and key, optional client certificates, and
/// the client CA that decides [`PresentedCertificate::chain_verified`].
#[derive(Clone)]
pub struct TlsServer {
    acceptor: TlsAcceptor,
    client_ca: Option<Arc<ClientCa>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServer")
            .field("client_ca", &self.client_ca)
            .finish_non_exhaustive()
    }
}

impl TlsServer {
    /// `cert_chain_pem`: the server certificate first, then its intermediates; `key_pem`: its
    /// private key (PKCS#8, PKCS#1 or SEC1). `clock` gives the time at which client
    /// certificate chains are checked.
    pub fn from_pem(
        cert_chain_pem: &[u8],
        key_pem: &[u8],
        client_ca: Option<Arc<ClientCa>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, TlsError> {
        install_crypto_provider();
        let chain = CertificateDer::pem_slice_iter(cert_chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Certificate(pem_error(&e)))?;
        if chain.is_empty() {
            return Err(TlsError::Certificate("no PEM certificate in it".into()));
        }
        // The key's own parse errors are not passed on: they might quote a line of the file.
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|_| TlsError::PrivateKey("no PEM private key could be read from it"))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(AnyClientCertificate {
            algorithms: provider.signature_verification_algorithms,
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        // Only HTTP/1.1 is served.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            client_ca,
            clock,
        })
    }

    /// The TLS handshake on an accepted connection (at most [`HANDSHAKE_TIMEOUT`]), and the
    /// facts about the client's certificate, if it sent one. `None` if the handshake failed
    /// (logged at debug: scanners and mistyped URLs are not worth a warning).
    pub(crate) async fn handshake(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<(TlsStream<TcpStream>, ConnectionCertificate)> {
        let stream =
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return None;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return None;
                }
            };
        let certificate = match stream.get_ref().1.peer_certificates() {
            Some([leaf, intermediates @ ..]) => inspect(
                leaf,
                intermediates,
                self.client_ca.as_deref(),
                self.clock.now(),
            )
            .map(Arc::new),
            _ => None,
        };
        Some((stream, ConnectionCertificate(certificate)))
    }
}

/// The request extension set on every request of a TLS connection: the certificate the client
/// presented in the handshake (`None`: it presented none, or none we could read). Read it
/// through [`presented_certificate`], which also applies the trusted-proxy rule.
#[derive(Debug, Clone, Default)]
pub struct ConnectionCertificate(pub Option<Arc<PresentedCertificate>>);

/// The client certificate that stands for this request (RFC 8705 client authentication):
///
/// - with `tls.forwarded_client_cert` on, from a peer in `trusted_proxies`: the RFC 9440
///   `Client-Cert` header (with
///   `Client-Cert-Chain` for intermediates), and nothing else — no header or a malformed one
///   means no certificate; the proxy's own TLS certificate identifies the proxy, not its client;
/// - from any other peer: the certificate of the TLS handshake; `Client-Cert` is ignored.
pub(crate) fn presented_certificate(
    parts: &Parts,
    state: &AppState,
) -> Option<Arc<PresentedCertificate>> {
    let peer = crate::client_addr::peer_ip(parts);
    if state.forwarded_client_certs && state.trusted_proxies.contains(peer) {
        return forwarded_certificate(
            &parts.headers,
            state.client_ca.as_deref(),
            state.warrant.now(),
        )
        .map(Arc::new);
    }
    parts
        .extensions
        .get::<ConnectionCertificate>()
        .and_then(|c| c.0.clone())
}

/// [`presented_certificate`], for tests outside this crate (not an API).
#[doc(hidden)]
pub fn presented_certificate_for_tests(
    parts: &Parts,
    state: &AppState,
) -> Option<Arc<PresentedCertificate>> {
    presented_certificate(parts, state)
}

/// RFC 9440 §2: `Client-Cert: :<base64 DER>:` (an RFC 8941 byte sequence), and
/// `Client-Cert-Chain`, a list of them. Anything malformed means no certificate.
fn forwarded_certificate(
    headers: &HeaderMap,
    client_ca: Option<&ClientCa>,
    now: Timestamp,
) -> Option<PresentedCertificate> {
    let mut fields = headers.get_all("client-cert").iter();
    let field = fields.next()?;
    if fields.next().is_some() {
        tracing::debug!("more than one Client-Cert field from a trusted proxy: ignored");
        return None;
    }
    let Some(leaf) = field.to_str().ok().and_then(byte_sequence) else {
        tracing::debug!("malformed Client-Cert field from a trusted proxy: ignored");
        return None;
    };
    let mut chain = Vec::new();
    for field in headers.get_all("client-cert-chain") {
        let members = field.to_str().ok().map(|v| v.split(','));
        let Some(members) = members else {
            tracing::debug!("malformed Client-Cert-Chain field from a trusted proxy");
            return None;
        };
        for member in members {
            match byte_sequence(member) {
                Some(der) if chain.len() < MAX_FORWARDED_CHAIN => {
                    chain.push(CertificateDer::from(der));
                }
                Some(_) => {
                    tracing::debug!("Client-Cert-Chain from a trusted proxy is too long");
                    return None;
                }
                None => {
                    tracing::debug!("malformed Client-Cert-Chain field from a trusted proxy");
                    return None;
                }
            }
        }
    }
    inspect(&CertificateDer::from(leaf), &chain, client_ca, now)
}

/// An RFC 8941 §3.3.5 byte sequence, `:base64:`, with any parameters after it ignored.
fn byte_sequence(item: &str) -> Option<Vec<u8>> {
    let (encoded, after) = item.trim().strip_prefix(':')?.split_once(':')?;
    if !(after.is_empty() || after.starts_with(';')) {
        return None;
    }
    // RFC 8941 §4.2.7: parsers should not fail when the "=" padding is missing.
    const ENGINE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    ENGINE.decode(encoded).ok().filter(|der| !der.is_empty())
}

/// The facts about a client certificate, or `None` if it cannot be read (then the request is
/// treated as having no certificate).
fn inspect(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    client_ca: Option<&ClientCa>,
    now: Timestamp,
) -> Option<PresentedCertificate> {
    let cert = match X509Certificate::from_der(leaf) {
        Ok(([], cert)) => cert,
        Ok(_) => {
            tracing::debug!("client certificate has trailing data: treated as none");
            return None;
        }
        Err(e) => {
            tracing::debug!(error = %e, "client certificate cannot be parsed: treated as none");
            return None;
        }
    };
    let Some(subject_dn) = rfc4514(cert.subject()) else {
        tracing::debug!(
            "client certificate subject cannot be written as RFC 4514: treated as none"
        );
        return None;
    };
    let mut dns_sans = Vec::new();
    let mut uri_sans = Vec::new();
    match cert.subject_alternative_name() {
        Ok(Some(san)) => {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => dns_sans.push((*d).to_owned()),
                    GeneralName::URI(u) => uri_sans.push((*u).to_owned()),
                    _ => {}
                }
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::debug!(error = %e, "client certificate SAN extension is invalid: treated as none");
            return None;
        }
    }
    let chain_verified = client_ca.is_some_and(|ca| ca.verifies(leaf, intermediates, now));
    Some(PresentedCertificate {
        x5t_s256: warrant_jose::x5t_s256(leaf),
        chain_verified,
        subject_dn,
        dns_sans,
        uri_sans,
    })
}

/// A distinguished name as an RFC 4514 string: RDNs last-to-first separated by `,`, the
/// attributes of a multi-valued RDN joined by `+`, the short names of RFC 4514 §3 (`CN`, `L`,
/// `ST`, `O`, `OU`, `C`, `STREET`, `DC`, `UID`) with their string values escaped as §2.4 says,
/// and any other attribute as its dotted OID with `#` and the hex of its DER value (§2.4).
/// `None` only if a value cannot be re-encoded.
pub(crate) fn rfc4514(name: &X509Name<'_>) -> Option<String> {
    let mut rdns = Vec::new();
    for rdn in name.iter_rdn() {
        let attributes = rdn.iter().map(attribute).collect::<Option<Vec<_>>>()?;
        rdns.push(attributes.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

fn attribute(atv: &AttributeTypeAndValue<'_>) -> Option<String> {
    let oid = atv.attr_type().to_id_string();
    let short = match oid.as_str() {
        "2.5.4.3" => Some("CN"),
        "2.5.4.7" => Some("L"),
        "2.5.4.8" => Some("ST"),
        "2.5.4.10" => Some("O"),
        "2.5.4.11" => Some("OU"),
        "2.5.4.6" => Some("C"),
        "2.5.4.9" => Some("STREET"),
        "0.9.2342.19200300.100.1.25" => Some("DC"),
        "0.9.2342.19200300.100.1.1" => Some("UID"),
        _ => None,
    };
    if let Some(short) = short
        && let Some(value) = string_value(atv)
    {
        return Some(format!("{short}={}", escape(&value)));
    }
    let der = atv.attr_value().to_der_vec().ok()?;
    let hex = warrant_core::audit::chain::hex(&der);
    Some(format!("{}=#{hex}", short.unwrap_or(&oid)))
}

/// The value of a directory string, if it is one we can decode.
fn string_value(atv: &AttributeTypeAndValue<'_>) -> Option<String> {
    let value = atv.attr_value();
    let data = value.data;
    match value.header.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::NumericString => {
            std::str::from_utf8(data).ok().map(str::to_owned)
        }
        Tag::BmpString => {
            if data.len() % 2 != 0 {
                return None;
            }
            let units = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        Tag::UniversalString => {
            if data.len() % 4 != 0 {
                return None;
            }
            data.chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        _ => None,
    }
}

/// RFC 4514 §2.4 escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(e) => format!("cannot read it ({e})"),
        Error::Base64Decode(_) => "invalid base64 in a PEM section".into(),
        Error::SectionTooLarge => "a PEM section is too large".into(),
        _ => "not a valid PEM file".into(),
    }
}

/// Accepts any client certificate (or none) but checks the client's handshake signature with
/// the certificate's key: possession is proven here, trust is decided per request.
#[derive(Debug)]
struct AnyClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// No CA names are sent: clients that pick a certificate by the server's hints (Java, some
    /// browsers) would otherwise withhold a self-signed one.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sequences() {
        assert_eq!(byte_sequence(":AQID:"), Some(vec![1, 2, 3]));
        assert_eq!(byte_sequence(" :AQI=: "), Some(vec![1, 2]));
        assert_eq!(byte_sequence(":AQI:"), Some(vec![1, 2]));
        assert_eq!(byte_sequence(":AQID:;x=1"), Some(vec![1, 2, 3]));
        for bad in ["AQID", ":AQID", ":AQID:x", "::", ":A-_:", ":!!:"] {
            assert_eq!(byte_sequence(bad), None, "{bad}");
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape(" #x "), "\\ #x\\ ");
        assert_eq!(escape("#x"), "\\#x");
        assert_eq!(escape("a#b"), "a#b");
        assert_eq!(escape("é\\"), "é\\\\");
    }
}
