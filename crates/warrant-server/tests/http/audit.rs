//! The audit admin API: query with filters and cursors, online verification, the JSON-lines
//! export (which verifies offline), and who may read a tenant's log.

use http::{Method, StatusCode};
use serde_json::Value;
use warrant_core::audit::export::verify_export;
use warrant_core::{Store, TenantName, Timestamp};

use crate::harness::{Env, PUBLIC_URL, T0};

const AUD: &str = "https://api.example";

/// Two accounts in `default` a minute apart, each with its `initial` secret (four admin
/// records), and a token for the first. Returns the account ids.
async fn activity(env: &Env) -> (String, String) {
    let (first, secret) = env.account("default", "first", AUD, &["read"]).await;
    env.token_request(
        "default",
        Some((&first, &secret)),
        "grant_type=client_credentials",
    )
    .await
    .access_token();
    env.clock.advance_secs(60);
    let (second, _) = env.account("default", "second", AUD, &["read"]).await;
    (first, second)
}

async fn items(env: &Env, query: &str) -> Vec<Value> {
    let r = env
        .admin(
            Method::GET,
            &format!("/admin/v1/tenants/default/audit{query}"),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let page = r.json();
    assert!(page.get("next_cursor").is_some(), "{page}");
    page["items"].as_array().unwrap().clone()
}

fn field<'a>(items: &'a [Value], name: &str) -> Vec<&'a str> {
    items
        .iter()
        .map(|i| i[name].as_str().unwrap_or(""))
        .collect()
}

#[tokio::test]
async fn query_returns_records_with_filters_and_pages() {
    let env = Env::new().await;
    let (first, second) = activity(&env).await;

    let all = items(&env, "").await;
    let admin: Vec<&Value> = all
        .iter()
        .filter(|i| i["actor"] == env.admin_id.as_str())
        .collect();
    assert_eq!(admin.len(), 4, "{all:?}");
    let r = &admin[0];
    assert_eq!(r["action"], "account.create");
    assert_eq!(r["outcome"], "success");
    assert_eq!(r["tenant"], "default");
    assert_eq!(r["subject"], first.as_str());
    assert_eq!(r["detail"]["name"], "first");
    assert_eq!(r["auth_method"], "bearer");
    assert_eq!(r["count"], 1);
    assert_eq!(r["v"], 1);
    assert!(r["segment"].as_str().unwrap().starts_with("seg_"), "{r}");
    assert!(r["id"].as_i64().is_some(), "{r}");
    assert_eq!(r["hash"].as_str().unwrap().len(), 64);
    assert_eq!(r["prev"].as_str().unwrap().len(), 64);
    let time = r["time"].as_str().unwrap();
    assert!(
        time.ends_with('Z') && time.contains('T'),
        "RFC 3339: {time}"
    );
    assert_eq!(
        Timestamp::parse_rfc3339(time),
        Some(Timestamp::from_secs(T0))
    );
    // ids increase (commit order), and seq follows within a segment
    let ids: Vec<i64> = all.iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // exact action, and a prefix ending in `.`
    let created = items(&env, "?action=account.create").await;
    assert_eq!(
        field(&created, "subject"),
        [first.as_str(), second.as_str()]
    );
    let secrets = items(&env, "?action=secret.").await;
    assert_eq!(
        field(&secrets, "action"),
        ["secret.create", "secret.create"]
    );
    assert!(
        items(&env, "?action=secret").await.is_empty(),
        "no prefix without the dot"
    );
    // subject, combined with action
    let about_second = items(&env, &format!("?subject={second}")).await;
    assert_eq!(
        field(&about_second, "action"),
        ["account.create", "secret.create"]
    );
    let one = items(&env, &format!("?subject={second}&action=secret.create")).await;
    assert_eq!(one.len(), 1);
    // outcome
    assert!(
        items(&env, "?outcome=failure")
            .await
            .iter()
            .all(|i| i["outcome"] == "failure")
    );
    assert_eq!(
        items(&env, "?outcome=success").await.len(),
        all.iter().filter(|i| i["outcome"] == "success").count()
    );
    // time: since is inclusive, until exclusive
    let t1 = Timestamp::from_secs(T0 + 60).to_rfc3339();
    let late = items(&env, &format!("?since={t1}&action=account.")).await;
    assert_eq!(field(&late, "subject"), [second.as_str()]);
    let early = items(&env, &format!("?until={t1}&action=account.")).await;
    assert_eq!(field(&early, "subject"), [first.as_str()]);
    let since_t0 = Timestamp::from_secs(T0).to_rfc3339();
    assert_eq!(
        items(&env, &format!("?since={since_t0}")).await.len(),
        all.len()
    );

    // pages of one, following next_cursor, give the same records in the same order
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("?limit=1&cursor={c}"),
            None => "?limit=1".into(),
        };
        let r = env
            .admin(
                Method::GET,
                &format!("/admin/v1/tenants/default/audit{q}"),
                None,
            )
            .await
            .json();
        let page = r["items"].as_array().unwrap();
        assert!(page.len() <= 1);
        paged.extend(page.iter().map(|i| i["id"].as_i64().unwrap()));
        match r["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(paged.len() <= all.len() + 1, "paging does not end");
    }
    assert_eq!(paged, ids);
}

