//! A service protected by warrant-verify's tower layer: every request to `/orders` must carry a
//! valid Warrant access token for `AUDIENCE` with the `orders:read` scope; the handler reads the
//! verified token from the request's extensions.
//!
//! ```sh
//! export WARRANT_ISSUER=http://127.0.0.1:8080/t/default
//! export WARRANT_FEED_CLIENT_ID=sa_...        # any account of the tenant (reads revocations)
//! export WARRANT_FEED_CLIENT_SECRET=...
//! export AUDIENCE=https://orders.example.com
//! cargo run -p warrant-verify --example orders_service      # listens on 127.0.0.1:3000
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/orders
//! ```
//!
//! See docs/verify.md.

use std::time::Duration;

use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use warrant_verify::{
    FeedCredentials, IssuerConfig, Requirement, Verified, Verifier, VerifierConfig, VerifyLayer,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let issuer = env("WARRANT_ISSUER")?;
    let audience = env("AUDIENCE")?;
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let feed = match (
        env("WARRANT_FEED_CLIENT_ID"),
        env("WARRANT_FEED_CLIENT_SECRET"),
    ) {
        (Ok(client_id), Ok(client_secret)) => Some(FeedCredentials {
            client_id,
            client_secret,
        }),
        // Without feed credentials revoked tokens stay valid until they expire: say so.
        _ => {
            eprintln!("no feed credentials: revocations are not checked");
            None
        }
    };

    // One verifier per process: it follows the issuer's keys and revocations in the background.
    let verifier = Verifier::start(VerifierConfig::new(vec![IssuerConfig {
        issuer,
        jwks_uri: None,
        feed,
    }]))?;
    if !verifier.wait_ready(Duration::from_secs(10)).await {
        eprintln!("the issuer is not reachable yet; requests get 503 until it is");
    }

    let orders = Router::new()
        .route("/orders", get(list_orders))
        .layer(VerifyLayer::new(
            verifier,
            Requirement {
                audiences: vec![audience],
                scopes_all: vec!["orders:read".into()],
                ..Requirement::default()
            },
        ));
    let app = orders.route("/healthz", get(|| async { "ok" }));

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("orders service on http://{listen}");
    axum::serve(listener, app).await?;
    Ok(())
}

/// Only reached with a verified token: who called, with which scopes.
async fn list_orders(Extension(token): Extension<Verified>) -> Json<Value> {
    Json(json!({
        "caller": token.sub,
        "client_id": token.client_id,
        "scopes": token.scopes,
        "orders": [],
    }))
}
