//! A trust policy: which external issuer's tokens may act as an account, and under which
//! conditions. [`TrustPolicy::validate`] is what the admin API runs before storing one.

use serde::{Deserialize, Serialize};

use super::conditions::{ClaimPath, Condition};
use crate::policy::{MAX_CLIENT_KEYS, PolicyViolation, valid_https_url};

/// At most this many conditions in one trust.
pub const MAX_CONDITIONS: usize = 32;
/// At most this many claims copied under `federated`.
pub const MAX_COPY_CLAIMS: usize = 32;
/// The longest `max_age_seconds` a trust may allow: one day.
pub const MAX_AGE_LIMIT_SECONDS: u64 = 86_400;
/// How far in the future a presented token's `iat` (or `nbf`) may be, for clock skew.
pub const CLOCK_SKEW_SECONDS: i64 = 60;

/// Names a copied claim may not take under `federated`: the registered JWT claims (RFC 7519
/// §4.1), because Warrant writes the external `iss` and `sub` there itself and a copied `exp`
/// or `aud` would read as describing the issued token.
const FEDERATED_RESERVED: &[&str] = &["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// Where the keys that verify an external issuer's tokens come from. Fetching them is the
/// caller's job, under the server's outbound policy (https only, no private addresses unless
/// allowed, no redirects, 64 KiB, 5 s); this module only names the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustKeys {
    /// OpenID Connect discovery at `{issuer}/.well-known/openid-configuration`, then its
    /// `jwks_uri`.
    Discovery,
    /// This JWKS URL, without discovery.
    JwksUri(String),
    /// These keys, for an issuer Warrant cannot reach (a private Kubernetes cluster).
    Static(warrant_jose::JwkSet),
}

/// Under which conditions tokens of an external issuer may act as one account.
///
/// JSON (stored, and sent over the admin API), unknown fields refused so that a misspelt
/// `single_use` is an error rather than a silently weaker trust:
///
/// ```json
/// {"issuer": "https://token.actions.githubusercontent.com", "jwks": "discovery",
///  "audience": "https://warrant.example", "max_age_seconds": 600, "account": "deployer",
///  "conditions": [{"claim": "repository", "equals": "acme/api"},
///                 {"claim": "ref", "glob": "refs/heads/main"}],
///  "copy_claims": ["repository", "sha"], "single_use": true, "max_lifetime_seconds": 900}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustPolicy {
    /// The external issuer, compared exactly with the token's `iss`.
    pub issuer: String,
    pub jwks: TrustKeys,
    /// The token's `aud` (a string, or an array of them) must contain this.
    pub audience: String,
    /// Every condition must hold; there is at least one.
    pub conditions: Vec<Condition>,
    /// The token's `iat` may be at most this old (1 s to 1 day).
    pub max_age_seconds: u64,
    /// Accept each token once, by its `jti`; a token without `jti` is then refused.
    #[serde(default)]
    pub single_use: bool,
    /// The Warrant account (id or name) the token acts as; resolved by the caller.
    pub account: String,
    /// External claims copied into the issued token under `federated`, at the same path.
    #[serde(default)]
    pub copy_claims: Vec<ClaimPath>,
    /// A cap on the issued token's lifetime, below the account's own. The grant layer issues
    /// for `min(account lifetime, max_lifetime_seconds)` — see [`TrustPolicy::lifetime`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lifetime_seconds: Option<u64>,
}

