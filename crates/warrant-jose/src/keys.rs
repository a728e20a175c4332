use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use zeroize::Zeroizing;

use crate::{JoseError, Jwk, b64};

/// JWS algorithms Warrant signs with. The set is closed: `none` and HMAC algorithms are not
/// representable, so no code path can accept them (RFC 8725 §3.1, §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    Es256,
    EdDsa,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// Parses a JWS `alg` value. Anything not in the allow-list is refused.
    pub fn parse(s: &str) -> Result<Self, JoseError> {
        match s {
            "ES256" => Ok(Algorithm::Es256),
            "EdDSA" => Ok(Algorithm::EdDsa),
            other => Err(JoseError::AlgorithmNotAllowed(
                other.chars().take(16).collect(),
            )),
        }
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
    /// the RFC 7638 thumbprint of the public key, so it is stable and collision-free.
    pub fn generate(alg: Algorithm) -> Result<(Self, Zeroizing<Vec<u8>>), JoseError> {
        let rng = SystemRandom::new();
        let der = match alg {
            Algorithm::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| JoseError::Crypto)?
            }
            Algorithm::EdDsa => {
                Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| JoseError::Crypto)?
            }
        };
        let der = Zeroizing::new(der.as_ref().to_vec());
        let key = Self::from_pkcs8(alg, &der)?;
        Ok((key, der))
    }

    /// Parses a PKCS#8 private key.
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
        };
        let mut public = match &inner {
            Inner::Es256(k) => {
                let point = k.public_key().as_ref();
                if point.len() != 65 || point[0] != 4 {
                    return Err(JoseError::BadKey("unexpected EC point encoding"));
                }
                Jwk {
                    kty: "EC".into(),
                    crv: Some("P-256".into()),
                    x: Some(b64::encode(&point[1..33])),
                    y: Some(b64::encode(&point[33..65])),
                    n: None,
                    e: None,
                    kid: None,
                    use_: None,
                    alg: None,
                }
            }
            Inner::EdDsa(k) => Jwk {
                kty: "OKP".into(),
                crv: Some("Ed25519".into()),
                x: Some(b64::encode(k.public_key().as_ref())),
                y: None,
                n: None,
                e: None,
                kid: None,
                use_: None,
                alg: None,
            },
        };
        let kid = public
            .thumbprint()
            .ok_or(JoseError::BadKey("no thumbprint"))?;
        public.kid = Some(kid.clone());
        public.use_ = Some("sig".into());
        public.alg = Some(alg.as_str().into());
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

    /// Signs `msg`; ECDSA signatures are the fixed-size `r ‖ s` form JWS uses.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, JoseError> {
        match &self.inner {
            Inner::Es256(k) => k
                .sign(&self.rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| JoseError::Crypto),
            Inner::EdDsa(k) => Ok(k.sign(msg).as_ref().to_vec()),
        }
    }
}

/// A public key ready to verify, built from a JWK. The algorithm is the key's own (from the JWK
/// and its key type), never the token's.
#[derive(Debug, Clone)]
pub struct PublicKey {
    alg: Algorithm,
    kid: Option<String>,
    bytes: Vec<u8>,
}

impl PublicKey {
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, JoseError> {
        let field = |v: &Option<String>, what| {
            v.as_deref()
                .and_then(b64::decode)
                .ok_or(JoseError::BadKey(what))
        };
        let (alg, bytes) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
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
                (Algorithm::Es256, point)
            }
            ("OKP", Some("Ed25519")) => {
                let x = field(&jwk.x, "bad x")?;
                if x.len() != 32 {
                    return Err(JoseError::BadKey("bad Ed25519 key"));
                }
                (Algorithm::EdDsa, x)
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
            bytes,
        })
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), JoseError> {
        let algorithm: &dyn signature::VerificationAlgorithm = match self.alg {
            Algorithm::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            Algorithm::EdDsa => &signature::ED25519,
        };
        UnparsedPublicKey::new(algorithm, &self.bytes)
            .verify(msg, sig)
            .map_err(|_| JoseError::BadSignature)
    }
}
