//! Admin use cases over the audit log: query, verify (online, with the audit keys) and export.
//!
//! Verification and export read a tenant's checkpoints first and its segment heads second, so
//! every checkpoint read is at or below the head read (a live writer only adds checkpoints for
//! heads it has committed); each segment is then read up to that head, a page at a time.

use std::collections::HashMap;
use std::sync::Arc;

use warrant_jose::{JwkSet, PublicKey, SigningKey};

use super::export::{EndLine, Line};
use super::verify::{Verifier, VerifyReport};
use super::{AuditCheckpoint, AuditQuery, SegmentHead, StoredAuditRecord};
use crate::admin::{AdminError, AdminPrincipal, page_limit};
use crate::keyring::{KeyPurpose, VersionedKeys};
use crate::model::SigningKeyRecord;
use crate::{Store, TenantName, Warrant};

/// Records read from the store at a time while verifying or exporting.
const PAGE: u32 = 1000;

impl Warrant {
    /// One tenant's records matching the query, ordered by id (`limit` 0 means the default
    /// page size; larger ones are capped).
    pub async fn query_audit(
        &self,
        p: &AdminPrincipal,
        mut query: AuditQuery,
    ) -> Result<Vec<StoredAuditRecord>, AdminError> {
        self.audited_tenant(p, &query.tenant).await?;
        query.limit = page_limit((query.limit > 0).then_some(query.limit));
        Ok(self.store.query_audit(&query).await?)
    }

    /// Verifies a tenant's whole log online: chain, columns, checkpoints, and every record's
    /// and head's MAC under the audit keys.
    pub async fn verify_audit(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
    ) -> Result<VerifyReport, AdminError> {
        let issuer = self.audited_tenant(p, tenant).await?;
        let keys = self
            .tenant_public_keys(tenant)
            .await?
            .keys
            .iter()
            .map(PublicKey::from_jwk)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AdminError::Internal(format!("a signing key of {tenant}: {e}")))?;
        let entries = self.store.keyring().await?;
        let macs = VersionedKeys::load_purpose(&self.master, &entries, KeyPurpose::Audit)?;
        let (segments, mut checkpoints) = read_heads(&*self.store, tenant).await?;
        let mut v = Verifier::new(tenant, &issuer, keys, Some(&macs));
        for head in &segments {
            let cps = checkpoints.remove(&head.segment).unwrap_or_default();
            v.begin_segment(head, &cps);
            let mut after = head.anchor_seq;
            while !v.failed() {
                let page = segment_page(&*self.store, head, after).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for r in &page {
                    v.record(r);
                }
            }
            if v.failed() {
                break;
            }
        }
        Ok(v.finish())
    }

    /// Starts an export of a tenant's log (see [`super::export`]): permissions, keys,
    /// checkpoints and segment heads are read now, so that refusals come before any line;
    /// records are read page by page as [`AuditExport::next_lines`] is called.
    pub async fn export_audit(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
    ) -> Result<AuditExport, AdminError> {
        let issuer = self.audited_tenant(p, tenant).await?;
        let keys = self.tenant_public_keys(tenant).await?;
        let (segments, checkpoints) = read_heads(&*self.store, tenant).await?;
        let header = Line::header(tenant, &issuer, self.clock.now(), keys);
        Ok(AuditExport {
            store: self.store.clone(),
            header: Some(text(&header)?),
            segments: segments.into_iter(),
            checkpoints,
            current: None,
            counted: EndLine::default(),
            done: false,
        })
    }

    /// Checks the principal may manage the tenant, and that the tenant exists — or existed:
    /// a deleted tenant's log (records, heads, checkpoints, keys) stays readable, since that is
    /// when someone most wants to check it. Returns the tenant's issuer.
    async fn audited_tenant(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
    ) -> Result<String, AdminError> {
        p.require(tenant)?;
        if let Some(keys) = self.keys.get(tenant) {
            return Ok(keys.issuer.clone());
        }
        if self.store.audit_segments(tenant).await?.is_empty() {
            return Err(AdminError::NotFound(format!("no tenant {tenant}")));
        }
        Ok(self.config.issuer(tenant))
    }

    /// The public keys of every signing key the tenant ever had (retired and removed ones
    /// too, which old checkpoints need).
    async fn tenant_public_keys(&self, tenant: &TenantName) -> Result<JwkSet, AdminError> {
        let mut set = JwkSet::default();
        for r in self.store.tenant_signing_keys(tenant).await? {
            if let (Some(module), Some(label)) = (r.hsm_module.clone(), r.hsm_label.clone()) {
                // the public half comes from the token; a key that is gone leaves its
                // checkpoints unverifiable offline, which `audit verify` reports
                let Some(hsm) = self.hsm.clone() else {
                    tracing::warn!(tenant = %tenant, kid = %r.kid, "HSM key left out of the audit export: no HSM configured");
                    continue;
                };
                let alg = r.alg;
                match crate::hsm::blocking(move || hsm.key(&module, &label, alg)).await {
                    Ok(k) => set.keys.push(k.public_jwk().clone()),
                    Err(e) => {
                        tracing::warn!(tenant = %tenant, kid = %r.kid, error = %e, "HSM key left out of the audit export");
                    }
                }
                continue;
            }
            let der = self.master.unwrap(
                &r.private_wrapped,
                &SigningKeyRecord::wrap_aad(&r.tenant, &r.kid),
            )?;
            let key = SigningKey::from_pkcs8(r.alg, &der)
                .map_err(|e| AdminError::Internal(format!("signing key {}: {e}", r.kid)))?;
            set.keys.push(key.public_jwk().clone());
        }
        Ok(set)
    }
}

