//! RFC 6749 §4.4: the client credentials grant, with client secrets (§2.3.1).

use std::sync::Arc;

use super::issue::{Confirmation, Subject, Unsigned, build};
use super::{ClientFailure, IssuedToken, TokenError};
use crate::audit::{Origin, Outcome, action};
use crate::client_auth::{Authenticated, ClientAuth};
use crate::directory::ClientEntry;
use crate::ids::{AccountId, TenantName};
use crate::model::AuthMethod;
use crate::scope::{Audience, ScopeSet};
use crate::secret::ClientSecret;
use crate::{Timestamp, Warrant};

/// A client id and secret as presented (already form-decoded), and how they were presented.
/// `Debug` names the method and client id, never the secret.
#[derive(Clone, Copy)]
pub struct SecretCredentials<'a> {
    pub method: AuthMethod,
    pub client_id: &'a str,
    pub secret: &'a str,
}

impl std::fmt::Debug for SecretCredentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCredentials")
            .field("method", &self.method)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A client-credentials token request, its parameters as sent.
#[derive(Debug, Clone, Copy)]
pub struct ClientCredentials<'a> {
    /// The tenant's keys, as the caller already looked them up (the tenant exists).
    pub keys: &'a crate::TenantKeys,
    /// How the client authenticates (exactly one method).
    pub auth: ClientAuth<'a>,
    /// Every `resource` and `audience` value (RFC 8707 §2 allows repeats).
    pub audiences: &'a [&'a str],
    /// The `scope` parameter, if sent.
    pub scope: Option<&'a str>,
    /// RFC 9449: a DPoP proof the caller checked ([`crate::dpop::check_proof`]). Once the
    /// client is authenticated its `jti` is recorded (single use across replicas) and the
    /// token is bound to its key (`cnf.jkt`, `token_type: DPoP`).
    pub dpop: Option<DpopBinding<'a>>,
}

/// A checked DPoP proof, as issuance needs it.
#[derive(Debug, Clone, Copy)]
pub struct DpopBinding<'a> {
    /// The proof key's RFC 7638 thumbprint.
    pub jkt: &'a str,
    /// [`crate::dpop::DpopProof::replay_key`].
    pub replay_key: &'a str,
    /// [`crate::dpop::DpopProof::replay_until`] (NumericDate seconds), as a [`Timestamp`].
    pub until: Timestamp,
}

/// The replay-cache kind of DPoP proof `jti`s.
pub const DPOP_JTI: &str = "dpop";

/// A fixed hash that no secret is known to match, so an unknown client costs one HMAC and one
/// comparison, like a known client with a wrong secret.
const DUMMY_HASH: [u8; 32] = [0x5a; 32];

impl Warrant {
    /// Authenticates a client by secret against the in-memory directory. Constant time in the
    /// secret; an unknown client does the same work as a wrong secret.
    pub fn authenticate_secret(
        &self,
        tenant: &TenantName,
        creds: SecretCredentials<'_>,
        now: Timestamp,
    ) -> Result<Arc<ClientEntry>, ClientFailure> {
        let id = AccountId::parse(creds.client_id).map_err(|_| ClientFailure::MalformedClientId)?;
        let secret = ClientSecret::parse(creds.secret).ok_or(ClientFailure::MalformedSecret)?;
        let hashing = self.hashing();
        let entry = self
            .directory
            .get(&id)
            .filter(|e| &e.account.tenant == tenant);
        let Some(entry) = entry else {
            let h = secret.hash(&hashing, hashing.current()).unwrap_or_default();
            let _ = warrant_jose::crypto::constant_time_eq(&h, &DUMMY_HASH);
            return Err(ClientFailure::UnknownClient);
        };
        // Compare against every secret (no early exit), computing each key version's HMAC once.
        let mut matched = None;
        let mut cached: Option<(u32, [u8; 32])> = None;
        for (i, s) in entry.secrets.iter().enumerate() {
            let h = match cached {
                Some((v, h)) if v == s.key_version => h,
                _ => {
                    let h = secret.hash(&hashing, s.key_version).unwrap_or_default();
                    cached = Some((s.key_version, h));
                    h
                }
            };
            if warrant_jose::crypto::constant_time_eq(&h, &s.hash) {
                matched = Some(i);
            }
        }
        if entry.secrets.is_empty() {
            let h = secret.hash(&hashing, hashing.current()).unwrap_or_default();
            let _ = warrant_jose::crypto::constant_time_eq(&h, &DUMMY_HASH);
        }
        let Some(i) = matched else {
            return Err(ClientFailure::WrongSecret);
        };
        let s = &entry.secrets[i];
        if s.expires_at.is_some_and(|t| now >= t) {
            return Err(ClientFailure::SecretExpired);
        }
        if !entry.account.enabled {
            return Err(ClientFailure::Disabled);
        }
        if !entry.account.auth_methods.contains(&creds.method) {
            return Err(ClientFailure::MethodNotAllowed);
        }
        s.mark_used(now);
        Ok(entry)
    }

