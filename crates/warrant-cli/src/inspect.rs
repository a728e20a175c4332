//! `warrant token inspect`: explain a token to a human.
//!
//! The token is first decoded **unverified** (`warrant_jose::dangerous`) only to find its `iss`;
//! the verdict comes from verifying it against the keys that issuer publishes (discovery, then
//! `jwks_uri`). Plain `http` issuers are followed only on loopback, so a forged `iss` cannot make
//! this tool fetch from an arbitrary host in cleartext.

use anyhow::Result;
use reqwest::Client;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use warrant_core::Clock as _;
use warrant_jose::{Algorithm, JoseError, JwkSet, PublicKey, dangerous, verify_compact};

use crate::client;
use crate::duration::format_duration;
use crate::globals::Output;
use crate::output;

/// Tolerated clock skew on `nbf` and `iat`, seconds.
const SKEW: i64 = 60;
/// The JOSE `typ` of access tokens (RFC 9068 §2.1).
const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Claims every Warrant access token carries besides `iss` and `exp`.
const REQUIRED: [&str; 4] = ["sub", "aud", "jti", "client_id"];
/// Claims shown first, in this order; the rest follow alphabetically.
const SHOWN_FIRST: [&str; 11] = [
    "iss",
    "sub",
    "aud",
    "client_id",
    "scope",
    "tenant",
    "exp",
    "iat",
    "nbf",
    "jti",
    "act",
];
/// NumericDate claims, shown with their time.
const TIME_CLAIMS: [&str; 4] = ["exp", "iat", "nbf", "auth_time"];

/// The verdict on a token, and what it says (`header`/`claims` are `null` when it does not
/// decode at all).
#[derive(Debug, Serialize)]
pub struct Report {
    pub valid: bool,
    pub error: Option<String>,
    pub header: Option<Map<String, Value>>,
    pub claims: Option<Map<String, Value>>,
    pub issuer: Option<String>,
}

/// The part of a discovery document we read; a foreign issuer may omit other members.
#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

pub async fn inspect(token: &str, http: &Client) -> Report {
    let now = warrant_core::SystemClock.now().secs();
    let mut report = Report {
        valid: false,
        error: None,
        header: None,
        claims: None,
        issuer: None,
    };
    match check(token, http, now, &mut report).await {
        Ok(()) => report.valid = true,
        Err(why) => report.error = Some(why),
    }
    report
}

/// Runs every check; `Err` carries the explanation shown after `valid: no —`.
async fn check(token: &str, http: &Client, now: i64, report: &mut Report) -> Result<(), String> {
    let (header, claims) = dangerous::decode_unverified(token).map_err(|e| e.to_string())?;
    report.header = Some(header.clone());
    report.claims = Some(claims.clone());

    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or("the header has no alg")?;
    Algorithm::parse(alg).map_err(|_| alg_refused(alg))?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .unwrap_or("(none)");

    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or("the token has no iss claim, so there is no issuer whose keys could verify it")?;
    report.issuer = Some(iss.to_string());
    let iss_url = Url::parse(iss).map_err(|_| format!("iss {iss:?} is not a URL"))?;
    may_fetch(&iss_url, "issuer")?;

    let discovery_url = Url::parse(&format!(
        "{}/.well-known/openid-configuration",
        iss.trim_end_matches('/')
    ))
    .map_err(|_| format!("cannot build a discovery URL from iss {iss:?}"))?;
    let meta: Discovery = client::get_json(http, &discovery_url)
        .await
        .map_err(|e| format!("cannot read the issuer's discovery document: {e:#}"))?;
    if meta.issuer != iss {
        return Err(format!(
            "the discovery document at {discovery_url} names the issuer {:?}, not the token's iss \
             {iss:?}",
            meta.issuer
        ));
    }
    let jwks_url = Url::parse(&meta.jwks_uri)
        .map_err(|_| format!("the issuer's jwks_uri {:?} is not a URL", meta.jwks_uri))?;
    may_fetch(&jwks_url, "jwks_uri")?;
    let set: JwkSet = client::get_json(http, &jwks_url)
        .await
        .map_err(|e| format!("cannot read the issuer's JWKS: {e:#}"))?;

    let mut keys = Vec::new();
    let mut unusable = Vec::new();
    for jwk in &set.keys {
        match PublicKey::from_jwk(jwk) {
            Ok(k) => keys.push(k),
            Err(_) => unusable.push(jwk.kid.clone().unwrap_or_default()),
        }
    }

    let verified = verify_compact(token, &keys, Some(ACCESS_TOKEN_TYP))
        .map_err(|e| explain(e, alg, kid, &header, &unusable))?;
    check_claims(&verified.claims, now)
}

