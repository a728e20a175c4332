//! The DPoP proof validator and nonces, one test per check (RFC 9449 §4.3, §8).
use crate::{Algorithm, SigningKey, sign_with_embedded_jwk};
use serde_json::json;

use super::*;

const HTU: &str = "https://id.example.com/t/acme/token";
const NOW: i64 = 1_790_000_000;

fn key(alg: Algorithm) -> SigningKey {
    SigningKey::generate(alg).unwrap().0
}

fn claims() -> Value {
    json!({ "jti": "e1j3V_bKic8-LAEB", "htm": "POST", "htu": HTU, "iat": NOW })
}

/// `claims()` with `name` set to `value` (or removed when `value` is null).
fn claims_with(name: &str, value: Value) -> Value {
    let mut c = claims();
    match value {
        Value::Null => c.as_object_mut().unwrap().remove(name),
        v => c.as_object_mut().unwrap().insert(name.into(), v),
    };
    c
}

/// The public members of `key`'s JWK, as a client puts it in a proof header.
fn bare_jwk(key: &SigningKey) -> Value {
    let mut v = serde_json::to_value(key.public_jwk()).unwrap();
    for member in ["kid", "use", "alg"] {
        v.as_object_mut().unwrap().remove(member);
    }
    v
}

fn header(key: &SigningKey) -> Value {
    json!({ "typ": "dpop+jwt", "alg": key.alg().as_str(), "jwk": bare_jwk(key) })
}

/// `header.claims` signed by `key`, whatever the header says.
fn sign(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.to_string()),
        b64::encode(claims.to_string())
    );
    let sig = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64::encode(sig))
}

/// An honest proof by `key`, made by the client-side helper.
fn proof(key: &SigningKey, claims: &Value) -> String {
    sign_with_embedded_jwk(key, PROOF_TYP, claims.to_string().as_bytes()).unwrap()
}

fn check(proof: &str) -> Result<DpopProof, DpopFailure> {
    check_proof(proof, &DpopPolicy::token_endpoint(HTU, NOW))
}

#[test]
fn honest_proofs_of_every_algorithm_are_accepted_with_their_thumbprint() {
    for alg in Algorithm::ALL {
        let k = key(alg);
        let p = check(&proof(&k, &claims())).unwrap();
        assert_eq!(p.jkt, k.kid(), "{alg}: jkt is the RFC 7638 thumbprint");
        assert_eq!(p.jti, "e1j3V_bKic8-LAEB");
        assert_eq!(p.iat, NOW);
    }
}

#[test]
fn a_proof_made_by_jsonwebtoken_is_accepted() {
    use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
    for (alg, theirs) in [
        (Algorithm::Es256, jsonwebtoken::Algorithm::ES256),
        (Algorithm::EdDsa, jsonwebtoken::Algorithm::EdDSA),
    ] {
        let (k, der) = SigningKey::generate(alg).unwrap();
        let enc = match alg {
            Algorithm::Es256 => jsonwebtoken::EncodingKey::from_ec_der(&der),
            _ => jsonwebtoken::EncodingKey::from_ed_der(&der),
        };
        // jsonwebtoken derives the EC JWK from the private key itself; it cannot do so for
        // Ed25519, so that one is read from the JSON of our public JWK.
        let jwk: Jwk = match alg {
            Algorithm::Es256 => Jwk::from_encoding_key(&enc, theirs).unwrap(),
            _ => serde_json::from_value(bare_jwk(&k)).unwrap(),
        };
        let their_jkt = jwk.thumbprint(ThumbprintHash::SHA256).unwrap();
        let mut header = jsonwebtoken::Header::new(theirs);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(jwk);
        let token = jsonwebtoken::encode(&header, &claims(), &enc).unwrap();
        let p = check(&token).unwrap();
        assert_eq!(p.jkt, their_jkt, "{alg}: same thumbprint as jsonwebtoken's");
        assert_eq!(p.jkt, k.kid());
    }
}

