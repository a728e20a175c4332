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
    pub created_at: String,
    pub updated_at: String,
    pub revision: i64,
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

/// `{"url","issuer","client_id","client_secret"}`: the bootstrap admin credentials file, and the
/// shape of a workload credentials file for `warrant token get`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialsFile {
    pub url: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
}
