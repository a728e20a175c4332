//! Signing-key lifecycle (docs/key-rotation.md) on an injected clock: publish before use, keep
//! until expiry, rotation under load, `--now`, revocation, scheduled rotation, and a new
//! algorithm from the next key. The engine switches keys when the clock passes the stored
//! times, with no reload: nothing here calls one.

use std::collections::HashMap;

use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use warrant_core::Timestamp;
use warrant_core::audit::action;

use super::harness::{Env, Options, basic_header, independent};

const AUD: &str = "https://api.example.com";
/// `jwks_max_age` in the harness, and the skew the rules add.
const J: i64 = 300;
const S: i64 = 60;
/// `max_token_lifetime` in these tests.
const L: i64 = 900;

async fn env() -> Env {
    Env::with(Options {
        max_token_lifetime: L as u64,
        ..Options::default()
    })
    .await
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn now(env: &Env) -> i64 {
    env.warrant.now().secs()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn rotate(env: &Env, tenant: &str, immediate: bool) -> (StatusCode, Value) {
    let r = env
        .admin(
            Method::POST,
            &format!("/admin/v1/tenants/{tenant}/keys/rotate"),
            Some(json!({ "now": immediate })),
        )
        .await;
    (r.status, r.json())
}

async fn keys(env: &Env, tenant: &str) -> Vec<Value> {
    let r = env
        .admin(
            Method::GET,
            &format!("/admin/v1/tenants/{tenant}/keys"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()["items"].as_array().unwrap().clone()
}

fn key<'a>(list: &'a [Value], kid: &str) -> &'a Value {
    list.iter().find(|k| k["kid"] == kid).unwrap()
}

fn at(v: &Value) -> i64 {
    Timestamp::parse_rfc3339(v.as_str().unwrap())
        .unwrap()
        .secs()
}

/// What a careful observer of the issuer sees: when each kid first appeared in the JWKS, and
/// every token issued so far.
struct Watch {
    first_seen: HashMap<String, i64>,
    /// Kids published before the watch began (the bootstrap key: no verifier predates it).
    initial: Vec<String>,
    tokens: Vec<(String, String, i64)>,
}

impl Watch {
    async fn start(env: &Env, tenant: &str) -> Self {
        let jwks = env.jwks(tenant).await;
        let t = now(env);
        Self {
            first_seen: kids(&jwks).into_iter().map(|k| (k, t)).collect(),
            initial: kids(&jwks),
            tokens: Vec::new(),
        }
    }

    /// Fetches the JWKS now; every token still alive must verify against it (ours and
    /// jsonwebtoken).
    async fn observe(&mut self, env: &Env, tenant: &str) {
        let jwks = env.jwks(tenant).await;
        let t = now(env);
        for k in kids(&jwks) {
            self.first_seen.entry(k).or_insert(t);
        }
        for (token, kid, exp) in &self.tokens {
            if *exp <= t {
                continue;
            }
            assert!(
                kids(&jwks).contains(kid),
                "at +{}s, key {kid} left the JWKS while a token it signed lives until +{}s",
                t - T0,
                exp - T0
            );
            independent::ours(token, &jwks);
            assert!(independent::try_jsonwebtoken(token, &jwks));
        }
    }

    /// Gets a token now and records it after checking publish-before-use: its key was in the
    /// JWKS at least `J` before (so every verifier's cache has it), unless it predates the
    /// watch. Returns the token's kid.
    async fn issue(&mut self, env: &Env, tenant: &str, client: (&str, &str)) -> String {
        let token = env.token_for(tenant, client.0, client.1).await;
        let t = now(env);
        let kid = kid_of(&token);
        if !self.initial.contains(&kid) {
            let seen = *self
                .first_seen
                .get(&kid)
                .unwrap_or_else(|| panic!("token signed by {kid}, never seen in the JWKS"));
            assert!(
                seen + J <= t,
                "key {kid} signed at +{}s but was first published at +{}s (< J = {J}s earlier)",
                t - T0,
                seen - T0
            );
        }
        let claims = env.verify(tenant, &token, AUD).await;
        let exp = claims["exp"].as_i64().unwrap();
        assert!(exp - t <= L, "no token outlives max_token_lifetime");
        self.tokens.push((token, kid.clone(), exp));
        kid
    }
}

const T0: i64 = super::harness::T0;

#[tokio::test]
async fn keys_are_published_before_use_and_kept_until_every_token_expires() {
    let env = env().await;
    let (id, secret) = env.account("default", "worker", AUD, &["read"]).await;
    // Tokens as long-lived as any may be, so that "kept until expiry" is tight.
    let r = env
        .admin(
            Method::PATCH,
            &format!("/admin/v1/tenants/default/service-accounts/{id}"),
            Some(json!({ "default_lifetime_seconds": L, "max_lifetime_seconds": L })),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let mut w = Watch::start(&env, "default").await;
    let first = w.initial.clone();
    assert_eq!(first.len(), 1);
    let step = 30;
    // The third rotation comes while the second's key still waits: it returns that key.
    let rotations_at = [60, 1200, 1500, 2700];
    let end = 2700 + J + S + L + S + 2 * step;
    let mut signed_by: Vec<String> = Vec::new();
    let mut waiting: Option<String> = None;
    let mut t = 0;
    while t <= end {
        if rotations_at.contains(&t) {
            let before = keys(&env, "default").await;
            let (status, k) = rotate(&env, "default", false).await;
            let kid = k["kid"].as_str().unwrap().to_owned();
            if let Some(w) = &waiting {
                assert_eq!(status, StatusCode::OK, "{k}");
                assert_eq!(&kid, w, "rotating while a key waits returns it");
            } else {
                assert_eq!(status, StatusCode::CREATED, "{k}");
                assert_eq!(k["state"], "next");
                assert_eq!(at(&k["created_at"]), now(&env));
                assert_eq!(at(&k["activates_at"]), now(&env) + J + S);
                let after = keys(&env, "default").await;
                let active = before.iter().find(|k| k["state"] == "active").unwrap();
                let old = key(&after, active["kid"].as_str().unwrap());
                assert_eq!(at(&old["retires_at"]), now(&env) + J + S);
                assert_eq!(at(&old["removed_at"]), now(&env) + J + S + L + S);
                waiting = Some(kid);
            }
        }
        w.observe(&env, "default").await;
        let kid = w.issue(&env, "default", (&id, &secret)).await;
        if waiting.as_ref() == Some(&kid) {
            waiting = None;
        }
        if signed_by.last() != Some(&kid) {
            signed_by.push(kid);
        }
        env.clock.advance_secs(step);
        t += step;
    }
    assert_eq!(
        signed_by.len(),
        4,
        "three keys succeeded the first: {signed_by:?}"
    );
    assert_eq!(signed_by[0], first[0]);
    // Every retired key has been removed by now; the last one alone is published.
    w.observe(&env, "default").await;
    assert_eq!(kids(&env.jwks("default").await), vec![signed_by[3].clone()]);
    let states: Vec<(String, String)> = keys(&env, "default")
        .await
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().into(),
                k["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            (signed_by[3].clone(), "active".into()),
            (signed_by[2].clone(), "removed".into()),
            (signed_by[1].clone(), "removed".into()),
            (signed_by[0].clone(), "removed".into()),
        ]
    );
}

/// Token requests in flight while the key changes (`--now`, and a normal rotation's key
/// activating as the clock passes its time) all get tokens that verify against the JWKS
/// fetched afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_in_a_burst_of_token_requests_leaves_no_token_unverifiable() {
    let env = env().await;
    let (id, secret) = env.account("default", "busy", AUD, &["read"]).await;
    let admin = env.admin_token().await;
    for immediate in [true, false] {
        if !immediate {
            let (status, _) = rotate(&env, "default", false).await;
            assert_eq!(status, StatusCode::CREATED);
            env.clock.advance_secs(J + S - 1);
        }
        let mut tasks = Vec::new();
        for i in 0..48 {
            if i == 16 {
                if immediate {
                    let app = env.app.clone();
                    let bearer = format!("Bearer {admin}");
                    tasks.push(tokio::spawn(async move {
                        let req = Request::post("/admin/v1/tenants/default/keys/rotate")
                            .header(header::CONTENT_TYPE, "application/json")
                            .header(header::AUTHORIZATION, bearer)
                            .body(axum::body::Body::from(r#"{"now":true}"#))
                            .unwrap();
                        let resp = app.oneshot(req).await.unwrap();
                        assert_eq!(resp.status(), StatusCode::CREATED);
                        None
                    }));
                } else {
                    let clock = env.clock.clone();
                    tasks.push(tokio::spawn(async move {
                        clock.advance_secs(2);
                        None
                    }));
                }
            }
            let app = env.app.clone();
            let auth = basic_header(&id, &secret);
            tasks.push(tokio::spawn(async move {
                let req = Request::post("/t/default/token")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header::AUTHORIZATION, auth)
                    .body(axum::body::Body::from("grant_type=client_credentials"))
                    .unwrap();
                let resp = app.oneshot(req).await.unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                let v: Value = serde_json::from_slice(&body).unwrap();
                Some(v["access_token"].as_str().unwrap().to_owned())
            }));
        }
        let mut tokens = Vec::new();
        for t in tasks {
            if let Some(token) = t.await.unwrap() {
                tokens.push(token);
            }
        }
        assert_eq!(tokens.len(), 48);
        let jwks = env.jwks("default").await;
        let mut signers: Vec<String> = tokens.iter().map(|t| kid_of(t)).collect();
        for token in &tokens {
            independent::ours(token, &jwks);
            assert!(independent::try_jsonwebtoken(token, &jwks));
        }
        signers.sort();
        signers.dedup();
        assert!(!signers.is_empty() && signers.len() <= 2, "{signers:?}");
        // After the burst, the newest key signs.
        let newest = keys(&env, "default").await[0]["kid"].clone();
        let token = env.token_for("default", &id, &secret).await;
        assert_eq!(
            kid_of(&token),
            newest.as_str().unwrap(),
            "immediate: {immediate}"
        );
    }
}

#[tokio::test]
async fn rotate_now_signs_with_the_new_key_at_once_and_old_tokens_still_verify() {
    let env = env().await;
    let (id, secret) = env.account("default", "worker", AUD, &["read"]).await;
    let old_token = env.token_for("default", &id, &secret).await;
    let old = kid_of(&old_token);
    env.clock.advance_secs(100);
    let (status, k) = rotate(&env, "default", true).await;
    assert_eq!(status, StatusCode::CREATED, "{k}");
    assert_eq!(k["state"], "active");
    assert_eq!(at(&k["activates_at"]), now(&env));
    let new = k["kid"].as_str().unwrap().to_owned();
    assert_ne!(new, old);

    let token = env.token_for("default", &id, &secret).await;
    assert_eq!(kid_of(&token), new, "the new key signs at once");
    env.verify("default", &token, AUD).await;
    env.verify("default", &old_token, AUD).await;
    let list = keys(&env, "default").await;
    assert_eq!(key(&list, &old)["state"], "retired");
    assert_eq!(at(&key(&list, &old)["retires_at"]), now(&env));
    assert_eq!(at(&key(&list, &old)["removed_at"]), now(&env) + L + S);

    // The old key stays published until its last token has expired, then goes.
    env.clock.advance_secs(L + S - 1);
    assert!(kids(&env.jwks("default").await).contains(&old));
    env.clock.advance_secs(1);
    assert_eq!(kids(&env.jwks("default").await), vec![new]);
}

#[tokio::test]
async fn revoking_a_key_unpublishes_it_at_once_and_a_replacement_signs() {
    let env = env().await;
    let (id, secret) = env.account("default", "worker", AUD, &["read"]).await;
    let token = env.token_for("default", &id, &secret).await;
    let compromised = kid_of(&token);
    assert!(env.is_active("default", (&id, &secret), &token).await);

    let r = env
        .admin(
            Method::POST,
            &format!("/admin/v1/tenants/default/keys/{compromised}/revoke"),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let list = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(key(&list, &compromised)["state"], "removed");
    let replacement = list.iter().find(|k| k["state"] == "active").unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    let jwks = env.jwks("default").await;
    assert_eq!(
        kids(&jwks),
        vec![replacement.clone()],
        "unpublished at once"
    );
    assert!(!independent::try_jsonwebtoken(&token, &jwks));
    assert!(
        !env.is_active("default", (&id, &secret), &token).await,
        "introspection refuses its tokens at once"
    );
    let fresh = env.token_for("default", &id, &secret).await;
    assert_eq!(kid_of(&fresh), replacement);
    env.verify("default", &fresh, AUD).await;
    assert!(env.is_active("default", (&id, &secret), &fresh).await);

    // Unknown kid: 404; already removed: 409.
    for (kid, want) in [
        ("no-such-kid", StatusCode::NOT_FOUND),
        (compromised.as_str(), StatusCode::CONFLICT),
    ] {
        let r = env
            .admin(
                Method::POST,
                &format!("/admin/v1/tenants/default/keys/{kid}/revoke"),
                None,
            )
            .await;
        assert_eq!(r.status, want, "{kid}");
    }

    // The revocation is in the tenant's audit log, with its replacement.
    for (act, subject) in [(action::KEY_REVOKE, &compromised)] {
        let r = env
            .admin(
                Method::GET,
                &format!("/admin/v1/tenants/default/audit?action={act}"),
                None,
            )
            .await;
        let items = r.json()["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "{act}");
        assert_eq!(items[0]["subject"], subject.as_str());
        assert_eq!(items[0]["detail"]["replacement"], replacement.as_str());
    }
}

#[tokio::test]
async fn revoking_a_waiting_key_removes_it_and_the_active_key_keeps_signing() {
    let env = env().await;
    let (id, secret) = env.account("default", "worker", AUD, &["read"]).await;
    let active = kid_of(&env.token_for("default", &id, &secret).await);
    let (_, k) = rotate(&env, "default", false).await;
    let waiting = k["kid"].as_str().unwrap().to_owned();
    assert!(kids(&env.jwks("default").await).contains(&waiting));
    let r = env
        .admin(
            Method::POST,
            &format!("/admin/v1/tenants/default/keys/{waiting}/revoke"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(kids(&env.jwks("default").await), vec![active.clone()]);
    let list = keys(&env, "default").await;
    assert_eq!(key(&list, &active)["retires_at"], Value::Null);
    assert_eq!(key(&list, &active)["removed_at"], Value::Null);
    env.clock.advance_secs(10 * (J + S + L));
    assert_eq!(
        kid_of(&env.token_for("default", &id, &secret).await),
        active
    );
}

#[tokio::test]
async fn scheduled_rotation_activates_a_successor_on_schedule() {
    let env = env().await;
    let (id, secret) = env.account("default", "worker", AUD, &["read"]).await;
    let path = "/admin/v1/tenants/default";
    // Below 2 × (J + S), or above 365 days: refused.
    for bad in [json!(2 * (J + S) - 1), json!(365 * 86_400 + 1), json!("1d")] {
        let r = env
            .admin(
                Method::PATCH,
                path,
                Some(json!({ "key_rotation_period_seconds": bad })),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let period = 86_400;
    let r = env
        .admin(
            Method::PATCH,
            path,
            Some(json!({ "key_rotation_period_seconds": period })),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["key_rotation_period_seconds"], period);
    assert_eq!(
        r.json()["signing_alg"],
        "ES256",
        "the algorithm is unchanged"
    );

    let first = kid_of(&env.token_for("default", &id, &secret).await);
    let created = at(&keys(&env, "default").await[0]["activates_at"]);
    // Not due until a successor published now would activate a period after `first` did.
    env.clock
        .set(Timestamp::from_secs(created + period - J - S - 1));
    assert_eq!(env.warrant.rotate_due_keys().await.unwrap(), 0);
    env.clock.advance_secs(1);
    assert_eq!(env.warrant.rotate_due_keys().await.unwrap(), 1);
    assert_eq!(
        env.warrant.rotate_due_keys().await.unwrap(),
        0,
        "a key waits"
    );
    let list = keys(&env, "default").await;
    let next = &list[0];
    assert_eq!(next["state"], "next");
    assert_eq!(at(&next["activates_at"]), created + period);
    let next = next["kid"].as_str().unwrap().to_owned();
    assert!(kids(&env.jwks("default").await).contains(&next));
    assert_eq!(kid_of(&env.token_for("default", &id, &secret).await), first);
    env.clock.set(Timestamp::from_secs(created + period));
    assert_eq!(kid_of(&env.token_for("default", &id, &secret).await), next);

    // The scheduler's rotation is audited.
    let r = env
        .admin(
            Method::GET,
            &format!(
                "/admin/v1/tenants/default/audit?action={}",
                action::KEY_ROTATE
            ),
            None,
        )
        .await;
    let items = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["actor"], "warrant-scheduler");
    assert_eq!(items[0]["detail"]["kid"], next.as_str());

    // `null` turns it off.
    let r = env
        .admin(
            Method::PATCH,
            path,
            Some(json!({ "key_rotation_period_seconds": null })),
        )
        .await;
    assert_eq!(r.json()["key_rotation_period_seconds"], Value::Null);
    env.clock.advance_secs(10 * period);
    assert_eq!(env.warrant.rotate_due_keys().await.unwrap(), 0);
}

#[tokio::test]
async fn rotating_after_an_algorithm_change_gives_a_key_of_the_new_algorithm() {
    let env = env().await;
    env.create_tenant("acme").await;
    let (id, secret) = env.account("acme", "worker", AUD, &["read"]).await;
    let r = env
        .admin(
            Method::PATCH,
            "/admin/v1/tenants/acme",
            Some(json!({ "signing_alg": "PS256" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["key_rotation_period_seconds"], Value::Null);
    let (status, k) = rotate(&env, "acme", false).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(k["alg"], "PS256");
    let jwks = env.jwks("acme").await;
    let algs: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert_eq!(algs, vec!["ES256", "PS256"]);
    let discovery = env
        .get("/t/acme/.well-known/openid-configuration")
        .await
        .json();
    assert!(
        discovery.to_string().contains("PS256"),
        "discovery lists the published key's algorithm"
    );
    env.clock.advance_secs(J + S);
    let token = env.token_for("acme", &id, &secret).await;
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().alg,
        jsonwebtoken::Algorithm::PS256
    );
    env.verify("acme", &token, AUD).await;
}

#[tokio::test]
async fn key_endpoints_are_documented_and_scoped() {
    let env = env().await;
    let (status, k) = rotate(&env, "default", false).await;
    assert_eq!(status, StatusCode::CREATED);
    let kid = k["kid"].as_str().unwrap();
    let r = env
        .admin(
            Method::GET,
            &format!("/admin/v1/tenants/default/keys/{kid}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["state"], "next");
    let r = env
        .admin(Method::GET, "/admin/v1/tenants/default/keys/nope", None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let (status, _) = rotate(&env, "nope", false).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let doc = env.get("/admin/v1/openapi.json").await.json();
    let paths = &doc["paths"];
    assert_eq!(
        paths["/admin/v1/tenants/{tenant}/keys/rotate"]["post"]["operationId"],
        "rotateSigningKey"
    );
    assert_eq!(
        paths["/admin/v1/tenants/{tenant}/keys/{kid}/revoke"]["post"]["operationId"],
        "revokeSigningKey"
    );
    assert!(
        doc["components"]["schemas"]["TenantPatch"]["properties"]["key_rotation_period_seconds"]
            .is_object()
    );
}

/// The view of a tenant's keys is built once per interval between key times: between two
/// boundaries every request gets the same one (no rebuild, no store read); passing a boundary
/// gives a new one, and so does moving the clock back before it.
#[tokio::test]
async fn the_key_view_is_rebuilt_only_when_a_key_time_passes() {
    let env = env().await;
    let tenant = warrant_core::TenantName::parse("default").unwrap();
    let a = env.warrant.tenant_keys(&tenant).unwrap();
    assert_eq!(a.valid_until, None, "one key, no change planned");
    let (_, k) = rotate(&env, "default", false).await;
    let b = env.warrant.tenant_keys(&tenant).unwrap();
    assert_eq!(
        b.valid_until.map(Timestamp::secs),
        Some(at(&k["activates_at"]))
    );
    env.clock.advance_secs(J + S - 1);
    assert!(std::sync::Arc::ptr_eq(
        &b,
        &env.warrant.tenant_keys(&tenant).unwrap()
    ));
    env.clock.advance_secs(1);
    let c = env.warrant.tenant_keys(&tenant).unwrap();
    assert!(!std::sync::Arc::ptr_eq(&b, &c));
    assert_eq!(c.public.len(), 2);
    assert!(std::sync::Arc::ptr_eq(
        &c,
        &env.warrant.tenant_keys(&tenant).unwrap()
    ));
    env.clock.advance_secs(-1);
    let d = env.warrant.tenant_keys(&tenant).unwrap();
    assert_eq!(
        d.valid_until, c.valid_from,
        "back before the boundary: the earlier view"
    );
}
