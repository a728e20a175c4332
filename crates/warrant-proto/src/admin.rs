//! Admin API bodies (`/admin/v1/…`). Errors are RFC 9457 problem details ([`Problem`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// RFC 9457 problem details.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type", default = "about_blank")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn about_blank() -> String {
    "about:blank".into()
}

/// A page of a cursor list: `{"items":[…],"next_cursor":…}` (`null` when there is no more).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// An audience and the scopes an account may have there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub audience: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenant {
    pub name: String,
    pub issuer: String,
    pub signing_alg: String,
    /// Scheduled key rotation period, seconds (`null`: manual rotation only).
    #[serde(default)]
    pub key_rotation_period_seconds: Option<u64>,
    /// Where the tenant's new signing keys are made: `"software"` (the default) or
    /// `{"hsm":{"module":"<name>"}}`, a module of the server's `hsm.modules` configuration.
    #[serde(default)]
    pub key_source: KeySource,
    /// Client assertions may name the token endpoint URL as `aud` (default: only the issuer).
    #[serde(default)]
    pub token_endpoint_audience: bool,
    pub created_at: String,
    pub updated_at: String,
    pub revision: i64,
}

/// A tenant's key source on the wire (docs/hsm.md). Only a module's name: libraries, slots and
/// PINs are server configuration, never set through the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum KeySource {
    #[default]
    Software,
    Hsm {
        module: String,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateTenant {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_alg: Option<String>,
}

/// A service account as the admin API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceAccount {
    pub id: String,
    pub name: String,
    pub tenant: String,
    pub description: String,
    pub enabled: bool,
    pub default_audience: Option<String>,
    pub grants: Vec<Grant>,
    pub default_lifetime_seconds: u64,
    pub max_lifetime_seconds: u64,
    pub claims: Map<String, Value>,
    pub auth_methods: Vec<String>,
    /// `private_key_jwt` keys, inline (RFC 7517 JWK Set of public keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// `private_key_jwt` keys fetched from this `https` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// `tls_client_auth` rule (RFC 8705 §2.1.2): exactly one of the three.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_subject_dn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_dns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_uri: Option<String>,
    /// `x5t#S256` thumbprints of the certificates registered for `self_signed_tls_client_auth`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_client_certificate_thumbprints: Vec<String>,
    /// Tokens are issued only with a DPoP proof (RFC 9449 §5.2 client metadata).
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    pub client_id: String,
    pub issuer: String,
    pub token_endpoint: String,
    pub created_at: String,
    pub updated_at: String,
    pub revision: i64,
}

/// `POST /admin/v1/tenants/{t}/service-accounts`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateServiceAccount {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_audience: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<Grant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_lifetime_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lifetime_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Map<String, Value>>,
    /// Allowed client-authentication methods; derived from the credentials when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_methods: Option<Vec<String>>,
    /// `private_key_jwt` keys, inline (RFC 7517 JWK Set of public keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// `private_key_jwt` keys fetched from this `https` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// `tls_client_auth` rule (RFC 8705 §2.1.2): exactly one of the three.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_subject_dn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_dns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_uri: Option<String>,
    /// PEM certificates for `self_signed_tls_client_auth` (only their thumbprints are kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_client_certificates: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens: Option<bool>,
}

/// A registered API as the admin API shows it (docs/apis.md): a grant on its `audience` may
/// only name its `scopes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Api {
    pub id: String,
    pub name: String,
    pub tenant: String,
    /// Fixed at registration.
    pub audience: String,
    pub scopes: Vec<String>,
    /// The owning account's id.
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub revision: i64,
}

/// `POST /admin/v1/tenants/{t}/apis`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApi {
    pub name: String,
    pub audience: String,
    /// The scopes the API defines (at least one; space-separated lists are split).
    pub scopes: Vec<String>,
    /// The owning account: its id or its name.
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A federation trust as the admin API shows it (docs/federation.md): its id, name and tenant,
/// then the fields of its policy (`issuer`, `jwks`, `audience`, `conditions`,
/// `max_age_seconds`, `single_use`, `account` — the account's id —, `copy_claims`,
/// `max_lifetime_seconds`), kept as JSON here: their shape is warrant-core's `TrustPolicy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trust {
    pub id: String,
    pub name: String,
    pub tenant: String,
    #[serde(flatten)]
    pub policy: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
    pub revision: i64,
}

/// `POST /admin/v1/tenants/{t}/trusts`: `name` and the policy's fields (unknown fields are
/// refused when the policy is read).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateTrust {
    pub name: String,
    #[serde(flatten)]
    pub policy: Map<String, Value>,
}

/// `POST /admin/v1/tenants/{t}/trusts/test`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustTestRequest {
    /// An external token (compact JWS). It is never logged.
    pub token: String,
}

/// One failed check of a trust: its class (`signature`, `issuer`, `audience`, `expired`,
/// `too_old`, `not_yet_valid`, `condition`, `missing_jti`) and, for the admin, what the trust
/// expected and what the token holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrustFailure {
    pub class: String,
    pub detail: String,
}

