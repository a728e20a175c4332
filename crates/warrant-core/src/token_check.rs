//! Checking a token this tenant issued (introspection, RFC 7009 revocation): signature by one
//! of the tenant's published keys with an algorithm from our JWK (never from the token),
//! `typ` `at+jwt`, exact `iss`, `exp`, `nbf`, and not revoked.

use serde_json::{Map, Value};

use crate::signing::{ACCESS_TOKEN_TYP, TenantKeys};
use crate::{TenantName, Warrant};

/// Clock skew tolerated on `nbf`, seconds.
pub(crate) const SKEW: i64 = 60;

/// A token signed by this tenant, with the claims the checks read.
#[derive(Debug, Clone)]
pub struct OwnToken {
    pub claims: Map<String, Value>,
    pub jti: Option<String>,
    pub sub: Option<String>,
    pub client_id: Option<String>,
    pub exp: i64,
    pub iat: i64,
}

impl OwnToken {
    /// The token read from its verified claims; `exp` already checked. A missing `iat` makes
    /// the token as old as can be (every watermark applies).
    fn from_claims(claims: Map<String, Value>, exp: i64) -> Self {
        let s = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
        OwnToken {
            jti: s("jti"),
            sub: s("sub"),
            client_id: s("client_id"),
            exp,
            iat: claims
                .get("iat")
                .and_then(Value::as_i64)
                .unwrap_or(i64::MIN),
            claims,
        }
    }

    /// `sub`, `client_id` and every `act.sub` (RFC 8693 §4.1, nested, at most
    /// [`warrant_jose::MAX_ACT_DEPTH`] deep), which watermarks apply to.
    pub fn subjects(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        out.extend(self.sub.as_deref());
        out.extend(self.client_id.as_deref());
        out.extend(warrant_jose::act_subjects(&self.claims).0);
        out
    }

    /// How many actors the `act` chain names, and whether it is deeper than
    /// [`warrant_jose::MAX_ACT_DEPTH`] (then it counts as revoked: it cannot be checked whole).
    pub fn act_depth(&self) -> (usize, bool) {
        let (actors, too_deep) = warrant_jose::act_subjects(&self.claims);
        (actors.len(), too_deep)
    }
}

/// Why a token is not active. Never shown to the caller (introspection answers only
/// `{"active": false}`); kept for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactive {
    /// Not a JWS we signed: malformed, forged, `alg: none`, HMAC, another tenant's key, wrong `typ`.
    Signature,
    Issuer,
    Expired,
    NotYetValid,
    Revoked,
    /// The account is unknown, deleted, disabled, or of another tenant.
    Account,
}

impl Warrant {
    /// Verifies signature and time claims of a token of this tenant; does not consult
    /// revocations or accounts.
    pub(crate) fn check_signed(
        &self,
        keys: &TenantKeys,
        token: &str,
        now_secs: i64,
    ) -> Result<OwnToken, Inactive> {
        let v = warrant_jose::verify_compact(token, &keys.public, Some(ACCESS_TOKEN_TYP))
            .map_err(|_| Inactive::Signature)?;
        let c = v.claims;
        if c.get("iss").and_then(Value::as_str) != Some(keys.issuer.as_str()) {
            return Err(Inactive::Issuer);
        }
        let exp = c
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(Inactive::Expired)?;
        if now_secs >= exp {
            return Err(Inactive::Expired);
        }
        if c.get("nbf")
            .and_then(Value::as_i64)
            .is_some_and(|nbf| nbf > now_secs + SKEW)
        {
            return Err(Inactive::NotYetValid);
        }
        Ok(OwnToken::from_claims(c, exp))
    }

