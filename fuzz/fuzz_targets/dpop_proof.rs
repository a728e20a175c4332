//! DPoP proofs (RFC 9449): warrant-jose's `dpop::check_proof` and `NonceKey::accepts` on
//! arbitrary input.
//!
//! The first byte picks how the rest is read:
//! - bit 0 clear: the rest is the proof itself (its key in its own `jwk` header); the fuzzer
//!   can rarely make a signature verify, so this explores the JWS and key checks.
//! - bit 0 set: the rest is a claims set, which the target signs with a fixed key (EdDSA or
//!   ES256, bit 3) and `typ` (bit 4: `dpop+jwt` or `JWT`) before checking it: this explores
//!   every claim check (`htm`, `htu` normalisation, `iat`, `jti`, nonce, `ath`).
//!
//! Bit 1 requires a server nonce, bit 2 an `ath` for a fixed access token. Must never panic;
//! an accepted proof must satisfy what the checker promises (key thumbprint, `jti` length,
//! `iat` window).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warrant_jose::dpop::{DpopPolicy, MAX_JTI_CHARS, NonceKey, check_proof};
use warrant_jose::{Algorithm, SigningKey, sign_with_embedded_jwk};

const HTU: &str = "https://warrant.test/t/acme/token";
const ACCESS_TOKEN: &str = "at-fuzz";
/// The `iat` of the seeds.
const NOW: i64 = 1_700_000_000;

struct Fixture {
    ed: SigningKey,
    es: SigningKey,
    nonces: NonceKey,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let load = |alg, der: &[u8]| SigningKey::from_pkcs8(alg, der).unwrap();
        Fixture {
            ed: load(Algorithm::EdDsa, include_bytes!("../keys/ed25519.pk8")),
            es: load(Algorithm::Es256, include_bytes!("../keys/es256.pk8")),
            nonces: NonceKey::new(&[7; 32]),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(rest) = std::str::from_utf8(rest) else {
        return;
    };
    let fixture = fixture();
    let signer = if flags & 8 == 0 {
        &fixture.ed
    } else {
        &fixture.es
    };
    let proof = if flags & 1 == 0 {
        let _ = fixture.nonces.accepts(rest, NOW);
        rest.to_owned()
    } else {
        let typ = if flags & 16 == 0 { "dpop+jwt" } else { "JWT" };
        sign_with_embedded_jwk(signer, typ, rest.as_bytes()).unwrap()
    };
    let accepts = |n: &str| fixture.nonces.accepts(n, NOW);
    let mut policy = DpopPolicy::token_endpoint(HTU, NOW);
    if flags & 2 != 0 {
        policy.expected_nonce = Some(&accepts);
    }
    if flags & 4 != 0 {
        policy.access_token = Some(ACCESS_TOKEN);
    }

    if let Ok(checked) = check_proof(&proof, &policy) {
        if flags & 1 != 0 {
            assert_eq!(checked.jkt, signer.kid());
        }
        let jti_len = checked.jti.chars().count();
        assert!((1..=MAX_JTI_CHARS).contains(&jti_len));
        assert!(checked.iat >= NOW - policy.max_age_secs);
        assert!(checked.iat <= NOW + policy.skew_secs);
        assert!(checked.replay_until(&policy) >= NOW);
        assert_eq!(checked.replay_key().len(), 43);
    }
});
