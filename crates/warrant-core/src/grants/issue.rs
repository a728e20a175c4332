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

/// Token ids: a random 64-bit prefix drawn once per process and a 64-bit counter, base64url
/// (22 characters). `jti` must be unique, not secret (RFC 7519 §4.1.7): a random prefix keeps
/// replicas and restarts apart, and the counter spares the CSPRNG a call per token.
#[derive(Debug)]
pub(crate) struct JtiSource {
    prefix: [u8; 8],
    counter: std::sync::atomic::AtomicU64,
}

impl JtiSource {
    pub(crate) fn new() -> Result<Self, warrant_jose::JoseError> {
        Ok(Self {
            prefix: warrant_jose::crypto::random_array()?,
            counter: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub(crate) fn next(&self) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.prefix);
        bytes[8..].copy_from_slice(&n.to_be_bytes());
        warrant_jose::b64::encode(bytes)
    }
}

/// Signs a token for `client` addressed to `audience` with `scopes`, living `lifetime` seconds.
pub(crate) fn issue(
    jti: &JtiSource,
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
    let jti = jti.next();
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
