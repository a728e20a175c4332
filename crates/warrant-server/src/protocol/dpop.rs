//! The HTTP side of DPoP (RFC 9449): the `DPoP` request header, the `invalid_dpop_proof` and
//! `use_dpop_nonce` answers, and the `DPoP-Nonce` response header. The proof's checks are in
//! `warrant_jose::dpop` (re-exported as `warrant_core::dpop`); replay (single-use `jti`) is
//! recorded by the caller through the store.
//!
//! A proof is never logged, not even in part: it is a bearer of the client's key binding for
//! as long as it is fresh.

use axum::http::{HeaderName, HeaderValue, StatusCode, request::Parts};
use axum::response::Response;
use warrant_core::Timestamp;
use warrant_core::dpop::{
    DpopFailure, DpopPolicy, DpopProof, MAX_PROOF_BYTES, NonceKey, check_proof,
};

use crate::error::OAuthError;

/// The request header that carries a proof (RFC 9449 §4.1).
pub(crate) const DPOP: HeaderName = HeaderName::from_static("dpop");

/// The response header that carries a server nonce (RFC 9449 §8.1).
pub(crate) const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// Reads and checks the request's DPoP proof for an endpoint whose public URL is `htu` (at the
/// token endpoint, `{issuer}/token`); the method is the request's own.
///
/// `Ok(None)` when there is no `DPoP` header: whether that is allowed (an account that requires
/// DPoP) is the caller's decision. More than one `DPoP` header, a value that is not visible
/// ASCII or longer than 8 KiB, or a proof that fails a check is `invalid_dpop_proof` (400). When
/// `nonce` is given (nonces are required), the proof must carry a nonce from it, and a
/// missing or expired one is `use_dpop_nonce` (400) with a fresh `DPoP-Nonce` header — as is
/// every refusal then, so the client's retry needs no extra round trip.
///
/// On success the caller must record [`DpopProof::replay_key`] until
/// [`DpopProof::replay_until`] (see [`policy`]) and refuse a proof already recorded.
pub(crate) fn dpop_proof(
    parts: &Parts,
    htu: &str,
    now: Timestamp,
    nonce: Option<&NonceKey>,
) -> Result<Option<DpopProof>, OAuthError> {
    let mut values = parts.headers.get_all(DPOP).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(refusal(
            DpopFailure::Malformed,
            "more than one DPoP header",
            nonce,
            now,
        ));
    }
    if value.len() > MAX_PROOF_BYTES {
        return Err(refusal(
            DpopFailure::Malformed,
            "the DPoP proof is too large",
            nonce,
            now,
        ));
    }
    let Ok(proof) = value.to_str() else {
        return Err(refusal(
            DpopFailure::Malformed,
            "the DPoP header is not ASCII",
            nonce,
            now,
        ));
    };
    let accepts = |n: &str| nonce.is_some_and(|k| k.accepts(n, now.secs()));
    let mut policy = policy(parts.method.as_str(), htu, now);
    if nonce.is_some() {
        policy.expected_nonce = Some(&accepts);
    }
    match check_proof(proof, &policy) {
        Ok(p) => Ok(Some(p)),
        Err(failure) => {
            tracing::debug!(reason = failure.as_str(), "DPoP proof refused");
            Err(refusal(failure, &failure.to_string(), nonce, now))
        }
    }
}

/// A token request's checked DPoP proof, as issuance takes it.
pub(crate) struct TokenProof {
    pub(crate) jkt: String,
    pub(crate) replay_key: String,
    pub(crate) until: Timestamp,
}

/// [`dpop_proof`] at the token endpoint of `issuer`: `Ok(None)` at once when the request has
/// no `DPoP` header (the common case allocates nothing), else the checked proof with its
/// replay key and how long that key must be kept.
pub(crate) fn token_endpoint_proof(
    parts: &Parts,
    issuer: &str,
    now: Timestamp,
    nonce: Option<&NonceKey>,
) -> Result<Option<TokenProof>, OAuthError> {
    if !parts.headers.contains_key(DPOP) {
        return Ok(None);
    }
    let htu = format!("{issuer}/token");
    let Some(proof) = dpop_proof(parts, &htu, now, nonce)? else {
        return Ok(None);
    };
    Ok(Some(TokenProof {
        replay_key: proof.replay_key(),
        until: Timestamp::from_secs(proof.replay_until(&policy(parts.method.as_str(), &htu, now))),
        jkt: proof.jkt,
    }))
}

/// The policy [`dpop_proof`] checks with (before its nonce rule): `method` to `htu` at `now`,
/// the default age and skew, no `ath`. The caller passes the same to
/// [`DpopProof::replay_until`].
pub(crate) fn policy<'a>(method: &'a str, htu: &'a str, now: Timestamp) -> DpopPolicy<'a> {
    DpopPolicy {
        htm: method,
        ..DpopPolicy::token_endpoint(htu, now.secs())
    }
}

/// The OAuth error for a refused proof; with a fresh nonce when nonces are in use.
fn refusal(
    failure: DpopFailure,
    description: &str,
    nonce: Option<&NonceKey>,
    now: Timestamp,
) -> OAuthError {
    let mut e = OAuthError::new(StatusCode::BAD_REQUEST, failure.error_code(), description);
    e.dpop_nonce = nonce.map(|k| k.issue(now.secs()));
    e
}

