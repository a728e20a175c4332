//! `POST {issuer}/token` (RFC 6749 §3.2, §4.4, §5): client credentials with
//! `client_secret_basic` or `client_secret_post`, exactly one per request.
//!
//! The checks run in this order, each answered with the status DESIGN.md gives: per-address rate
//! limit (429), tenant (404), parameters in the query string (400), content type (400), body size
//! (413), repeated parameters (400), client authentication method (400 for two methods, 401 for a
//! malformed Basic header), grant type (400), then the core decides (401/400) — and a client id
//! that keeps failing authentication is slowed down (429) without locking out the right secret.

use std::net::IpAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use warrant_core::TenantName;
use warrant_core::audit::{AuditEvent, Origin, Outcome, action};
use warrant_core::grants::{ClientCredentials, DpopBinding, TokenError};
use warrant_proto::oauth::TokenResponse;

use super::client_auth::{
    failed_authentication, invalid_client, post_only, presented, read_form, truncate,
};
use crate::AppState;
use crate::client_addr::client_ip;
use crate::error::{OAuthError, no_store};
use crate::tls::presented_certificate;

pub use super::client_auth::MAX_BODY;

/// A refusal and its metric label.
struct Refusal(OAuthError, &'static str);

impl From<OAuthError> for Refusal {
    fn from(e: OAuthError) -> Self {
        let reason = match e.code {
            "invalid_client" => "invalid_client",
            "unsupported_grant_type" => "unsupported_grant_type",
            _ => "invalid_request",
        };
        Refusal(e, reason)
    }
}

/// The axum handler (the route table's entry for the token endpoint).
pub async fn token(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
    req: Request,
) -> Response {
    respond(&s, &tenant, req).await
}

/// The tenant of a `/t/{tenant}/token` path, for the accept loop's direct route to [`respond`].
/// `None` for anything else, including percent-encoded paths (the router decodes those).
pub fn token_path_tenant(path: &str) -> Option<&str> {
    let tenant = path.strip_prefix("/t/")?.strip_suffix("/token")?;
    (!tenant.is_empty() && !tenant.contains(['/', '%'])).then_some(tenant)
}

/// Answers one token request: the same code whether the router or the accept loop's direct
/// route (the hot path skips routing and extractors) got it here.
pub async fn respond(s: &AppState, tenant: &str, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let ip = client_ip(&parts, &s.trusted_proxies);
    let mut seen = Seen::default();
    let resp = match handle(s, tenant, &parts, body, ip, &mut seen).await {
        Ok(resp) => {
            s.metrics.issued(tenant, "client_credentials");
            resp
        }
        Err(Refusal(e, reason)) => {
            if reason != "unknown_tenant" {
                s.metrics.refused(tenant, "client_credentials", reason);
                note_refusal(s, tenant, ip, &seen, e.code, reason);
            }
            tracing::info!(tenant = %tenant, client_addr = %ip, error = e.code, reason, "token request refused");
            e.into_response()
        }
    };
    s.metrics.observe_token_latency(started.elapsed());
    resp
}

/// What a refused request is known to be about, for its audit record.
#[derive(Default)]
struct Seen {
    client_id: Option<String>,
    method: Option<&'static str>,
    /// The core's reason for an authentication failure (`wrong_secret`, …).
    why: Option<&'static str>,
}

async fn handle(
    s: &AppState,
    tenant: &str,
    parts: &Parts,
    body: Body,
    ip: IpAddr,
    seen: &mut Seen,
) -> Result<Response, Refusal> {
    let now = s.warrant.now();
    if let Err(retry) = s.limits.per_address.check(&ip, now) {
        return Err(Refusal(OAuthError::too_many(retry.0), "rate_limited"));
    }
    let keys = super::tenant_keys(s, tenant).map_err(|e| Refusal(e, "unknown_tenant"))?;
    let params = read_form(parts, body, "token endpoint").await?;
    let presented = presented(parts, &params, || presented_certificate(parts, s))?;
    seen.method = Some(presented.method_name());
    // Read once (for an assertion without `client_id` it is decoded from the JWT).
    let client_id = presented.client_id();
    // RFC 9449: a DPoP proof, if sent, is checked before anything is issued; its `jti` is
    // recorded once the client is authenticated.
    let nonces = s.dpop_require_nonce.then(|| s.warrant.dpop_nonce_key());
    let proof =
        super::dpop::token_endpoint_proof(parts, &keys.issuer, now, nonces).map_err(|e| {
            let reason = e.code;
            Refusal(e, reason)
        })?;
    // The refusal's audit record names the client; a successful request needs no copy of its id.
    let seen_why = &mut seen.why;
    let result = async {
        let used_basic = presented.used_basic();

        match params.get("grant_type") {
            Some("client_credentials") => {}
            Some(_) => {
                return Err(OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "this grant type is not supported",
                )
                .into());
            }
            None => return Err(OAuthError::invalid_request("grant_type is required").into()),
        }

        let audiences: Vec<&str> = params
            .all("resource")
            .chain(params.all("audience"))
            .collect();
        let request = ClientCredentials {
            keys: &keys,
            auth: presented.auth(),
            audiences: &audiences,
            scope: params.get("scope"),
            dpop: proof.as_ref().map(|p| DpopBinding {
                jkt: &p.jkt,
                replay_key: &p.replay_key,
                until: p.until,
            }),
        };
        let origin = Origin::client(
            &client_id,
            Some(ip.to_string()),
            Some(presented.method_name()),
        );
        let issued = match s.warrant.client_credentials_audited(request, &origin).await {
            Ok(t) => t,
            Err(TokenError::InvalidClient(why)) => {
                *seen_why = Some(why.as_str());
                if let Err(retry) = failed_authentication(s, tenant, &client_id, why, now) {
                    return Err(Refusal(OAuthError::too_many(retry), "rate_limited"));
                }
                return Err(Refusal(
                    invalid_client(&keys, why, used_basic),
                    "invalid_client",
                ));
            }
            Err(e) => {
                let reason = match &e {
                    TokenError::InvalidTarget(_) => "invalid_target",
                    TokenError::InvalidScope(_) => "invalid_scope",
                    TokenError::Unavailable(_) => "unavailable",
                    TokenError::DpopRequired | TokenError::DpopReplayed => {
                        "invalid_dpop_proof"
                    }
                    TokenError::SigningUnavailable(_) => {
                        s.metrics.hsm_sign_failed(tenant);
                        "unavailable"
                    }
                    _ => "invalid_request",
                };
                let mut err = OAuthError::from_token_error(&e, used_basic);
                if reason == "invalid_dpop_proof"
                    && let Some(n) = nonces
                {
                    err.dpop_nonce = Some(n.issue(now.secs()));
                }
                return Err(Refusal(err, reason));
            }
        };
        tracing::debug!(tenant, client_id = %client_id, jti = %issued.jti, aud = %issued.audience, "token issued");
        let body = TokenResponse {
            access_token: issued.access_token,
            token_type: issued.token_type.into(),
            expires_in: issued.expires_in,
            scope: (!issued.scope.is_empty()).then_some(issued.scope),
            issued_token_type: None,
        };
        // Serialised into a buffer sized for the token, not grown from a small default.
        let mut buf = Vec::with_capacity(body.access_token.len() + 128);
        serde_json::to_writer(&mut buf, &body).map_err(|_| {
            Refusal(
                OAuthError::from_token_error(
                    &TokenError::Unavailable("response serialisation".into()),
                    false,
                ),
                "unavailable",
            )
        })?;
        let mut resp = ([(header::CONTENT_TYPE, "application/json")], buf).into_response();
        no_store(&mut resp);
        if let Some(n) = nonces {
            super::dpop::attach_nonce(&mut resp, n, now);
        }
        Ok::<_, Refusal>(resp)
    }
    .await;
    if result.is_err() {
        seen.client_id = Some(truncate(&client_id));
    }
    result
}

