//! Conversions between core records and admin wire types, and the checks on what admins send.

use serde_json::{Map, Value};
use warrant_core::admin::{AccountSpec, ApiSpec, TenantSettings};
use warrant_core::client_auth::CertificateMatch;
use warrant_core::model::{
    AccountCredentials, Api, AuthMethod, Grant, KeySource, ServiceAccount, Tenant, Trust,
};
use warrant_core::{AccountRef, Audience, CoreConfig, Scope, ScopeSet};
use warrant_jose::Algorithm;
use warrant_proto::admin as wire;

use crate::error::ApiError;
use axum::http::StatusCode;

/// `422`: what an admin sent is well-formed but not acceptable.
pub(crate) fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, msg)
}

pub(crate) fn tenant(t: &Tenant, config: &CoreConfig) -> wire::Tenant {
    wire::Tenant {
        issuer: config.issuer(&t.name),
        name: t.name.to_string(),
        signing_alg: t.signing_alg.as_str().into(),
        key_rotation_period_seconds: t.key_rotation_period,
        key_source: match &t.key_source {
            KeySource::Software => wire::KeySource::Software,
            KeySource::Hsm { module } => wire::KeySource::Hsm {
                module: module.clone(),
            },
        },
        token_endpoint_audience: t.token_endpoint_audience,
        created_at: t.created_at.to_rfc3339(),
        updated_at: t.updated_at.to_rfc3339(),
        revision: t.revision,
    }
}

pub(crate) fn grant_out(g: &Grant) -> wire::Grant {
    wire::Grant {
        audience: g.audience.to_string(),
        scopes: g.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
    }
}

pub(crate) fn grants_in(grants: &[wire::Grant]) -> Result<Vec<Grant>, ApiError> {
    grants
        .iter()
        .map(|g| {
            let audience = Audience::parse(&g.audience).ok_or_else(|| {
                invalid(format!(
                    "grant audience {:?} is not an absolute URI without a fragment",
                    g.audience
                ))
            })?;
            Ok(Grant {
                audience,
                scopes: scopes_in(&g.scopes)?,
            })
        })
        .collect()
}

pub(crate) fn audience_in(a: Option<&str>) -> Result<Option<Audience>, ApiError> {
    a.map(|a| {
        Audience::parse(a).ok_or_else(|| {
            invalid(format!(
                "default_audience {a:?} is not an absolute URI without a fragment"
            ))
        })
    })
    .transpose()
}

pub(crate) fn account(a: &ServiceAccount, config: &CoreConfig) -> wire::ServiceAccount {
    let issuer = config.issuer(&a.tenant);
    let c = &a.credentials;
    let rule = |kind: &str| {
        c.tls_client_auth
            .as_ref()
            .map(CertificateMatch::parts)
            .filter(|(k, _)| *k == kind)
            .map(|(_, v)| v.to_owned())
    };
    wire::ServiceAccount {
        id: a.id.to_string(),
        name: a.name.to_string(),
        tenant: a.tenant.to_string(),
        description: a.description.clone(),
        enabled: a.enabled,
        default_audience: a.default_audience.as_ref().map(|x| x.to_string()),
        grants: a.grants.iter().map(grant_out).collect(),
        default_lifetime_seconds: a.default_lifetime,
        max_lifetime_seconds: a.max_lifetime,
        claims: a.claims.clone(),
        auth_methods: a
            .auth_methods
            .iter()
            .map(|m| m.as_str().to_owned())
            .collect(),
        jwks: c.jwks.as_ref().and_then(|j| serde_json::to_value(j).ok()),
        jwks_uri: c.jwks_uri.clone(),
        tls_client_auth_subject_dn: rule("subject_dn"),
        tls_client_auth_san_dns: rule("san_dns"),
        tls_client_auth_san_uri: rule("san_uri"),
        tls_client_certificate_thumbprints: c.self_signed_certificates.clone(),
        dpop_bound_access_tokens: c.dpop_required,
        client_id: a.id.to_string(),
        token_endpoint: format!("{issuer}/token"),
        issuer,
        created_at: a.created_at.to_rfc3339(),
        updated_at: a.updated_at.to_rfc3339(),
        revision: a.revision,
    }
}

/// Fields a merge patch may change; anything else in the patch must leave its value unchanged.
const EDITABLE: &[&str] = &[
    "description",
    "enabled",
    "default_audience",
    "grants",
    "default_lifetime_seconds",
    "max_lifetime_seconds",
    "claims",
    "auth_methods",
    "jwks",
    "jwks_uri",
    "tls_client_auth_subject_dn",
    "tls_client_auth_san_dns",
    "tls_client_auth_san_uri",
    "tls_client_certificate_thumbprints",
    "tls_client_certificates",
    "dpop_bound_access_tokens",
];