/// Adds a fresh `DPoP-Nonce` to a successful response (RFC 9449 §8.2: the server may rotate the
/// nonce on any response), so a client never needs an error to learn the next one.
pub(crate) fn attach_nonce(resp: &mut Response, nonce: &NonceKey, now: Timestamp) {
    if let Ok(v) = HeaderValue::from_str(&nonce.issue(now.secs())) {
        resp.headers_mut().insert(DPOP_NONCE, v);
    }
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;
    use serde_json::{Value, json};
    use warrant_jose::{Algorithm, SigningKey, sign_with_embedded_jwk};

    use super::*;

    const HTU: &str = "https://id.example.com/t/acme/token";
    const NOW: i64 = 1_790_000_000;

    fn now() -> Timestamp {
        Timestamp::from_secs(NOW)
    }

    fn proof(key: &SigningKey, nonce: Option<&str>) -> String {
        let mut claims = json!({ "jti": "j1", "htm": "POST", "htu": HTU, "iat": NOW });
        if let Some(n) = nonce {
            claims["nonce"] = n.into();
        }
        sign_with_embedded_jwk(key, "dpop+jwt", claims.to_string().as_bytes()).unwrap()
    }

    fn parts(proofs: &[&str]) -> Parts {
        let mut b = axum::http::Request::builder()
            .method("POST")
            .uri("/t/acme/token");
        for p in proofs {
            b = b.header("DPoP", *p);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn key() -> SigningKey {
        SigningKey::generate(Algorithm::Es256).unwrap().0
    }

    async fn answer(e: OAuthError) -> (StatusCode, Option<String>, Value) {
        let resp = e.into_response();
        let status = resp.status();
        let nonce = resp
            .headers()
            .get(DPOP_NONCE)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        (status, nonce, serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn no_header_is_no_proof() {
        assert_eq!(dpop_proof(&parts(&[]), HTU, now(), None).unwrap(), None);
    }

    #[test]
    fn a_good_proof_gives_its_thumbprint() {
        let k = key();
        let p = dpop_proof(&parts(&[&proof(&k, None)]), HTU, now(), None)
            .unwrap()
            .unwrap();
        assert_eq!(p.jkt, k.kid());
        assert_eq!(p.jti, "j1");
        assert_eq!(p.replay_until(&policy("POST", HTU, now())), NOW + 70);
    }

    #[tokio::test]
    async fn two_headers_are_invalid() {
        let k = key();
        let one = proof(&k, None);
        let e = dpop_proof(&parts(&[&one, &one]), HTU, now(), None).unwrap_err();
        let (status, nonce, body) = answer(e).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(nonce, None);
        assert_eq!(body["error"], "invalid_dpop_proof");
    }

    #[test]
    fn oversized_and_bad_values_are_invalid() {
        let big = "a".repeat(MAX_PROOF_BYTES + 1);
        for bad in [big.as_str(), "", "not a proof"] {
            let e = dpop_proof(&parts(&[bad]), HTU, now(), None).unwrap_err();
            assert_eq!(e.code, "invalid_dpop_proof");
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
        let mut p = parts(&[]);
        p.headers
            .insert(DPOP, HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        let e = dpop_proof(&p, HTU, now(), None).unwrap_err();
        assert_eq!(e.code, "invalid_dpop_proof");
    }

    #[test]
    fn the_method_and_url_are_the_requests() {
        let k = key();
        let e = dpop_proof(
            &parts(&[&proof(&k, None)]),
            "https://id.example.com/t/other/token",
            now(),
            None,
        )
        .unwrap_err();
        assert_eq!(e.code, "invalid_dpop_proof");
        let mut get = parts(&[&proof(&k, None)]);
        get.method = axum::http::Method::GET;
        let e = dpop_proof(&get, HTU, now(), None).unwrap_err();
        assert_eq!(e.description, DpopFailure::Method.to_string());
    }

    #[tokio::test]
    async fn nonces_are_asked_for_and_accepted() {
        let nonces = NonceKey::new(&[3u8; 32]);
        let k = key();
        // required, missing: use_dpop_nonce with a nonce to retry with
        let e = dpop_proof(&parts(&[&proof(&k, None)]), HTU, now(), Some(&nonces)).unwrap_err();
        let (status, nonce, body) = answer(e).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "use_dpop_nonce");
        let nonce = nonce.expect("a DPoP-Nonce header");
        // the retry with it passes
        let retry = parts(&[&proof(&k, Some(&nonce))]);
        assert!(
            dpop_proof(&retry, HTU, now(), Some(&nonces))
                .unwrap()
                .is_some()
        );
        // an expired nonce (issued three minutes ago) in a fresh proof: use_dpop_nonce again,
        // with the current nonce
        let old = nonces.issue(NOW - 180);
        let stale = parts(&[&proof(&k, Some(&old))]);
        let e = dpop_proof(&stale, HTU, now(), Some(&nonces)).unwrap_err();
        assert_eq!(e.code, "use_dpop_nonce");
        assert_eq!(e.dpop_nonce, Some(nonces.issue(NOW)));
        // other refusals carry a nonce too when nonces are in use, but keep their code
        let e = dpop_proof(&parts(&["x.y.z"]), HTU, now(), Some(&nonces)).unwrap_err();
        assert_eq!(e.code, "invalid_dpop_proof");
        assert!(e.dpop_nonce.is_some());
        // not required: no nonce asked for, none sent back
        let ok = dpop_proof(&parts(&[&proof(&k, None)]), HTU, now(), None);
        assert!(ok.unwrap().is_some());
        let e = dpop_proof(&parts(&["x.y.z"]), HTU, now(), None).unwrap_err();
        assert!(e.dpop_nonce.is_none());
    }

    #[test]
    fn successful_responses_carry_a_nonce() {
        let nonces = NonceKey::new(&[3u8; 32]);
        let mut resp = StatusCode::OK.into_response();
        attach_nonce(&mut resp, &nonces, now());
        let sent = resp.headers()[DPOP_NONCE].to_str().unwrap();
        assert!(nonces.accepts(sent, NOW));
    }
}
