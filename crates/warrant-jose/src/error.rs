/// Errors from key handling, signing and verification.
///
/// Verification errors are deliberately coarse: callers learn *which class* of check failed
/// (to explain it to an operator) but never key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoseError {
    #[error("the token is not a compact JWS (three base64url parts)")]
    Malformed,
    #[error("the token header is not valid JSON or lacks required fields")]
    BadHeader,
    #[error("the algorithm {0:?} is not accepted")]
    AlgorithmNotAllowed(String),
    #[error("the token's typ is not {expected}")]
    WrongType { expected: &'static str },
    #[error("no published key has kid {0:?}")]
    UnknownKey(String),
    #[error("the header's alg does not match the key's alg")]
    AlgorithmMismatch,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the token has a critical header extension we do not understand")]
    UnsupportedCrit,
    #[error("the claims are not a JSON object")]
    BadClaims,
    #[error("key material is invalid: {0}")]
    BadKey(&'static str),
    #[error("a cryptographic operation failed")]
    Crypto,
    /// A key held outside this process (an HSM) could not sign; the cause is logged where it
    /// happened, not carried here.
    #[error("the key store could not sign")]
    SignerUnavailable,
}
