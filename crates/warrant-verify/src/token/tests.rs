use serde_json::{Value, json};
use warrant_jose::{Algorithm, PublicKey, SigningKey, b64, sign_compact};

use super::*;

const ISS: &str = "https://id.example.com/t/prod";
const NOW: i64 = 1_800_000_000;

/// A key, its public half as a JWKS would give it, and its PKCS#8 document. The kid is the
/// key's thumbprint.
fn key(alg: Algorithm) -> (SigningKey, PublicKey, Vec<u8>) {
    let (k, der) = SigningKey::generate(alg).unwrap();
    let public = PublicKey::from_jwk(k.public_jwk()).unwrap();
    (k, public, der.to_vec())
}

fn claims() -> Value {
    json!({
        "iss": ISS, "sub": "sa_1", "aud": "https://orders.example.com", "client_id": "sa_1",
        "exp": NOW + 300, "iat": NOW - 10, "nbf": NOW - 10, "jti": "j1",
        "scope": "orders:read orders:write", "tenant": "prod"
    })
}

fn sign(k: &SigningKey, claims: &Value) -> String {
    sign_compact(k, "at+jwt", claims.to_string().as_bytes()).unwrap()
}

fn verify(token: &str, keys: &[PublicKey]) -> Result<VerifiedToken, TokenFailure> {
    verify_token(token, ISS, keys, NOW, 30)
}

/// A token with any header and claims, signed by `k` over exactly those bytes.
fn forge(k: &SigningKey, header: Value, claims: &Value) -> String {
    let signed = format!(
        "{}.{}",
        b64::encode(header.to_string()),
        b64::encode(claims.to_string())
    );
    let sig = k.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64::encode(sig))
}

#[test]
fn a_good_token_verifies_and_reads_its_claims() {
    let (k, public, _) = key(Algorithm::Es256);
    let t = verify(&sign(&k, &claims()), &[public]).unwrap();
    assert_eq!(t.sub, "sa_1");
    assert_eq!(t.aud, ["https://orders.example.com"]);
    assert_eq!(t.scopes, ["orders:read", "orders:write"]);
    assert_eq!(t.tenant.as_deref(), Some("prod"));
    assert_eq!(t.binding, Binding::Bearer);
    assert_eq!(t.kid, k.kid());
    assert!(t.has_scope("orders:read") && !t.has_scope("orders"));
}

#[test]
fn every_algorithm_verifies_with_its_own_key() {
    for alg in Algorithm::ALL {
        let (k, public, _) = key(alg);
        assert!(verify(&sign(&k, &claims()), &[public]).is_ok(), "{alg:?}");
    }
}

#[test]
fn a_token_signed_by_an_independent_implementation_verifies() {
    // jsonwebtoken (RustCrypto) signs; warrant-jose (aws-lc-rs) verifies.
    let (k, public, der) = key(Algorithm::Es256);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(k.kid().into());
    let enc = jsonwebtoken::EncodingKey::from_ec_der(&der);
    let token = jsonwebtoken::encode(&header, &claims(), &enc).unwrap();
    assert_eq!(verify(&token, &[public]).unwrap().jti, "j1");
}

#[test]
fn forged_and_malformed_tokens_are_refused() {
    let (k, public, _) = key(Algorithm::Es256);
    let (other, _, _) = key(Algorithm::Es256);
    let keys = [public];
    let good = sign(&k, &claims());

    // Another key claiming our kid.
    let impostor = forge(
        &other,
        json!({"alg": "ES256", "typ": "at+jwt", "kid": k.kid()}),
        &claims(),
    );
    assert_eq!(
        verify(&impostor, &keys).err(),
        Some(TokenFailure::Signature)
    );
    // One bit of the signature flipped.
    let (signed, sig) = good.rsplit_once('.').unwrap();
    let mut raw = b64::decode(sig).unwrap();
    raw[10] ^= 1;
    let flipped = format!("{signed}.{}", b64::encode(raw));
    assert_eq!(verify(&flipped, &keys).err(), Some(TokenFailure::Signature));
    // Claims spliced from another token.
    let mut c = claims();
    c["sub"] = json!("sa_admin");
    let (_, spliced_claims, _) = {
        let t = sign(&k, &c);
        let mut p = t.split('.').map(str::to_owned).collect::<Vec<_>>();
        (p.remove(0), p.remove(0), ())
    };
    let parts: Vec<&str> = good.split('.').collect();
    let spliced = format!("{}.{spliced_claims}.{}", parts[0], parts[2]);
    assert_eq!(verify(&spliced, &keys).err(), Some(TokenFailure::Signature));
    // alg none, unsigned.
    let none = format!(
        "{}.{}.",
        b64::encode(json!({"alg": "none", "typ": "at+jwt", "kid": k.kid()}).to_string()),
        b64::encode(claims().to_string())
    );
    assert!(verify(&none, &keys).is_err());
    // HS256 keyed with the public JWK's text (the classic algorithm confusion).
    let jwk_text = serde_json::to_string(k.public_jwk()).unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    h.kid = Some(k.kid().into());
    let hs = jsonwebtoken::encode(
        &h,
        &claims(),
        &jsonwebtoken::EncodingKey::from_secret(jwk_text.as_bytes()),
    )
    .unwrap();
    assert!(verify(&hs, &keys).is_err());
    // The header says another algorithm than the key's.
    let mismatched = forge(
        &k,
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": k.kid()}),
        &claims(),
    );
    assert_eq!(
        verify(&mismatched, &keys).err(),
        Some(TokenFailure::Signature)
    );
    // Unknown kid.
    let unknown = forge(
        &k,
        json!({"alg": "ES256", "typ": "at+jwt", "kid": "k9"}),
        &claims(),
    );
    assert_eq!(
        verify(&unknown, &keys).err(),
        Some(TokenFailure::UnknownKey)
    );
    // Garbage, truncation, oversize.
    for bad in [
        "",
        "a.b",
        "a.b.c.d",
        &good[..good.len() - 5],
        &"a".repeat(MAX_TOKEN_BYTES + 1),
    ] {
        assert!(verify(bad, &keys).is_err(), "{bad:.20}");
    }
}

