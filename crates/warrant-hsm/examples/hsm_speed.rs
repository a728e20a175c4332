//! Signing throughput: SoftHSM2 through warrant-hsm against warrant-jose's software keys, one
//! thread, signatures per second for ES256 and RS256.
//!
//! `cargo run --release -p warrant-hsm --example hsm_speed [-- <module path>]`
//!
//! The module defaults to `WARRANT_TEST_SOFTHSM_MODULE` or /usr/lib/softhsm/libsofthsm2.so
//! (scripts/softhsm-setup installs it). Like the tests, it never touches the system token
//! store: it makes a token in a temporary directory and re-runs itself with `SOFTHSM2_CONF`
//! pointing there (setting the variable in-process would need `unsafe`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use warrant_hsm::{Algorithm, HsmModule};
use warrant_jose::SigningKey;
use zeroize::Zeroizing;

const CHILD: &str = "WARRANT_HSM_SPEED_CHILD";
const RUN_FOR: Duration = Duration::from_secs(2);

fn rate(mut sign: impl FnMut()) -> f64 {
    for _ in 0..10 {
        sign();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < RUN_FOR {
        sign();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let module = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("WARRANT_TEST_SOFTHSM_MODULE").ok())
        .unwrap_or_else(|| "/usr/lib/softhsm/libsofthsm2.so".into());
    if std::env::var_os(CHILD).is_none() {
        let dir = tempfile::tempdir().unwrap();
        let conf = warrant_testkit::softhsm::token_store(dir.path(), "speed", "1234", "5678")
            .unwrap_or_else(|e| panic!("{e} (run scripts/softhsm-setup)"));
        let status = Command::new(std::env::current_exe().unwrap())
            .arg(&module)
            .env("SOFTHSM2_CONF", &conf)
            .env(CHILD, "1")
            .status()
            .unwrap();
        std::process::exit(status.code().unwrap_or(1));
    }
    let hsm = HsmModule::open(&module, "speed", Zeroizing::new("1234".into()), 1).unwrap();
    let msg = [b'x'; 300]; // about the size of an access token's signing input
    println!(
        "single thread, {}s per figure, 300-byte signing input",
        RUN_FOR.as_secs()
    );
    println!(
        "{:<8} {:>14} {:>14} {:>8}",
        "alg", "softhsm sig/s", "software sig/s", "ratio"
    );
    for alg in [Algorithm::Es256, Algorithm::Rs256, Algorithm::Ps256] {
        let hsm_key = hsm.generate_key(&format!("speed-{alg}"), alg).unwrap();
        let (soft, _) = SigningKey::generate(alg).unwrap();
        let on_hsm = rate(|| {
            hsm_key.sign(&msg).unwrap();
        });
        let in_software = rate(|| {
            soft.sign(&msg).unwrap();
        });
        println!(
            "{:<8} {:>14.0} {:>14.0} {:>7.1}x",
            alg.as_str(),
            on_hsm,
            in_software,
            in_software / on_hsm
        );
    }
}
