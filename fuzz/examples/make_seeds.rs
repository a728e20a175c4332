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
}
