//! The Warrant domain and its use cases: tenants, service accounts, secrets, grants, signing
//! keys and token issuance.
//!
//! It defines two ports — [`Store`] (persistence) and [`Clock`] (time) — and knows nothing of
//! HTTP, SQL or the network: the server parses wire strings into the types here
//! ([`TenantName`], [`AccountId`], [`Scope`], [`Audience`]) and calls one use case per request.
//!
//! Where to start reading: [`Warrant`] (the engine), then `grants/client_credentials.rs` (the
//! token hot path), then `admin/` (the admin use cases).

pub mod admin;
pub mod audit;
mod bootstrap;
pub mod client_auth;
mod directory;
mod engine;
pub mod federation;
pub mod grants;
pub mod hsm;
pub mod ids;
mod introspection;
pub mod keyring;
pub mod master_rotation;
pub mod model;
pub mod policy;
mod policy_cache;
pub mod ratelimit;
pub mod revocation;
pub mod scope;
pub mod secret;
mod signing;
pub mod store;
pub mod time;
mod token_check;

pub use bootstrap::BootstrapOutcome;
pub use directory::ClientEntry;
pub use engine::{CoreConfig, Warrant};
pub use ids::{
    AccountId, AccountName, AccountRef, ApiId, ApiName, ApiRef, SecretName, TenantName, TrustId,
    TrustName, TrustRef,
};
pub use keyring::MasterKey;
pub use scope::{Audience, Scope, ScopeSet};
pub use secret::ClientSecret;
pub use signing::TenantKeys;
pub use store::{Change, ChangeFeed, KeyTimes, MigrationState, Snapshot, Store, StoreError};
pub use time::{Clock, SystemClock, Timestamp};
pub use token_check::{Inactive, OwnToken};

// DPoP proof checking lives in warrant-jose so that crates without the domain (a resource server)
// share it; `warrant_core::dpop` keeps naming it.
pub use warrant_jose::dpop;

/// Errors of start-up and background work (not of a request: those have their own enums,
/// [`grants::TokenError`] and [`admin::AdminError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a cryptographic operation failed")]
    Crypto,
}

impl CoreError {
    pub(crate) fn crypto(_: warrant_jose::JoseError) -> Self {
        CoreError::Crypto
    }
}

/// Reads a lock even if a panicking thread poisoned it: the maps behind these locks are
/// replaced whole, so they are never half-written.
pub(crate) fn read<T>(l: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(l: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