    /// Everything but the authentication and the signature: sender constraint, target,
    /// revocation watermark, claims.
    fn client_credentials_unsigned(
        &self,
        req: &ClientCredentials<'_>,
        authenticated: &Authenticated,
        now: Timestamp,
    ) -> Result<Unsigned, TokenError> {
        let keys = req.keys;
        let client = &authenticated.client;
        if client.account.credentials.dpop_required && req.dpop.is_none() {
            return Err(TokenError::DpopRequired);
        }
        let (audience, scopes) = resolve_target(client, req.audiences, req.scope)?;
        self.may_issue_now(client, req.dpop.is_some(), now)?;
        let lifetime = self.lifetime_for(client);
        let cnf = Confirmation {
            jkt: req.dpop.map(|d| d.jkt),
            x5t_s256: authenticated.certificate_thumbprint.as_deref(),
        };
        build(
            &self.jti,
            keys,
            client,
            &audience,
            &scopes,
            lifetime,
            cnf,
            &Subject::default(),
            now,
        )
    }

    /// Issues an access token for the client credentials grant (RFC 6749 §4.4): authenticates
    /// the client by any allowed method, applies its policy, signs, and records the issuance in
    /// the audit log; the token is returned only once its record is durably committed. A key
    /// held in an HSM signs on a blocking thread (a PKCS#11 round trip must not stall the async
    /// workers).
    pub async fn client_credentials_audited(
        &self,
        req: ClientCredentials<'_>,
        origin: &Origin,
    ) -> Result<IssuedToken, TokenError> {
        let now = self.clock.now();
        let authenticated = self
            .authenticate_client(&req.keys.tenant, &req.keys.issuer, &req.auth, now)
            .await?;
        let unsigned = self.client_credentials_unsigned(&req, &authenticated, now)?;
        if let Some(d) = req.dpop
            && !self
                .use_once(&req.keys.tenant, DPOP_JTI, d.replay_key, d.until)
                .await?
        {
            return Err(TokenError::DpopReplayed);
        }
        let issued = unsigned.sign_async().await?;
        let mut e = origin.event(
            req.keys.tenant.clone(),
            self.clock.now(),
            action::TOKEN_ISSUE,
            Outcome::Success,
        );
        e.subject = Some(authenticated.client.account.id.as_str().to_owned());
        e.auth_method = Some(authenticated.method.as_str().to_owned());
        e.jti = Some(issued.jti.clone());
        e.scopes = Some(issued.scope.clone());
        e.audience = Some(issued.audience.as_str().to_owned());
        self.audit
            .append(e)
            .await
            .map_err(|e| TokenError::Unavailable(e.to_string()))?;
        Ok(issued)
    }

    /// The account's default lifetime, capped by its maximum and the server's.
    pub(crate) fn lifetime_for(&self, client: &ClientEntry) -> u64 {
        let a = &client.account;
        a.default_lifetime
            .min(a.max_lifetime)
            .min(self.config.max_token_lifetime)
            .max(1)
    }
}

/// Chooses the audience (RFC 8707: one distinct value, or the account's default) and the scopes
/// (the requested ones if all are granted there, else `invalid_scope`; none requested: all
/// granted).
pub(crate) fn resolve_target(
    client: &ClientEntry,
    audiences: &[&str],
    scope: Option<&str>,
) -> Result<(Audience, ScopeSet), TokenError> {
    let mut chosen: Option<&str> = None;
    for a in audiences {
        match chosen {
            Some(c) if c != *a => {
                return Err(TokenError::InvalidTarget(
                    "more than one distinct audience was requested; a token has exactly one".into(),
                ));
            }
            _ => chosen = Some(a),
        }
    }
    let audience = match chosen {
        Some(raw) => Audience::parse(raw).ok_or_else(|| {
            TokenError::InvalidTarget(
                "the resource must be an absolute URI without a fragment".into(),
            )
        })?,
        None => client.account.default_audience.clone().ok_or_else(|| {
            TokenError::InvalidTarget(
                "no resource was requested and the client has no default audience".into(),
            )
        })?,
    };
    let grant = client.account.grant_for(&audience).ok_or_else(|| {
        TokenError::InvalidTarget("the client has no grant for the requested resource".into())
    })?;
    let scopes = match scope {
        None => grant.scopes.clone(),
        Some(raw) => {
            let requested = ScopeSet::parse_delimited(raw).ok_or_else(|| {
                TokenError::InvalidScope("the scope parameter is malformed".into())
            })?;
            if requested.is_empty() {
                grant.scopes.clone()
            } else if let Some(missing) = requested.first_missing_from(&grant.scopes) {
                return Err(TokenError::InvalidScope(format!(
                    "scope {:?} is not granted for this resource",
                    missing.as_str()
                )));
            } else {
                requested
            }
        }
    };
    Ok((audience, scopes))
}