/// Only `https`, or `http` to a loopback host (local development).
fn may_fetch(url: &Url, what: &str) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "refusing to fetch keys over plain http from the {what} {url}: http is followed only \
             for loopback hosts (127.0.0.0/8, ::1, localhost)"
        )),
        other => Err(format!(
            "refusing to follow the {what} {url}: scheme {other:?} is not https"
        )),
    }
}

/// Whether the URL's host is 127.0.0.0/8, `::1` or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    url.host_str().is_some_and(warrant_verify::is_loopback_host)
}

fn alg_refused(alg: &str) -> String {
    if alg.eq_ignore_ascii_case("none") {
        "alg none is never accepted".into()
    } else {
        format!(
            "the algorithm {alg:?} is not accepted (Warrant signs with {})",
            Algorithm::ALL.map(Algorithm::as_str).join(", ")
        )
    }
}

/// A verification failure in words an operator can act on.
fn explain(
    error: JoseError,
    alg: &str,
    kid: &str,
    header: &Map<String, Value>,
    unusable: &[String],
) -> String {
    match error {
        JoseError::UnknownKey(k) if unusable.contains(&k) => {
            format!("the issuer's key kid={k} is of a type or algorithm this tool cannot verify")
        }
        JoseError::UnknownKey(k) => {
            format!("no key kid={k} in the issuer's JWKS (rotated or a foreign token)")
        }
        JoseError::BadSignature => {
            format!("the signature does not verify with the issuer's key kid={kid}")
        }
        JoseError::AlgorithmNotAllowed(a) => alg_refused(&a),
        JoseError::AlgorithmMismatch => format!(
            "the header says alg {alg} but the issuer's key kid={kid} is for another algorithm"
        ),
        JoseError::WrongType { expected } => match header.get("typ").and_then(Value::as_str) {
            Some(t) => format!("the token's typ is {t:?}, not {expected} (not an access token?)"),
            None => format!("the token has no typ; access tokens carry typ {expected}"),
        },
        JoseError::BadHeader if !header.contains_key("kid") => {
            "the header has no kid, so no published key can be chosen".into()
        }
        other => other.to_string(),
    }
}

/// Time and presence checks on verified claims; every problem found is reported.
fn check_claims(claims: &Map<String, Value>, now: i64) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut time = |name: &str| -> Option<i64> {
        match claims.get(name) {
            None => None,
            Some(v) => match v.as_i64().or_else(|| v.as_f64().map(|f| f.floor() as i64)) {
                Some(t) => Some(t),
                None => {
                    problems.push(format!("{name} is not a number"));
                    None
                }
            },
        }
    };
    let exp = time("exp");
    let nbf = time("nbf");
    let iat = time("iat");
    let has_exp = claims.contains_key("exp");
    match exp {
        Some(exp) if now >= exp => problems.push(format!(
            "the token expired {} ago",
            format_duration(now.abs_diff(exp))
        )),
        None if !has_exp => problems.push("the token has no exp claim".into()),
        _ => {}
    }
    if let Some(nbf) = nbf
        && nbf > now + SKEW
    {
        problems.push(format!(
            "the token is not valid before {} ({} from now)",
            output::unix_to_rfc3339(nbf),
            format_duration(nbf.abs_diff(now))
        ));
    }
    if let Some(iat) = iat
        && iat > now + SKEW
    {
        problems.push(format!(
            "the token was issued {} in the future (iat); check the clocks",
            format_duration(iat.abs_diff(now))
        ));
    }
    let missing: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|c| !claims.contains_key(*c))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("the token lacks the claims {}", missing.join(", ")));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

