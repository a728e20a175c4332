//! Verification against a set of keys that the token may not name.
//!
//! [`verify_compact`](crate::verify_compact) is for tokens Warrant issued: they always carry a
//! `kid`, and an unknown `kid` is an error. Tokens that *clients* sign (RFC 7523 client
//! assertions) often carry no `kid`, because the client registered one key, or registered its
//! keys without `kid`s. [`verify_compact_any_key`] accepts those: it still takes keys only from
//! the caller's list (never from the token's `jwk`, `jku`, `x5u` or `x5c` headers, which it
//! ignores) and still takes the algorithm from the key, never from the token alone
//! (RFC 8725 §3.1): a key is only tried when its own algorithm equals the header's `alg`.

use crate::jws::Parsed;
use crate::{Algorithm, JoseError, PublicKey, VerifiedJws};

/// At most this many keys are tried for one token without a `kid`. Every try is a signature
/// verification, and anyone can send a token naming any client: the cap bounds the work one
/// forged token costs. A client with more keys of one algorithm should name them with `kid`.
pub const MAX_KEYS_TRIED: usize = 8;

/// Verifies a compact JWS against `keys`, whether or not its header names a `kid`.
///
/// - `kid` present: the keys with that `kid`; if none has it, the keys registered *without* a
///   `kid` (a client may label its tokens with a `kid` we were never told). A key with another
///   `kid` is never tried.
/// - `kid` absent: every key whose algorithm is the header's `alg`.
///
/// Only keys whose algorithm equals the header's `alg` are tried, at most [`MAX_KEYS_TRIED`].
/// The `typ` header is *not* checked (callers differ in what they accept); a `crit` header is
/// refused, `alg: none` and HMAC algorithms are never accepted. Claims are not validated.
///
/// Errors: [`JoseError::UnknownKey`] when no key could be tried (none with that `kid`, or none
/// for that `alg`), [`JoseError::AlgorithmMismatch`] when the named key has another algorithm,
/// [`JoseError::BadSignature`] when every key tried refused the signature.
pub fn verify_compact_any_key(token: &str, keys: &[PublicKey]) -> Result<VerifiedJws, JoseError> {
    let parsed = Parsed::split(token)?;
    let candidates = candidates(keys, parsed.header.kid.as_deref(), parsed.alg)?;
    if !candidates
        .iter()
        .take(MAX_KEYS_TRIED)
        .any(|key| key.verify(parsed.signed, &parsed.signature).is_ok())
    {
        return Err(JoseError::BadSignature);
    }
    parsed.verified()
}

