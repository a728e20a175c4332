//! JOSE for Warrant: compact JWS signing and verification, JWKs, and the `crypto` module.
//!
//! This is the only crate that names the crypto library (aws-lc-rs). Everything else asks this
//! crate for HMAC, HKDF, AES-GCM and randomness through [`crypto`], so the backend can change in
//! one place. Signing keys are parsed once and held ready ([`SigningKey`]): the token hot path
//! never re-parses a key.
//!
//! What it is not: a general JOSE library. It signs and verifies the compact JWS that Warrant
//! issues and accepts, with an explicit algorithm allow-list; the algorithm always comes from our
//! key, never from the token header (RFC 8725 §3.1). Unverified decoding lives in [`dangerous`].

pub mod b64;
pub mod crypto;
pub mod dangerous;
pub mod dpop;
mod embedded;
mod error;
mod jwk;
mod jws;
mod keys;
mod select;

pub use embedded::{EmbeddedError, EmbeddedJws, sign_with_embedded_jwk, verify_with_embedded_jwk};
pub use error::JoseError;

/// The deepest delegation chain (RFC 8693 §4.1 nested `act`) an issuer creates and a verifier
/// follows. Revocation watermarks apply to every `act.sub`, so a chain deeper than this is
/// treated as revoked (it cannot be checked whole) and the issuer refuses to extend one
/// that has reached it.
pub const MAX_ACT_DEPTH: usize = 8;

/// The `sub` of every actor in a token's `act` chain, outermost (most recent) first, and
/// whether the chain is deeper than [`MAX_ACT_DEPTH`] (then only the first
/// [`MAX_ACT_DEPTH`] are listed). An `act` that is not an object ends the chain.
pub fn act_subjects(claims: &serde_json::Map<String, serde_json::Value>) -> (Vec<&str>, bool) {
    let mut out = Vec::new();
    let mut act = claims.get("act");
    for _ in 0..MAX_ACT_DEPTH {
        let Some(serde_json::Value::Object(a)) = act else {
            return (out, false);
        };
        if let Some(s) = a.get("sub").and_then(serde_json::Value::as_str) {
            out.push(s);
        }
        act = a.get("act");
    }
    (out, matches!(act, Some(serde_json::Value::Object(_))))
}
pub use jwk::{Jwk, JwkSet};
pub use jws::{
    Header, JwsSigner, RawSigner, VerifiedJws, sign_compact, typ_matches, verify_compact,
};
pub use keys::{Algorithm, PublicKey, SigningKey};
pub use select::{MAX_KEYS_TRIED, verify_compact_any_key};

/// The `x5t#S256` thumbprint of a DER certificate (RFC 7515 §4.1.8, RFC 8705 §3.1): unpadded
/// base64url of its SHA-256.
pub fn x5t_s256(der: &[u8]) -> String {
    b64::encode(crypto::sha256(der))
}
