//! Whether a verified external token satisfies a trust ([`evaluate`]), and why each of several
//! trusts does or does not ([`explain`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::conditions::shown;
use super::policy::{CLOCK_SKEW_SECONDS, TrustPolicy};
use super::{Mismatch, MismatchClass};

/// A copied claim whose JSON is longer than this is left out of `federated`: copied claims
/// end up in every issued token, and the external issuer decides their size.
pub const MAX_COPIED_BYTES: usize = 1024;
/// The longest `jti` a single-use trust accepts (it is stored until the token expires).
pub const MAX_JTI_BYTES: usize = 256;

/// What an external token that satisfies a trust brings to the grant layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Federated {
    /// The external token's `sub`.
    pub subject: String,
    /// Set exactly when the trust is single-use: the grant layer must record it (keyed by the
    /// trust's issuer and this value) until [`Federated::accepted_until`] and refuse a second
    /// presentation with [`MismatchClass::Replay`]. After that the token is refused as expired
    /// or too old anyway, so the record can go.
    pub jti: Option<String>,
    /// The trust's `copy_claims` that the token has, at the same paths, to be placed under
    /// the issued token's `federated` claim. Missing claims, and claims whose JSON exceeds
    /// [`MAX_COPIED_BYTES`], are left out.
    pub copied: Map<String, Value>,
    /// The external token's `exp`. The issued token's lifetime is *not* derived from it: it is
    /// `min(account lifetime, max_lifetime_seconds)` ([`TrustPolicy::lifetime`]).
    pub expires_at: i64,
    /// The last second this trust would accept the token again: its `exp`, or sooner when
    /// `iat` + `max_age_seconds` comes first (the token is "too old" after that). A single-use
    /// record need not outlive it (plus the clock skew).
    #[serde(default)]
    pub accepted_until: i64,
}

/// For `warrant trust test`: one trust's answer to a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustVerdict {
    /// The trust's id or name, as the caller gave it.
    pub trust: String,
    /// Set when the token satisfies the trust.
    pub federated: Option<Federated>,
    /// Every check that failed, with its detail, in the order [`evaluate`] makes them; empty
    /// when the token matches.
    pub failures: Vec<Mismatch>,
}

impl TrustVerdict {
    pub fn matched(&self) -> bool {
        self.federated.is_some()
    }
}

/// Whether `claims` — of a token whose signature the caller has **already verified** with
/// the trust's keys — satisfy `policy` at `now` (Unix seconds).
///
/// In order: `iss` equals the trust's issuer exactly; `aud` (a string or an array) contains
/// its audience; `exp` is present and after `now`; `nbf`, if present, and `iat` are at most
/// [`CLOCK_SKEW_SECONDS`] in the future; `iat` is present and at most `max_age_seconds` old;
/// a single-use trust has a `jti`; every condition holds; `sub` is a non-empty string. The
/// first failure is returned. Numeric dates may be integers or fractions (RFC 7519 §2).
pub fn evaluate(
    policy: &TrustPolicy,
    claims: &Map<String, Value>,
    now: i64,
) -> Result<Federated, Mismatch> {
    run(policy, claims, now, false).map_err(|mut f| f.swap_remove(0))
}

/// Each trust's verdict on one token, for an admin: the matching trusts, and for the others
/// every failed check — all unmet conditions, not only the first — except that a token of
/// another issuer is reported only as that, its conditions being beside the point. Replay is
/// not checked: no `jti` is consulted or recorded. The caller verifies the signature first,
/// against each trust's keys, and should not list trusts whose keys rejected it as matching.
pub fn explain(
    policies: &[(String, TrustPolicy)],
    claims: &Map<String, Value>,
    now: i64,
) -> Vec<TrustVerdict> {
    policies
        .iter()
        .map(|(trust, policy)| explain_one(trust, policy, claims, now))
        .collect()
}

/// [`explain`] for one trust, named `trust`.
pub fn explain_one(
    trust: &str,
    policy: &TrustPolicy,
    claims: &Map<String, Value>,
    now: i64,
) -> TrustVerdict {
    match run(policy, claims, now, true) {
        Ok(f) => TrustVerdict {
            trust: trust.to_owned(),
            federated: Some(f),
            failures: Vec::new(),
        },
        Err(failures) => TrustVerdict {
            trust: trust.to_owned(),
            federated: None,
            failures,
        },
    }
}

