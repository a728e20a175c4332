//! `POST {issuer}/token` (RFC 6749 §3.2, §5): the client credentials grant (§4.4), RFC 8693
//! token exchange and the RFC 7523 §2.1 JWT bearer grant, with at most one client
//! authentication method per request (the last two may have none: a federation trust, not a
//! client credential, vouches for the token).
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
use warrant_core::grants::{
    ClientCredentials, DpopBinding, ExchangeGrant, ExchangeRequest, GRANT_JWT_BEARER,
    GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT, TokenError,
};
use warrant_proto::oauth::TokenResponse;

use super::client_auth::{
    Presented, failed_authentication, invalid_client, post_only, presented, read_form, truncate,
};
use super::form::Params;
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
            "invalid_grant" => "invalid_grant",
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
            s.metrics.issued(tenant, seen.grant);
            resp
        }
        Err(Refusal(e, reason)) => {
            if reason != "unknown_tenant" {
                s.metrics.refused(tenant, seen.grant, reason);
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
struct Seen {
    /// The grant's metric label (`client_credentials`, `token_exchange`, `jwt_bearer`, `other`).
    grant: &'static str,
    client_id: Option<String>,
    method: Option<&'static str>,
    /// The core's reason for an authentication failure (`wrong_secret`, …).
    why: Option<&'static str>,
    /// For a token no federation trust accepted: the exact check that failed (audit only).
    condition: Option<String>,
}

impl Default for Seen {
    fn default() -> Self {
        Seen {
            grant: "other",
            client_id: None,
            method: None,
            why: None,
            condition: None,
        }
    }
}

/// Which grant a request asks for; `None` for a missing or unsupported `grant_type` (answered
/// after client authentication, as before).
fn grant_of(params: &Params) -> Option<Option<ExchangeGrant>> {
    match params.get("grant_type") {
        Some("client_credentials") => Some(None),
        Some(GRANT_TOKEN_EXCHANGE) => Some(Some(ExchangeGrant::TokenExchange)),
        Some(GRANT_JWT_BEARER) => Some(Some(ExchangeGrant::JwtBearer)),
        _ => None,
    }
}

/// Whether a request carries any client credential: exchange grants may come without one.
/// A lone `client_id` with no certificate identifies nobody and counts as none.
fn carries_credentials(parts: &Parts, params: &Params, s: &AppState) -> bool {
    parts.headers.contains_key(header::AUTHORIZATION)
        || ["client_secret", "client_assertion", "client_assertion_type"]
            .iter()
            .any(|k| params.get(k).is_some())
        || (params.get("client_id").is_some() && presented_certificate(parts, s).is_some())
}

/// The subject token of an exchange grant, its parameters checked (RFC 8693 §2.1, RFC 7523
/// §2.1): the token, or `invalid_request` naming what is wrong with the request.
fn subject_token(params: &Params, grant: ExchangeGrant) -> Result<&str, OAuthError> {
    let required = |name: &str| {
        params
            .get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
    };
    match grant {
        ExchangeGrant::JwtBearer => required("assertion"),
        ExchangeGrant::TokenExchange => {
            let token = required("subject_token")?;
            let ty = required("subject_token_type")?;
            if ![TOKEN_TYPE_JWT, TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_ACCESS_TOKEN].contains(&ty) {
                return Err(OAuthError::invalid_request(
                    "subject_token_type must be the jwt, id_token or access_token token type",
                ));
            }
            if params.get("actor_token").is_some() || params.get("actor_token_type").is_some() {
                return Err(OAuthError::invalid_request(
                    "actor tokens are not accepted: the authenticated client is the actor",
                ));
            }
            if params
                .get("requested_token_type")
                .is_some_and(|t| t != TOKEN_TYPE_ACCESS_TOKEN && t != TOKEN_TYPE_JWT)
            {
                return Err(OAuthError::invalid_request(
                    "requested_token_type must be the access_token token type: Warrant issues \
                     access tokens",
                ));
            }
            Ok(token)
        }
    }
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
    let grant = grant_of(&params);
    seen.grant = match grant {
        Some(None) => "client_credentials",
        Some(Some(g)) => g.name(),
        None => "other",
    };
    let presented = match grant {
        Some(Some(_)) if !carries_credentials(parts, &params, s) => None,
        _ => Some(presented(parts, &params, || {
            presented_certificate(parts, s)
        })?),
    };
    seen.method = presented.as_ref().map(Presented::method_name);
    // Read once (for an assertion without `client_id` it is decoded from the JWT).
    let client_id = presented
        .as_ref()
        .map_or_else(|| "-".into(), |p| p.client_id().into_owned());
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
    let seen_condition = &mut seen.condition;
    let result = async {
        let used_basic = presented.as_ref().is_some_and(Presented::used_basic);
        let grant = match (params.get("grant_type"), grant) {
            (_, Some(g)) => g,
            (Some(_), None) => {
                return Err(OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "this grant type is not supported",
                )
                .into());
            }
            (None, None) => {
                return Err(OAuthError::invalid_request("grant_type is required").into());
            }
        };

        let audiences: Vec<&str> = params
            .all("resource")
            .chain(params.all("audience"))
            .collect();
        let dpop = proof.as_ref().map(|p| DpopBinding {
            jkt: &p.jkt,
            replay_key: &p.replay_key,
            until: p.until,
        });
        let origin = Origin::client(
            &client_id,
            Some(ip.to_string()),
            presented.as_ref().map(Presented::method_name),
        );
        let outcome = match (grant, &presented) {
            (Some(grant), presented) => {
                let token = subject_token(&params, grant)?;
                let request = ExchangeRequest {
                    keys: &keys,
                    grant,
                    auth: presented.as_ref().map(Presented::auth),
                    subject_token: token,
                    audiences: &audiences,
                    scope: params.get("scope"),
                    dpop,
                };
                s.warrant.exchange_audited(request, &origin).await
            }
            (None, Some(presented)) => {
                let request = ClientCredentials {
                    keys: &keys,
                    auth: presented.auth(),
                    audiences: &audiences,
                    scope: params.get("scope"),
                    dpop,
                };
                s.warrant.client_credentials_audited(request, &origin).await
            }
            // `presented` is only absent for exchange grants.
            (None, None) => Err(TokenError::InvalidClient(
                warrant_core::grants::ClientFailure::NoCredentials,
            )),
        };
        let issued = match outcome {
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
                    TokenError::Untrusted { code, mismatch } => {
                        // The class in the reason keeps refusals of different kinds apart
                        // when repeats from one source are aggregated.
                        *seen_why = Some(mismatch.class.code());
                        *seen_condition = Some(mismatch.detail.clone());
                        if *code == "invalid_grant" {
                            "invalid_grant"
                        } else {
                            "invalid_request"
                        }
                    }
                    // A refused exchange (delegation: not the owner, revoked, …): the audit
                    // record keeps the check, which the client is told as well.
                    TokenError::InvalidRequest(why) if grant.is_some() => {
                        *seen_condition = Some(why.clone());
                        "invalid_request"
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
            // RFC 8693 §2.2.1: required in a token-exchange response.
            issued_token_type: (grant == Some(ExchangeGrant::TokenExchange))
                .then(|| TOKEN_TYPE_ACCESS_TOKEN.into()),
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
    if let Some(condition) = &seen.condition {
        e.detail = Some(serde_json::json!({"grant": seen.grant, "condition": condition}));
    }
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
