//! Domain records, as the core and the stores exchange them. They derive nothing from any
//! database library; each store maps rows to these with checked conversions.

use serde_json::{Map, Value};
use warrant_jose::Algorithm;

use crate::ids::{
    AccountId, AccountName, ApiId, ApiName, SecretName, TenantName, TrustId, TrustName,
};
use crate::scope::{Audience, ScopeSet};
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub name: TenantName,
    pub signing_alg: Algorithm,
    /// Scheduled key rotation: a successor key activates this many seconds after the active
    /// one did (`None`: rotation is manual only). See docs/key-rotation.md.
    pub key_rotation_period: Option<u64>,
    /// Where the tenant's new signing keys are made (docs/hsm.md).
    pub key_source: KeySource,
    /// Whether a `private_key_jwt` assertion may name the token endpoint URL as its `aud`
    /// (old clients; draft-ietf-oauth-rfc7523bis wants the issuer). Default `false`.
    pub token_endpoint_audience: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub revision: i64,
}

/// Where a tenant's new signing keys are generated and held.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KeySource {
    /// In memory, stored wrapped under the master key.
    #[default]
    Software,
    /// On the token of the configured HSM module `hsm.modules.<module>` (a name only: the
    /// library, token and PIN stay server configuration).
    Hsm { module: String },
}

impl KeySource {
    /// The stored form: `software` or `hsm:<module>`.
    pub fn to_stored(&self) -> String {
        match self {
            KeySource::Software => "software".into(),
            KeySource::Hsm { module } => format!("hsm:{module}"),
        }
    }

    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "software" => Some(KeySource::Software),
            _ => {
                let module = s.strip_prefix("hsm:")?;
                Self::valid_module_name(module).then(|| KeySource::Hsm {
                    module: module.to_owned(),
                })
            }
        }
    }

    /// A module name as configuration allows it: 1–64 of `[a-z0-9_-]`.
    pub fn valid_module_name(m: &str) -> bool {
        !m.is_empty()
            && m.len() <= 64
            && m.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    }
}

impl Tenant {
    /// The algorithm of a tenant's keys when none is chosen (DESIGN.md, "Policy").
    pub const DEFAULT_SIGNING_ALG: Algorithm = Algorithm::Es256;
}

/// An audience and the scopes an account may have there.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub audience: Audience,
    pub scopes: ScopeSet,
}

/// How a client may authenticate (DESIGN.md, "Client authentication"; no downgrade).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 7523 §2.2: a JWT signed by a key the account registered.
    PrivateKeyJwt,
    /// RFC 8705 §2.1: a certificate from the configured client CA matching the account's rule.
    TlsClientAuth,
    /// RFC 8705 §2.2: a self-signed certificate the account registered.
    SelfSignedTlsClientAuth,
}

impl AuthMethod {
    pub const SECRET_METHODS: [AuthMethod; 2] =
        [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost];

    /// Every method, in the order discovery lists them.
    pub const ALL: [AuthMethod; 5] = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::PrivateKeyJwt,
        AuthMethod::TlsClientAuth,
        AuthMethod::SelfSignedTlsClientAuth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::TlsClientAuth => "tls_client_auth",
            AuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Whether the method proves a shared secret (the weakest kind: RFC 9700 §2.5).
    pub fn is_secret(self) -> bool {
        matches!(
            self,
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        )
    }
}

/// An account's public credentials and sender constraint: what `private_key_jwt`,
/// `tls_client_auth` and `self_signed_tls_client_auth` check, and whether tokens must be
/// DPoP-bound. Empty for a secret-only account.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountCredentials {
    /// `private_key_jwt`: public keys registered inline.
    pub jwks: Option<warrant_jose::JwkSet>,
    /// `private_key_jwt`: an `https` URL Warrant fetches the keys from (outbound policy).
    pub jwks_uri: Option<String>,
    /// `tls_client_auth`: the rule a certificate from the configured client CA must match.
    pub tls_client_auth: Option<crate::client_auth::CertificateMatch>,
    /// `self_signed_tls_client_auth`: the registered certificates' `x5t#S256` thumbprints.
    pub self_signed_certificates: Vec<String>,
    /// Tokens are issued only with a DPoP proof (RFC 9449), bound by `cnf.jkt`.
    pub dpop_required: bool,
}

