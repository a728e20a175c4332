//! RFC 8693 token exchange and the RFC 7523 §2.1 JWT bearer grant: a token the caller already
//! holds becomes a Warrant access token.
//!
//! Two kinds of subject token:
//! - **External** (its `iss` is not this tenant): federation. The token is checked against the
//!   tenant's trusts of its issuer — signature by the trust's own keys, then
//!   [`crate::federation::evaluate`] — and the first trust (in id order) it satisfies decides
//!   the account the token is issued for. No client authentication is needed; when a client
//!   authenticates anyway it must be that account. Refusals are `invalid_request` (RFC 8693
//!   §2.2.2) or `invalid_grant` (RFC 7523 §3.1) naming only the class of check that failed
//!   ([`TokenError::Untrusted`]); the exact condition goes to the audit record.
//! - **This tenant's own access token** (token exchange only): delegation. The authenticated
//!   client must own the registered API the token is addressed to; the new token keeps the
//!   original's `sub`, records the client in `act` (RFC 8693 §4.1, earlier actors nested), has
//!   scopes ⊆ the original's ∩ the client's grant on the target, and expires no later than the
//!   original.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::client_credentials::{DPOP_JTI, DpopBinding, resolve_target};
use super::issue::{Confirmation, Subject, Unsigned, build};
use super::{ClientFailure, IssuedToken, TokenError};
use crate::audit::{Origin, Outcome, action};
use crate::client_auth::{Authenticated, ClientAuth};
use crate::directory::ClientEntry;
use crate::federation::conditions::shown;
use crate::federation::policy::CLOCK_SKEW_SECONDS;
use crate::federation::{self, Mismatch, MismatchClass};
use crate::ids::AccountId;
use crate::policy_cache::CachedTrust;
use crate::scope::ScopeSet;
use crate::signing::TenantKeys;
use crate::{Timestamp, Warrant};

/// RFC 8693 §2.1.
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 7523 §2.1.
pub const GRANT_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// RFC 8693 §3 token type identifiers.
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
/// The replay-cache kind of single-use federated tokens' `jti`s.
pub const FEDERATION_JTI: &str = "federation";

/// Which grant carried the token: it decides the error code of a refused external token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeGrant {
    /// RFC 8693: `subject_token`.
    TokenExchange,
    /// RFC 7523 §2.1: `assertion`, whose `aud` must name this tenant.
    JwtBearer,
}

impl ExchangeGrant {
    /// The error code for a token no trust accepts.
    pub fn refusal_code(self) -> &'static str {
        match self {
            ExchangeGrant::TokenExchange => "invalid_request",
            ExchangeGrant::JwtBearer => "invalid_grant",
        }
    }

    /// The grant's name in metrics and audit records.
    pub fn name(self) -> &'static str {
        match self {
            ExchangeGrant::TokenExchange => "token_exchange",
            ExchangeGrant::JwtBearer => "jwt_bearer",
        }
    }
}

/// A token-exchange or jwt-bearer request, its parameters as sent (the caller has checked the
/// token type parameters).
#[derive(Clone, Copy)]
pub struct ExchangeRequest<'a> {
    pub keys: &'a TenantKeys,
    pub grant: ExchangeGrant,
    /// Client authentication, if the request carried any.
    pub auth: Option<ClientAuth<'a>>,
    /// `subject_token` or `assertion`.
    pub subject_token: &'a str,
    pub audiences: &'a [&'a str],
    pub scope: Option<&'a str>,
    pub dpop: Option<DpopBinding<'a>>,
}

/// `Debug` never shows the subject token.
impl std::fmt::Debug for ExchangeRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeRequest")
            .field("tenant", &self.keys.tenant)
            .field("grant", &self.grant)
            .field("auth", &self.auth)
            .field("audiences", &self.audiences)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A token ready to sign, and what its audit record says.
