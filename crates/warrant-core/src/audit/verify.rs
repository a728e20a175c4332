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
mod tests {
    use warrant_jose::{Algorithm, JwsSigner, SigningKey};

    use super::*;
    use crate::audit::{AuditEvent, Outcome, action};
    use crate::keyring::{KeyPurpose, KeyringEntry, MasterKey};
    use crate::time::Timestamp;

    const ISSUER: &str = "https://id.example/t/acme";
    const SEG: &str = "seg_01TEST";

    struct Fixture {
        tenant: TenantName,
        macs: VersionedKeys,
        signer: JwsSigner,
        public: PublicKey,
        records: Vec<StoredAuditRecord>,
        head: SegmentHead,
        checkpoints: Vec<AuditCheckpoint>,
    }

    fn mac_keys() -> VersionedKeys {
        let (master, _) = MasterKey::generate().unwrap();
        let entry =
            KeyringEntry::generate(&master, KeyPurpose::Audit, 1, Timestamp::from_secs(0)).unwrap();
        VersionedKeys::load_purpose(&master, &[entry], KeyPurpose::Audit).unwrap()
    }

    fn signer() -> (JwsSigner, PublicKey) {
        let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let public = PublicKey::from_jwk(key.public_jwk()).unwrap();
        (JwsSigner::new(key, CHECKPOINT_TYP).unwrap(), public)
    }

    fn event(tenant: &TenantName, i: i64) -> AuditEvent {
        let mut e = AuditEvent::new(
            tenant.clone(),
            Timestamp::from_millis(1_795_000_000_042 + i * 1_001),
            "sa_01ADMIN",
            if i % 2 == 0 {
                action::ACCOUNT_CREATE
            } else {
                action::SECRET_CREATE
            },
            Outcome::Success,
        );
        e.subject = Some(format!("sa_{i}"));
        e
    }

    fn seal_chain(
        tenant: &TenantName,
        macs: &VersionedKeys,
        from: i64,
        prev: &str,
        n: i64,
    ) -> Vec<StoredAuditRecord> {
        let key = macs.get(1).unwrap();
        let mut prev = prev.to_owned();
        (from..from + n)
            .map(|seq| {
                let mut r = chain::seal(&event(tenant, seq), SEG, seq, &prev, 1, key, 1).unwrap();
                r.id = seq * 10;
                prev.clone_from(&r.hash);
                r
            })
            .collect()
    }

    fn head_for(f: &Fixture, seq: i64, hash: &str) -> SegmentHead {
        SegmentHead {
            tenant: f.tenant.clone(),
            segment: SEG.into(),
            head_seq: seq,
            head_hash: hash.into(),
            head_mac: chain::head_mac(f.macs.get(1).unwrap(), "acme", SEG, seq, hash),
            key_version: 1,
            anchor_seq: 0,
            anchor_hash: GENESIS.into(),
            created_at: Timestamp::from_secs(0),
            updated_at: Timestamp::from_secs(0),
        }
    }

    fn checkpoint(signer: &JwsSigner, tenant: &str, seq: i64, hash: &str) -> AuditCheckpoint {
        let claims = CheckpointClaims {
            iss: ISSUER.into(),
            tenant: tenant.into(),
            segment: SEG.into(),
            seq,
            hash: hash.into(),
            iat: 1_795_000_100,
        };
        AuditCheckpoint {
            tenant: TenantName::parse(tenant).unwrap(),
            segment: SEG.into(),
            seq,
            hash: hash.into(),
            at: Timestamp::from_secs(1_795_000_100),
            jws: signer.sign(&serde_json::to_vec(&claims).unwrap()).unwrap(),
        }
    }

    /// Five records, a checkpoint at 3, the head at 5.
    fn fixture() -> Fixture {
        let tenant = TenantName::parse("acme").unwrap();
        let macs = mac_keys();
        let (signer, public) = signer();
        let records = seal_chain(&tenant, &macs, 1, GENESIS, 5);
        let mut f = Fixture {
            tenant,
            macs,
            signer,
            public,
            head: SegmentHead {
                tenant: TenantName::parse("acme").unwrap(),
                segment: SEG.into(),
                head_seq: 0,
                head_hash: GENESIS.into(),
                head_mac: String::new(),
                key_version: 1,
                anchor_seq: 0,
                anchor_hash: GENESIS.into(),
                created_at: Timestamp::from_secs(0),
                updated_at: Timestamp::from_secs(0),
            },
            checkpoints: Vec::new(),
            records,
        };
        f.head = head_for(&f, 5, &f.records[4].hash);
        f.checkpoints = vec![checkpoint(&f.signer, "acme", 3, &f.records[2].hash)];
        f
    }

