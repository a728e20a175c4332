//! `tls.*`: `warrant serve` with a certificate and key (set as `WARRANT_TLS__*` variables)
//! answers over HTTPS on both listeners, with an https `public_url` by default, and gives plain
//! HTTP no answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Child;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::{free_port, json_of, warrant};

/// Kills the server when the test ends, also when it panics.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_over_https_with_tls_configured() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_p = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_p.distinguished_name
        .push(DnType::CommonName, "CLI test CA");
    ca_p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca = ca_p.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_p, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let mut server_p = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    server_p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = server_p.signed_by(&server_key, &issuer).unwrap();
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("server.pem"), server.pem()).unwrap();
    std::fs::write(path("server.key"), server_key.serialize_pem()).unwrap();
    std::fs::write(path("ca.pem"), ca.pem()).unwrap();

    let port = free_port();
    let admin_port = free_port();
    let log = std::fs::File::create(path("server.log")).unwrap();
    let mut child = Killed(
        warrant()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
            .arg("--data-dir")
            .arg(path("data"))
            .env("WARRANT_TLS__CERT", path("server.pem"))
            .env("WARRANT_TLS__KEY", path("server.key"))
            .env("WARRANT_TLS__CLIENT_CA", path("ca.pem"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let server_log = || std::fs::read_to_string(path("server.log")).unwrap_or_default();

    let https = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("warrant serve exited with {status}:\n{}", server_log());
        }
        let ok = https
            .get(format!("{url}/healthz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no HTTPS answer after 30 s:\n{}",
            server_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The default public URL (and so every issuer) is https.
    let discovery: serde_json::Value =
        json_of(https.get(format!("{url}/t/default/.well-known/openid-configuration"))).await;
    assert_eq!(discovery["issuer"], format!("{url}/t/default"));
    // The admin listener serves HTTPS too (an unauthenticated call is refused, over TLS).
    let admin = https
        .get(format!("https://127.0.0.1:{admin_port}/admin/v1/tenants"))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 401);
    // Plain HTTP on the same port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
}
