/// Errors from loading a module, logging in, finding keys and signing.
///
/// Every message is safe to log: it names the library path, token label, key label or kid and
/// the PKCS#11 return code, never a PIN or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    #[error("cannot load the PKCS#11 module {library}: {reason}")]
    ModuleLoad { library: String, reason: String },
    #[error("no token labelled {label:?} in the PKCS#11 module {library}")]
    TokenNotFound { library: String, label: String },
    #[error("login to the token {label:?} failed: {reason}")]
    LoginFailed { label: String, reason: String },
    #[error("no private key {key} on the token")]
    KeyNotFound { key: String },
    #[error("more than one private key matches {key} on the token")]
    AmbiguousKey { key: String },
    #[error("a key labelled {label:?} already exists on the token")]
    KeyExists { label: String },
    #[error("the key {key} cannot sign {alg}: {reason}")]
    UnsupportedKey {
        key: String,
        alg: &'static str,
        reason: &'static str,
    },
    #[error("signing with the key {kid} failed: {reason}")]
    SigningFailed { kid: String, reason: String },
    #[error("no PKCS#11 session became free within {waited_ms} ms (pool of {size})")]
    PoolTimeout { waited_ms: u128, size: usize },
    #[error("PKCS#11 {operation} failed: {reason}")]
    Pkcs11 {
        operation: &'static str,
        reason: String,
    },
    #[error("the PIN file {path}: {reason}")]
    PinFile { path: String, reason: String },
}

impl HsmError {
    /// A PKCS#11 failure outside login and signing.
    pub(crate) fn pkcs11(operation: &'static str, e: cryptoki::error::Error) -> Self {
        HsmError::Pkcs11 {
            operation,
            reason: e.to_string(),
        }
    }
}
