//! The verifier against a fake issuer on loopback: discovery, a JWKS whose `Cache-Control` the
//! test sets, and a revocation feed (snapshot pages and an event stream) the test feeds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use warrant_jose::{Algorithm, SigningKey, b64, sign_compact, sign_with_embedded_jwk};
use warrant_verify::{
    ClaimCondition, DenialKind, FeedCredentials, IssuerConfig, Presented, Requirement, Scheme,
    Verifier, VerifierConfig,
};

const AUD: &str = "https://orders.example.com";

/// What the fake issuer serves; the test changes it as it goes.
struct IssuerState {
    jwks: Mutex<Value>,
    jwks_cache_control: Mutex<String>,
    jwks_up: AtomicBool,
    feed_up: AtomicBool,
    /// (cursor, entry)
    entries: Mutex<Vec<(u64, Value)>>,
    /// Cursors below this are "pruned": resuming from them is 410.
    oldest: Mutex<u64>,
    events: broadcast::Sender<(u64, Value)>,
    jwks_fetches: AtomicUsize,
    snapshots: AtomicUsize,
    /// Open streams are dropped when this changes.
    generation: AtomicUsize,
}

struct FakeIssuer {
    issuer: String,
    state: Arc<IssuerState>,
}

impl FakeIssuer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}/t/a", listener.local_addr().unwrap());
        let (events, _) = broadcast::channel(64);
        let state = Arc::new(IssuerState {
            jwks: Mutex::new(json!({"keys": []})),
            jwks_cache_control: Mutex::new("public, max-age=3600".into()),
            jwks_up: AtomicBool::new(true),
            feed_up: AtomicBool::new(true),
            entries: Mutex::new(Vec::new()),
            oldest: Mutex::new(0),
            events,
            jwks_fetches: AtomicUsize::new(0),
            snapshots: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        });
        let (s, iss) = (state.clone(), issuer.clone());
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve(sock, s.clone(), iss.clone()));
            }
        });
        Self { issuer, state }
    }

    fn publish(&self, keys: &[&SigningKey]) {
        let keys: Vec<Value> = keys
            .iter()
            .map(|k| serde_json::to_value(k.public_jwk()).unwrap())
            .collect();
        *self.state.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    fn revoke(&self, entry: Value) {
        let mut entries = self.state.entries.lock().unwrap();
        let cursor = entries.last().map_or(1, |(c, _)| c + 1);
        entries.push((cursor, entry.clone()));
        let _ = self.state.events.send((cursor, entry));
    }

    fn config(&self) -> IssuerConfig {
        IssuerConfig {
            issuer: self.issuer.clone(),
            jwks_uri: None,
            feed: Some(FeedCredentials {
                client_id: "sa_feed".into(),
                client_secret: "s3cret".into(),
            }),
        }
    }
}

