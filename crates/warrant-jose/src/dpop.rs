//! DPoP proofs (RFC 9449): the checks of §4.3 on one proof, and stateless server nonces (§8).
//!
//! A DPoP proof is a JWT the client signs with a key of its own and sends in the `DPoP` header;
//! the key travels in the proof's `jwk` header. The token endpoint binds the access token it
//! issues to that key (`cnf.jkt`, the key's RFC 7638 thumbprint, with `token_type: DPoP`), and
//! a resource server later asks for a fresh proof by the same key over the same request.
//!
//! [`check_proof`] is pure and synchronous: time, the request's method and URL, the nonce rule
//! and the access token are all inputs ([`DpopPolicy`]). What it does *not* do is replay
//! detection: a proof's `jti` is single use, and the caller records it (see [`DpopProof`]).
//!
//! Nonces ([`NonceKey`]) hold no state: a nonce is a 60-second time bucket and its HMAC, so every
//! replica that shares the key issues and accepts the same nonces, and nothing is stored. The
//! price is that a nonce is not single use — it only bounds how long ago a proof could have been
//! made, which is what RFC 9449 §8 asks of it; single use is the `jti`'s job.
//!
//! Times are JWT NumericDates: whole seconds since the Unix epoch, as `i64`.
//! See docs/dpop.md.

use crate::crypto::{HmacKey, constant_time_eq, sha256};
use crate::{EmbeddedError, b64, verify_with_embedded_jwk};
use serde_json::{Map, Value};

/// The JOSE `typ` of a DPoP proof (RFC 9449 §4.2).
pub const PROOF_TYP: &str = "dpop+jwt";

/// How old a proof may be, seconds (its `iat` at most this far in the past).
pub const DEFAULT_MAX_AGE_SECS: i64 = 60;

/// How far in the future a proof's `iat` may be, seconds: the client's clock may run ahead.
pub const DEFAULT_SKEW_SECS: i64 = 10;

/// The largest proof read, bytes. An RSA 4096 proof is about 1.5 KiB; 8 KiB leaves room for
/// large keys without letting a header cost more than it should.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;

/// The longest `jti` accepted, characters (it is stored for replay detection).
pub const MAX_JTI_CHARS: usize = 256;

/// What a proof must match: the request it came with, the time, and the server's nonce and
/// access-token rules.
#[derive(Clone, Copy)]
pub struct DpopPolicy<'a> {
    /// The request's method, compared case-sensitively with `htm` (`"POST"` at the token endpoint).
    pub htm: &'a str,
    /// The request's URL as the server publishes it (`{issuer}/token`), compared with `htu`
    /// after normalisation (RFC 9449 §4.3 step 9).
    pub htu: &'a str,
    /// The current time, NumericDate seconds.
    pub now: i64,
    /// `iat` may be at most this many seconds in the past ([`DEFAULT_MAX_AGE_SECS`]).
    pub max_age_secs: i64,
    /// `iat` may be at most this many seconds in the future ([`DEFAULT_SKEW_SECS`]).
    pub skew_secs: i64,
    /// When set, the proof must carry a `nonce` this accepts (usually
    /// `|n| nonce_key.accepts(n, now_secs)`); when unset, a `nonce` claim is ignored.
    pub expected_nonce: Option<&'a dyn Fn(&str) -> bool>,
    /// The access token the request presents (at a resource server): the proof's `ath` must be
    /// its hash. `None` at the token endpoint, where `ath` is ignored.
    pub access_token: Option<&'a str>,
}

impl<'a> DpopPolicy<'a> {
    /// The token endpoint's policy: `POST` to `htu`, default age and skew, no nonce, no `ath`.
    pub fn token_endpoint(htu: &'a str, now_secs: i64) -> Self {
        Self {
            htm: "POST",
            htu,
            now: now_secs,
            max_age_secs: DEFAULT_MAX_AGE_SECS,
            skew_secs: DEFAULT_SKEW_SECS,
            expected_nonce: None,
            access_token: None,
        }
    }
}

