//! SoftHSM2 for tests: where the module is, and a throwaway token store.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once, at `C_Initialize`, so a test passes the returned
//! configuration path to a child process (`Command::env`) rather than setting it in its own
//! process (which would need `unsafe`). Nothing here touches the system token store.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Set by scripts/test from scripts/softhsm-setup.
pub const MODULE_VAR: &str = "WARRANT_TEST_SOFTHSM_MODULE";

const USUAL_PATHS: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// The SoftHSM2 module: `WARRANT_TEST_SOFTHSM_MODULE` when set (an error if it is not a usable
/// file: tests fail, never skip), else the usual Debian paths.
pub fn module() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(MODULE_VAR) {
        let p = PathBuf::from(p);
        if p.is_absolute() && p.is_file() {
            return Ok(p);
        }
        return Err(format!(
            "{MODULE_VAR}={} is not a usable SoftHSM2 module; run scripts/softhsm-setup",
            p.display()
        ));
    }
    USUAL_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "SoftHSM2 is not installed: run scripts/softhsm-setup (it installs Debian's \
                 softhsm2 and prints the module path for {MODULE_VAR})"
            )
        })
}

/// Makes a token store in `dir` (`<dir>/tokens`, `<dir>/softhsm2.conf`) with one initialised
/// token `label`, and returns the configuration path to pass as `SOFTHSM2_CONF`.
pub fn token_store(dir: &Path, label: &str, pin: &str, so_pin: &str) -> Result<PathBuf, String> {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).map_err(|e| format!("{}: {e}", tokens.display()))?;
    let conf = dir.join("softhsm2.conf");
    let text = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
        tokens.display()
    );
    std::fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
    let out = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", label])
        .args(["--pin", pin, "--so-pin", so_pin])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .map_err(|e| format!("softhsm2-util: {e}; run scripts/softhsm-setup"))?;
    if !out.status.success() {
        return Err(format!(
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(conf)
}

/// Runs the test `name` (its own `#[test]` name) again in a child process whose
/// `SOFTHSM2_CONF` is a fresh token store with token `label`, and asserts that it passed.
/// Returns `true` in that child — the caller then runs the test's body — and `false` in the
/// parent once the child has passed. `child_var` marks the child; each test binary names its own.
pub fn in_child_with_token(
    name: &str,
    child_var: &str,
    label: &str,
    pin: &str,
    so_pin: &str,
) -> bool {
    if std::env::var_os(child_var).is_some() {
        return true;
    }
    let module = module().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let conf = token_store(dir.path(), label, pin, so_pin).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env("SOFTHSM2_CONF", &conf)
        .env(MODULE_VAR, &module)
        .env(child_var, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the test failed in its SoftHSM2 process"
    );
    assert!(
        stdout.contains("1 passed"),
        "the child process did not run {name}"
    );
    false
}
