use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RsaKeyPair, RsaParameters,
    RsaPublicKeyComponents, RsaSignatureEncoding, VerificationAlgorithm,
};
use zeroize::Zeroizing;

use crate::{JoseError, Jwk, b64};

/// JWS algorithms Warrant signs with. The set is closed: `none` and HMAC algorithms are not
/// representable, so no code path can accept them (RFC 8725 §3.1, §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    Es256,
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3).
    Rs256,
    /// RSASSA-PSS with SHA-256, MGF1 with SHA-256 and a 32-byte salt (RFC 7518 §3.5).
    Ps256,
}

impl Algorithm {
    /// Every algorithm, in the order documentation lists them.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Es256,
        Algorithm::EdDsa,
        Algorithm::Rs256,
        Algorithm::Ps256,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Rs256 => "RS256",
            Algorithm::Ps256 => "PS256",
        }
    }

    /// Parses a JWS `alg` value. Anything not in the allow-list is refused.
    pub fn parse(s: &str) -> Result<Self, JoseError> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| JoseError::AlgorithmNotAllowed(s.chars().take(16).collect()))
    }

    /// RSA's signing padding and verification parameters; `None` for the other key types.
    /// RS256 and PS256 keys are the same kind of key: the algorithm alone picks the padding.
    fn rsa(self) -> Option<(&'static RsaSignatureEncoding, &'static RsaParameters)> {
        match self {
            Algorithm::Rs256 => Some((
                &signature::RSA_PKCS1_SHA256,
                &signature::RSA_PKCS1_2048_8192_SHA256,
            )),
            Algorithm::Ps256 => Some((
                &signature::RSA_PSS_SHA256,
                &signature::RSA_PSS_2048_8192_SHA256,
            )),
            Algorithm::Es256 | Algorithm::EdDsa => None,
        }
    }
}

