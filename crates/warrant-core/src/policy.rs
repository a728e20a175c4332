//! Account policy checked when it is written: lifetimes, grants, custom claims and credentials.

use serde_json::{Map, Value};

use crate::CoreConfig;
use crate::model::{AccountCredentials, AuthMethod, Grant};

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

/// At most this many keys in an inline JWKS, and certificates registered per account.
pub const MAX_CLIENT_KEYS: usize = 16;

/// Checks an account's authentication methods against its credentials and returns the methods
/// to store (`methods` if given, else derived from `credentials`). No downgrade: secret
/// methods never mix with key or certificate methods (RFC 9700 §2.5: an account that proves a
/// key must not fall back to a secret that could leak), and every method given has what it
/// needs.
pub fn check_credentials(
    methods: Option<&[AuthMethod]>,
    credentials: &AccountCredentials,
) -> Result<Vec<AuthMethod>, PolicyViolation> {
    let bad = |m: &str| Err(PolicyViolation(m.to_owned()));
    let c = credentials;
    let derived;
    let methods = match methods {
        Some(m) => m,
        None => {
            let mut d = Vec::new();
            if c.jwks.is_some() || c.jwks_uri.is_some() {
                d.push(AuthMethod::PrivateKeyJwt);
            }
            if c.tls_client_auth.is_some() {
                d.push(AuthMethod::TlsClientAuth);
            }
            if !c.self_signed_certificates.is_empty() {
                d.push(AuthMethod::SelfSignedTlsClientAuth);
            }
            if d.is_empty() {
                d = AuthMethod::SECRET_METHODS.to_vec();
            }
            derived = d;
            &derived
        }
    };
    if methods.is_empty() {
        return bad("auth_methods must name at least one method");
    }
    let mut seen = Vec::with_capacity(methods.len());
    for m in methods {
        if seen.contains(m) {
            return bad("auth_methods names a method twice");
        }
        seen.push(*m);
    }
    let secret = methods.iter().any(|m| m.is_secret());
    if secret && methods.iter().any(|m| !m.is_secret()) {
        return bad(
            "auth_methods cannot mix client secrets with private_key_jwt or certificates: an \
             account that proves a key must not fall back to a secret (no downgrade)",
        );
    }
    let has = |m: AuthMethod| methods.contains(&m);
    match (&c.jwks, &c.jwks_uri) {
        (Some(_), Some(_)) => return bad("give jwks or jwks_uri, not both"),
        (None, None) if has(AuthMethod::PrivateKeyJwt) => {
            return bad("private_key_jwt needs jwks or jwks_uri");
        }
        (Some(_), _) | (_, Some(_)) if !has(AuthMethod::PrivateKeyJwt) => {
            return bad("jwks and jwks_uri are only for accounts allowed private_key_jwt");
        }
        _ => {}
    }
    if let Some(set) = &c.jwks {
        if set.keys.is_empty() || set.keys.len() > MAX_CLIENT_KEYS {
            return Err(PolicyViolation(format!(
                "jwks must hold between 1 and {MAX_CLIENT_KEYS} keys"
            )));
        }
        for (i, k) in set.keys.iter().enumerate() {
            if let Err(e) = crate::client_auth::jwks_cache::public_keys(k) {
                return Err(PolicyViolation(format!(
                    "jwks key {i} is not a usable public signing key (ES256, EdDSA, RS256 or \
                     PS256; RSA keys of 2048 bits or more): {e}"
                )));
            }
        }
    }
    if let Some(uri) = &c.jwks_uri
        && !valid_https_url(uri)
    {
        return bad("jwks_uri must be an https URL without userinfo or fragment");
    }
    if has(AuthMethod::TlsClientAuth) != c.tls_client_auth.is_some() {
        return bad(
            "tls_client_auth needs exactly one of tls_client_auth_subject_dn, \
             tls_client_auth_san_dns or tls_client_auth_san_uri, and those are only for accounts \
             allowed tls_client_auth",
        );
    }
    if has(AuthMethod::SelfSignedTlsClientAuth) == c.self_signed_certificates.is_empty() {
        return bad(
            "self_signed_tls_client_auth needs registered certificates, and certificates are \
             only for accounts allowed self_signed_tls_client_auth",
        );
    }
    if c.self_signed_certificates.len() > MAX_CLIENT_KEYS {
        return Err(PolicyViolation(format!(
            "at most {MAX_CLIENT_KEYS} certificates per account"
        )));
    }
    Ok(methods.to_vec())
}

/// An absolute `https` URL with a host, without userinfo or fragment, at most 2048 bytes.
pub fn valid_https_url(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("https://") else {
        return false;
    };
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..host_end];
    s.len() <= 2048
        && !authority.is_empty()
        && !authority.contains('@')
        && !s.contains('#')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The `x5t#S256` thumbprint (RFC 8705 §3.1) of a PEM certificate: unpadded base64url SHA-256
/// of its DER. Only the first `CERTIFICATE` block is read.
pub fn pem_certificate_thumbprint(pem: &str) -> Result<String, PolicyViolation> {
    use base64::Engine as _;
    let bad = || PolicyViolation("a certificate must be one PEM CERTIFICATE block".into());
    let start = pem.find("-----BEGIN CERTIFICATE-----").ok_or_else(bad)?;
    let body = &pem[start + "-----BEGIN CERTIFICATE-----".len()..];
    let end = body.find("-----END CERTIFICATE-----").ok_or_else(bad)?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad())?;
    // A DER SEQUENCE, not just any bytes.
    if der.len() < 64 || der[0] != 0x30 {
        return Err(bad());
    }
    Ok(warrant_jose::x5t_s256(&der))
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
