//! `hsm.modules.*` at start-up: `serve` opens each configured PKCS#11 module and refuses to
//! start when one cannot be opened (fail closed). The SoftHSM2 token lives in a temporary
//! directory (its own `softhsm2.conf`, passed to the server process as `SOFTHSM2_CONF`); the
//! module comes from `WARRANT_TEST_SOFTHSM_MODULE` (scripts/test) or the usual Debian path, and
//! these tests fail, not skip, without it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{describe, free_port, run, stderr, warrant};

const PIN: &str = "1234";

fn softhsm_module() -> PathBuf {
    warrant_testkit::softhsm::module().unwrap_or_else(|e| panic!("{e}"))
}

/// A token store with one token `warrant-cli` (user PIN 1234); returns the conf path.
fn softhsm_token(dir: &Path) -> PathBuf {
    warrant_testkit::softhsm::token_store(dir, "warrant-cli", PIN, "5678")
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A configuration file naming one module `main`, with its PIN file (mode 0600).
fn config(dir: &Path, library: &Path, pin: &str) -> PathBuf {
    let pin_file = dir.join("pin");
    std::fs::write(&pin_file, format!("{pin}\n")).unwrap();
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = dir.join("warrant.toml");
    std::fs::write(
        &file,
        format!(
            "[hsm.modules.main]\nlibrary = {:?}\ntoken_label = \"warrant-cli\"\npin_file = {:?}\nsessions = 2\n",
            library.display().to_string(),
            pin_file.display().to_string()
        ),
    )
    .unwrap();
    file
}

fn serve(config: &Path, data: &Path) -> std::process::Command {
    let mut c = warrant();
    c.args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data);
    c
}

#[test]
fn serve_refuses_to_start_when_an_hsm_module_cannot_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm_token(dir.path());
    // a library that does not exist
    let file = config(dir.path(), Path::new("/nonexistent/libpkcs11.so"), PIN);
    let o = run(serve(&file, &dir.path().join("data")).env("SOFTHSM2_CONF", &conf));
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(
        stderr(&o).contains("hsm.modules.main") && stderr(&o).contains("cannot load"),
        "{}",
        describe(&o)
    );
    // the right library, a wrong PIN: refused, and the PIN is not printed
    let wrong = "86420-wrong";
    let file = config(dir.path(), &softhsm_module(), wrong);
    let o = run(serve(&file, &dir.path().join("data")).env("SOFTHSM2_CONF", &conf));
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(stderr(&o).contains("login"), "{}", describe(&o));
    assert!(!stderr(&o).contains(wrong), "{}", describe(&o));
}

#[test]
fn serve_opens_a_configured_softhsm_module() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm_token(dir.path());
    let file = config(dir.path(), &softhsm_module(), PIN);
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = serve(&file, &dir.path().join("data"))
        .env("SOFTHSM2_CONF", &conf)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("HSM module opened") || Instant::now() > deadline {
            break text;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("warrant serve exited with {status}:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    let line = text
        .lines()
        .find(|l| l.contains("HSM module opened"))
        .unwrap_or_else(|| panic!("no HSM start-up line:\n{text}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["fields"]["module"], "main", "{line}");
    assert!(v["fields"]["slot"].is_u64(), "{line}");
}