#[test]
fn jsonwebtoken_verifies_our_proofs_with_the_header_key() {
    let k = key(Algorithm::Es256);
    let token = proof(&k, &claims());
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
    let dk = jsonwebtoken::DecodingKey::from_jwk(&header.jwk.unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    let data = jsonwebtoken::decode::<Value>(&token, &dk, &v).unwrap();
    assert_eq!(data.claims["htu"], HTU);
}

#[test]
fn typ_must_be_dpop_jwt() {
    let k = key(Algorithm::Es256);
    for typ in [
        json!("JWT"),
        json!("at+jwt"),
        json!("dpop"),
        json!(1),
        Value::Null,
    ] {
        let mut h = header(&k);
        match typ.clone() {
            Value::Null => h.as_object_mut().unwrap().remove("typ"),
            t => h.as_object_mut().unwrap().insert("typ".into(), t),
        };
        assert_eq!(
            check(&sign(&k, &h, &claims())),
            Err(DpopFailure::Type),
            "{typ}"
        );
    }
    // the same media type, spelled otherwise (RFC 7515 §4.1.9)
    for typ in ["DPoP+JWT", "application/dpop+jwt"] {
        let mut h = header(&k);
        h["typ"] = typ.into();
        assert!(check(&sign(&k, &h, &claims())).is_ok(), "{typ}");
    }
}

#[test]
fn alg_none_is_refused() {
    let k = key(Algorithm::Es256);
    let mut h = header(&k);
    h["alg"] = "none".into();
    let unsigned = format!(
        "{}.{}.",
        b64::encode(h.to_string()),
        b64::encode(claims().to_string())
    );
    assert_eq!(check(&unsigned), Err(DpopFailure::Algorithm));
    // and with a signature appended, still the algorithm
    assert_eq!(check(&sign(&k, &h, &claims())), Err(DpopFailure::Algorithm));
}

#[test]
fn hs256_is_refused() {
    let secret = b"a shared secret a shared secret!";
    let mac = |h: &Value| {
        let input = format!(
            "{}.{}",
            b64::encode(h.to_string()),
            b64::encode(claims().to_string())
        );
        let tag = HmacKey::new(secret).sign(input.as_bytes());
        format!("{input}.{}", b64::encode(tag))
    };
    // with the EC key of an honest client in the header
    let k = key(Algorithm::Es256);
    let mut h = header(&k);
    h["alg"] = "HS256".into();
    assert_eq!(check(&mac(&h)), Err(DpopFailure::Algorithm));
    // with the symmetric key itself in the header: a private key
    let h = json!({ "typ": "dpop+jwt", "alg": "HS256",
                    "jwk": { "kty": "oct", "k": b64::encode(secret) } });
    assert_eq!(check(&mac(&h)), Err(DpopFailure::Algorithm));
    let h = json!({ "typ": "dpop+jwt", "alg": "ES256",
                    "jwk": { "kty": "oct", "k": b64::encode(secret) } });
    assert_eq!(check(&mac(&h)), Err(DpopFailure::PrivateKeyInHeader));
}

#[test]
fn a_private_key_in_the_header_is_refused() {
    for (alg, members) in [
        (Algorithm::Es256, &["d"][..]),
        (Algorithm::EdDsa, &["d"][..]),
        (Algorithm::Rs256, &["d", "p", "q", "dp", "dq", "qi"][..]),
    ] {
        let k = key(alg);
        for member in members {
            let mut h = header(&k);
            h["jwk"][*member] = b64::encode([7u8; 32]).into();
            assert_eq!(
                check(&sign(&k, &h, &claims())),
                Err(DpopFailure::PrivateKeyInHeader),
                "{alg} {member}"
            );
        }
    }
}

#[test]
fn the_signature_must_be_by_the_header_key() {
    let k = key(Algorithm::Es256);
    let other = key(Algorithm::Es256);
    assert_eq!(
        check(&sign(&other, &header(&k), &claims())),
        Err(DpopFailure::Signature)
    );
    // tampered claims
    let honest = proof(&k, &claims());
    let mut parts: Vec<&str> = honest.split('.').collect();
    let forged_claims =
        b64::encode(claims_with("htu", "https://evil.example/token".into()).to_string());
    parts[1] = &forged_claims;
    assert_eq!(check(&parts.join(".")), Err(DpopFailure::Signature));
    // no jwk at all, or an unusable one
    let mut h = header(&k);
    h.as_object_mut().unwrap().remove("jwk");
    assert_eq!(check(&sign(&k, &h, &claims())), Err(DpopFailure::Key));
    h["jwk"] = json!({ "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA" });
    assert_eq!(check(&sign(&k, &h, &claims())), Err(DpopFailure::Key));
}

#[test]
fn the_algorithm_must_fit_the_header_key() {
    let es = key(Algorithm::Es256);
    let rs = key(Algorithm::Rs256);
    // an EC key under RS256 (signed by an RSA key), an RSA key under ES256
    let mut h = header(&es);
    h["alg"] = "RS256".into();
    assert_eq!(
        check(&sign(&rs, &h, &claims())),
        Err(DpopFailure::Algorithm)
    );
    let mut h = header(&rs);
    h["alg"] = "ES256".into();
    assert_eq!(
        check(&sign(&es, &h, &claims())),
        Err(DpopFailure::Algorithm)
    );
    // an RSA JWK that names RS256 under a PS256 header
    let ps = key(Algorithm::Ps256);
    let mut h = header(&ps);
    h["jwk"]["alg"] = "RS256".into();
    assert_eq!(
        check(&sign(&ps, &h, &claims())),
        Err(DpopFailure::Algorithm)
    );
}

#[test]
fn not_a_single_compact_jws_is_malformed() {
    let k = key(Algorithm::Es256);
    let p = proof(&k, &claims());
    for bad in [
        String::new(),
        "a.b".into(),
        format!("{p}.{p}"),
        format!("{p},{p}"),
        format!("{p} "),
        p.replace('.', ".."),
    ] {
        assert!(check(&bad).is_err(), "{bad}");
    }
    assert_eq!(check(&format!("{p}.{p}")), Err(DpopFailure::Malformed));
    assert_eq!(check("x.y.z"), Err(DpopFailure::Malformed));
    let big = claims_with("pad", "x".repeat(MAX_PROOF_BYTES).into());
    assert_eq!(check(&proof(&k, &big)), Err(DpopFailure::Malformed));
    // claims that are not an object
    let input = format!(
        "{}.{}",
        b64::encode(header(&k).to_string()),
        b64::encode("[1]")
    );
    let sig = k.sign(input.as_bytes()).unwrap();
    assert_eq!(
        check(&format!("{input}.{}", b64::encode(sig))),
        Err(DpopFailure::Malformed)
    );
}

#[test]
fn htm_must_equal_the_method() {
    let k = key(Algorithm::Es256);
    for htm in [json!("GET"), json!("post"), json!(["POST"]), Value::Null] {
        assert_eq!(
            check(&proof(&k, &claims_with("htm", htm.clone()))),
            Err(DpopFailure::Method),
            "{htm}"
        );
    }
}

#[test]
fn htu_must_be_the_endpoint_url() {
    let k = key(Algorithm::Es256);
    for other in [
        json!("https://id.example.com/t/other/token"),
        json!("https://id.example.com/t/acme/introspect"),
        json!("http://id.example.com/t/acme/token"),
        json!("https://id.example.com:8443/t/acme/token"),
        json!("https://id.example.com.evil.example/t/acme/token"),
        json!("https://user@id.example.com/t/acme/token"),
        json!("https://id.example.com/t/ACME/token"),
        json!("https://id.example.com/t/acme/token/"),
        json!("/t/acme/token"),
        json!(""),
        json!(7),
        Value::Null,
    ] {
        assert_eq!(
            check(&proof(&k, &claims_with("htu", other.clone()))),
            Err(DpopFailure::Url),
            "{other}"
        );
    }
    // query and fragment ignored; scheme and host case-insensitive; default port dropped
    for same in [
        "https://id.example.com/t/acme/token?x=1",
        "https://id.example.com/t/acme/token#frag",
        "https://id.example.com/t/acme/token?a=b#c",
        "HTTPS://ID.Example.COM/t/acme/token",
        "https://id.example.com:443/t/acme/token",
    ] {
        assert!(
            check(&proof(&k, &claims_with("htu", same.into()))).is_ok(),
            "{same}"
        );
    }
}

#[test]
fn htu_normalisation() {
    let n = |u: &str| normalize_htu(u);
    assert_eq!(
        n("http://LOCALHOST:80").as_deref(),
        Some("http://localhost/")
    );
    assert_eq!(
        n("http://127.0.0.1:8080/t/a/token").as_deref(),
        Some("http://127.0.0.1:8080/t/a/token")
    );
    assert_eq!(
        n("http://[::1]:8080/t/a/token?q").as_deref(),
        Some("http://[::1]:8080/t/a/token")
    );
    assert_eq!(n("https://[::1]/x").as_deref(), Some("https://[::1]/x"));
    assert_eq!(n("https://h/a%2fb").as_deref(), Some("https://h/a%2Fb"));
    assert_eq!(
        n("https://h/%61dmin%7e").as_deref(),
        Some("https://h/admin~")
    );
    assert_eq!(n("https://h/a%2").as_deref(), Some("https://h/a%2"));
    assert_eq!(n("https://h/a%zz").as_deref(), Some("https://h/a%ZZ"));
    assert_eq!(n("https://h:0443/").as_deref(), Some("https://h/"));
    for bad in [
        "ftp://h/",
        "https://",
        "https://:443/",
        "https://h:x/",
        "https://h:99999/",
        "h/x",
    ] {
        assert_eq!(n(bad), None, "{bad}");
    }
}

#[test]
fn iat_must_be_recent() {
    let k = key(Algorithm::Es256);
    let at = |iat: Value| check(&proof(&k, &claims_with("iat", iat)));
    assert!(at(json!(NOW - DEFAULT_MAX_AGE_SECS)).is_ok());
    assert_eq!(
        at(json!(NOW - DEFAULT_MAX_AGE_SECS - 1)),
        Err(DpopFailure::Stale)
    );
    assert_eq!(at(json!(NOW - 86_400)), Err(DpopFailure::Stale));
    assert!(at(json!(NOW + DEFAULT_SKEW_SECS)).is_ok());
    assert_eq!(
        at(json!(NOW + DEFAULT_SKEW_SECS + 1)),
        Err(DpopFailure::Future)
    );
    assert_eq!(at(json!(i64::MAX)), Err(DpopFailure::Future));
    assert_eq!(at(json!(1e300)), Err(DpopFailure::IatMissing));
    assert_eq!(at(json!(NOW as f64 + 0.5)).map(|p| p.iat), Ok(NOW));
    for missing in [Value::Null, json!("1790000000"), json!(true)] {
        assert_eq!(at(missing), Err(DpopFailure::IatMissing));
    }
    // the window follows the policy
    let policy = DpopPolicy {
        max_age_secs: 5,
        ..DpopPolicy::token_endpoint(HTU, NOW)
    };
    let p = proof(&k, &claims_with("iat", json!(NOW - 6)));
    assert_eq!(check_proof(&p, &policy), Err(DpopFailure::Stale));
}

#[test]
fn jti_is_required_and_bounded() {
    let k = key(Algorithm::Es256);
    let with = |jti: Value| check(&proof(&k, &claims_with("jti", jti)));
    for missing in [Value::Null, json!(""), json!(42)] {
        assert_eq!(
            with(missing.clone()),
            Err(DpopFailure::JtiMissing),
            "{missing}"
        );
    }
    assert_eq!(
        with(json!("é".repeat(MAX_JTI_CHARS))).map(|p| p.jti.chars().count()),
        Ok(MAX_JTI_CHARS)
    );
    assert_eq!(
        with(json!("x".repeat(MAX_JTI_CHARS + 1))),
        Err(DpopFailure::JtiTooLong)
    );
}

#[test]
fn nonces() {
    let nonces = NonceKey::new(&[9u8; 32]);
    let other = NonceKey::new(&[8u8; 32]);
    let k = key(Algorithm::Es256);
    let accepts = |n: &str| nonces.accepts(n, NOW);
    let policy = DpopPolicy {
        expected_nonce: Some(&accepts),
        ..DpopPolicy::token_endpoint(HTU, NOW)
    };
    let with = |nonce: Value| check_proof(&proof(&k, &claims_with("nonce", nonce)), &policy);

    // required and missing: the client must retry with one
    let missing = with(Value::Null).unwrap_err();
    assert_eq!(missing, DpopFailure::NonceRequired);
    assert!(missing.wants_nonce());
    assert_eq!(missing.error_code(), "use_dpop_nonce");

    assert!(with(nonces.issue(NOW).into()).is_ok(), "current bucket");
    let previous = NOW - NONCE_BUCKET_SECS;
    assert!(
        with(nonces.issue(previous).into()).is_ok(),
        "previous bucket"
    );
    for (bad, what) in [
        (nonces.issue(NOW - 2 * NONCE_BUCKET_SECS), "two buckets old"),
        (nonces.issue(NOW + NONCE_BUCKET_SECS), "next bucket"),
        (other.issue(NOW), "another key"),
        ("not-a-nonce".into(), "garbage"),
        (String::new(), "empty"),
    ] {
        let e = with(bad.into()).unwrap_err();
        assert_eq!(e, DpopFailure::NonceBad, "{what}");
        assert_eq!(e.error_code(), "use_dpop_nonce", "{what}");
    }
    assert_eq!(with(json!(12)), Err(DpopFailure::NonceBad));

    // without a nonce rule, a nonce claim is ignored
    assert!(check(&proof(&k, &claims_with("nonce", "anything".into()))).is_ok());
}

#[test]
fn nonce_key_buckets() {
    let nonces = NonceKey::new(&[1u8; 32]);
    let t = 6_000; // the start of bucket 100
    let n = nonces.issue(t);
    assert_eq!(n.len(), 54);
    assert_eq!(nonces.issue(t + 59), n, "one nonce per bucket");
    assert_ne!(nonces.issue(t + 60), n);
    assert!(nonces.accepts(&n, t));
    assert!(nonces.accepts(&n, t + 119));
    assert!(!nonces.accepts(&n, t + 120));
    assert!(!nonces.accepts(&n, t - 1));
    // a tampered tag or bucket
    let mut raw = b64::decode(&n).unwrap();
    raw[39] ^= 1;
    assert!(!nonces.accepts(&b64::encode(&raw), t));
    let mut raw = b64::decode(&n).unwrap();
    raw[7] ^= 1;
    assert!(!nonces.accepts(&b64::encode(&raw), t + 60));
    // replicas with the same key agree; the key never prints
    assert!(NonceKey::new(&[1u8; 32]).accepts(&n, t));
    assert_eq!(format!("{nonces:?}"), "NonceKey(<redacted>)");
}

#[test]
fn ath_binds_the_access_token() {
    let k = key(Algorithm::Es256);
    let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    let ath = b64::encode(sha256(token.as_bytes()));
    let policy = DpopPolicy {
        htm: "GET",
        htu: "https://api.example.com/things",
        access_token: Some(token),
        ..DpopPolicy::token_endpoint(HTU, NOW)
    };
    let at_api = |ath: Value| {
        let mut c = claims_with("ath", ath);
        c["htm"] = "GET".into();
        c["htu"] = "https://api.example.com/things".into();
        check_proof(&proof(&k, &c), &policy)
    };
    assert!(at_api(ath.clone().into()).is_ok());
    let other = b64::encode(sha256(b"another token"));
    assert_eq!(at_api(other.into()), Err(DpopFailure::Ath));
    assert_eq!(at_api(Value::Null), Err(DpopFailure::Ath));
    assert_eq!(at_api(json!(token)), Err(DpopFailure::Ath));
    // at the token endpoint there is no access token: ath is not checked
    assert!(check(&proof(&k, &claims_with("ath", "whatever".into()))).is_ok());
    // and the policy never prints the token
    assert!(!format!("{policy:?}").contains(token));
}

#[test]
fn failures_map_to_their_oauth_error() {
    use DpopFailure::*;
    let all = [
        Malformed,
        Type,
        Algorithm,
        Key,
        PrivateKeyInHeader,
        Signature,
        Method,
        Url,
        IatMissing,
        Stale,
        Future,
        JtiMissing,
        JtiTooLong,
        NonceRequired,
        NonceBad,
        Ath,
    ];
    let labels: std::collections::BTreeSet<_> = all.iter().map(|f| f.as_str()).collect();
    assert_eq!(labels.len(), all.len(), "labels are distinct");
    for f in all {
        let expected = if matches!(f, NonceRequired | NonceBad) {
            "use_dpop_nonce"
        } else {
            "invalid_dpop_proof"
        };
        assert_eq!(f.error_code(), expected, "{f:?}");
        assert!(f.to_string().starts_with("the DPoP") || f.to_string().starts_with("a DPoP"));
    }
}

#[test]
fn replay_bookkeeping() {
    let k = key(Algorithm::Es256);
    let policy = DpopPolicy::token_endpoint(HTU, NOW);
    let p = check_proof(&proof(&k, &claims()), &policy).unwrap();
    assert_eq!(
        p.replay_until(&policy),
        NOW + DEFAULT_MAX_AGE_SECS + DEFAULT_SKEW_SECS
    );
    // the key names the jti under this key only, in fixed length
    let same = check_proof(&proof(&k, &claims()), &policy).unwrap();
    assert_eq!(p.replay_key(), same.replay_key());
    let other_key = check_proof(&proof(&key(Algorithm::Es256), &claims()), &policy).unwrap();
    assert_ne!(p.replay_key(), other_key.replay_key());
    assert_eq!(p.replay_key().len(), 43);
}
