//! Revocation use cases: RFC 7009 by a token's owner, the admin API, watermarks set by
//! disabling or deleting an account, and the feed.

use super::{MAX_ID_LEN, NewRevocation, PRUNE_SKEW_SECS, RevocationEntry, RevocationKind};
use crate::admin::{AdminError, AdminPrincipal};
use crate::audit::{Origin, Outcome, action};
use crate::grants::TokenError;
use crate::signing::TenantKeys;
use crate::store::Change;
use crate::{ClientEntry, CoreError, TenantName, Warrant};

/// What an RFC 7009 request did. Both answer 200: the client learns nothing about tokens that
/// are not its own (§2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    Revoked(RevocationEntry),
    /// Unknown, malformed, expired, another tenant's, or already revoked: nothing to do.
    Unchanged,
}

/// One page of a tenant's feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPage {
    pub entries: Vec<RevocationEntry>,
    /// The resume point: the last entry's cursor, or the reader's own (or the store head for a
    /// snapshot) when the page is empty.
    pub next_cursor: i64,
}

/// Why a feed read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The cursor is older than what was pruned: take a fresh snapshot (410).
    #[error("the cursor is older than the oldest kept revocation; take a fresh snapshot")]
    Gone,
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// Largest feed page.
pub const MAX_FEED_PAGE: u32 = 1000;

fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_LEN && s.bytes().all(|b| (0x21..0x7f).contains(&b))
}

impl Warrant {
    /// Stores a revocation, applies it here, tells other replicas, and records it in the audit
    /// log (durably, before returning).
    async fn revoke(
        &self,
        tenant: &TenantName,
        kind: RevocationKind,
        origin: &Origin,
    ) -> Result<RevocationEntry, CoreError> {
        let now = self.clock.now();
        let prune_after = match &kind {
            RevocationKind::Jti { exp, .. } => {
                crate::Timestamp::from_secs(exp.saturating_add(PRUNE_SKEW_SECS))
            }
            RevocationKind::Subject { not_before, .. } => crate::Timestamp::from_secs(
                not_before
                    .saturating_add(self.config.max_token_lifetime as i64)
                    .saturating_add(PRUNE_SKEW_SECS),
            ),
        };
        let entry = self
            .store
            .add_revocation(&NewRevocation {
                tenant: tenant.clone(),
                kind: kind.clone(),
                created_at: now,
                prune_after,
            })
            .await?;
        self.revocations.apply(std::slice::from_ref(&entry));
        self.revocation_head.send_replace(self.revocations.cursor());
        if let Err(e) = self.store.publish(&Change::Revocations).await {
            tracing::warn!(error = %e, "could not notify other replicas of a revocation");
        }
        let (act, sub, jti) = match &kind {
            RevocationKind::Jti { jti, .. } => (action::REVOKE_JTI, None, Some(jti.clone())),
            RevocationKind::Subject { sub, .. } => {
                (action::REVOKE_SUBJECT, Some(sub.clone()), None)
            }
        };
        let mut event = origin.event(tenant.clone(), now, act, Outcome::Success);
        event.subject = sub;
        event.jti = jti;
        event.detail = Some(serde_json::json!({ "cursor": entry.cursor }));
        // The revocation is in effect and in the feed (with its time) whatever happens next;
        // failing the call now would make a retry find nothing to do and record nothing.
        if let Err(e) = self.audit.append(event).await {
            tracing::error!(error = %e, tenant = %tenant, cursor = entry.cursor, "a revocation took effect but its audit record could not be written");
        }
        tracing::info!(tenant = %tenant, cursor = entry.cursor, kind = kind.type_name(), "revoked");
        Ok(entry)
    }

    /// RFC 7009: `caller` revokes one of its own tokens. Tokens that are not this tenant's,
    /// invalid or expired change nothing (200); another client's valid token is refused
    /// (`unauthorized_client`, §2.1).
    pub async fn revoke_token(
        &self,
        keys: &TenantKeys,
        caller: &ClientEntry,
        token: &str,
        origin: &Origin,
    ) -> Result<RevokeOutcome, TokenError> {
        let now = self.clock.now();
        let Ok(t) = self.check_signed(keys, token, now.secs()) else {
            return Ok(RevokeOutcome::Unchanged);
        };
        if t.client_id.as_deref() != Some(caller.account.id.as_str()) {
            let mut event = origin.event(
                keys.tenant.clone(),
                now,
                action::REVOKE_JTI,
                Outcome::Failure,
            );
            event.reason = Some("unauthorized_client: not the caller's token".into());
            event.jti = t.jti.clone();
            self.audit.note(event);
            return Err(TokenError::UnauthorizedClient(
                "the token was not issued to this client".into(),
            ));
        }
        let Some(jti) = t.jti.clone().filter(|j| valid_id(j)) else {
            return Ok(RevokeOutcome::Unchanged);
        };
        if self.is_revoked(&keys.tenant, &t) {
            return Ok(RevokeOutcome::Unchanged);
        }
        self.revoke(
            &keys.tenant,
            RevocationKind::Jti { jti, exp: t.exp },
            origin,
        )
        .await
        .map(RevokeOutcome::Revoked)
        .map_err(|e| TokenError::Unavailable(e.to_string()))
    }

