//! Keys on the token: finding one, generating one, its public JWK, and signing.

use cryptoki::error::Error as CkError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::types::Ulong;
use warrant_jose::{Algorithm, Jwk, PublicKey, b64};

use crate::{HsmError, HsmModule};

/// DER of the P-256 curve OID (1.2.840.10045.3.1.7), the `CKA_EC_PARAMS` of an ES256 key.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the Ed25519 OID (1.3.101.112); PKCS#11 3.0 also allows the printable string below.
const ED25519_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const ED25519_PARAMS_NAME: &[u8] = b"\x13\x0cedwards25519";

/// How a key is named on the token: its `CKA_LABEL` or its `CKA_ID`.
#[derive(Debug, Clone, Copy)]
pub enum KeyRef<'a> {
    Label(&'a str),
    Id(&'a [u8]),
}

impl std::fmt::Display for KeyRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyRef::Label(l) => write!(f, "label {l:?}"),
            KeyRef::Id(id) => {
                f.write_str("id ")?;
                id.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

impl KeyRef<'_> {
    fn attribute(&self) -> Attribute {
        match self {
            KeyRef::Label(l) => Attribute::Label(l.as_bytes().to_vec()),
            KeyRef::Id(id) => Attribute::Id(id.to_vec()),
        }
    }
}

/// A private key on the token, ready to sign JWS input, with its public JWK.
///
/// [`HsmKey::sign`] blocks for a round trip to the token: from async code call it inside
/// `tokio::task::spawn_blocking`.
#[derive(Clone)]
pub struct HsmKey {
    module: HsmModule,
    handle: ObjectHandle,
    alg: Algorithm,
    kid: String,
    public: Jwk,
    /// Expected signature length (64 for ES256 and EdDSA, the modulus length for RSA).
    sig_len: usize,
}

impl std::fmt::Debug for HsmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("token", &self.module.token_label())
            .finish_non_exhaustive()
    }
}

/// What one lookup reads from the token, in one session.
struct Found {
    private: Vec<ObjectHandle>,
    key_type: Option<KeyType>,
    private_attrs: Vec<Attribute>,
    public_attrs: Vec<Attribute>,
}

fn find(session: &Session, key: KeyRef<'_>) -> Result<Found, CkError> {
    let private =
        session.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), key.attribute()])?;
    let [handle] = private[..] else {
        return Ok(Found {
            private,
            key_type: None,
            private_attrs: Vec::new(),
            public_attrs: Vec::new(),
        });
    };
    // Public members of a private key (modulus, exponent) are readable even when it is
    // sensitive; an EC private key does not carry its point, so the public key object is read
    // too, matched by CKA_ID (the PKCS#11 convention for pairing) or else by the same reference.
    let private_attrs = session.get_attributes(
        handle,
        &[
            AttributeType::KeyType,
            AttributeType::Id,
            AttributeType::EcParams,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
        ],
    )?;
    let key_type = private_attrs.iter().find_map(|a| match a {
        Attribute::KeyType(t) => Some(*t),
        _ => None,
    });
    let pairing = private_attrs
        .iter()
        .find_map(|a| match a {
            Attribute::Id(id) if !id.is_empty() => Some(Attribute::Id(id.clone())),
            _ => None,
        })
        .unwrap_or_else(|| key.attribute());
    let public = session.find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY), pairing])?;
    let public_attrs = match public.first() {
        Some(p) => session.get_attributes(
            *p,
            &[
                AttributeType::EcParams,
                AttributeType::EcPoint,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
            ],
        )?,
        None => Vec::new(),
    };
    Ok(Found {
        private,
        key_type,
        private_attrs,
        public_attrs,
    })
}

/// The bytes of the first attribute `pick` accepts, in either list.
fn bytes<'a>(
    lists: [&'a [Attribute]; 2],
    pick: impl Fn(&'a Attribute) -> Option<&'a Vec<u8>>,
) -> Option<&'a [u8]> {
    lists
        .into_iter()
        .flat_map(|l| l.iter())
        .find_map(|a| pick(a).filter(|v| !v.is_empty()))
        .map(Vec::as_slice)
}

/// `CKA_EC_POINT` is a DER OCTET STRING around the point; some modules return the bare point.
fn unwrap_octet_string(value: &[u8], point_len: usize) -> Option<&[u8]> {
    match value {
        [0x04, len, rest @ ..] if usize::from(*len) == point_len && rest.len() == point_len => {
            Some(rest)
        }
        bare if bare.len() == point_len => Some(bare),
        _ => None,
    }
}

