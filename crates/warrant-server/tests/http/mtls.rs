//! RFC 8705 client authentication at the token endpoint, over real TLS on 127.0.0.1:0:
//! `tls_client_auth` by SPIFFE URI SAN, DNS SAN and subject DN; `self_signed_tls_client_auth`;
//! certificate-bound tokens (`cnf.x5t#S256`); and the attacks: another account's certificate, a
//! self-signed look-alike, no certificate, a spoofed `Client-Cert` header, a secret account
//! trying a certificate.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::Resp;
use crate::tls::{Cert, SPIFFE_ID, Server, start};

const AUD: &str = "https://orders.internal";

/// Creates an account in `default` with these credential fields; returns its id.
async fn account(s: &Server, name: &str, credentials: Value) -> String {
    let mut body = json!({
        "name": name, "default_audience": AUD,
        "grants": [{"audience": AUD, "scopes": ["read"]}],
    });
    for (k, v) in credentials.as_object().unwrap() {
        body[k] = v.clone();
    }
    let created = s.env.create_account_json("default", body).await;
    created["id"].as_str().unwrap().to_owned()
}

/// `POST /t/default/token` over TLS with `identity` as the client certificate.
async fn token(s: &Server, identity: Option<&Cert>, form: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = s
        .client(identity)
        .post(format!("{}/t/default/token", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap().to_vec();
    assert!(
        !status.is_server_error(),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    Resp {
        status,
        headers,
        body,
    }
}

fn cc(id: &str) -> String {
    format!("grant_type=client_credentials&client_id={id}")
}

/// Issues a token with the client certificate and checks that it is bound to it.
async fn bound_token(s: &Server, id: &str, cert: &Cert) -> Value {
    let r = token(s, Some(cert), &cc(id), &[]).await;
    let t = r.access_token();
    assert_eq!(r.json()["token_type"], "Bearer");
    let claims = s.env.verify("default", &t, AUD).await;
    assert_eq!(claims["sub"], id);
    assert_eq!(
        claims["cnf"]["x5t#S256"],
        cert.x5t(),
        "bound to the certificate"
    );
    claims
}

#[tokio::test]
async fn tls_client_auth_by_spiffe_id_dns_name_and_subject_dn() {
    let s = start(&[], true).await;
    let by_uri = account(&s, "by-uri", json!({"tls_client_auth_san_uri": SPIFFE_ID})).await;
    let by_dns = account(
        &s,
        "by-dns",
        json!({"tls_client_auth_san_dns": "API.example.org"}),
    )
    .await;
    let by_dn = account(
        &s,
        "by-dn",
        json!({"tls_client_auth_subject_dn": "CN=api,O=Example\\, Inc.,C=US"}),
    )
    .await;
    for id in [&by_uri, &by_dns, &by_dn] {
        bound_token(&s, id, &s.pki.client).await;
    }
    // Introspection authenticates the same way and shows the binding.
    let t = token(&s, Some(&s.pki.client), &cc(&by_uri), &[])
        .await
        .access_token();
    let r = s
        .client(Some(&s.pki.client))
        .post(format!("{}/t/default/introspect", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("client_id={by_uri}&token={t}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["active"], true);
    assert_eq!(v["cnf"]["x5t#S256"], s.pki.client.x5t());
    // Discovery says so.
    let meta: Value = s
        .client(None)
        .get(format!(
            "{}/t/default/.well-known/openid-configuration",
            s.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["tls_client_certificate_bound_access_tokens"], true);
    let methods = meta["token_endpoint_auth_methods_supported"].to_string();
    assert!(
        methods.contains("tls_client_auth") && methods.contains("private_key_jwt"),
        "{methods}"
    );
}

#[tokio::test]
async fn the_wrong_certificate_is_refused() {
    let s = start(&[], true).await;
    let api = account(&s, "api", json!({"tls_client_auth_san_uri": SPIFFE_ID})).await;
    let other = account(
        &s,
        "other",
        json!({"tls_client_auth_san_uri": "spiffe://example.org/ns/prod/sa/other"}),
    )
    .await;
    // another account's certificate
    token(&s, Some(&s.pki.client), &cc(&other), &[])
        .await
        .assert_oauth_error(401, "invalid_client");
    // a certificate from the CA but not for client authentication, a self-signed one, none
    for cert in [Some(&s.pki.server_only), Some(&s.pki.self_signed), None] {
        token(&s, cert, &cc(&api), &[])
            .await
            .assert_oauth_error(401, "invalid_client");
    }
    // A self-signed certificate that copies the names is not from the CA.
    let lookalike = account(
        &s,
        "lookalike",
        json!({"tls_client_auth_san_dns": "self.example.org"}),
    )
    .await;
    token(&s, Some(&s.pki.self_signed), &cc(&lookalike), &[])
        .await
        .assert_oauth_error(401, "invalid_client");
    // The right one still works.
    bound_token(&s, &api, &s.pki.client).await;
}

#[tokio::test]
async fn self_signed_tls_client_auth_by_registered_certificate() {
    let s = start(&[], false).await;
    let id = account(
        &s,
        "edge",
        json!({"tls_client_certificates": [s.pki.self_signed.pem]}),
    )
    .await;
    let shown = s
        .env
        .admin(
            Method::GET,
            &format!("/admin/v1/tenants/default/service-accounts/{id}"),
            None,
        )
        .await
        .json();
    assert_eq!(
        shown["auth_methods"],
        json!(["self_signed_tls_client_auth"])
    );
    assert_eq!(
        shown["tls_client_certificate_thumbprints"],
        json!([s.pki.self_signed.x5t()])
    );
    bound_token(&s, &id, &s.pki.self_signed).await;
    // Any other certificate, CA-issued or not, is refused.
    for cert in [&s.pki.client, &s.pki.via_intermediate] {
        token(&s, Some(cert), &cc(&id), &[])
            .await
            .assert_oauth_error(401, "invalid_client");
    }
}

#[tokio::test]
async fn a_spoofed_client_cert_header_from_an_untrusted_address_counts_for_nothing() {
    let s = start(&[], true).await;
    let id = account(&s, "api", json!({"tls_client_auth_san_uri": SPIFFE_ID})).await;
    let forged = s.pki.client.header();
    token(&s, None, &cc(&id), &[("client-cert", forged.as_str())])
        .await
        .assert_oauth_error(401, "invalid_client");
    // With the handshake's own certificate being someone else's, the header does not help.
    token(
        &s,
        Some(&s.pki.self_signed),
        &cc(&id),
        &[("client-cert", forged.as_str())],
    )
    .await
    .assert_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn a_trusted_proxy_forwards_the_certificate() {
    let s = start(&["127.0.0.1"], true).await;
    let id = account(&s, "api", json!({"tls_client_auth_san_uri": SPIFFE_ID})).await;
    let header = s.pki.client.header();
    let r = token(&s, None, &cc(&id), &[("client-cert", header.as_str())]).await;
    let claims = s.env.verify("default", &r.access_token(), AUD).await;
    assert_eq!(claims["cnf"]["x5t#S256"], s.pki.client.x5t());
}

#[tokio::test]
async fn no_downgrade_between_secrets_and_certificates() {
    let s = start(&[], true).await;
    // A secret account presenting a certificate (and no secret) is refused...
    let (secret_id, secret) = s.env.account("default", "secretive", AUD, &["read"]).await;
    token(&s, Some(&s.pki.client), &cc(&secret_id), &[])
        .await
        .assert_oauth_error(401, "invalid_client");
    // ...its secret works, over mTLS too, and gives an unbound token.
    let r = token(
        &s,
        Some(&s.pki.client),
        &format!("{}&client_secret={secret}", cc(&secret_id)),
        &[],
    )
    .await;
    let claims = s.env.verify("default", &r.access_token(), AUD).await;
    assert!(claims.get("cnf").is_none());
    // A certificate account never gets a secret, so it cannot use one.
    let api = account(&s, "api", json!({"tls_client_auth_san_uri": SPIFFE_ID})).await;
    let r = s
        .env
        .admin(
            Method::POST,
            &format!("/admin/v1/tenants/default/service-accounts/{api}/secrets"),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    token(
        &s,
        Some(&s.pki.client),
        &format!("{}&client_secret=not-the-certificate", cc(&api)),
        &[],
    )
    .await
    .assert_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn the_revocation_feed_takes_a_client_certificate() {
    let s = start(&[], true).await;
    let reader = account(
        &s,
        "feed-reader",
        json!({"tls_client_auth_san_uri": SPIFFE_ID}),
    )
    .await;
    let other = account(
        &s,
        "other",
        json!({"tls_client_auth_san_dns": "other.example.org"}),
    )
    .await;
    let get = |identity: Option<&Cert>, path: String| {
        let client = s.client(identity);
        let url = format!("{}/t/default/{path}", s.base);
        async move { client.get(url).send().await.unwrap() }
    };
    // A page, and the stream, with the certificate and the account's client_id.
    let page = get(
        Some(&s.pki.client),
        format!("revocations?client_id={reader}"),
    )
    .await;
    assert_eq!(page.status(), 200);
    let v: Value = page.json().await.unwrap();
    assert!(v["next_cursor"].is_string(), "{v}");
    let stream = get(
        Some(&s.pki.client),
        format!("revocations/stream?client_id={reader}"),
    )
    .await;
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    drop(stream);
    // No certificate, another account's id, no id, two ids: refused.
    for (identity, path, status) in [
        (None, format!("revocations?client_id={reader}"), 401),
        (
            Some(&s.pki.client),
            format!("revocations?client_id={other}"),
            401,
        ),
        (Some(&s.pki.client), "revocations".to_owned(), 401),
        (
            Some(&s.pki.client),
            format!("revocations?client_id={reader}&client_id={reader}"),
            400,
        ),
    ] {
        let r = get(identity, path.clone()).await;
        assert_eq!(r.status().as_u16(), status, "{path}");
    }
}
