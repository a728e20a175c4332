//! Account policy checked when it is written: lifetimes, grants and custom claims.

use serde_json::{Map, Value};

use crate::CoreConfig;
use crate::model::Grant;

/// Claim names a custom claim may never take: registered JWT claims (RFC 7519 §4.1), the ones
/// Warrant sets itself, and the IANA "JSON Web Token Claims" registry entries that carry
/// protocol meaning. `roles`, `groups` and `entitlements` are allowed (RFC 9068 §2.2.3.1).
const RESERVED_CLAIMS: &[&str] = &[
    // RFC 7519, RFC 9068, Warrant
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "client_id",
    "scope",
    "tenant",
    "act",
    "may_act",
    "federated",
    "cnf",
    "typ",
    "token_type",
    // OpenID Connect Core and related
    "azp",
    "nonce",
    "auth_time",
    "at_hash",
    "c_hash",
    "acr",
    "amr",
    "sid",
    "s_hash",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "updated_at",
    "_claim_names",
    "_claim_sources",
    "sub_jwk",
    "username",
    // IANA registry: events, SIP, PASSporT, DPoP, attestation, others
    "events",
    "toe",
    "txn",
    "rph",
    "sip_from_tag",
    "sip_date",
    "sip_callid",
    "sip_cseq_num",
    "sip_via_branch",
    "orig",
    "dest",
    "mky",
    "jcard",
    "vot",
    "vtm",
    "attest",
    "origid",
    "htm",
    "htu",
    "ath",
    "nonce",
    "sub_id",
    "rcd",
    "rcdi",
    "crn",
    "msgi",
    "_claim",
    "div",
    "opt",
    "authorization_details",
    "client_inst",
    "kid",
    "jwk",
    "x5t#S256",
    "status",
];

/// Custom claims may be at most this many bytes of JSON in all.
pub const MAX_CUSTOM_CLAIMS_BYTES: usize = 4096;

pub fn is_reserved_claim(name: &str) -> bool {
    RESERVED_CLAIMS.contains(&name)
}

/// A policy violation, explained for the admin who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyViolation(pub String);

pub fn check_claims(claims: &Map<String, Value>) -> Result<(), PolicyViolation> {
    if let Some(k) = claims.keys().find(|k| is_reserved_claim(k)) {
        return Err(PolicyViolation(format!(
            "custom claim {k:?} is a registered claim name and cannot be set"
        )));
    }
    if let Some(k) = claims.keys().find(|k| k.is_empty() || k.len() > 64) {
        return Err(PolicyViolation(format!(
            "custom claim name {k:?} must be 1 to 64 characters"
        )));
    }
    let size = serde_json::to_string(claims)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if size > MAX_CUSTOM_CLAIMS_BYTES {
        return Err(PolicyViolation(format!(
            "custom claims are {size} bytes of JSON; at most {MAX_CUSTOM_CLAIMS_BYTES}"
        )));
    }
    Ok(())
}

/// `default ≤ max ≤ max_token_lifetime`, and neither is zero.
pub fn check_lifetimes(default: u64, max: u64, config: &CoreConfig) -> Result<(), PolicyViolation> {
    if default == 0 || max == 0 {
        return Err(PolicyViolation(
            "token lifetimes must be at least 1 second".into(),
        ));
    }
    if default > max {
        return Err(PolicyViolation(format!(
            "default_lifetime_seconds ({default}) exceeds max_lifetime_seconds ({max})"
        )));
    }
    if max > config.max_token_lifetime {
        return Err(PolicyViolation(format!(
            "max_lifetime_seconds ({max}) exceeds the server's max_token_lifetime ({})",
            config.max_token_lifetime
        )));
    }
    Ok(())
}

/// Grants name distinct audiences; `admin:system` is never grantable.
pub fn check_grants(grants: &[Grant]) -> Result<(), PolicyViolation> {
    for (i, g) in grants.iter().enumerate() {
        if grants[..i].iter().any(|p| p.audience == g.audience) {
            return Err(PolicyViolation(format!(
                "audience {} appears in more than one grant",
                g.audience
            )));
        }
        if g.scopes.iter().any(|s| s.as_str() == "admin:system") {
            return Err(PolicyViolation(
                "the scope admin:system cannot be granted".into(),
            ));
        }
    }
    if grants.len() > 100 {
        return Err(PolicyViolation("at most 100 grants per account".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_claims_refused_rfc9068_roles_allowed() {
        let mut m = Map::new();
        m.insert("roles".into(), Value::from(vec!["a"]));
        m.insert("team".into(), Value::from("payments"));
        assert!(check_claims(&m).is_ok());
        m.insert("sub".into(), Value::from("x"));
        assert!(check_claims(&m).is_err());
    }

    #[test]
    fn lifetimes() {
        let c = CoreConfig {
            public_url: "http://x".into(),
            max_token_lifetime: 3600,
            jwks_max_age: 300,
            audit: Default::default(),
        };
        assert!(check_lifetimes(600, 3600, &c).is_ok());
        assert!(check_lifetimes(601, 600, &c).is_err());
        assert!(check_lifetimes(600, 3601, &c).is_err());
        assert!(check_lifetimes(0, 60, &c).is_err());
    }
}
