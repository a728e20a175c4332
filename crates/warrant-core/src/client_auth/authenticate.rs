//! One entry point for every client-authentication method: the presented credential is checked
//! against the in-memory directory, the account's allowed methods are enforced (no downgrade),
//! and the result says how the client proved itself and which certificate, if any, the token
//! must be bound to (RFC 8705 §3).

use std::borrow::Cow;
use std::sync::Arc;

use super::PresentedCertificate;
use super::assertion::{self, AssertionFailure, AssertionPolicy};
use crate::directory::ClientEntry;
use crate::grants::{ClientFailure, SecretCredentials, TokenError};
use crate::ids::{AccountId, TenantName};
use crate::model::AuthMethod;
use crate::{Timestamp, Warrant};

/// The replay-cache kind of client assertion `jti`s.
pub const ASSERTION_JTI: &str = "client_assertion";
/// How far ahead an assertion's `exp` may be (seconds): assertions are for one request.
pub const ASSERTION_MAX_AHEAD_SECS: i64 = 300;
/// Clock skew allowed on `exp`, `iat` and `nbf` (seconds).
pub const ASSERTION_SKEW_SECS: i64 = 60;

/// A client credential as presented (exactly one per request, RFC 6749 §2.3).
#[derive(Clone, Copy)]
pub enum ClientAuth<'a> {
    /// `client_secret_basic` / `client_secret_post`.
    Secret(SecretCredentials<'a>),
    /// `private_key_jwt` (RFC 7523 §2.2): `client_assertion`, and `client_id` if sent.
    Assertion {
        client_id: Option<&'a str>,
        assertion: &'a str,
    },
    /// `tls_client_auth` / `self_signed_tls_client_auth` (RFC 8705 §2): `client_id` and the
    /// connection's (or trusted proxy's) certificate.
    Certificate {
        client_id: &'a str,
        certificate: &'a PresentedCertificate,
    },
}

/// `Debug` names the method and client, never a secret or an assertion.
impl std::fmt::Debug for ClientAuth<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("method", &self.method_name())
            .field("client_id", &self.client_id())
            .finish_non_exhaustive()
    }
}

impl<'a> ClientAuth<'a> {
    /// The client id as presented (for an assertion without `client_id`: its unverified
    /// `sub`), for logs and audit records; attacker-controlled.
    pub fn client_id(&self) -> Option<Cow<'a, str>> {
        match *self {
            ClientAuth::Secret(s) => Some(Cow::Borrowed(s.client_id)),
            ClientAuth::Assertion {
                client_id: Some(id),
                ..
            } => Some(Cow::Borrowed(id)),
            ClientAuth::Assertion { assertion, .. } => {
                assertion::claimed_client_id(assertion).map(Cow::Owned)
            }
            ClientAuth::Certificate { client_id, .. } => Some(Cow::Borrowed(client_id)),
        }
    }

    /// The method as the request shows it (a certificate's exact method is known only once
    /// the account is: `tls_client_auth` names both here).
    pub fn method_name(&self) -> &'static str {
        match self {
            ClientAuth::Secret(s) => s.method.as_str(),
            ClientAuth::Assertion { .. } => AuthMethod::PrivateKeyJwt.as_str(),
            ClientAuth::Certificate { .. } => AuthMethod::TlsClientAuth.as_str(),
        }
    }
}

/// A client that proved itself.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub client: Arc<ClientEntry>,
    pub method: AuthMethod,
    /// `x5t#S256` of the certificate that authenticated the client: the token is bound to it.
    pub certificate_thumbprint: Option<String>,
}

impl Warrant {
    /// Authenticates a client by any method. Secrets stay synchronous and store-free; an
    /// assertion records its `jti` in the store (single use across replicas) and may fetch
    /// the account's `jwks_uri`. A store failure is `Unavailable` (503), never a 401.
    pub async fn authenticate_client(
        &self,
        tenant: &TenantName,
        issuer: &str,
        auth: &ClientAuth<'_>,
        now: Timestamp,
    ) -> Result<Authenticated, TokenError> {
        match *auth {
            ClientAuth::Secret(creds) => {
                let client = self
                    .authenticate_secret(tenant, creds, now)
                    .map_err(TokenError::InvalidClient)?;
                Ok(Authenticated {
                    client,
                    method: creds.method,
                    certificate_thumbprint: None,
                })
            }
            ClientAuth::Certificate {
                client_id,
                certificate,
            } => self
                .authenticate_certificate(tenant, client_id, certificate)
                .map_err(TokenError::InvalidClient),
            ClientAuth::Assertion {
                client_id,
                assertion,
            } => {
                self.authenticate_assertion(tenant, issuer, client_id, assertion, now)
                    .await
            }
        }
    }

    fn client_entry(
        &self,
        tenant: &TenantName,
        client_id: &str,
    ) -> Result<Arc<ClientEntry>, ClientFailure> {
        let id = AccountId::parse(client_id).map_err(|_| ClientFailure::MalformedClientId)?;
        self.directory
            .get(&id)
            .filter(|e| &e.account.tenant == tenant)
            .ok_or(ClientFailure::UnknownClient)
    }

