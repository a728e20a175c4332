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