/// The checks; with `all`, every failure after the issuer's, else only the first.
/// On error the vector is never empty.
fn run(
    policy: &TrustPolicy,
    claims: &Map<String, Value>,
    now: i64,
    all: bool,
) -> Result<Federated, Vec<Mismatch>> {
    let mut failed: Vec<Mismatch> = Vec::new();
    let mut fail = |class, detail: String| {
        failed.push(Mismatch::new(class, detail));
        !all
    };
    let stop = |failed: Vec<Mismatch>| Err(failed);

    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == policy.issuer => {}
        got => {
            let got = got.map_or_else(|| "nothing".into(), shown);
            fail(
                MismatchClass::Issuer,
                format!(
                    "iss: expected {}, got {got}",
                    Value::from(policy.issuer.as_str())
                ),
            );
            return stop(failed);
        }
    }

    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == policy.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&policy.audience)),
        _ => false,
    };
    if !aud_ok {
        let got = claims.get("aud").map_or_else(|| "nothing".into(), shown);
        let want = Value::from(policy.audience.as_str());
        if fail(
            MismatchClass::Audience,
            format!("aud: expected to contain {want}, got {got}"),
        ) {
            return stop(failed);
        }
    }

    let exp = numeric(claims.get("exp"));
    match exp {
        Some(exp) if exp > now => {}
        Some(exp) => {
            if fail(
                MismatchClass::Expired,
                format!("exp: {exp} is not after now ({now})"),
            ) {
                return stop(failed);
            }
        }
        None => {
            if fail(
                MismatchClass::Expired,
                "exp: missing or not a number".into(),
            ) {
                return stop(failed);
            }
        }
    }

    if let Some(nbf) = claims.get("nbf") {
        let detail = match numeric(Some(nbf)) {
            Some(nbf) if nbf <= now.saturating_add(CLOCK_SKEW_SECONDS) => None,
            Some(nbf) => Some(format!(
                "nbf: {nbf} is more than {CLOCK_SKEW_SECONDS} s after now ({now})"
            )),
            None => Some("nbf: not a number".into()),
        };
        if let Some(d) = detail
            && fail(MismatchClass::NotYetValid, d)
        {
            return stop(failed);
        }
    }

    let max_age = i64::try_from(policy.max_age_seconds).unwrap_or(i64::MAX);
    let iat_failure = match numeric(claims.get("iat")) {
        None => Some((
            MismatchClass::TooOld,
            "iat: missing or not a number, so the token's age is unknown".to_owned(),
        )),
        Some(iat) if iat > now.saturating_add(CLOCK_SKEW_SECONDS) => Some((
            MismatchClass::NotYetValid,
            format!("iat: {iat} is more than {CLOCK_SKEW_SECONDS} s after now ({now})"),
        )),
        Some(iat) if now.saturating_sub(iat) > max_age => Some((
            MismatchClass::TooOld,
            format!(
                "iat: issued {} s ago, at most {max_age} s allowed",
                now.saturating_sub(iat)
            ),
        )),
        Some(_) => None,
    };
    if let Some((class, detail)) = iat_failure
        && fail(class, detail)
    {
        return stop(failed);
    }

    let jti = if policy.single_use {
        match claims.get("jti") {
            Some(Value::String(j)) if !j.is_empty() && j.len() <= MAX_JTI_BYTES => Some(j.clone()),
            got => {
                let why = match got {
                    None => "missing".to_owned(),
                    Some(Value::String(_)) => format!("empty or over {MAX_JTI_BYTES} bytes"),
                    Some(_) => "not a string".to_owned(),
                };
                if fail(
                    MismatchClass::MissingJti,
                    format!("jti: {why}, and the trust is single-use"),
                ) {
                    return stop(failed);
                }
                None
            }
        }
    } else {
        None
    };

    if policy.conditions.is_empty()
        && fail(
            MismatchClass::Condition,
            "the trust has no conditions, so it matches nothing".into(),
        )
    {
        // A validated trust always has one; this keeps an unvalidated one from matching all.
        return stop(failed);
    }
    for c in &policy.conditions {
        if let Err(detail) = c.test(claims)
            && fail(MismatchClass::Condition, detail)
        {
            return stop(failed);
        }
    }

    let subject = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            fail(
                MismatchClass::Condition,
                "sub: missing, empty or not a string".into(),
            );
            return stop(failed);
        }
    };

    if !failed.is_empty() {
        return stop(failed);
    }
    let mut copied = Map::new();
    for path in &policy.copy_claims {
        if let Some(v) = path.lookup(claims)
            && serde_json::to_string(v).is_ok_and(|s| s.len() <= MAX_COPIED_BYTES)
        {
            path.insert(&mut copied, v.clone());
        }
    }
    // Checked above: a token without a numeric exp has failed.
    let expires_at = exp.unwrap_or(now);
    let accepted_until = numeric(claims.get("iat")).map_or(expires_at, |iat| {
        iat.saturating_add(max_age).min(expires_at)
    });
    Ok(Federated {
        subject,
        jti,
        copied,
        expires_at,
        accepted_until,
    })
}

/// A NumericDate (RFC 7519 §2): an integer, or a fraction rounded down.
fn numeric(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite())
            .map(|f| f.floor() as i64)
    })
}
