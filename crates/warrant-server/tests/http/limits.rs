//! Rate limits on the injected clock: per address, and per client for failed authentication
//! only — a correct secret is never locked out, and everyone recovers by themselves.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, StatusCode, header};
use warrant_server::Limits;

use crate::harness::{Env, Options, basic_header};

const FORM: &str = "grant_type=client_credentials";

fn from(addr: &str, id: &str, secret: &str, xff: Option<&str>) -> Request<Body> {
    let mut req = Request::post("/t/default/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, basic_header(id, secret));
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    let mut req = req.body(Body::from(FORM)).unwrap();
    req.extensions_mut()
        .insert(ConnectInfo::<SocketAddr>(addr.parse().unwrap()));
    req
}

#[tokio::test]
async fn per_address_limit_answers_429_with_retry_after_and_recovers() {
    let env = Env::with(Options {
        limits: Limits::new(1.0, 3, 0.0, 1),
        ..Default::default()
    })
    .await;
    // the setup itself (admin token, account) is not rate limited by address 0.0.0.0 … use its own
    let (id, secret) = env
        .account("default", "ci", "https://a.example", &["x"])
        .await;
    env.clock.advance_secs(10);
    for _ in 0..3 {
        assert_eq!(
            env.send(from("10.0.0.1:1000", &id, &secret, None))
                .await
                .status,
            StatusCode::OK
        );
    }
    let r = env.send(from("10.0.0.1:1000", &id, &secret, None)).await;
    r.assert_oauth_error(429, "temporarily_unavailable");
    assert_eq!(r.header("retry-after"), Some("1"));
    // another address is not affected
    assert_eq!(
        env.send(from("10.0.0.2:1000", &id, &secret, None))
            .await
            .status,
        StatusCode::OK
    );
    // an untrusted peer cannot dodge the limit with X-Forwarded-For
    env.send(from("10.0.0.1:1000", &id, &secret, Some("192.0.2.7")))
        .await
        .assert_oauth_error(429, "temporarily_unavailable");
    env.clock.advance_secs(1);
    assert_eq!(
        env.send(from("10.0.0.1:1000", &id, &secret, None))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    // burst 2: the setup below needs two admin tokens
    let env = Env::with(Options {
        limits: Limits::new(1.0, 2, 0.0, 1),
        trusted_proxies: vec!["10.9.0.0/16".into()],
        ..Default::default()
    })
    .await;
    let (id, secret) = env
        .account("default", "ci", "https://a.example", &["x"])
        .await;
    env.clock.advance_secs(10);
    // two clients behind the trusted proxy are limited separately
    for _ in 0..2 {
        assert_eq!(
            env.send(from("10.9.0.1:1", &id, &secret, Some("192.0.2.1")))
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            env.send(from("10.9.0.1:1", &id, &secret, Some("192.0.2.2")))
                .await
                .status,
            StatusCode::OK
        );
    }
    assert_eq!(
        env.send(from("10.9.0.1:1", &id, &secret, Some("192.0.2.1")))
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // a client cannot prepend a fake address: the nearest untrusted hop counts
    assert_eq!(
        env.send(from(
            "10.9.0.1:1",
            &id,
            &secret,
            Some("198.51.100.9, 192.0.2.1")
        ))
        .await
        .status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn failed_authentications_are_limited_per_client_without_locking_out_the_owner() {
    let env = Env::with(Options {
        limits: Limits::new(0.0, 1, 6.0, 3),
        ..Default::default()
    })
    .await;
    let (id, secret) = env
        .account("default", "ci", "https://a.example", &["x"])
        .await;
    let wrong = warrant_core::ClientSecret::generate().unwrap();
    for _ in 0..3 {
        env.send(from("203.0.113.5:1", &id, wrong.expose(), None))
            .await
            .assert_oauth_error(401, "invalid_client");
    }
    let r = env
        .send(from("203.0.113.5:1", &id, wrong.expose(), None))
        .await;
    r.assert_oauth_error(429, "temporarily_unavailable");
    assert!(r.header("retry-after").is_some());
    // the attacker's spraying does not lock the real client out
    assert_eq!(
        env.send(from("198.51.100.1:1", &id, &secret, None))
            .await
            .status,
        StatusCode::OK
    );
    // and after a while failures are answered normally again
    env.clock.advance_secs(10);
    env.send(from("203.0.113.5:1", &id, wrong.expose(), None))
        .await
        .assert_oauth_error(401, "invalid_client");
}