/// An account's authentication methods and credentials as admins send them (creation body or
/// merge-patched representation): `auth_methods` (absent: derived), `jwks` / `jwks_uri`, one
/// `tls_client_auth_*` rule, `tls_client_certificate_thumbprints` plus PEM
/// `tls_client_certificates`, `dpop_bound_access_tokens`.
pub(crate) fn credentials_in(
    v: &Map<String, Value>,
) -> Result<(Option<Vec<AuthMethod>>, AccountCredentials), ApiError> {
    let field = |k: &str| v.get(k).filter(|x| !x.is_null());
    let string = |k: &str| -> Result<Option<String>, ApiError> {
        field(k)
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(format!("{k} must be a string")))
            })
            .transpose()
    };
    let strings = |k: &str| -> Result<Vec<String>, ApiError> {
        match field(k) {
            None => Ok(Vec::new()),
            Some(x) => serde_json::from_value(x.clone())
                .map_err(|_| invalid(format!("{k} must be a list of strings"))),
        }
    };
    let auth_methods = match field("auth_methods") {
        None => None,
        Some(_) => Some(
            strings("auth_methods")?
                .iter()
                .map(|m| {
                    AuthMethod::parse(m).ok_or_else(|| {
                        invalid(format!(
                            "auth_methods: {m:?} is not one of {}",
                            AuthMethod::ALL.map(AuthMethod::as_str).join(", ")
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let jwks = match field("jwks") {
        None => None,
        Some(x) => Some(serde_json::from_value(x.clone()).map_err(|_| {
            invalid("jwks must be a JWK Set: {\"keys\":[{\"kty\",…}]} of public keys")
        })?),
    };
    let mut rules = Vec::new();
    for kind in ["subject_dn", "san_dns", "san_uri"] {
        if let Some(value) = string(&format!("tls_client_auth_{kind}"))? {
            rules.push(CertificateMatch::from_parts(kind, value).ok_or_else(|| {
                invalid(format!(
                    "tls_client_auth_{kind} must be a non-empty string without control characters"
                ))
            })?);
        }
    }
    if rules.len() > 1 {
        return Err(invalid(
            "give one of tls_client_auth_subject_dn, tls_client_auth_san_dns or \
             tls_client_auth_san_uri",
        ));
    }
    let mut certificates = Vec::new();
    for t in strings("tls_client_certificate_thumbprints")? {
        if t.len() != 43 || warrant_jose::b64::decode(&t).is_none() {
            return Err(invalid(
                "tls_client_certificate_thumbprints must be x5t#S256 values (43 base64url characters)",
            ));
        }
        certificates.push(t);
    }
    for pem in strings("tls_client_certificates")? {
        let t = warrant_core::policy::pem_certificate_thumbprint(&pem)
            .map_err(|e| invalid(format!("tls_client_certificates: {}", e.0)))?;
        certificates.push(t);
    }
    certificates.sort();
    certificates.dedup();
    let dpop_required = match field("dpop_bound_access_tokens") {
        None => false,
        Some(x) => x
            .as_bool()
            .ok_or_else(|| invalid("dpop_bound_access_tokens must be a boolean"))?,
    };
    Ok((
        auth_methods,
        AccountCredentials {
            jwks,
            jwks_uri: string("jwks_uri")?,
            tls_client_auth: rules.pop(),
            self_signed_certificates: certificates,
            dpop_required,
        },
    ))
}

/// RFC 7396 JSON Merge Patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Applies a merge patch to a resource's representation `before`. Only the `editable` fields
/// may change; a read-only field may appear with its current value, so a modified copy of a
/// `GET` response is a valid patch.
fn patched(before: Value, editable: &[&str], patch: &Value) -> Result<Value, ApiError> {
    let Value::Object(p) = patch else {
        return Err(ApiError::bad_request("a merge patch must be a JSON object"));
    };
    if let Some(k) = p
        .keys()
        .find(|k| !editable.contains(&k.as_str()) && p.get(*k) != before.get(*k))
    {
        return Err(invalid(format!("{k} cannot be changed")));
    }
    let mut after = before;
    merge_patch(&mut after, patch);
    Ok(after)
}

/// Applies a merge patch to a tenant's representation and returns its new signing algorithm
/// (`null` resets it to the default, as at creation) and key rotation period (`null`: manual
/// rotation only).
pub(crate) fn patched_tenant(
    current: &Tenant,
    config: &CoreConfig,
    patch: &Value,
) -> Result<TenantSettings, ApiError> {
    let before = serde_json::to_value(tenant(current, config))
        .map_err(|_| ApiError::bad_request("unserialisable tenant"))?;
    let after = patched(
        before,
        &[
            "signing_alg",
            "key_rotation_period_seconds",
            "key_source",
            "token_endpoint_audience",
        ],
        patch,
    )?;
    let alg = match after.get("signing_alg").filter(|v| !v.is_null()) {
        None => Tenant::DEFAULT_SIGNING_ALG,
        Some(v) => signing_alg_in(v.as_str())?,
    };
    let period = match after
        .get("key_rotation_period_seconds")
        .filter(|v| !v.is_null())
    {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            invalid("key_rotation_period_seconds must be a whole number of seconds or null")
        })?),
    };
    let source = match after.get("key_source").filter(|v| !v.is_null()) {
        None => KeySource::Software,
        Some(v) => key_source_in(v)?,
    };
    let token_endpoint_audience = match after.get("token_endpoint_audience") {
        None | Some(Value::Null) => false,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| invalid("token_endpoint_audience must be a boolean"))?,
    };
    Ok(TenantSettings {
        signing_alg: alg,
        key_rotation_period: period,
        key_source: source,
        token_endpoint_audience,
    })
}

/// A tenant's `key_source` as admins send it: `"software"` or `{"hsm":{"module":"<name>"}}`.
fn key_source_in(v: &Value) -> Result<KeySource, ApiError> {
    let bad = || {
        invalid(
            "key_source must be \"software\" or {\"hsm\":{\"module\":\"<name>\"}} with the name of a \
             configured HSM module",
        )
    };
    match serde_json::from_value::<wire::KeySource>(v.clone()).map_err(|_| bad())? {
        wire::KeySource::Software => Ok(KeySource::Software),
        wire::KeySource::Hsm { module } if KeySource::valid_module_name(&module) => {
            Ok(KeySource::Hsm { module })
        }
        wire::KeySource::Hsm { .. } => Err(bad()),
    }
}

/// A tenant's `signing_alg` as admins send it.
pub(crate) fn signing_alg_in(alg: Option<&str>) -> Result<Algorithm, ApiError> {
    alg.and_then(|a| Algorithm::parse(a).ok()).ok_or_else(|| {
        invalid(format!(
            "signing_alg must be one of {}",
            Algorithm::ALL.map(Algorithm::as_str).join(", ")
        ))
    })
}

/// Applies a merge patch to an account's representation and returns the new editable fields.
pub(crate) fn patched_spec(
    current: &ServiceAccount,
    config: &CoreConfig,
    patch: &Value,
) -> Result<AccountSpec, ApiError> {
    let before = serde_json::to_value(account(current, config))
        .map_err(|_| ApiError::bad_request("unserialisable account"))?;
    let after = patched(before, EDITABLE, patch)?;
    let field = |k: &str| after.get(k).filter(|v| !v.is_null());
    let (auth_methods, credentials) = match &after {
        Value::Object(m) => credentials_in(m)?,
        _ => (None, AccountCredentials::default()),
    };
    let description = match field("description") {
        None => String::new(),
        Some(v) => v
            .as_str()
            .ok_or_else(|| invalid("description must be a string"))?
            .to_owned(),
    };
    let enabled = match field("enabled") {
        None => true,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| invalid("enabled must be a boolean"))?,
    };
    let default_audience = match field("default_audience") {
        None => None,
        Some(v) => audience_in(Some(
            v.as_str()
                .ok_or_else(|| invalid("default_audience must be a string"))?,
        ))?,
    };
    let grants: Vec<wire::Grant> = match field("grants") {
        None => Vec::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| invalid("grants must be [{\"audience\",\"scopes\"}]"))?,
    };
    let secs = |k: &str| -> Result<Option<u64>, ApiError> {
        field(k)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| invalid(format!("{k} must be a non-negative integer")))
            })
            .transpose()
    };
    let claims = match field("claims") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(invalid("claims must be a JSON object")),
    };
    Ok(AccountSpec {
        description,
        enabled,
        default_audience,
        grants: grants_in(&grants)?,
        default_lifetime: secs("default_lifetime_seconds")?,
        max_lifetime: secs("max_lifetime_seconds")?,
        claims,
        auth_methods,
        credentials,
    })
}

