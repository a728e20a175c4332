//! The export format: JSON lines, one object per line, each with a `type`.
//!
//! ```text
//! {"type":"header","format":"warrant-audit-export","version":1,"tenant":…,"issuer":…,
//!  "exported_at":RFC 3339,"keys":{"keys":[public JWK…]}}
//! then per segment, in created order:
//! {"type":"segment","segment","created_at","anchor_seq","anchor_hash","head_seq","head_hash"}
//! {"type":"checkpoint","segment","seq","hash","at","jws"}            (each of its checkpoints)
//! {"type":"record","id","segment","seq","at_ms","subject","action","outcome","hash",
//!  "key_version","mac","body"}                                        (its records, by seq)
//! and last:
//! {"type":"end","segments","records","checkpoints"}                   (how many lines of each)
//! ```
//!
//! `keys` holds the public keys of every signing key the tenant ever had — retired and removed
//! ones too — so old checkpoints verify. `body` is the stored body text, byte for byte, as a
//! JSON string (a verifier hashes it as it is; it never re-serialises). A segment's checkpoints
//! come before its records so that a reader can verify in one pass without holding records;
//! a segment's lines stop at the head it had when the export began (a live writer may have
//! added records since). The `end` line says the export is complete: an export cut short is
//! refused rather than verified as if it were whole.
//!
//! Offline verification ([`verify_export`]) trusts the keys in the header: compare their kids
//! with the tenant's JWKS (or a copy kept apart) to know the export was not re-signed.

use std::collections::HashSet;
use std::io::{BufRead, Read as _};

use serde::{Deserialize, Serialize};
use warrant_jose::{JwkSet, PublicKey};

use super::verify::{Verifier, VerifyReport};
use super::{AuditCheckpoint, SegmentHead, StoredAuditRecord, chain};
use crate::ids::TenantName;
use crate::time::Timestamp;

