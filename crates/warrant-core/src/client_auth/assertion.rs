//! RFC 7523 client assertions (`private_key_jwt`, RFC 7523 §2.2 and §3, OIDC Core §9), checked
//! the way draft-ietf-oauth-rfc7523bis and RFC 8725 ask.
//!
//! [`check_assertion`] is pure and synchronous: the caller loads the account the assertion
//! claims to come from ([`claimed_client_id`]), gets its registered keys (inline JWKS, or by
//! `jwks_uri` through [`super::jwks_cache::JwksCache`]) and passes them in. What it does not
//! do: replay protection. A `jti` must be used once across every replica, which needs the
//! store; the caller records [`CheckedAssertion::jti`] until [`CheckedAssertion::exp`].
//!
//! Keys come only from the registration. The token's `jwk`, `jku`, `x5u` and `x5c` headers
//! are ignored, so a token signed by a key it carries itself proves nothing.

use serde_json::{Map, Value};
use warrant_jose::{JoseError, PublicKey, dangerous};

use crate::Timestamp;

/// `client_assertion_type` for a JWT client assertion (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest `jti` accepted: it is stored for replay detection.
pub const MAX_JTI_LEN: usize = 256;

/// Longest assertion read at all (a JWT with an RSA-4096 signature and a few claims is under
/// 2 KiB; headers carrying certificate chains are the large ones).
pub const MAX_ASSERTION_LEN: usize = 16 * 1024;

/// What the server accepts in a client assertion.
#[derive(Debug, Clone, Copy)]
pub struct AssertionPolicy<'a> {
    /// The tenant's issuer: the one audience always accepted (rfc7523bis §4).
    pub issuer: &'a str,
    /// The token endpoint URL, accepted as audience only with
    /// [`AssertionPolicy::accept_token_endpoint_audience`].
    pub token_endpoint: &'a str,
    /// For old clients that put the token endpoint in `aud` (RFC 7523 §3 allowed it;
    /// rfc7523bis does not). Off unless the tenant opts in.
    pub accept_token_endpoint_audience: bool,
    /// How far in the future `exp` may be, seconds (default 300): an assertion is a one-time
    /// proof, and its `jti` is kept until `exp`, so a distant `exp` costs storage.
    pub max_ahead_secs: i64,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, seconds (default 60).
    pub skew_secs: i64,
}

impl<'a> AssertionPolicy<'a> {
    /// The defaults: `aud` must be the issuer, `exp` at most 5 minutes ahead, 60 s of skew.
    pub fn new(issuer: &'a str, token_endpoint: &'a str) -> Self {
        AssertionPolicy {
            issuer,
            token_endpoint,
            accept_token_endpoint_audience: false,
            max_ahead_secs: 300,
            skew_secs: 60,
        }
    }
}

/// An assertion whose signature and claims were accepted; not yet checked for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedAssertion {
    pub client_id: String,
    /// To be recorded as used until `exp` (single use across replicas).
    pub jti: String,
    pub exp: i64,
}

/// Why an assertion was refused. For logs and audit records ([`AssertionFailure::as_str`]);
/// the client only ever learns `invalid_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssertionFailure {
    /// Not a compact JWS, not JSON, too long, or a claim of the wrong JSON type.
    #[error("the assertion is malformed")]
    Malformed,
    /// `alg` is `none`, HMAC, unknown, or not the algorithm of the key it names.
    #[error("the assertion's algorithm is not accepted")]
    Algorithm,
    /// No registered key has the `kid`, or none is of the header's `alg`.
    #[error("no registered key fits the assertion")]
    UnknownKey,
    #[error("the assertion's signature does not verify")]
    Signature,
    /// `typ` is neither `JWT` nor `client-authentication+jwt`.
    #[error("the assertion's typ is not accepted")]
    Type,
    #[error("the assertion has a crit header")]
    Crit,
    #[error("iss is not the client id")]
    Issuer,
    #[error("sub is not the client id")]
    Subject,
    /// Not a single string, or not the issuer (nor the opted-in token endpoint).
    #[error("aud is not this issuer")]
    Audience,
    #[error("the assertion has no exp")]
    ExpMissing,
    #[error("the assertion has expired")]
    Expired,
    #[error("the assertion's exp is too far ahead")]
    TooFarAhead,
    #[error("the assertion's nbf is in the future")]
    NotYetValid,
    #[error("the assertion's iat is in the future")]
    IssuedInFuture,
    /// Missing, not a string, or empty.
    #[error("the assertion has no jti")]
    JtiMissing,
    #[error("the assertion's jti is too long")]
    JtiTooLong,
}

