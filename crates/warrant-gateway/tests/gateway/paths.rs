//! Requests whose path, host or method could make the gateway and the upstream disagree about
//! what is being asked for. Sent over a raw socket, since HTTP clients normalise URLs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{AUDIENCE, Harness};

/// Sends `head` (request line and headers, without the final blank line) and returns the
/// status and the body as JSON.
async fn raw(addr: SocketAddr, head: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("{head}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let (_, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{text:?}"));
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, body)
}

fn deploy_routes(upstream: &str) -> String {
    format!(
        r#"
[[routes]]
name = "deploy"
path_prefix = "/deploy"
upstream = "http://{upstream}"
verify = false

[[routes]]
name = "deploy-admin"
path_prefix = "/deploy/admin"
upstream = "http://{upstream}"
audience = "{AUDIENCE}"
scopes_all = ["deploy:admin"]

[[routes]]
name = "host-only"
host = "api.example.com"
path_prefix = "/"
upstream = "http://{upstream}"
audience = "{AUDIENCE}"

[[routes]]
name = "public"
path_prefix = "/"
upstream = "http://{upstream}"
verify = false
"#
    )
}

#[tokio::test]
async fn paths_are_routed_and_forwarded_in_their_canonical_form() {
    let h = Harness::start().await;
    h.write_routes(&deploy_routes(&h.upstream.to_string()));
    h.gateway.reload().await.unwrap();
    let gw = h.gateway.local_addr();

    // An encoded `a` is still the admin route: refused without a token...
    let (status, body) = raw(gw, "GET /deploy/%61dmin/delete HTTP/1.1\r\nHost: x").await;
    assert_eq!(status, 401, "{body}");
    // ... and forwarded as the upstream would have read it, with one.
    let token = h.token(json!({"scope": "deploy:admin"}));
    let (status, body) = raw(
        gw,
        &format!(
            "GET /deploy/%61dmin/delete?q=%2e%61 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}"
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["uri"], "/deploy/admin/delete?q=%2e%61");

    // Other escapes keep their meaning, upper-cased.
    let (status, body) = raw(gw, "GET /deploy/%7euser/a%2cb HTTP/1.1\r\nHost: x").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["uri"], "/deploy/~user/a%2Cb");

    let log = h.log_lines(3).await;
    assert_eq!(log[0]["route"], "deploy-admin");
    assert_eq!(log[0]["path"], "/deploy/admin/delete");
    assert_eq!(log[1]["route"], "deploy-admin");
    assert_eq!(log[2]["route"], "deploy");
}

#[tokio::test]
async fn ambiguous_paths_are_refused_before_the_upstream() {
    let h = Harness::start().await;
    // Every route leads to an upstream that counts connections and answers none.
    let trap = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trap_addr = trap.local_addr().unwrap();
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = trap.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    h.write_routes(&deploy_routes(&trap_addr.to_string()));
    h.gateway.reload().await.unwrap();
    let gw = h.gateway.local_addr();

    let bad = [
        "/deploy/x/../admin",
        "/deploy/./admin",
        "/deploy/%2e%2e/admin",
        "/deploy/%2E./admin",
        "/deploy/admin;x/delete",
        "/deploy;x",
        "/deploy%2fadmin",
        "/deploy%2Fadmin",
        "/deploy%5cadmin",
        "/deploy\\admin",
        "//deploy/admin",
        "/deploy//admin",
        "/deploy/%00",
        "/deploy/%zz",
        "/deploy/%4",
    ];
    for path in bad {
        let (status, body) = raw(gw, &format!("GET {path} HTTP/1.1\r\nHost: x")).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body, json!({"error": "invalid_request"}), "{path}");
    }
    let log = h.log_lines(bad.len()).await;
    for line in &log {
        assert_eq!(line["outcome"], "rejected", "{line}");
        assert_eq!(line["reason"], "invalid_path", "{line}");
        assert_eq!(line["route"], Value::Null, "{line}");
    }
    assert_eq!(log[0]["path"], "/deploy/x/../admin");
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "a request reached the upstream"
    );
}

#[tokio::test]
async fn hosts_methods_and_trust_headers() {
    let h = Harness::start().await;
    h.write_routes(&deploy_routes(&h.upstream.to_string()));
    h.gateway.reload().await.unwrap();
    let gw = h.gateway.local_addr();

    // A trailing dot, another case or a port do not dodge a host route (verified: 401).
    for host in [
        "api.example.com.",
        "API.Example.com",
        "api.example.com.:443",
    ] {
        let (status, body) = raw(gw, &format!("GET /x HTTP/1.1\r\nHost: {host}")).await;
        assert_eq!(status, 401, "{host}: {body}");
    }
    let (status, _) = raw(gw, "GET http://api.example.com./x HTTP/1.1\r\nHost: x").await;
    assert_eq!(status, 401);
    // Userinfo in an absolute-form target, or a Host that is no host[:port]: 400.
    for head in [
        "GET http://user:pw-secret@api.example.com/x HTTP/1.1\r\nHost: api.example.com",
        "GET /x HTTP/1.1\r\nHost: api.example.com..",
        "GET /x HTTP/1.1\r\nHost: api.example.com:x",
        "GET /x HTTP/1.1\r\nHost: a.example.com\r\nHost: b.example.com",
    ] {
        let (status, body) = raw(gw, head).await;
        assert_eq!(status, 400, "{head}");
        assert_eq!(body, json!({"error": "invalid_request"}), "{head}");
    }
    // TRACE and CONNECT are not proxied.
    for head in [
        "TRACE /x HTTP/1.1\r\nHost: x",
        "CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443",
    ] {
        let (status, body) = raw(gw, head).await;
        assert_eq!(status, 405, "{head}");
        assert_eq!(body, json!({"error": "method_not_allowed"}), "{head}");
    }

    // Identity headers in CGI-equivalent spellings, and other trust headers, are removed.
    let (status, body) = raw(
        gw,
        "GET /x HTTP/1.1\r\nHost: x\r\nx_warrant_sub: admin\r\nX-Warrant_Tenant: other\r\n\
         Forwarded: for=10.0.0.1\r\nX-Real-IP: 10.0.0.1\r\nX-Forwarded-Port: 1\r\n\
         X_Forwarded_For: 10.0.0.9\r\nX-Forwarded-Prefix: /admin\r\nClient-Cert: :AA==:\r\n\
         X-SSL-Client-Cert: x\r\nX-Original-URL: /admin\r\nX-Forwarded-For: 10.0.0.2",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let headers = body["headers"].as_object().unwrap();
    let mut names: Vec<&str> = headers.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "host",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto"
        ],
        "{body}"
    );
    assert_eq!(headers["x-forwarded-for"], json!(["10.0.0.2, 127.0.0.1"]));

    let log = h.log_lines(11).await;
    assert_eq!(log[4]["reason"], "invalid_host", "{}", log[4]);
    assert_eq!(log[8]["outcome"], "rejected", "{}", log[8]);
    assert_eq!(log[8]["reason"], "method_not_allowed", "{}", log[8]);
    assert!(!h.log.contents().contains("pw-secret"));
}