    /// RFC 8705 §2.1 (`tls_client_auth`: chain to the configured client CA and the account's
    /// subject or SAN rule) or §2.2 (`self_signed_tls_client_auth`: a registered certificate).
    fn authenticate_certificate(
        &self,
        tenant: &TenantName,
        client_id: &str,
        cert: &PresentedCertificate,
    ) -> Result<Authenticated, ClientFailure> {
        let entry = self.client_entry(tenant, client_id)?;
        let a = &entry.account;
        let allows = |m| a.auth_methods.contains(&m);
        if !allows(AuthMethod::TlsClientAuth) && !allows(AuthMethod::SelfSignedTlsClientAuth) {
            return Err(ClientFailure::MethodNotAllowed);
        }
        let pki = allows(AuthMethod::TlsClientAuth)
            && cert.chain_verified
            && a.credentials
                .tls_client_auth
                .as_ref()
                .is_some_and(|rule| rule.matches(cert));
        let self_signed = allows(AuthMethod::SelfSignedTlsClientAuth)
            && a.credentials.self_signed_certificates.iter().any(|t| {
                warrant_jose::crypto::constant_time_eq(t.as_bytes(), cert.x5t_s256.as_bytes())
            });
        let method = match (pki, self_signed) {
            (true, _) => AuthMethod::TlsClientAuth,
            (false, true) => AuthMethod::SelfSignedTlsClientAuth,
            (false, false) => return Err(ClientFailure::CertificateMismatch),
        };
        if !a.enabled {
            return Err(ClientFailure::Disabled);
        }
        Ok(Authenticated {
            client: entry,
            method,
            certificate_thumbprint: Some(cert.x5t_s256.clone()),
        })
    }

    /// RFC 7523 §3 / OIDC Core §9 `private_key_jwt`; the checks are in
    /// [`assertion::check_assertion`], the single use of its `jti` here.
    async fn authenticate_assertion(
        &self,
        tenant: &TenantName,
        issuer: &str,
        client_id: Option<&str>,
        jwt: &str,
        now: Timestamp,
    ) -> Result<Authenticated, TokenError> {
        let fail = TokenError::InvalidClient;
        let claimed =
            assertion::claimed_client_id(jwt).ok_or(fail(ClientFailure::Assertion("malformed")))?;
        if client_id.is_some_and(|id| id != claimed) {
            return Err(fail(ClientFailure::Assertion("client_id_mismatch")));
        }
        let entry = self.client_entry(tenant, &claimed).map_err(fail)?;
        let a = &entry.account;
        if !a.auth_methods.contains(&AuthMethod::PrivateKeyJwt) {
            return Err(fail(ClientFailure::MethodNotAllowed));
        }
        let keys = match &a.credentials.jwks_uri {
            None => entry.assertion_keys.clone(),
            Some(uri) => {
                let Some(cache) = self.client_jwks.get() else {
                    tracing::warn!(tenant = %tenant, account = %a.id, "an account names a jwks_uri but this server fetches none");
                    return Err(fail(ClientFailure::KeysUnavailable));
                };
                let kid = assertion::claimed_key_id(jwt);
                cache
                    .keys(uri, kid.as_deref(), now)
                    .await
                    .map_err(|e| {
                        tracing::warn!(tenant = %tenant, account = %a.id, error = %e, "the account's jwks_uri could not be fetched");
                        fail(ClientFailure::KeysUnavailable)
                    })?
            }
        };
        let token_endpoint = format!("{issuer}/token");
        let mut policy = AssertionPolicy {
            issuer,
            token_endpoint: &token_endpoint,
            accept_token_endpoint_audience: false,
            max_ahead_secs: ASSERTION_MAX_AHEAD_SECS,
            skew_secs: ASSERTION_SKEW_SECS,
        };
        let checked = match assertion::check_assertion(jwt, &keys, &claimed, &policy, now) {
            Err(AssertionFailure::Audience) if self.token_endpoint_audience(tenant).await? => {
                policy.accept_token_endpoint_audience = true;
                assertion::check_assertion(jwt, &keys, &claimed, &policy, now)
            }
            other => other,
        }
        .map_err(|f| fail(ClientFailure::Assertion(f.as_str())))?;
        if !a.enabled {
            return Err(fail(ClientFailure::Disabled));
        }
        // Single use, across replicas, until the assertion could no longer be accepted.
        let until = Timestamp::from_secs(checked.exp.saturating_add(ASSERTION_SKEW_SECS));
        let first = self
            .use_once(
                tenant,
                ASSERTION_JTI,
                &format!("{}:{}", a.id, checked.jti),
                until,
            )
            .await?;
        if !first {
            return Err(fail(ClientFailure::Assertion("replayed")));
        }
        Ok(Authenticated {
            client: entry,
            method: AuthMethod::PrivateKeyJwt,
            certificate_thumbprint: None,
        })
    }

    /// The tenant's opt-in to token-endpoint audiences (read only when an assertion names
    /// one: the default path never reads the store).
    async fn token_endpoint_audience(&self, tenant: &TenantName) -> Result<bool, TokenError> {
        Ok(self
            .store
            .get_tenant(tenant)
            .await
            .map_err(|e| TokenError::Unavailable(format!("tenant lookup: {e}")))?
            .is_some_and(|t| t.token_endpoint_audience))
    }

    /// Records a single-use identifier (a DPoP proof's `jti`) until `until`: `Ok(false)` if
    /// it was already used on any replica.
    pub async fn use_once(
        &self,
        tenant: &TenantName,
        kind: &'static str,
        jti: &str,
        until: Timestamp,
    ) -> Result<bool, TokenError> {
        self.replay
            .use_once(crate::store::UsedJti {
                tenant: tenant.clone(),
                kind,
                jti: jti.to_owned(),
                expires_at: until,
            })
            .await
            .map_err(|e| TokenError::Unavailable(format!("replay cache: {e}")))
    }
}
