//! A JWK Set from arbitrary bytes (what a verifier fetches from `/jwks`, or an operator uploads
//! for `private_key_jwt`): every key is parsed for verification and thumbprinted.
//! Must never panic; a key that parses keeps its thumbprint through a serde round trip.

#![no_main]

use libfuzzer_sys::fuzz_target;
use warrant_jose::{Jwk, JwkSet, PublicKey};

fuzz_target!(|data: &[u8]| {
    let Ok(set) = serde_json::from_slice::<JwkSet>(data) else {
        return;
    };
    for jwk in &set.keys {
        let thumbprint = jwk.thumbprint();
        if let Ok(key) = PublicKey::from_jwk(jwk) {
            assert_eq!(key.kid(), jwk.kid.as_deref());
            let again: Jwk = serde_json::from_slice(&serde_json::to_vec(jwk).unwrap()).unwrap();
            assert_eq!(&again, jwk);
            assert_eq!(again.thumbprint(), thumbprint);
        }
    }
});