/// The header's `format`.
pub const FORMAT: &str = "warrant-audit-export";
/// The header's `version`.
pub const VERSION: u32 = 1;
/// Longest line read (a record body is far smaller).
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Header(HeaderLine),
    Segment(SegmentLine),
    Checkpoint(CheckpointLine),
    Record(RecordLine),
    End(EndLine),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeaderLine {
    pub format: String,
    pub version: u32,
    pub tenant: String,
    pub issuer: String,
    pub exported_at: String,
    pub keys: JwkSet,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentLine {
    pub segment: String,
    /// RFC 3339 UTC, milliseconds.
    pub created_at: String,
    pub anchor_seq: i64,
    pub anchor_hash: String,
    pub head_seq: i64,
    pub head_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointLine {
    pub segment: String,
    pub seq: i64,
    pub hash: String,
    /// RFC 3339 UTC, milliseconds.
    pub at: String,
    pub jws: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordLine {
    pub id: i64,
    pub segment: String,
    pub seq: i64,
    pub at_ms: i64,
    pub subject: Option<String>,
    pub action: String,
    pub outcome: String,
    pub hash: String,
    pub key_version: u32,
    pub mac: String,
    /// The stored body text, exactly.
    pub body: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndLine {
    pub segments: u64,
    pub records: u64,
    pub checkpoints: u64,
}

impl Line {
    /// The line's JSON text (without the newline).
    pub fn to_text(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    pub fn header(tenant: &TenantName, issuer: &str, exported_at: Timestamp, keys: JwkSet) -> Self {
        Line::Header(HeaderLine {
            format: FORMAT.into(),
            version: VERSION,
            tenant: tenant.as_str().into(),
            issuer: issuer.into(),
            exported_at: exported_at.to_rfc3339(),
            keys,
        })
    }

    pub fn segment(h: &SegmentHead) -> Self {
        Line::Segment(SegmentLine {
            segment: h.segment.clone(),
            created_at: chain::time_text(h.created_at),
            anchor_seq: h.anchor_seq,
            anchor_hash: h.anchor_hash.clone(),
            head_seq: h.head_seq,
            head_hash: h.head_hash.clone(),
        })
    }

    pub fn checkpoint(c: &AuditCheckpoint) -> Self {
        Line::Checkpoint(CheckpointLine {
            segment: c.segment.clone(),
            seq: c.seq,
            hash: c.hash.clone(),
            at: chain::time_text(c.at),
            jws: c.jws.clone(),
        })
    }

    pub fn record(r: &StoredAuditRecord) -> Self {
        Line::Record(RecordLine {
            id: r.id,
            segment: r.segment.clone(),
            seq: r.seq,
            at_ms: r.at.millis(),
            subject: r.subject.clone(),
            action: r.action.clone(),
            outcome: r.outcome.clone(),
            hash: r.hash.clone(),
            key_version: r.key_version,
            mac: r.mac.clone(),
            body: r.body.clone(),
        })
    }
}

/// What an export says about itself, and what verifying it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineReport {
    pub tenant: String,
    pub issuer: String,
    pub exported_at: String,
    /// The kids of the keys the header carries (checkpoints were checked against these).
    pub kids: Vec<String>,
    pub report: VerifyReport,
}

/// An export that cannot be read: not a verification failure (those are in the report), but
/// a file that is not a whole export.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error("line {line}: {message}")]
    Malformed { line: u64, message: String },
    #[error("the export ends at line {line} without its end line (it was cut short)")]
    Truncated { line: u64 },
    #[error("cannot read the export: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads an export line by line and verifies it offline (no MACs: up to each segment's last
/// valid checkpoint, the rest counted as the unsigned tail). Stops at the first problem, which
/// the report names; a malformed line is an error naming its line number.
pub fn verify_export(reader: impl BufRead) -> Result<OfflineReport, ExportError> {
    let mut lines = Lines {
        reader,
        buf: String::new(),
        n: 0,
    };
    let Some((_, Line::Header(header))) = lines.next()? else {
        return Err(malformed(
            1,
            "the export does not start with its header".into(),
        ));
    };
    if header.format != FORMAT || header.version != VERSION {
        return Err(malformed(
            1,
            format!(
                "format {:?} version {} is not {FORMAT:?} version {VERSION}",
                header.format, header.version
            ),
        ));
    }
    let tenant = TenantName::parse(&header.tenant)
        .map_err(|e| malformed(1, format!("tenant {:?}: {e}", header.tenant)))?;
    let mut keys = Vec::with_capacity(header.keys.keys.len());
    let mut kids = Vec::with_capacity(header.keys.keys.len());
    for jwk in &header.keys.keys {
        let kid = jwk.kid.clone().unwrap_or_default();
        keys.push(PublicKey::from_jwk(jwk).map_err(|e| malformed(1, format!("key {kid:?}: {e}")))?);
        kids.push(kid);
    }

    let mut verifier = Verifier::new(&tenant, &header.issuer, keys, None);
    let mut seen = HashSet::new();
    let mut counted = EndLine::default();
    // The current segment and the checkpoints gathered for it before its first record.
    let mut open: Option<(SegmentHead, Vec<AuditCheckpoint>)> = None;
    let mut started = false;
    loop {
        if verifier.failed() {
            break;
        }
        let Some((at, line)) = lines.next()? else {
            return Err(ExportError::Truncated { line: lines.n });
        };
        match line {
            Line::Header(_) => return Err(malformed(at, "a second header".into())),
            Line::Segment(s) => {
                if let Some((head, cps)) = open.take()
                    && !started
                {
                    verifier.begin_segment(&head, &cps);
                }
                if !seen.insert(s.segment.clone()) {
                    return Err(malformed(
                        at,
                        format!("segment {} appears twice", s.segment),
                    ));
                }
                counted.segments += 1;
                let created_at = parse_time(&s.created_at)
                    .ok_or_else(|| malformed(at, "created_at is not an RFC 3339 time".into()))?;
                open = Some((
                    SegmentHead {
                        tenant: tenant.clone(),
                        segment: s.segment,
                        head_seq: s.head_seq,
                        head_hash: s.head_hash,
                        head_mac: String::new(),
                        key_version: 0,
                        anchor_seq: s.anchor_seq,
                        anchor_hash: s.anchor_hash,
                        created_at,
                        updated_at: created_at,
                    },
                    Vec::new(),
                ));
                started = false;
            }
            Line::Checkpoint(c) => {
                counted.checkpoints += 1;
                let Some((_, cps)) = open.as_mut().filter(|_| !started) else {
                    return Err(malformed(
                        at,
                        "a checkpoint must follow its segment line, before the segment's records"
                            .into(),
                    ));
                };
                let when = parse_time(&c.at)
                    .ok_or_else(|| malformed(at, "at is not an RFC 3339 time".into()))?;
                cps.push(AuditCheckpoint {
                    tenant: tenant.clone(),
                    segment: c.segment,
                    seq: c.seq,
                    hash: c.hash,
                    at: when,
                    jws: c.jws,
                });
            }
            Line::Record(r) => {
                counted.records += 1;
                let Some((head, cps)) = open.as_ref() else {
                    return Err(malformed(at, "a record before any segment line".into()));
                };
                if !started {
                    verifier.begin_segment(head, cps);
                    started = true;
                }
                verifier.record(&StoredAuditRecord {
                    id: r.id,
                    tenant: tenant.clone(),
                    segment: r.segment,
                    seq: r.seq,
                    at: Timestamp::from_millis(r.at_ms),
                    subject: r.subject,
                    action: r.action,
                    outcome: r.outcome,
                    body: r.body,
                    hash: r.hash,
                    key_version: r.key_version,
                    mac: r.mac,
                });
            }
            Line::End(end) => {
                if end != counted {
                    return Err(malformed(
                        at,
                        format!(
                            "the end line counts {} segments, {} checkpoints and {} records, \
                             but the export has {}, {} and {}",
                            end.segments,
                            end.checkpoints,
                            end.records,
                            counted.segments,
                            counted.checkpoints,
                            counted.records
                        ),
                    ));
                }
                if let Some((head, cps)) = open.take()
                    && !started
                {
                    verifier.begin_segment(&head, &cps);
                }
                if let Some((extra, _)) = lines.next()? {
                    return Err(malformed(extra, "a line after the end line".into()));
                }
                break;
            }
        }
    }
    Ok(OfflineReport {
        tenant: header.tenant,
        issuer: header.issuer,
        exported_at: header.exported_at,
        kids,
        report: verifier.finish(),
    })
}

/// The export's non-blank lines, parsed, with their numbers.
struct Lines<R> {
    reader: R,
    buf: String,
    n: u64,
}

impl<R: BufRead> Lines<R> {
    fn next(&mut self) -> Result<Option<(u64, Line)>, ExportError> {
        loop {
            self.buf.clear();
            let read = match (&mut self.reader)
                .take(MAX_LINE as u64 + 1)
                .read_line(&mut self.buf)
            {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return Err(malformed(self.n + 1, "not UTF-8 text".into()));
                }
                Err(e) => return Err(e.into()),
            };
            if read == 0 {
                return Ok(None);
            }
            self.n += 1;
            if self.buf.len() > MAX_LINE {
                return Err(malformed(self.n, format!("longer than {MAX_LINE} bytes")));
            }
            let text = self.buf.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            return serde_json::from_str(text)
                .map(|l| Some((self.n, l)))
                .map_err(|e| malformed(self.n, format!("not an export line: {e}")));
        }
    }
}

fn malformed(line: u64, message: String) -> ExportError {
    ExportError::Malformed { line, message }
}

/// RFC 3339 with optional fractional seconds, kept to the millisecond.
fn parse_time(s: &str) -> Option<Timestamp> {
    let whole = Timestamp::parse_rfc3339(s)?;
    let ms = s
        .get(19..)
        .and_then(|rest| rest.strip_prefix('.'))
        .map(|frac| {
            let digits: String = frac
                .chars()
                .take_while(char::is_ascii_digit)
                .take(3)
                .collect();
            format!("{digits:0<3}").parse::<i64>().unwrap_or(0)
        })
        .unwrap_or(0);
    Some(Timestamp::from_millis(whole.millis() + ms))
}

#[cfg(test)]
mod tests {
    use warrant_jose::{Algorithm, JwsSigner, SigningKey};

    use super::*;
    use crate::audit::{AuditEvent, CHECKPOINT_TYP, CheckpointClaims, GENESIS, Outcome, action};
    use crate::keyring::{KeyPurpose, KeyringEntry, MasterKey, VersionedKeys};

    const ISSUER: &str = "https://id.example/t/acme";

    /// An export of two segments: the first checkpointed at its head, the second at record 1
    /// of 3. Returns its lines.
    fn export() -> Vec<String> {
        let tenant = TenantName::parse("acme").unwrap();
        let (master, _) = MasterKey::generate().unwrap();
        let entry =
            KeyringEntry::generate(&master, KeyPurpose::Audit, 1, Timestamp::from_secs(0)).unwrap();
        let macs = VersionedKeys::load_purpose(&master, &[entry], KeyPurpose::Audit).unwrap();
        let key = macs.get(1).unwrap();
        let (sk, _) = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let mut jwks = JwkSet::default();
        jwks.keys.push(sk.public_jwk().clone());
        let signer = JwsSigner::new(sk, CHECKPOINT_TYP).unwrap();
        let mut lines = vec![Line::header(
            &tenant,
            ISSUER,
            Timestamp::from_secs(1_795_000_900),
            jwks,
        )];
        let mut end = EndLine::default();
        for (segment, n, signed) in [("seg_a", 2, 2), ("seg_b", 3, 1)] {
            let mut prev = GENESIS.to_owned();
            let mut records = Vec::new();
            for seq in 1..=n {
                let mut e = AuditEvent::new(
                    tenant.clone(),
                    Timestamp::from_millis(1_795_000_000_007 + seq * 10),
                    "sa_01ADMIN",
                    action::ACCOUNT_UPDATE,
                    Outcome::Success,
                );
                e.detail = Some(serde_json::json!({"note": "quotes \" and \\ and é"}));
                let mut r = chain::seal(&e, segment, seq, &prev, 1, key, 1).unwrap();
                r.id = seq;
                prev.clone_from(&r.hash);
                records.push(r);
            }
            let head = SegmentHead {
                tenant: tenant.clone(),
                segment: segment.into(),
                head_seq: n,
                head_hash: prev.clone(),
                head_mac: "unused".into(),
                key_version: 1,
                anchor_seq: 0,
                anchor_hash: GENESIS.into(),
                created_at: Timestamp::from_millis(1_795_000_000_001),
                updated_at: Timestamp::from_secs(0),
            };
            lines.push(Line::segment(&head));
            let hash = records[signed as usize - 1].hash.clone();
            let claims = CheckpointClaims {
                iss: ISSUER.into(),
                tenant: "acme".into(),
                segment: segment.into(),
                seq: signed,
                hash: hash.clone(),
                iat: 1_795_000_100,
            };
            lines.push(Line::checkpoint(&AuditCheckpoint {
                tenant: tenant.clone(),
                segment: segment.into(),
                seq: signed,
                hash,
                at: Timestamp::from_millis(1_795_000_100_250),
                jws: signer.sign(&serde_json::to_vec(&claims).unwrap()).unwrap(),
            }));
            lines.extend(records.iter().map(Line::record));
            end.segments += 1;
            end.checkpoints += 1;
            end.records += n as u64;
        }
        lines.push(Line::End(end));
        lines.iter().map(|l| l.to_text().unwrap()).collect()
    }

    fn verify(lines: &[String]) -> Result<OfflineReport, ExportError> {
        verify_export(format!("{}\n", lines.join("\n")).as_bytes())
    }

    fn line_no(e: ExportError) -> u64 {
        match e {
            ExportError::Malformed { line, .. } => line,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn an_export_round_trips_and_verifies_offline() {
        let lines = export();
        assert!(lines[0].starts_with(r#"{"type":"header","format":"warrant-audit-export""#));
        assert!(
            lines[2].starts_with(r#"{"type":"checkpoint""#),
            "{}",
            lines[2]
        );
        assert!(lines[3].starts_with(r#"{"type":"record""#));
        let out = verify(&lines).unwrap();
        assert_eq!(out.tenant, "acme");
        assert_eq!(out.issuer, ISSUER);
        assert_eq!(out.kids.len(), 1);
        let r = out.report;
        assert!(r.ok, "{r:?}");
        assert_eq!((r.segments, r.records, r.checkpoints), (2, 5, 2));
        assert_eq!(r.unsigned_tail, 2, "seg_b's records 2 and 3");
        assert!(!r.macs_checked);
        // The body survives as the exact text that was hashed.
        let Line::Record(rec) = serde_json::from_str(&lines[3]).unwrap() else {
            panic!()
        };
        assert_eq!(chain::body_hash(&rec.body), rec.hash);
    }

    #[test]
    fn an_edited_body_fails_naming_the_record() {
        let mut lines = export();
        lines[3] = lines[3].replacen("sa_01ADMIN", "sa_01ADMIM", 1);
        let r = verify(&lines).unwrap().report;
        assert!(!r.ok);
        let bad = r.first_bad.unwrap();
        assert_eq!(
            (bad.segment.as_str(), bad.seq, bad.id),
            ("seg_a", 1, Some(1))
        );
        assert!(bad.problem.contains("edited"), "{bad:?}");
    }

    #[test]
    fn a_dropped_record_line_is_a_missing_record() {
        let mut lines = export();
        lines.remove(8); // seg_b record 2
        let r = verify(&lines).unwrap().report;
        let bad = r.first_bad.unwrap();
        assert_eq!((bad.segment.as_str(), bad.seq), ("seg_b", 2));
        assert!(bad.problem.contains("missing"));
    }

    #[test]
    fn malformed_and_incomplete_exports_are_refused_with_their_line() {
        let lines = export();
        let mut bad = lines.clone();
        bad[4] = "{not json".into();
        assert_eq!(line_no(verify(&bad).unwrap_err()), 5);
        let mut bad = lines.clone();
        bad.swap(2, 3); // a checkpoint after a record of its segment
        assert_eq!(line_no(verify(&bad).unwrap_err()), 4);
        let mut bad = lines.clone();
        bad.remove(0);
        assert_eq!(line_no(verify(&bad).unwrap_err()), 1);
        // Cut short: no end line.
        let cut = &lines[..lines.len() - 1];
        assert!(matches!(
            verify(cut).unwrap_err(),
            ExportError::Truncated { line: 10 }
        ));
        // A whole segment dropped: the end line's counts say so.
        let mut bad = lines.clone();
        bad.drain(1..5);
        assert_eq!(line_no(verify(&bad).unwrap_err()), 7);
        let mut bad = lines.clone();
        bad.push(lines[1].clone());
        assert_eq!(line_no(verify(&bad).unwrap_err()), 12);
        let mut bytes = format!("{}\n{}\n", lines[0], lines[1]).into_bytes();
        bytes.extend_from_slice(b"\xff\xfe\n");
        assert_eq!(line_no(verify_export(bytes.as_slice()).unwrap_err()), 3);
        let mut bad = lines;
        bad[0] = bad[0].replace("\"version\":1", "\"version\":2");
        assert!(verify(&bad).unwrap_err().to_string().contains("version 2"));
    }

    #[test]
    fn a_segment_without_records_is_still_checked() {
        let mut lines = export();
        // seg_b's records dropped (and counted out of the end line): its head says 3.
        lines.drain(7..10);
        let last = lines.len() - 1;
        lines[last] = Line::End(EndLine {
            segments: 2,
            records: 2,
            checkpoints: 2,
        })
        .to_text()
        .unwrap();
        let bad = verify(&lines).unwrap().report.first_bad.unwrap();
        assert_eq!((bad.segment.as_str(), bad.seq), ("seg_b", 1));
        assert!(
            bad.problem.contains("records after 0 are missing"),
            "{bad:?}"
        );
    }

    #[test]
    fn times_keep_their_milliseconds() {
        assert_eq!(
            parse_time("2026-11-26T03:24:19.042Z"),
            Some(Timestamp::from_millis(
                Timestamp::parse_rfc3339("2026-11-26T03:24:19Z")
                    .unwrap()
                    .millis()
                    + 42
            ))
        );
        assert_eq!(
            parse_time("2026-11-26T03:24:19Z"),
            Timestamp::parse_rfc3339("2026-11-26T03:24:19Z")
        );
    }
}
