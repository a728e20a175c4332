//! HTTPS on the gateway, and tokens bound to a client certificate (RFC 8705).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::json;

use crate::support::{Harness, assert_challenge};

struct Cert {
    pem: String,
    key_pem: String,
    der: Vec<u8>,
}

struct Pki {
    ca: Cert,
    server: Cert,
    client: Cert,
}

fn leaf(names: &[&str], usage: ExtendedKeyUsagePurpose, issuer: &Issuer<'_, KeyPair>) -> Cert {
    let mut p =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    p.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let c = p.signed_by(&key, issuer).unwrap();
    Cert {
        pem: c.pem(),
        key_pem: key.serialize_pem(),
        der: c.der().to_vec(),
    }
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_p = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_p.distinguished_name = rcgen::DistinguishedName::new();
    ca_p.distinguished_name
        .push(DnType::CommonName, "gateway test CA");
    ca_p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_p.self_signed(&ca_key).unwrap();
    let ca = Cert {
        pem: ca_cert.pem(),
        key_pem: String::new(),
        der: ca_cert.der().to_vec(),
    };
    let issuer = Issuer::new(ca_p, ca_key);
    Pki {
        server: leaf(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &issuer,
        ),
        client: leaf(
            &["client.example"],
            ExtendedKeyUsagePurpose::ClientAuth,
            &issuer,
        ),
        ca,
    }
}

fn client(pki: &Pki, with_certificate: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(pki.ca.pem.as_bytes()).unwrap();
    let mut b = reqwest::Client::builder().no_proxy().tls_certs_only([ca]);
    if with_certificate {
        let pem = format!("{}{}", pki.client.pem, pki.client.key_pem);
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

async fn tls_harness(pki: &Pki, with_certificate: bool) -> Harness {
    let files = |dir: &std::path::Path| {
        std::fs::write(dir.join("server.pem"), &pki.server.pem).unwrap();
        std::fs::write(dir.join("server-key.pem"), &pki.server.key_pem).unwrap();
        std::fs::write(dir.join("clients-ca.pem"), &pki.ca.pem).unwrap();
        "[tls]\ncert = \"server.pem\"\nkey = \"server-key.pem\"\nclient_ca = \"clients-ca.pem\"\n"
            .to_owned()
    };
    Harness::start_with(files, Some(client(pki, with_certificate))).await
}

#[tokio::test]
async fn certificate_bound_tokens_need_their_certificate() {
    let pki = pki();
    let h = tls_harness(&pki, true).await;
    let x5t = warrant_jose::x5t_s256(&pki.client.der);
    assert_ne!(x5t, warrant_jose::x5t_s256(&pki.ca.der));
    let bound = h.token(json!({"cnf": {"x5t#S256": x5t}}));
    let resp = h.get("/orders", Some(&bound)).await;
    assert_eq!(resp.status(), 200);
    let seen: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(seen["headers"]["x-forwarded-proto"], json!(["https"]));

    // A token bound to another certificate is refused on this connection.
    let other = h.token(json!({"cnf": {"x5t#S256": warrant_jose::x5t_s256(&pki.ca.der)}}));
    assert_eq!(h.get("/orders", Some(&other)).await.status(), 401);

    // Without a client certificate: plain bearer tokens pass, bound ones do not.
    let anonymous = client(&pki, false);
    let plain = h.token(json!({}));
    let resp = h.get_with(&anonymous, "/orders", Some(&plain)).await;
    assert_eq!(resp.status(), 200);
    let resp = h.get_with(&anonymous, "/orders", Some(&bound)).await;
    assert_challenge(&resp, 401, &["error=\"invalid_token\""]);
}
