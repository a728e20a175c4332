//! The verifier against chains built with `chain::seal` and then corrupted.

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
