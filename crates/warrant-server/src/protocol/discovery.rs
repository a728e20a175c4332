//! `GET {issuer}/.well-known/openid-configuration` and
//! `GET /.well-known/oauth-authorization-server/t/{tenant}` (RFC 8414 §3: the well-known suffix
//! goes between host and path). Both return the same truthful document: only endpoints that
//! exist are listed, and `issuer` equals the URL prefix exactly.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use warrant_core::model::AuthMethod;
use warrant_jose::Algorithm;
use warrant_proto::oauth::ProviderMetadata;

use super::tenant_keys;
use crate::AppState;
use crate::error::OAuthError;

pub(crate) fn metadata(state: &AppState, tenant: &str) -> Result<Response, OAuthError> {
    let keys = tenant_keys(state, tenant)?;
    let issuer = keys.issuer.clone();
    let algs = keys.algs.iter().map(|a| a.as_str().to_owned()).collect();
    // Introspection and revocation authenticate clients exactly as the token endpoint does.
    // Certificate methods only where a certificate can reach us (HTTPS here, or a trusted
    // proxy forwarding one): metadata is truthful.
    let certificates = state.accepts_client_certificates();
    let auth_methods: Vec<String> = AuthMethod::ALL
        .into_iter()
        .filter(|m| {
            certificates
                || !matches!(
                    m,
                    AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth
                )
        })
        .map(|m| m.as_str().to_owned())
        .collect();
    let jws_algs: Vec<String> = Algorithm::ALL.map(|a| a.as_str().to_owned()).to_vec();
    let body = ProviderMetadata {
        token_endpoint: format!("{issuer}/token"),
        jwks_uri: format!("{issuer}/jwks"),
        introspection_endpoint: Some(format!("{issuer}/introspect")),
        introspection_endpoint_auth_methods_supported: auth_methods.clone(),
        revocation_endpoint: Some(format!("{issuer}/revoke")),
        revocation_endpoint_auth_methods_supported: auth_methods.clone(),
        issuer,
        grant_types_supported: vec![
            "client_credentials".into(),
            warrant_core::grants::GRANT_TOKEN_EXCHANGE.into(),
            warrant_core::grants::GRANT_JWT_BEARER.into(),
        ],
        token_endpoint_auth_methods_supported: auth_methods,
        // As the Kubernetes and SPIRE issuers publish them, so cloud workload-identity
        // federation can trust a Warrant tenant (DESIGN.md, "Protocol endpoints").
        response_types_supported: vec!["id_token".into()],
        subject_types_supported: vec!["public".into()],
        id_token_signing_alg_values_supported: algs,
        scopes_supported: Vec::new(),
        token_endpoint_auth_signing_alg_values_supported: jws_algs.clone(),
        tls_client_certificate_bound_access_tokens: certificates,
        dpop_signing_alg_values_supported: jws_algs,
    };
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(resp)
}

pub async fn openid_configuration(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Response, OAuthError> {
    metadata(&s, &tenant)
}

pub async fn oauth_metadata(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Response, OAuthError> {
    metadata(&s, &tenant)
}