impl std::fmt::Debug for DpopPolicy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopPolicy")
            .field("htm", &self.htm)
            .field("htu", &self.htu)
            .field("now", &self.now)
            .field("max_age_secs", &self.max_age_secs)
            .field("skew_secs", &self.skew_secs)
            .field("nonce_required", &self.expected_nonce.is_some())
            .field("access_token", &self.access_token.map(|_| "<redacted>"))
            .finish()
    }
}

/// A proof that passed every check of [`check_proof`].
///
/// **Replay is the caller's job**: the `jti` must be single use. Record it (with [`Self::jkt`],
/// e.g. as [`Self::replay_key`]) until [`Self::replay_until`] — `iat + max_age + skew` — and
/// refuse a proof whose `jti` is already recorded; after that time the `iat` check refuses the
/// proof anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopProof {
    /// RFC 7638 thumbprint (SHA-256, base64url) of the proof's public key: the token's `cnf.jkt`.
    pub jkt: String,
    pub jti: String,
    /// The proof's `iat`, whole seconds.
    pub iat: i64,
}

impl DpopProof {
    /// Until when the `jti` must be remembered, NumericDate seconds: after it, the proof is too
    /// old to be accepted.
    pub fn replay_until(&self, policy: &DpopPolicy<'_>) -> i64 {
        self.iat
            .saturating_add(policy.max_age_secs)
            .saturating_add(policy.skew_secs)
    }

    /// A fixed-length replay-cache key: base64url(SHA-256(jkt ‖ NUL ‖ jti)). Scoping the `jti` by
    /// key means one client cannot burn another's `jti`, and a 256-character `jti` costs the
    /// store no more than a short one.
    pub fn replay_key(&self) -> String {
        let mut input = Vec::with_capacity(self.jkt.len() + 1 + self.jti.len());
        input.extend_from_slice(self.jkt.as_bytes());
        input.push(0);
        input.extend_from_slice(self.jti.as_bytes());
        b64::encode(sha256(&input))
    }
}

/// Why a proof was refused. [`DpopFailure::error_code`] is the OAuth error to answer with;
/// the `Display` text is safe to send (it never quotes the proof).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopFailure {
    #[error("the DPoP proof is not a single compact JWS with JSON header and claims")]
    Malformed,
    #[error("the DPoP proof's typ is not dpop+jwt")]
    Type,
    #[error("the DPoP proof's alg is not accepted or does not fit its key")]
    Algorithm,
    #[error("the DPoP proof's jwk header is not a usable public key")]
    Key,
    #[error("the DPoP proof's jwk header contains a private key")]
    PrivateKeyInHeader,
    #[error("the DPoP proof's signature does not verify with its jwk")]
    Signature,
    #[error("the DPoP proof's htm does not match the request method")]
    Method,
    #[error("the DPoP proof's htu does not match the request URL")]
    Url,
    #[error("the DPoP proof has no numeric iat")]
    IatMissing,
    #[error("the DPoP proof is too old")]
    Stale,
    #[error("the DPoP proof's iat is in the future")]
    Future,
    #[error("the DPoP proof has no jti")]
    JtiMissing,
    #[error("the DPoP proof's jti is too long")]
    JtiTooLong,
    #[error("a DPoP nonce is required")]
    NonceRequired,
    #[error("the DPoP nonce is not valid or has expired")]
    NonceBad,
    #[error("the DPoP proof's ath does not match the access token")]
    Ath,
}

impl DpopFailure {
    /// A stable label (metrics, audit reasons).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Type => "typ",
            Self::Algorithm => "alg",
            Self::Key => "key",
            Self::PrivateKeyInHeader => "private_key",
            Self::Signature => "signature",
            Self::Method => "htm",
            Self::Url => "htu",
            Self::IatMissing => "iat_missing",
            Self::Stale => "stale",
            Self::Future => "future",
            Self::JtiMissing => "jti_missing",
            Self::JtiTooLong => "jti_too_long",
            Self::NonceRequired => "nonce_required",
            Self::NonceBad => "nonce_bad",
            Self::Ath => "ath",
        }
    }

    /// Whether the answer is `use_dpop_nonce` (RFC 9449 §8: the client should retry with the
    /// nonce in the response's `DPoP-Nonce` header) rather than `invalid_dpop_proof`.
    pub fn wants_nonce(self) -> bool {
        matches!(self, Self::NonceRequired | Self::NonceBad)
    }

    /// The OAuth error code: `use_dpop_nonce` or `invalid_dpop_proof` (RFC 9449 §5, §8, §12.2).
    pub fn error_code(self) -> &'static str {
        if self.wants_nonce() {
            "use_dpop_nonce"
        } else {
            "invalid_dpop_proof"
        }
    }
}

