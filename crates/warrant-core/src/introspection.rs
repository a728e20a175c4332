//! RFC 7662 token introspection.
//!
//! A token is active only if this tenant signed it (a published key, an algorithm from our JWK,
//! `typ` `at+jwt`, exact `iss`), it is unexpired, it is not revoked by `jti` or by a watermark
//! on `sub`, `client_id` or any `act.sub`, and its account still exists in this tenant and is
//! enabled. Anything else — forged, `alg: none`, HMAC keyed with our public key, bit-flipped,
//! truncated, expired, revoked, another tenant's, a deleted account's — is exactly
//! `{"active": false}`: the caller learns nothing about why (RFC 7662 §2.2).

use serde_json::{Map, Value};

use crate::Warrant;
use crate::ids::AccountId;
use crate::signing::TenantKeys;
use crate::token_check::Inactive;

/// The RFC 7662 §2.2 members copied from an active token (plus `cnf`, RFC 8705 §3.2 / RFC 9449
/// §6.2, and the claims Warrant adds).
const COPIED: &[&str] = &[
    "scope",
    "client_id",
    "sub",
    "aud",
    "iss",
    "exp",
    "iat",
    "nbf",
    "jti",
    "cnf",
    "act",
    "tenant",
];

impl Warrant {
    /// Introspects `token` for an authenticated client of `keys.tenant`. `Ok` carries the
    /// response members of an active token; `Err` why it is inactive (for logs only).
    pub fn introspect(
        &self,
        keys: &TenantKeys,
        token: &str,
    ) -> Result<Map<String, Value>, Inactive> {
        let now = self.clock.now().secs();
        let t = self.check_signed(keys, token, now)?;
        if self.is_revoked(&keys.tenant, &t) {
            return Err(Inactive::Revoked);
        }
        let live = t
            .sub
            .as_deref()
            .and_then(|s| AccountId::parse(s).ok())
            .and_then(|id| self.directory.get(&id))
            .is_some_and(|e| e.account.tenant == keys.tenant && e.account.enabled);
        if !live {
            return Err(Inactive::Account);
        }
        let mut out = Map::new();
        out.insert("active".into(), Value::Bool(true));
        for k in COPIED {
            if let Some(v) = t.claims.get(*k) {
                out.insert((*k).to_owned(), v.clone());
            }
        }
        let token_type = if t.claims.get("cnf").and_then(|c| c.get("jkt")).is_some() {
            "DPoP"
        } else {
            "Bearer"
        };
        out.insert("token_type".into(), Value::from(token_type));
        Ok(out)
    }
}