impl HsmModule {
    /// Finds the private key `key` and its public half, checks that it can sign `alg`
    /// (P-256 for ES256, Ed25519 for EdDSA, RSA of at least 2048 bits for RS256 and PS256) and
    /// builds its public JWK. An RSA key serves the one algorithm it is opened with.
    pub fn key(&self, key: KeyRef<'_>, alg: Algorithm) -> Result<HsmKey, HsmError> {
        let found = self
            .with_session(|s| find(s, key))?
            .map_err(|e| HsmError::pkcs11("finding a key", e))?;
        let handle = match found.private[..] {
            [] => {
                return Err(HsmError::KeyNotFound {
                    key: key.to_string(),
                });
            }
            [h] => h,
            _ => {
                return Err(HsmError::AmbiguousKey {
                    key: key.to_string(),
                });
            }
        };
        let unsupported = |reason| HsmError::UnsupportedKey {
            key: key.to_string(),
            alg: alg.as_str(),
            reason,
        };
        let lists = [&found.private_attrs[..], &found.public_attrs[..]];
        let ec_params = bytes(lists, |a| match a {
            Attribute::EcParams(v) => Some(v),
            _ => None,
        });
        let ec_point = bytes(lists, |a| match a {
            Attribute::EcPoint(v) => Some(v),
            _ => None,
        });
        let key_type = found.key_type.ok_or_else(|| unsupported("no key type"))?;
        let public = match alg {
            Algorithm::Es256 => {
                if key_type != KeyType::EC || ec_params != Some(P256_PARAMS) {
                    return Err(unsupported("not a P-256 key"));
                }
                ec_point
                    .and_then(|p| unwrap_octet_string(p, 65))
                    .and_then(Jwk::ec_p256)
                    .ok_or_else(|| unsupported("no uncompressed P-256 public point found"))?
            }
            Algorithm::EdDsa => {
                let is_ed25519 =
                    ec_params == Some(ED25519_PARAMS) || ec_params == Some(ED25519_PARAMS_NAME);
                if key_type != KeyType::EC_EDWARDS || !is_ed25519 {
                    return Err(unsupported("not an Ed25519 key"));
                }
                let point = ec_point
                    .and_then(|p| unwrap_octet_string(p, 32))
                    .ok_or_else(|| unsupported("no Ed25519 public key found"))?;
                Jwk::ed25519(point)
            }
            Algorithm::Rs256 | Algorithm::Ps256 => {
                if key_type != KeyType::RSA {
                    return Err(unsupported("not an RSA key"));
                }
                let n = bytes(lists, |a| match a {
                    Attribute::Modulus(v) => Some(v),
                    _ => None,
                });
                let e = bytes(lists, |a| match a {
                    Attribute::PublicExponent(v) => Some(v),
                    _ => None,
                });
                let (Some(n), Some(e)) = (n, e) else {
                    return Err(unsupported("no RSA modulus or exponent readable"));
                };
                Jwk::rsa(n, e)
            }
            _ => return Err(unsupported("algorithm not supported by warrant-hsm")),
        };
        let public = public
            .for_signing(alg)
            .ok_or_else(|| unsupported("no thumbprint"))?;
        let kid = public
            .kid
            .clone()
            .ok_or_else(|| unsupported("no thumbprint"))?;
        // The same checks a verifier applies (curve membership, RSA size and exponent).
        PublicKey::from_jwk(&public).map_err(|_| unsupported("the public key is not valid"))?;
        let sig_len = match alg {
            Algorithm::Rs256 | Algorithm::Ps256 => public
                .n
                .as_deref()
                .and_then(b64::decode)
                .map_or(0, |n| n.len()),
            _ => 64,
        };
        Ok(HsmKey {
            module: self.clone(),
            handle,
            alg,
            kid,
            public,
            sig_len,
        })
    }