impl TrustPolicy {
    /// Refuses a trust that is malformed or too broad: an issuer that is not an `https` URL
    /// (`http` only on a loopback host, for tests), an empty audience or account, a maximum
    /// age of zero or over a day, no conditions (the trust would let *any* token of that
    /// issuer and audience act as the account) or more than [`MAX_CONDITIONS`], a bad check,
    /// a bad key source, copied claims that would shadow what Warrant writes under
    /// `federated`, and a zero lifetime cap.
    pub fn validate(&self) -> Result<(), PolicyViolation> {
        let bad = |s: &str| Err(PolicyViolation(s.into()));
        if !is_issuer_url(&self.issuer) {
            return bad(
                "issuer must be an https URL without query or fragment (http only on a \
                 loopback host)",
            );
        }
        match &self.jwks {
            TrustKeys::Discovery => {}
            TrustKeys::JwksUri(u) if is_fetchable_url(u) => {}
            TrustKeys::JwksUri(_) => {
                return bad("jwks_uri must be an https URL (http only on a loopback host)");
            }
            TrustKeys::Static(set) => {
                if set.keys.is_empty() || set.keys.len() > MAX_CLIENT_KEYS {
                    return bad(&format!(
                        "a static jwks holds between 1 and {MAX_CLIENT_KEYS} keys"
                    ));
                }
                if set.keys.iter().any(|k| k.thumbprint().is_none()) {
                    return bad(
                        "every key of a static jwks must be a complete EC, OKP or RSA public key",
                    );
                }
            }
        }
        if self.audience.trim().is_empty()
            || self.audience.len() > 2048
            || self.audience.chars().any(char::is_control)
        {
            return bad("audience is required: 1 to 2048 characters, no control characters");
        }
        if self.account.trim().is_empty() {
            return bad("account is required");
        }
        if self.max_age_seconds == 0 || self.max_age_seconds > MAX_AGE_LIMIT_SECONDS {
            return bad(&format!(
                "max_age_seconds must be between 1 and {MAX_AGE_LIMIT_SECONDS}"
            ));
        }
        if self.conditions.is_empty() {
            return bad(
                "a trust needs at least one condition: without one, any token of the issuer \
                 for the audience would act as the account",
            );
        }
        if self.conditions.len() > MAX_CONDITIONS {
            return bad(&format!("at most {MAX_CONDITIONS} conditions"));
        }
        self.conditions.iter().try_for_each(Condition::validate)?;
        if self.copy_claims.len() > MAX_COPY_CLAIMS {
            return bad(&format!("at most {MAX_COPY_CLAIMS} copied claims"));
        }
        if let Some(p) = self
            .copy_claims
            .iter()
            .find(|p| FEDERATED_RESERVED.contains(&p.head()))
        {
            return bad(&format!(
                "copied claim {p} would shadow a registered claim under `federated`"
            ));
        }
        if let Some(p) = self
            .copy_claims
            .iter()
            .enumerate()
            .find_map(|(i, p)| self.copy_claims[..i].contains(p).then_some(p))
        {
            return bad(&format!("claim {p} is copied twice"));
        }
        if self.max_lifetime_seconds == Some(0) {
            return bad("max_lifetime_seconds must be at least 1 when set");
        }
        Ok(())
    }

    /// The lifetime of a token issued through this trust, in seconds: the account's lifetime
    /// (already bounded by the account's maximum and the server's), capped by
    /// `max_lifetime_seconds`.
    pub fn lifetime(&self, account_lifetime_seconds: u64) -> u64 {
        match self.max_lifetime_seconds {
            Some(cap) => account_lifetime_seconds.min(cap),
            None => account_lifetime_seconds,
        }
    }
}

/// An issuer identifier (OpenID Connect Discovery §3: https, no query or fragment).
pub(crate) fn is_issuer_url(s: &str) -> bool {
    is_fetchable_url(s) && !s.contains('?')
}

/// `https`, or `http` on a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`) so tests can run
/// an issuer locally. Whether the resolved address may be reached is the outbound policy's
/// decision, at fetch time.
fn is_fetchable_url(s: &str) -> bool {
    if valid_https_url(s) {
        return true;
    }
    let Some(rest) = s.strip_prefix("http://") else {
        return false;
    };
    let as_https = format!("https://{rest}");
    valid_https_url(&as_https) && is_loopback_authority(rest)
}

