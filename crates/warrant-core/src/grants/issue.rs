//! Building and signing an RFC 9068 access token.

use serde::Serialize;

use super::TokenError;
use crate::directory::ClientEntry;
use crate::scope::{Audience, ScopeSet};
use crate::signing::TenantKeys;
use crate::time::Timestamp;

/// A signed access token and what the response reports about it.
#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u64,
    pub scope: String,
    pub jti: String,
    pub audience: Audience,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    tenant: &'a str,
}

/// Signs a token for `client` addressed to `audience` with `scopes`, living `lifetime` seconds.
pub(crate) fn issue(
    keys: &TenantKeys,
    client: &ClientEntry,
    audience: &Audience,
    scopes: &ScopeSet,
    lifetime: u64,
    now: Timestamp,
) -> Result<IssuedToken, TokenError> {
    let signer = keys.signer.as_ref().ok_or_else(|| {
        TokenError::Unavailable(format!("tenant {} has no active key", keys.tenant))
    })?;
    let jti_bytes: [u8; 16] = warrant_jose::crypto::random_array()
        .map_err(|_| TokenError::Unavailable("randomness failed".into()))?;
    let jti = warrant_jose::b64::encode(jti_bytes);
    let scope = scopes.to_delimited();
    let iat = now.secs();
    let a = &client.account;
    let claims = Claims {
        iss: &keys.issuer,
        sub: a.id.as_str(),
        aud: audience.as_str(),
        exp: iat.saturating_add(lifetime as i64),
        iat,
        nbf: iat,
        jti: &jti,
        client_id: a.id.as_str(),
        scope: &scope,
        tenant: a.tenant.as_str(),
    };
    let mut json = serde_json::to_vec(&claims)
        .map_err(|_| TokenError::Unavailable("claims serialisation failed".into()))?;
    if !client.claims_fragment.is_empty() {
        json.pop(); // the closing brace
        json.extend_from_slice(client.claims_fragment.as_bytes());
        json.push(b'}');
    }
    let access_token = signer
        .sign(&json)
        .map_err(|_| TokenError::Unavailable("signing failed".into()))?;
    Ok(IssuedToken {
        access_token,
        expires_in: lifetime,
        scope,
        jti,
        audience: audience.clone(),
    })
}