pub(crate) fn api(a: &Api) -> wire::Api {
    wire::Api {
        id: a.id.to_string(),
        name: a.name.to_string(),
        tenant: a.tenant.to_string(),
        audience: a.audience.to_string(),
        scopes: a.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        owner: a.owner.to_string(),
        description: a.description.clone(),
        created_at: a.created_at.to_rfc3339(),
        updated_at: a.updated_at.to_rfc3339(),
        revision: a.revision,
    }
}

/// Scopes as admins send them, in a grant or an API (each item may itself be a space-separated
/// list).
pub(crate) fn scopes_in(scopes: &[String]) -> Result<ScopeSet, ApiError> {
    scopes
        .iter()
        .flat_map(|s| s.split(' ').filter(|x| !x.is_empty()))
        .map(|s| Scope::parse(s).ok_or_else(|| invalid(format!("invalid scope {s:?}"))))
        .collect::<Result<Vec<_>, _>>()
        .map(ScopeSet::from_scopes)
}

/// An API's owner as admins send it: an account id or name.
pub(crate) fn owner_in(owner: &str) -> Result<AccountRef, ApiError> {
    AccountRef::parse(owner)
        .map_err(|_| invalid(format!("owner {owner:?} is not an account id or name")))
}

/// Applies a merge patch to an API's representation and returns its new editable fields
/// (`scopes`, `owner`, `description`; `null` removes the description).
pub(crate) fn patched_api(current: &Api, patch: &Value) -> Result<ApiSpec, ApiError> {
    let before = serde_json::to_value(api(current))
        .map_err(|_| ApiError::bad_request("unserialisable API"))?;
    let after = patched(before, &["scopes", "owner", "description"], patch)?;
    let field = |k: &str| after.get(k).filter(|v| !v.is_null());
    let scopes: Vec<String> = match field("scopes") {
        None => Vec::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| invalid("scopes must be a list of strings"))?,
    };
    let owner = field("owner")
        .ok_or_else(|| invalid("owner is required"))?
        .as_str()
        .ok_or_else(|| invalid("owner must be a string"))?;
    let description = field("description")
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| invalid("description must be a string"))
        })
        .transpose()?;
    Ok(ApiSpec {
        scopes: scopes_in(&scopes)?,
        owner: owner_in(owner)?,
        description,
    })
}

