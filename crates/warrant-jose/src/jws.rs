//! Compact JWS (RFC 7515 §7.1) for Warrant's tokens.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{Algorithm, JoseError, Jwk, PublicKey, SigningKey, b64};

/// Signs `claims` (a serialised JSON object) with `key`, header `{"alg","kid","typ"}`.
pub fn sign_compact(key: &SigningKey, typ: &str, claims: &[u8]) -> Result<String, JoseError> {
    let header = serde_json::json!({ "alg": key.alg().as_str(), "kid": key.kid(), "typ": typ });
    let header = serde_json::to_vec(&header).map_err(|_| JoseError::BadHeader)?;
    let mut out = String::with_capacity(64 + claims.len() * 4 / 3 + 90);
    b64::encode_into(&header, &mut out);
    out.push('.');
    b64::encode_into(claims, &mut out);
    let sig = key.sign(out.as_bytes())?;
    out.push('.');
    b64::encode_into(&sig, &mut out);
    Ok(out)
}

/// The parts of a JOSE header that verification reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub crit: Option<Value>,
}

/// A JWS whose signature verified under one of the given keys.
#[derive(Debug, Clone)]
pub struct VerifiedJws {
    pub header: Header,
    pub alg: Algorithm,
    pub claims: Map<String, Value>,
}

/// Compares a JOSE `typ` with the expected media type, case-insensitively and with or without
/// the `application/` prefix (RFC 7515 §4.1.9). Allocates nothing.
pub fn typ_matches(actual: &str, expected: &str) -> bool {
    const PREFIX: &str = "application/";
    let actual = match actual.get(..PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(PREFIX) => &actual[PREFIX.len()..],
        _ => actual,
    };
    actual.eq_ignore_ascii_case(expected)
}

/// A compact JWS split and its header read, its signature not yet checked: what every
/// verifier here does first (three base64url parts, a JSON header, no `crit`, an accepted
/// `alg`).
pub(crate) struct Parsed<'t> {
    pub(crate) header: Header,
    pub(crate) alg: Algorithm,
    /// `header.payload`, the bytes the signature covers.
    pub(crate) signed: &'t [u8],
    pub(crate) signature: Vec<u8>,
    payload: &'t str,
}

impl<'t> Parsed<'t> {
    pub(crate) fn split(token: &'t str) -> Result<Self, JoseError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JoseError::Malformed);
        };
        let header_bytes = b64::decode(h).ok_or(JoseError::Malformed)?;
        let header: Header =
            serde_json::from_slice(&header_bytes).map_err(|_| JoseError::BadHeader)?;
        if header.crit.is_some() {
            return Err(JoseError::UnsupportedCrit);
        }
        let alg = Algorithm::parse(&header.alg)?;
        Ok(Parsed {
            header,
            alg,
            signed: &token.as_bytes()[..h.len() + 1 + p.len()],
            signature: b64::decode(s).ok_or(JoseError::Malformed)?,
            payload: p,
        })
    }

    /// The claims, once the caller has verified the signature.
    pub(crate) fn verified(self) -> Result<VerifiedJws, JoseError> {
        let payload = b64::decode(self.payload).ok_or(JoseError::Malformed)?;
        let claims: Map<String, Value> =
            serde_json::from_slice(&payload).map_err(|_| JoseError::BadClaims)?;
        Ok(VerifiedJws {
            header: self.header,
            alg: self.alg,
            claims,
        })
    }
}

