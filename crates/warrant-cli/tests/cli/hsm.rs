//! `hsm.modules.*` at start-up: `serve` opens each configured PKCS#11 module and refuses to
//! start when one cannot be opened (fail closed). The SoftHSM2 token lives in a temporary
//! directory (its own `softhsm2.conf`, passed to the server process as `SOFTHSM2_CONF`); the
//! module comes from `WARRANT_TEST_SOFTHSM_MODULE` (scripts/test) or the usual Debian path, and
//! these tests fail, not skip, without it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{describe, free_port, json_of, run, stderr, warrant};

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

/// `serve` with a configured module: a tenant switched to it (admin API, by module name) and
/// rotated `--now` signs its tokens on the token (the kid is the key the HSM holds, published
/// in the JWKS, and jsonwebtoken verifies the token), while `default` keeps software keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_signs_a_tenants_tokens_in_the_hsm() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm_token(dir.path());
    let file = config(dir.path(), &softhsm_module(), PIN);
    let data = dir.path().join("data");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = warrant()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--public-url", &url])
        .arg("--config")
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .env("SOFTHSM2_CONF", &conf)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let server_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let http = reqwest::Client::new();
    let creds_path = data.join("admin-credentials.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("warrant serve exited with {status}:\n{}", server_log());
        }
        let ready = http
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready && creds_path.exists() {
            break;
        }
        assert!(Instant::now() < deadline, "not ready:\n{}", server_log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let creds: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&creds_path).unwrap()).unwrap();
    let (id, secret) = (
        creds["client_id"].as_str().unwrap().to_owned(),
        creds["client_secret"].as_str().unwrap().to_owned(),
    );
    let admin_token = http
        .post(format!("{url}/t/system/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", &format!("{url}/admin")),
            ("scope", "admin"),
        ])
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        http.request(method, format!("{url}/admin/v1{path}"))
            .bearer_auth(&admin_token)
            .json(&body)
            .send()
    };
    let r = admin(
        reqwest::Method::PATCH,
        "/tenants/default",
        serde_json::json!({"key_source": {"hsm": {"module": "main"}}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{}", server_log());
    let r = admin(
        reqwest::Method::POST,
        "/tenants/default/keys/rotate",
        serde_json::json!({"now": true}),
    )
    .await
    .unwrap();
    assert!(r.status().is_success(), "{}", server_log());
    let log = server_log();
    let generated = log
        .lines()
        .find(|l| l.contains("signing key generated in the HSM"))
        .unwrap_or_else(|| panic!("no generation line:\n{log}"));
    let v: serde_json::Value = serde_json::from_str(generated).unwrap();
    let kid = v["fields"]["kid"].as_str().unwrap().to_owned();
    assert!(
        v["fields"]["label"]
            .as_str()
            .unwrap()
            .starts_with("warrant-default-"),
        "{generated}"
    );

    let r = admin(
        reqwest::Method::POST,
        "/tenants/default/service-accounts",
        serde_json::json!({"name": "svc", "default_audience": "https://api.example",
            "grants": [{"audience": "https://api.example", "scopes": ["read"]}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201, "{}", server_log());
    let account = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = admin(
        reqwest::Method::POST,
        &format!("/tenants/default/service-accounts/{account}/secrets"),
        serde_json::json!({"name": "initial"}),
    )
    .await
    .unwrap();
    let secret = r.json::<serde_json::Value>().await.unwrap()["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http
        .post(format!("{url}/t/default/token"))
        .basic_auth(&account, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", server_log());
    let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwks: jsonwebtoken::jwk::JwkSet = json_of(http.get(format!("{url}/t/default/jwks"))).await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid).expect("kid in the JWKS")).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&["https://api.example"]);
    jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v).expect("jsonwebtoken verifies");
    let _ = child.kill();
    let _ = child.wait();
}
