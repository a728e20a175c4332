//! Requests through the gateway.

use serde_json::{Value, json};

use crate::support::{AUDIENCE, Harness, assert_challenge, default_routes};

async fn body(resp: reqwest::Response) -> Value {
    resp.json().await.unwrap()
}

#[tokio::test]
async fn a_valid_token_passes_with_identity_headers_and_without_credentials() {
    let h = Harness::start().await;
    let token = h.token(json!({}));
    let resp = h
        .http
        .post(h.url("/orders/42?expand=items"))
        .bearer_auth(&token)
        .header("x-warrant-sub", "admin")
        .header("X-Warrant-Tenant", "other")
        .header("x-forwarded-for", "203.0.113.9")
        .header("connection", "x-secret-hop")
        .header("x-secret-hop", "1")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = body(resp).await;
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["uri"], "/orders/42?expand=items");
    assert_eq!(seen["body"], "hello");
    let headers = &seen["headers"];
    assert_eq!(headers["x-warrant-sub"], json!(["sa_caller"]));
    assert_eq!(headers["x-warrant-client-id"], json!(["sa_caller"]));
    assert_eq!(headers["x-warrant-tenant"], json!(["prod"]));
    assert_eq!(
        headers["x-warrant-scope"],
        json!(["orders:read orders:write"])
    );
    assert_eq!(headers["x-warrant-issuer"], json!([h.issuer]));
    assert!(
        headers["x-warrant-jti"][0]
            .as_str()
            .unwrap()
            .starts_with("jti-")
    );
    assert!(headers.get("authorization").is_none(), "{headers}");
    assert!(headers.get("x-secret-hop").is_none(), "{headers}");
    assert_eq!(
        headers["x-forwarded-for"],
        json!(["203.0.113.9, 127.0.0.1"])
    );
    assert_eq!(headers["x-forwarded-proto"], json!(["http"]));
    let gw = h.gateway.local_addr().to_string();
    assert_eq!(headers["x-forwarded-host"], json!([gw]));
    assert_eq!(headers["host"], json!([h.upstream.to_string()]));

    let log = h.log_lines(1).await;
    let line = &log[0];
    assert_eq!(line["route"], "orders");
    assert_eq!(line["outcome"], "allowed");
    assert_eq!(line["status"], 200);
    assert_eq!(line["sub"], "sa_caller");
    assert_eq!(line["path"], "/orders/42");
    assert_eq!(line["remote"], "127.0.0.1");
    let text = h.log.contents();
    assert!(
        !text.contains(&token) && !text.contains("expand=items"),
        "{text}"
    );
}

#[tokio::test]
async fn spoofed_identity_headers_are_stripped_on_public_routes_too() {
    let h = Harness::start().await;
    let resp = h
        .http
        .get(h.url("/public/x"))
        .header("x-warrant-sub", "admin")
        .header("authorization", "Bearer whatever")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let headers = body(resp).await["headers"].clone();
    assert!(headers.get("x-warrant-sub").is_none(), "{headers}");
    assert!(headers.get("authorization").is_none(), "{headers}");
}

#[tokio::test]
async fn no_token_gets_a_challenge_without_an_error_code() {
    let h = Harness::start().await;
    let resp = h.get("/orders", None).await;
    let challenges = assert_challenge(&resp, 401, &[]);
    let bearer = challenges
        .iter()
        .find(|c| c.starts_with("Bearer realm"))
        .unwrap_or_else(|| panic!("{challenges:?}"));
    assert!(!bearer.contains("error="), "{bearer}");
    let metadata = format!(
        "resource_metadata=\"http://{}/.well-known/oauth-protected-resource/orders\"",
        h.gateway.local_addr()
    );
    assert!(bearer.contains(&metadata), "{bearer}");
    let log = h.log_lines(1).await;
    assert_eq!(log[0]["outcome"], "denied");
    assert_eq!(log[0]["reason"], "no_token");
}

#[tokio::test]
async fn a_wrong_audience_is_an_invalid_token() {
    let h = Harness::start().await;
    let token = h.token(json!({"aud": "https://elsewhere.example.com"}));
    let resp = h.get("/orders", Some(&token)).await;
    assert_challenge(&resp, 401, &["error=\"invalid_token\""]);
    assert_eq!(body(resp).await["error"], "invalid_token");
}