    /// The admin API's `POST tenants/{t}/revocations` (a body shaped like a feed entry): a
    /// `jti` (its `exp` defaults to, and is capped at, now + `max_token_lifetime`) or a subject watermark (its
    /// `not_before` defaults to now; a future one is refused).
    pub async fn admin_revoke(
        &self,
        principal: &AdminPrincipal,
        tenant: &TenantName,
        kind: RevocationRequest,
    ) -> Result<RevocationEntry, AdminError> {
        principal.require(tenant)?;
        if self.keys.get(tenant).is_none() {
            return Err(AdminError::NotFound(format!(
                "tenant {tenant} does not exist"
            )));
        }
        let now = self.clock.now().secs();
        let kind = match kind {
            RevocationRequest::Jti { jti, exp } => {
                if !valid_id(&jti) {
                    return Err(AdminError::Invalid(format!(
                        "jti must be 1 to {MAX_ID_LEN} printable ASCII characters"
                    )));
                }
                RevocationKind::Jti {
                    jti,
                    // No token outlives now + max_token_lifetime: a later exp would only keep
                    // the entry (and every verifier's copy) longer.
                    exp: exp
                        .unwrap_or(i64::MAX)
                        .min(now + self.config.max_token_lifetime as i64),
                }
            }
            RevocationRequest::Subject { sub, not_before } => {
                if !valid_id(&sub) {
                    return Err(AdminError::Invalid(format!(
                        "sub must be 1 to {MAX_ID_LEN} printable ASCII characters"
                    )));
                }
                let not_before = not_before.unwrap_or(now);
                if not_before > now {
                    return Err(AdminError::Invalid(
                        "not_before must not be in the future".into(),
                    ));
                }
                RevocationKind::Subject { sub, not_before }
            }
        };
        let origin = Origin::admin(principal);
        Ok(self.revoke(tenant, kind, &origin).await?)
    }

    /// Revokes every token of an account issued up to now (disable, delete, `revoke --account`).
    pub(crate) async fn set_watermark(
        &self,
        tenant: &TenantName,
        sub: &str,
        origin: &Origin,
    ) -> Result<RevocationEntry, CoreError> {
        let not_before = self.clock.now().secs();
        self.revoke(
            tenant,
            RevocationKind::Subject {
                sub: sub.to_owned(),
                not_before,
            },
            origin,
        )
        .await
    }

    /// One page of a tenant's feed: everything kept when `after` is `None` (a snapshot),
    /// else what came after that cursor; [`FeedError::Gone`] if the cursor predates pruning.
    pub async fn revocation_feed(
        &self,
        tenant: &TenantName,
        after: Option<i64>,
        limit: u32,
    ) -> Result<FeedPage, FeedError> {
        let limit = limit.clamp(1, MAX_FEED_PAGE);
        let page = self
            .store
            .revocation_feed(tenant, after, limit)
            .await
            .map_err(CoreError::from)?;
        // A cursor below what was pruned may have missed entries; one above the head came
        // from another store (a restore, another deployment): both need a fresh snapshot.
        if after.is_some_and(|a| a < page.pruned_through || a > page.head) {
            return Err(FeedError::Gone);
        }
        let last = page.entries.last().map(|e| e.cursor);
        // A short page has everything up to the head (the store reads the head first).
        let next_cursor = if (page.entries.len() as u32) < limit {
            page.head.max(last.unwrap_or(0))
        } else {
            last.or(after).unwrap_or(page.head)
        };
        Ok(FeedPage {
            entries: page.entries,
            next_cursor,
        })
    }

    /// Wakes when new revocations are applied here (the value is the highest cursor).
    pub fn revocation_updates(&self) -> tokio::sync::watch::Receiver<i64> {
        self.revocation_head.subscribe()
    }

    /// Catches the in-memory revocation set up with the store.
    pub async fn sync_revocations(&self) -> Result<(), CoreError> {
        let _one = self.revocation_sync.lock().await;
        loop {
            let batch = self
                .store
                .revocations_after(self.revocations.cursor(), MAX_FEED_PAGE)
                .await?;
            self.revocations.apply(&batch);
            if (batch.len() as u32) < MAX_FEED_PAGE {
                break;
            }
        }
        self.revocation_head.send_replace(self.revocations.cursor());
        Ok(())
    }

    /// Forgets revocations no live token can match (store and memory); run periodically.
    pub async fn prune_revocations(&self) -> Result<u64, CoreError> {
        let now = self.clock.now();
        let n = self.store.prune_revocations(now).await?;
        self.revocations
            .prune(now.secs(), self.config.max_token_lifetime);
        Ok(n)
    }

    /// A subject's watermark, as this replica knows it.
    pub fn watermark(&self, tenant: &TenantName, sub: &str) -> Option<i64> {
        self.revocations.not_before(tenant, sub)
    }
}

/// A revocation as the admin API receives it (times optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationRequest {
    Jti {
        jti: String,
        exp: Option<i64>,
    },
    Subject {
        sub: String,
        not_before: Option<i64>,
    },
}
