//! The audit writer under the token endpoint: group commit keeps every record, in one chain;
//! no token leaves without its record; repeated refusals are counted, not written one by one.

use std::collections::HashSet;

use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;
use warrant_core::audit::{AuditQuery, GENESIS, RecordBody, action, chain};
use warrant_core::{Store, TenantName};

use crate::harness::{Env, basic_header};

const AUD: &str = "https://api.example";

fn jti_of(token: &str) -> String {
    let (_, claims) = warrant_jose::dangerous::decode_unverified(token).unwrap();
    claims["jti"].as_str().unwrap().to_owned()
}

pub(crate) async fn records(
    env: &Env,
    tenant: &str,
    action: &str,
    subject: Option<&str>,
) -> Vec<RecordBody> {
    let q = AuditQuery {
        tenant: TenantName::parse(tenant).unwrap(),
        subject: subject.map(str::to_owned),
        action: Some(action.to_owned()),
        outcome: None,
        since: None,
        until: None,
        after: None,
        limit: 10_000,
    };
    env.store
        .query_audit(&q)
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn concurrent_token_requests_each_get_a_chained_record() {
    let env = Env::new().await;
    let (id, secret) = env.account("default", "busy", AUD, &["read"]).await;
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let app = env.app.clone();
        let auth = basic_header(&id, &secret);
        tasks.push(tokio::spawn(async move {
            let req = Request::post("/t/default/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::AUTHORIZATION, auth)
                .body(Body::from("grant_type=client_credentials"))
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let v: Value = serde_json::from_slice(&body).unwrap();
            jti_of(v["access_token"].as_str().unwrap())
        }));
    }
    let mut jtis = HashSet::new();
    for t in tasks {
        jtis.insert(t.await.unwrap());
    }
    assert_eq!(jtis.len(), 64);

    let issued = records(&env, "default", action::TOKEN_ISSUE, Some(&id)).await;
    let recorded: HashSet<String> = issued.iter().map(|r| r.jti.clone().unwrap()).collect();
    assert_eq!(recorded, jtis, "every token has exactly its record");
    for r in &issued {
        assert_eq!(r.outcome, warrant_core::audit::Outcome::Success);
        assert_eq!(r.actor, id);
        assert_eq!(r.auth_method.as_deref(), Some("client_secret_basic"));
        assert_eq!(r.audience.as_deref(), Some(AUD));
        assert_eq!(r.scopes.as_deref(), Some("read"));
    }

    // The whole default-tenant segment is one unbroken chain, in seq order.
    let segment = env.warrant.audit().segment().to_owned();
    let rows = env
        .store
        .audit_segment_records(&TenantName::parse("default").unwrap(), &segment, 0, 10_000)
        .await
        .unwrap();
    let mut prev = GENESIS.to_owned();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.seq, i as i64 + 1);
        assert_eq!(chain::body_hash(&row.body), row.hash);
        let body: RecordBody = serde_json::from_str(&row.body).unwrap();
        assert_eq!(
            body.prev, prev,
            "record {} links to its predecessor",
            row.seq
        );
        prev = row.hash.clone();
    }
    assert!(
        rows.len() >= 64 + 2,
        "account and secret creation are recorded too"
    );
}

#[tokio::test]
async fn no_token_is_returned_when_its_record_cannot_be_committed() {
    let env = Env::new().await;
    let (id, secret) = env.account("default", "doomed", AUD, &["read"]).await;
    // A real failure of the real database: the audit table is gone.
    sqlx::query("DROP TABLE audit_records")
        .execute(env.store.pool())
        .await
        .unwrap();
    let r = env
        .token_request(
            "default",
            Some((&id, &secret)),
            "grant_type=client_credentials",
        )
        .await;
    r.assert_oauth_error(503, "temporarily_unavailable");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("audit_records"),
        "no internal detail leaks"
    );
    assert!(r.json().get("access_token").is_none());
}

#[tokio::test]
async fn repeated_refusals_are_counted_not_written_one_by_one() {
    let env = Env::new().await;
    let (id, _secret) = env.account("default", "target", AUD, &["read"]).await;
    let wrong = "wrt_0000000000000000000000000000000000000000000000000";
    for _ in 0..100 {
        let r = env
            .token_request(
                "default",
                Some((&id, wrong)),
                "grant_type=client_credentials",
            )
            .await;
        assert_eq!(r.status.as_u16(), 401);
    }
    // Notes are not awaited: a checkpoint flushes the writer's queue first (same channel).
    env.warrant.audit().checkpoint_now().await.unwrap();
    let refused = records(&env, "default", action::TOKEN_REFUSE, Some(&id)).await;
    assert_eq!(
        refused.len(),
        1,
        "only the first refusal is written at once"
    );
    assert!(
        refused[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("invalid_client")),
        "{:?}",
        refused[0].reason
    );
    // checkpoint_now closes every window: the other 99 are one aggregated record.
    let aggregated = records(&env, "default", action::AGGREGATED, Some(&id)).await;
    assert_eq!(aggregated.len(), 1, "{aggregated:?}");
    assert_eq!(aggregated[0].count, 99);

    // A checkpoint now vouches for the segment head.
    let cps = env
        .store
        .audit_checkpoints(&TenantName::parse("default").unwrap())
        .await
        .unwrap();
    assert!(!cps.is_empty());
}
