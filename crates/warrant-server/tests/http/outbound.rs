//! The outbound policy (DESIGN.md, "Outbound requests") against a real HTTPS server on
//! 127.0.0.1:0 whose certificate (for `127.0.0.1` and `localhost`) a test CA signed: what is
//! fetched, and everything that is refused. The server speaks HTTP/1.1 by hand so that each
//! route can misbehave exactly (no length, a stalled body).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warrant_core::Timestamp;
use warrant_core::client_auth::jwks_cache::{JwksCache, JwksFetcher};
use warrant_jose::{Algorithm, JwkSet, SigningKey};
use warrant_server::outbound::{HttpJwksFetcher, MAX_BODY, OutboundPolicy};

struct Pki {
    ca_pem: String,
    cert: rustls_pki_types::CertificateDer<'static>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
}

fn ca(cn: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let pem = p.self_signed(&key).unwrap().pem();
    (p, key, pem)
}

/// A CA and a server certificate it signed for `127.0.0.1` and `localhost`.
fn pki() -> Pki {
    let (ca_params, ca_key, ca_pem) = ca("Outbound test CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem,
        cert: cert.der().clone(),
        key: rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    }
}

/// Starts the server; returns its address.
async fn serve(pki: &Pki, jwks: Vec<u8>) -> SocketAddr {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![pki.cert.clone()], pki.key.clone_key())
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let jwks = Arc::new(jwks);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let jwks = jwks.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = answer(tls, addr, &jwks).await;
                }
            });
        }
    });
    addr
}

