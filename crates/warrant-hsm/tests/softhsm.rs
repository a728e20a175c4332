//! warrant-hsm against SoftHSM2: keys generated on a token, JWS signed there and verified by our
//! verifier and by an independent one (jsonwebtoken with RustCrypto).
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once, at `C_Initialize`, and a process initialises a PKCS#11
//! module once. Setting the variable from inside a test would need `std::env::set_var`, which
//! is `unsafe` (and `unsafe_code` is forbidden here). So each test that needs the token runs in
//! a child process of this same binary: the parent makes a temporary directory with its own
//! `softhsm2.conf` and token (never the system token store), then runs `<this binary> --exact
//! <test>` with `SOFTHSM2_CONF` set; in the child the test body runs against one shared fixture
//! (a `OnceLock` holding the opened module).
//!
//! The module comes from `WARRANT_TEST_SOFTHSM_MODULE` (scripts/test sets it from
//! scripts/softhsm-setup); when that is set but unusable the tests fail. Unset, they look at the
//! usual Debian paths and fail with a message pointing at scripts/softhsm-setup.
//!
//! Index: tokens_verify_with_both_verifiers, eddsa_when_the_token_offers_it,
//! concurrent_signing_over_a_small_pool, wrong_pin_is_login_failed_without_the_pin,
//! unknown_keys_and_tokens, missing_module_fails_cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use warrant_hsm::{Algorithm, HsmError, HsmKey, HsmModule, KeyRef};
use warrant_jose::{PublicKey, b64, verify_compact};
use warrant_testkit::softhsm;
use zeroize::Zeroizing;

const TOKEN: &str = "warrant-test";
const PIN: &str = "1234";
const SO_PIN: &str = "5678";
/// Set in the child process that runs one test body against a prepared token.
const CHILD: &str = "WARRANT_HSM_TEST_CHILD";

fn module_path() -> PathBuf {
    softhsm::module().unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `body` in a child process with its own SoftHSM2 token store and an initialised token
/// `warrant-test` (user PIN 1234); `name` is the test's own name.
fn with_token(name: &str, body: impl FnOnce(&Fixture)) {
    if softhsm::in_child_with_token(name, CHILD, TOKEN, PIN, SO_PIN) {
        body(fixture());
    }
}

struct Fixture {
    module_path: PathBuf,
    module: HsmModule,
}

/// One per child process: the module opened once (pool of 2 sessions).
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let module_path = module_path();
        let module = HsmModule::open(&module_path, TOKEN, Zeroizing::new(PIN.into()), 2).unwrap();
        Fixture {
            module_path,
            module,
        }
    })
}

/// A compact JWS signed by hand: header `{"alg","typ":"at+jwt","kid"}`, claims, signature.
fn jws(key: &HsmKey, claims: &serde_json::Value) -> String {
    let header =
        serde_json::json!({ "alg": key.alg().as_str(), "typ": "at+jwt", "kid": key.kid() });
    let input = format!(
        "{}.{}",
        b64::encode(serde_json::to_vec(&header).unwrap()),
        b64::encode(serde_json::to_vec(claims).unwrap())
    );
    let sig = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64::encode(sig))
}

fn verify_with_both(key: &HsmKey) {
    let claims = serde_json::json!({ "sub": "sa_hsm", "iss": "https://id.example", "n": 7 });
    let token = jws(key, &claims);
    // ours
    let public = PublicKey::from_jwk(key.public_jwk()).unwrap();
    let verified = verify_compact(&token, &[public], Some("at+jwt")).unwrap();
    assert_eq!(verified.claims["sub"], "sa_hsm");
    assert_eq!(verified.alg, key.alg());
    // independent: jsonwebtoken (RustCrypto), from the published JWK
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(serde_json::to_value(key.public_jwk()).unwrap()).unwrap();
    assert_eq!(
        jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .unwrap(),
        key.kid(),
        "the kid is the RFC 7638 thumbprint"
    );
    let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let decoded = jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &v).unwrap();
    assert_eq!(decoded.claims, claims);
    // and a tampered token fails
    let mut parts: Vec<&str> = token.split('.').collect();
    let other = b64::encode(br#"{"sub":"someone-else"}"#);
    parts[1] = &other;
    let forged = parts.join(".");
    let public = PublicKey::from_jwk(key.public_jwk()).unwrap();
    assert!(verify_compact(&forged, &[public], None).is_err());
    assert!(jsonwebtoken::decode::<serde_json::Value>(&forged, &decoding, &v).is_err());
}