fn is_loopback_authority(rest: &str) -> bool {
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, port)) if port.is_empty() || port.starts_with(':') => h,
            _ => return false,
        }
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::conditions::Check;
    use serde_json::json;

    fn sample() -> TrustPolicy {
        TrustPolicy {
            issuer: "https://issuer.example".into(),
            jwks: TrustKeys::Discovery,
            audience: "https://warrant.example".into(),
            conditions: vec![
                Condition::new("repository", Check::Equals(json!("acme/api"))).unwrap(),
            ],
            max_age_seconds: 600,
            single_use: false,
            account: "deployer".into(),
            copy_claims: vec![],
            max_lifetime_seconds: None,
        }
    }

    fn refused(f: impl FnOnce(&mut TrustPolicy)) -> String {
        let mut p = sample();
        f(&mut p);
        match p.validate() {
            Err(e) => e.0,
            Ok(()) => String::from("accepted"),
        }
    }

    #[test]
    fn sample_is_valid() {
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn issuers() {
        for ok in [
            "https://token.actions.githubusercontent.com",
            "https://gitlab.example/",
            "http://127.0.0.1:8080",
            "http://localhost:9000/issuer",
            "http://[::1]:80",
        ] {
            assert_eq!(refused(|p| p.issuer = ok.into()), "accepted", "{ok}");
        }
        for bad in [
            "",
            "issuer.example",
            "http://issuer.example",
            "http://10.0.0.1",
            "http://localhost.evil.example",
            "http://[::2]",
            "https://issuer.example?x=1",
            "https://issuer.example#f",
            "https://user@issuer.example",
            "ftp://issuer.example",
        ] {
            assert!(
                refused(|p| p.issuer = bad.into()).contains("issuer"),
                "{bad}"
            );
        }
    }

    #[test]
    fn refusals() {
        assert!(refused(|p| p.audience = String::new()).contains("audience"));
        assert!(refused(|p| p.audience = " ".into()).contains("audience"));
        assert!(refused(|p| p.account = String::new()).contains("account"));
        assert!(refused(|p| p.max_age_seconds = 0).contains("max_age"));
        assert!(refused(|p| p.max_age_seconds = 86_401).contains("max_age"));
        assert_eq!(refused(|p| p.max_age_seconds = 86_400), "accepted");
        assert!(refused(|p| p.conditions.clear()).contains("at least one condition"));
        assert!(
            refused(|p| {
                let c = p.conditions[0].clone();
                p.conditions = vec![c; MAX_CONDITIONS + 1];
            })
            .contains("conditions")
        );
        assert!(
            refused(|p| p.conditions[0].check = Check::Glob("acme/***".into())).contains("glob")
        );
        assert!(refused(|p| p.conditions[0].check = Check::OneOf(vec![])).contains("one_of"));
        assert!(
            refused(|p| p.copy_claims = vec![ClaimPath::parse("sub").unwrap()]).contains("shadow")
        );
        assert!(
            refused(|p| p.copy_claims = vec![ClaimPath::parse("iss.x").unwrap()])
                .contains("shadow")
        );
        assert!(
            refused(|p| p.copy_claims = vec![ClaimPath::parse("sha").unwrap(); 2])
                .contains("twice")
        );
        assert!(
            refused(|p| {
                p.copy_claims = (0..=MAX_COPY_CLAIMS)
                    .map(|i| ClaimPath::parse(&format!("c{i}")).unwrap())
                    .collect()
            })
            .contains("copied")
        );
        assert!(refused(|p| p.max_lifetime_seconds = Some(0)).contains("max_lifetime"));
        assert!(
            refused(|p| p.jwks = TrustKeys::JwksUri("http://keys.example/jwks".into()))
                .contains("jwks_uri")
        );
        assert_eq!(
            refused(|p| p.jwks = TrustKeys::JwksUri("https://keys.example/jwks".into())),
            "accepted"
        );
        assert!(refused(|p| p.jwks = TrustKeys::Static(Default::default())).contains("static"));
        let half_key = warrant_jose::Jwk {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            ..Default::default()
        };
        assert!(
            refused(|p| p.jwks = TrustKeys::Static(warrant_jose::JwkSet {
                keys: vec![half_key]
            }))
            .contains("static")
        );
        let key = warrant_jose::Jwk::ed25519(&[7; 32]);
        assert_eq!(
            refused(|p| p.jwks = TrustKeys::Static(warrant_jose::JwkSet { keys: vec![key] })),
            "accepted"
        );
    }

    #[test]
    fn lifetime_is_the_smaller() {
        let mut p = sample();
        assert_eq!(p.lifetime(600), 600);
        p.max_lifetime_seconds = Some(300);
        assert_eq!(p.lifetime(600), 300);
        assert_eq!(p.lifetime(120), 120);
    }

    #[test]
    fn json_round_trip_and_unknown_fields() {
        let mut p = sample();
        p.jwks = TrustKeys::JwksUri("https://issuer.example/keys".into());
        p.copy_claims = vec![
            ClaimPath::parse("sha").unwrap(),
            ClaimPath::from_segments(vec!["kubernetes.io".into(), "namespace".into()]).unwrap(),
        ];
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v["jwks"],
            json!({"jwks_uri": "https://issuer.example/keys"})
        );
        assert_eq!(
            v["copy_claims"],
            json!(["sha", ["kubernetes.io", "namespace"]])
        );
        assert_eq!(
            v["conditions"],
            json!([{"claim": "repository", "equals": "acme/api"}])
        );
        assert_eq!(serde_json::from_value::<TrustPolicy>(v.clone()).unwrap(), p);
        assert_eq!(
            serde_json::to_value(TrustKeys::Discovery).unwrap(),
            json!("discovery")
        );
        let mut typo = v;
        typo["single_usee"] = json!(true);
        assert!(serde_json::from_value::<TrustPolicy>(typo).is_err());
    }
}