/// A tenant's export in progress: call [`next_lines`](Self::next_lines) until it returns
/// `None`. It holds the store, not the engine, so it can outlive the request that started it.
pub struct AuditExport {
    store: Arc<dyn Store>,
    header: Option<String>,
    segments: std::vec::IntoIter<SegmentHead>,
    checkpoints: HashMap<String, Vec<AuditCheckpoint>>,
    /// The segment being written and the last seq written.
    current: Option<(SegmentHead, i64)>,
    counted: EndLine,
    done: bool,
}

impl std::fmt::Debug for AuditExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditExport")
            .field("counted", &self.counted)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl AuditExport {
    /// The next lines (without newlines), at most a page of records; `None` after the end
    /// line.
    pub async fn next_lines(&mut self) -> Result<Option<Vec<String>>, AdminError> {
        if let Some(header) = self.header.take() {
            return Ok(Some(vec![header]));
        }
        if let Some((head, after)) = &mut self.current {
            let page = segment_page(&*self.store, head, *after).await?;
            if let Some(last) = page.last() {
                *after = last.seq;
                self.counted.records += page.len() as u64;
                let lines = page
                    .iter()
                    .map(|r| text(&Line::record(r)))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(Some(lines));
            }
            self.current = None;
        }
        match self.segments.next() {
            Some(head) => {
                let cps = self.checkpoints.remove(&head.segment).unwrap_or_default();
                let mut lines = vec![text(&Line::segment(&head))?];
                for c in &cps {
                    lines.push(text(&Line::checkpoint(c))?);
                }
                self.counted.segments += 1;
                self.counted.checkpoints += cps.len() as u64;
                let after = head.anchor_seq;
                self.current = Some((head, after));
                Ok(Some(lines))
            }
            None if self.done => Ok(None),
            None => {
                self.done = true;
                Ok(Some(vec![text(&Line::End(self.counted))?]))
            }
        }
    }
}

fn text(line: &Line) -> Result<String, AdminError> {
    line.to_text()
        .map_err(|e| AdminError::Internal(format!("serialising an export line: {e}")))
}

/// Checkpoints (by segment), then segment heads (created order). A checkpoint beyond its
/// segment's head is kept: the verifier reports it (the head was moved back).
async fn read_heads(
    store: &dyn Store,
    tenant: &TenantName,
) -> Result<(Vec<SegmentHead>, HashMap<String, Vec<AuditCheckpoint>>), AdminError> {
    let all = store.audit_checkpoints(tenant).await?;
    let segments = store.audit_segments(tenant).await?;
    let mut checkpoints: HashMap<String, Vec<AuditCheckpoint>> = HashMap::new();
    for c in all {
        checkpoints.entry(c.segment.clone()).or_default().push(c);
    }
    Ok((segments, checkpoints))
}

/// The segment's next records after `after`, up to its head (empty when there are no more).
async fn segment_page(
    store: &dyn Store,
    head: &SegmentHead,
    after: i64,
) -> Result<Vec<StoredAuditRecord>, AdminError> {
    if after >= head.head_seq {
        return Ok(Vec::new());
    }
    let mut page = store
        .audit_segment_records(&head.tenant, &head.segment, after, PAGE)
        .await?;
    page.retain(|r| r.seq <= head.head_seq);
    Ok(page)
}
