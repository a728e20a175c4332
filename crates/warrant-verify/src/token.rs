//! The pure part of verification (RFC 9068 §4, RFC 8725): one compact JWS, the issuer's keys
//! and the time in; a [`VerifiedToken`] or the class of check that failed out. No I/O.
//!
//! - the signature, by a key of the issuer's JWKS named by the token's `kid`, with the
//!   algorithm **of that key** (a token saying `alg: none`, `HS256`, or an algorithm other than
//!   its key's is refused before any claim is read);
//! - `typ` `at+jwt` (or `application/at+jwt`), so an ID token or a client assertion signed by the
//!   same keys is not an access token;
//! - `iss` equal, byte for byte, to the configured issuer;
//! - the RFC 9068 §2.2 claims present: `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`, `jti`;
//! - `exp` in the future and `nbf`/`iat` not in the future, each with a bounded leeway.
//!
//! What depends on the request (audience, scopes, claims, sender binding, revocation) is checked
//! per request by [`crate::Verifier`], so one verified token serves many requests.

use serde_json::{Map, Value};
use warrant_jose::{JoseError, PublicKey, verify_compact};

/// The JOSE `typ` of an access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The largest leeway accepted for clock skew, seconds (RFC 8725 §3.10: keep it small).
pub const MAX_LEEWAY_SECS: i64 = 300;

/// The largest token read, bytes: ours are well under 2 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// How an access token is bound to its sender (`cnf`, RFC 7800).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// A bearer token: whoever holds it may use it.
    Bearer,
    /// `cnf.jkt` (RFC 9449 §6): each request needs a DPoP proof by the key with this thumbprint.
    Dpop { jkt: String },
    /// `cnf.x5t#S256` (RFC 8705 §3): the request must come over TLS with this client certificate.
    Certificate { x5t_s256: String },
}

/// A token whose signature, type, issuer, time and required claims checked out.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub iss: String,
    pub sub: String,
    /// `aud`, a string or an array on the wire; always a list here.
    pub aud: Vec<String>,
    pub client_id: String,
    pub jti: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: Option<i64>,
    /// `scope`, split on spaces.
    pub scopes: Vec<String>,
    /// Warrant's `tenant` claim, when present.
    pub tenant: Option<String>,
    pub binding: Binding,
    /// The `kid` that signed it: if the issuer stops publishing that key (a compromised key
    /// revoked), the token stops verifying even if a cache still holds it.
    pub kid: String,
    /// Every claim, for claim conditions and identity headers.
    pub claims: Map<String, Value>,
    /// Whether the `act` chain is deeper than [`warrant_jose::MAX_ACT_DEPTH`]: it cannot be
    /// checked whole against watermarks, so it counts as revoked. Found once, at verification.
    pub act_too_deep: bool,
}

impl VerifiedToken {
    /// `sub`, `client_id` and every `act.sub` of a delegation chain (RFC 8693 §4.1), at most
    /// [`warrant_jose::MAX_ACT_DEPTH`] levels deep: the subjects a revocation watermark applies
    /// to. See [`VerifiedToken::act_too_deep`].
    pub fn subjects(&self) -> Vec<&str> {
        let mut out = vec![self.sub.as_str(), self.client_id.as_str()];
        out.extend(warrant_jose::act_subjects(&self.claims).0);
        out
    }

    /// Whether the token's `scope` holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// A claim by dotted path (`act.sub`, `federated.repository`), if present.
    pub fn claim(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let mut v = self.claims.get(parts.next()?)?;
        for p in parts {
            v = v.as_object()?.get(p)?;
        }
        Some(v)
    }
}

/// Why a token was refused. The `Display` text is safe to send: it never quotes the token or
/// the expected values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenFailure {
    #[error("the token is not a compact JWS with JSON header and claims")]
    Malformed,
    #[error("the token is not an access token (typ at+jwt)")]
    Type,
    #[error("the token is not signed by a key of a trusted issuer")]
    Signature,
    #[error("the token is not signed by a key of a trusted issuer")]
    UnknownKey,
    #[error("the token's issuer is not trusted")]
    Issuer,
    #[error("the token lacks a required claim")]
    MissingClaim,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is not meant for this resource")]
    Audience,
    #[error("the token has been revoked")]
    Revoked,
    #[error("the token's confirmation (cnf) is not usable")]
    Confirmation,
}

impl TokenFailure {
    /// A stable label (metrics, access log).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Type => "typ",
            Self::Signature => "signature",
            Self::UnknownKey => "unknown_key",
            Self::Issuer => "issuer",
            Self::MissingClaim => "missing_claim",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Audience => "audience",
            Self::Revoked => "revoked",
            Self::Confirmation => "cnf",
        }
    }
}

