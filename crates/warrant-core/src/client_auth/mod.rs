//! Client authentication beyond shared secrets (RFC 9700 §2.5 recommends asymmetric methods):
//! `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9), `tls_client_auth` and
//! `self_signed_tls_client_auth` (RFC 8705 §2), and what a presented certificate is, once the
//! server has parsed it at the edge.
//!
//! Secrets stay in `grants/client_credentials.rs` (the hot path). Every method ends in the same
//! [`Authenticated`] value, and an account's `auth_methods` is enforced for each (no
//! downgrade: a key- or certificate-bound account cannot use a secret, and the reverse).

pub mod assertion;
mod authenticate;
pub mod certificate;
pub mod jwks_cache;
pub(crate) mod replay;

pub use authenticate::{
    ASSERTION_JTI, ASSERTION_MAX_AHEAD_SECS, ASSERTION_SKEW_SECS, Authenticated, ClientAuth,
};
pub use certificate::{CertificateMatch, PresentedCertificate};