async fn serve(mut sock: TcpStream, state: Arc<IssuerState>, issuer: String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let target = head.split(' ').nth(1).unwrap_or("/").to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_owned))
    };
    let reply = |status: u16, headers: &str, body: String| {
        format!(
            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
            body.len()
        )
    };
    let authorized = header("authorization").as_deref() == Some("Basic c2FfZmVlZDpzM2NyZXQ=");
    let out = match path.strip_prefix("/t/a").unwrap_or("") {
        "/.well-known/openid-configuration" => reply(
            200,
            "content-type: application/json\r\n",
            json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks.json")}).to_string(),
        ),
        "/jwks.json" => {
            state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
            if state.jwks_up.load(Ordering::SeqCst) {
                let cc = state.jwks_cache_control.lock().unwrap().clone();
                reply(
                    200,
                    &format!("cache-control: {cc}\r\n"),
                    state.jwks.lock().unwrap().to_string(),
                )
            } else {
                reply(500, "", String::new())
            }
        }
        _ if !state.feed_up.load(Ordering::SeqCst) => reply(503, "", String::new()),
        _ if !authorized => reply(401, "", String::new()),
        "/revocations" => {
            let after: u64 = param("after").and_then(|a| a.parse().ok()).unwrap_or(0);
            if after == 0 {
                state.snapshots.fetch_add(1, Ordering::SeqCst);
            }
            let entries = state.entries.lock().unwrap();
            let page: Vec<Value> = entries
                .iter()
                .filter(|(c, _)| *c > after)
                .map(|(_, e)| e.clone())
                .collect();
            let next = entries.last().map_or(0, |(c, _)| *c).max(after);
            reply(
                200,
                "content-type: application/json\r\n",
                json!({"entries": page, "next_cursor": next.to_string()}).to_string(),
            )
        }
        "/revocations/stream" => {
            let from: u64 = header("last-event-id")
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            if from < *state.oldest.lock().unwrap() {
                reply(410, "", String::new())
            } else {
                let mut rx = state.events.subscribe();
                let backlog: Vec<(u64, Value)> = state
                    .entries
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(c, _)| *c > from)
                    .cloned()
                    .collect();
                let generation = state.generation.load(Ordering::SeqCst);
                let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n").await;
                for (c, e) in backlog {
                    let _ = sock
                        .write_all(format!("id: {c}\nevent: revocation\ndata: {e}\n\n").as_bytes())
                        .await;
                }
                loop {
                    tokio::select! {
                        ev = rx.recv() => match ev {
                            Ok((c, e)) => {
                                if sock.write_all(format!("id: {c}\nevent: revocation\ndata: {e}\n\n").as_bytes()).await.is_err() { return; }
                            }
                            Err(_) => return,
                        },
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {
                            if state.generation.load(Ordering::SeqCst) != generation || !state.feed_up.load(Ordering::SeqCst) { return; }
                            if sock.write_all(b": ping\n\n").await.is_err() { return; }
                        }
                    }
                }
            }
        }
        _ => reply(404, "", String::new()),
    };
    let _ = sock.write_all(out.as_bytes()).await;
}

fn key() -> SigningKey {
    SigningKey::generate(Algorithm::Es256).unwrap().0
}

fn claims(issuer: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer, "sub": "sa_1", "aud": AUD, "client_id": "sa_1",
        "exp": now + 300, "iat": now, "nbf": now, "jti": format!("j{}", rand_u64()),
        "scope": "orders:read", "tenant": "a"
    })
}

fn rand_u64() -> u64 {
    u64::from_be_bytes(warrant_jose::crypto::random_array::<8>().unwrap())
}

fn now() -> i64 {
    use warrant_verify::Clock;
    warrant_verify::SystemClock.now_secs()
}

fn sign(k: &SigningKey, claims: &Value) -> String {
    sign_compact(k, "at+jwt", claims.to_string().as_bytes()).unwrap()
}

fn rule() -> Requirement {
    Requirement {
        audiences: vec![AUD.into()],
        scopes_all: vec!["orders:read".into()],
        ..Requirement::default()
    }
}

fn headers(scheme: &str, token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("{scheme} {token}")).unwrap(),
    );
    h
}

const URL: &str = "https://orders.example.com/orders/1";

async fn check(
    v: &Verifier,
    h: &HeaderMap,
    rule: &Requirement,
) -> Result<String, (DenialKind, &'static str)> {
    check_with(v, h, rule, None).await
}

async fn check_with(
    v: &Verifier,
    h: &HeaderMap,
    rule: &Requirement,
    cert: Option<&[u8]>,
) -> Result<String, (DenialKind, &'static str)> {
    let p = Presented {
        method: "GET",
        url: URL,
        headers: h,
        client_certificate: cert,
    };
    v.check(&p, rule)
        .await
        .map(|t| t.sub.clone())
        .map_err(|d| (d.kind, d.reason))
}

async fn started(issuers: Vec<IssuerConfig>, stale: Duration) -> Verifier {
    let mut config = VerifierConfig::new(issuers);
    config.stale_feed_limit = stale;
    let v = Verifier::start(config).unwrap();
    assert!(
        v.wait_ready(Duration::from_secs(10)).await,
        "{:?}",
        v.status()
    );
    v
}

async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if f().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within 10 s");
}

