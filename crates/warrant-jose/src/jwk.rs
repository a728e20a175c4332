use serde::{Deserialize, Serialize};

/// A public JWK (RFC 7517) as Warrant publishes and reads it. Private members are never modelled,
/// so a private key cannot be serialised by mistake. RSA's `n` and `e` are unsigned big-endian
/// integers in base64url (RFC 7518 §6.3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
}

impl Jwk {
    /// RFC 7638 JWK thumbprint (SHA-256, base64url): the required members in lexicographic
    /// order, no whitespace.
    pub fn thumbprint(&self) -> Option<String> {
        let s = |v: &Option<String>| v.as_deref().map(|t| serde_json::Value::from(t).to_string());
        let canonical = match self.kty.as_str() {
            "EC" => format!(
                r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
                s(&self.crv)?,
                s(&self.x)?,
                s(&self.y)?
            ),
            "OKP" => format!(
                r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
                s(&self.crv)?,
                s(&self.x)?
            ),
            "RSA" => format!(r#"{{"e":{},"kty":"RSA","n":{}}}"#, s(&self.e)?, s(&self.n)?),
            _ => return None,
        };
        Some(crate::b64::encode(crate::crypto::sha256(
            canonical.as_bytes(),
        )))
    }
}

impl Jwk {
    /// A P-256 public key from its uncompressed point `04 ‖ X ‖ Y`; `None` for anything else.
    pub fn ec_p256(point: &[u8]) -> Option<Self> {
        if point.len() != 65 || point[0] != 4 {
            return None;
        }
        Some(Jwk {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            x: Some(crate::b64::encode(&point[1..33])),
            y: Some(crate::b64::encode(&point[33..65])),
            ..Jwk::default()
        })
    }

    /// An Ed25519 public key (RFC 8037 §2).
    pub fn ed25519(public: &[u8]) -> Self {
        Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            x: Some(crate::b64::encode(public)),
            ..Jwk::default()
        }
    }

    /// An RSA public key from its big-endian modulus and exponent; leading zero bytes are
    /// dropped (RFC 7518 §6.3.1 wants the minimal encoding).
    pub fn rsa(n: &[u8], e: &[u8]) -> Self {
        let minimal = |v: &[u8]| {
            let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
            crate::b64::encode(&v[start..])
        };
        Jwk {
            kty: "RSA".into(),
            n: Some(minimal(n)),
            e: Some(minimal(e)),
            ..Jwk::default()
        }
    }

    /// The key as Warrant publishes a signing key: `kid` = its RFC 7638 thumbprint,
    /// `use: "sig"` and `alg`. `None` for a key type without a thumbprint.
    pub fn for_signing(mut self, alg: crate::Algorithm) -> Option<Self> {
        self.kid = Some(self.thumbprint()?);
        self.use_ = Some("sig".into());
        self.alg = Some(alg.as_str().into());
        Some(self)
    }
}

/// A JWK Set (RFC 7517 §5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}