impl AssertionFailure {
    /// A stable snake_case reason for logs, metrics and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            AssertionFailure::Malformed => "malformed",
            AssertionFailure::Algorithm => "algorithm",
            AssertionFailure::UnknownKey => "unknown_key",
            AssertionFailure::Signature => "signature",
            AssertionFailure::Type => "typ",
            AssertionFailure::Crit => "crit",
            AssertionFailure::Issuer => "issuer",
            AssertionFailure::Subject => "subject",
            AssertionFailure::Audience => "audience",
            AssertionFailure::ExpMissing => "exp_missing",
            AssertionFailure::Expired => "expired",
            AssertionFailure::TooFarAhead => "exp_too_far_ahead",
            AssertionFailure::NotYetValid => "not_yet_valid",
            AssertionFailure::IssuedInFuture => "issued_in_future",
            AssertionFailure::JtiMissing => "jti_missing",
            AssertionFailure::JtiTooLong => "jti_too_long",
        }
    }
}

/// The client the assertion claims to come from: `sub` when `iss` equals it (RFC 7523 §3:
/// both are the client id), read **without verifying anything**, only to know which account's
/// keys to load. `None` when it is unreadable or `iss` and `sub` differ.
pub fn claimed_client_id(assertion: &str) -> Option<String> {
    if assertion.len() > MAX_ASSERTION_LEN {
        return None;
    }
    let (_, claims) = dangerous::decode_unverified(assertion).ok()?;
    let iss = claims.get("iss")?.as_str()?;
    let sub = claims.get("sub")?.as_str()?;
    (iss == sub && !sub.is_empty()).then(|| sub.to_owned())
}

/// The `kid` the assertion's header names, read **without verifying anything**: for asking a
/// `jwks_uri` cache whether the key is new.
pub fn claimed_key_id(assertion: &str) -> Option<String> {
    if assertion.len() > MAX_ASSERTION_LEN {
        return None;
    }
    let (header, _) = dangerous::decode_unverified(assertion).ok()?;
    header.get("kid")?.as_str().map(str::to_owned)
}

/// Verifies `assertion` as a client assertion of `client_id` signed by one of `keys` (the
/// account's registered keys), at `now`.
///
/// Order: form, header (`typ`, `crit`, `alg`), signature, then `iss`, `sub`, `aud`, `exp`,
/// `nbf`, `iat`, `jti`. Nothing is read from an unverified claim set.
pub fn check_assertion(
    assertion: &str,
    keys: &[PublicKey],
    client_id: &str,
    policy: &AssertionPolicy<'_>,
    now: Timestamp,
) -> Result<CheckedAssertion, AssertionFailure> {
    if assertion.len() > MAX_ASSERTION_LEN {
        return Err(AssertionFailure::Malformed);
    }
    let verified = warrant_jose::verify_compact_any_key(assertion, keys).map_err(from_jose)?;
    if let Some(typ) = verified.header.typ.as_deref()
        && !typ_accepted(typ)
    {
        return Err(AssertionFailure::Type);
    }
    check_claims(&verified.claims, client_id, policy, now)
}

/// `typ`, compared case-insensitively with or without `application/` (RFC 7515 §4.1.9):
/// `JWT`, or `client-authentication+jwt` (rfc7523bis §5).
fn typ_accepted(typ: &str) -> bool {
    warrant_jose::typ_matches(typ, "jwt")
        || warrant_jose::typ_matches(typ, "client-authentication+jwt")
}

fn from_jose(e: JoseError) -> AssertionFailure {
    match e {
        JoseError::Malformed | JoseError::BadHeader | JoseError::BadClaims => {
            AssertionFailure::Malformed
        }
        JoseError::AlgorithmNotAllowed(_) | JoseError::AlgorithmMismatch => {
            AssertionFailure::Algorithm
        }
        JoseError::UnknownKey(_) => AssertionFailure::UnknownKey,
        JoseError::UnsupportedCrit => AssertionFailure::Crit,
        _ => AssertionFailure::Signature,
    }
}