#[tokio::test]
async fn requirements_audience_scopes_and_claims() {
    let issuer = FakeIssuer::start().await;
    let k = key();
    issuer.publish(&[&k]);
    let v = started(vec![issuer.config()], Duration::from_secs(60)).await;
    let good = sign(&k, &claims(&issuer.issuer));
    assert_eq!(
        check(&v, &headers("Bearer", &good), &rule()).await,
        Ok("sa_1".into())
    );
    // Cached: the second check of the same token does not verify again, and still passes.
    assert_eq!(
        check(&v, &headers("bearer", &good), &rule()).await,
        Ok("sa_1".into())
    );

    let wrong_aud = Requirement {
        audiences: vec!["https://billing.example.com".into()],
        ..rule()
    };
    assert_eq!(
        check(&v, &headers("Bearer", &good), &wrong_aud).await,
        Err((DenialKind::InvalidToken, "audience"))
    );
    let no_aud = Requirement {
        audiences: vec![],
        ..rule()
    };
    assert_eq!(
        check(&v, &headers("Bearer", &good), &no_aud).await,
        Err((DenialKind::InvalidToken, "audience"))
    );
    let more_scope = Requirement {
        scopes_all: vec!["orders:read".into(), "orders:write".into()],
        ..rule()
    };
    let d = v
        .check(
            &Presented {
                method: "GET",
                url: URL,
                headers: &headers("Bearer", &good),
                client_certificate: None,
            },
            &more_scope,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (d.kind, d.status().as_u16()),
        (DenialKind::InsufficientScope, 403)
    );
    assert_eq!(d.scope.as_deref(), Some("orders:read orders:write"));
    assert!(
        d.challenges(Some("https://gw/.well-known/oauth-protected-resource"))[0]
            .contains("error=\"insufficient_scope\"")
    );
    let any = Requirement {
        scopes_all: vec![],
        scopes_any: vec!["x".into(), "orders:read".into()],
        ..rule()
    };
    assert!(check(&v, &headers("Bearer", &good), &any).await.is_ok());
    let claim = |c: &str, one_of: Value| Requirement {
        claims: vec![ClaimCondition {
            claim: c.into(),
            one_of: one_of.as_array().unwrap().clone(),
        }],
        ..rule()
    };
    assert!(
        check(
            &v,
            &headers("Bearer", &good),
            &claim("tenant", json!(["a", "b"]))
        )
        .await
        .is_ok()
    );
    assert!(
        check(
            &v,
            &headers("Bearer", &good),
            &claim("client_id", json!(["sa_*"]))
        )
        .await
        .is_ok()
    );
    assert_eq!(
        check(
            &v,
            &headers("Bearer", &good),
            &claim("tenant", json!(["b"]))
        )
        .await,
        Err((DenialKind::InsufficientScope, "claims"))
    );
    assert_eq!(
        check(
            &v,
            &headers("Bearer", &good),
            &claim("act.sub", json!(["x"]))
        )
        .await,
        Err((DenialKind::InsufficientScope, "claims"))
    );

    // No token, another scheme, two headers, garbage.
    assert_eq!(
        check(&v, &HeaderMap::new(), &rule()).await,
        Err((DenialKind::NoToken, "no_token"))
    );
    assert_eq!(
        check(&v, &headers("Basic", "dXNlcjpwYXNz"), &rule()).await,
        Err((DenialKind::NoToken, "no_token"))
    );
    let mut two = headers("Bearer", &good);
    two.append(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {good}")).unwrap(),
    );
    assert_eq!(
        check(&v, &two, &rule()).await,
        Err((DenialKind::InvalidRequest, "two_authorization_headers"))
    );
    assert_eq!(
        check(&v, &headers("Bearer", "a b"), &rule())
            .await
            .unwrap_err()
            .0,
        DenialKind::InvalidRequest
    );
    assert_eq!(
        check(&v, &headers("Bearer", "abc"), &rule())
            .await
            .unwrap_err()
            .0,
        DenialKind::InvalidToken
    );

    // A token of an issuer we do not trust, signed by a key we do publish.
    let mut other = claims(&issuer.issuer);
    other["iss"] = json!("http://127.0.0.1:1/t/b");
    assert_eq!(
        check(&v, &headers("Bearer", &sign(&k, &other)), &rule()).await,
        Err((DenialKind::InvalidToken, "issuer"))
    );
}