struct Ready {
    unsigned: Unsigned,
    /// Who asked: the authenticated client, or the account a trust mapped to.
    actor: String,
    subject: String,
    method: &'static str,
    detail: Value,
    /// A single-use trust's replay key and how long to keep it.
    single_use: Option<(String, Timestamp)>,
}

impl Warrant {
    /// Issues an access token for a token-exchange or jwt-bearer request (module docs), and
    /// records it in the audit log; the token is returned only once its record is committed.
    pub async fn exchange_audited(
        &self,
        req: ExchangeRequest<'_>,
        origin: &Origin,
    ) -> Result<IssuedToken, TokenError> {
        let now = self.clock.now();
        let untrusted = |class, detail: &str| TokenError::Untrusted {
            code: req.grant.refusal_code(),
            mismatch: Mismatch::new(class, detail),
        };
        let (header, claims) = warrant_jose::dangerous::decode_unverified(req.subject_token)
            .map_err(|_| untrusted(MismatchClass::Signature, "the token is not a compact JWS"))?;
        let own = claims.get("iss").and_then(Value::as_str) == Some(req.keys.issuer.as_str());
        let ready = match (own, req.grant) {
            (true, ExchangeGrant::TokenExchange) => self.delegate(&req, now).await?,
            (true, ExchangeGrant::JwtBearer) => {
                return Err(untrusted(
                    MismatchClass::Issuer,
                    "the assertion was issued by this tenant: jwt-bearer takes external tokens",
                ));
            }
            (false, _) => self.federate(&req, &header, &claims, now).await?,
        };
        if let Some(d) = req.dpop
            && !self
                .use_once(&req.keys.tenant, DPOP_JTI, d.replay_key, d.until)
                .await?
        {
            return Err(TokenError::DpopReplayed);
        }
        if let Some((key, until)) = &ready.single_use
            && !self
                .use_once(&req.keys.tenant, FEDERATION_JTI, key, *until)
                .await?
        {
            return Err(untrusted(
                MismatchClass::Replay,
                &format!(
                    "{}: this jti was already exchanged",
                    ready.detail["trust"].as_str().unwrap_or("trust")
                ),
            ));
        }
        let issued = ready.unsigned.sign_async().await?;
        let mut e = Origin {
            actor: ready.actor,
            ..origin.clone()
        }
        .event(
            req.keys.tenant.clone(),
            self.clock.now(),
            action::TOKEN_ISSUE,
            Outcome::Success,
        );
        e.subject = Some(ready.subject);
        e.auth_method = Some(ready.method.to_owned());
        e.jti = Some(issued.jti.clone());
        e.scopes = Some(issued.scope.clone());
        e.audience = Some(issued.audience.as_str().to_owned());
        e.detail = Some(ready.detail);
        self.audit
            .append(e)
            .await
            .map_err(|e| TokenError::Unavailable(e.to_string()))?;
        Ok(issued)
    }

