//! A compact JWS from arbitrary bytes through every way Warrant reads one: `verify_compact`
//! (tokens we issued, key by `kid`), `verify_compact_any_key` (client assertions, `kid`
//! optional), `verify_with_embedded_jwk` (DPoP proofs, key in the header) and
//! `dangerous::decode_unverified`. The keys are fixed (`keys/*.pk8`, see
//! `examples/make_seeds.rs`), so seed tokens verify.
//!
//! Must never panic; a token that verifies must also decode without verification, to the same
//! claims.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warrant_jose::{
    Algorithm, PublicKey, SigningKey, dangerous, verify_compact, verify_compact_any_key,
    verify_with_embedded_jwk,
};

/// Every algorithm under its thumbprint `kid`, and the ES256 key once more without a `kid`.
fn keys() -> &'static [PublicKey] {
    static KEYS: OnceLock<Vec<PublicKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys: Vec<PublicKey> = [
            (Algorithm::Es256, &include_bytes!("../keys/es256.pk8")[..]),
            (Algorithm::EdDsa, &include_bytes!("../keys/ed25519.pk8")[..]),
            (Algorithm::Rs256, &include_bytes!("../keys/rsa.pk8")[..]),
            (Algorithm::Ps256, &include_bytes!("../keys/rsa.pk8")[..]),
        ]
        .into_iter()
        .map(|(alg, der)| {
            let key = SigningKey::from_pkcs8(alg, der).unwrap();
            PublicKey::from_jwk(key.public_jwk()).unwrap()
        })
        .collect();
        let es = SigningKey::from_pkcs8(Algorithm::Es256, include_bytes!("../keys/es256.pk8"));
        let mut jwk = es.unwrap().public_jwk().clone();
        jwk.kid = None;
        keys.push(PublicKey::from_jwk(&jwk).unwrap());
        keys
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let keys = keys();
    let decoded = dangerous::decode_unverified(token);
    let same_claims = |claims: &serde_json::Map<String, serde_json::Value>| {
        let (_, unverified) = decoded.as_ref().unwrap();
        assert_eq!(claims, unverified);
    };
    for typ in [None, Some("at+jwt")] {
        if let Ok(verified) = verify_compact(token, keys, typ) {
            same_claims(&verified.claims);
        }
    }
    if let Ok(verified) = verify_compact_any_key(token, keys) {
        same_claims(&verified.claims);
    }
    if let Ok(verified) = verify_with_embedded_jwk(token) {
        same_claims(&verified.claims);
        assert!(verified.jwk.thumbprint().is_some());
    }
});