#[test]
fn tokens_verify_with_both_verifiers() {
    with_token("tokens_verify_with_both_verifiers", |f| {
        let es = f
            .module
            .generate_key("es256-key", Algorithm::Es256)
            .unwrap();
        let jwk = es.public_jwk();
        assert_eq!(
            (jwk.kty.as_str(), jwk.crv.as_deref()),
            ("EC", Some("P-256"))
        );
        assert_eq!(jwk.use_.as_deref(), Some("sig"));
        assert_eq!(jwk.alg.as_deref(), Some("ES256"));
        assert_eq!(jwk.kid.as_deref(), Some(es.kid()));
        assert_eq!(es.sign(b"x").unwrap().len(), 64, "r || s");
        verify_with_both(&es);

        let rs = f.module.generate_key("rsa-key", Algorithm::Rs256).unwrap();
        assert_eq!(rs.sign(b"x").unwrap().len(), 256);
        verify_with_both(&rs);
        // the same RSA key opened for PS256: same kid, PSS padding, verifies as PS256 only
        let ps = f
            .module
            .key(KeyRef::Label("rsa-key"), Algorithm::Ps256)
            .unwrap();
        assert_eq!(ps.kid(), rs.kid());
        verify_with_both(&ps);
        let ps_token = jws(&ps, &serde_json::json!({ "sub": "x" }));
        let rs_public = PublicKey::from_jwk(rs.public_jwk()).unwrap();
        assert!(verify_compact(&ps_token, &[rs_public], None).is_err());

        // found again by label, by id, and from a second module on the same token
        let again = f
            .module
            .key(KeyRef::Label("es256-key"), Algorithm::Es256)
            .unwrap();
        assert_eq!(again.public_jwk(), es.public_jwk());
        let second = HsmModule::open(&f.module_path, TOKEN, Zeroizing::new(PIN.into()), 1).unwrap();
        let from_second = second
            .key(KeyRef::Label("es256-key"), Algorithm::Es256)
            .unwrap();
        verify_with_both(&from_second);
        // a key opened for the wrong algorithm is refused
        assert!(matches!(
            f.module.key(KeyRef::Label("es256-key"), Algorithm::Rs256),
            Err(HsmError::UnsupportedKey { .. })
        ));
        assert!(matches!(
            f.module.key(KeyRef::Label("rsa-key"), Algorithm::Es256),
            Err(HsmError::UnsupportedKey { .. })
        ));
        // a label names one key
        assert!(matches!(
            f.module.generate_key("es256-key", Algorithm::Es256),
            Err(HsmError::KeyExists { .. })
        ));
    });
}

#[test]
fn eddsa_when_the_token_offers_it() {
    with_token("eddsa_when_the_token_offers_it", |f| {
        if !f.module.supports(Algorithm::EdDsa).unwrap() {
            println!("this SoftHSM2 has no CKM_EDDSA: EdDSA not exercised");
            return;
        }
        let ed = f.module.generate_key("ed-key", Algorithm::EdDsa).unwrap();
        assert_eq!(ed.public_jwk().crv.as_deref(), Some("Ed25519"));
        verify_with_both(&ed);
    });
}

#[test]
fn concurrent_signing_over_a_small_pool() {
    with_token("concurrent_signing_over_a_small_pool", |f| {
        assert_eq!(f.module.pool_size(), 2);
        let es = f
            .module
            .generate_key("shared-es", Algorithm::Es256)
            .unwrap();
        let rs = f
            .module
            .generate_key("shared-rs", Algorithm::Ps256)
            .unwrap();
        let es_public = PublicKey::from_jwk(es.public_jwk()).unwrap();
        let rs_public = PublicKey::from_jwk(rs.public_jwk()).unwrap();
        std::thread::scope(|scope| {
            for t in 0..8 {
                let (es, rs) = (&es, &rs);
                let keys = [es_public.clone(), rs_public.clone()];
                scope.spawn(move || {
                    for i in 0..25 {
                        let key = if (t + i) % 3 == 0 { rs } else { es };
                        let token = jws(key, &serde_json::json!({ "t": t, "i": i }));
                        let v = verify_compact(&token, &keys, Some("at+jwt")).unwrap();
                        assert_eq!(v.claims["i"], i);
                    }
                });
            }
        });
    });
}

#[test]
fn wrong_pin_is_login_failed_without_the_pin() {
    with_token("wrong_pin_is_login_failed_without_the_pin", |_| {
        // Before the fixture logs in: the token itself refuses the PIN.
        let path = module_path();
        let wrong = "98765-not-the-pin";
        let e = HsmModule::open(&path, TOKEN, Zeroizing::new(wrong.into()), 1).unwrap_err();
        assert!(matches!(e, HsmError::LoginFailed { .. }), "{e:?}");
        let text = format!("{e} {e:?}");
        assert!(!text.contains(wrong) && text.contains("PIN"), "{text}");
        // Once logged in, PKCS#11 would answer "already logged in" without checking: a second
        // open with a wrong PIN must still fail.
        let f = fixture();
        let e =
            HsmModule::open(&f.module_path, TOKEN, Zeroizing::new(wrong.into()), 1).unwrap_err();
        assert!(matches!(e, HsmError::LoginFailed { .. }), "{e:?}");
        assert!(!format!("{e} {e:?}").contains(wrong));
        // and the right one still works
        HsmModule::open(&f.module_path, TOKEN, Zeroizing::new(PIN.into()), 1).unwrap();
        // Debug never shows the PIN
        assert!(!format!("{:?}", f.module).contains(PIN));
    });
}

#[test]
fn unknown_keys_and_tokens() {
    with_token("unknown_keys_and_tokens", |f| {
        let e = f
            .module
            .key(KeyRef::Label("no-such-key"), Algorithm::Es256)
            .unwrap_err();
        assert!(matches!(e, HsmError::KeyNotFound { .. }), "{e:?}");
        assert!(e.to_string().contains("no-such-key"));
        assert!(matches!(
            f.module.key(KeyRef::Id(&[1, 2, 3]), Algorithm::Es256),
            Err(HsmError::KeyNotFound { .. })
        ));
        let e = HsmModule::open(
            &f.module_path,
            "no-such-token",
            Zeroizing::new(PIN.into()),
            1,
        )
        .unwrap_err();
        assert!(matches!(e, HsmError::TokenNotFound { .. }), "{e:?}");
    });
}

/// Needs no token: runs in this process.
#[test]
fn missing_module_fails_cleanly() {
    for path in [
        Path::new("/nonexistent/libpkcs11-missing.so"),
        Path::new("relative/lib.so"),
    ] {
        let e = HsmModule::open(path, TOKEN, Zeroizing::new(PIN.into()), 1).unwrap_err();
        assert!(matches!(e, HsmError::ModuleLoad { .. }), "{e:?}");
        assert!(e.to_string().contains("lib"), "{e}");
    }
}
