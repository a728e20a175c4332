//! The signing-key lifecycle rules (`next → active → retired → removed`), as pure functions of
//! a tenant's keys, the time and two settings. No I/O: the use cases in `admin/keys.rs` store
//! what these decide, and `KeyRegistry` switches keys when the times come.
//!
//! With skew `S` ([`CLOCK_SKEW_SECS`]), `J` = `jwks_max_age` and `L` = `max_token_lifetime`:
//!
//! - normal rotation at `now`: the new key is published now and signs from `now + J + S` (every
//!   verifier's cached JWKS has expired and been refetched by then); the active key retires
//!   then and is removed `L + S` later (every token it signed has expired).
//! - immediate rotation (`--now`): the new key signs from `now`; the active key retires now and
//!   is removed at `now + L + S`. A verifier whose JWKS predates the new key refetches on the
//!   unknown kid.
//! - revocation: the key is removed now; if it was signing, a replacement signs from now.
//!
//! See docs/key-rotation.md for what verifiers see in each case.

use crate::Timestamp;
use crate::model::{KeyState, SigningKeyRecord};
use crate::store::KeyTimes;

/// Allowance for clocks that disagree (ours, verifiers', caches'), seconds.
pub const CLOCK_SKEW_SECS: i64 = 60;

/// The longest scheduled rotation period, seconds (365 days).
pub const MAX_ROTATION_PERIOD_SECS: u64 = 365 * 86_400;

/// The two settings the rules depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `J`: how long a verifier may cache the JWKS, seconds.
    pub jwks_max_age: u64,
    /// `L`: the longest lifetime of any token, seconds.
    pub max_token_lifetime: u64,
}

fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Timing {
    /// `J + S`: how long a new key is published before it signs.
    pub fn publish_lead(&self) -> i64 {
        secs(self.jwks_max_age).saturating_add(CLOCK_SKEW_SECS)
    }

    /// `L + S`: how long a retired key stays published.
    pub fn keep_after_retirement(&self) -> i64 {
        secs(self.max_token_lifetime).saturating_add(CLOCK_SKEW_SECS)
    }

    /// The shortest scheduled rotation period, `2·(J + S)`: a key then signs for at least
    /// `J + S` after the one before it was published.
    pub fn min_rotation_period(&self) -> u64 {
        u64::try_from(self.publish_lead().saturating_mul(2)).unwrap_or(u64::MAX)
    }

    /// Whether `period` (seconds) may be a tenant's rotation period.
    pub fn check_rotation_period(&self, period: u64) -> Result<(), String> {
        let min = self.min_rotation_period();
        if period < min || period > MAX_ROTATION_PERIOD_SECS {
            return Err(format!(
                "key_rotation_period must be between {min} seconds (2 × (jwks_max_age + {CLOCK_SKEW_SECS} s)) \
                 and {MAX_ROTATION_PERIOD_SECS} seconds (365 days)"
            ));
        }
        Ok(())
    }
}

/// What a rotation or revocation writes: a new key activating at `new_key_activates_at` (if
/// any) and new times for existing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub new_key_activates_at: Option<Timestamp>,
    pub updates: Vec<KeyTimes>,
}

/// The outcome of [`rotate`].
#[derive(Debug, Clone, PartialEq)]
pub enum Rotation {
    /// A successor is already published and waiting: rotating again returns it.
    Pending(SigningKeyRecord),
    New(Plan),
}

/// Why a key cannot be revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeRefusal {
    Unknown,
    AlreadyRemoved,
}

/// The key that signs at `now`: the active key with the latest activation.
pub fn signing_key(keys: &[SigningKeyRecord], now: Timestamp) -> Option<&SigningKeyRecord> {
    keys.iter()
        .filter(|k| k.state_at(now) == KeyState::Active)
        .max_by_key(|k| k.activates_at)
}

fn pending(keys: &[SigningKeyRecord], now: Timestamp) -> Option<&SigningKeyRecord> {
    keys.iter()
        .filter(|k| k.state_at(now) == KeyState::Next)
        .max_by_key(|k| k.activates_at)
}