    fn run(f: &Fixture, online: bool) -> VerifyReport {
        let macs = online.then_some(&f.macs);
        let mut v = Verifier::new(&f.tenant, ISSUER, vec![f.public.clone()], macs);
        v.begin_segment(&f.head, &f.checkpoints);
        for r in &f.records {
            v.record(r);
        }
        v.finish()
    }

    /// Asserts the report fails at `seq` with a problem containing `says`.
    fn fails_at(report: &VerifyReport, seq: i64, says: &str) {
        assert!(!report.ok, "{report:?}");
        let bad = report.first_bad.as_ref().unwrap();
        assert_eq!((bad.segment.as_str(), bad.seq), (SEG, seq), "{bad:?}");
        assert!(bad.problem.contains(says), "{bad:?}");
    }

    fn record_mut(f: &mut Fixture, seq: i64) -> &mut StoredAuditRecord {
        f.records.iter_mut().find(|r| r.seq == seq).unwrap()
    }

    #[test]
    fn an_intact_log_verifies_online_and_offline() {
        let f = fixture();
        let online = run(&f, true);
        assert!(online.ok, "{online:?}");
        assert_eq!(
            (online.segments, online.records, online.checkpoints),
            (1, 5, 1)
        );
        assert!(online.macs_checked);
        assert_eq!(online.unsigned_tail, 2);
        let offline = run(&f, false);
        assert!(offline.ok, "{offline:?}");
        assert!(!offline.macs_checked);
        assert_eq!(
            offline.unsigned_tail, 2,
            "records 4 and 5 are after the checkpoint"
        );
    }

    #[test]
    fn an_edited_body_is_found() {
        let mut f = fixture();
        let r = record_mut(&mut f, 3);
        r.body = r.body.replacen("sa_3", "sa_4", 1);
        for online in [true, false] {
            let report = run(&f, online);
            fails_at(&report, 3, "edited");
            assert_eq!(report.first_bad.unwrap().id, Some(30));
            assert_eq!(report.records, 2, "records before the problem were checked");
        }
    }

    #[test]
    fn an_edited_column_is_found() {
        let mut f = fixture();
        record_mut(&mut f, 2).action = "token.issue".into();
        fails_at(&run(&f, false), 2, "action column");
        let mut f = fixture();
        record_mut(&mut f, 4).at = Timestamp::from_secs(1);
        fails_at(&run(&f, false), 4, "at column");
        let mut f = fixture();
        record_mut(&mut f, 1).subject = None;
        fails_at(&run(&f, true), 1, "subject column");
        let mut f = fixture();
        record_mut(&mut f, 5).outcome = "failure".into();
        fails_at(&run(&f, true), 5, "outcome column");
    }

    #[test]
    fn a_deleted_middle_or_first_record_is_found() {
        let mut f = fixture();
        f.records.retain(|r| r.seq != 3);
        let report = run(&f, true);
        fails_at(&report, 3, "record 3 is missing");
        assert_eq!(report.first_bad.unwrap().id, None);
        let mut f = fixture();
        f.records.remove(0);
        fails_at(&run(&f, false), 1, "record 1 is missing");
    }

    #[test]
    fn a_truncated_tail_is_found_online() {
        let mut f = fixture();
        f.records.truncate(3);
        fails_at(
            &run(&f, true),
            4,
            "records after 3 are missing (the head says 5)",
        );
        // The head moved back by someone without the audit key: its MAC gives it away.
        let old_mac = f.head.head_mac.clone();
        f.head = head_for(&f, 3, &f.records[2].hash);
        assert!(run(&f, true).ok, "a head made with the key is fine");
        f.head.head_mac = old_mac;
        fails_at(&run(&f, true), 3, "head's MAC");
        assert!(run(&f, false).ok, "offline, the head is not authenticated");
    }

    #[test]
    fn reordered_records_are_found() {
        // Fed out of order.
        let mut f = fixture();
        f.records.swap(1, 2);
        fails_at(&run(&f, false), 2, "record 2 is missing");
        // Rows whose seq columns were swapped (so the store returns them "in order").
        let mut f = fixture();
        f.records.swap(1, 2);
        f.records[1].seq = 2;
        f.records[2].seq = 3;
        fails_at(&run(&f, false), 2, "the body says");
    }

    #[test]
    fn a_rechained_record_is_found_by_its_mac_online_and_by_the_checkpoint_offline() {
        let mut f = fixture();
        // An editor without the audit key changes record 2 and re-chains everything after it,
        // with a key of their own.
        let forger = mac_keys();
        let mut e = event(&f.tenant, 2);
        e.subject = Some("sa_9".into());
        let key = forger.get(1).unwrap();
        let two = chain::seal(&e, SEG, 2, &f.records[0].hash, 1, key, 1).unwrap();
        let rest = seal_chain(&f.tenant, &forger, 3, &two.hash, 3);
        f.records.truncate(1);
        f.records.push(two);
        f.records.extend(rest);
        f.head.head_hash = f.records[4].hash.clone();
        fails_at(&run(&f, true), 2, "MAC");
        fails_at(&run(&f, false), 3, "checkpoint vouches for another hash");
    }