/// The unverified `iss` of a token, to pick the issuer whose keys to try. Nothing else is read
/// before the signature verifies; a token naming an untrusted issuer is refused without a
/// signature check.
pub fn unverified_issuer(token: &str) -> Result<String, TokenFailure> {
    let payload = token.split('.').nth(1).ok_or(TokenFailure::Malformed)?;
    let bytes = warrant_jose::b64::decode(payload).ok_or(TokenFailure::Malformed)?;
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    let iss: Iss = serde_json::from_slice(&bytes).map_err(|_| TokenFailure::Malformed)?;
    iss.iss.ok_or(TokenFailure::MissingClaim)
}

/// Verifies `token` against `issuer`'s `keys` at `now` (seconds) with `leeway` seconds of
/// tolerated clock skew (clamped to [`MAX_LEEWAY_SECS`]).
pub fn verify_token(
    token: &str,
    issuer: &str,
    keys: &[PublicKey],
    now: i64,
    leeway: i64,
) -> Result<VerifiedToken, TokenFailure> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenFailure::Malformed);
    }
    let leeway = leeway.clamp(0, MAX_LEEWAY_SECS);
    let v = verify_compact(token, keys, Some(ACCESS_TOKEN_TYP)).map_err(|e| match e {
        JoseError::WrongType { .. } => TokenFailure::Type,
        JoseError::UnknownKey(_) => TokenFailure::UnknownKey,
        JoseError::Malformed | JoseError::BadHeader | JoseError::BadClaims => {
            TokenFailure::Malformed
        }
        _ => TokenFailure::Signature,
    })?;
    let kid = v.header.kid.unwrap_or_default();
    let c = v.claims;
    let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
    if c.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(TokenFailure::Issuer);
    }
    let exp = int(&c, "exp").ok_or(TokenFailure::MissingClaim)?;
    let iat = int(&c, "iat").ok_or(TokenFailure::MissingClaim)?;
    let nbf = match c.get("nbf") {
        None => None,
        Some(_) => Some(int(&c, "nbf").ok_or(TokenFailure::MissingClaim)?),
    };
    let aud = match c.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|a| a.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(TokenFailure::MissingClaim)?,
        _ => return Err(TokenFailure::MissingClaim),
    };
    let (Some(sub), Some(client_id), Some(jti)) = (s("sub"), s("client_id"), s("jti")) else {
        return Err(TokenFailure::MissingClaim);
    };
    if aud.is_empty() || sub.is_empty() || client_id.is_empty() || jti.is_empty() {
        return Err(TokenFailure::MissingClaim);
    }
    if now >= exp.saturating_add(leeway) {
        return Err(TokenFailure::Expired);
    }
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) || iat > now.saturating_add(leeway) {
        return Err(TokenFailure::NotYetValid);
    }
    let scopes = match c.get("scope") {
        None => Vec::new(),
        Some(Value::String(s)) => s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(_) => return Err(TokenFailure::Malformed),
    };
    let binding = binding(c.get("cnf"))?;
    let act_too_deep = warrant_jose::act_subjects(&c).1;
    Ok(VerifiedToken {
        iss: issuer.to_owned(),
        sub,
        aud,
        client_id,
        jti,
        exp,
        iat,
        nbf,
        scopes,
        tenant: s("tenant"),
        binding,
        kid,
        claims: c,
        act_too_deep,
    })
}

fn int(c: &Map<String, Value>, name: &str) -> Option<i64> {
    c.get(name).and_then(Value::as_i64)
}

/// `cnf` (RFC 7800): absent is a bearer token; `jkt` is DPoP; `x5t#S256` is mTLS. Anything
/// else, or both, is a confirmation this verifier cannot check, so the token is refused rather
/// than treated as a bearer token.
fn binding(cnf: Option<&Value>) -> Result<Binding, TokenFailure> {
    let Some(cnf) = cnf else {
        return Ok(Binding::Bearer);
    };
    let cnf = cnf.as_object().ok_or(TokenFailure::Confirmation)?;
    let jkt = cnf.get("jkt").and_then(Value::as_str);
    let x5t = cnf.get("x5t#S256").and_then(Value::as_str);
    match (jkt, x5t, cnf.len()) {
        (Some(j), None, 1) if !j.is_empty() => Ok(Binding::Dpop { jkt: j.to_owned() }),
        (None, Some(x), 1) if !x.is_empty() => Ok(Binding::Certificate {
            x5t_s256: x.to_owned(),
        }),
        _ => Err(TokenFailure::Confirmation),
    }
}

#[cfg(test)]
mod tests;