    /// Generates a key pair on the token for `alg` (ES256: P-256; EdDSA: Ed25519; RS256 and
    /// PS256: RSA-2048) under `label`, with a random 16-byte `CKA_ID`. The private key is a
    /// token object, private, sensitive and never extractable: it cannot leave the token.
    /// Refuses a label that a private key already has, so a label names one key.
    pub fn generate_key(&self, label: &str, alg: Algorithm) -> Result<HsmKey, HsmError> {
        let existing = self
            .with_session(|s| {
                s.find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Label(label.as_bytes().to_vec()),
                ])
            })?
            .map_err(|e| HsmError::pkcs11("finding a key", e))?;
        if !existing.is_empty() {
            return Err(HsmError::KeyExists {
                label: label.to_owned(),
            });
        }
        let id = warrant_jose::crypto::random_array::<16>().map_err(|_| HsmError::Pkcs11 {
            operation: "generating a key",
            reason: "no randomness".into(),
        })?;
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        let private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        let mechanism = match alg {
            Algorithm::Es256 => {
                public.push(Attribute::EcParams(P256_PARAMS.to_vec()));
                Mechanism::EccKeyPairGen
            }
            Algorithm::EdDsa => {
                public.push(Attribute::EcParams(ED25519_PARAMS.to_vec()));
                Mechanism::EccEdwardsKeyPairGen
            }
            Algorithm::Rs256 | Algorithm::Ps256 => {
                public.push(Attribute::ModulusBits(Ulong::from(2048)));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                Mechanism::RsaPkcsKeyPairGen
            }
            _ => {
                return Err(HsmError::UnsupportedKey {
                    key: format!("label {label:?}"),
                    alg: alg.as_str(),
                    reason: "algorithm not supported by warrant-hsm",
                });
            }
        };
        let session = self.rw_session()?;
        session
            .generate_key_pair(&mechanism, &public, &private)
            .map_err(|e| HsmError::pkcs11("generating a key pair", e))?;
        drop(session);
        tracing::info!(token = %self.token_label(), label, alg = alg.as_str(), "generated a key pair on the token");
        self.key(KeyRef::Id(&id), alg)
    }
}

impl HsmKey {
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK with `kid`, `use: "sig"` and `alg`.
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    /// Signs `msg` (the JWS signing input) on the token. ES256 hashes in software and sends the
    /// digest to CKM_ECDSA, whose output is already the fixed `r ‖ s` form JWS uses (RFC 7518
    /// §3.4); RS256 and PS256 (SHA-256, MGF1-SHA-256, 32-byte salt) hash on the token.
    ///
    /// Blocking: async callers use `tokio::task::spawn_blocking`.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, HsmError> {
        let digest;
        let (mechanism, input) = match self.alg {
            Algorithm::Es256 => {
                digest = warrant_jose::crypto::sha256(msg);
                (Mechanism::Ecdsa, &digest[..])
            }
            Algorithm::EdDsa => (
                Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                msg,
            ),
            Algorithm::Rs256 => (Mechanism::Sha256RsaPkcs, msg),
            Algorithm::Ps256 => (
                Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
                    hash_alg: MechanismType::SHA256,
                    mgf: PkcsMgfType::MGF1_SHA256,
                    s_len: Ulong::from(32),
                }),
                msg,
            ),
            _ => {
                return Err(HsmError::SigningFailed {
                    kid: self.kid.clone(),
                    reason: "algorithm not supported".into(),
                });
            }
        };
        let failed = |reason: String| HsmError::SigningFailed {
            kid: self.kid.clone(),
            reason,
        };
        let sig = self
            .module
            .with_session(|s| s.sign(&mechanism, self.handle, input))?
            .map_err(|e| failed(e.to_string()))?;
        if sig.len() != self.sig_len {
            return Err(failed(format!(
                "the token returned {} bytes, expected {}",
                sig.len(),
                self.sig_len
            )));
        }
        Ok(sig)
    }
}

/// The JWS signing port: an HSM key signs tokens like a software key, but blocks, so the token
/// path signs it on a blocking thread. The cause of a failure is logged here (kid, PKCS#11
/// code; never key material) and the caller sees only
/// [`warrant_jose::JoseError::SignerUnavailable`].
impl warrant_jose::RawSigner for HsmKey {
    fn alg(&self) -> Algorithm {
        self.alg
    }
    fn kid(&self) -> &str {
        &self.kid
    }
    fn public_jwk(&self) -> &Jwk {
        &self.public
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, warrant_jose::JoseError> {
        HsmKey::sign(self, msg).map_err(|e| {
            tracing::error!(kid = %self.kid, token = %self.module.token_label(), error = %e, "HSM signing failed");
            warrant_jose::JoseError::SignerUnavailable
        })
    }
    fn is_blocking(&self) -> bool {
        true
    }
}