/// Checks one DPoP proof (the value of the single `DPoP` header) against `policy`: RFC 9449
/// §4.3 steps 2 to 12, except replay (see [`DpopProof`]).
pub fn check_proof(proof: &str, policy: &DpopPolicy<'_>) -> Result<DpopProof, DpopFailure> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(DpopFailure::Malformed);
    }
    let verified = verify_with_embedded_jwk(proof).map_err(|e| match e {
        EmbeddedError::Algorithm | EmbeddedError::AlgorithmMismatch => DpopFailure::Algorithm,
        EmbeddedError::Key => DpopFailure::Key,
        EmbeddedError::PrivateKey => DpopFailure::PrivateKeyInHeader,
        EmbeddedError::Signature => DpopFailure::Signature,
        _ => DpopFailure::Malformed,
    })?;
    // The typ is checked after the signature only because the JWS layer reads the header; a
    // proof of the wrong type is refused either way, and no claim has been read yet.
    match verified.header.get("typ").and_then(Value::as_str) {
        Some(t) if is_dpop_typ(t) => {}
        _ => return Err(DpopFailure::Type),
    }
    let jkt = verified.jwk.thumbprint().ok_or(DpopFailure::Key)?;
    let claims = &verified.claims;

    let jti = match claims.get("jti").and_then(Value::as_str) {
        None | Some("") => return Err(DpopFailure::JtiMissing),
        Some(j) if j.chars().count() > MAX_JTI_CHARS => return Err(DpopFailure::JtiTooLong),
        Some(j) => j.to_owned(),
    };
    if str_claim(claims, "htm") != Some(policy.htm) {
        return Err(DpopFailure::Method);
    }
    let htu_matches = match (str_claim(claims, "htu"), normalize_htu(policy.htu)) {
        (Some(sent), Some(expected)) => normalize_htu(sent).as_deref() == Some(&*expected),
        _ => false,
    };
    if !htu_matches {
        return Err(DpopFailure::Url);
    }
    let iat = numeric_date(claims.get("iat")).ok_or(DpopFailure::IatMissing)?;
    let now = policy.now;
    if iat < now.saturating_sub(policy.max_age_secs) {
        return Err(DpopFailure::Stale);
    }
    if iat > now.saturating_add(policy.skew_secs) {
        return Err(DpopFailure::Future);
    }
    if let Some(accepts) = policy.expected_nonce {
        match claims.get("nonce") {
            None => return Err(DpopFailure::NonceRequired),
            Some(Value::String(n)) if accepts(n) => {}
            Some(_) => return Err(DpopFailure::NonceBad),
        }
    }
    if let Some(token) = policy.access_token {
        let expected = b64::encode(sha256(token.as_bytes()));
        match str_claim(claims, "ath") {
            Some(ath) if constant_time_eq(ath.as_bytes(), expected.as_bytes()) => {}
            _ => return Err(DpopFailure::Ath),
        }
    }
    Ok(DpopProof { jkt, jti, iat })
}

/// `dpop+jwt`, compared as a media type: case-insensitively, with or without `application/`
/// (RFC 7515 §4.1.9).
fn is_dpop_typ(typ: &str) -> bool {
    crate::typ_matches(typ, PROOF_TYP)
}

fn str_claim<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c str> {
    claims.get(name).and_then(Value::as_str)
}

/// A JWT NumericDate (RFC 7519 §2): an integer or a finite number, in whole seconds.
fn numeric_date(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let f = v.as_f64()?;
    // i64::MAX as f64 rounds up to 2^63, so compare with a strict bound.
    (f.is_finite() && f.abs() < 9.0e18).then(|| f.floor() as i64)
}