/// Verifies a compact JWS against `keys` (selected by `kid`), checking `typ` when given.
/// Claims are *not* validated here (exp, aud, …): that is the caller's policy.
pub fn verify_compact(
    token: &str,
    keys: &[PublicKey],
    expected_typ: Option<&'static str>,
) -> Result<VerifiedJws, JoseError> {
    let parsed = Parsed::split(token)?;
    if let Some(expected) = expected_typ {
        match parsed.header.typ.as_deref() {
            Some(t) if typ_matches(t, expected) => {}
            _ => return Err(JoseError::WrongType { expected }),
        }
    }
    let kid = parsed.header.kid.as_deref().ok_or(JoseError::BadHeader)?;
    let key = keys
        .iter()
        .find(|k| k.kid() == Some(kid))
        .ok_or_else(|| JoseError::UnknownKey(kid.chars().take(64).collect()))?;
    if key.alg() != parsed.alg {
        return Err(JoseError::AlgorithmMismatch);
    }
    key.verify(parsed.signed, &parsed.signature)?;
    parsed.verified()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypair(alg: Algorithm) -> (SigningKey, PublicKey) {
        let (k, _) = SigningKey::generate(alg).unwrap();
        let p = PublicKey::from_jwk(k.public_jwk()).unwrap();
        (k, p)
    }

    #[test]
    fn round_trip_every_algorithm() {
        for alg in Algorithm::ALL {
            let (k, p) = keypair(alg);
            let t = sign_compact(&k, "at+jwt", br#"{"sub":"x"}"#).unwrap();
            let v = verify_compact(&t, std::slice::from_ref(&p), Some("at+jwt")).unwrap();
            assert_eq!(v.claims["sub"], "x");
            assert_eq!(v.alg, alg);
            assert_eq!(v.header.alg, alg.as_str());
            // the held-ready signer produces the same kind of token
            let signer = JwsSigner::new(k, "at+jwt").unwrap();
            let t = signer.sign(br#"{"sub":"y"}"#).unwrap();
            let v = verify_compact(&t, &[p], Some("at+jwt")).unwrap();
            assert_eq!(v.claims["sub"], "y");
        }
    }

    /// `header.claims` signed by `key` whatever the header says: a token an attacker could make
    /// with a key whose public half is published under another algorithm.
    fn forge(key: &SigningKey, header: &str) -> String {
        let input = format!("{}.{}", b64::encode(header), b64::encode(br#"{"sub":"x"}"#));
        let sig = key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64::encode(sig))
    }

    #[test]
    fn rs256_and_ps256_are_not_interchangeable() {
        let (rs, der) = SigningKey::generate(Algorithm::Rs256).unwrap();
        // the same RSA key material, held as PS256
        let ps = SigningKey::from_pkcs8(Algorithm::Ps256, &der).unwrap();
        assert_eq!(
            rs.kid(),
            ps.kid(),
            "the kid is the thumbprint of n and e only"
        );
        let rs_public = PublicKey::from_jwk(rs.public_jwk()).unwrap();
        let ps_public = PublicKey::from_jwk(ps.public_jwk()).unwrap();
        for (signer, verifier, other) in [(&rs, &ps_public, &ps), (&ps, &rs_public, &rs)] {
            // an honest token under the other algorithm's key: the header check refuses it
            let honest = sign_compact(signer, "at+jwt", br#"{"sub":"x"}"#).unwrap();
            assert_eq!(
                verify_compact(&honest, std::slice::from_ref(verifier), None).unwrap_err(),
                JoseError::AlgorithmMismatch
            );
            // a header claiming the verifier's algorithm over the other padding: the padding
            // check refuses it
            let header = format!(
                r#"{{"alg":"{}","kid":"{}","typ":"at+jwt"}}"#,
                other.alg(),
                other.kid()
            );
            let forged = forge(signer, &header);
            assert_eq!(
                verify_compact(&forged, std::slice::from_ref(verifier), None).unwrap_err(),
                JoseError::BadSignature
            );
            // and the same header with the right padding verifies
            assert!(
                verify_compact(&forge(other, &header), std::slice::from_ref(verifier), None)
                    .is_ok()
            );
        }
    }

    #[test]
    fn rsa_signatures_do_not_cross_to_other_key_types() {
        let (rs, _) = keypair(Algorithm::Rs256);
        let (es, es_public) = keypair(Algorithm::Es256);
        // an RS256 header with the EC key's kid: refused before any signature check
        let header = format!(r#"{{"alg":"RS256","kid":"{}"}}"#, es.kid());
        assert_eq!(
            verify_compact(&forge(&rs, &header), &[es_public], None).unwrap_err(),
            JoseError::AlgorithmMismatch
        );
    }

    #[test]
    fn refuses_tampering_none_and_wrong_keys() {
        let (k, p) = keypair(Algorithm::Es256);
        let (other, _) = keypair(Algorithm::Es256);
        let t = sign_compact(&k, "at+jwt", br#"{"sub":"x"}"#).unwrap();
        // flipped payload bit
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        parts[1] = b64::encode(br#"{"sub":"y"}"#);
        let forged = parts.join(".");
        assert_eq!(
            verify_compact(&forged, std::slice::from_ref(&p), None).unwrap_err(),
            JoseError::BadSignature
        );
        // alg none
        let none_header = b64::encode(br#"{"alg":"none","kid":"k","typ":"at+jwt"}"#);
        let none = format!("{none_header}.{}.", parts[1]);
        assert!(matches!(
            verify_compact(&none, std::slice::from_ref(&p), None),
            Err(JoseError::AlgorithmNotAllowed(_))
        ));
        // HS256 is not even representable
        assert!(Algorithm::parse("HS256").is_err());
        // a key with the same kid but other material
        let mut jwk = other.public_jwk().clone();
        jwk.kid = Some(k.kid().to_string());
        let renamed = PublicKey::from_jwk(&jwk).unwrap();
        assert_eq!(
            verify_compact(&t, &[renamed], None).unwrap_err(),
            JoseError::BadSignature
        );
        // truncated
        assert!(verify_compact(&t[..t.len() - 5], std::slice::from_ref(&p), None).is_err());
        // wrong typ
        let jwt = sign_compact(&k, "JWT", b"{}").unwrap();
        assert!(matches!(
            verify_compact(&jwt, std::slice::from_ref(&p), Some("at+jwt")),
            Err(JoseError::WrongType { .. })
        ));
        assert!(verify_compact(&t, &[p], Some("at+jwt")).is_ok());
    }
}

/// A private key that signs JWS signing input, wherever it is held: in memory ([`SigningKey`])
/// or on a token (an HSM key, implemented in `warrant-hsm`). The algorithm always comes from
/// the key (RFC 8725 §3.1).
pub trait RawSigner: Send + Sync + std::fmt::Debug {
    fn alg(&self) -> Algorithm;
    /// The RFC 7638 thumbprint of the public key.
    fn kid(&self) -> &str;
    /// The public JWK (`kid`, `use: "sig"`, `alg`).
    fn public_jwk(&self) -> &Jwk;
    /// The JWS signature of `msg` (the signing input).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, JoseError>;
    /// Whether [`RawSigner::sign`] blocks on I/O (an HSM round trip): async callers then sign
    /// inside `tokio::task::spawn_blocking`.
    fn is_blocking(&self) -> bool;
}

impl RawSigner for SigningKey {
    fn alg(&self) -> Algorithm {
        SigningKey::alg(self)
    }
    fn kid(&self) -> &str {
        SigningKey::kid(self)
    }
    fn public_jwk(&self) -> &Jwk {
        SigningKey::public_jwk(self)
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, JoseError> {
        SigningKey::sign(self, msg)
    }
    fn is_blocking(&self) -> bool {
        false
    }
}

/// A signing key with its JWS header already encoded: the token hot path only encodes the
/// claims and signs. Built once per key when the key is loaded.
#[derive(Debug)]
pub struct JwsSigner {
    key: Arc<dyn RawSigner>,
    header_b64: String,
}

impl JwsSigner {
    pub fn new(key: SigningKey, typ: &str) -> Result<Self, JoseError> {
        Self::from_raw(Arc::new(key), typ)
    }

    /// A signer over any [`RawSigner`] (the same key may back several signers, one per `typ`).
    pub fn from_raw(key: Arc<dyn RawSigner>, typ: &str) -> Result<Self, JoseError> {
        let header = serde_json::json!({ "alg": key.alg().as_str(), "kid": key.kid(), "typ": typ });
        let header = serde_json::to_vec(&header).map_err(|_| JoseError::BadHeader)?;
        Ok(Self {
            key,
            header_b64: b64::encode(header),
        })
    }

    pub fn key(&self) -> &dyn RawSigner {
        &*self.key
    }

    /// Whether signing blocks (see [`RawSigner::is_blocking`]).
    pub fn is_blocking(&self) -> bool {
        self.key.is_blocking()
    }

    /// `header.claims.signature` for the serialised claims object.
    pub fn sign(&self, claims: &[u8]) -> Result<String, JoseError> {
        let mut out = String::with_capacity(self.header_b64.len() + claims.len() * 4 / 3 + 92);
        out.push_str(&self.header_b64);
        out.push('.');
        b64::encode_into(claims, &mut out);
        let sig = self.key.sign(out.as_bytes())?;
        out.push('.');
        b64::encode_into(&sig, &mut out);
        Ok(out)
    }
}