#[tokio::test]
async fn a_revocation_reaches_the_verifier_within_a_second() {
    let issuer = FakeIssuer::start().await;
    let k = key();
    issuer.publish(&[&k]);
    // A revocation made before the verifier starts arrives with the snapshot.
    let mut early = claims(&issuer.issuer);
    issuer.revoke(json!({"type": "jti", "jti": early["jti"], "exp": early["exp"]}));
    let v = started(vec![issuer.config()], Duration::from_secs(60)).await;
    assert_eq!(
        check(&v, &headers("Bearer", &sign(&k, &early)), &rule()).await,
        Err((DenialKind::InvalidToken, "revoked"))
    );
    early["jti"] = json!("fresh");
    assert!(
        check(&v, &headers("Bearer", &sign(&k, &early)), &rule())
            .await
            .is_ok()
    );

    let c = claims(&issuer.issuer);
    let token = headers("Bearer", &sign(&k, &c));
    assert!(check(&v, &token, &rule()).await.is_ok());
    issuer.revoke(json!({"type": "jti", "jti": c["jti"], "exp": c["exp"]}));
    let took = eventually("jti revocation", async || {
        check(&v, &token, &rule()).await.is_err()
    })
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(
        check(&v, &token, &rule()).await,
        Err((DenialKind::InvalidToken, "revoked"))
    );

    // A watermark on an actor of a delegation chain.
    let mut delegated = claims(&issuer.issuer);
    delegated["act"] = json!({"sub": "sa_x", "act": {"sub": "sa_y"}});
    let token = headers("Bearer", &sign(&k, &delegated));
    assert!(check(&v, &token, &rule()).await.is_ok());
    issuer.revoke(json!({"type": "subject", "sub": "sa_y", "not_before": delegated["iat"]}));
    eventually("watermark", async || {
        check(&v, &token, &rule()).await.is_err()
    })
    .await;
}

