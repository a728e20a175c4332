//! `warrant gateway` end to end: a real `warrant serve`, the gateway, and a real upstream on
//! loopback. What the upstream sees, what callers are told, and what happens when tokens are
//! revoked, keys rotate, the feed dies and the config is reloaded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use warrant_jose::{Algorithm, SigningKey, b64, sign_with_embedded_jwk};

use super::{
    AUDIENCE, Server, b64std, bit_flipped, create_sa_with_scope, form_urlencode, free_port,
    verify_independently, warrant,
};

/// What the upstream received: one JSON object per request (`path`, `headers`).
type Seen = Arc<Mutex<Vec<Value>>>;

/// An upstream on loopback that answers every request with what it received, as JSON.
async fn upstream() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let s = s.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let mut lines = head.split("\r\n");
                let path = lines.next().unwrap_or("").split(' ').nth(1).unwrap_or("");
                let mut headers = serde_json::Map::new();
                for l in lines.take_while(|l| !l.is_empty()) {
                    if let Some((k, v)) = l.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), json!(v.trim()));
                    }
                }
                let seen = json!({"path": path, "headers": headers});
                s.lock().unwrap().push(seen.clone());
                let body = seen.to_string();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (url, seen)
}

/// A `warrant gateway` child, killed when dropped.
struct Gateway {
    child: Child,
    url: String,
    metrics: String,
    config: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    async fn start(config: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let (port, metrics_port) = (free_port(), free_port());
        let path = dir.path().join("gateway.toml");
        let full = format!(
            "listen = \"127.0.0.1:{port}\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n{config}"
        );
        std::fs::write(&path, full).unwrap();
        let out = std::fs::File::create(dir.path().join("access.log")).unwrap();
        let err = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        let child = warrant()
            .args(["gateway", "--config"])
            .arg(&path)
            .stdout(out)
            .stderr(err)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut g = Gateway {
            child,
            url: format!("http://127.0.0.1:{port}"),
            metrics: format!("http://127.0.0.1:{metrics_port}"),
            config: path,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = g.child.try_wait().unwrap() {
                panic!("warrant gateway exited with {status}:\n{}", g.log());
            }
            let ready = reqwest::get(format!("{}/readyz", g.metrics))
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return g;
            }
            assert!(Instant::now() < deadline, "gateway not ready:\n{}", g.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    fn hup(&self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
    }
}

/// A request through the gateway: status, `WWW-Authenticate` values, JSON body.
struct Answer {
    status: u16,
    challenges: Vec<String>,
    body: Value,
}

async fn get(http: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = http.get(url).timeout(Duration::from_secs(10));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    Answer {
        status: r.status().as_u16(),
        challenges: r
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect(),
        body: r.json().await.unwrap_or(Value::Null),
    }
}

/// [`get`] with `Authorization: Bearer TOKEN`.
async fn get_bearer(http: &reqwest::Client, url: &str, token: &str) -> Answer {
    get(http, url, &[("authorization", &bearer(token))]).await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `POST token_endpoint` (client_secret_basic) for `resource`; optional DPoP proof.
async fn token_for(
    endpoint: &str,
    id: &str,
    secret: &str,
    scope: Option<&str>,
    dpop: Option<String>,
) -> Value {
    let basic = b64std(format!("{}:{}", form_urlencode(id), form_urlencode(secret)));
    let mut form = vec![("grant_type", "client_credentials"), ("resource", AUDIENCE)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let mut req = reqwest::Client::new()
        .post(endpoint)
        .header("authorization", format!("Basic {basic}"))
        .form(&form);
    if let Some(p) = dpop {
        req = req.header("dpop", p);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

fn proof(key: &SigningKey, htm: &str, htu: &str, token: Option<&str>) -> String {
    let mut claims = json!({
        "htm": htm, "htu": htu, "iat": now(),
        "jti": b64::encode(warrant_jose::crypto::random_array::<16>().unwrap()),
    });
    if let Some(t) = token {
        claims["ath"] = json!(b64::encode(warrant_jose::crypto::sha256(t.as_bytes())));
    }
    sign_with_embedded_jwk(key, "dpop+jwt", claims.to_string().as_bytes()).unwrap()
}

fn now() -> i64 {
    use warrant_core::Clock as _;
    warrant_core::SystemClock.now().secs()
}

/// The gateway config's issuer and route sections for `server`'s `default` tenant.
fn config(issuer: &str, feed: (&str, &Path), upstream: &str, extra: &str) -> String {
    format!(
        r#"stale_feed_limit = "3s"
leeway = "0s"
{extra}
[[issuers]]
issuer = "{issuer}"
feed_client_id = "{}"
feed_client_secret_file = "{}"

[[routes]]
name = "deploy"
path_prefix = "/deploy"
upstream = "{upstream}"
audience = "{AUDIENCE}"
scopes_all = ["deploy:read"]

[[routes]]
name = "deploy-write"
path_prefix = "/deploy/write"
upstream = "{upstream}"
audience = "{AUDIENCE}"
scopes_all = ["deploy:write"]

[[routes]]
name = "billing"
path_prefix = "/billing"
upstream = "{upstream}"
audience = "https://billing.internal"

[[routes]]
name = "public"
path_prefix = "/public"
upstream = "{upstream}"
verify = false
"#,
        feed.0,
        feed.1.display()
    )
}

struct Setup {
    server: Server,
    gateway: Gateway,
    seen: Seen,
    endpoint: String,
    issuer: String,
    caller: (String, String),
    /// The feed secret's file (read again on reload).
    _secrets: tempfile::TempDir,
}

async fn setup(extra: &str) -> Setup {
    let server = Server::start().await;
    let caller = create_sa_with_scope(|a| server.admin_json(a), "caller", "deploy:read");
    let feed = create_sa_with_scope(|a| server.admin_json(a), "gateway-feed", "none");
    let issuer = caller["issuer"].as_str().unwrap().to_owned();
    let (upstream_url, seen) = upstream().await;
    let secret_dir = tempfile::tempdir().unwrap();
    let secret_file = secret_dir.path().join("feed-secret");
    std::fs::write(&secret_file, feed["secret"]["value"].as_str().unwrap()).unwrap();
    let gateway = Gateway::start(&config(
        &issuer,
        (feed["client_id"].as_str().unwrap(), &secret_file),
        &upstream_url,
        extra,
    ))
    .await;
    Setup {
        endpoint: caller["token_endpoint"].as_str().unwrap().to_owned(),
        caller: (
            caller["client_id"].as_str().unwrap().to_owned(),
            caller["secret"]["value"].as_str().unwrap().to_owned(),
        ),
        issuer,
        server,
        gateway,
        seen,
        _secrets: secret_dir,
    }
}

impl Setup {
    async fn token(&self) -> String {
        let body = token_for(&self.endpoint, &self.caller.0, &self.caller.1, None, None).await;
        body["access_token"].as_str().unwrap().to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_passes_good_tokens_and_refuses_bad_ones() {
    let s = setup("").await;
    let http = reqwest::Client::new();
    let g = &s.gateway.url;
    let token = s.token().await;
    // An independent implementation agrees the token is good.
    let claims = verify_independently(&token, &s.issuer).await;
    let sub = claims["sub"].as_str().unwrap();

    // A valid token passes; the upstream sees who called, and neither the token nor the
    // spoofed identity header the caller added.
    let ok = get(
        &http,
        &format!("{g}/deploy/42?x=1"),
        &[
            ("authorization", &bearer(&token)),
            ("x-warrant-sub", "sa_admin"),
            ("X-Warrant-Scope", "admin"),
        ],
    )
    .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let h = &ok.body["headers"];
    assert_eq!(ok.body["path"], "/deploy/42?x=1");
    assert_eq!(h["x-warrant-sub"], sub, "{h}");
    assert_eq!(h["x-warrant-client-id"], s.caller.0.as_str());
    assert_eq!(h["x-warrant-scope"], "deploy:read");
    assert_eq!(h["x-warrant-jti"], claims["jti"]);
    assert_eq!(h["x-warrant-issuer"], s.issuer.as_str());
    assert!(h.get("authorization").is_none(), "{h}");
    assert!(
        !s.seen
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.to_string().contains("sa_admin"))
    );

    // No token: 401, challenges without an error code, naming the RFC 9728 metadata.
    let none = get(&http, &format!("{g}/deploy/42"), &[]).await;
    assert_eq!(none.status, 401);
    let metadata_url = format!("{g}/.well-known/oauth-protected-resource/deploy");
    assert!(
        none.challenges[0].starts_with("Bearer realm="),
        "{:?}",
        none.challenges
    );
    assert!(
        !none.challenges[0].contains("error="),
        "{:?}",
        none.challenges
    );
    assert!(
        none.challenges[0].contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{:?}",
        none.challenges
    );
    let metadata = get(&http, &metadata_url, &[]).await;
    assert_eq!(metadata.status, 200);
    assert_eq!(metadata.body["authorization_servers"], json!([s.issuer]));
    assert!(
        metadata.body["resource"]
            .as_str()
            .unwrap()
            .ends_with("/deploy")
    );

    // Forged, alg none, HMAC keyed with the public key, bit-flipped: 401 invalid_token.
    let header: Value =
        serde_json::from_slice(&b64::decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let kid = header["kid"].as_str().unwrap();
    let (impostor, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let forged = {
        let h = b64::encode(json!({"alg": "ES256", "typ": "at+jwt", "kid": kid}).to_string());
        let sig = impostor.sign(format!("{h}.{payload}").as_bytes()).unwrap();
        format!("{h}.{payload}.{}", b64::encode(sig))
    };
    let none_alg = format!(
        "{}.{payload}.",
        b64::encode(json!({"alg": "none", "typ": "at+jwt", "kid": kid}).to_string())
    );
    let jwks: Value = reqwest::get(format!("{}/jwks", s.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hmac = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        h.kid = Some(kid.into());
        jsonwebtoken::encode(
            &h,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(jwks["keys"][0].to_string().as_bytes()),
        )
        .unwrap()
    };
    for (name, bad) in [
        ("forged", forged),
        ("alg none", none_alg),
        ("HMAC with the public key", hmac),
        ("bit-flipped", bit_flipped(&token)),
        ("garbage", "abc.def.ghi".into()),
    ] {
        let a = get_bearer(&http, &format!("{g}/deploy/1"), &bad).await;
        assert_eq!(a.status, 401, "{name}");
        assert!(
            a.challenges[0].contains("error=\"invalid_token\""),
            "{name}: {:?}",
            a.challenges
        );
        assert_eq!(a.body["error"], "invalid_token", "{name}");
    }

    // Wrong route (another audience): 401. Missing scope: 403 naming the scope.
    let wrong = get_bearer(&http, &format!("{g}/billing/1"), &token).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.challenges[0].contains("invalid_token"));
    let scope = get_bearer(&http, &format!("{g}/deploy/write/1"), &token).await;
    assert_eq!(scope.status, 403);
    assert!(
        scope.challenges[0].contains("error=\"insufficient_scope\""),
        "{:?}",
        scope.challenges
    );
    assert!(
        scope.challenges[0].contains("scope=\"deploy:write\""),
        "{:?}",
        scope.challenges
    );

    // Another tenant's token (same audience, its own issuer and keys): 401.
    s.server.admin_json(&["tenant", "create", "other"]);
    let other = s.server.admin_json(&[
        "sa",
        "create",
        "intruder",
        "--tenant",
        "other",
        "--audience",
        AUDIENCE,
        "--scope",
        "deploy:read",
    ]);
    let other_token = token_for(
        other["token_endpoint"].as_str().unwrap(),
        other["client_id"].as_str().unwrap(),
        other["secret"]["value"].as_str().unwrap(),
        None,
        None,
    )
    .await;
    let a = get_bearer(
        &http,
        &format!("{g}/deploy/1"),
        other_token["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(a.status, 401);

    // An expired token: an account whose tokens live one second (the gateway allows no skew).
    let short = s.server.admin_json(&[
        "sa",
        "create",
        "brief",
        "--tenant",
        "default",
        "--audience",
        AUDIENCE,
        "--scope",
        "deploy:read",
        "--default-lifetime",
        "1s",
        "--max-lifetime",
        "1s",
    ]);
    let brief = token_for(
        &s.endpoint,
        short["client_id"].as_str().unwrap(),
        short["secret"]["value"].as_str().unwrap(),
        None,
        None,
    )
    .await;
    let brief = brief["access_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let a = get_bearer(&http, &format!("{g}/deploy/1"), &brief).await;
    assert_eq!(a.status, 401);
    assert!(a.challenges[0].contains("expired"), "{:?}", a.challenges);

    // A public route needs no token, and still never forwards a spoofed identity.
    let public = get(
        &http,
        &format!("{g}/public/x"),
        &[("x-warrant-sub", "sa_admin")],
    )
    .await;
    assert_eq!(public.status, 200);
    assert!(public.body["headers"].get("x-warrant-sub").is_none());
    // No route: 404.
    assert_eq!(get(&http, &format!("{g}/nowhere"), &[]).await.status, 404);

    // One JSON access-log line per request, without tokens.
    let log = s.gateway.access_log();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 12, "{log}");
    assert!(
        lines
            .iter()
            .any(|l| l["sub"] == sub && l["status"] == 200 && l["route"] == "deploy")
    );
    // A token that verified but was refused later still says whose it was.
    assert!(
        lines
            .iter()
            .any(|l| l["reason"] == "audience" && l["sub"] == sub && l["status"] == 401),
        "{log}"
    );
    assert!(
        !log.contains(&token) && !log.contains(payload),
        "a token in the access log"
    );
    let metrics = reqwest::get(format!("{}/metrics", s.gateway.metrics))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("warrant_gateway_requests_total"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_follows_revocations_rotations_dpop_and_reloads() {
    let s = setup("").await;
    let http = reqwest::Client::new();
    let g = &s.gateway.url;
    let url = format!("{g}/deploy/1");

    // A token revoked at the issuer is refused within a second, without a restart.
    let token = s.token().await;
    assert_eq!(get_bearer(&http, &url, &token).await.status, 200);
    let claims = verify_independently(&token, &s.issuer).await;
    let exp = claims["exp"].as_i64().unwrap().to_string();
    s.server.admin(&[
        "revoke",
        "--tenant",
        "default",
        "--jti",
        claims["jti"].as_str().unwrap(),
        "--exp",
        &exp,
    ]);
    let revoked_at = Instant::now();
    loop {
        let a = get_bearer(&http, &url, &token).await;
        if a.status == 401 {
            assert!(a.challenges[0].contains("revoked"), "{:?}", a.challenges);
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "still accepted after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Emergency key rotation while requests flow: every request, with a token fresh from the
    // issuer each time, passes — before, during and after the switch of signing key.
    let before = s.token().await;
    let rotating = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (flag, endpoint, caller, target) = (
        rotating.clone(),
        s.endpoint.clone(),
        s.caller.clone(),
        url.clone(),
    );
    let traffic = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut statuses = Vec::new();
        let mut kids = std::collections::BTreeSet::new();
        let mut after_rotation = 0;
        while after_rotation < 5 {
            if !flag.load(std::sync::atomic::Ordering::SeqCst) {
                after_rotation += 1;
            }
            let t = token_for(&endpoint, &caller.0, &caller.1, None, None).await;
            let t = t["access_token"].as_str().unwrap().to_owned();
            kids.insert(jsonwebtoken::decode_header(&t).unwrap().kid.unwrap());
            statuses.push(get_bearer(&http, &target, &t).await.status);
        }
        (statuses, kids)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let admin = s.server.credentials();
    let server_url = s.server.url.clone();
    tokio::task::spawn_blocking(move || {
        let o = warrant()
            .args([
                "key",
                "rotate",
                "--tenant",
                "default",
                "--now",
                "--url",
                &server_url,
            ])
            .arg("--credentials")
            .arg(admin)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    })
    .await
    .unwrap();
    rotating.store(false, std::sync::atomic::Ordering::SeqCst);
    let (statuses, kids) = traffic.await.unwrap();
    assert!(statuses.iter().all(|&st| st == 200), "{statuses:?}");
    assert_eq!(kids.len(), 2, "requests were signed by both keys: {kids:?}");
    let after = s.token().await;
    assert_ne!(
        jsonwebtoken::decode_header(&before).unwrap().kid,
        jsonwebtoken::decode_header(&after).unwrap().kid
    );
    for t in [&after, &before] {
        assert_eq!(get_bearer(&http, &url, t).await.status, 200);
    }

    // A DPoP-bound token: refused as Bearer, accepted with a proof of this request, which
    // cannot be replayed.
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let bound = token_for(
        &s.endpoint,
        &s.caller.0,
        &s.caller.1,
        None,
        Some(proof(&key, "POST", &s.endpoint, None)),
    )
    .await;
    assert_eq!(bound["token_type"], "DPoP");
    let bound = bound["access_token"].as_str().unwrap().to_owned();
    let as_bearer = get_bearer(&http, &url, &bound).await;
    assert_eq!(as_bearer.status, 401);
    assert!(
        as_bearer.challenges[0].starts_with("DPoP "),
        "{:?}",
        as_bearer.challenges
    );
    let p = proof(&key, "GET", &url, Some(&bound));
    let dpop = format!("DPoP {bound}");
    let ok = get(&http, &url, &[("authorization", &dpop), ("dpop", &p)]).await;
    assert_eq!(ok.status, 200, "{:?}", ok.challenges);
    assert!(
        ok.body["headers"].get("dpop").is_none(),
        "the proof is not forwarded"
    );
    let replay = get(&http, &url, &[("authorization", &dpop), ("dpop", &p)]).await;
    assert_eq!(replay.status, 401);
    assert!(
        replay.challenges[0].contains("invalid_dpop_proof"),
        "{:?}",
        replay.challenges
    );
    let elsewhere = proof(&key, "GET", &format!("{g}/deploy/2"), Some(&bound));
    assert_eq!(
        get(
            &http,
            &url,
            &[("authorization", &dpop), ("dpop", &elsewhere)]
        )
        .await
        .status,
        401
    );

    // SIGHUP: the new rules apply to the next request on the same keep-alive connection.
    let fresh = s.token().await;
    assert_eq!(get_bearer(&http, &url, &fresh).await.status, 200);
    let text = std::fs::read_to_string(&s.gateway.config)
        .unwrap()
        .replacen(
            "scopes_all = [\"deploy:read\"]",
            "scopes_all = [\"deploy:admin\"]",
            1,
        );
    std::fs::write(&s.gateway.config, text).unwrap();
    s.gateway.hup();
    let start = Instant::now();
    while get_bearer(&http, &url, &fresh).await.status != 403 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "not reloaded:\n{}",
            s.gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A broken config is refused and the old one kept.
    std::fs::write(&s.gateway.config, "listen = 5").unwrap();
    s.gateway.hup();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get_bearer(&http, &url, &fresh).await.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_answers_503_once_the_feed_is_staler_than_its_limit() {
    let mut s = setup("").await;
    let http = reqwest::Client::new();
    let url = format!("{}/deploy/1", s.gateway.url);
    let token = s.token().await;
    assert_eq!(get_bearer(&http, &url, &token).await.status, 200);
    // The issuer dies: the keys in hand still verify, until the feed is 3 s stale.
    let _ = s.server.child.kill();
    let _ = s.server.child.wait();
    let died = Instant::now();
    let first = get_bearer(&http, &url, &token).await;
    assert_eq!(first.status, 200, "still within the limit");
    loop {
        let a = get_bearer(&http, &url, &token).await;
        if a.status == 503 {
            break;
        }
        assert_eq!(a.status, 200);
        assert!(
            died.elapsed() < Duration::from_secs(10),
            "no 503 after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        died.elapsed() >= Duration::from_secs(2),
        "503 before the limit: {:?}",
        died.elapsed()
    );
    let ready = reqwest::get(format!("{}/readyz", s.gateway.metrics))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
}
