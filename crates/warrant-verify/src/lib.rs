//! Verifies Warrant access tokens downstream, so that no service trusts the network.
//!
//! A [`Verifier`] follows each trusted issuer's keys (OIDC discovery, a JWKS cache that honours
//! `Cache-Control`, re-fetches an unknown `kid` at a bounded rate, and keeps the keys it has
//! while the issuer is down) and its revocation feed (snapshot, then the event stream resumed
//! with `Last-Event-ID`, a fresh snapshot on `410`). Each request is checked per RFC 9068 §4 and
//! RFC 8725 ([`token`]), then for revocation, sender binding (`cnf.jkt` with a DPoP proof —
//! `ath`, `htm`, `htu`, replay — or `cnf.x5t#S256` with the client certificate), audience,
//! claims and scopes ([`Requirement`]). A token verified once is cached until it expires; the
//! per-request checks still run every time, so a revocation takes effect at once.
//!
//! If an issuer's feed has not been heard from for longer than the stale limit, its tokens get
//! `503` rather than being trusted on stale state. Refusals carry RFC 6750 / RFC 9449
//! challenges ([`Denial`]). [`VerifyLayer`] does all of this as tower middleware; the `warrant
//! gateway` does it as a reverse proxy. See docs/verify.md.
//!
//! Depends only on the JOSE and wire crates of Warrant, not on its server.

mod clock;
mod denial;
mod feed;
mod fetch;
mod jwks;
mod layer;
pub mod token;
mod verifier;

pub use clock::{Clock, FixedClock, SystemClock};
pub use denial::{DPOP_ALGS, Denial, DenialKind, Scheme};
pub use feed::FeedCredentials;
pub use fetch::{HttpOptions, HttpSetupError, allowed_url, is_loopback_host};
pub use layer::{VerifyLayer, VerifyService, request_url};
pub use token::{Binding, TokenFailure, VerifiedToken};
pub use verifier::{
    ClaimCondition, ClientCertificate, ConfigError, IssuerConfig, IssuerStatus, Presented,
    Requirement, Verified, Verifier, VerifierConfig,
};