#[tokio::test]
async fn a_cursor_that_cannot_resume_takes_a_fresh_snapshot() {
    let issuer = FakeIssuer::start().await;
    let k = key();
    issuer.publish(&[&k]);
    let v = started(vec![issuer.config()], Duration::from_secs(60)).await;
    assert_eq!(issuer.state.snapshots.load(Ordering::SeqCst), 1);
    // The issuer prunes past our cursor while we are disconnected.
    let c = claims(&issuer.issuer);
    *issuer.state.oldest.lock().unwrap() = 100;
    issuer.state.entries.lock().unwrap().push((
        150,
        json!({"type": "jti", "jti": c["jti"], "exp": c["exp"]}),
    ));
    issuer.state.generation.fetch_add(1, Ordering::SeqCst);
    let token = headers("Bearer", &sign(&k, &c));
    eventually("snapshot after 410", async || {
        check(&v, &token, &rule()).await.is_err()
    })
    .await;
    assert!(issuer.state.snapshots.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn a_dead_feed_makes_tokens_unavailable_after_the_limit_and_recovers() {
    let issuer = FakeIssuer::start().await;
    let k = key();
    issuer.publish(&[&k]);
    let v = started(vec![issuer.config()], Duration::from_secs(2)).await;
    let token = headers("Bearer", &sign(&k, &claims(&issuer.issuer)));
    assert!(check(&v, &token, &rule()).await.is_ok());
    issuer.state.feed_up.store(false, Ordering::SeqCst);
    let took = eventually("503", async || {
        check(&v, &token, &rule()).await == Err((DenialKind::Unavailable, "feed_stale"))
    })
    .await;
    assert!(
        took >= Duration::from_millis(1500),
        "not before the limit: {took:?}"
    );
    let d = v
        .check(
            &Presented {
                method: "GET",
                url: URL,
                headers: &token,
                client_certificate: None,
            },
            &rule(),
        )
        .await
        .unwrap_err();
    assert_eq!(d.status().as_u16(), 503);
    // A forged token is still 401, not 503: the signature is checked first.
    let forged = headers("Bearer", &sign(&key(), &claims(&issuer.issuer)));
    assert_eq!(
        check(&v, &forged, &rule()).await.unwrap_err().0,
        DenialKind::InvalidToken
    );
    issuer.state.feed_up.store(true, Ordering::SeqCst);
    eventually("recovery", async || {
        check(&v, &token, &rule()).await.is_ok()
    })
    .await;
}

#[tokio::test]
async fn keys_follow_cache_control_unknown_kids_and_survive_an_issuer_outage() {
    let issuer = FakeIssuer::start().await;
    let (k1, k2) = (key(), key());
    issuer.publish(&[&k1]);
    let mut config = issuer.config();
    config.feed = None;
    let v = started(vec![config], Duration::from_secs(60)).await;
    let fetches = || issuer.state.jwks_fetches.load(Ordering::SeqCst);
    assert_eq!(fetches(), 1);

    // Rotation: a token signed by a key published after our fetch verifies at once.
    issuer.publish(&[&k1, &k2]);
    let t2 = headers("Bearer", &sign(&k2, &claims(&issuer.issuer)));
    assert!(check(&v, &t2, &rule()).await.is_ok());
    assert_eq!(fetches(), 2);
    // Unknown kids cannot make us fetch more than once per interval.
    for _ in 0..20 {
        let forged = headers("Bearer", &sign(&key(), &claims(&issuer.issuer)));
        assert_eq!(
            check(&v, &forged, &rule()).await.unwrap_err().1,
            "unknown_key"
        );
    }
    assert!(fetches() <= 3, "{}", fetches());

    // The issuer goes down: the keys in hand keep working.
    issuer.state.jwks_up.store(false, Ordering::SeqCst);
    issuer.publish(&[]);
    let t1 = headers("Bearer", &sign(&k1, &claims(&issuer.issuer)));
    assert!(check(&v, &t1, &rule()).await.is_ok());

    // Nothing else was fetched: the max-age of an hour holds.
    assert!(fetches() <= 3, "{}", fetches());
}

#[tokio::test]
async fn a_short_max_age_is_honoured() {
    let issuer = FakeIssuer::start().await;
    let (k1, k2) = (key(), key());
    issuer.publish(&[&k1, &k2]);
    *issuer.state.jwks_cache_control.lock().unwrap() = "public, max-age=2".into();
    let mut config = issuer.config();
    config.feed = None;
    let v = started(vec![config], Duration::from_secs(60)).await;
    let t1 = headers("Bearer", &sign(&k1, &claims(&issuer.issuer)));
    assert!(check(&v, &t1, &rule()).await.is_ok());
    // k1 is withdrawn (a compromised key revoked): within max-age it stops verifying, even
    // though the verified token is cached.
    issuer.publish(&[&k2]);
    let took = eventually("k1 withdrawn", async || {
        check(&v, &t1, &rule()).await.is_err()
    })
    .await;
    assert!(took <= Duration::from_secs(4), "{took:?}");
    let fetches = issuer.state.jwks_fetches.load(Ordering::SeqCst);
    assert!((2..=4).contains(&fetches), "{fetches}");
    let t2 = headers("Bearer", &sign(&k2, &claims(&issuer.issuer)));
    assert!(check(&v, &t2, &rule()).await.is_ok());
}

fn dpop_proof(k: &SigningKey, method: &str, url: &str, token: &str, jti: &str) -> String {
    let ath = b64::encode(warrant_jose::crypto::sha256(token.as_bytes()));
    let claims = json!({"htm": method, "htu": url, "iat": now(), "jti": jti, "ath": ath});
    sign_with_embedded_jwk(k, "dpop+jwt", claims.to_string().as_bytes()).unwrap()
}

#[tokio::test]
async fn sender_binding_dpop_and_certificates() {
    let issuer = FakeIssuer::start().await;
    let k = key();
    issuer.publish(&[&k]);
    let v = started(vec![issuer.config()], Duration::from_secs(60)).await;
    let client = key();
    let jkt = client.public_jwk().thumbprint().unwrap();
    let mut c = claims(&issuer.issuer);
    c["cnf"] = json!({"jkt": jkt});
    let token = sign(&k, &c);

    // Sent as Bearer: refused, with a DPoP challenge.
    let d = v
        .check(
            &Presented {
                method: "GET",
                url: URL,
                headers: &headers("Bearer", &token),
                client_certificate: None,
            },
            &rule(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (d.kind, d.scheme, d.reason),
        (
            DenialKind::InvalidToken,
            Scheme::Dpop,
            "dpop_bound_as_bearer"
        )
    );
    assert!(
        d.challenges(None)[0].starts_with("DPoP "),
        "{:?}",
        d.challenges(None)
    );

    let with_proof = |proof: &str| {
        let mut h = headers("DPoP", &token);
        h.insert("dpop", HeaderValue::from_str(proof).unwrap());
        h
    };
    let good = with_proof(&dpop_proof(&client, "GET", URL, &token, "p1"));
    assert!(check(&v, &good, &rule()).await.is_ok());
    assert_eq!(
        check(&v, &good, &rule()).await,
        Err((DenialKind::InvalidDpopProof, "replay"))
    );
    let cases = [
        (dpop_proof(&client, "POST", URL, &token, "p2"), "htm"),
        (
            dpop_proof(
                &client,
                "GET",
                "https://orders.example.com/other",
                &token,
                "p3",
            ),
            "htu",
        ),
        (
            dpop_proof(&client, "GET", URL, "another token", "p4"),
            "ath",
        ),
        (dpop_proof(&key(), "GET", URL, &token, "p5"), "jkt"),
    ];
    for (proof, reason) in cases {
        assert_eq!(
            check(&v, &with_proof(&proof), &rule()).await,
            Err((DenialKind::InvalidDpopProof, reason))
        );
    }
    assert_eq!(
        check(&v, &headers("DPoP", &token), &rule()).await,
        Err((DenialKind::InvalidDpopProof, "proof_missing"))
    );
    // A bearer token sent with the DPoP scheme.
    let bearer = sign(&k, &claims(&issuer.issuer));
    let mut h = headers("DPoP", &bearer);
    h.insert(
        "dpop",
        HeaderValue::from_str(&dpop_proof(&client, "GET", URL, &bearer, "p6")).unwrap(),
    );
    assert_eq!(
        check(&v, &h, &rule()).await,
        Err((DenialKind::InvalidToken, "not_dpop_bound"))
    );

    // Certificate-bound.
    let cert = b"a DER certificate".to_vec();
    let mut c = claims(&issuer.issuer);
    c["cnf"] = json!({"x5t#S256": warrant_jose::x5t_s256(&cert)});
    let bound = headers("Bearer", &sign(&k, &c));
    assert!(check_with(&v, &bound, &rule(), Some(&cert)).await.is_ok());
    assert_eq!(
        check_with(&v, &bound, &rule(), None).await,
        Err((DenialKind::InvalidToken, "certificate"))
    );
    assert_eq!(
        check_with(&v, &bound, &rule(), Some(b"another")).await,
        Err((DenialKind::InvalidToken, "certificate"))
    );
}

#[tokio::test]
async fn the_tower_layer_puts_the_token_in_extensions() {
    use axum::{Extension, Router, body::Body, routing::get};
    use tower::ServiceExt;
    let issuer = FakeIssuer::start().await;
    let k = key();
    issuer.publish(&[&k]);
    let v = started(vec![issuer.config()], Duration::from_secs(60)).await;
    let app = Router::new()
        .route(
            "/orders",
            get(|Extension(t): Extension<warrant_verify::Verified>| async move { t.sub.clone() }),
        )
        .layer(
            warrant_verify::VerifyLayer::new(v, rule())
                .resource_metadata("https://gw/.well-known/oauth-protected-resource"),
        );
    let token = sign(&k, &claims(&issuer.issuer));
    let ok = app
        .clone()
        .oneshot(
            http::Request::get("/orders")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body = axum::body::to_bytes(ok.into_body(), 1024).await.unwrap();
    assert_eq!(&body[..], b"sa_1");
    let denied = app
        .oneshot(http::Request::get("/orders").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    let challenges: Vec<&str> = denied
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        challenges,
        [
            "Bearer realm=\"warrant\", resource_metadata=\"https://gw/.well-known/oauth-protected-resource\"",
            "DPoP realm=\"warrant\", resource_metadata=\"https://gw/.well-known/oauth-protected-resource\", algs=\"ES256 EdDSA RS256 PS256\"",
        ]
    );
}
