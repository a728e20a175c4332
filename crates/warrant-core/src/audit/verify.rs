//! Verifying a tenant's audit log: online (with the audit keys) or offline (an export, with
//! the public keys its checkpoints need).
//!
//! The [`Verifier`] is fed one segment at a time — its head and checkpoints, then its records in
//! `seq` order — so a caller can page through a store (or read an export line by line) without
//! holding the log in memory. It stops at the first problem: segments in the order they are fed
//! (created order), records in `seq` order, and reports that one, naming its segment and seq.
//!
//! What is checked, per segment:
//! - the chain starts where pruning left it: the first kept record is `anchor_seq + 1` and its
//!   `prev` is `anchor_hash` ([`GENESIS`] when nothing was pruned), and a valid checkpoint vouches
//!   for the anchor;
//! - `seq` is contiguous up to the head; each body is a [`RecordBody`] naming this tenant,
//!   segment and seq and the previous record's hash; `hash` is the SHA-256 of the body; the
//!   indexed columns (`at`, `subject`, `action`, `outcome`) say what the body says;
//! - every checkpoint is a JWS of type [`CHECKPOINT_TYP`] by one of the tenant's keys, its claims
//!   name this issuer, tenant, segment, seq and hash, and that hash is the kept record's;
//! - online only (with the audit keys): each record's MAC, and the head's MAC, with the head
//!   pointing at the last record — so a truncated tail or a re-chained record is seen.
//!
//! Offline there is no MAC: a record after the segment's last valid checkpoint could have been
//! re-chained by whoever edited the export. Such records are still checked for consistency, and
//! counted as the report's `unsigned_tail` (not an error). The same count is reported online,
//! where those records are covered by their MACs.
//!
//! Limits, admitted: the head MAC covers (tenant, segment, seq, hash) and nothing that changes
//! with time, so an old head restored together with a truncation is seen only if a checkpoint
//! beyond it survives; a whole segment deleted with its head and checkpoints is not seen.

use std::collections::BTreeMap;

use warrant_jose::PublicKey;
use warrant_jose::crypto::constant_time_eq;

use super::{
    AuditCheckpoint, CHECKPOINT_TYP, CheckpointClaims, GENESIS, RecordBody, SegmentHead,
    StoredAuditRecord, chain,
};
use crate::ids::TenantName;
use crate::keyring::VersionedKeys;

/// The outcome of verifying one tenant's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// No problem was found.
    pub ok: bool,
    /// Segments looked at.
    pub segments: u64,
    /// Records checked (up to the first problem).
    pub records: u64,
    /// Checkpoints whose signature and claims verified.
    pub checkpoints: u64,
    /// The first problem, in segment order then seq order.
    pub first_bad: Option<BadRecord>,
    /// Records after their segment's last valid checkpoint: offline they are only
    /// chain-checked; online their MACs cover them.
    pub unsigned_tail: u64,
    /// Whether record and head MACs were checked (online).
    pub macs_checked: bool,
}

/// Where the log is broken, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    pub segment: String,
    /// The record concerned (the first missing one for a gap; the anchor for an unvouched
    /// anchor; the head's seq for a bad head).
    pub seq: i64,
    /// The store's id of the record, when the problem is with a record that is there.
    pub id: Option<i64>,
    pub problem: String,
}

/// Verifies one tenant's log, fed segment by segment. See the module documentation.
pub struct Verifier<'k> {
    tenant: String,
    issuer: String,
    keys: Vec<PublicKey>,
    macs: Option<&'k VersionedKeys>,
    report: VerifyReport,
    seg: Option<Segment>,
}

impl std::fmt::Debug for Verifier<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("tenant", &self.tenant)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

/// The segment being verified.
struct Segment {
    head: SegmentHead,
    /// The seq the next record must have.
    next_seq: i64,
    /// The hash the next record's `prev` must be.
    prev_hash: String,
    /// Valid checkpoints: seq → hash.
    vouched: BTreeMap<i64, String>,
    /// The earliest problem found before the records (checkpoints, anchor): reported when the
    /// records reach its seq without an earlier problem.
    pending: Option<BadRecord>,
}