    /// An external token: the first of the tenant's trusts of its issuer that it satisfies.
    async fn federate(
        &self,
        req: &ExchangeRequest<'_>,
        header: &Map<String, Value>,
        claims: &Map<String, Value>,
        now: Timestamp,
    ) -> Result<Ready, TokenError> {
        let keys = req.keys;
        let tenant = &keys.tenant;
        let untrusted = |mismatch| TokenError::Untrusted {
            code: req.grant.refusal_code(),
            mismatch,
        };
        // A client that authenticates must do so correctly, whatever the token.
        let client = match &req.auth {
            Some(auth) => Some(
                self.authenticate_client(tenant, &keys.issuer, auth, now)
                    .await?,
            ),
            None => None,
        };
        let Some(iss_value @ Value::String(iss)) = claims.get("iss") else {
            return Err(untrusted(Mismatch::new(
                MismatchClass::Signature,
                "the token has no iss",
            )));
        };
        let policies = self
            .tenant_policies(tenant)
            .await
            .map_err(|e| TokenError::Unavailable(format!("trusts: {e}")))?;
        let of_issuer = || {
            policies
                .trusts
                .iter()
                .filter(|t| t.trust.policy.issuer == *iss)
        };
        // An authenticated client is only ever issued for itself: only its trusts count.
        let trusts: Vec<&CachedTrust> = of_issuer()
            .filter(|t| {
                client
                    .as_ref()
                    .is_none_or(|c| t.trust.account() == c.client.account.id.as_str())
            })
            .collect();
        if trusts.is_empty() {
            // Reported as a signature failure, before any signature was checked (see
            // `MismatchClass::Signature`): "trusted, but for another account" must not tell a
            // client which issuers the tenant trusts either. `shown` bounds the attacker's iss.
            let iss = shown(iss_value);
            let detail = match of_issuer().count() {
                0 => format!("no trust of this tenant names the issuer {iss}"),
                n => format!(
                    "none of the {n} trust(s) of issuer {iss} maps to the authenticated client"
                ),
            };
            return Err(untrusted(Mismatch::new(MismatchClass::Signature, detail)));
        }
        let kid = header.get("kid").and_then(Value::as_str);
        let mut failures: Vec<Mismatch> = Vec::new();
        let mut matched = None;
        let mut had_keys = false;
        for cached in trusts {
            let t = &cached.trust;
            let named =
                |m: Mismatch| Mismatch::new(m.class, format!("trust {}: {}", t.name, m.detail));
            let found = match &cached.static_keys {
                Some(keys) => Ok(Arc::clone(keys)),
                None => self.trust_keys(&t.policy, kid, now, true).await,
            };
            let verified = match found {
                Err(detail) => Err(format!("keys unavailable: {detail}")),
                Ok(keys) => {
                    had_keys = true;
                    warrant_jose::verify_compact_any_key(req.subject_token, &keys)
                        .map_err(|e| format!("{e} (with the trust's keys)"))
                }
            };
            let verified = match verified {
                Ok(v) => v,
                Err(detail) => {
                    failures.push(named(Mismatch::new(MismatchClass::Signature, detail)));
                    continue;
                }
            };
            if req.grant == ExchangeGrant::JwtBearer && !names_tenant(&verified.claims, keys) {
                failures.push(named(Mismatch::new(
                    MismatchClass::Audience,
                    format!(
                        "the assertion's aud does not name this tenant's issuer {}",
                        keys.issuer
                    ),
                )));
                continue;
            }
            match federation::evaluate(&t.policy, &verified.claims, now.secs()) {
                Ok(f) => {
                    matched = Some((t, f));
                    break;
                }
                Err(m) => failures.push(named(m)),
            }
        }
        if matched.is_none() && !had_keys {
            let causes: Vec<&str> = failures.iter().map(|m| m.detail.as_str()).collect();
            return Err(TokenError::IssuerKeysUnavailable(causes.join("; ")));
        }
        let Some((trust, fed)) = matched else {
            // The most telling failure: a check past the signature, if any trust got there.
            let best = failures
                .iter()
                .position(|m| m.class != MismatchClass::Signature)
                .unwrap_or(0);
            let mismatch = failures.swap_remove(best);
            return Err(untrusted(mismatch));
        };
        let refuse = |class, detail: String| {
            untrusted(Mismatch::new(
                class,
                format!("trust {}: {detail}", trust.name),
            ))
        };
        let account = AccountId::parse(&trust.policy.account).map_err(|_| {
            TokenError::Unavailable(format!("trust {} names no account id", trust.id))
        })?;
        let entry = self
            .directory
            .get(&account)
            .filter(|e| &e.account.tenant == tenant && e.account.enabled)
            .ok_or_else(|| {
                refuse(
                    MismatchClass::AccountDisabled,
                    format!("account {account} is disabled or gone"),
                )
            })?;
        let (audience, scopes) = resolve_target(&entry, req.audiences, req.scope)?;
        self.may_issue_now(&entry, req.dpop.is_some(), now)?;
        let lifetime = trust.policy.lifetime(self.lifetime_for(&entry));
        let mut federated = Map::new();
        federated.insert("iss".into(), Value::String(iss.to_owned()));
        federated.insert("sub".into(), Value::String(fed.subject.clone()));
        for (k, v) in fed.copied {
            federated.entry(k).or_insert(v);
        }
        let federated = Value::Object(federated);
        let cnf = Confirmation {
            jkt: req.dpop.map(|d| d.jkt),
            x5t_s256: client
                .as_ref()
                .and_then(|c| c.certificate_thumbprint.as_deref()),
        };
        let subject = Subject {
            federated: Some(&federated),
            ..Subject::default()
        };
        let unsigned = build(
            &self.jti, keys, &entry, &audience, &scopes, lifetime, cnf, &subject, now,
        )?;
        let single_use = fed.jti.as_ref().map(|jti| {
            (
                format!("{iss}\n{jti}"),
                Timestamp::from_secs(fed.accepted_until.saturating_add(CLOCK_SKEW_SECONDS)),
            )
        });
        Ok(Ready {
            unsigned,
            actor: account.to_string(),
            subject: account.to_string(),
            method: match (&client, req.grant) {
                (Some(c), _) => c.method.as_str(),
                (None, ExchangeGrant::TokenExchange) => "federation",
                (None, ExchangeGrant::JwtBearer) => "jwt_bearer",
            },
            detail: json!({
                "grant": req.grant.name(),
                "trust": trust.name.as_str(),
                "trust_id": trust.id.as_str(),
                "external_iss": iss,
                "external_sub": fed.subject,
            }),
            single_use,
        })
    }

