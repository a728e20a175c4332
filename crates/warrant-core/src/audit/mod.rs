//! The tamper-evident audit log (DESIGN.md, "Audit").
//!
//! Every token issued or refused, every admin change and every revocation becomes a record.
//! Records are chained per **segment** — one segment per tenant per writer (a server process),
//! so replicas never serialise on one chain head:
//!
//! - a record's `body` is canonical JSON text ([`RecordBody`]) that names its segment, its
//!   sequence number and the previous record's hash (`prev`); its `hash` is the lowercase hex
//!   SHA-256 of the body text as stored, byte for byte;
//! - each record also carries `mac`, an HMAC-SHA256 of the hash's 32 bytes under a versioned
//!   audit key from the keyring (checked online: nobody without the master key can re-chain);
//! - each segment's head (last seq and hash) is kept with its own MAC, so a truncated tail is
//!   seen online;
//! - checkpoints sign a segment's head hash with the tenant's signing key (a compact JWS of
//!   type [`CHECKPOINT_TYP`]), so an export verifies offline with public keys up to its last
//!   checkpoint;
//! - retention prunes a segment's oldest records only up to a checkpoint, which becomes the
//!   segment's anchor (the first kept record's `prev` must equal the anchor's hash).
//!
//! Issuance waits for its record to be committed ([`AuditLog::append`]); a writer task batches
//! whatever is waiting into one transaction (group commit). Refusals do not wait, and repeated
//! ones from one source are aggregated into counts.

mod admin;
pub mod chain;
pub mod export;
pub mod verify;
mod writer;

pub use admin::AuditExport;
pub use writer::{AuditLog, AuditSettings};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::TenantName;
use crate::time::Timestamp;

/// The JOSE `typ` of a checkpoint (RFC 8725 §3.11: explicit typing, so a checkpoint can never
/// pass as an access token).
pub const CHECKPOINT_TYP: &str = "warrant-audit-checkpoint+jwt";

/// The `prev` of a segment's first record: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Whether the audited thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            _ => None,
        }
    }
}

/// Action names. Dotted, noun first, so `action=token.` style prefixes read well.
pub mod action {
    pub const TOKEN_ISSUE: &str = "token.issue";
    pub const TOKEN_REFUSE: &str = "token.refuse";
    pub const INTROSPECT: &str = "token.introspect";
    pub const REVOKE_JTI: &str = "revocation.jti";
    pub const REVOKE_SUBJECT: &str = "revocation.subject";
    pub const TENANT_CREATE: &str = "tenant.create";
    pub const TENANT_DELETE: &str = "tenant.delete";
    pub const TENANT_UPDATE: &str = "tenant.update";
    pub const ACCOUNT_CREATE: &str = "account.create";
    pub const ACCOUNT_UPDATE: &str = "account.update";
    pub const ACCOUNT_DELETE: &str = "account.delete";
    pub const SECRET_CREATE: &str = "secret.create";
    pub const SECRET_REVOKE: &str = "secret.revoke";
    pub const GRANTS_REPLACE: &str = "grants.replace";
    pub const API_CREATE: &str = "api.create";
    pub const API_UPDATE: &str = "api.update";
    pub const API_DELETE: &str = "api.delete";
    pub const TRUST_CREATE: &str = "trust.create";
    pub const TRUST_UPDATE: &str = "trust.update";
    pub const TRUST_DELETE: &str = "trust.delete";
    pub const KEY_CREATE: &str = "key.create";
    /// A new signing key (normal, `--now` or scheduled rotation).
    pub const KEY_ROTATE: &str = "key.rotate";
    /// A compromised signing key unpublished at once.
    pub const KEY_REVOKE: &str = "key.revoke";
    /// Repeated refusals from one source, counted (`count` > 1) instead of written one by one.
    pub const AGGREGATED: &str = "token.refuse.aggregated";
}

/// What a use case reports. The writer turns it into a chained record.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub tenant: TenantName,
    pub at: Timestamp,
    /// Who acted: a client id, an admin account id, or `-` when unknown (an unauthenticated
    /// caller).
    pub actor: String,
    /// What the action is about (the account a token is for, the account changed, …).
    pub subject: Option<String>,
    pub action: &'static str,
    pub outcome: Outcome,
    /// Why (refusals: the error code and the check that failed; never a secret).
    pub reason: Option<String>,
    pub jti: Option<String>,
    pub scopes: Option<String>,
    pub audience: Option<String>,
    pub client_addr: Option<String>,
    pub auth_method: Option<String>,
    /// Extra fields of admin changes (names, not secrets).
    pub detail: Option<Value>,
}

impl AuditEvent {
    /// An event with only the required fields set.
    pub fn new(
        tenant: TenantName,
        at: Timestamp,
        actor: impl Into<String>,
        action: &'static str,
        outcome: Outcome,
    ) -> Self {
        Self {
            tenant,
            at,
            actor: actor.into(),
            subject: None,
            action,
            outcome,
            reason: None,
            jti: None,
            scopes: None,
            audience: None,
            client_addr: None,
            auth_method: None,
            detail: None,
        }
    }
}

