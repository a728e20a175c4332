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

/// A JWK Set (RFC 7517 §5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}