/// RFC 7518 §3.3 and §3.5: an RSA key for RS256 or PS256 must be 2048 bits or larger. The upper
/// bound is what aws-lc-rs verifies (and keeps a hostile JWK from costing seconds).
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// The unsigned big-endian integer without its leading zero bytes.
fn unsigned(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Bit length of an unsigned big-endian integer without leading zero bytes.
fn bit_len(n: &[u8]) -> usize {
    n.first()
        .map_or(0, |&top| n.len() * 8 - top.leading_zeros() as usize)
}

fn check_rsa_modulus(n: &[u8]) -> Result<(), JoseError> {
    match bit_len(n) {
        bits if bits < RSA_MIN_BITS => Err(JoseError::BadKey("RSA modulus below 2048 bits")),
        bits if bits > RSA_MAX_BITS => Err(JoseError::BadKey("RSA modulus above 8192 bits")),
        _ => Ok(()),
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

enum Inner {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    /// RS256 or PS256: the key and the padding its algorithm signs with.
    Rsa(RsaKeyPair, &'static RsaSignatureEncoding),
}

/// A private signing key, parsed once and held ready. Its `Debug` shows only the kid.
pub struct SigningKey {
    alg: Algorithm,
    kid: String,
    inner: Inner,
    public: Jwk,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a key; returns it and its PKCS#8 document (to be stored encrypted). The kid is
    /// the RFC 7638 thumbprint of the public key, so it is stable and collision-free. RSA keys
    /// are 2048 bits: RFC 7518's minimum, and signing cost grows with the cube of the size.
    pub fn generate(alg: Algorithm) -> Result<(Self, Zeroizing<Vec<u8>>), JoseError> {
        let rng = SystemRandom::new();
        let der = match alg {
            Algorithm::Es256 => Zeroizing::new(
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| JoseError::Crypto)?
                    .as_ref()
                    .to_vec(),
            ),
            Algorithm::EdDsa => Zeroizing::new(
                Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| JoseError::Crypto)?
                    .as_ref()
                    .to_vec(),
            ),
            Algorithm::Rs256 | Algorithm::Ps256 => Zeroizing::new(
                RsaKeyPair::generate(KeySize::Rsa2048)
                    .and_then(|k| k.as_der())
                    .map_err(|_| JoseError::Crypto)?
                    .as_ref()
                    .to_vec(),
            ),
        };
        let key = Self::from_pkcs8(alg, &der)?;
        Ok((key, der))
    }

    /// Parses a PKCS#8 private key. The same RSA key may be read as RS256 or PS256: the stored
    /// algorithm decides the padding.
    pub fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Result<Self, JoseError> {
        let inner = match alg {
            Algorithm::Es256 => Inner::Es256(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| JoseError::BadKey("not a P-256 PKCS#8 key"))?,
            ),
            Algorithm::EdDsa => Inner::EdDsa(
                Ed25519KeyPair::from_pkcs8(der)
                    .map_err(|_| JoseError::BadKey("not an Ed25519 PKCS#8 key"))?,
            ),
            Algorithm::Rs256 | Algorithm::Ps256 => {
                let (padding, _) = alg.rsa().ok_or(JoseError::Crypto)?;
                let key = RsaKeyPair::from_pkcs8(der)
                    .map_err(|_| JoseError::BadKey("not an RSA PKCS#8 key"))?;
                Inner::Rsa(key, padding)
            }
        };
        let public = match &inner {
            Inner::Es256(k) => Jwk::ec_p256(k.public_key().as_ref())
                .ok_or(JoseError::BadKey("unexpected EC point encoding"))?,
            Inner::EdDsa(k) => Jwk::ed25519(k.public_key().as_ref()),
            Inner::Rsa(k, _) => {
                let public = k.public_key();
                let n = public.modulus();
                let n = n.big_endian_without_leading_zero();
                check_rsa_modulus(n)?;
                Jwk::rsa(n, public.exponent().big_endian_without_leading_zero())
            }
        };
        let public = public
            .for_signing(alg)
            .ok_or(JoseError::BadKey("no thumbprint"))?;
        let kid = public
            .kid
            .clone()
            .ok_or(JoseError::BadKey("no thumbprint"))?;
        Ok(Self {
            alg,
            kid,
            inner,
            public,
            rng: SystemRandom::new(),
        })
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK with `kid`, `use: "sig"` and `alg`.
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    /// Signs `msg`; ECDSA signatures are the fixed-size `r ‖ s` form JWS uses, RSA signatures
    /// are as long as the modulus.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, JoseError> {
        match &self.inner {
            Inner::Es256(k) => k
                .sign(&self.rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| JoseError::Crypto),
            Inner::EdDsa(k) => Ok(k.sign(msg).as_ref().to_vec()),
            Inner::Rsa(k, padding) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(*padding, &self.rng, msg, &mut sig)
                    .map_err(|_| JoseError::Crypto)?;
                Ok(sig)
            }
        }
    }
}

/// A public key ready to verify, built from a JWK and parsed once. The algorithm is the key's
/// own (from the JWK and its key type), never the token's. An RSA key serves one algorithm
/// only, so an RSA JWK must say which in its `alg`.
#[derive(Debug, Clone)]
pub struct PublicKey {
    alg: Algorithm,
    kid: Option<String>,
    key: ParsedPublicKey,
}