fn check_claims(
    claims: &Map<String, Value>,
    client_id: &str,
    policy: &AssertionPolicy<'_>,
    now: Timestamp,
) -> Result<CheckedAssertion, AssertionFailure> {
    use AssertionFailure as F;
    let string = |name: &str, missing: F| match claims.get(name) {
        None => Err(missing),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(F::Malformed),
    };
    if string("iss", F::Issuer)? != client_id {
        return Err(F::Issuer);
    }
    if string("sub", F::Subject)? != client_id {
        return Err(F::Subject);
    }
    // A single string (rfc7523bis §4): an array could name other servers that would accept
    // the same assertion.
    let aud = match claims.get("aud") {
        Some(Value::String(aud)) => aud.as_str(),
        _ => return Err(F::Audience),
    };
    let audience_ok = aud == policy.issuer
        || (policy.accept_token_endpoint_audience && aud == policy.token_endpoint);
    if !audience_ok {
        return Err(F::Audience);
    }
    let now = now.secs();
    let skew = policy.skew_secs;
    let exp = numeric_date(claims, "exp")?.ok_or(F::ExpMissing)?;
    // RFC 7519 §4.1.4: not accepted on or after exp.
    if now >= exp.saturating_add(skew) {
        return Err(F::Expired);
    }
    if exp
        > now
            .saturating_add(policy.max_ahead_secs)
            .saturating_add(skew)
    {
        return Err(F::TooFarAhead);
    }
    let future = now.saturating_add(skew);
    if numeric_date(claims, "nbf")?.is_some_and(|nbf| nbf > future) {
        return Err(F::NotYetValid);
    }
    if numeric_date(claims, "iat")?.is_some_and(|iat| iat > future) {
        return Err(F::IssuedInFuture);
    }
    let jti = string("jti", F::JtiMissing)?;
    if jti.is_empty() {
        return Err(F::JtiMissing);
    }
    if jti.chars().count() > MAX_JTI_LEN {
        return Err(F::JtiTooLong);
    }
    Ok(CheckedAssertion {
        client_id: client_id.to_owned(),
        jti: jti.to_owned(),
        exp,
    })
}