/// A rotation at `now`. Normal (`immediate == false`): idempotent while a successor waits.
/// Immediate: the new key signs from `now`, and any waiting successor (which never signed)
/// is removed now, so that exactly one key is active.
pub fn rotate(
    keys: &[SigningKeyRecord],
    now: Timestamp,
    timing: Timing,
    immediate: bool,
) -> Rotation {
    if !immediate && let Some(p) = pending(keys, now) {
        return Rotation::Pending(p.clone());
    }
    let nothing_signs = signing_key(keys, now).is_none();
    // With nothing signing there is nothing to protect: the new key signs at once.
    let activates_at = if immediate || nothing_signs {
        now
    } else {
        now.plus_secs(timing.publish_lead())
    };
    Rotation::New(succession(keys, now, timing, activates_at))
}

/// A new key activating at `activates_at`: every active key retires then and stays published
/// `L + S` longer; a waiting successor (it never signed) is removed now.
fn succession(
    keys: &[SigningKeyRecord],
    now: Timestamp,
    timing: Timing,
    activates_at: Timestamp,
) -> Plan {
    let updates = keys
        .iter()
        .filter_map(|k| match k.state_at(now) {
            KeyState::Active => Some(KeyTimes {
                kid: k.kid.clone(),
                retires_at: Some(activates_at),
                removed_at: Some(activates_at.plus_secs(timing.keep_after_retirement())),
            }),
            KeyState::Next => Some(KeyTimes {
                kid: k.kid.clone(),
                retires_at: Some(now),
                removed_at: Some(now),
            }),
            KeyState::Retired | KeyState::Removed => None,
        })
        .collect();
    Plan {
        new_key_activates_at: Some(activates_at),
        updates,
    }
}

/// Revokes `kid` at `now`: it is removed now. If it was signing, this is an immediate rotation
/// (a replacement signs from now) with the revoked key removed instead of kept. If it was a
/// waiting successor, the key it was to replace no longer retires.
pub fn revoke(
    keys: &[SigningKeyRecord],
    kid: &str,
    now: Timestamp,
    timing: Timing,
) -> Result<Plan, RevokeRefusal> {
    let target = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(RevokeRefusal::Unknown)?;
    let state = target.state_at(now);
    let removed = KeyTimes {
        kid: target.kid.clone(),
        retires_at: Some(target.retires_at.map_or(now, |r| r.min(now))),
        removed_at: Some(now),
    };
    match state {
        KeyState::Removed => Err(RevokeRefusal::AlreadyRemoved),
        KeyState::Active => {
            let mut plan = succession(keys, now, timing, now);
            plan.updates.retain(|u| u.kid != target.kid);
            plan.updates.push(removed);
            Ok(plan)
        }
        KeyState::Next => {
            let mut updates = vec![removed];
            // The key it was to succeed keeps signing, with no end planned.
            updates.extend(
                keys.iter()
                    .filter(|k| {
                        k.state_at(now) == KeyState::Active
                            && k.retires_at == Some(target.activates_at)
                    })
                    .map(|k| KeyTimes {
                        kid: k.kid.clone(),
                        retires_at: None,
                        removed_at: None,
                    }),
            );
            let still_signing = signing_key(keys, now).is_some();
            Ok(Plan {
                // Never leave a tenant without a key that signs.
                new_key_activates_at: (!still_signing).then_some(now),
                updates,
            })
        }
        KeyState::Retired => Ok(Plan {
            new_key_activates_at: None,
            updates: vec![removed],
        }),
    }
}

/// Whether a scheduled rotation is due at `now`: no successor waits, and the signing key has
/// signed long enough that a successor published now activates (at `now + J + S`) no earlier
/// than `period` after it.
pub fn rotation_due(
    keys: &[SigningKeyRecord],
    period: u64,
    now: Timestamp,
    timing: Timing,
) -> bool {
    if pending(keys, now).is_some() {
        return false;
    }
    signing_key(keys, now).is_some_and(|k| {
        k.activates_at.plus_secs(secs(period)) <= now.plus_secs(timing.publish_lead())
    })
}

/// The earliest time after `now` at which some key changes state (the registry rebuilds its
/// view of the tenant then), or `None` if none ever will.
pub fn next_boundary(keys: &[SigningKeyRecord], now: Timestamp) -> Option<Timestamp> {
    keys.iter()
        .flat_map(|k| [Some(k.activates_at), k.retires_at, k.removed_at])
        .flatten()
        .filter(|t| *t > now)
        .min()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests;