#[test]
fn only_access_tokens_are_accepted() {
    let (k, public, _) = key(Algorithm::Es256);
    for typ in [None, Some("JWT"), Some("dpop+jwt"), Some("id_token")] {
        let mut h = json!({"alg": "ES256", "kid": k.kid()});
        if let Some(t) = typ {
            h["typ"] = json!(t);
        }
        let t = forge(&k, h, &claims());
        assert_eq!(
            verify(&t, std::slice::from_ref(&public)).err(),
            Some(TokenFailure::Type),
            "{typ:?}"
        );
    }
    let t = forge(
        &k,
        json!({"alg": "ES256", "kid": k.kid(), "typ": "application/AT+JWT"}),
        &claims(),
    );
    assert!(verify(&t, &[public]).is_ok());
}

#[test]
fn issuer_time_and_required_claims() {
    let (k, public, _) = key(Algorithm::Es256);
    let keys = [public];
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        verify(&sign(&k, &c), &keys).err()
    };
    assert_eq!(
        with(&|c| c["iss"] = json!("https://id.example.com/t/other")),
        Some(TokenFailure::Issuer)
    );
    assert_eq!(
        with(&|c| c["iss"] = json!(format!("{ISS}/"))),
        Some(TokenFailure::Issuer)
    );
    assert_eq!(
        with(&|c| c["exp"] = json!(NOW - 31)),
        Some(TokenFailure::Expired)
    );
    assert_eq!(
        with(&|c| c["exp"] = json!(NOW - 29)),
        None,
        "within the leeway"
    );
    assert_eq!(
        with(&|c| c["nbf"] = json!(NOW + 31)),
        Some(TokenFailure::NotYetValid)
    );
    assert_eq!(
        with(&|c| c["iat"] = json!(NOW + 31)),
        Some(TokenFailure::NotYetValid)
    );
    assert_eq!(
        with(&|c| c["exp"] = json!("soon")),
        Some(TokenFailure::MissingClaim)
    );
    for claim in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
        let r = with(&|c| {
            c.as_object_mut().unwrap().remove(claim);
        });
        assert!(r.is_some(), "{claim} is required");
    }
    assert_eq!(
        with(&|c| c["aud"] = json!([])),
        Some(TokenFailure::MissingClaim)
    );
    assert_eq!(
        with(&|c| c["aud"] = json!(["a", 5])),
        Some(TokenFailure::MissingClaim)
    );
    assert_eq!(with(&|c| c["aud"] = json!(["a", "b"])), None);
    assert_eq!(
        with(&|c| c["scope"] = json!(["a"])),
        Some(TokenFailure::Malformed)
    );
    // The leeway is bounded whatever the caller asks.
    let mut c = claims();
    c["exp"] = json!(NOW - 3600);
    assert_eq!(
        verify_token(&sign(&k, &c), ISS, &keys, NOW, 86_400).err(),
        Some(TokenFailure::Expired)
    );
}

#[test]
fn confirmation_claims() {
    let (k, public, _) = key(Algorithm::Es256);
    let keys = [public];
    let with_cnf = |cnf: Value| {
        let mut c = claims();
        c["cnf"] = cnf;
        verify(&sign(&k, &c), &keys).map(|t| t.binding)
    };
    assert_eq!(
        with_cnf(json!({"jkt": "abc"})),
        Ok(Binding::Dpop { jkt: "abc".into() })
    );
    assert_eq!(
        with_cnf(json!({"x5t#S256": "xyz"})),
        Ok(Binding::Certificate {
            x5t_s256: "xyz".into()
        })
    );
    for bad in [
        json!({}),
        json!({"jkt": "a", "x5t#S256": "b"}),
        json!({"jwk": {}}),
        json!("jkt"),
        json!({"jkt": ""}),
    ] {
        assert_eq!(
            with_cnf(bad.clone()),
            Err(TokenFailure::Confirmation),
            "{bad}"
        );
    }
}

#[test]
fn subjects_and_nested_claims() {
    let (k, public, _) = key(Algorithm::Es256);
    let mut c = claims();
    c["act"] = json!({"sub": "sa_a", "act": {"sub": "sa_b"}});
    c["federated"] = json!({"repository": "acme/api"});
    let t = verify(&sign(&k, &c), &[public]).unwrap();
    assert_eq!(t.subjects(), ["sa_1", "sa_1", "sa_a", "sa_b"]);
    assert_eq!(t.claim("federated.repository"), Some(&json!("acme/api")));
    assert_eq!(t.claim("act.act.sub"), Some(&json!("sa_b")));
    assert_eq!(t.claim("federated.nope"), None);
}

#[test]
fn the_unverified_issuer_is_read_from_the_payload() {
    let (k, _, _) = key(Algorithm::Es256);
    assert_eq!(unverified_issuer(&sign(&k, &claims())).unwrap(), ISS);
    assert!(unverified_issuer("x").is_err());
    assert!(unverified_issuer("e30.e30.x").is_err());
}
