//! RFC 7523 client assertions (`private_key_jwt`): `claimed_client_id`, `claimed_key_id` and
//! `check_assertion` (warrant-core `client_auth::assertion`) on arbitrary input.
//!
//! The first byte picks how the rest is read:
//! - bit 0 clear: the rest is the assertion itself, checked against fixed registered keys (with
//!   and without `kid`); the fuzzer cannot forge a signature, so this explores everything up to
//!   and including the signature check.
//! - bit 0 set: the rest is a claims set, which the target signs (EdDSA, header from bits 2-3)
//!   before checking it: this explores every claim check after the signature.
//!
//! Bit 1 turns on `accept_token_endpoint_audience`. Must never panic; an accepted assertion
//! must satisfy what the validator promises (client id, `jti` length, `exp` window).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warrant_core::Timestamp;
use warrant_core::client_auth::assertion::{
    AssertionPolicy, MAX_JTI_LEN, check_assertion, claimed_client_id, claimed_key_id,
};
use warrant_jose::{Algorithm, PublicKey, SigningKey, b64};

const CLIENT: &str = "sa_1";
const ISSUER: &str = "https://warrant.test/t/acme";
const TOKEN_ENDPOINT: &str = "https://warrant.test/t/acme/token";
/// 2023-11-14T22:13:20Z, the `iat` of the seeds.
const NOW: i64 = 1_700_000_000;

struct Fixture {
    /// Signs the claims of the second mode.
    signer: SigningKey,
    /// The client's registered keys.
    registered: Vec<PublicKey>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let load = |alg, der: &[u8]| SigningKey::from_pkcs8(alg, der).unwrap();
        let ed = load(Algorithm::EdDsa, include_bytes!("../keys/ed25519.pk8"));
        let es = load(Algorithm::Es256, include_bytes!("../keys/es256.pk8"));
        let rs = load(Algorithm::Rs256, include_bytes!("../keys/rsa.pk8"));
        // EdDSA and RS256 under their kid, ES256 registered without one.
        let mut es_jwk = es.public_jwk().clone();
        es_jwk.kid = None;
        let registered = vec![
            PublicKey::from_jwk(ed.public_jwk()).unwrap(),
            PublicKey::from_jwk(&es_jwk).unwrap(),
            PublicKey::from_jwk(rs.public_jwk()).unwrap(),
        ];
        Fixture {
            signer: ed,
            registered,
        }
    })
}

/// Headers for the signed mode: with and without `kid`, each accepted `typ`, a refused one.
fn header(choice: u8, kid: &str) -> String {
    match choice & 3 {
        0 => format!(r#"{{"alg":"EdDSA","kid":"{kid}","typ":"JWT"}}"#),
        1 => r#"{"alg":"EdDSA"}"#.to_owned(),
        2 => format!(r#"{{"alg":"EdDSA","kid":"{kid}","typ":"client-authentication+jwt"}}"#),
        _ => r#"{"alg":"EdDSA","typ":"at+jwt"}"#.to_owned(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(rest) = std::str::from_utf8(rest) else {
        return;
    };
    let fixture = fixture();
    let assertion = if flags & 1 == 0 {
        rest.to_owned()
    } else {
        let signer = &fixture.signer;
        let input = format!(
            "{}.{}",
            b64::encode(header(flags >> 2, signer.kid())),
            b64::encode(rest)
        );
        let sig = signer.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64::encode(sig))
    };
    let mut policy = AssertionPolicy::new(ISSUER, TOKEN_ENDPOINT);
    policy.accept_token_endpoint_audience = flags & 2 != 0;
    let now = Timestamp::from_secs(NOW);

    let claimed = claimed_client_id(&assertion);
    let _ = claimed_key_id(&assertion);
    let client_id = claimed.as_deref().unwrap_or(CLIENT);
    if let Ok(checked) = check_assertion(&assertion, &fixture.registered, client_id, &policy, now) {
        assert_eq!(checked.client_id, client_id);
        assert_eq!(claimed.as_deref(), Some(client_id));
        let jti_len = checked.jti.chars().count();
        assert!((1..=MAX_JTI_LEN).contains(&jti_len));
        assert!(NOW < checked.exp.saturating_add(policy.skew_secs));
        assert!(checked.exp <= NOW + policy.max_ahead_secs + policy.skew_secs);
    }
});
