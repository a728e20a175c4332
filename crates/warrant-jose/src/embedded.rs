//! Compact JWS that carry their own verification key in the `jwk` header (RFC 7515 §4.1.3):
//! DPoP proofs (RFC 9449 §4.2).
//!
//! Everywhere else the key comes from us (a JWKS we trust) and the token only names it by `kid`.
//! Here the token brings the key, so the signature proves only that the sender holds the private
//! half of *that* key; what the key is worth (its thumbprint bound to a token, `cnf.jkt`) is the
//! caller's business. Two rules still hold: the algorithm must fit the key (an RSA key is read
//! under the header's `alg` only if that is RS256 or PS256, an EC P-256 key only verifies ES256,
//! an Ed25519 key only EdDSA), and a header key with private members is refused outright — a
//! client that leaks its private key in a header must learn so, not be served (RFC 9449 §4.3
//! step 7).

use serde_json::{Map, Value};

use crate::{Algorithm, JoseError, Jwk, PublicKey, RawSigner, b64};

/// JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1;
/// RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a JWS with an embedded key was refused. Coarse on purpose: it says which check failed,
/// never what the token held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddedError {
    /// Not three base64url parts, or a header or payload that is not a JSON object.
    #[error("not a compact JWS with JSON header and claims")]
    Malformed,
    /// A `crit` header: we understand no extension.
    #[error("the header has a critical extension")]
    Crit,
    /// `alg` missing or not one of ES256, EdDSA, RS256, PS256 (never `none` or HS*).
    #[error("the algorithm is not accepted")]
    Algorithm,
    /// No `jwk` header, or one that is not a usable public key.
    #[error("the header's jwk is not a usable public key")]
    Key,
    /// The `jwk` header holds private key material.
    #[error("the header's jwk holds a private key")]
    PrivateKey,
    /// The key does not serve the header's `alg` (an EC key under RS256, an RSA key under ES256,
    /// a JWK whose own `alg` differs from the header's).
    #[error("the algorithm does not fit the key")]
    AlgorithmMismatch,
    /// The signature does not verify with the header's key.
    #[error("the signature does not verify with the header's key")]
    Signature,
}

/// A JWS whose signature verified under the key in its own header.
#[derive(Debug, Clone)]
pub struct EmbeddedJws {
    /// The whole JOSE header as sent (the caller checks `typ` and anything else it needs).
    pub header: Map<String, Value>,
    /// The algorithm the signature verified under.
    pub alg: Algorithm,
    /// The header's public key as sent (take its RFC 7638 [`Jwk::thumbprint`]).
    pub jwk: Jwk,
    pub claims: Map<String, Value>,
}

/// Verifies a compact JWS with the public key of its `jwk` header. Claims are not validated
/// here, and neither is `typ`: both are the caller's policy.
pub fn verify_with_embedded_jwk(token: &str) -> Result<EmbeddedJws, EmbeddedError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(EmbeddedError::Malformed);
    };
    let object = |part: &str| -> Result<Map<String, Value>, EmbeddedError> {
        let bytes = b64::decode(part).ok_or(EmbeddedError::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| EmbeddedError::Malformed)
    };
    let header = object(h)?;
    if header.contains_key("crit") {
        return Err(EmbeddedError::Crit);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(EmbeddedError::Algorithm)
        .and_then(|a| Algorithm::parse(a).map_err(|_| EmbeddedError::Algorithm))?;
    let jwk_value = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or(EmbeddedError::Key)?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk_value.contains_key(*m)) {
        return Err(EmbeddedError::PrivateKey);
    }
    let jwk: Jwk =
        serde_json::from_value(Value::Object(jwk_value.clone())).map_err(|_| EmbeddedError::Key)?;
    let key = public_key_for(&jwk, alg)?;
    if key.alg() != alg {
        return Err(EmbeddedError::AlgorithmMismatch);
    }
    let sig = b64::decode(s).ok_or(EmbeddedError::Malformed)?;
    let signed_len = h.len() + 1 + p.len();
    key.verify(&token.as_bytes()[..signed_len], &sig)
        .map_err(|_| EmbeddedError::Signature)?;
    let claims = object(p)?;
    Ok(EmbeddedJws {
        header,
        alg,
        jwk,
        claims,
    })
}