/// Who is acting and from where, for the records a request produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// A client id, an admin account id, or `-`.
    pub actor: String,
    pub client_addr: Option<String>,
    /// The client-authentication method (`client_secret_basic`, …) or `bearer` for admin tokens.
    pub auth_method: Option<String>,
}

impl Origin {
    pub fn admin(principal: &crate::admin::AdminPrincipal) -> Self {
        Self {
            actor: principal.account_id.as_str().to_owned(),
            client_addr: principal.client_addr.clone(),
            auth_method: Some("bearer".into()),
        }
    }

    pub fn client(client_id: &str, client_addr: Option<String>, method: Option<&str>) -> Self {
        Self {
            actor: client_id.to_owned(),
            client_addr,
            auth_method: method.map(str::to_owned),
        }
    }

    /// An event by this origin (actor, address, method), its other fields unset.
    pub(crate) fn event(
        &self,
        tenant: TenantName,
        at: Timestamp,
        action: &'static str,
        outcome: Outcome,
    ) -> AuditEvent {
        let mut e = AuditEvent::new(tenant, at, self.actor.clone(), action, outcome);
        e.client_addr = self.client_addr.clone();
        e.auth_method = self.auth_method.clone();
        e
    }
}

/// The hashed text of a record, version 1. Field order is fixed (it is the serialisation
/// order); absent optional fields are omitted. A verifier in another language never needs to
/// re-serialise: it hashes the stored text and reads fields from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordBody {
    pub v: u32,
    pub tenant: String,
    pub segment: String,
    pub seq: i64,
    /// Hex SHA-256 of the previous record's body ([`GENESIS`] for the first).
    pub prev: String,
    /// RFC 3339 UTC, millisecond precision.
    pub time: String,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub action: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<String>,
    /// How many occurrences this record stands for (1 unless aggregated).
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

/// A record as stored. The indexed columns (`at`, `subject`, `action`, `outcome`) repeat
/// fields of `body` for queries; verification checks that they agree with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAuditRecord {
    /// Store-assigned on insert (ignored when inserting); increasing in commit order. The
    /// admin query's cursor.
    pub id: i64,
    pub tenant: TenantName,
    pub segment: String,
    pub seq: i64,
    pub at: Timestamp,
    pub subject: Option<String>,
    pub action: String,
    pub outcome: String,
    pub body: String,
    /// Lowercase hex SHA-256 of `body`.
    pub hash: String,
    /// Version of the audit key that made `mac`.
    pub key_version: u32,
    /// Unpadded base64url HMAC-SHA256 of the hash's 32 bytes.
    pub mac: String,
}

/// A segment's head and anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHead {
    pub tenant: TenantName,
    pub segment: String,
    /// Last record written (0 and [`GENESIS`] before the first).
    pub head_seq: i64,
    pub head_hash: String,
    /// HMAC of [`chain::head_mac_input`] under audit key `key_version`.
    pub head_mac: String,
    pub key_version: u32,
    /// Records up to here were pruned (0 and [`GENESIS`] if none): the first kept record's
    /// `prev` must be `anchor_hash`, and a checkpoint must vouch for it.
    pub anchor_seq: i64,
    pub anchor_hash: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A signed statement that a segment's record `seq` has hash `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    pub tenant: TenantName,
    pub segment: String,
    pub seq: i64,
    pub hash: String,
    pub at: Timestamp,
    /// Compact JWS (`typ` [`CHECKPOINT_TYP`]) over [`CheckpointClaims`], by the tenant's key.
    pub jws: String,
}

/// The payload of a checkpoint JWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointClaims {
    /// The tenant's issuer.
    pub iss: String,
    pub tenant: String,
    pub segment: String,
    pub seq: i64,
    pub hash: String,
    pub iat: i64,
}

/// What the writer commits at once: new records, and the new heads of the segments they extend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditBatch {
    pub records: Vec<StoredAuditRecord>,
    /// Insert or update (head fields only; the anchor is set by pruning).
    pub heads: Vec<SegmentHead>,
}

/// An admin query over one tenant's records, ordered by `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub tenant: TenantName,
    pub subject: Option<String>,
    /// Exact action name, or a prefix ending in `.` (e.g. `token.`).
    pub action: Option<String>,
    pub outcome: Option<Outcome>,
    /// `at` ≥ since.
    pub since: Option<Timestamp>,
    /// `at` < until.
    pub until: Option<Timestamp>,
    /// Records with `id` > after.
    pub after: Option<i64>,
    pub limit: u32,
}

/// Audit failures. A token whose record cannot be committed is not returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error("the audit log is unavailable: {0}")]
    Unavailable(String),
}
