//! Writes the fixed fuzzing keys (`keys/*.pk8`, once) and the seed corpora
//! (`corpus/<target>/seed-*`). Run from `fuzz/`: `cargo run --example make_seeds`.
//!
//! The keys are test fixtures with no other use: the `jws_verify` target loads them so that a
//! seed token's `kid` and signature mean something across runs.

use std::fs;
use std::path::Path;

use warrant_jose::{
    Algorithm, PublicKey, SigningKey, b64, sign_compact, sign_with_embedded_jwk, verify_compact,
};

/// Claims of a DPoP proof at the token endpoint (RFC 9449 §4.2).
const DPOP_CLAIMS: &[u8] =
    br#"{"jti":"p1","htm":"POST","htu":"https://warrant.test/t/acme/token","iat":1700000000}"#;

const KEYS: [(Algorithm, &str); 4] = [
    (Algorithm::Es256, "keys/es256.pk8"),
    (Algorithm::EdDsa, "keys/ed25519.pk8"),
    (Algorithm::Rs256, "keys/rsa.pk8"),
    // the same RSA material, held as PS256
    (Algorithm::Ps256, "keys/rsa.pk8"),
];

fn key(alg: Algorithm, path: &str) -> SigningKey {
    if !Path::new(path).exists() {
        let (_, der) = SigningKey::generate(alg).unwrap();
        fs::write(path, &*der).unwrap();
    }
    SigningKey::from_pkcs8(alg, &fs::read(path).unwrap()).unwrap()
}

fn seed(target: &str, name: &str, bytes: impl AsRef<[u8]>) {
    let dir = format!("corpus/{target}");
    fs::create_dir_all(&dir).unwrap();
    fs::write(format!("{dir}/seed-{name}"), bytes).unwrap();
}