impl<'k> Verifier<'k> {
    /// `keys`: every public key the tenant ever signed with (retired and removed ones too);
    /// `macs`: the audit keys, online only.
    pub fn new(
        tenant: &TenantName,
        issuer: &str,
        keys: Vec<PublicKey>,
        macs: Option<&'k VersionedKeys>,
    ) -> Self {
        Self {
            tenant: tenant.as_str().to_owned(),
            issuer: issuer.to_owned(),
            keys,
            macs,
            report: VerifyReport {
                ok: true,
                segments: 0,
                records: 0,
                checkpoints: 0,
                first_bad: None,
                unsigned_tail: 0,
                macs_checked: macs.is_some(),
            },
            seg: None,
        }
    }

    /// Whether a problem was found (the rest of the input need not be read).
    pub fn failed(&self) -> bool {
        self.report.first_bad.is_some()
    }

    /// Starts a segment (ending the previous one) with its checkpoints, in any order.
    pub fn begin_segment(&mut self, head: &SegmentHead, checkpoints: &[AuditCheckpoint]) {
        self.end_segment();
        if self.failed() {
            return;
        }
        self.report.segments += 1;
        let mut seg = Segment {
            head: head.clone(),
            next_seq: head.anchor_seq.saturating_add(1),
            prev_hash: head.anchor_hash.clone(),
            vouched: BTreeMap::new(),
            pending: None,
        };
        let bad = |seq: i64, problem: String| BadRecord {
            segment: head.segment.clone(),
            seq,
            id: None,
            problem,
        };
        let mut problems = Vec::new();
        if head.tenant.as_str() != self.tenant {
            problems.push(bad(
                0,
                format!("the segment belongs to tenant {}", head.tenant),
            ));
        }
        for cp in checkpoints {
            match self.check_checkpoint(head, cp) {
                Ok(()) => {
                    self.report.checkpoints += 1;
                    seg.vouched.insert(cp.seq, cp.hash.clone());
                }
                Err(problem) => problems.push(bad(cp.seq, problem)),
            }
        }
        if head.anchor_seq < 0 || head.anchor_seq > head.head_seq {
            problems.push(bad(
                head.anchor_seq,
                format!(
                    "the segment's anchor (record {}) is outside its records (the head says {})",
                    head.anchor_seq, head.head_seq
                ),
            ));
        } else if head.anchor_seq == 0 {
            if head.anchor_hash != GENESIS {
                problems.push(bad(
                    1,
                    "nothing was pruned, but the segment's anchor hash is not the genesis hash"
                        .into(),
                ));
            }
        } else {
            match seg.vouched.get(&head.anchor_seq) {
                Some(h) if *h == head.anchor_hash => {}
                Some(_) => problems.push(bad(
                    head.anchor_seq,
                    format!(
                        "records up to {} were pruned, but the checkpoint at the anchor vouches \
                         for another hash",
                        head.anchor_seq
                    ),
                )),
                None => problems.push(bad(
                    head.anchor_seq,
                    format!(
                        "records up to {} were pruned, but no valid checkpoint vouches for the \
                         anchor",
                        head.anchor_seq
                    ),
                )),
            }
        }
        seg.pending = problems.into_iter().min_by_key(|b| b.seq);
        self.seg = Some(seg);
    }

    /// Checks the next record of the current segment (records come in `seq` order).
    pub fn record(&mut self, r: &StoredAuditRecord) {
        if self.failed() {
            return;
        }
        let Some(seg) = self.seg.as_mut() else {
            self.report.first_bad = Some(BadRecord {
                segment: r.segment.clone(),
                seq: r.seq,
                id: Some(r.id),
                problem: "the record comes before its segment".into(),
            });
            self.report.ok = false;
            return;
        };
        let found = check_record(&self.tenant, self.macs, seg, r);
        let pending_first = seg.pending.as_ref().is_some_and(|p| match &found {
            Some(b) => p.seq < b.seq,
            None => p.seq <= r.seq,
        });
        if pending_first {
            let p = seg.pending.take();
            self.fail(p);
        } else if found.is_some() {
            self.fail(found);
        } else {
            self.report.records += 1;
            seg.next_seq = r.seq.saturating_add(1);
            seg.prev_hash.clone_from(&r.hash);
        }
    }