    /// This tenant's own access token, exchanged by the owner of the API it is addressed to.
    async fn delegate(
        &self,
        req: &ExchangeRequest<'_>,
        now: Timestamp,
    ) -> Result<Ready, TokenError> {
        let keys = req.keys;
        let tenant = &keys.tenant;
        let auth = req
            .auth
            .ok_or(TokenError::InvalidClient(ClientFailure::NoCredentials))?;
        let Authenticated {
            client: caller,
            method,
            certificate_thumbprint,
        } = self
            .authenticate_client(tenant, &keys.issuer, &auth, now)
            .await?;
        let refuse = |s: &str| TokenError::InvalidRequest(s.to_owned());
        let original = self
            .check_signed(keys, req.subject_token, now.secs())
            .map_err(|_| {
                refuse("the subject token is not an active access token of this tenant")
            })?;
        // Ownership first: a client learns nothing (revoked or not) of tokens of APIs it does
        // not own.
        let aud = original
            .claims
            .get("aud")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let policies = self
            .tenant_policies(tenant)
            .await
            .map_err(|e| TokenError::Unavailable(format!("APIs: {e}")))?;
        let api = policies.apis.iter().find(|a| a.audience.as_str() == aud);
        let Some(api) = api.filter(|a| a.owner == caller.account.id) else {
            return Err(refuse(
                "only the owner of the registered API a token is addressed to may exchange it",
            ));
        };
        if self.is_revoked(tenant, &original) {
            return Err(refuse("the subject token has been revoked"));
        }
        if original.act_depth().0 >= warrant_jose::MAX_ACT_DEPTH {
            return Err(refuse(
                "the subject token's delegation chain is as long as Warrant allows",
            ));
        }
        // A sender-constrained token stays sender-constrained: the new one is bound to the
        // client's own key or certificate.
        if original.claims.contains_key("cnf")
            && req.dpop.is_none()
            && certificate_thumbprint.is_none()
        {
            return Err(refuse(
                "the subject token is sender-constrained: present a DPoP proof or a client \
                 certificate so that the new token is bound too",
            ));
        }
        let subject_entry = original
            .sub
            .as_deref()
            .and_then(|s| AccountId::parse(s).ok())
            .and_then(|id| self.directory.get(&id))
            .filter(|e| &e.account.tenant == tenant && e.account.enabled)
            .ok_or_else(|| refuse("the subject token's account is disabled or gone"))?;
        let (audience, granted) = resolve_target(&caller, req.audiences, req.scope)?;
        let held = original
            .claims
            .get("scope")
            .and_then(Value::as_str)
            .and_then(ScopeSet::parse_delimited)
            .unwrap_or_default();
        let asked = req.scope.is_some_and(|s| !s.trim().is_empty());
        let scopes = if asked {
            if let Some(missing) = granted.first_missing_from(&held) {
                return Err(TokenError::InvalidScope(format!(
                    "scope {:?} is not in the subject token",
                    missing.as_str()
                )));
            }
            granted
        } else {
            let both = ScopeSet::from_scopes(granted.iter().filter(|s| held.contains(s)).cloned());
            if both.is_empty() && !granted.is_empty() {
                return Err(TokenError::InvalidScope(
                    "the subject token holds none of the scopes the client is granted on the \
                     requested resource"
                        .into(),
                ));
            }
            both
        };
        self.may_issue_now(&caller, req.dpop.is_some(), now)?;
        let left = original.exp.saturating_sub(now.secs());
        let lifetime = self
            .lifetime_for(&caller)
            .min(u64::try_from(left).unwrap_or(0))
            .max(1);
        // The original's own custom claims, not the subject's current ones: delegation never
        // carries more than the token it started from.
        let custom = crate::directory::claims_fragment(&original.claims);
        let mut act = Map::new();
        act.insert("sub".into(), Value::String(caller.account.id.to_string()));
        if let Some(earlier) = original.claims.get("act") {
            act.insert("act".into(), earlier.clone());
        }
        let act = Value::Object(act);
        let subject = Subject {
            sub: Some(subject_entry.account.id.as_str()),
            act: Some(&act),
            federated: original.claims.get("federated"),
            claims_fragment: Some(&custom),
        };
        let cnf = Confirmation {
            jkt: req.dpop.map(|d| d.jkt),
            x5t_s256: certificate_thumbprint.as_deref(),
        };
        let unsigned = build(
            &self.jti, keys, &caller, &audience, &scopes, lifetime, cnf, &subject, now,
        )?;
        Ok(Ready {
            unsigned,
            actor: caller.account.id.to_string(),
            subject: subject_entry.account.id.to_string(),
            method: method.as_str(),
            detail: json!({
                "grant": "token_exchange",
                "delegated_from": original.jti,
                "api": api.name.as_str(),
                "act": act,
            }),
            single_use: None,
        })
    }