pub(crate) fn trust(t: &Trust) -> wire::Trust {
    let policy = match serde_json::to_value(&t.policy) {
        Ok(Value::Object(m)) => m,
        // A policy always serialises to an object; an empty one shows the fault plainly.
        _ => Map::new(),
    };
    wire::Trust {
        id: t.id.to_string(),
        name: t.name.to_string(),
        tenant: t.tenant.to_string(),
        policy,
        created_at: t.created_at.to_rfc3339(),
        updated_at: t.updated_at.to_rfc3339(),
        revision: t.revision,
    }
}

/// The fields of a trust's representation that are its policy (all editable by PATCH).
const TRUST_POLICY_FIELDS: &[&str] = &[
    "issuer",
    "jwks",
    "audience",
    "conditions",
    "max_age_seconds",
    "single_use",
    "account",
    "copy_claims",
    "max_lifetime_seconds",
];

/// A trust policy as admins send it (the JSON of `federation::TrustPolicy`; unknown fields are
/// refused). Validation proper happens in the core.
pub(crate) fn trust_policy_in(
    fields: Map<String, Value>,
) -> Result<warrant_core::federation::TrustPolicy, ApiError> {
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| invalid(format!("invalid trust policy: {e}")))
}

/// Applies a merge patch to a trust's representation and returns its new policy (the name is
/// fixed; `null` removes `max_lifetime_seconds`, and resets `single_use` and `copy_claims`).
pub(crate) fn patched_trust(
    current: &Trust,
    patch: &Value,
) -> Result<warrant_core::federation::TrustPolicy, ApiError> {
    let before = serde_json::to_value(trust(current))
        .map_err(|_| ApiError::bad_request("unserialisable trust"))?;
    let after = patched(before, TRUST_POLICY_FIELDS, patch)?;
    let Value::Object(mut fields) = after else {
        return Err(ApiError::bad_request("unserialisable trust"));
    };
    fields.retain(|k, _| TRUST_POLICY_FIELDS.contains(&k.as_str()));
    trust_policy_in(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7396_examples() {
        let mut t = json!({"a":"b","c":{"d":"e","f":"g"}});
        merge_patch(&mut t, &json!({"a":"z","c":{"f":null}}));
        assert_eq!(t, json!({"a":"z","c":{"d":"e"}}));
        let mut t = json!({"a":[{"b":"c"}]});
        merge_patch(&mut t, &json!({"a":[1]}));
        assert_eq!(t, json!({"a":[1]}));
    }
}
