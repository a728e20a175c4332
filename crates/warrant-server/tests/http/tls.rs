//! HTTPS on our own accept loop, and the client certificate of a request (RFC 8705 transport
//! side, RFC 9440 `Client-Cert` from trusted proxies): a real server on 127.0.0.1:0, reqwest
//! as the client, certificates made by rcgen. A test-only route answers with what
//! `presented_certificate` finds for the request.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde_json::{Value, json};
use warrant_server::tls::{ClientCa, TlsServer};
use warrant_server::{AppState, Limits, TrustedProxies};

use crate::harness::{Env, Options, PUBLIC_URL, basic_header};

pub(crate) const SPIFFE_ID: &str = "spiffe://example.org/ns/prod/sa/api";

/// A certificate and its key, as PEM, and the certificate's DER.
pub(crate) struct Cert {
    pub(crate) pem: String,
    pub(crate) key_pem: String,
    pub(crate) der: Vec<u8>,
}

impl Cert {
    pub(crate) fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.pem, self.key_pem).as_bytes()).unwrap()
    }

    /// `x5t#S256`, computed here independently of the server's code path.
    pub(crate) fn x5t(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(warrant_jose::crypto::sha256(&self.der))
    }

    /// The RFC 9440 `Client-Cert` value.
    pub(crate) fn header(&self) -> String {
        format!(
            ":{}:",
            base64::engine::general_purpose::STANDARD.encode(&self.der)
        )
    }
}

pub(crate) struct Pki {
    pub(crate) ca: Cert,
    pub(crate) server: Cert,
    /// Issued by the CA for client auth, with a DNS and a SPIFFE URI SAN.
    pub(crate) client: Cert,
    /// Issued by an intermediate CA (itself issued by the CA).
    pub(crate) via_intermediate: Cert,
    pub(crate) intermediate: Cert,
    /// Issued by the CA, but for server authentication only.
    pub(crate) server_only: Cert,
    pub(crate) self_signed: Cert,
}