/// A NumericDate claim (RFC 7519 §2: seconds, possibly fractional), floored to whole seconds.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, AssertionFailure> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            // `as` saturates, and a date beyond i64 seconds is refused by the range checks.
            (None, Some(f)) if f.is_finite() => Ok(Some(f.floor() as i64)),
            _ => Err(AssertionFailure::Malformed),
        },
        Some(_) => Err(AssertionFailure::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use warrant_jose::{Algorithm, SigningKey, b64};

    use super::*;

    const CLIENT: &str = "sa_01JCLIENT";
    const ISSUER: &str = "https://idp.example/t/default";
    const ENDPOINT: &str = "https://idp.example/t/default/token";
    const NOW: i64 = 1_800_000_000;

    fn policy() -> AssertionPolicy<'static> {
        AssertionPolicy::new(ISSUER, ENDPOINT)
    }

    fn keypair(alg: Algorithm) -> (SigningKey, PublicKey) {
        let (k, _) = SigningKey::generate(alg).unwrap();
        let p = PublicKey::from_jwk(k.public_jwk()).unwrap();
        (k, p)
    }

    fn claims() -> Value {
        json!({"iss": CLIENT, "sub": CLIENT, "aud": ISSUER, "exp": NOW + 60, "iat": NOW, "jti": "j-1"})
    }

    /// `header.claims` signed by `key`, whatever the header says.
    fn sign(key: &SigningKey, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64::encode(header.to_string()),
            b64::encode(claims.to_string())
        );
        let sig = key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64::encode(sig))
    }

    fn header(key: &SigningKey) -> Value {
        json!({"alg": key.alg().as_str(), "typ": "JWT"})
    }

    fn check(t: &str, keys: &[PublicKey]) -> Result<CheckedAssertion, AssertionFailure> {
        check_assertion(t, keys, CLIENT, &policy(), Timestamp::from_secs(NOW))
    }

    /// A valid assertion's claims with one member changed (`Value::Null` removes it).
    fn with(name: &str, value: Value) -> Value {
        let mut c = claims();
        let obj = c.as_object_mut().unwrap();
        if value.is_null() {
            obj.remove(name);
        } else {
            obj.insert(name.into(), value);
        }
        c
    }

    fn es256() -> (SigningKey, PublicKey) {
        keypair(Algorithm::Es256)
    }

    fn refused(claims: Value) -> AssertionFailure {
        let (k, p) = es256();
        check(&sign(&k, &header(&k), &claims), &[p]).unwrap_err()
    }

    #[test]
    fn every_algorithm_happy_path() {
        for alg in Algorithm::ALL {
            let (k, p) = keypair(alg);
            let (_, other) = keypair(alg);
            for h in [
                header(&k),
                json!({"alg": alg.as_str(), "kid": k.kid(), "typ": "client-authentication+jwt"}),
                json!({"alg": alg.as_str()}),
            ] {
                let ok = check(&sign(&k, &h, &claims()), &[other.clone(), p.clone()]).unwrap();
                assert_eq!(
                    ok,
                    CheckedAssertion {
                        client_id: CLIENT.into(),
                        jti: "j-1".into(),
                        exp: NOW + 60
                    }
                );
            }
        }
    }

    #[test]
    fn typ_variants() {
        let (k, p) = es256();
        for typ in [
            "JWT",
            "jwt",
            "application/jwt",
            "application/client-authentication+jwt",
        ] {
            let t = sign(&k, &json!({"alg": "ES256", "typ": typ}), &claims());
            assert!(check(&t, std::slice::from_ref(&p)).is_ok(), "{typ}");
        }
        for typ in ["at+jwt", "dpop+jwt", "JOSE", ""] {
            let t = sign(&k, &json!({"alg": "ES256", "typ": typ}), &claims());
            assert_eq!(
                check(&t, std::slice::from_ref(&p)),
                Err(AssertionFailure::Type),
                "{typ}"
            );
        }
    }

    #[test]
    fn alg_none_is_refused() {
        let (_, p) = es256();
        let t = format!(
            "{}.{}.",
            b64::encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
            b64::encode(claims().to_string())
        );
        assert_eq!(check(&t, &[p]), Err(AssertionFailure::Algorithm));
    }

    #[test]
    fn hs256_keyed_with_the_public_key_is_refused() {
        for alg in Algorithm::ALL {
            let (k, p) = keypair(alg);
            let input = format!(
                "{}.{}",
                b64::encode(json!({"alg": "HS256", "typ": "JWT"}).to_string()),
                b64::encode(claims().to_string())
            );
            let jwk = serde_json::to_vec(k.public_jwk()).unwrap();
            let mac = warrant_jose::crypto::HmacKey::new(&jwk).sign(input.as_bytes());
            let t = format!("{input}.{}", b64::encode(mac));
            assert_eq!(check(&t, &[p]), Err(AssertionFailure::Algorithm));
        }
    }

    #[test]
    fn keys_in_headers_are_ignored() {
        let (_, registered) = es256();
        let (attacker, _) = es256();
        let jwk = serde_json::to_value(attacker.public_jwk()).unwrap();
        for h in [
            json!({"alg": "ES256", "jwk": jwk}),
            json!({"alg": "ES256", "kid": attacker.kid(), "jwk": jwk}),
            json!({"alg": "ES256", "x5c": ["MIIBszCCAVmgAwIBAgIUQ"]}),
            json!({"alg": "ES256", "jku": "https://attacker.example/jwks"}),
            json!({"alg": "ES256", "x5u": "https://attacker.example/cert.pem"}),
        ] {
            let t = sign(&attacker, &h, &claims());
            let e = check(&t, std::slice::from_ref(&registered)).unwrap_err();
            assert!(
                matches!(
                    e,
                    AssertionFailure::Signature | AssertionFailure::UnknownKey
                ),
                "{h}: {e:?}"
            );
        }
    }

    #[test]
    fn another_key_or_no_key_is_refused() {
        let (k, _) = es256();
        let (_, other) = es256();
        let t = sign(&k, &header(&k), &claims());
        assert_eq!(check(&t, &[other]), Err(AssertionFailure::Signature));
        assert_eq!(check(&t, &[]), Err(AssertionFailure::UnknownKey));
        // a key of another algorithm
        let (_, ed) = keypair(Algorithm::EdDsa);
        assert_eq!(check(&t, &[ed]), Err(AssertionFailure::UnknownKey));
        // a kid that names no registered key
        let h = json!({"alg": "ES256", "kid": "unknown"});
        let (_, p) = keypair(Algorithm::Es256);
        assert_eq!(
            check(&sign(&k, &h, &claims()), &[p]),
            Err(AssertionFailure::UnknownKey)
        );
    }

    #[test]
    fn tampered_claims_are_refused() {
        let (k, p) = es256();
        let t = sign(&k, &header(&k), &claims());
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        parts[1] = b64::encode(with("sub", json!("sa_other")).to_string());
        assert_eq!(
            check(&parts.join("."), &[p]),
            Err(AssertionFailure::Signature)
        );
    }

    #[test]
    fn issuer_and_subject_must_be_the_client() {
        assert_eq!(
            refused(with("iss", json!("sa_other"))),
            AssertionFailure::Issuer
        );
        assert_eq!(refused(with("iss", Value::Null)), AssertionFailure::Issuer);
        assert_eq!(
            refused(with("sub", json!("sa_other"))),
            AssertionFailure::Subject
        );
        assert_eq!(refused(with("sub", Value::Null)), AssertionFailure::Subject);
        assert_eq!(refused(with("iss", json!(12))), AssertionFailure::Malformed);
        // signed by the right key but for another client id than the one asked about
        let (k, p) = es256();
        let t = sign(&k, &header(&k), &claims());
        assert_eq!(
            check_assertion(&t, &[p], "sa_other", &policy(), Timestamp::from_secs(NOW)),
            Err(AssertionFailure::Issuer)
        );
    }

    #[test]
    fn audience_is_one_string_naming_the_issuer() {
        assert_eq!(
            refused(with("aud", json!("https://other.example"))),
            AssertionFailure::Audience
        );
        assert_eq!(
            refused(with("aud", json!([ISSUER]))),
            AssertionFailure::Audience
        );
        assert_eq!(
            refused(with("aud", json!([ISSUER, ENDPOINT]))),
            AssertionFailure::Audience
        );
        assert_eq!(
            refused(with("aud", Value::Null)),
            AssertionFailure::Audience
        );
        assert_eq!(
            refused(with("aud", json!(ISSUER.to_owned() + "/"))),
            AssertionFailure::Audience
        );
        // the token endpoint: only with the opt-in
        assert_eq!(
            refused(with("aud", json!(ENDPOINT))),
            AssertionFailure::Audience
        );
        let (k, p) = es256();
        let t = sign(&k, &header(&k), &with("aud", json!(ENDPOINT)));
        let opted_in = AssertionPolicy {
            accept_token_endpoint_audience: true,
            ..policy()
        };
        let now = Timestamp::from_secs(NOW);
        assert!(check_assertion(&t, std::slice::from_ref(&p), CLIENT, &opted_in, now).is_ok());
        // and even then not inside an array
        let t = sign(&k, &header(&k), &with("aud", json!([ENDPOINT])));
        assert_eq!(
            check_assertion(&t, std::slice::from_ref(&p), CLIENT, &opted_in, now),
            Err(AssertionFailure::Audience)
        );
        // the issuer stays accepted with the opt-in
        let t = sign(&k, &header(&k), &claims());
        assert!(check_assertion(&t, &[p], CLIENT, &opted_in, now).is_ok());
    }

    #[test]
    fn expiry() {
        assert_eq!(
            refused(with("exp", Value::Null)),
            AssertionFailure::ExpMissing
        );
        assert_eq!(
            refused(with("exp", json!("soon"))),
            AssertionFailure::Malformed
        );
        // expired beyond the skew
        assert_eq!(
            refused(with("exp", json!(NOW - 61))),
            AssertionFailure::Expired
        );
        assert_eq!(
            refused(with("exp", json!(NOW - 60))),
            AssertionFailure::Expired
        );
        // expired within the skew: accepted
        let (k, p) = es256();
        let t = sign(&k, &header(&k), &with("exp", json!(NOW - 59)));
        assert!(check(&t, std::slice::from_ref(&p)).is_ok());
        // far ahead: at most 300 s (+ 60 s skew)
        assert_eq!(
            refused(with("exp", json!(NOW + 361))),
            AssertionFailure::TooFarAhead
        );
        assert_eq!(
            refused(with("exp", json!(NOW + 86_400))),
            AssertionFailure::TooFarAhead
        );
        assert_eq!(
            refused(with("exp", json!(u64::MAX))),
            AssertionFailure::TooFarAhead
        );
        let t = sign(&k, &header(&k), &with("exp", json!(NOW + 360)));
        assert_eq!(check(&t, std::slice::from_ref(&p)).unwrap().exp, NOW + 360);
        // fractional seconds (RFC 7519 §2)
        let t = sign(
            &k,
            &header(&k),
            &with("exp", json!((NOW + 30) as f64 + 0.5)),
        );
        assert_eq!(check(&t, &[p]).unwrap().exp, NOW + 30);
    }

    #[test]
    fn not_before_and_issued_at_in_the_future() {
        assert_eq!(
            refused(with("iat", json!(NOW + 61))),
            AssertionFailure::IssuedInFuture
        );
        assert_eq!(
            refused(with("nbf", json!(NOW + 61))),
            AssertionFailure::NotYetValid
        );
        assert_eq!(
            refused(with("iat", json!("now"))),
            AssertionFailure::Malformed
        );
        let (k, p) = es256();
        let t = sign(&k, &header(&k), &with("iat", json!(NOW + 60)));
        assert!(check(&t, std::slice::from_ref(&p)).is_ok());
        let t = sign(&k, &header(&k), &with("iat", Value::Null));
        assert!(check(&t, &[p]).is_ok());
    }

    #[test]
    fn jti_is_required_and_bounded() {
        assert_eq!(
            refused(with("jti", Value::Null)),
            AssertionFailure::JtiMissing
        );
        assert_eq!(
            refused(with("jti", json!(""))),
            AssertionFailure::JtiMissing
        );
        assert_eq!(refused(with("jti", json!(7))), AssertionFailure::Malformed);
        assert_eq!(
            refused(with("jti", json!("x".repeat(257)))),
            AssertionFailure::JtiTooLong
        );
        let (k, p) = es256();
        let t = sign(&k, &header(&k), &with("jti", json!("x".repeat(256))));
        assert!(check(&t, &[p]).is_ok());
    }

    #[test]
    fn crit_is_refused() {
        let (k, p) = es256();
        let h = json!({"alg": "ES256", "crit": ["b64"], "b64": true});
        assert_eq!(
            check(&sign(&k, &h, &claims()), &[p]),
            Err(AssertionFailure::Crit)
        );
    }

    #[test]
    fn claimed_ids_are_read_without_verification() {
        let (k, _) = es256();
        let t = sign(&k, &json!({"alg": "ES256", "kid": "k1"}), &claims());
        assert_eq!(claimed_client_id(&t).as_deref(), Some(CLIENT));
        assert_eq!(claimed_key_id(&t).as_deref(), Some("k1"));
        let t = sign(&k, &header(&k), &with("iss", json!("sa_other")));
        assert_eq!(claimed_client_id(&t), None);
        assert_eq!(claimed_key_id(&t), None);
        assert_eq!(claimed_client_id("not a jwt"), None);
    }

    #[test]
    fn reasons_are_snake_case_and_distinct() {
        use AssertionFailure as F;
        let all = [
            F::Malformed,
            F::Algorithm,
            F::UnknownKey,
            F::Signature,
            F::Type,
            F::Crit,
            F::Issuer,
            F::Subject,
            F::Audience,
            F::ExpMissing,
            F::Expired,
            F::TooFarAhead,
            F::NotYetValid,
            F::IssuedInFuture,
            F::JtiMissing,
            F::JtiTooLong,
        ];
        let mut seen = std::collections::HashSet::new();
        for f in all {
            let s = f.as_str();
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert!(seen.insert(s), "{s}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let (k, p) = es256();
        let t = sign(&k, &header(&k), &claims());
        let keys = [p];
        let check_all = |s: &str| {
            let _ = check(s, &keys);
            let _ = claimed_client_id(s);
            let _ = claimed_key_id(s);
        };
        for end in 0..=t.len() {
            check_all(&t[..end]);
        }
        let bytes = t.as_bytes();
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x20, 0x80] {
                let mut b = bytes.to_vec();
                b[i] ^= bit;
                let s = String::from_utf8_lossy(&b);
                assert!(check(&s, &keys).is_err() || s == t);
                check_all(&s);
            }
        }
        for s in [
            "",
            ".",
            "..",
            "...",
            "a.b.c",
            "e30.e30.",
            "e30.e30.e30",
            "\u{0}.\u{0}.\u{0}",
        ] {
            assert!(check(s, &keys).is_err());
            check_all(s);
        }
        assert_eq!(
            check(&"a".repeat(MAX_ASSERTION_LEN + 1), &keys),
            Err(AssertionFailure::Malformed)
        );
    }
}
