//! Every live revocation, in memory, for introspection (no store read per request).

use std::collections::HashMap;
use std::sync::RwLock;

use super::{RevocationEntry, RevocationKind};
use crate::ids::TenantName;

#[derive(Debug, Default)]
struct TenantRevocations {
    /// `jti` → `exp` (seconds).
    jtis: HashMap<String, i64>,
    /// `sub` → the highest `not_before` (seconds).
    subjects: HashMap<String, i64>,
}

#[derive(Debug, Default)]
struct Inner {
    tenants: HashMap<TenantName, TenantRevocations>,
    /// The highest cursor applied.
    cursor: i64,
}

/// The revocations this replica knows, by tenant. Entries arrive in cursor order from the
/// store (at start, after a local write, and when another replica announces one).
#[derive(Debug, Default)]
pub struct RevocationSet {
    inner: RwLock<Inner>,
}

impl RevocationSet {
    /// The highest cursor applied so far (read the store after it to catch up).
    pub fn cursor(&self) -> i64 {
        crate::read(&self.inner).cursor
    }

    /// Applies entries (any order; an entry at or below the cursor is applied again harmlessly).
    pub fn apply(&self, entries: &[RevocationEntry]) {
        if entries.is_empty() {
            return;
        }
        let mut inner = crate::write(&self.inner);
        for e in entries {
            let t = inner.tenants.entry(e.tenant.clone()).or_default();
            match &e.kind {
                RevocationKind::Jti { jti, exp } => {
                    let slot = t.jtis.entry(jti.clone()).or_insert(*exp);
                    *slot = (*slot).max(*exp);
                }
                RevocationKind::Subject { sub, not_before } => {
                    let slot = t.subjects.entry(sub.clone()).or_insert(*not_before);
                    *slot = (*slot).max(*not_before);
                }
            }
            inner.cursor = inner.cursor.max(e.cursor);
        }
    }

    /// Forgets entries no token can match any more (`now_secs` past their token's `exp`, or a
    /// watermark older than the longest token lifetime).
    pub fn prune(&self, now_secs: i64, max_token_lifetime: u64) {
        let mut inner = crate::write(&self.inner);
        let horizon = now_secs
            .saturating_sub(max_token_lifetime as i64)
            .saturating_sub(super::PRUNE_SKEW_SECS);
        for t in inner.tenants.values_mut() {
            t.jtis
                .retain(|_, exp| *exp + super::PRUNE_SKEW_SECS >= now_secs);
            t.subjects.retain(|_, nb| *nb >= horizon);
        }
        inner
            .tenants
            .retain(|_, t| !t.jtis.is_empty() || !t.subjects.is_empty());
    }

    /// Whether a token of `tenant` with this `jti`, `iat` and subjects (`sub`, `client_id`,
    /// every `act.sub`) is revoked.
    pub fn is_revoked<'a>(
        &self,
        tenant: &TenantName,
        jti: Option<&str>,
        iat: i64,
        subjects: impl IntoIterator<Item = &'a str>,
    ) -> bool {
        let inner = crate::read(&self.inner);
        let Some(t) = inner.tenants.get(tenant) else {
            return false;
        };
        if jti.is_some_and(|j| t.jtis.contains_key(j)) {
            return true;
        }
        subjects
            .into_iter()
            .any(|s| t.subjects.get(s).is_some_and(|nb| iat <= *nb))
    }

    /// The watermark of a subject, if any.
    pub fn not_before(&self, tenant: &TenantName, sub: &str) -> Option<i64> {
        crate::read(&self.inner)
            .tenants
            .get(tenant)
            .and_then(|t| t.subjects.get(sub).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn entry(cursor: i64, kind: RevocationKind) -> RevocationEntry {
        RevocationEntry {
            cursor,
            tenant: TenantName::parse("t").unwrap(),
            kind,
            created_at: Timestamp::from_secs(0),
            prune_after: Timestamp::from_secs(0),
        }
    }

    #[test]
    fn watermark_revokes_tokens_issued_in_its_second_and_before() {
        let set = RevocationSet::default();
        let t = TenantName::parse("t").unwrap();
        set.apply(&[entry(
            7,
            RevocationKind::Subject {
                sub: "sa_x".into(),
                not_before: 100,
            },
        )]);
        assert_eq!(set.cursor(), 7);
        assert!(set.is_revoked(&t, None, 100, ["sa_x"]));
        assert!(set.is_revoked(&t, None, 99, ["sa_y", "sa_x"]));
        assert!(!set.is_revoked(&t, None, 101, ["sa_x"]));
        assert!(!set.is_revoked(&t, None, 50, ["sa_y"]));
        let other = TenantName::parse("u").unwrap();
        assert!(!set.is_revoked(&other, None, 50, ["sa_x"]));
    }

    #[test]
    fn jti_revocations_are_pruned_after_expiry() {
        let set = RevocationSet::default();
        let t = TenantName::parse("t").unwrap();
        set.apply(&[entry(
            1,
            RevocationKind::Jti {
                jti: "j1".into(),
                exp: 1000,
            },
        )]);
        assert!(set.is_revoked(&t, Some("j1"), 0, []));
        set.prune(1000 + super::super::PRUNE_SKEW_SECS, 3600);
        assert!(set.is_revoked(&t, Some("j1"), 0, []));
        set.prune(1001 + super::super::PRUNE_SKEW_SECS, 3600);
        assert!(!set.is_revoked(&t, Some("j1"), 0, []));
    }
}