fn cert(params: &CertificateParams, key: &KeyPair, issuer: Option<&Issuer<'_, KeyPair>>) -> Cert {
    let c = match issuer {
        Some(issuer) => params.signed_by(key, issuer).unwrap(),
        None => params.self_signed(key).unwrap(),
    };
    Cert {
        pem: c.pem(),
        key_pem: key.serialize_pem(),
        der: c.der().to_vec(),
    }
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

fn leaf_params(
    names: &[&str],
    dn: &[(DnType, &str)],
    usage: ExtendedKeyUsagePurpose,
) -> CertificateParams {
    let mut p =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    for (t, v) in dn {
        p.distinguished_name.push(t.clone(), *v);
    }
    p.extended_key_usages = vec![usage];
    p
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let ca_p = ca_params("Warrant test CA");
    let ca = cert(&ca_p, &ca_key, None);
    let ca_issuer = Issuer::new(ca_p, ca_key);

    let server = cert(
        &leaf_params(
            &["localhost", "127.0.0.1"],
            &[(DnType::CommonName, "localhost")],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        &KeyPair::generate().unwrap(),
        Some(&ca_issuer),
    );
    let mut client_p = leaf_params(
        &["api.example.org"],
        // DER order C, O, CN: RFC 4514 writes it the other way round.
        &[
            (DnType::CountryName, "US"),
            (DnType::OrganizationName, "Example, Inc."),
            (DnType::CommonName, "api"),
        ],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    client_p
        .subject_alt_names
        .push(SanType::URI(SPIFFE_ID.try_into().unwrap()));
    let client = cert(&client_p, &KeyPair::generate().unwrap(), Some(&ca_issuer));

    let int_key = KeyPair::generate().unwrap();
    let int_p = ca_params("Warrant test intermediate");
    let intermediate = cert(&int_p, &int_key, Some(&ca_issuer));
    let int_issuer = Issuer::new(int_p, int_key);
    let via_intermediate = cert(
        &leaf_params(
            &["worker.example.org"],
            &[(DnType::CommonName, "worker")],
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
        &KeyPair::generate().unwrap(),
        Some(&int_issuer),
    );
    let server_only = cert(
        &leaf_params(
            &["web.example.org"],
            &[(DnType::CommonName, "web")],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        &KeyPair::generate().unwrap(),
        Some(&ca_issuer),
    );
    let self_signed = cert(
        &leaf_params(
            &["self.example.org"],
            &[(DnType::CommonName, "self")],
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
        &KeyPair::generate().unwrap(),
        None,
    );
    Pki {
        ca,
        server,
        client,
        via_intermediate,
        intermediate,
        server_only,
        self_signed,
    }
}

/// Answers with the request's presented certificate, as JSON (`null` for none).
async fn echo(State(state): State<AppState>, parts: http::request::Parts) -> axum::Json<Value> {
    let found = warrant_server::tls::presented_certificate_for_tests(&parts, &state);
    axum::Json(match found {
        None => Value::Null,
        Some(c) => json!({
            "x5t": c.x5t_s256,
            "chain_verified": c.chain_verified,
            "subject_dn": c.subject_dn,
            "dns_sans": c.dns_sans,
            "uri_sans": c.uri_sans,
        }),
    })
}

/// A running HTTPS server; stopped when dropped.
pub(crate) struct Server {
    pub(crate) env: Env,
    pub(crate) base: String,
    pub(crate) pki: Pki,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub(crate) async fn start(trusted_proxies: &[&str], with_client_ca: bool) -> Server {
    start_with(trusted_proxies, with_client_ca, !trusted_proxies.is_empty()).await
}

/// [`start`], saying whether `Client-Cert` from the trusted proxies is believed
/// (`tls.forwarded_client_cert`).
async fn start_with(trusted_proxies: &[&str], with_client_ca: bool, forwarded: bool) -> Server {
    let pki = pki();
    let env = Env::with(Options::default()).await;
    let proxies: Vec<String> = trusted_proxies.iter().map(|p| p.to_string()).collect();
    let mut state = AppState::new(
        env.warrant.clone(),
        Limits::unlimited(),
        TrustedProxies::parse(&proxies).unwrap(),
    );
    let ca = Arc::new(ClientCa::from_pem(pki.ca.pem.as_bytes()).unwrap());
    let client_ca = with_client_ca.then(|| ca.clone());
    if let Some(ca) = &client_ca {
        state = state.with_client_ca(ca.clone());
    }
    state.serves_tls = true;
    state.forwarded_client_certs = forwarded;
    let tls = TlsServer::from_pem(
        pki.server.pem.as_bytes(),
        pki.server.key_pem.as_bytes(),
        client_ca,
        env.clock.clone(),
    )
    .unwrap();
    let router = Router::new()
        .route("/test/certificate", get(echo))
        .with_state(state.clone())
        .merge(warrant_server::app(state.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(warrant_server::serve_with_tls(
        listener,
        router,
        Some(state),
        Some(Arc::new(tls)),
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        env,
        base: format!("https://127.0.0.1:{}", addr.port()),
        pki,
        _stop: stop,
    }
}

impl Server {
    pub(crate) fn client(&self, identity: Option<&Cert>) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.pki.ca.pem.as_bytes()).unwrap();
        let mut b = reqwest::Client::builder().tls_certs_only([ca]);
        if let Some(cert) = identity {
            b = b.identity(cert.identity());
        }
        b.build().unwrap()
    }

    /// What the server finds for a request from `identity` with these extra headers.
    async fn presented(&self, identity: Option<&Cert>, headers: &[(&str, &str)]) -> Value {
        let mut req = self
            .client(identity)
            .get(format!("{}/test/certificate", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }
}

#[tokio::test]
async fn https_serves_every_route_and_no_certificate_means_none() {
    let s = start(&[], true).await;
    assert_eq!(s.presented(None, &[]).await, Value::Null);
    let http = s.client(None);
    let health = http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // The direct token route (not the router) answers over TLS too.
    let resp = http
        .post(format!("{}/t/system/token", s.base))
        .header(
            "authorization",
            basic_header(&s.env.admin_id, &s.env.admin_secret),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&resource={PUBLIC_URL}/admin&scope=admin"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(body["access_token"].is_string(), "{body}");
}

#[tokio::test]
async fn a_failed_handshake_does_not_stop_the_server() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let s = start(&[], true).await;
    let addr = s.base.trim_start_matches("https://");
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // The server answers a plain request with a TLS alert or nothing, and closes.
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        plain.read_to_end(&mut buf),
    )
    .await
    .expect("the connection is closed");
    assert!(!buf.starts_with(b"HTTP/"));
    assert_eq!(s.presented(None, &[]).await, Value::Null);
}

#[tokio::test]
async fn a_ca_issued_client_certificate_is_verified_with_its_names() {
    let s = start(&[], true).await;
    let got = s.presented(Some(&s.pki.client), &[]).await;
    assert_eq!(
        got,
        json!({
            "x5t": s.pki.client.x5t(),
            "chain_verified": true,
            "subject_dn": "CN=api,O=Example\\, Inc.,C=US",
            "dns_sans": ["api.example.org"],
            "uri_sans": [SPIFFE_ID],
        })
    );
    // Issued by the CA but not for client authentication: presented, not verified.
    let got = s.presented(Some(&s.pki.server_only), &[]).await;
    assert_eq!(got["chain_verified"], false);
    assert_eq!(got["x5t"], s.pki.server_only.x5t());
}

#[tokio::test]
async fn a_self_signed_client_certificate_is_presented_unverified() {
    let s = start(&[], true).await;
    let got = s.presented(Some(&s.pki.self_signed), &[]).await;
    assert_eq!(
        got,
        json!({
            "x5t": s.pki.self_signed.x5t(),
            "chain_verified": false,
            "subject_dn": "CN=self",
            "dns_sans": ["self.example.org"],
            "uri_sans": [],
        })
    );
}

#[tokio::test]
async fn without_a_client_ca_no_certificate_is_verified() {
    let s = start(&[], false).await;
    let got = s.presented(Some(&s.pki.client), &[]).await;
    assert_eq!(got["chain_verified"], false);
    assert_eq!(got["x5t"], s.pki.client.x5t());
}

#[tokio::test]
async fn client_cert_header_from_an_untrusted_peer_is_ignored() {
    let s = start(&[], true).await;
    let forged = s.pki.client.header();
    let headers = [("client-cert", forged.as_str())];
    assert_eq!(s.presented(None, &headers).await, Value::Null);
    // The certificate of the handshake stands, not the header's.
    let got = s.presented(Some(&s.pki.self_signed), &headers).await;
    assert_eq!(got["x5t"], s.pki.self_signed.x5t());
    assert_eq!(got["chain_verified"], false);
}

#[tokio::test]
async fn client_cert_header_from_a_trusted_proxy_is_used() {
    let s = start(&["127.0.0.1"], true).await;
    let client = s.pki.client.header();
    let got = s.presented(None, &[("client-cert", client.as_str())]).await;
    assert_eq!(got["x5t"], s.pki.client.x5t());
    assert_eq!(got["chain_verified"], true);
    assert_eq!(got["uri_sans"], json!([SPIFFE_ID]));

    // The proxy's own certificate is not its client's: only the header counts.
    let got = s
        .presented(
            Some(&s.pki.self_signed),
            &[("client-cert", client.as_str())],
        )
        .await;
    assert_eq!(got["x5t"], s.pki.client.x5t());
    assert_eq!(
        s.presented(Some(&s.pki.self_signed), &[]).await,
        Value::Null
    );

    // Intermediates come in Client-Cert-Chain.
    let leaf = s.pki.via_intermediate.header();
    let chain = s.pki.intermediate.header();
    let got = s
        .presented(
            None,
            &[
                ("client-cert", leaf.as_str()),
                ("client-cert-chain", chain.as_str()),
            ],
        )
        .await;
    assert_eq!(got["chain_verified"], true);
    assert_eq!(got["subject_dn"], "CN=worker");
    let got = s.presented(None, &[("client-cert", leaf.as_str())]).await;
    assert_eq!(got["chain_verified"], false);
}

#[tokio::test]
async fn a_malformed_client_cert_header_from_a_trusted_proxy_means_none() {
    let s = start(&["127.0.0.1"], true).await;
    let der = base64::engine::general_purpose::STANDARD.encode(&s.pki.client.der);
    let good = s.pki.client.header();
    let not_a_certificate = format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(b"not a certificate")
    );
    let truncated = format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(&s.pki.client.der[..100])
    );
    for bad in [
        der.clone(),
        format!(":{der}"),
        format!("{der}:"),
        ":!!:".to_owned(),
        "::".to_owned(),
        not_a_certificate,
        truncated,
        format!(":{der}:x"),
    ] {
        let got = s.presented(None, &[("client-cert", bad.as_str())]).await;
        assert_eq!(got, Value::Null, "{bad}");
    }
    // Two Client-Cert fields, or a malformed chain, mean no certificate either.
    let got = s
        .presented(
            None,
            &[
                ("client-cert", good.as_str()),
                ("client-cert", good.as_str()),
            ],
        )
        .await;
    assert_eq!(got, Value::Null);
    let got = s
        .presented(
            None,
            &[
                ("client-cert", good.as_str()),
                ("client-cert-chain", "nope"),
            ],
        )
        .await;
    assert_eq!(got, Value::Null);
}

#[tokio::test]
async fn client_cert_from_a_trusted_proxy_needs_the_opt_in() {
    // A proxy trusted for X-Forwarded-For is not thereby trusted for Client-Cert: without
    // `tls.forwarded_client_cert` the header is ignored and the handshake's certificate stands.
    let s = start_with(&["127.0.0.1"], true, false).await;
    let forged = s.pki.client.header();
    assert_eq!(
        s.presented(None, &[("client-cert", forged.as_str())]).await,
        Value::Null
    );
    let got = s
        .presented(
            Some(&s.pki.self_signed),
            &[("client-cert", forged.as_str())],
        )
        .await;
    assert_eq!(got["x5t"], s.pki.self_signed.x5t());
}
