//! Admin use cases: tenants, service accounts, secrets, grants, registered APIs, federation
//! trusts, keys. Every use case takes the authorised [`AdminPrincipal`] and checks it may manage
//! the tenant it touches.

mod accounts;
mod apis;
mod auth;
mod keys;
mod secrets;
mod tenants;
mod trusts;

pub use accounts::{AccountSpec, NewAccount};
pub use apis::{ApiSpec, MAX_API_SCOPES, NewApi};
pub use auth::AdminPrincipal;
pub use secrets::SecretView;
pub use tenants::TenantSettings;
pub use trusts::{NewTrust, TrustTest, TrustTestReport};

use crate::StoreError;

/// Default and maximum page sizes of admin lists.
pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1000;

/// A refused or failed admin request, shaped for RFC 9457 problem details. Messages are meant
/// for the admin; `Internal` is logged and replaced by a generic message at the edge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the resource changed since it was read (If-Match does not match)")]
    PreconditionFailed,
    #[error("internal error: {0}")]
    Internal(String),
    /// A dependency the request needs (an HSM module) cannot serve it now; the message is
    /// safe to show (module and tenant names, no PKCS#11 detail).
    #[error("{0}")]
    Unavailable(String),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => AdminError::Conflict("the name is already taken".into()),
            StoreError::NotFound => AdminError::NotFound("not found".into()),
            StoreError::RevisionMismatch => AdminError::PreconditionFailed,
            other => AdminError::Internal(other.to_string()),
        }
    }
}

impl From<crate::CoreError> for AdminError {
    fn from(e: crate::CoreError) -> Self {
        AdminError::Internal(e.to_string())
    }
}

impl From<crate::policy::PolicyViolation> for AdminError {
    fn from(e: crate::policy::PolicyViolation) -> Self {
        AdminError::Invalid(e.0)
    }
}

impl crate::Warrant {
    /// Records an admin change durably (the change itself is already stored; a failure here is
    /// reported to the admin, who can see the change took effect but its record did not).
    pub(crate) async fn audit_admin(
        &self,
        p: &AdminPrincipal,
        tenant: &crate::TenantName,
        action: &'static str,
        subject: &str,
        detail: serde_json::Value,
    ) -> Result<(), AdminError> {
        self.audit_change(
            &crate::audit::Origin::admin(p),
            tenant,
            action,
            subject,
            detail,
        )
        .await
    }

    /// [`Self::audit_admin`] for a change made by any origin (an admin, the key scheduler).
    /// A `null` detail is left out of the record.
    pub(crate) async fn audit_change(
        &self,
        origin: &crate::audit::Origin,
        tenant: &crate::TenantName,
        action: &'static str,
        subject: &str,
        detail: serde_json::Value,
    ) -> Result<(), AdminError> {
        let mut e = origin.event(
            tenant.clone(),
            self.clock.now(),
            action,
            crate::audit::Outcome::Success,
        );
        e.subject = Some(subject.to_owned());
        e.detail = (!detail.is_null()).then_some(detail);
        self.audit
            .append(e)
            .await
            .map_err(|e| AdminError::Internal(e.to_string()))
    }
}

/// A description: at most 1024 bytes, no control characters (PostgreSQL TEXT cannot hold NUL:
/// refusing them here keeps both stores accepting exactly the same records).
pub(crate) fn check_description(d: &str) -> Result<(), AdminError> {
    if d.len() > 1024 {
        return Err(AdminError::Invalid(
            "description is longer than 1024 bytes".into(),
        ));
    }
    if d.chars().any(char::is_control) {
        return Err(AdminError::Invalid(
            "description must not contain control characters".into(),
        ));
    }
    Ok(())
}

/// Page size when a check walks a whole tenant.
pub(crate) const WALK: u32 = 500;

pub(crate) fn page_limit(limit: Option<u32>) -> u32 {
    limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
}