impl PublicKey {
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, JoseError> {
        let field = |v: &Option<String>, what| {
            v.as_deref()
                .and_then(b64::decode)
                .ok_or(JoseError::BadKey(what))
        };
        let parse = |algorithm: &'static dyn VerificationAlgorithm, bytes: &[u8]| {
            ParsedPublicKey::new(algorithm, bytes)
                .map_err(|_| JoseError::BadKey("invalid public key"))
        };
        let (alg, key) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("EC", Some("P-256")) => {
                let x = field(&jwk.x, "bad x")?;
                let y = field(&jwk.y, "bad y")?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(JoseError::BadKey("bad EC coordinates"));
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                (
                    Algorithm::Es256,
                    parse(&signature::ECDSA_P256_SHA256_FIXED, &point)?,
                )
            }
            ("OKP", Some("Ed25519")) => {
                let x = field(&jwk.x, "bad x")?;
                if x.len() != 32 {
                    return Err(JoseError::BadKey("bad Ed25519 key"));
                }
                (Algorithm::EdDsa, parse(&signature::ED25519, &x)?)
            }
            ("RSA", _) => {
                // The algorithm comes from our JWK, never from the token (RFC 8725 §3.1).
                let alg = match jwk.alg.as_deref() {
                    None => return Err(JoseError::BadKey("an RSA key must name its alg")),
                    Some(a) => Algorithm::parse(a)
                        .map_err(|_| JoseError::BadKey("alg does not match the key type"))?,
                };
                let (_, params) = alg
                    .rsa()
                    .ok_or(JoseError::BadKey("alg does not match the key type"))?;
                let n = field(&jwk.n, "bad n")?;
                let e = field(&jwk.e, "bad e")?;
                // RFC 7518 §6.3.1 asks for the minimal encoding; tolerate leading zeros.
                let (n, e) = (unsigned(&n), unsigned(&e));
                check_rsa_modulus(n)?;
                if e.len() > 4 || e.last().is_none_or(|&low| low & 1 == 0) || e == [1] {
                    return Err(JoseError::BadKey("bad RSA exponent"));
                }
                let key = RsaPublicKeyComponents { n, e }
                    .to_parsed_public_key(params)
                    .map_err(|_| JoseError::BadKey("invalid RSA public key"))?;
                (alg, key)
            }
            _ => return Err(JoseError::BadKey("unsupported key type")),
        };
        if jwk
            .alg
            .as_deref()
            .is_some_and(|declared| declared != alg.as_str())
        {
            return Err(JoseError::BadKey("alg does not match the key type"));
        }
        Ok(Self {
            alg,
            kid: jwk.kid.clone(),
            key,
        })
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), JoseError> {
        self.key
            .verify_sig(msg, sig)
            .map_err(|_| JoseError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1.
    const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    fn rsa_jwk(n: &str, alg: Option<&str>) -> Jwk {
        Jwk {
            kty: "RSA".into(),
            n: Some(n.into()),
            e: Some("AQAB".into()),
            kid: Some("2011-04-29".into()),
            alg: alg.map(Into::into),
            ..Jwk::default()
        }
    }

    #[test]
    fn algorithm_names_round_trip_and_nothing_else_parses() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::parse(alg.as_str()).unwrap(), alg);
        }
        for bad in ["HS256", "none", "rs256", "RS384", "PS512", "RSA-OAEP", ""] {
            assert!(Algorithm::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc7638_rsa_thumbprint() {
        let jwk = rsa_jwk(RFC7638_N, Some("RS256"));
        assert_eq!(
            jwk.thumbprint().as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        // the example key is 2048 bits and reads as a verification key
        let key = PublicKey::from_jwk(&jwk).unwrap();
        assert_eq!(key.alg(), Algorithm::Rs256);
        assert_eq!(key.kid(), Some("2011-04-29"));
    }

    #[test]
    fn generated_rsa_jwk_is_minimal_and_published_with_its_alg() {
        for alg in [Algorithm::Rs256, Algorithm::Ps256] {
            let (k, der) = SigningKey::generate(alg).unwrap();
            let jwk = k.public_jwk();
            assert_eq!(jwk.kty, "RSA");
            assert_eq!(jwk.alg.as_deref(), Some(alg.as_str()));
            assert_eq!(jwk.use_.as_deref(), Some("sig"));
            assert_eq!(jwk.kid.as_deref(), Some(k.kid()));
            assert_eq!(jwk.thumbprint().as_deref(), Some(k.kid()));
            assert!(jwk.crv.is_none() && jwk.x.is_none() && jwk.y.is_none());
            let n = b64::decode(jwk.n.as_deref().unwrap()).unwrap();
            assert_eq!(n.len(), 256, "2048-bit modulus, no leading zero byte");
            assert!(n[0] >= 0x80);
            assert_eq!(jwk.e.as_deref(), Some("AQAB"));
            // the PKCS#8 document reads back as the same key
            let again = SigningKey::from_pkcs8(alg, &der).unwrap();
            assert_eq!(again.public_jwk(), jwk);
            assert_eq!(k.sign(b"m").unwrap().len(), 256);
        }
    }

    #[test]
    fn rsa_jwk_must_name_an_rsa_alg() {
        assert_eq!(
            PublicKey::from_jwk(&rsa_jwk(RFC7638_N, None)).unwrap_err(),
            JoseError::BadKey("an RSA key must name its alg")
        );
        for alg in ["ES256", "EdDSA", "HS256", "none", "RS512"] {
            assert!(
                PublicKey::from_jwk(&rsa_jwk(RFC7638_N, Some(alg))).is_err(),
                "{alg}"
            );
        }
        assert_eq!(
            PublicKey::from_jwk(&rsa_jwk(RFC7638_N, Some("PS256")))
                .unwrap()
                .alg(),
            Algorithm::Ps256
        );
    }

    #[test]
    fn small_rsa_moduli_are_refused() {
        let modulus = |bytes: usize, top: u8| {
            let mut n = vec![0xa5; bytes];
            n[0] = top;
            *n.last_mut().unwrap() |= 1;
            b64::encode(n)
        };
        for (n, what) in [
            (modulus(128, 0xc3), "1024 bits"),
            (modulus(256, 0x7f), "2047 bits"),
            (modulus(1025, 0x01), "8193 bits"),
        ] {
            for alg in ["RS256", "PS256"] {
                assert!(
                    matches!(
                        PublicKey::from_jwk(&rsa_jwk(&n, Some(alg))),
                        Err(JoseError::BadKey(_))
                    ),
                    "{what} {alg}"
                );
            }
        }
        // leading zero bytes do not count towards the size
        let mut padded = vec![0, 0];
        padded.extend(b64::decode(&modulus(128, 0xc3)).unwrap());
        assert!(PublicKey::from_jwk(&rsa_jwk(&b64::encode(&padded), Some("RS256"))).is_err());
        // but are tolerated on a real key
        let mut padded = vec![0];
        padded.extend(b64::decode(RFC7638_N).unwrap());
        assert!(PublicKey::from_jwk(&rsa_jwk(&b64::encode(&padded), Some("RS256"))).is_ok());
    }

    #[test]
    fn degenerate_rsa_exponents_are_refused() {
        for e in ["AQ", "Ag", "AAE", "AQABAAAA", ""] {
            let jwk = Jwk {
                e: Some(e.into()),
                ..rsa_jwk(RFC7638_N, Some("RS256"))
            };
            assert!(PublicKey::from_jwk(&jwk).is_err(), "e={e:?}");
        }
        let jwk = Jwk {
            e: Some("Aw".into()),
            ..rsa_jwk(RFC7638_N, Some("RS256"))
        };
        assert!(PublicKey::from_jwk(&jwk).is_ok(), "e=3");
    }

    #[test]
    fn an_ec_key_with_an_rsa_alg_is_refused() {
        let (k, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let jwk = Jwk {
            alg: Some("RS256".into()),
            ..k.public_jwk().clone()
        };
        assert!(PublicKey::from_jwk(&jwk).is_err());
    }

    #[test]
    fn a_point_off_the_curve_is_refused_when_the_key_is_read() {
        let (k, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let jwk = Jwk {
            y: Some(b64::encode([7u8; 32])),
            ..k.public_jwk().clone()
        };
        assert!(PublicKey::from_jwk(&jwk).is_err());
    }
}