pub fn print(report: &Report, out: Output) -> Result<()> {
    if out == Output::Json {
        return output::json(report);
    }
    let now = warrant_core::SystemClock.now().secs();
    if let Some(header) = &report.header {
        output::line("header:")?;
        for (k, v) in header {
            output::line(&format!("  {k}: {}", show(v)))?;
        }
    }
    if let Some(claims) = &report.claims {
        output::line("claims:")?;
        let mut names: Vec<&String> = claims.keys().collect();
        names.sort_by_key(|n| {
            (
                SHOWN_FIRST
                    .iter()
                    .position(|f| f == n)
                    .unwrap_or(SHOWN_FIRST.len()),
                n.as_str(),
            )
        });
        for name in names {
            let Some(v) = claims.get(name) else { continue };
            let mut text = show(v);
            if TIME_CLAIMS.contains(&name.as_str())
                && let Some(t) = v.as_i64()
            {
                let rel = if t == now {
                    "now".to_string()
                } else if t > now {
                    format!("in {}", format_duration(t.abs_diff(now)))
                } else {
                    format!("{} ago", format_duration(t.abs_diff(now)))
                };
                text = format!("{text} ({}, {rel})", output::unix_to_rfc3339(t));
            }
            output::line(&format!("  {name}: {text}"))?;
        }
    }
    if let Some(iss) = &report.issuer {
        output::line(&format!("issuer: {iss}"))?;
    }
    match (&report.valid, &report.error) {
        (true, _) => output::line("valid: yes"),
        (false, Some(why)) => output::line(&format!("valid: no — {why}")),
        (false, None) => output::line("valid: no"),
    }
}

/// A JSON value for a line: strings bare, everything else as compact JSON.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn loopback_hosts_only_for_http() {
        let ok = |u: &str| may_fetch(&Url::parse(u).unwrap(), "issuer").is_ok();
        assert!(ok("https://id.example.com/t/x"));
        assert!(ok("http://127.0.0.1:8080/t/x"));
        assert!(ok("http://127.9.9.9/t/x"));
        assert!(ok("http://[::1]:8080/t/x"));
        assert!(ok("http://localhost:8080/t/x"));
        assert!(!ok("http://id.example.com/t/x"));
        assert!(!ok("http://10.0.0.1/t/x"));
        assert!(!ok("http://localhost.example.com/"));
        assert!(!ok("ftp://127.0.0.1/"));
        assert!(!ok("file:///etc/passwd"));
    }

    #[test]
    fn claims_checks_explain_each_problem() {
        let now = 1_000_000;
        let good = claims(serde_json::json!({
            "iss": "x", "sub": "s", "aud": "a", "jti": "j", "client_id": "c",
            "exp": now + 300, "iat": now, "nbf": now
        }));
        assert!(check_claims(&good, now).is_ok());

        let mut expired = good.clone();
        expired.insert("exp".into(), (now - 300).into());
        assert_eq!(
            check_claims(&expired, now).unwrap_err(),
            "the token expired 5m ago"
        );

        let mut early = good.clone();
        early.insert("nbf".into(), (now + 61).into());
        assert!(
            check_claims(&early, now)
                .unwrap_err()
                .contains("not valid before")
        );
        early.insert("nbf".into(), (now + 60).into());
        assert!(
            check_claims(&early, now).is_ok(),
            "60 s of skew is tolerated"
        );

        let mut future = good.clone();
        future.insert("iat".into(), (now + 3600).into());
        assert!(
            check_claims(&future, now)
                .unwrap_err()
                .contains("in the future")
        );

        let mut bare = good.clone();
        bare.remove("jti");
        bare.remove("client_id");
        bare.remove("exp");
        let why = check_claims(&bare, now).unwrap_err();
        assert!(why.contains("no exp"), "{why}");
        assert!(why.contains("jti, client_id"), "{why}");
    }

    #[test]
    fn failures_are_explained() {
        let h = claims(serde_json::json!({"alg": "ES256", "kid": "k1", "typ": "JWT"}));
        assert_eq!(
            explain(JoseError::UnknownKey("k1".into()), "ES256", "k1", &h, &[]),
            "no key kid=k1 in the issuer's JWKS (rotated or a foreign token)"
        );
        assert!(explain(JoseError::BadSignature, "ES256", "k1", &h, &[]).contains("kid=k1"));
        assert!(
            explain(
                JoseError::WrongType { expected: "at+jwt" },
                "ES256",
                "k1",
                &h,
                &[]
            )
            .contains("\"JWT\"")
        );
        assert_eq!(alg_refused("none"), "alg none is never accepted");
    }
}