/// A service account: a first-class OAuth client.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceAccount {
    pub id: AccountId,
    pub tenant: TenantName,
    pub name: AccountName,
    pub description: String,
    pub enabled: bool,
    pub default_audience: Option<Audience>,
    pub grants: Vec<Grant>,
    /// Seconds; ≤ `max_lifetime`.
    pub default_lifetime: u64,
    /// Seconds; the server's `max_token_lifetime` caps it again at issuance.
    pub max_lifetime: u64,
    /// Custom claims; never a registered claim name (checked on write).
    pub claims: Map<String, Value>,
    pub auth_methods: Vec<AuthMethod>,
    /// Keys, certificates and the DPoP requirement (see [`AccountCredentials`]).
    pub credentials: AccountCredentials,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub revision: i64,
}

impl ServiceAccount {
    pub fn grant_for(&self, aud: &Audience) -> Option<&Grant> {
        self.grants.iter().find(|g| &g.audience == aud)
    }
}

/// A registered API (docs/apis.md): an audience, the scopes it defines and the account that
/// owns it. A grant on its audience may only name its scopes; its owner is who will exchange
/// tokens addressed to it (delegation, not built yet).
#[derive(Debug, Clone, PartialEq)]
pub struct Api {
    pub id: ApiId,
    pub tenant: TenantName,
    /// Unique among the tenant's live APIs.
    pub name: ApiName,
    /// Unique among the tenant's live APIs; never the admin audience. Fixed at registration.
    pub audience: Audience,
    /// Never empty.
    pub scopes: ScopeSet,
    /// A live account of the same tenant.
    pub owner: AccountId,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub revision: i64,
}

/// A federation trust (docs/federation.md): under which conditions tokens of an external
/// issuer may act as an account of the tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Trust {
    pub id: TrustId,
    pub tenant: TenantName,
    /// Unique among the tenant's live trusts.
    pub name: TrustName,
    /// Valid ([`crate::federation::TrustPolicy::validate`]); its `account` is the id of a live
    /// account of the same tenant.
    pub policy: crate::federation::TrustPolicy,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub revision: i64,
}

impl Trust {
    /// The account the trust maps to (its policy holds the id as text).
    pub fn account(&self) -> &str {
        &self.policy.account
    }
}

/// A stored secret: only its HMAC, with the hashing-key version used.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRecord {
    pub account_id: AccountId,
    pub name: SecretName,
    pub hash: [u8; 32],
    pub key_version: u32,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

/// `next → active → retired → removed` (DESIGN.md, "Signing keys").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Next,
    Active,
    Retired,
    Removed,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Removed => "removed",
        }
    }
}

/// A tenant's signing key, its private part wrapped under the master key. The state at a given
/// time is computed from the times, so no job has to flip a column at the right moment.
#[derive(Debug, Clone, PartialEq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub tenant: TenantName,
    pub alg: Algorithm,
    /// The PKCS#8 key wrapped under the master key; empty for an HSM key.
    pub private_wrapped: Vec<u8>,
    /// For a key held in an HSM: the configured module's name and the key's `CKA_LABEL`.
    pub hsm_module: Option<String>,
    pub hsm_label: Option<String>,
    pub created_at: Timestamp,
    /// Published from creation; signs from this time.
    pub activates_at: Timestamp,
    /// Stops signing at this time (a successor has taken over).
    pub retires_at: Option<Timestamp>,
    /// Unpublished at this time (every token it signed has expired).
    pub removed_at: Option<Timestamp>,
}

impl SigningKeyRecord {
    pub fn state_at(&self, now: Timestamp) -> KeyState {
        match (self.removed_at, self.retires_at) {
            (Some(r), _) if now >= r => KeyState::Removed,
            (_, Some(r)) if now >= r => KeyState::Retired,
            _ if now < self.activates_at => KeyState::Next,
            _ => KeyState::Active,
        }
    }

    pub fn wrap_aad(tenant: &TenantName, kid: &str) -> String {
        format!("signing-key:{tenant}:{kid}")
    }
}