#[tokio::test]
async fn a_missing_scope_is_insufficient_scope() {
    let h = Harness::start().await;
    let token = h.token(json!({"scope": "orders:write"}));
    let resp = h.get("/orders", Some(&token)).await;
    assert_challenge(
        &resp,
        403,
        &["error=\"insufficient_scope\"", "scope=\"orders:read\""],
    );
}

#[tokio::test]
async fn a_forged_token_is_refused() {
    let h = Harness::start().await;
    let token = h.token(json!({}));
    let (head, rest) = token.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let forged_claims = warrant_jose::b64::encode(
        serde_json::to_vec(&json!({"iss": h.issuer, "sub": "sa_admin"})).unwrap(),
    );
    let forged = format!("{head}.{forged_claims}.{sig}");
    assert_eq!(h.get("/orders", Some(&forged)).await.status(), 401);
}

#[tokio::test]
async fn unknown_paths_are_not_found_without_a_token_check() {
    let h = Harness::start().await;
    let resp = h.get("/ordersX", None).await;
    assert_eq!(resp.status(), 404);
    assert!(resp.headers().get("www-authenticate").is_none());
    assert_eq!(body(resp).await, json!({"error": "not_found"}));
}

#[tokio::test]
async fn protected_resource_metadata() {
    let h = Harness::start().await;
    let resp = h
        .get("/.well-known/oauth-protected-resource/orders", None)
        .await;
    assert_eq!(resp.status(), 200);
    let m = body(resp).await;
    assert_eq!(
        m["resource"],
        format!("http://{}/orders", h.gateway.local_addr())
    );
    assert_eq!(m["authorization_servers"], json!([h.issuer]));
    assert_eq!(m["scopes_supported"], json!(["orders:read"]));
    assert_eq!(m["bearer_methods_supported"], json!(["header"]));
    // An unverified route publishes none.
    let resp = h
        .get("/.well-known/oauth-protected-resource/public", None)
        .await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn upstream_failures_are_502_and_504() {
    let h = Harness::start().await;
    let resp = h.get("/down", None).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(body(resp).await, json!({"error": "bad_gateway"}));
    let token = h.token(json!({}));
    let resp = h.get("/orders/slow", Some(&token)).await;
    assert_eq!(resp.status(), 504);
    assert_eq!(body(resp).await, json!({"error": "upstream_timeout"}));
    let log = h.log_lines(2).await;
    assert!(
        log.iter().all(|l| l["outcome"] == "upstream_error"),
        "{log:?}"
    );
}

#[tokio::test]
async fn reload_swaps_routes_and_keeps_the_old_ones_on_a_bad_file() {
    let h = Harness::start().await;
    let token = h.token(json!({}));
    let v2 = format!(
        r#"
[[routes]]
name = "v2"
path_prefix = "/v2"
upstream = "http://{}"
strip_prefix = true
audience = "{AUDIENCE}"
"#,
        h.upstream
    );
    h.write_routes(&v2);
    h.gateway.reload().await.unwrap();
    let resp = h.get("/v2/items", Some(&token)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body(resp).await["uri"], "/items");
    let resp = h.get("/orders", Some(&token)).await;
    assert_eq!(resp.status(), 404);

    h.write_routes("[[routes]]\nname = \"broken\"\n");
    assert!(h.gateway.reload().await.is_err());
    let resp = h.get("/v2/items", Some(&token)).await;
    assert_eq!(
        resp.status(),
        200,
        "the running configuration stays after a bad reload"
    );

    h.write_routes(&default_routes(h.upstream));
    h.gateway.reload().await.unwrap();
    let resp = h.get("/orders", Some(&token)).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn metrics_health_and_readiness() {
    let h = Harness::start().await;
    let token = h.token(json!({}));
    h.get("/orders", Some(&token)).await;
    h.get("/orders", None).await;
    let ops = h.gateway.metrics_addr().unwrap();
    let get = |path: &str| h.http.get(format!("http://{ops}{path}")).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let text = get("/metrics").await.unwrap().text().await.unwrap();
    for want in [
        "warrant_gateway_requests_total{route=\"orders\",outcome=\"allowed\",status=\"200\"} 1",
        "warrant_gateway_requests_total{route=\"orders\",outcome=\"denied\",status=\"401\"} 1",
        "warrant_gateway_denials_total{route=\"orders\",reason=\"no_token\"} 1",
        "warrant_gateway_request_duration_seconds_count 2",
        "warrant_gateway_issuer_keys{issuer=",
        "warrant_gateway_revocation_feed_lag_seconds{issuer=",
        "warrant_gateway_revoked_tokens{issuer=",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
}