    /// Ends the current segment: the head must point at its last record.
    pub fn end_segment(&mut self) {
        let Some(mut seg) = self.seg.take() else {
            return;
        };
        if self.failed() {
            return;
        }
        let head = &seg.head;
        let last = seg.next_seq.saturating_sub(1);
        let bad = |seq: i64, problem: String| BadRecord {
            segment: head.segment.clone(),
            seq,
            id: None,
            problem,
        };
        let found = if last < head.head_seq {
            Some(bad(
                last.saturating_add(1),
                format!(
                    "records after {last} are missing (the head says {})",
                    head.head_seq
                ),
            ))
        } else if seg.prev_hash != head.head_hash {
            Some(bad(
                head.head_seq,
                format!("the segment head's hash is not record {}'s", head.head_seq),
            ))
        } else {
            self.macs
                .and_then(|macs| check_head_mac(macs, head).map(|p| bad(head.head_seq, p)))
        };
        let problem = match (seg.pending.take(), found) {
            (Some(p), Some(f)) => Some(if p.seq < f.seq { p } else { f }),
            (p, f) => p.or(f),
        };
        if problem.is_some() {
            self.fail(problem);
            return;
        }
        let signed_through = seg
            .vouched
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(head.anchor_seq);
        let tail = last.saturating_sub(signed_through).max(0);
        self.report.unsigned_tail += u64::try_from(tail).unwrap_or(0);
    }

    /// Ends the last segment and returns the report.
    pub fn finish(mut self) -> VerifyReport {
        self.end_segment();
        self.report
    }

    fn fail(&mut self, bad: Option<BadRecord>) {
        if self.report.first_bad.is_none() && bad.is_some() {
            self.report.first_bad = bad;
            self.report.ok = false;
        }
    }

    fn check_checkpoint(&self, head: &SegmentHead, cp: &AuditCheckpoint) -> Result<(), String> {
        let jws = warrant_jose::verify_compact(&cp.jws, &self.keys, Some(CHECKPOINT_TYP))
            .map_err(|e| format!("the checkpoint at record {} does not verify: {e}", cp.seq))?;
        let claims: CheckpointClaims =
            serde_json::from_value(serde_json::Value::Object(jws.claims)).map_err(|e| {
                format!(
                    "the checkpoint at record {} has malformed claims: {e}",
                    cp.seq
                )
            })?;
        let differs = |what: &str, says: &dyn std::fmt::Display, want: &dyn std::fmt::Display| {
            Err(format!(
                "the checkpoint at record {} is for {what} {says}, not {want}",
                cp.seq
            ))
        };
        if claims.iss != self.issuer {
            return differs("issuer", &claims.iss, &self.issuer);
        }
        if claims.tenant != self.tenant || cp.tenant.as_str() != self.tenant {
            return differs("tenant", &claims.tenant, &self.tenant);
        }
        if claims.segment != head.segment || cp.segment != head.segment {
            return differs("segment", &claims.segment, &head.segment);
        }
        if claims.seq != cp.seq {
            return differs("record", &claims.seq, &cp.seq);
        }
        if claims.hash != cp.hash {
            return Err(format!(
                "the checkpoint at record {} signs another hash than the one stored with it",
                cp.seq
            ));
        }
        if cp.seq < 1 || cp.seq > head.head_seq {
            return Err(format!(
                "a checkpoint vouches for record {} but the segment head says {}",
                cp.seq, head.head_seq
            ));
        }
        Ok(())
    }
}

