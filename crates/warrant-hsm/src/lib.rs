//! JWS signing keys held in a PKCS#11 token (an HSM, or SoftHSM2 in tests).
//!
//! [`HsmModule::open`] loads a PKCS#11 module (once per process per library path: PKCS#11
//! allows one `C_Initialize` per process), finds the token by label, logs in and keeps a small
//! pool of sessions. [`HsmModule::key`] finds a private key and its public half; [`HsmKey`]
//! signs JWS signing input and publishes its public JWK, whose `kid` is the RFC 7638 thumbprint
//! exactly as for software keys in `warrant-jose`.
//!
//! What it is not: wired into token issuance yet. Tenant key settings cannot point at an HSM
//! key today; this crate is the groundwork (docs/hsm.md).
//!
//! Signing is blocking (a round trip to the token, milliseconds on a network HSM): async callers
//! run [`HsmKey::sign`] inside `tokio::task::spawn_blocking`. A PKCS#11 session is never used by
//! two threads at once: each signature borrows a session from the pool and returns it.

mod error;
mod key;
mod module;
mod pin;

pub use error::HsmError;
pub use key::{HsmKey, KeyRef};
pub use module::{DEFAULT_CHECKOUT_TIMEOUT, HsmModule};
pub use pin::pin_from_file;
pub use warrant_jose::Algorithm;