/// The keys [`verify_compact_any_key`] tries, in the caller's order.
fn candidates<'k>(
    keys: &'k [PublicKey],
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<Vec<&'k PublicKey>, JoseError> {
    let unknown = || JoseError::UnknownKey(kid.unwrap_or("").chars().take(64).collect());
    let named: Vec<&PublicKey> = match kid {
        Some(kid) => keys.iter().filter(|k| k.kid() == Some(kid)).collect(),
        None => Vec::new(),
    };
    if !named.is_empty() {
        let same_alg: Vec<&PublicKey> = named.into_iter().filter(|k| k.alg() == alg).collect();
        return if same_alg.is_empty() {
            Err(JoseError::AlgorithmMismatch)
        } else {
            Ok(same_alg)
        };
    }
    let pool = keys
        .iter()
        .filter(|k| kid.is_none() || k.kid().is_none())
        .filter(|k| k.alg() == alg);
    let found: Vec<&PublicKey> = pool.collect();
    if found.is_empty() {
        Err(unknown())
    } else {
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Jwk, SigningKey, b64};

    fn keypair(alg: Algorithm) -> (SigningKey, PublicKey) {
        let (k, _) = SigningKey::generate(alg).unwrap();
        let p = PublicKey::from_jwk(k.public_jwk()).unwrap();
        (k, p)
    }

    /// The same public key, registered without a `kid`.
    fn without_kid(k: &SigningKey) -> PublicKey {
        let jwk = Jwk {
            kid: None,
            ..k.public_jwk().clone()
        };
        PublicKey::from_jwk(&jwk).unwrap()
    }

    fn token(key: &SigningKey, header: &str) -> String {
        let input = format!("{}.{}", b64::encode(header), b64::encode(br#"{"sub":"x"}"#));
        let sig = key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64::encode(sig))
    }

    #[test]
    fn without_kid_every_key_of_the_alg_is_tried() {
        for alg in Algorithm::ALL {
            let (k, p) = keypair(alg);
            let (_, other) = keypair(alg);
            let t = token(&k, &format!(r#"{{"alg":"{alg}"}}"#));
            let v = verify_compact_any_key(&t, &[other.clone(), p.clone()]).unwrap();
            assert_eq!(v.claims["sub"], "x");
            assert_eq!(v.alg, alg);
            // only the other key: refused
            assert_eq!(
                verify_compact_any_key(&t, &[other]).unwrap_err(),
                JoseError::BadSignature
            );
        }
    }

    #[test]
    fn a_kid_selects_and_unknown_kids_fall_back_to_kidless_keys_only() {
        let (k, p) = keypair(Algorithm::Es256);
        let (_, other) = keypair(Algorithm::Es256);
        let named = token(&k, &format!(r#"{{"alg":"ES256","kid":"{}"}}"#, k.kid()));
        assert!(verify_compact_any_key(&named, &[other.clone(), p.clone()]).is_ok());
        // a kid nobody registered, and every registered key has a kid: unknown
        let stranger = token(&k, r#"{"alg":"ES256","kid":"nope"}"#);
        assert!(matches!(
            verify_compact_any_key(&stranger, &[other.clone(), p.clone()]),
            Err(JoseError::UnknownKey(_))
        ));
        // the same key registered without a kid: tried
        assert!(verify_compact_any_key(&stranger, &[other, without_kid(&k)]).is_ok());
    }

    #[test]
    fn the_algorithm_comes_from_the_key() {
        let (es, es_public) = keypair(Algorithm::Es256);
        let (rs, _) = keypair(Algorithm::Rs256);
        // an RS256 header over the EC key's registration: nothing to try
        let t = token(&rs, r#"{"alg":"RS256"}"#);
        assert!(matches!(
            verify_compact_any_key(&t, std::slice::from_ref(&es_public)),
            Err(JoseError::UnknownKey(_))
        ));
        // naming the EC key's kid with another alg
        let t = token(&rs, &format!(r#"{{"alg":"RS256","kid":"{}"}}"#, es.kid()));
        assert_eq!(
            verify_compact_any_key(&t, std::slice::from_ref(&es_public)).unwrap_err(),
            JoseError::AlgorithmMismatch
        );
        for header in [r#"{"alg":"none"}"#, r#"{"alg":"HS256"}"#] {
            let t = format!("{}.{}.", b64::encode(header), b64::encode(b"{}"));
            assert!(matches!(
                verify_compact_any_key(&t, std::slice::from_ref(&es_public)),
                Err(JoseError::AlgorithmNotAllowed(_))
            ));
        }
    }

    #[test]
    fn embedded_keys_are_ignored_and_crit_is_refused() {
        let (k, p) = keypair(Algorithm::Es256);
        let (attacker, _) = keypair(Algorithm::Es256);
        let jwk = serde_json::to_string(attacker.public_jwk()).unwrap();
        let t = token(&attacker, &format!(r#"{{"alg":"ES256","jwk":{jwk}}}"#));
        assert_eq!(
            verify_compact_any_key(&t, std::slice::from_ref(&p)).unwrap_err(),
            JoseError::BadSignature
        );
        let t = token(&k, r#"{"alg":"ES256","crit":["exp"],"exp":1}"#);
        assert_eq!(
            verify_compact_any_key(&t, &[p]).unwrap_err(),
            JoseError::UnsupportedCrit
        );
    }

    #[test]
    fn at_most_max_keys_tried() {
        let (k, p) = keypair(Algorithm::EdDsa);
        let mut keys: Vec<PublicKey> = (0..MAX_KEYS_TRIED)
            .map(|_| without_kid(&keypair(Algorithm::EdDsa).0))
            .collect();
        keys.push(without_kid(&k));
        let t = token(&k, r#"{"alg":"EdDSA"}"#);
        assert_eq!(
            verify_compact_any_key(&t, &keys).unwrap_err(),
            JoseError::BadSignature
        );
        keys.insert(0, p);
        assert!(verify_compact_any_key(&t, &keys).is_ok());
    }
}