/// Reads one request head and answers according to its path.
async fn answer(
    mut io: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    addr: SocketAddr,
    jwks: &[u8],
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = io.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    let ok = |len: usize| {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\
             connection: close\r\n\r\n"
        )
    };
    match path.as_str() {
        "/jwks" => {
            io.write_all(ok(jwks.len()).as_bytes()).await?;
            io.write_all(jwks).await?;
        }
        "/.well-known/openid-configuration" => {
            let doc = format!(r#"{{"issuer":"https://{addr}","jwks_uri":"https://{addr}/jwks"}}"#);
            io.write_all(ok(doc.len()).as_bytes()).await?;
            io.write_all(doc.as_bytes()).await?;
        }
        // A discovery document of the issuer `https://{addr}/other` that names another issuer.
        "/other/.well-known/openid-configuration" => {
            let doc = format!(r#"{{"issuer":"https://{addr}","jwks_uri":"https://{addr}/jwks"}}"#);
            io.write_all(ok(doc.len()).as_bytes()).await?;
            io.write_all(doc.as_bytes()).await?;
        }
        "/redirect" => {
            let r = format!(
                "HTTP/1.1 302 Found\r\nlocation: https://{addr}/jwks\r\ncontent-length: 0\r\n\
                 connection: close\r\n\r\n"
            );
            io.write_all(r.as_bytes()).await?;
        }
        "/big" => {
            let body = vec![b' '; MAX_BODY + 1];
            io.write_all(ok(body.len()).as_bytes()).await?;
            io.write_all(&body).await?;
        }
        "/big-chunked" => {
            io.write_all(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            )
            .await?;
            let chunk = vec![b' '; 8192];
            for _ in 0..(MAX_BODY / chunk.len() + 1) {
                io.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                io.write_all(&chunk).await?;
                io.write_all(b"\r\n").await?;
            }
            io.write_all(b"0\r\n\r\n").await?;
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            io.write_all(ok(jwks.len()).as_bytes()).await?;
            io.write_all(jwks).await?;
        }
        "/stalled-body" => {
            io.write_all(ok(jwks.len()).as_bytes()).await?;
            io.write_all(&jwks[..10]).await?;
            io.flush().await?;
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        _ => {
            io.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await?;
        }
    }
    io.flush().await?;
    io.shutdown().await
}

/// A policy that trusts `ca_pem` and allows `127.0.0.0/8`, with a short timeout.
fn policy(ca_pem: &str) -> OutboundPolicy {
    OutboundPolicy {
        allow_networks: vec!["127.0.0.0/8".parse().unwrap()],
        ca_pem: Some(ca_pem.as_bytes().to_vec()),
        timeout: Duration::from_millis(700),
    }
}

struct Setup {
    addr: SocketAddr,
    key: SigningKey,
    fetcher: HttpJwksFetcher,
    pki: Pki,
}

async fn setup() -> Setup {
    let pki = pki();
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwks = serde_json::to_vec(&JwkSet {
        keys: vec![key.public_jwk().clone()],
    })
    .unwrap();
    let addr = serve(&pki, jwks).await;
    let fetcher = HttpJwksFetcher::new(policy(&pki.ca_pem)).unwrap();
    Setup {
        addr,
        key,
        fetcher,
        pki,
    }
}

#[tokio::test]
async fn fetches_a_jwks_from_an_allowed_https_server() {
    let s = setup().await;
    let port = s.addr.port();
    // a literal address, then a name resolved by our resolver
    for uri in [
        format!("https://127.0.0.1:{port}/jwks"),
        format!("https://localhost:{port}/jwks"),
    ] {
        let body = s.fetcher.get(&uri).await.unwrap();
        let set: JwkSet = serde_json::from_slice(&body).unwrap();
        assert_eq!(set.keys[0].kid.as_deref(), Some(s.key.kid()));
    }
    // through the core's cache, as the token endpoint will use it
    let cache = JwksCache::new(Arc::new(s.fetcher.clone()), 300, 30);
    let keys = cache
        .keys(
            &format!("https://127.0.0.1:{port}/jwks"),
            Some(s.key.kid()),
            Timestamp::from_secs(1_800_000_000),
        )
        .await
        .unwrap();
    assert_eq!(keys[0].kid(), Some(s.key.kid()));
}

#[tokio::test]
async fn plain_http_and_credentials_in_the_url_are_refused() {
    let s = setup().await;
    let port = s.addr.port();
    for uri in [
        format!("http://127.0.0.1:{port}/jwks"),
        format!("https://user:pw@127.0.0.1:{port}/jwks"),
        "file:///etc/passwd".to_string(),
        "not a url".to_string(),
    ] {
        let e = s.fetcher.fetch(&uri).await.unwrap_err();
        assert!(!e.0.is_empty(), "{uri}");
    }
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let s = setup().await;
    let port = s.addr.port();
    let strict = HttpJwksFetcher::new(OutboundPolicy {
        allow_networks: Vec::new(),
        ..policy(&s.pki.ca_pem)
    })
    .unwrap();
    for uri in [
        format!("https://127.0.0.1:{port}/jwks"),
        format!("https://localhost:{port}/jwks"),
        format!("https://[::ffff:127.0.0.1]:{port}/jwks"),
        format!("https://[::1]:{port}/jwks"),
        format!("https://0x7f.1:{port}/jwks"),
        format!("https://169.254.169.254:{port}/latest/meta-data"),
    ] {
        let e = strict.get(&uri).await.unwrap_err();
        assert!(e.0.contains("not allowed"), "{uri}: {e}");
    }
    // the allow list admits 127.0.0.0/8 only
    let e = s
        .fetcher
        .get(&format!("https://10.0.0.1:{port}/jwks"))
        .await
        .unwrap_err();
    assert!(e.0.contains("not allowed"), "{e}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let s = setup().await;
    let e = s
        .fetcher
        .get(&format!("https://127.0.0.1:{}/redirect", s.addr.port()))
        .await
        .unwrap_err();
    assert!(e.0.contains("302"), "{e}");
    let e = s
        .fetcher
        .get(&format!("https://127.0.0.1:{}/missing", s.addr.port()))
        .await
        .unwrap_err();
    assert!(e.0.contains("404"), "{e}");
}

#[tokio::test]
async fn bodies_over_64_kib_are_refused() {
    let s = setup().await;
    for path in ["/big", "/big-chunked"] {
        let e = s
            .fetcher
            .get(&format!("https://127.0.0.1:{}{path}", s.addr.port()))
            .await
            .unwrap_err();
        assert!(e.0.contains("larger than 65536"), "{path}: {e}");
    }
}

#[tokio::test]
async fn slow_servers_time_out() {
    let s = setup().await;
    for path in ["/slow", "/stalled-body"] {
        let started = std::time::Instant::now();
        let e = s
            .fetcher
            .get(&format!("https://127.0.0.1:{}{path}", s.addr.port()))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(4), "{path}");
        assert!(
            e.0.contains("timed out") || e.0.contains("timeout"),
            "{path}: {e}"
        );
    }
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_refused() {
    let s = setup().await;
    let (_, _, other_ca) = ca("Another CA");
    let wrong = HttpJwksFetcher::new(policy(&other_ca)).unwrap();
    let e = wrong
        .get(&format!("https://127.0.0.1:{}/jwks", s.addr.port()))
        .await
        .unwrap_err();
    assert!(e.0.to_lowercase().contains("certificate"), "{e}");
    // and a ca_file that holds no certificate is refused when the fetcher is built
    assert!(HttpJwksFetcher::new(policy("not a pem")).is_err());
}

/// `private_key_jwt` with keys registered by `jwks_uri`, at the token endpoint: fetched under
/// the outbound policy; a `jwks_uri` on a private address (here loopback) is never fetched
/// unless the server allows that network, and the client is then refused.
#[tokio::test]
async fn jwks_uri_keys_authenticate_only_under_the_outbound_policy() {
    use crate::harness::{Env, PUBLIC_URL, T0, form_encode};
    use serde_json::json;

    let s = setup().await;
    let uri = format!("https://127.0.0.1:{}/jwks", s.addr.port());
    let assertion = |id: &str, jti: &str| {
        let header = json!({"alg": "ES256", "kid": s.key.kid()});
        let claims = json!({"iss": id, "sub": id, "aud": format!("{PUBLIC_URL}/t/default"),
                            "jti": jti, "iat": T0, "exp": T0 + 60});
        let mut out = warrant_jose::b64::encode(header.to_string());
        out.push('.');
        out.push_str(&warrant_jose::b64::encode(claims.to_string()));
        let sig = s.key.sign(out.as_bytes()).unwrap();
        out.push('.');
        out.push_str(&warrant_jose::b64::encode(sig));
        format!(
            "grant_type=client_credentials&client_assertion_type={}&client_assertion={}",
            form_encode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            form_encode(&out)
        )
    };
    let account = json!({"name": "svc", "default_audience": "https://api.example",
                         "grants": [{"audience": "https://api.example", "scopes": ["read"]}],
                         "jwks_uri": uri});
    let create = async |env: &Env| {
        let created = env.create_account_json("default", account.clone()).await;
        created["id"].as_str().unwrap().to_owned()
    };

    // Allowed: 127.0.0.0/8 is in the allow list.
    let allowed = Env::new().await;
    allowed
        .warrant
        .fetch_client_keys_with(Arc::new(s.fetcher.clone()), 300, 30);
    let id = create(&allowed).await;
    let r = allowed
        .token_request("default", None, &assertion(&id, "u1"))
        .await;
    allowed
        .verify("default", &r.access_token(), "https://api.example")
        .await;

    // The default policy: loopback is private, so nothing is fetched and the client is refused.
    let strict = Env::new().await;
    let default_policy = OutboundPolicy {
        allow_networks: Vec::new(),
        ..policy(&s.pki.ca_pem)
    };
    strict.warrant.fetch_client_keys_with(
        Arc::new(HttpJwksFetcher::new(default_policy).unwrap()),
        300,
        30,
    );
    let id = create(&strict).await;
    strict
        .token_request("default", None, &assertion(&id, "u2"))
        .await
        .assert_oauth_error(401, "invalid_client");
    // A server that fetches nothing refuses such clients too.
    let none = Env::new().await;
    let id = create(&none).await;
    none.token_request("default", None, &assertion(&id, "u3"))
        .await
        .assert_oauth_error(401, "invalid_client");
}

/// `trusts/test` fetches a `jwks_uri` trust's keys, and a discovery trust's document then its
/// keys, under the outbound policy; a discovery document naming another issuer is refused.
#[tokio::test]
async fn trust_test_fetches_jwks_uri_and_discovery_keys() {
    use crate::harness::Env;
    use crate::trusts::{github_claims, github_trust, sign, verdict};
    use http::{Method, StatusCode};
    use serde_json::json;
    let s = setup().await;
    let env = Env::new().await;
    env.warrant
        .fetch_client_keys_with(Arc::new(s.fetcher.clone()), 300, 30);
    env.create_account_json("default", json!({"name": "deployer"}))
        .await;
    let issuer = format!("https://{}", s.addr);
    let trusts = "/admin/v1/tenants/default/trusts";
    for (name, jwks) in [
        ("by-uri", json!({"jwks_uri": format!("{issuer}/jwks")})),
        ("by-discovery", json!("discovery")),
    ] {
        let mut body = github_trust(name, jwks);
        body["issuer"] = json!(issuer);
        env.admin(Method::POST, trusts, Some(body))
            .await
            .assert_status(StatusCode::CREATED);
    }
    let token = sign(&s.key, &github_claims(&issuer, "acme/api"));
    let r = env
        .admin(
            Method::POST,
            &format!("{trusts}/test"),
            Some(json!({"token": token})),
        )
        .await;
    r.assert_status(StatusCode::OK);
    let report = r.json();
    for name in ["by-uri", "by-discovery"] {
        assert_eq!(verdict(&report, name)["matched"], true, "{name}: {report}");
    }
    let (other, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let forged = sign(&other, &github_claims(&issuer, "acme/api"));
    let report = env
        .admin(
            Method::POST,
            &format!("{trusts}/test"),
            Some(json!({"token": forged})),
        )
        .await
        .json();
    for name in ["by-uri", "by-discovery"] {
        assert_eq!(verdict(&report, name)["failures"][0]["class"], "signature");
    }

    // The token-exchange grant reads the same keys (discovery cached) and issues.
    env.create_account_json(
        "default",
        json!({"name": "runner", "default_audience": "https://deploy.internal",
               "grants": [{"audience": "https://deploy.internal", "scopes": ["deploy"]}]}),
    )
    .await;
    for name in ["by-uri", "by-discovery"] {
        env.admin(
            Method::PATCH,
            &format!("{trusts}/{name}"),
            Some(json!({"account": "runner"})),
        )
        .await
        .assert_status(StatusCode::OK);
    }
    let form = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={token}\
         &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt"
    );
    for _ in 0..2 {
        env.token_request("default", None, &form)
            .await
            .assert_status(StatusCode::OK);
    }
    let forged_form = form.replace(&token, &forged);
    env.token_request("default", None, &forged_form)
        .await
        .assert_oauth_error(400, "invalid_request");

    // Discovery whose document names another issuer (OpenID Connect Discovery §4.3): refused.
    let other = format!("{issuer}/other");
    let mut body = github_trust("misnamed", json!("discovery"));
    body["issuer"] = json!(other);
    env.admin(Method::POST, trusts, Some(body))
        .await
        .assert_status(StatusCode::CREATED);
    let token = sign(&s.key, &github_claims(&other, "acme/api"));
    let report = env
        .admin(
            Method::POST,
            &format!("{trusts}/test"),
            Some(json!({"token": token})),
        )
        .await
        .json();
    let failure = &verdict(&report, "misnamed")["failures"][0];
    assert_eq!(failure["class"], "signature", "{report}");
    assert!(
        failure["detail"]
            .as_str()
            .unwrap()
            .contains("its issuer is not"),
        "{report}"
    );
    // The grant: no keys could be had for that issuer → 503, not a forgery.
    let form = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={token}\
         &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt"
    );
    env.token_request("default", None, &form)
        .await
        .assert_oauth_error(503, "temporarily_unavailable");
}