/// The comparable form of an `htu` (RFC 9449 §4.3 step 9, RFC 3986 §6.2.2 and §6.2.3): query
/// and fragment dropped, scheme and host lowercased, the scheme's default port dropped, an empty
/// path made `/`, escaped unreserved characters decoded and other percent-encodings' hex digits
/// uppercased. Only `http` and `https` URLs with no
/// userinfo have one. Dot segments are not resolved: a client has no reason to send them.
pub fn normalize_htu(url: &str) -> Option<String> {
    let url = url.split(['#', '?']).next()?;
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return None;
    }
    // The port follows the last ':' after an IPv6 literal's closing bracket, if any.
    let host_end = authority.rfind(']').map_or(0, |i| i + 1);
    let (host, port) = match authority[host_end..].rfind(':') {
        Some(i) => {
            let (h, p) = authority.split_at(host_end + i);
            (h, &p[1..])
        }
        None => (authority, ""),
    };
    if host.is_empty() {
        return None;
    }
    let port = if port.is_empty() {
        None
    } else if port.bytes().all(|b| b.is_ascii_digit()) {
        Some(port.parse::<u16>().ok()?).filter(|&p| p != default_port)
    } else {
        return None;
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(&scheme);
    out.push_str("://");
    out.push_str(&host.to_ascii_lowercase());
    if let Some(p) = port {
        out.push(':');
        out.push_str(&p.to_string());
    }
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let hex: String = chars.by_ref().take(2).collect();
        match u8::from_str_radix(&hex, 16) {
            // An escaped unreserved character is that character (RFC 3986 §6.2.2.2).
            Ok(b) if hex.len() == 2 && (b.is_ascii_alphanumeric() || b"-._~".contains(&b)) => {
                out.push(char::from(b));
            }
            _ => {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
        }
    }
    Some(out)
}

/// Length of a nonce's time bucket, seconds.
pub const NONCE_BUCKET_SECS: i64 = 60;

/// Server nonces for DPoP (RFC 9449 §8), stateless: `base64url(bucket ‖ HMAC-SHA256(bucket))`
/// where `bucket` is the time divided by [`NONCE_BUCKET_SECS`] (8 bytes, big-endian). A nonce
/// is accepted in its own bucket and the next, so it lives 60 to 120 seconds; replicas that share
/// the key (derived from the master key) accept each other's nonces. Its `Debug` is redacted.
#[derive(Clone)]
pub struct NonceKey(HmacKey);

impl NonceKey {
    /// A key from 32 bytes of key material (HKDF output for this one purpose).
    pub fn new(key: &[u8; 32]) -> Self {
        Self(HmacKey::new(key))
    }

    /// A nonce for the current bucket (`now_secs`: NumericDate seconds).
    pub fn issue(&self, now_secs: i64) -> String {
        self.for_bucket(bucket(now_secs))
    }

    /// Whether `nonce` was issued by this key in the current or the previous bucket.
    pub fn accepts(&self, nonce: &str, now_secs: i64) -> bool {
        // 8 + 32 bytes is 54 base64url characters: anything else is not ours.
        if nonce.len() != 54 {
            return false;
        }
        let Some(raw) = b64::decode(nonce) else {
            return false;
        };
        let Some((b, tag)) = raw.split_first_chunk::<8>() else {
            return false;
        };
        let sent = i64::from_be_bytes(*b);
        let current = bucket(now_secs);
        if sent != current && sent != current.saturating_sub(1) {
            return false;
        }
        constant_time_eq(tag, &self.0.sign(b))
    }

    fn for_bucket(&self, bucket: i64) -> String {
        let b = bucket.to_be_bytes();
        let mut raw = [0u8; 40];
        raw[..8].copy_from_slice(&b);
        raw[8..].copy_from_slice(&self.0.sign(&b));
        b64::encode(raw)
    }
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(<redacted>)")
    }
}

fn bucket(now_secs: i64) -> i64 {
    now_secs.div_euclid(NONCE_BUCKET_SECS)
}

#[cfg(test)]
mod tests;