#[tokio::test]
async fn bad_filters_are_400_problems() {
    let env = Env::new().await;
    for q in [
        "outcome=maybe",
        "since=yesterday",
        "until=2026-13-01T00:00:00Z",
        "limit=abc",
        "limit=-1",
        "cursor=%21%21",
        "cursor=YWJj", // base64url of "abc": not an id
        "tenant=default",
        "subject=a&subject=b",
        "subject=%00",
        "action=token.%0A",
    ] {
        let r = env
            .admin(
                Method::GET,
                &format!("/admin/v1/tenants/default/audit?{q}"),
                None,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{q}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{q}"
        );
        assert_eq!(r.json()["status"], 400);
    }
    let r = env
        .admin(Method::GET, "/admin/v1/tenants/nope/audit", None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = env
        .admin(Method::GET, "/admin/v1/tenants/nope/audit/verify", None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn verify_is_ok_and_the_export_verifies_offline() {
    let env = Env::new().await;
    activity(&env).await;
    env.warrant.audit().checkpoint_now().await.unwrap();
    env.account("default", "third", AUD, &["read"]).await;

    let r = env
        .admin(Method::GET, "/admin/v1/tenants/default/audit/verify", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let report = r.json();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["first_bad"], Value::Null);
    assert_eq!(report["macs_checked"], true);
    assert_eq!(report["segments"], 1);
    assert!(report["checkpoints"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(report["unsigned_tail"], 2, "third's two records: {report}");
    let records = report["records"].as_u64().unwrap();
    assert!(records >= 6, "{report}");

    let r = env
        .admin(Method::GET, "/admin/v1/tenants/default/audit/export", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    let text = String::from_utf8(r.body.clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let header = &lines[0];
    assert_eq!(header["type"], "header");
    assert_eq!(header["format"], "warrant-audit-export");
    assert_eq!(header["version"], 1);
    assert_eq!(header["tenant"], "default");
    assert_eq!(header["issuer"], format!("{PUBLIC_URL}/t/default"));
    assert_eq!(header["keys"], env.jwks("default").await);
    assert_eq!(lines[1]["type"], "segment");
    assert_eq!(lines.last().unwrap()["type"], "end");
    let exported: Vec<&Value> = lines.iter().filter(|l| l["type"] == "record").collect();
    assert_eq!(exported.len() as u64, records);
    for l in &exported {
        for k in [
            "id",
            "segment",
            "seq",
            "at_ms",
            "subject",
            "action",
            "outcome",
            "hash",
            "key_version",
            "mac",
            "body",
        ] {
            assert!(l.get(k).is_some(), "{k} in {l}");
        }
        assert!(l["body"].is_string());
    }
    let offline = verify_export(text.as_bytes()).unwrap();
    assert!(offline.report.ok, "{:?}", offline.report);
    assert_eq!(offline.report.records, records);
    assert_eq!(offline.report.unsigned_tail, 2);

    // A log pruned without a checkpoint at its anchor: 200, ok false, naming segment and seq.
    let default = TenantName::parse("default").unwrap();
    let seg = lines[1]["segment"].as_str().unwrap();
    env.store
        .prune_audit(&default, seg, 2, &"ab".repeat(32))
        .await
        .unwrap();
    let r = env
        .admin(Method::GET, "/admin/v1/tenants/default/audit/verify", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let report = r.json();
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["first_bad"]["segment"], seg);
    assert_eq!(report["first_bad"]["seq"], 2);
    assert!(
        report["first_bad"]["problem"]
            .as_str()
            .unwrap()
            .contains("anchor"),
        "{report}"
    );
}

#[tokio::test]
async fn only_admins_of_the_tenant_may_read_its_log() {
    let env = Env::new().await;
    let (first, secret) = env.account("default", "first", AUD, &["read"]).await;
    env.create_tenant("acme").await;
    for path in ["audit", "audit/verify", "audit/export"] {
        let r = env.get(&format!("/admin/v1/tenants/default/{path}")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // a workload's token is not an admin token
    let workload = env
        .token_request(
            "default",
            Some((&first, &secret)),
            "grant_type=client_credentials",
        )
        .await
        .access_token();
    let r = env
        .admin_with(
            &workload,
            Method::GET,
            "/admin/v1/tenants/default/audit",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // an admin of acme only
    let aud = format!("{PUBLIC_URL}/admin");
    let (id, secret) = env
        .account("system", "acme-admin", &aud, &["admin:acme"])
        .await;
    let token = env
        .token_request(
            "system",
            Some((&id, &secret)),
            "grant_type=client_credentials&scope=admin:acme",
        )
        .await
        .access_token();
    for path in ["audit", "audit/verify", "audit/export"] {
        let r = env
            .admin_with(
                &token,
                Method::GET,
                &format!("/admin/v1/tenants/default/{path}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        let r = env
            .admin_with(
                &token,
                Method::GET,
                &format!("/admin/v1/tenants/acme/{path}"),
                None,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let acme = env
        .admin_with(&token, Method::GET, "/admin/v1/tenants/acme/audit", None)
        .await
        .json();
    assert_eq!(
        acme["items"][0]["action"], "tenant.create",
        "acme's log starts with its creation: {acme}"
    );
    // A deleted tenant's log stays readable and verifiable (by a global admin).
    env.warrant.audit().checkpoint_now().await.unwrap();
    let r = env
        .admin(Method::DELETE, "/admin/v1/tenants/acme", None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = env
        .admin(Method::GET, "/admin/v1/tenants/acme/audit/verify", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let report = r.json();
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["checkpoints"].as_u64().unwrap() >= 1, "{report}");
    let r = env
        .admin(Method::GET, "/admin/v1/tenants/acme/audit/export", None)
        .await;
    let offline = verify_export(r.body.as_slice()).unwrap();
    assert!(offline.report.ok, "{:?}", offline.report);
}

#[tokio::test]
async fn the_audit_paths_are_documented() {
    let env = Env::new().await;
    let doc = env.get("/admin/v1/openapi.json").await.json();
    for p in ["audit", "audit/verify", "audit/export"] {
        let path = format!("/admin/v1/tenants/{{tenant}}/{p}");
        assert!(
            doc["paths"][&path]["get"].is_object(),
            "OpenAPI documents {path}"
        );
    }
    for s in [
        "AuditRecord",
        "AuditRecordPage",
        "AuditVerifyReport",
        "AuditBadRecord",
    ] {
        assert!(doc["components"]["schemas"][s].is_object(), "schema {s}");
    }
}