/// The problem with record `r`, if any.
fn check_record(
    tenant: &str,
    macs: Option<&VersionedKeys>,
    seg: &Segment,
    r: &StoredAuditRecord,
) -> Option<BadRecord> {
    let head = &seg.head;
    let bad = |seq: i64, problem: String| {
        Some(BadRecord {
            segment: head.segment.clone(),
            seq,
            id: (seq == r.seq).then_some(r.id),
            problem,
        })
    };
    if r.segment != head.segment || r.tenant.as_str() != tenant {
        return bad(
            r.seq,
            format!(
                "the record is filed under tenant {} segment {}",
                r.tenant, r.segment
            ),
        );
    }
    if r.seq > seg.next_seq {
        return bad(seg.next_seq, format!("record {} is missing", seg.next_seq));
    }
    if r.seq < seg.next_seq {
        return bad(
            r.seq,
            format!(
                "record {} is out of order or repeated (record {} was expected)",
                r.seq, seg.next_seq
            ),
        );
    }
    if r.seq > head.head_seq {
        return bad(
            r.seq,
            format!("the record is beyond the segment head ({})", head.head_seq),
        );
    }
    if chain::body_hash(&r.body) != r.hash {
        return bad(
            r.seq,
            "the body does not match the stored hash (the record was edited)".into(),
        );
    }
    let body: RecordBody = match serde_json::from_str(&r.body) {
        Ok(b) => b,
        Err(e) => return bad(r.seq, format!("the body is not a valid record: {e}")),
    };
    if body.v != 1 {
        return bad(r.seq, format!("unknown record version {}", body.v));
    }
    if body.tenant != tenant || body.segment != head.segment || body.seq != r.seq {
        return bad(
            r.seq,
            format!(
                "the body says tenant {} segment {} record {}",
                body.tenant, body.segment, body.seq
            ),
        );
    }
    if body.prev != seg.prev_hash {
        let of = if r.seq == head.anchor_seq.saturating_add(1) {
            if head.anchor_seq == 0 {
                "the genesis hash".to_owned()
            } else {
                format!("the segment's anchor (record {})", head.anchor_seq)
            }
        } else {
            format!("record {}'s hash", r.seq.saturating_sub(1))
        };
        return bad(r.seq, format!("prev is not {of}"));
    }
    let time = chain::time_text(r.at);
    if time != body.time {
        return bad(
            r.seq,
            format!(
                "the at column ({time}) differs from the body's time ({})",
                body.time
            ),
        );
    }
    if r.subject != body.subject {
        return bad(
            r.seq,
            "the subject column differs from the body's subject".into(),
        );
    }
    if r.action != body.action {
        return bad(
            r.seq,
            format!(
                "the action column ({}) differs from the body's action ({})",
                r.action, body.action
            ),
        );
    }
    if r.outcome != body.outcome.as_str() {
        return bad(
            r.seq,
            format!(
                "the outcome column ({}) differs from the body's outcome ({})",
                r.outcome,
                body.outcome.as_str()
            ),
        );
    }
    if let Some(macs) = macs {
        let Some(key) = macs.get(r.key_version) else {
            return bad(
                r.seq,
                format!("audit key version {} is unknown", r.key_version),
            );
        };
        let want = chain::record_mac(key, &r.hash);
        if !constant_time_eq(want.as_bytes(), r.mac.as_bytes()) {
            return bad(
                r.seq,
                "the MAC does not verify (the record was changed without the audit key)".into(),
            );
        }
    }
    if let Some(h) = seg.vouched.get(&r.seq)
        && *h != r.hash
    {
        return bad(
            r.seq,
            "a signed checkpoint vouches for another hash at this record".into(),
        );
    }
    None
}

/// The problem with a segment head's MAC, if any.
fn check_head_mac(macs: &VersionedKeys, head: &SegmentHead) -> Option<String> {
    let Some(key) = macs.get(head.key_version) else {
        return Some(format!(
            "the segment head names unknown audit key version {}",
            head.key_version
        ));
    };
    let want = chain::head_mac(
        key,
        head.tenant.as_str(),
        &head.segment,
        head.head_seq,
        &head.head_hash,
    );
    (!constant_time_eq(want.as_bytes(), head.head_mac.as_bytes()))
        .then(|| "the segment head's MAC does not verify (the head was rewritten)".to_owned())
}

#[cfg(test)]
mod tests;
