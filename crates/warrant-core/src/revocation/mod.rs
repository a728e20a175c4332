//! Revocation that reaches verifiers (DESIGN.md, "Revocation that reaches verifiers").
//!
//! Two kinds of entry, both kept in the store with a cursor (a store-assigned sequence number
//! that only grows, in commit order):
//! - `jti`: one token, kept until that token's `exp`;
//! - `subject`: a per-subject `not_before` watermark — a token is revoked iff its `iat` ≤
//!   `not_before`; it applies to `sub`, `client_id` and every `act.sub` of a delegated token,
//!   and is kept until no token issued at or before it can be alive (`not_before` +
//!   `max_token_lifetime`).
//!
//! Every replica holds all live entries in memory ([`RevocationSet`]) so introspection never
//! reads the store; the feed (`/revocations`, `/revocations/stream`) reads the store by cursor.

mod set;
mod use_cases;

pub use set::RevocationSet;
pub use use_cases::{FeedError, FeedPage, MAX_FEED_PAGE, RevocationRequest, RevokeOutcome};

use crate::ids::TenantName;
use crate::time::Timestamp;

/// Longest `jti` or `sub` accepted in a revocation (they are opaque strings to a verifier).
pub const MAX_ID_LEN: usize = 256;

/// Clock skew verifiers are assumed to allow on `exp`; entries live this much longer.
pub const PRUNE_SKEW_SECS: i64 = 60;

/// What is revoked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RevocationKind {
    /// One token, by `jti`, until its `exp` (NumericDate seconds).
    Jti { jti: String, exp: i64 },
    /// Every token of `sub` (also as `client_id` or any `act.sub`) with `iat` ≤ `not_before`
    /// (NumericDate seconds).
    Subject { sub: String, not_before: i64 },
}

impl RevocationKind {
    /// `jti` or `subject`, as the feed's `type` field says.
    pub fn type_name(&self) -> &'static str {
        match self {
            RevocationKind::Jti { .. } => "jti",
            RevocationKind::Subject { .. } => "subject",
        }
    }
}

/// A revocation to store (the store assigns its cursor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevocation {
    pub tenant: TenantName,
    pub kind: RevocationKind,
    pub created_at: Timestamp,
    /// When no token it could match can still be alive; pruned after this.
    pub prune_after: Timestamp,
}

/// A stored revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEntry {
    /// Store-assigned, strictly increasing in commit order across all tenants; the feed's
    /// cursor is its decimal text.
    pub cursor: i64,
    pub tenant: TenantName,
    pub kind: RevocationKind,
    pub created_at: Timestamp,
    pub prune_after: Timestamp,
}

/// One page of a tenant's feed as the store returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFeedPage {
    /// Entries with cursor > `after`, ascending, at most `limit`.
    pub entries: Vec<RevocationEntry>,
    /// The highest cursor of this tenant that has been pruned (0 if none). Pruning removes a
    /// prefix (every entry up to the first one still needed), so a reader whose `after` is
    /// below this may have missed entries and must take a fresh snapshot (410).
    pub pruned_through: i64,
    /// The highest cursor assigned so far in the whole store (0 if none), read *before* the
    /// entries (so every entry of this tenant up to it is in the page unless the page is full):
    /// the resume point of a short page.
    pub head: i64,
}
