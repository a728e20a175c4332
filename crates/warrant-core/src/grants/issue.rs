//! Building and signing an RFC 9068 access token.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use warrant_jose::JwsSigner;

use super::TokenError;
use crate::directory::ClientEntry;
use crate::scope::{Audience, ScopeSet};
use crate::signing::TenantKeys;
use crate::time::Timestamp;

/// A signed access token and what the response reports about it. `Debug` never shows the
/// token itself.
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u64,
    pub scope: String,
    pub jti: String,
    pub audience: Audience,
    /// `Bearer`, or `DPoP` for a token bound to a DPoP key (RFC 9449 §5).
    pub token_type: &'static str,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("jti", &self.jti)
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("expires_in", &self.expires_in)
            .field("token_type", &self.token_type)
            .finish_non_exhaustive()
    }
}

/// The confirmation a token carries (RFC 7800 `cnf`): the DPoP key's thumbprint (RFC 9449
/// §6.1) and/or the client certificate's (RFC 8705 §3.1).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Confirmation<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jkt: Option<&'a str>,
    #[serde(rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<&'a str>,
}

impl Confirmation<'_> {
    fn is_empty(&self) -> bool {
        self.jkt.is_none() && self.x5t_s256.is_none()
    }
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
    #[serde(skip_serializing_if = "Confirmation::is_empty")]
    cnf: Confirmation<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    federated: Option<&'a Value>,
}

/// What a token issued by exchange carries beyond the client's own token: another subject
/// (delegation keeps the original's `sub`), the `act` chain (RFC 8693 §4.1), the claims copied
/// from an external token (`federated`), and whose custom claims it carries. The default is a
/// client's own token.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Subject<'a> {
    /// `sub`, when not the client itself.
    pub sub: Option<&'a str>,
    pub act: Option<&'a Value>,
    pub federated: Option<&'a Value>,
    /// The custom claims (pre-serialised, see `ClientEntry::claims_fragment`) when they are
    /// not the client's: a delegated token describes its subject.
    pub claims_fragment: Option<&'a str>,
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

/// A token's claims, built and serialised, and the signer that will sign them: issuance in two
/// steps so that a blocking signer (an HSM) can sign off the async threads.
#[derive(Debug)]
pub(crate) struct Unsigned {
    signer: Arc<JwsSigner>,
    claims: Vec<u8>,
    /// Everything but `access_token` (empty until signed).
    token: IssuedToken,
}

impl Unsigned {
    /// Whether signing blocks (an HSM round trip): async callers sign in `spawn_blocking`.
    pub(crate) fn is_blocking(&self) -> bool {
        self.signer.is_blocking()
    }

    /// Signs, on a blocking thread when the signer blocks (a PKCS#11 round trip must not stall
    /// the async workers).
    pub(crate) async fn sign_async(self) -> Result<IssuedToken, TokenError> {
        if self.is_blocking() {
            tokio::task::spawn_blocking(move || self.sign())
                .await
                .map_err(|e| {
                    TokenError::SigningUnavailable(format!("the signing task failed: {e}"))
                })?
        } else {
            self.sign()
        }
    }

    /// Signs. A failure of a key held elsewhere (HSM) is [`TokenError::SigningUnavailable`],
    /// logged where it happened; either way the client sees 503 and nothing internal.
    pub(crate) fn sign(self) -> Result<IssuedToken, TokenError> {
        let Unsigned {
            signer,
            claims,
            mut token,
        } = self;
        token.access_token = signer.sign(&claims).map_err(|_| {
            if signer.is_blocking() {
                TokenError::SigningUnavailable(format!(
                    "the HSM key {} could not sign",
                    signer.key().kid()
                ))
            } else {
                TokenError::Unavailable("signing failed".into())
            }
        })?;
        Ok(token)
    }
}

/// Builds the claims of a token for `client` (about `subject`: the client itself unless the
/// token is delegated) addressed to `audience` with `scopes`, living `lifetime` seconds, bound
/// by `cnf`, to be signed by the tenant's active key.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build(
    jti: &JtiSource,
    keys: &TenantKeys,
    client: &ClientEntry,
    audience: &Audience,
    scopes: &ScopeSet,
    lifetime: u64,
    cnf: Confirmation<'_>,
    subject: &Subject<'_>,
    now: Timestamp,
) -> Result<Unsigned, TokenError> {
    let signer = keys.signer.as_ref().ok_or_else(|| {
        TokenError::Unavailable(format!("tenant {} has no active key", keys.tenant))
    })?;
    let jti = jti.next();
    let scope = scopes.to_delimited();
    let iat = now.secs();
    let a = &client.account;
    let claims = Claims {
        iss: &keys.issuer,
        sub: subject.sub.unwrap_or(a.id.as_str()),
        aud: audience.as_str(),
        exp: iat.saturating_add(lifetime as i64),
        iat,
        nbf: iat,
        jti: &jti,
        client_id: a.id.as_str(),
        scope: &scope,
        tenant: a.tenant.as_str(),
        cnf,
        act: subject.act,
        federated: subject.federated,
    };
    let mut json = serde_json::to_vec(&claims)
        .map_err(|_| TokenError::Unavailable("claims serialisation failed".into()))?;
    let fragment = subject.claims_fragment.unwrap_or(&client.claims_fragment);
    if !fragment.is_empty() {
        json.pop(); // the closing brace
        json.extend_from_slice(fragment.as_bytes());
        json.push(b'}');
    }
    Ok(Unsigned {
        signer: signer.clone(),
        claims: json,
        token: IssuedToken {
            access_token: String::new(),
            expires_in: lifetime,
            scope,
            jti,
            audience: audience.clone(),
            token_type: if cnf.jkt.is_some() { "DPoP" } else { "Bearer" },
        },
    })
}
