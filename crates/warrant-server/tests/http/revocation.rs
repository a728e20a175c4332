//! Revocation: RFC 7009 by a token's owner, the admin API, watermarks (their second, and the
//! token endpoint's pause), the feed (`/revocations`: snapshot, paging, tenants, 410) and its
//! event stream (`/revocations/stream`: events, resuming, the connection cap, shutdown).

use std::time::Duration;

use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use warrant_server::{AppState, Limits, TrustedProxies};

use crate::harness::{Env, Options, T0, basic_header};

const AUD: &str = "https://deploy.internal";

type Creds = (String, String);

fn pair(c: &Creds) -> (&str, &str) {
    (&c.0, &c.1)
}

/// Two accounts of `default`: the token owner and a second client (verifier / resource server).
async fn setup_with(opts: Options) -> (Env, Creds, Creds) {
    let env = Env::with(opts).await;
    let owner = env.account("default", "ci", AUD, &["deploy"]).await;
    let other = env.account("default", "api", AUD, &["x"]).await;
    (env, owner, other)
}

async fn setup() -> (Env, Creds, Creds) {
    setup_with(Options::default()).await
}

async fn jti_of(env: &Env, token: &str) -> String {
    env.verify("default", token, AUD).await["jti"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn admin_revoke(env: &Env, tenant: &str, body: Value) -> Value {
    let r = env
        .admin(
            Method::POST,
            &format!("/admin/v1/tenants/{tenant}/revocations"),
            Some(body),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

/// `GET /t/{tenant}/revocations{query}` with Basic credentials; 200 expected.
async fn feed(env: &Env, tenant: &str, reader: (&str, &str), query: &str) -> Value {
    let r = env
        .get_basic(&format!("/t/{tenant}/revocations{query}"), reader)
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert!(body["next_cursor"].is_string(), "{body}");
    body
}

fn assert_problem(r: &crate::harness::Resp, status: u16) -> Value {
    assert_eq!(
        r.status.as_u16(),
        status,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let p = r.json();
    assert_eq!(p["status"], status);
    assert!(p["title"].is_string() && p["detail"].is_string(), "{p}");
    p
}

// --- RFC 7009 -------------------------------------------------------------------------------

#[tokio::test]
async fn a_client_revokes_its_own_token_at_once() {
    let (env, owner, other) = setup().await;
    let token = env.token_for("default", &owner.0, &owner.1).await;
    let keep = env.token_for("default", &owner.0, &owner.1).await;
    let r = env.revoke("default", pair(&owner), &token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    assert!(!env.is_active("default", pair(&other), &token).await);
    assert!(
        env.is_active("default", pair(&other), &keep).await,
        "one token, not the account"
    );
    // Again: still 200, nothing new in the feed.
    assert_eq!(
        env.revoke("default", pair(&owner), &token).await.status,
        StatusCode::OK
    );
    let page = feed(&env, "default", pair(&other), "").await;
    assert_eq!(
        page["entries"],
        json!([{"type": "jti", "jti": jti_of(&env, &token).await, "exp": T0 + 600}])
    );
    let m = String::from_utf8(env.get("/metrics").await.body).unwrap();
    assert!(
        m.contains("warrant_revocations_total{tenant=\"default\",source=\"client\"} 1"),
        "{m}"
    );
    // client_secret_post works as well.
    let third = env.token_for("default", &owner.0, &owner.1).await;
    let r = env
        .post_form(
            "/t/default/revoke",
            None,
            &format!(
                "token={third}&token_type_hint=access_token&client_id={}&client_secret={}",
                owner.0, owner.1
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!env.is_active("default", pair(&other), &third).await);
}

#[tokio::test]
async fn another_clients_token_is_refused_and_stays_active() {
    let (env, owner, other) = setup().await;
    let token = env.token_for("default", &owner.0, &owner.1).await;
    env.revoke("default", pair(&other), &token)
        .await
        .assert_oauth_error(400, "unauthorized_client");
    assert!(env.is_active("default", pair(&other), &token).await);
    let page = feed(&env, "default", pair(&other), "").await;
    assert_eq!(page["entries"], json!([]));
}

#[tokio::test]
async fn unknown_invalid_expired_and_foreign_tokens_get_200_and_change_nothing() {
    let (env, owner, other) = setup().await;
    env.create_tenant("acme").await;
    let acme = env.account("acme", "svc", AUD, &["x"]).await;
    let acme_token = env.token_for("acme", &acme.0, &acme.1).await;
    let token = env.token_for("default", &owner.0, &owner.1).await;
    let flipped = {
        let (signed, sig) = token.rsplit_once('.').unwrap();
        let mut sig = warrant_jose::b64::decode(sig).unwrap();
        sig[3] ^= 0x80;
        format!("{signed}.{}", warrant_jose::b64::encode(&sig))
    };
    for t in ["garbage", "a.b.c", flipped.as_str(), acme_token.as_str()] {
        let r = env.revoke("default", pair(&owner), t).await;
        assert_eq!(r.status, StatusCode::OK, "{t}");
        assert!(r.body.is_empty());
    }
    assert!(env.is_active("acme", pair(&acme), &acme_token).await);
    assert!(env.is_active("default", pair(&other), &token).await);
    env.clock.advance_secs(600);
    assert_eq!(
        env.revoke("default", pair(&owner), &token).await.status,
        StatusCode::OK,
        "expired"
    );
    assert_eq!(
        feed(&env, "default", pair(&other), "").await["entries"],
        json!([])
    );
    assert_eq!(
        feed(&env, "acme", pair(&acme), "").await["entries"],
        json!([])
    );
}

#[tokio::test]
async fn revocation_needs_client_authentication() {
    let (env, owner, _) = setup().await;
    let token = env.token_for("default", &owner.0, &owner.1).await;
    let form = format!("token={token}");
    env.post_form("/t/default/revoke", None, &form)
        .await
        .assert_oauth_error(401, "invalid_client");
    let r = env
        .post_form("/t/default/revoke", Some((&owner.0, "wrt_wrong")), &form)
        .await;
    r.assert_oauth_error(401, "invalid_client");
    assert!(r.header("www-authenticate").is_some());
    env.post_form("/t/default/revoke", Some(pair(&owner)), "")
        .await
        .assert_oauth_error(400, "invalid_request");
    let r = env.get("/t/default/revoke").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("POST"));
    assert!(env.is_active("default", pair(&owner), &token).await);
}

// --- Watermarks -----------------------------------------------------------------------------

#[tokio::test]
async fn a_watermark_revokes_its_own_second_and_pauses_issuance_for_it() {
    let (env, owner, other) = setup().await;
    env.clock.advance_millis(250);
    let before = env.token_for("default", &owner.0, &owner.1).await;
    let entry = admin_revoke(&env, "default", json!({"type": "subject", "sub": owner.0})).await;
    assert_eq!(entry["not_before"], T0);
    assert!(
        !env.is_active("default", pair(&other), &before).await,
        "iat = not_before is revoked"
    );
    // The rest of the second issues nothing (a token now would carry iat = not_before).
    env.clock.advance_millis(700);
    env.token_request(
        "default",
        Some(pair(&owner)),
        "grant_type=client_credentials",
    )
    .await
    .assert_oauth_error(503, "temporarily_unavailable");
    env.clock.advance_millis(50);
    let after = env.token_for("default", &owner.0, &owner.1).await;
    assert_eq!(env.verify("default", &after, AUD).await["iat"], T0 + 1);
    assert!(env.is_active("default", pair(&other), &after).await);
    assert!(!env.is_active("default", pair(&other), &before).await);
    // Other accounts were never paused.
    env.token_for("default", &other.0, &other.1).await;
}

#[tokio::test]
async fn admin_revocations_are_checked() {
    let (env, owner, _) = setup().await;
    let path = "/admin/v1/tenants/default/revocations";
    for (body, status) in [
        (json!({"type": "jti"}), 400),
        (json!({"type": "nope", "jti": "x"}), 400),
        (json!({"type": "jti", "jti": "x", "colour": "red"}), 400),
        (json!({"type": "subject", "sub": "x", "exp": 5}), 400),
        (json!({"jti": "x"}), 400),
        (json!({"type": "jti", "jti": ""}), 422),
        (json!({"type": "jti", "jti": "a b"}), 422),
        (json!({"type": "jti", "jti": "x".repeat(257)}), 422),
        (
            json!({"type": "subject", "sub": owner.0, "not_before": T0 + 10}),
            422,
        ),
    ] {
        let r = env.admin(Method::POST, path, Some(body.clone())).await;
        assert_problem(&r, status);
    }
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/nope/revocations",
            Some(json!({"type": "jti", "jti": "x"})),
        )
        .await;
    assert_problem(&r, 404);
    // Unauthenticated.
    let r = env
        .send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json!({"type": "jti", "jti": "x"}).to_string()))
                .unwrap(),
        )
        .await;
    assert_problem(&r, 401);
    // A past watermark and an explicit exp are kept as given.
    let e = admin_revoke(
        &env,
        "default",
        json!({"type": "subject", "sub": "anything", "not_before": T0 - 100}),
    )
    .await;
    assert_eq!(e["not_before"], T0 - 100);
    let e = admin_revoke(
        &env,
        "default",
        json!({"type": "jti", "jti": "j-1", "exp": T0 + 5}),
    )
    .await;
    assert_eq!(e["exp"], T0 + 5);
    assert_eq!(
        e["created_at"],
        warrant_core::Timestamp::from_secs(T0).to_rfc3339()
    );
    // The admin list shows them, oldest first, with cursors.
    let list = env.admin(Method::GET, path, None).await.json();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["sub"], "anything");
    assert_eq!(items[1]["jti"], "j-1");
    assert_eq!(list["next_cursor"], Value::Null);
    let page = env
        .admin(Method::GET, &format!("{path}?limit=1"), None)
        .await
        .json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let next = page["next_cursor"].as_str().unwrap();
    let rest = env
        .admin(Method::GET, &format!("{path}?limit=1&cursor={next}"), None)
        .await
        .json();
    assert_eq!(rest["items"][0]["jti"], "j-1");
    let r = env
        .admin(Method::GET, &format!("{path}?cursor=%25%25"), None)
        .await;
    assert_problem(&r, 400);
    // Documented in the OpenAPI document.
    let doc = env.get("/admin/v1/openapi.json").await.json();
    let op = &doc["paths"]["/admin/v1/tenants/{tenant}/revocations"];
    assert_eq!(op["post"]["operationId"], "createRevocation");
    assert_eq!(op["get"]["operationId"], "listRevocations");
    let m = String::from_utf8(env.get("/metrics").await.body).unwrap();
    assert!(
        m.contains("warrant_revocations_total{tenant=\"default\",source=\"admin\"} 2"),
        "{m}"
    );
}

// --- The feed -------------------------------------------------------------------------------

#[tokio::test]
async fn the_feed_pages_through_both_kinds_and_only_its_tenant() {
    let (env, owner, other) = setup().await;
    env.create_tenant("acme").await;
    let acme = env.account("acme", "svc", AUD, &["x"]).await;
    let empty = feed(&env, "default", pair(&other), "").await;
    assert_eq!(empty["entries"], json!([]));

    let token = env.token_for("default", &owner.0, &owner.1).await;
    let jti = jti_of(&env, &token).await;
    env.revoke("default", pair(&owner), &token).await;
    admin_revoke(&env, "acme", json!({"type": "jti", "jti": "acme-1"})).await;
    admin_revoke(&env, "default", json!({"type": "subject", "sub": owner.0})).await;
    env.clock.advance_secs(1);
    let acme_token = env.token_for("acme", &acme.0, &acme.1).await;
    env.revoke("acme", pair(&acme), &acme_token).await;
    admin_revoke(
        &env,
        "default",
        json!({"type": "jti", "jti": "j-3", "exp": T0 + 99}),
    )
    .await;

    let all = feed(&env, "default", pair(&other), "").await;
    let expected = json!([
        {"type": "jti", "jti": jti, "exp": T0 + 600},
        {"type": "subject", "sub": owner.0, "not_before": T0},
        {"type": "jti", "jti": "j-3", "exp": T0 + 99},
    ]);
    assert_eq!(all["entries"], expected);
    // Paging one by one gives the same entries, then an empty page at the head.
    let mut seen = Vec::new();
    let mut cursor = empty["next_cursor"].as_str().unwrap().to_owned();
    loop {
        let p = feed(
            &env,
            "default",
            pair(&other),
            &format!("?after={cursor}&limit=1"),
        )
        .await;
        let entries = p["entries"].as_array().unwrap().clone();
        let next = p["next_cursor"].as_str().unwrap().to_owned();
        if entries.is_empty() {
            assert_eq!(next, cursor, "an empty page resumes where it was asked");
            break;
        }
        assert_ne!(next, cursor);
        seen.extend(entries);
        cursor = next;
    }
    assert_eq!(Value::Array(seen), expected);
    assert_eq!(cursor, all["next_cursor"].as_str().unwrap());
    // Any account of the tenant may read it, and another tenant sees only its own.
    assert_eq!(
        feed(&env, "default", pair(&owner), "").await["entries"],
        expected
    );
    let acme_feed = feed(&env, "acme", pair(&acme), "?limit=1000").await;
    let acme_entries = acme_feed["entries"].as_array().unwrap();
    assert_eq!(acme_entries.len(), 2);
    assert_eq!(acme_entries[0]["jti"], "acme-1");
    assert_eq!(
        acme_entries[1]["jti"],
        jti_of_tenant(&env, "acme", &acme_token).await
    );
    // limit is clamped, not refused.
    assert_eq!(
        feed(&env, "default", pair(&other), "?limit=0").await["entries"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        feed(&env, "default", pair(&other), "?limit=5000").await["entries"],
        expected
    );
}

async fn jti_of_tenant(env: &Env, tenant: &str, token: &str) -> String {
    env.verify(tenant, token, AUD).await["jti"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_feed_refuses_strangers_and_bad_cursors() {
    let (env, owner, other) = setup().await;
    env.create_tenant("acme").await;
    let acme = env.account("acme", "svc", AUD, &["x"]).await;
    for path in ["/t/default/revocations", "/t/default/revocations/stream"] {
        let r = env.get(path).await;
        let p = assert_problem(&r, 401);
        assert!(p["detail"].as_str().unwrap().contains("Basic"));
        assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
        let r = env.get_basic(path, (&owner.0, "wrt_wrong")).await;
        assert_problem(&r, 401);
        let r = env.get_basic(path, pair(&acme)).await;
        assert_problem(&r, 401);
        let r = env
            .send(
                Request::get(path)
                    .header(
                        header::AUTHORIZATION,
                        format!("Bearer {}", env.admin_token().await),
                    )
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_problem(&r, 401);
        for q in [
            "after=abc",
            "after=-1",
            "after=1.5",
            "limit=x",
            "after=1&after=2",
        ] {
            let r = env.get_basic(&format!("{path}?{q}"), pair(&other)).await;
            assert_problem(&r, 400);
        }
        // A cursor from beyond the head (another deployment, a restored database).
        let r = env
            .get_basic(&format!("{path}?after=999999999"), pair(&other))
            .await;
        let p = assert_problem(&r, 410);
        assert!(p["detail"].as_str().unwrap().contains("snapshot"), "{p}");
        let r = env
            .get_basic(&format!("/t/nope/{}", &path[11..]), pair(&other))
            .await;
        assert_problem(&r, 404);
    }
    // A disabled account may not read the feed.
    let path = format!("/admin/v1/tenants/default/service-accounts/{}", owner.0);
    env.admin(Method::PATCH, &path, Some(json!({"enabled": false})))
        .await;
    let r = env.get_basic("/t/default/revocations", pair(&owner)).await;
    assert_problem(&r, 401);
}

#[tokio::test]
async fn a_cursor_older_than_pruning_gets_410_and_a_snapshot_recovers() {
    let env = Env::new().await;
    let r = env
        .admin(
            Method::POST,
            "/admin/v1/tenants/default/service-accounts",
            Some(json!({"name": "short", "default_audience": AUD,
                "grants": [{"audience": AUD, "scopes": ["x"]}],
                "default_lifetime_seconds": 60})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let secret = env.add_secret("default", &id, "initial").await;
    let reader = env.account("default", "reader", AUD, &["x"]).await;
    let old = feed(&env, "default", pair(&reader), "").await["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();

    let token = env.token_for("default", &id, &secret).await;
    env.revoke("default", (&id, &secret), &token).await;
    let page = feed(&env, "default", pair(&reader), &format!("?after={old}")).await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    let latest = page["next_cursor"].as_str().unwrap().to_owned();

    // Kept until a minute past the token's exp.
    env.clock.advance_secs(60 + 60);
    assert_eq!(env.warrant.prune_revocations().await.unwrap(), 0);
    env.clock.advance_secs(1);
    assert_eq!(env.warrant.prune_revocations().await.unwrap(), 1);

    for path in ["/t/default/revocations", "/t/default/revocations/stream"] {
        let r = env
            .get_basic(&format!("{path}?after={old}"), pair(&reader))
            .await;
        let p = assert_problem(&r, 410);
        assert!(p["detail"].as_str().unwrap().contains("snapshot"), "{p}");
    }
    // The snapshot is empty now, and resuming from the latest cursor still works.
    let snap = feed(&env, "default", pair(&reader), "").await;
    assert_eq!(snap["entries"], json!([]));
    feed(&env, "default", pair(&reader), &format!("?after={latest}")).await;
    feed(
        &env,
        "default",
        pair(&reader),
        &format!("?after={}", snap["next_cursor"].as_str().unwrap()),
    )
    .await;
}

// --- The event stream -----------------------------------------------------------------------

#[derive(Debug, PartialEq)]
struct Event {
    id: String,
    event: String,
    data: Value,
}

/// Reads server-sent events from a response body.
struct Events {
    body: Body,
    buf: String,
}

impl Events {
    fn new(resp: http::Response<Body>) -> Self {
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h["content-type"], "text/event-stream");
        assert_eq!(h["cache-control"], "no-cache");
        Self {
            body: resp.into_body(),
            buf: String::new(),
        }
    }

    /// The next event within `wait` (comments are skipped), or `None`.
    async fn next(&mut self, wait: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut id = None;
                let mut event = None;
                let mut data = None;
                for line in block.lines() {
                    if line.is_empty() || line.starts_with(':') {
                        continue;
                    }
                    let (k, v) = line.split_once(": ").unwrap();
                    match k {
                        "id" => id = Some(v.to_owned()),
                        "event" => event = Some(v.to_owned()),
                        "data" => data = Some(serde_json::from_str(v).unwrap()),
                        other => panic!("unexpected field {other}"),
                    }
                }
                if let (Some(id), Some(event), Some(data)) = (id, event, data) {
                    return Some(Event { id, event, data });
                }
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame()).await;
            match frame {
                Err(_) => return None,
                Ok(None) => return None,
                Ok(Some(f)) => {
                    let f = f.unwrap();
                    if let Some(d) = f.data_ref() {
                        self.buf.push_str(std::str::from_utf8(d).unwrap());
                    }
                }
            }
        }
    }

    /// Whether the stream ended (within `wait`).
    async fn ended(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return false,
                Ok(None) => return true,
                Ok(Some(_)) => {}
            }
        }
    }
}

const SOON: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);

async fn open_stream(
    env: &Env,
    reader: (&str, &str),
    last_event_id: Option<&str>,
) -> http::Response<Body> {
    let mut req = Request::get("/t/default/revocations/stream")
        .header(header::AUTHORIZATION, basic_header(reader.0, reader.1));
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    env.app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_stream_delivers_revocations_and_resumes_from_last_event_id() {
    let (env, owner, other) = setup().await;
    // Something from before the stream opened is not replayed (no start point: new only).
    admin_revoke(&env, "default", json!({"type": "jti", "jti": "old"})).await;
    let mut events = Events::new(open_stream(&env, pair(&other), None).await);
    assert_eq!(events.next(QUIET).await, None);

    let token = env.token_for("default", &owner.0, &owner.1).await;
    env.revoke("default", pair(&owner), &token).await;
    let first = events.next(SOON).await.expect("the jti revocation");
    assert_eq!(first.event, "revocation");
    assert_eq!(
        first.data,
        json!({"type": "jti", "jti": jti_of(&env, &token).await, "exp": T0 + 600})
    );
    // Another tenant's revocation is not sent here.
    admin_revoke(&env, "system", json!({"type": "jti", "jti": "sys"})).await;
    let path = format!("/admin/v1/tenants/default/service-accounts/{}", owner.0);
    env.admin(Method::PATCH, &path, Some(json!({"enabled": false})))
        .await;
    let second = events.next(SOON).await.expect("the account's watermark");
    assert_eq!(
        second.data,
        json!({"type": "subject", "sub": owner.0, "not_before": T0})
    );
    assert!(
        second.id.parse::<i64>().unwrap() > first.id.parse::<i64>().unwrap(),
        "ids are cursors, increasing"
    );
    assert_eq!(events.next(QUIET).await, None);

    // Reconnecting with the first id gets exactly what came after it.
    drop(events);
    let mut again = Events::new(open_stream(&env, pair(&other), Some(&first.id)).await);
    assert_eq!(again.next(SOON).await.as_ref(), Some(&second));
    assert_eq!(again.next(QUIET).await, None);
    // And it keeps following.
    admin_revoke(&env, "default", json!({"type": "jti", "jti": "later"})).await;
    let third = again.next(SOON).await.unwrap();
    assert_eq!(third.data["jti"], "later");

    // The same from `after` (a snapshot's next_cursor), which Last-Event-ID beats.
    let snap = feed(&env, "default", pair(&other), "").await;
    assert_eq!(snap["entries"].as_array().unwrap().len(), 4);
    let resp = env
        .app
        .clone()
        .oneshot(
            Request::get(format!("/t/default/revocations/stream?after={}", second.id))
                .header(header::AUTHORIZATION, basic_header(&other.0, &other.1))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut from_after = Events::new(resp);
    assert_eq!(from_after.next(SOON).await, Some(third));
    assert_eq!(from_after.next(QUIET).await, None);
    let r = env
        .send(
            Request::get("/t/default/revocations/stream")
                .header(header::AUTHORIZATION, basic_header(&other.0, &other.1))
                .header("last-event-id", "x1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_problem(&r, 400);
}

#[tokio::test]
async fn stream_connections_are_capped_per_account() {
    let mut limits = Limits::unlimited();
    limits.feed_streams_per_account = 2;
    let (env, owner, other) = setup_with(Options {
        limits,
        ..Options::default()
    })
    .await;
    let a = open_stream(&env, pair(&other), None).await;
    let b = open_stream(&env, pair(&other), None).await;
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    let r = env
        .get_basic("/t/default/revocations/stream", pair(&other))
        .await;
    assert_problem(&r, 429);
    assert!(r.header("retry-after").is_some());
    // Per account: another one may still connect; pages are not capped.
    let c = open_stream(&env, pair(&owner), None).await;
    assert_eq!(c.status(), StatusCode::OK);
    feed(&env, "default", pair(&other), "").await;
    let m = String::from_utf8(env.get("/metrics").await.body).unwrap();
    assert!(m.contains("warrant_revocation_feed_streams 3"), "{m}");
    // A closed stream gives its slot back.
    drop(a);
    let d = open_stream(&env, pair(&other), None).await;
    assert_eq!(d.status(), StatusCode::OK);
    drop((b, c, d));
    let m = String::from_utf8(env.get("/metrics").await.body).unwrap();
    assert!(m.contains("warrant_revocation_feed_streams 0"), "{m}");
}

/// Over a real socket: events arrive as they happen, and shutting the server down ends the
/// stream instead of holding the drain open until its timeout.
#[tokio::test]
async fn a_stream_over_a_socket_ends_at_shutdown() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let (env, owner, other) = setup().await;
    let state = AppState::new(
        env.warrant.clone(),
        Limits::unlimited(),
        TrustedProxies::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(warrant_server::serve(
        listener,
        warrant_server::app(state.clone()),
        Some(state),
        async move {
            let _ = stop_rx.await;
        },
    ));

    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /t/default/revocations/stream HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\nauthorization: {}\r\n\r\n",
        basic_header(&other.0, &other.1)
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut received = String::new();
    read_until(&mut conn, &mut received, "\r\n\r\n").await;
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(
        received.contains("content-type: text/event-stream"),
        "{received}"
    );
    let token = env.token_for("default", &owner.0, &owner.1).await;
    env.revoke("default", pair(&owner), &token).await;
    read_until(&mut conn, &mut received, "event: revocation").await;
    assert!(received.contains(&jti_of(&env, &token).await), "{received}");

    let _ = stop_tx.send(());
    // The server returns long before its 30 s drain timeout, and the connection is closed.
    tokio::time::timeout(SOON, server)
        .await
        .expect("serve returns promptly")
        .unwrap()
        .unwrap();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        let n = tokio::time::timeout_at(deadline, conn.read(&mut buf))
            .await
            .expect("the connection closes")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
    }
}

/// Reads from `conn` into `received` until it contains `needle`.
async fn read_until(conn: &mut tokio::net::TcpStream, received: &mut String, needle: &str) {
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + SOON;
    while !received.contains(needle) {
        let n = tokio::time::timeout_at(deadline, conn.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in {received:?}"))
            .unwrap();
        assert!(n > 0, "closed before {needle:?}: {received:?}");
        received.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
}

#[tokio::test]
async fn a_stream_ends_when_streams_are_closed() {
    let (env, _, other) = setup().await;
    let state = AppState::new(
        env.warrant.clone(),
        Limits::unlimited(),
        TrustedProxies::default(),
    );
    let app = warrant_server::app(state.clone());
    let resp = app
        .oneshot(
            Request::get("/t/default/revocations/stream")
                .header(header::AUTHORIZATION, basic_header(&other.0, &other.1))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut events = Events::new(resp);
    assert!(!events.ended(QUIET).await);
    state.close_streams();
    assert!(events.ended(SOON).await);
}
