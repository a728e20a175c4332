//! Federation trusts: when a token from an external issuer (GitHub Actions, GitLab CI, a
//! Kubernetes cluster, any OpenID provider) may act as a Warrant account.
//!
//! This module is the pure part: the [`TrustPolicy`] an admin writes and its validation, the
//! [`Condition`]s on the external token's claims, [`evaluate`] (does this token satisfy this
//! trust?), [`explain`] (for `warrant trust test`: which trusts match and why the others do
//! not), and [`templates`] for the common issuers. It does not fetch keys, verify signatures,
//! remember `jti`s or issue tokens: the grant layer verifies the token's signature with the
//! trust's keys first, calls [`evaluate`] on the verified claims, records [`Federated::jti`]
//! when it is set, and issues for [`TrustPolicy::lifetime`].
//!
//! Failures come in two parts ([`Mismatch`]): a [`MismatchClass`], which is all a client is
//! told, and a `detail` naming the exact condition and the value found, which goes to the
//! audit record and to admins — never to the client, since it would teach an attacker what the
//! trust expects.

pub mod conditions;
mod evaluate;
pub mod policy;
pub mod templates;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use conditions::{Check, ClaimPath, Condition, glob_match};
pub use evaluate::{
    Federated, MAX_COPIED_BYTES, MAX_JTI_BYTES, TrustVerdict, evaluate, explain, explain_one,
};
pub use policy::{TrustKeys, TrustPolicy};

/// The class of check a token failed: safe to tell the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MismatchClass {
    /// `iss` is not the trust's issuer.
    Issuer,
    /// `aud` does not contain the trust's audience.
    Audience,
    /// `exp` is missing or not in the future.
    Expired,
    /// `iat` is missing or older than the trust's maximum age.
    TooOld,
    /// `iat` or `nbf` is in the future, beyond the clock skew.
    NotYetValid,
    /// A condition on the claims does not hold, or the token has no string `sub`.
    Condition,
    /// The `jti` was already used (single-use trusts). Not produced by [`evaluate`], which
    /// keeps no memory: the grant layer produces it when recording the `jti` fails.
    Replay,
    /// The trust is single-use and the token has no usable `jti`.
    MissingJti,
    /// The token's signature does not verify with the trust's keys, or they could not be had.
    /// Not produced by [`evaluate`], which takes verified claims: the caller produces it.
    Signature,
    /// The account the trust maps to is disabled (grant layer).
    AccountDisabled,
}

impl MismatchClass {
    /// A stable, client-safe description that names the class of check and nothing of the
    /// trust's expected values.
    pub fn as_str(self) -> &'static str {
        match self {
            MismatchClass::Issuer => "the token's issuer is not the one trusted",
            MismatchClass::Audience => {
                "the token is not addressed to the audience the trust requires"
            }
            MismatchClass::Expired => "the token has expired",
            MismatchClass::TooOld => "the token was issued too long ago",
            MismatchClass::NotYetValid => "the token is not valid yet",
            MismatchClass::Condition => "a condition on the token's claims does not hold",
            MismatchClass::Replay => "the token has already been used",
            MismatchClass::MissingJti => {
                "the token has no jti and the trust accepts each token once"
            }
            // Also a token whose issuer no trust names: telling the two apart would let anyone
            // list the issuers a tenant trusts with unsigned tokens.
            MismatchClass::Signature => {
                "the token's signature does not verify with the keys of a trusted issuer"
            }
            MismatchClass::AccountDisabled => "the account the token maps to is disabled",
        }
    }

    /// A short stable code for audit records and metrics (`"condition"`, `"too_old"`, …).
    pub fn code(self) -> &'static str {
        match self {
            MismatchClass::Issuer => "issuer",
            MismatchClass::Audience => "audience",
            MismatchClass::Expired => "expired",
            MismatchClass::TooOld => "too_old",
            MismatchClass::NotYetValid => "not_yet_valid",
            MismatchClass::Condition => "condition",
            MismatchClass::Replay => "replay",
            MismatchClass::MissingJti => "missing_jti",
            MismatchClass::Signature => "signature",
            MismatchClass::AccountDisabled => "account_disabled",
        }
    }
}

/// Why a token does not satisfy a trust.
///
/// `Display` shows only the class (client-safe); `detail` — the exact condition, what it
/// expects, what the token holds — is for the audit record and `warrant trust test`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", class.as_str())]
pub struct Mismatch {
    pub class: MismatchClass,
    pub detail: String,
}

impl Mismatch {
    pub fn new(class: MismatchClass, detail: impl Into<String>) -> Self {
        Mismatch {
            class,
            detail: detail.into(),
        }
    }
}