    /// The policy every grant applies before issuing for `entry`: DPoP when the account
    /// requires it, and nothing in the second of a revocation watermark.
    pub(crate) fn may_issue_now(
        &self,
        entry: &ClientEntry,
        dpop: bool,
        now: Timestamp,
    ) -> Result<(), TokenError> {
        if entry.account.credentials.dpop_required && !dpop {
            return Err(TokenError::DpopRequired);
        }
        if self
            .revocations
            .not_before(&entry.account.tenant, entry.account.id.as_str())
            .is_some_and(|nb| nb >= now.secs())
        {
            // A watermark revokes tokens with iat ≤ not_before: this second issues nothing.
            return Err(TokenError::Unavailable(
                "the account's tokens were revoked this second; retry in a second".into(),
            ));
        }
        Ok(())
    }
}

/// RFC 7523 §3 item 3: the assertion's `aud` names this tenant — its issuer, or its token
/// endpoint URL.
fn names_tenant(claims: &Map<String, Value>, keys: &TenantKeys) -> bool {
    let endpoint = format!("{}/token", keys.issuer);
    let ok = |v: &Value| {
        v.as_str()
            .is_some_and(|a| a == keys.issuer || a == endpoint)
    };
    match claims.get("aud") {
        Some(Value::Array(a)) => a.iter().any(ok),
        Some(v) => ok(v),
        None => false,
    }
}