    #[test]
    fn a_forged_checkpoint_signature_is_found() {
        let mut f = fixture();
        let cp = &mut f.checkpoints[0];
        let (signed, _) = cp.jws.rsplit_once('.').unwrap();
        cp.jws = format!("{signed}.{}", warrant_jose::b64::encode([7u8; 64]));
        for online in [true, false] {
            fails_at(&run(&f, online), 3, "does not verify");
        }
    }

    #[test]
    fn a_checkpoint_by_another_tenants_key_is_found() {
        let mut f = fixture();
        let (other, other_public) = signer();
        f.checkpoints = vec![checkpoint(&other, "acme", 3, &f.records[2].hash)];
        fails_at(&run(&f, false), 3, "no published key");
        // Even with that key among the tenant's, another tenant's checkpoint is not this one's.
        f.checkpoints = vec![checkpoint(&other, "other", 3, &f.records[2].hash)];
        let mut v = Verifier::new(
            &f.tenant,
            ISSUER,
            vec![f.public.clone(), other_public],
            None,
        );
        v.begin_segment(&f.head, &f.checkpoints);
        for r in &f.records {
            v.record(r);
        }
        fails_at(&v.finish(), 3, "tenant");
    }

    #[test]
    fn a_checkpoint_problem_is_reported_in_seq_order() {
        let mut f = fixture();
        f.checkpoints
            .push(checkpoint(&f.signer, "acme", 9, &f.records[4].hash));
        record_mut(&mut f, 4).action = "x".into();
        // record 4's column comes before the checkpoint beyond the head (seq 9)
        fails_at(&run(&f, true), 4, "action column");
        let mut f = fixture();
        f.checkpoints = vec![checkpoint(&f.signer, "acme", 2, &f.records[4].hash)];
        fails_at(&run(&f, false), 2, "vouches for another hash");
    }

    #[test]
    fn a_pruned_segment_with_a_vouched_anchor_passes() {
        let mut f = fixture();
        f.head.anchor_seq = 3;
        f.head.anchor_hash = f.records[2].hash.clone();
        f.records.drain(..3);
        for online in [true, false] {
            let report = run(&f, online);
            assert!(report.ok, "{report:?}");
            assert_eq!((report.records, report.unsigned_tail), (2, 2));
        }
    }

    #[test]
    fn an_anchor_without_a_checkpoint_fails() {
        let mut f = fixture();
        f.head.anchor_seq = 3;
        f.head.anchor_hash = f.records[2].hash.clone();
        f.records.drain(..3);
        f.checkpoints.clear();
        fails_at(
            &run(&f, true),
            3,
            "no valid checkpoint vouches for the anchor",
        );
        // Deleting from the start and claiming an anchor that no checkpoint signed.
        let mut f = fixture();
        f.head.anchor_seq = 2;
        f.head.anchor_hash = f.records[1].hash.clone();
        f.records.drain(..2);
        fails_at(&run(&f, false), 2, "anchor");
    }

    #[test]
    fn offline_the_tail_is_counted_but_still_checked() {
        let mut f = fixture();
        f.checkpoints.clear();
        let report = run(&f, false);
        assert!(report.ok);
        assert_eq!(report.unsigned_tail, 5);
        let r = record_mut(&mut f, 5);
        r.body.push(' ');
        fails_at(&run(&f, false), 5, "edited");
    }

    #[test]
    fn segments_are_reported_in_the_order_fed_and_stop_at_the_first_problem() {
        let f = fixture();
        let mut g = fixture();
        record_mut(&mut g, 2).action = "x".into();
        let mut v = Verifier::new(&f.tenant, ISSUER, vec![f.public.clone()], Some(&f.macs));
        v.begin_segment(&f.head, &f.checkpoints);
        for r in &f.records {
            v.record(r);
        }
        assert!(!v.failed());
        let mut h = g.head.clone();
        h.head_mac = chain::head_mac(f.macs.get(1).unwrap(), "acme", SEG, 5, &h.head_hash);
        v.begin_segment(&h, &[]);
        for r in &g.records {
            let mut r = r.clone();
            r.mac = chain::record_mac(f.macs.get(1).unwrap(), &r.hash);
            v.record(&r);
        }
        assert!(v.failed());
        let report = v.finish();
        assert_eq!(report.segments, 2);
        assert_eq!(report.records, 6);
        assert_eq!(report.first_bad.unwrap().seq, 2);
    }
}