/// One trust's verdict on the token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrustVerdict {
    /// The trust's id.
    pub trust: String,
    pub name: String,
    pub matched: bool,
    pub failures: Vec<TrustFailure>,
    /// When it matches: `{"subject", "jti", "copied", "expires_at"}`.
    pub federated: Option<Value>,
}

/// The answer to `POST …/trusts/test`: every live trust of the tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrustTestResponse {
    pub verdicts: Vec<TrustVerdict>,
    /// How the signature was checked (the token's `alg`, `kid`, and how many trusts of its
    /// issuer verified it).
    pub signature: String,
}

/// A secret's metadata; the value is never shown again after creation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretInfo {
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// `POST …/service-accounts/{id}/secrets`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSecret {
    pub name: String,
    /// RFC 3339 time after which the secret stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Alternative to `expires_at`: seconds from now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<u64>,
}

/// The response to secret creation: the only time the value is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedSecret {
    pub name: String,
    pub value: String,
    pub created_at: String,
    pub expires_at: Option<String>,
}

/// A signing key as `GET tenants/{t}/keys` lists it (public information only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigningKeyInfo {
    pub kid: String,
    pub alg: String,
    pub state: String,
    pub created_at: String,
    pub activates_at: String,
    pub retires_at: Option<String>,
    pub removed_at: Option<String>,
}

/// `POST /admin/v1/tenants/{t}/keys/rotate`: `now` rotates at once (emergency; verifiers with an
/// older JWKS refetch on the unknown kid) instead of after a JWKS cache lifetime.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RotateKey {
    #[serde(default)]
    pub now: bool,
}

/// `{"url","issuer","client_id","client_secret"}`: the bootstrap admin credentials file, and the
/// shape of a workload credentials file for `warrant token get`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialsFile {
    pub url: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
}

/// `POST /admin/v1/tenants/{t}/revocations`: shaped like a feed entry, times optional (`exp`
/// defaults to now + the server's `max_token_lifetime`, `not_before` to now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CreateRevocation {
    Jti {
        jti: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exp: Option<i64>,
    },
    Subject {
        sub: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_before: Option<i64>,
    },
}

/// A stored revocation as the admin API shows it: the feed entry, its cursor and when it was
/// made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    #[serde(flatten)]
    pub entry: crate::oauth::RevocationFeedEntry,
    /// The entry's feed cursor (decimal text).
    pub cursor: String,
    pub created_at: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod revocation_tests {
    use super::*;
    use crate::oauth::RevocationFeedEntry;

    #[test]
    fn create_revocation_is_shaped_like_a_feed_entry_and_strict() {
        let r: CreateRevocation = serde_json::from_str(r#"{"type":"jti","jti":"j1"}"#).unwrap();
        assert_eq!(
            r,
            CreateRevocation::Jti {
                jti: "j1".into(),
                exp: None
            }
        );
        let r: CreateRevocation =
            serde_json::from_str(r#"{"type":"subject","sub":"sa_1","not_before":5}"#).unwrap();
        assert_eq!(
            r,
            CreateRevocation::Subject {
                sub: "sa_1".into(),
                not_before: Some(5)
            }
        );
        for bad in [
            r#"{"type":"jti","jti":"j1","extra":1}"#,
            r#"{"type":"jti","sub":"x"}"#,
            r#"{"type":"other","jti":"j1"}"#,
            r#"{"jti":"j1"}"#,
            r#"{"type":"subject","sub":"x","exp":3}"#,
        ] {
            assert!(
                serde_json::from_str::<CreateRevocation>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn admin_revocation_flattens_the_feed_entry() {
        let r = Revocation {
            entry: RevocationFeedEntry::Subject {
                sub: "sa_1".into(),
                not_before: 7,
            },
            cursor: "12".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"subject","sub":"sa_1","not_before":7,"cursor":"12","created_at":"2026-01-01T00:00:00Z"})
        );
        assert_eq!(serde_json::from_value::<Revocation>(v).unwrap(), r);
    }
}

/// An audit record as `GET tenants/{t}/audit` lists it: every field of its hashed body (`v`,
/// `tenant`, `segment`, `seq`, `prev`, `time`, `actor`, `action`, `outcome`, `count`, and
/// `subject`, `reason`, `jti`, `scopes`, `audience`, `client_addr`, `auth_method`, `detail` when
/// set), plus the store's `id` (the list's order) and the body's `hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: i64,
    pub hash: String,
    #[serde(flatten)]
    pub body: Map<String, Value>,
}

/// `GET tenants/{t}/audit/verify`, and `warrant audit verify --file` offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditVerifyReport {
    /// No problem was found.
    pub ok: bool,
    pub segments: u64,
    /// Records checked (up to the first problem).
    pub records: u64,
    /// Checkpoints whose signature and claims verified.
    pub checkpoints: u64,
    /// The first problem: segments in created order, records in seq order.
    pub first_bad: Option<AuditBadRecord>,
    /// Records after their segment's last checkpoint (offline: chain-checked only; online:
    /// covered by their MACs).
    pub unsigned_tail: u64,
    /// Whether record and segment-head MACs were checked (online only).
    pub macs_checked: bool,
}

/// Where an audit log is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditBadRecord {
    pub segment: String,
    pub seq: i64,
    /// The record's id, when the problem is with a record that is there.
    pub id: Option<i64>,
    pub problem: String,
}