/// Reads the header's key for `alg`. Our RSA verification keys must name their algorithm (one
/// RSA key, one padding); a proof's RSA JWK usually does not, so it is read under the header's
/// `alg` — but only when that is an RSA algorithm, so `alg` can never choose how an EC or OKP
/// key is read.
fn public_key_for(jwk: &Jwk, alg: Algorithm) -> Result<PublicKey, EmbeddedError> {
    let is_rsa_alg = matches!(alg, Algorithm::Rs256 | Algorithm::Ps256);
    let mut jwk = jwk.clone();
    match (jwk.kty.as_str(), &jwk.alg) {
        ("RSA", None) if is_rsa_alg => jwk.alg = Some(alg.as_str().to_owned()),
        ("RSA", None) => return Err(EmbeddedError::AlgorithmMismatch),
        (_, Some(declared)) if declared != alg.as_str() => {
            return Err(EmbeddedError::AlgorithmMismatch);
        }
        _ => {}
    }
    PublicKey::from_jwk(&jwk).map_err(|e| match e {
        JoseError::BadKey("alg does not match the key type") => EmbeddedError::AlgorithmMismatch,
        _ => EmbeddedError::Key,
    })
}

/// Signs `claims` (a serialised JSON object) with header `{"typ","alg","jwk"}`, the `jwk` being
/// the key's public members only (`kty`, `crv`, `x`, `y`, `n`, `e`): how a client makes a DPoP
/// proof, and how tests do.
pub fn sign_with_embedded_jwk(
    key: &dyn RawSigner,
    typ: &str,
    claims: &[u8],
) -> Result<String, JoseError> {
    let public = key.public_jwk();
    let jwk = Jwk {
        kty: public.kty.clone(),
        crv: public.crv.clone(),
        x: public.x.clone(),
        y: public.y.clone(),
        n: public.n.clone(),
        e: public.e.clone(),
        ..Jwk::default()
    };
    let header = serde_json::json!({ "typ": typ, "alg": key.alg().as_str(), "jwk": jwk });
    let header = serde_json::to_vec(&header).map_err(|_| JoseError::BadHeader)?;
    let mut out = b64::encode(header);
    out.push('.');
    b64::encode_into(claims, &mut out);
    let sig = key.sign(out.as_bytes())?;
    out.push('.');
    b64::encode_into(sig, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

    fn key(alg: Algorithm) -> SigningKey {
        SigningKey::generate(alg).unwrap().0
    }

    /// `header.claims` signed by `key`, whatever the header says.
    fn forge(key: &SigningKey, header: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64::encode(header.to_string()),
            b64::encode(br#"{"jti":"x"}"#)
        );
        let sig = key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64::encode(sig))
    }

    fn bare_jwk(key: &SigningKey) -> Value {
        let mut v = serde_json::to_value(key.public_jwk()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("kid");
        o.remove("use");
        o.remove("alg");
        v
    }

    #[test]
    fn every_algorithm_round_trips_with_its_thumbprint() {
        for alg in Algorithm::ALL {
            let k = key(alg);
            let t = sign_with_embedded_jwk(&k, "dpop+jwt", br#"{"jti":"a"}"#).unwrap();
            let v = verify_with_embedded_jwk(&t).unwrap();
            assert_eq!(v.alg, alg);
            assert_eq!(v.claims["jti"], "a");
            assert_eq!(v.header["typ"], "dpop+jwt");
            assert_eq!(v.jwk.thumbprint().as_deref(), Some(k.kid()), "{alg}");
            assert!(v.jwk.kid.is_none() && v.jwk.alg.is_none());
        }
    }

    #[test]
    fn rsa_jwk_with_a_matching_alg_member_is_read() {
        let k = key(Algorithm::Ps256);
        let mut jwk = bare_jwk(&k);
        jwk["alg"] = "PS256".into();
        let t = forge(&k, &serde_json::json!({"alg":"PS256","jwk":jwk}));
        assert_eq!(verify_with_embedded_jwk(&t).unwrap().alg, Algorithm::Ps256);
        // the same key declared RS256 but the header says PS256
        jwk["alg"] = "RS256".into();
        let t = forge(&k, &serde_json::json!({"alg":"PS256","jwk":jwk}));
        assert_eq!(
            verify_with_embedded_jwk(&t).unwrap_err(),
            EmbeddedError::AlgorithmMismatch
        );
    }

    #[test]
    fn algorithm_must_fit_the_key() {
        let es = key(Algorithm::Es256);
        let rs = key(Algorithm::Rs256);
        let ed = key(Algorithm::EdDsa);
        // an EC key under an RSA alg, an RSA key under ES256, an Ed25519 key under ES256
        for (signer, jwk_of, alg) in [
            (&rs, &es, "RS256"),
            (&es, &rs, "ES256"),
            (&es, &ed, "ES256"),
            (&ed, &es, "EdDSA"),
        ] {
            let t = forge(
                signer,
                &serde_json::json!({"alg":alg,"jwk":bare_jwk(jwk_of)}),
            );
            assert_eq!(
                verify_with_embedded_jwk(&t).unwrap_err(),
                EmbeddedError::AlgorithmMismatch,
                "{alg} with a {} key",
                jwk_of.alg()
            );
        }
        // RS256 and PS256 over the same RSA key are not interchangeable
        let t = forge(&rs, &serde_json::json!({"alg":"PS256","jwk":bare_jwk(&rs)}));
        assert_eq!(
            verify_with_embedded_jwk(&t).unwrap_err(),
            EmbeddedError::Signature
        );
    }

    #[test]
    fn refusals() {
        let k = key(Algorithm::Es256);
        let other = key(Algorithm::Es256);
        let jwk = bare_jwk(&k);
        let cases = [
            (
                serde_json::json!({"alg":"none","jwk":jwk}),
                EmbeddedError::Algorithm,
            ),
            (
                serde_json::json!({"alg":"HS256","jwk":jwk}),
                EmbeddedError::Algorithm,
            ),
            (serde_json::json!({"jwk":jwk}), EmbeddedError::Algorithm),
            (serde_json::json!({"alg":"ES256"}), EmbeddedError::Key),
            (
                serde_json::json!({"alg":"ES256","jwk":"x"}),
                EmbeddedError::Key,
            ),
            (
                serde_json::json!({"alg":"ES256","jwk":{"kty":"oct","k":"c2VjcmV0"}}),
                EmbeddedError::PrivateKey,
            ),
            (
                serde_json::json!({"alg":"ES256","jwk":{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}}),
                EmbeddedError::Key,
            ),
            (
                serde_json::json!({"alg":"ES256","jwk":jwk,"crit":["exp"]}),
                EmbeddedError::Crit,
            ),
            (
                serde_json::json!({"alg":"ES256","jwk":bare_jwk(&other)}),
                EmbeddedError::Signature,
            ),
        ];
        for (header, expected) in cases {
            assert_eq!(
                verify_with_embedded_jwk(&forge(&k, &header)).unwrap_err(),
                expected,
                "{header}"
            );
        }
        for member in PRIVATE_MEMBERS {
            let mut j = jwk.clone();
            j[member] = "AAAA".into();
            let t = forge(&k, &serde_json::json!({"alg":"ES256","jwk":j}));
            assert_eq!(
                verify_with_embedded_jwk(&t).unwrap_err(),
                EmbeddedError::PrivateKey,
                "{member}"
            );
        }
        let good = forge(&k, &serde_json::json!({"alg":"ES256","jwk":jwk}));
        assert!(verify_with_embedded_jwk(&good).is_ok());
        for bad in [
            &good[..good.len() - 3],
            "a.b",
            "a.b.c.d",
            "",
            &format!("{good}.x"),
        ] {
            assert!(verify_with_embedded_jwk(bad).is_err(), "{bad}");
        }
    }
}