fn main() {
    fs::create_dir_all("keys").unwrap();
    let keys: Vec<SigningKey> = KEYS.iter().map(|(alg, path)| key(*alg, path)).collect();

    // jws_verify: a valid token per algorithm, typ at+jwt and JWT, and near misses.
    let claims = br#"{"iss":"https://warrant.test/t/acme","sub":"sa_1","aud":"api","exp":2000000000,"iat":1700000000,"jti":"j1","scope":"read write"}"#;
    for k in &keys {
        let alg = k.alg().as_str().to_ascii_lowercase();
        let token = sign_compact(k, "at+jwt", claims).unwrap();
        // the target's keys are these keys' public halves: the seed reaches the claims
        let public = PublicKey::from_jwk(k.public_jwk()).unwrap();
        verify_compact(&token, &[public], Some("at+jwt")).unwrap();
        seed("jws_verify", &alg, token);
    }
    seed(
        "jws_verify",
        "jwt-typ",
        sign_compact(&keys[0], "JWT", b"{}").unwrap(),
    );
    let none = format!(
        "{}.{}.",
        b64::encode(br#"{"alg":"none","typ":"at+jwt"}"#),
        b64::encode(claims)
    );
    seed("jws_verify", "alg-none", none);
    let crit = format!(
        "{}.{}.AAAA",
        b64::encode(format!(
            r#"{{"alg":"ES256","kid":"{}","crit":["b64"]}}"#,
            keys[0].kid()
        )),
        b64::encode(claims)
    );
    seed("jws_verify", "crit", crit);
    // no kid (client assertions), and a key in the header (DPoP proofs)
    let no_kid = format!(
        "{}.{}.{}",
        b64::encode(br#"{"alg":"ES256","typ":"JWT"}"#),
        b64::encode(claims),
        "AAAA"
    );
    seed("jws_verify", "no-kid", no_kid);
    for k in [&keys[0], &keys[2]] {
        let alg = k.alg().as_str().to_ascii_lowercase();
        let proof = sign_with_embedded_jwk(k, "dpop+jwt", DPOP_CLAIMS).unwrap();
        seed("jws_verify", &format!("embedded-{alg}"), proof);
    }

    // jwk_parse: the published JWKS, and one odd set.
    let set = warrant_jose::JwkSet {
        keys: keys.iter().map(|k| k.public_jwk().clone()).collect(),
    };
    seed("jwk_parse", "jwks", serde_json::to_vec(&set).unwrap());
    seed(
        "jwk_parse",
        "odd",
        br#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"},{"kty":"EC","crv":"P-384","x":"","y":""},{"kty":"oct","k":"c2VjcmV0"},{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#,
    );

    // form_parse: token request bodies and Basic headers (one input feeds both parsers).
    seed(
        "form_parse",
        "client-credentials",
        "grant_type=client_credentials&scope=read+write&resource=https%3A%2F%2Fapi.test&resource=urn%3Ab",
    );
    seed(
        "form_parse",
        "assertion",
        "grant_type=client_credentials&client_id=sa_1&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=eyJhbGciOiJFUzI1NiJ9.e30.AAAA",
    );
    seed("form_parse", "repeated", "grant_type=a&grant_type=b&scope=");
    seed("form_parse", "basic", "Basic c2ElNUYxOnArdyUzQQ==");
    seed("form_parse", "basic-unpadded", "basic   c2FfMTpzZWNyZXQ ");

    assertion_seeds(&keys);
    dpop_seeds(&keys);
}

/// The fixed time, issuer and client of the `client_assertion` and `dpop_proof` targets.
const NOW: i64 = 1_700_000_000;
const ISSUER: &str = "https://warrant.test/t/acme";
const TOKEN_ENDPOINT: &str = "https://warrant.test/t/acme/token";

/// `[flags] ‖ rest`, the input shape of the targets that read a flags byte.
fn flagged(flags: u8, rest: impl AsRef<[u8]>) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(rest.as_ref());
    out
}

/// client_assertion: claims for the target to sign (bit 0 set) and whole assertions (bit 0
/// clear), each accepted as the target sets things up.
fn assertion_seeds(keys: &[SigningKey]) {
    use warrant_core::Timestamp;
    use warrant_core::client_auth::assertion::{AssertionPolicy, check_assertion};

    let claims = |aud: &str, extra: &str| {
        format!(
            r#"{{"iss":"sa_1","sub":"sa_1","aud":"{aud}","exp":{},"iat":{NOW},"jti":"a1"{extra}}}"#,
            NOW + 60
        )
    };
    seed(
        "client_assertion",
        "signed",
        flagged(0x01, claims(ISSUER, "")),
    );
    // typ client-authentication+jwt, token endpoint accepted as audience
    seed(
        "client_assertion",
        "signed-endpoint-aud",
        flagged(0x0b, claims(TOKEN_ENDPOINT, "")),
    );
    // no kid; fractional dates and nbf
    seed(
        "client_assertion",
        "signed-no-kid",
        flagged(
            0x05,
            claims(ISSUER, r#","nbf":1699999999.5,"x":[1,{"y":null}]"#),
        ),
    );

    let (es, ed) = (&keys[0], &keys[1]);
    let with_kid = sign_compact(ed, "JWT", claims(ISSUER, "").as_bytes()).unwrap();
    let input = format!(
        "{}.{}",
        b64::encode(br#"{"alg":"ES256","typ":"JWT"}"#),
        b64::encode(claims(ISSUER, ""))
    );
    let no_kid = format!(
        "{input}.{}",
        b64::encode(es.sign(input.as_bytes()).unwrap())
    );
    // registered as in the target: EdDSA under its kid, ES256 without one
    let mut es_jwk = es.public_jwk().clone();
    es_jwk.kid = None;
    let registered = [
        PublicKey::from_jwk(ed.public_jwk()).unwrap(),
        PublicKey::from_jwk(&es_jwk).unwrap(),
    ];
    let policy = AssertionPolicy::new(ISSUER, TOKEN_ENDPOINT);
    for (name, token) in [("eddsa", with_kid), ("es256-no-kid", no_kid)] {
        check_assertion(
            &token,
            &registered,
            "sa_1",
            &policy,
            Timestamp::from_secs(NOW),
        )
        .unwrap();
        seed("client_assertion", name, flagged(0x00, token));
    }
}

/// dpop_proof: claims for the target to sign (bit 0 set) and whole proofs (bit 0 clear), each
/// accepted as the target sets things up.
fn dpop_seeds(keys: &[SigningKey]) {
    use warrant_jose::dpop::{DpopPolicy, NonceKey, check_proof};

    let nonce = NonceKey::new(&[7; 32]).issue(NOW);
    let ath = b64::encode(warrant_jose::crypto::sha256(b"at-fuzz"));
    seed("dpop_proof", "signed", flagged(0x01, DPOP_CLAIMS));
    // nonce required and ath checked
    let full = format!(
        r#"{{"jti":"p2","htm":"POST","htu":"{TOKEN_ENDPOINT}","iat":{NOW},"nonce":"{nonce}","ath":"{ath}"}}"#
    );
    seed("dpop_proof", "signed-nonce-ath", flagged(0x07, full));
    // ES256; an htu that normalises to the endpoint; a fractional iat
    let odd = r#"{"jti":"p3","htm":"POST","htu":"HTTPS://Warrant.TEST:443/t/acme/token?q=1#f","iat":1699999990.25}"#;
    seed("dpop_proof", "signed-es256-htu", flagged(0x09, odd));

    let policy = DpopPolicy::token_endpoint(TOKEN_ENDPOINT, NOW);
    for k in [&keys[1], &keys[2]] {
        let proof = sign_with_embedded_jwk(k, "dpop+jwt", DPOP_CLAIMS).unwrap();
        check_proof(&proof, &policy).unwrap();
        let alg = k.alg().as_str().to_ascii_lowercase();
        seed("dpop_proof", &format!("proof-{alg}"), flagged(0x00, proof));
    }
}