/// Records a refusal in the audit log (not awaited; repeats from one source are aggregated).
fn note_refusal(s: &AppState, tenant: &str, ip: IpAddr, seen: &Seen, code: &str, reason: &str) {
    let Ok(tenant) = TenantName::parse(tenant) else {
        return;
    };
    let actor = seen.client_id.clone().unwrap_or_else(|| "-".into());
    let mut e = AuditEvent::new(
        tenant,
        s.warrant.now(),
        actor,
        action::TOKEN_REFUSE,
        Outcome::Failure,
    );
    e.subject = seen.client_id.clone();
    let mut text = code.to_owned();
    if code != reason {
        text = format!("{text}: {reason}");
    }
    if let Some(why) = seen.why {
        text = format!("{text}: {why}");
    }
    e.reason = Some(text);
    e.client_addr = Some(ip.to_string());
    e.auth_method = seen.method.map(str::to_owned);
    s.warrant.audit().note(e);
}

/// Any method but POST: 405 with `Allow: POST`.
pub async fn method_not_allowed() -> Response {
    post_only("token endpoint")
}

#[cfg(test)]
mod tests {
    use super::token_path_tenant;

    #[test]
    fn only_exact_token_paths_take_the_direct_route() {
        assert_eq!(token_path_tenant("/t/default/token"), Some("default"));
        assert_eq!(token_path_tenant("/t/a-1/token"), Some("a-1"));
        for other in [
            "/t//token",
            "/t/a/b/token",
            "/t/%61/token",
            "/t/a/token/",
            "/t/a/jwks",
            "/admin/v1/t/a/token",
            "/x/t/a/token",
        ] {
            assert_eq!(token_path_tenant(other), None, "{other}");
        }
    }
}
