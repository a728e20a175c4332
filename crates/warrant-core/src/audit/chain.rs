//! The chain arithmetic, shared by the writer and the verifier.

use warrant_jose::crypto::{self, HmacKey};

use super::{AuditEvent, RecordBody, StoredAuditRecord};

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses 64 lowercase hex digits.
pub fn unhex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nib(b[2 * i])? << 4) | nib(b[2 * i + 1])?;
    }
    Some(out)
}

/// The hash of a body text: lowercase hex SHA-256 of its bytes.
pub fn body_hash(body: &str) -> String {
    hex(&crypto::sha256(body.as_bytes()))
}

/// The MAC of a record: HMAC-SHA256 of the hash's 32 bytes, unpadded base64url.
pub fn record_mac(key: &HmacKey, hash: &str) -> String {
    let raw = unhex32(hash).unwrap_or([0; 32]);
    warrant_jose::b64::encode(key.sign(&raw))
}

/// What a segment head's MAC covers: `tenant`, `segment`, `head_seq`, `head_hash`, joined by
/// newlines (none of them can contain one).
pub fn head_mac_input(tenant: &str, segment: &str, seq: i64, hash: &str) -> String {
    format!("warrant-audit-head\n{tenant}\n{segment}\n{seq}\n{hash}")
}

pub fn head_mac(key: &HmacKey, tenant: &str, segment: &str, seq: i64, hash: &str) -> String {
    warrant_jose::b64::encode(key.sign(head_mac_input(tenant, segment, seq, hash).as_bytes()))
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-26T03:24:19.042Z`.
pub fn time_text(at: crate::Timestamp) -> String {
    let secs = at.to_rfc3339();
    let ms = at.millis().rem_euclid(1000);
    match secs.strip_suffix('Z') {
        Some(s) => format!("{s}.{ms:03}Z"),
        None => secs,
    }
}

/// The next record of a segment: body text, hash and MAC.
pub fn seal(
    event: &AuditEvent,
    segment: &str,
    seq: i64,
    prev: &str,
    count: u64,
    key: &HmacKey,
    key_version: u32,
) -> Result<StoredAuditRecord, serde_json::Error> {
    let body = RecordBody {
        v: 1,
        tenant: event.tenant.as_str().to_owned(),
        segment: segment.to_owned(),
        seq,
        prev: prev.to_owned(),
        time: time_text(event.at),
        actor: event.actor.clone(),
        subject: event.subject.clone(),
        action: event.action.to_owned(),
        outcome: event.outcome,
        reason: event.reason.clone(),
        jti: event.jti.clone(),
        scopes: event.scopes.clone(),
        audience: event.audience.clone(),
        client_addr: event.client_addr.clone(),
        auth_method: event.auth_method.clone(),
        count,
        detail: event.detail.clone(),
    };
    let text = serde_json::to_string(&body)?;
    let hash = body_hash(&text);
    Ok(StoredAuditRecord {
        id: 0,
        tenant: event.tenant.clone(),
        segment: segment.to_owned(),
        seq,
        at: event.at,
        subject: event.subject.clone(),
        action: event.action.to_owned(),
        outcome: event.outcome.as_str().to_owned(),
        mac: record_mac(key, &hash),
        hash,
        key_version,
        body: text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let h = crypto::sha256(b"abc");
        assert_eq!(unhex32(&hex(&h)), Some(h));
        assert_eq!(
            hex(&h),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(unhex32("zz"), None);
    }

    #[test]
    fn time_text_has_milliseconds() {
        assert_eq!(
            time_text(crate::Timestamp::from_millis(1_700_000_000_042)),
            "2023-11-14T22:13:20.042Z"
        );
    }
}