    /// Whether a verified token is revoked by `jti` or by a watermark on any of its subjects
    /// ([`OwnToken::subjects`]), or has an `act` chain too deep to check whole. One walk of
    /// the chain: this is on the introspection path.
    pub(crate) fn is_revoked(&self, tenant: &TenantName, t: &OwnToken) -> bool {
        let (actors, too_deep) = warrant_jose::act_subjects(&t.claims);
        let subjects = t.sub.as_deref().into_iter().chain(t.client_id.as_deref());
        too_deep
            || self
                .revocations
                .is_revoked(tenant, t.jti.as_deref(), t.iat, subjects.chain(actors))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::revocation::{RevocationEntry, RevocationKind, RevocationSet};
    use crate::time::Timestamp;

    fn token(claims: Value) -> OwnToken {
        let Value::Object(claims) = claims else {
            panic!("claims are an object");
        };
        OwnToken::from_claims(claims, 2000)
    }

    fn watermark(sub: &str, not_before: i64) -> RevocationEntry {
        RevocationEntry {
            cursor: 1,
            tenant: TenantName::parse("t").unwrap(),
            kind: RevocationKind::Subject {
                sub: sub.into(),
                not_before,
            },
            created_at: Timestamp::from_secs(0),
            prune_after: Timestamp::from_secs(0),
        }
    }

    fn revoked(set: &RevocationSet, t: &OwnToken) -> bool {
        set.is_revoked(
            &TenantName::parse("t").unwrap(),
            t.jti.as_deref(),
            t.iat,
            t.subjects(),
        )
    }

    #[test]
    fn subjects_are_sub_client_id_and_every_act_sub() {
        let t = token(json!({
            "sub": "sa_user", "client_id": "sa_client", "iat": 100,
            "act": {"sub": "sa_a", "act": {"sub": "sa_b", "act": {"nosub": 1}}}
        }));
        assert_eq!(t.subjects(), ["sa_user", "sa_client", "sa_a", "sa_b"]);
        // `act` that is not an object, or a `sub` that is not a string, adds nothing.
        let t = token(json!({"sub": "s", "act": "sa_a"}));
        assert_eq!(t.subjects(), ["s"]);
        let t = token(json!({"sub": "s", "act": {"sub": 5}}));
        assert_eq!(t.subjects(), ["s"]);
    }

    #[test]
    fn an_act_chain_stops_after_a_bounded_depth() {
        let mut act = json!({"sub": "deep"});
        for i in 0..100 {
            act = json!({"sub": format!("a{i}"), "act": act});
        }
        let t = token(json!({"sub": "s", "act": act}));
        let subjects = t.subjects();
        assert_eq!(
            subjects.len(),
            1 + warrant_jose::MAX_ACT_DEPTH,
            "{subjects:?}"
        );
        assert!(!subjects.contains(&"deep"));
        assert!(t.act_depth().1, "too deep: counts as revoked");
        // Exactly the limit: every actor listed, not too deep.
        let mut act = json!({"sub": "a0"});
        for i in 1..warrant_jose::MAX_ACT_DEPTH {
            act = json!({"sub": format!("a{i}"), "act": act});
        }
        let t = token(json!({"sub": "s", "act": act}));
        assert_eq!(t.act_depth(), (warrant_jose::MAX_ACT_DEPTH, false));
        assert!(t.subjects().contains(&"a0"));
    }

    #[test]
    fn a_watermark_on_any_actor_revokes_a_delegated_token() {
        let set = RevocationSet::default();
        set.apply(&[watermark("sa_b", 100)]);
        let delegated = token(json!({
            "sub": "sa_user", "client_id": "sa_client", "iat": 100,
            "act": {"sub": "sa_a", "act": {"sub": "sa_b"}}
        }));
        assert!(
            revoked(&set, &delegated),
            "nested act.sub, iat = not_before"
        );
        let later = token(json!({
            "sub": "sa_user", "client_id": "sa_client", "iat": 101,
            "act": {"sub": "sa_a", "act": {"sub": "sa_b"}}
        }));
        assert!(
            !revoked(&set, &later),
            "issued after the watermark's second"
        );

        set.apply(&[watermark("sa_client", 150)]);
        let by_client = token(json!({"sub": "sa_user", "client_id": "sa_client", "iat": 150}));
        assert!(revoked(&set, &by_client), "client_id");
        let other = token(json!({"sub": "sa_user", "client_id": "sa_other", "iat": 150}));
        assert!(!revoked(&set, &other));
        let no_iat = token(json!({"sub": "sa_client"}));
        assert!(
            revoked(&set, &no_iat),
            "a token without iat is as old as can be"
        );
    }
}
