//! `warrant serve` configuration: flags > `WARRANT_*` environment variables > the TOML file >
//! defaults (DESIGN.md, "Operations"). Nested keys use `__` in variables (`WARRANT_TLS__CERT`,
//! `WARRANT_RATE_LIMIT__PER_ADDRESS_PER_SECOND`). Unknown keys are errors, so a typo never
//! silently falls back to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Deserialize;
use toml::{Table, Value};

/// Variables that belong to other verbs or are read directly (never configuration keys).
const NOT_CONFIG_VARS: &[&str] = &[
    "WARRANT_CONFIG",
    "WARRANT_MASTER_KEY",
    "WARRANT_URL",
    "WARRANT_CREDENTIALS",
    "WARRANT_CLIENT_SECRET",
    "WARRANT_LOG",
    "WARRANT_TOKEN",
];

/// A duration as TOML and variables give it: `"10m"` or a number of seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Dur {
    Secs(u64),
    Text(String),
}

impl Dur {
    fn secs(&self, key: &str) -> anyhow::Result<u64> {
        match self {
            Dur::Secs(s) => Ok(*s),
            Dur::Text(t) => warrant_core::time::parse_duration(t)
                .with_context(|| format!("{key}: {t:?} is not a duration like 90s, 10m, 1h")),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    per_address_per_second: Option<f64>,
    per_address_burst: Option<u32>,
    failed_auth_per_client_per_minute: Option<f64>,
    failed_auth_burst: Option<u32>,
    feed_streams_per_account: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    /// `"90d"`-style age, or `"forever"`.
    retention: Option<Dur>,
    checkpoint_interval: Option<Dur>,
    aggregate_window: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    forwarded_client_cert: Option<bool>,
}

/// `[outbound]`: the policy of the requests Warrant makes itself (JWKS by `jwks_uri`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutbound {
    /// CIDRs, as a list or (from a variable) a comma-separated string.
    allow_networks: Option<OneOrMany>,
    ca_file: Option<PathBuf>,
    timeout: Option<Dur>,
}

/// A list of strings, or one string of comma-separated items (`WARRANT_OUTBOUND__ALLOW_NETWORKS=
/// 10.0.0.0/8,fd00::/8`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<String>),
    One(String),
}

/// `[hsm.modules.<name>]`: PKCS#11 modules the server opens at start-up (docs/hsm.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHsm {
    #[serde(default)]
    modules: BTreeMap<String, RawHsmModule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHsmModule {
    library: PathBuf,
    token_label: String,
    pin_file: PathBuf,
    sessions: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    public_url: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    admin_listen: Option<String>,
    max_token_lifetime: Option<Dur>,
    jwks_max_age: Option<Dur>,
    trusted_proxies: Option<Vec<String>>,
    tls: Option<RawTls>,
    rate_limit: Option<RawRateLimit>,
    audit: Option<RawAudit>,
    outbound: Option<RawOutbound>,
    hsm: Option<RawHsm>,
    dpop: Option<RawDpop>,
}

/// `[dpop]`: DPoP proofs at the token endpoint (docs/dpop.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDpop {
    require_nonce: Option<bool>,
}

/// Validated server configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub public_url: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub admin_listen: Option<SocketAddr>,
    pub max_token_lifetime: u64,
    pub jwks_max_age: u64,
    pub trusted_proxies: Vec<String>,
    pub rate_limit: RateLimitConfig,
    /// `tls.cert` and `tls.key`: serve HTTPS (both listeners) when set; see docs/tls.md.
    pub tls: Option<TlsConfig>,
    /// `tls.client_ca`: CAs trusted to issue client certificates for `tls_client_auth`, for
    /// certificates presented in our own handshake or forwarded by a trusted proxy (which is
    /// why it does not need `tls.cert`). Default none: no certificate counts as CA-issued.
    pub tls_client_ca: Option<PathBuf>,
    /// `tls.forwarded_client_cert`: believe RFC 9440 `Client-Cert` from `trusted_proxies`
    /// (default false: a proxy trusted for `X-Forwarded-For` may still pass a client's own
    /// `Client-Cert` header through, and a certificate is public).
    pub tls_forwarded_client_cert: bool,
    pub audit: warrant_core::audit::AuditSettings,
    /// `hsm.modules.*`, in name order; opened at start-up (fail closed), not yet used to sign.
    pub hsm: Vec<HsmModuleConfig>,
    /// `outbound.*`: the policy of outbound requests (JWKS by `jwks_uri`).
    pub outbound: OutboundConfig,
    /// `dpop.require_nonce`: DPoP proofs must carry a server nonce (RFC 9449 §8). Default false.
    pub dpop_require_nonce: bool,
    /// Keys given that this version accepts but does not act on (logged as a warning).
    pub inert_keys: Vec<&'static str>,
    /// `WARRANT_*` variables that name no configuration key (logged as a warning).
    pub ignored_vars: Vec<String>,
}

/// Rate limits; `0` disables one. Defaults: 200 requests/s per address with bursts of 400; 30
/// failed authentications a minute per client id with bursts of 10.
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    pub per_address_per_second: f64,
    pub per_address_burst: u32,
    pub failed_auth_per_client_per_minute: f64,
    pub failed_auth_burst: u32,
    /// Open `/revocations/stream` connections per account (default 4).
    pub feed_streams_per_account: u32,
}

/// `tls.cert` and `tls.key`: PEM files, read at start-up (docs/tls.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// `tls.cert`: the server certificate, then its intermediates.
    pub cert: PathBuf,
    /// `tls.key`: the server certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `tls.*`: HTTPS when both `cert` and `key` are set, and the client CA.
fn validate_tls(raw: Option<RawTls>) -> anyhow::Result<(Option<TlsConfig>, Option<PathBuf>)> {
    let Some(raw) = raw else {
        return Ok((None, None));
    };
    let tls = match (raw.cert, raw.key) {
        (Some(cert), Some(key)) => Some(TlsConfig { cert, key }),
        (None, None) => None,
        (Some(_), None) => bail!("tls.cert is set but tls.key is not: set both"),
        (None, Some(_)) => bail!("tls.key is set but tls.cert is not: set both"),
    };
    Ok((tls, raw.client_ca))
}

/// `outbound.*`, validated (DESIGN.md, "Outbound requests"; docs/configuration.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundConfig {
    /// `outbound.allow_networks`: non-public networks that may be reached anyway (loopback,
    /// private, link-local, …). Default none.
    pub allow_networks: Vec<warrant_server::outbound::Network>,
    /// `outbound.ca_file`: PEM certificates trusted beside the platform's roots, read at
    /// start-up. Default none.
    pub ca_file: Option<PathBuf>,
    /// `outbound.timeout`: the limit of one request, resolution and body included. Default 5s.
    pub timeout_secs: u64,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            allow_networks: Vec::new(),
            ca_file: None,
            timeout_secs: warrant_server::outbound::DEFAULT_TIMEOUT.as_secs(),
        }
    }
}

impl OutboundConfig {
    /// The server's policy, with `ca_file` read.
    pub fn policy(&self) -> anyhow::Result<warrant_server::outbound::OutboundPolicy> {
        let ca_pem = self
            .ca_file
            .as_ref()
            .map(|path| {
                std::fs::read(path)
                    .with_context(|| format!("reading outbound.ca_file {}", path.display()))
            })
            .transpose()?;
        Ok(warrant_server::outbound::OutboundPolicy {
            allow_networks: self.allow_networks.clone(),
            ca_pem,
            timeout: std::time::Duration::from_secs(self.timeout_secs),
        })
    }
}

fn validate_outbound(raw: Option<RawOutbound>) -> anyhow::Result<OutboundConfig> {
    let raw = raw.unwrap_or_default();
    let d = OutboundConfig::default();
    let networks = match raw.allow_networks {
        None => Vec::new(),
        Some(OneOrMany::Many(v)) => v,
        Some(OneOrMany::One(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    let allow_networks = networks
        .iter()
        .map(|n| {
            n.trim()
                .parse()
                .map_err(|e: String| anyhow::anyhow!("outbound.allow_networks: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let timeout_secs = raw
        .timeout
        .map(|t| t.secs("outbound.timeout"))
        .transpose()?
        .unwrap_or(d.timeout_secs);
    if !(1..=60).contains(&timeout_secs) {
        bail!("outbound.timeout must be between 1s and 1m");
    }
    Ok(OutboundConfig {
        allow_networks,
        ca_file: raw.ca_file,
        timeout_secs,
    })
}

/// One `[hsm.modules.<name>]` entry, validated: `library` is absolute, `pin_file` exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmModuleConfig {
    /// The name tenant key settings will refer to (letters, digits, `-`, `_`).
    pub name: String,
    /// Absolute path of the PKCS#11 library.
    pub library: PathBuf,
    /// `CKA_LABEL` of the token (at most 32 bytes); the slot is found by it at start-up.
    pub token_label: String,
    /// File holding the user PIN; must not be accessible to other users.
    pub pin_file: PathBuf,
    /// Logged-in sessions kept open (default 4, 1–64): concurrent signatures on this token.
    pub sessions: usize,
}

fn validate_hsm(raw: Option<RawHsm>) -> anyhow::Result<Vec<HsmModuleConfig>> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(raw.modules.len());
    for (name, m) in raw.modules {
        let key = format!("hsm.modules.{name}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("{key}: a module name is letters, digits, '-' and '_'");
        }
        if !m.library.is_absolute() {
            bail!("{key}.library must be an absolute path");
        }
        if m.token_label.is_empty() || m.token_label.len() > 32 {
            bail!("{key}.token_label must be 1 to 32 bytes (a PKCS#11 token label)");
        }
        if !m.pin_file.is_file() {
            bail!(
                "{key}.pin_file {} does not exist or is not a file",
                m.pin_file.display()
            );
        }
        let sessions = m.sessions.unwrap_or(4);
        if !(1..=64).contains(&sessions) {
            bail!("{key}.sessions must be between 1 and 64");
        }
        out.push(HsmModuleConfig {
            name,
            library: m.library,
            token_label: m.token_label,
            pin_file: m.pin_file,
            sessions: sessions as usize,
        });
    }
    Ok(out)
}

/// Turns a variable's text into a TOML value: integer, float, boolean, array, else string.
fn env_value(raw: &str) -> Value {
    if let Ok(i) = raw.parse::<i64>() {
        return Value::Integer(i);
    }
    if let Ok(f) = raw.parse::<f64>() {
        return Value::Float(f);
    }
    if let Ok(b) = raw.parse::<bool>() {
        return Value::Boolean(b);
    }
    if raw.trim_start().starts_with('[')
        && let Ok(t) = format!("v = {raw}").parse::<Table>()
        && let Some(v) = t.get("v")
    {
        return v.clone();
    }
    Value::String(raw.to_owned())
}

fn set_path(table: &mut Table, path: &[String], value: Value) -> anyhow::Result<()> {
    let Some((last, parents)) = path.split_last() else {
        return Ok(());
    };
    let mut t = table;
    for p in parents {
        let entry = t
            .entry(p.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        t = match entry {
            Value::Table(inner) => inner,
            _ => bail!("configuration key {p} is not a table"),
        };
    }
    t.insert(last.clone(), value);
    Ok(())
}

/// Flag values (already parsed by clap); `None` means "not given on the command line".
#[derive(Debug, Default)]
pub struct Flags {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub admin_listen: Option<String>,
    pub max_token_lifetime: Option<String>,
    pub jwks_max_age: Option<String>,
}

/// Loads the layers and validates the result.
pub fn load(
    file: Option<&std::path::Path>,
    flags: Flags,
    env: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<ServeConfig> {
    let mut table = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the configuration file {}", path.display()))?
            .parse::<Table>()
            .with_context(|| format!("parsing the configuration file {}", path.display()))?,
        None => Table::new(),
    };
    let mut ignored_vars = Vec::new();
    for (k, v) in env {
        let Some(rest) = k.strip_prefix("WARRANT_") else {
            continue;
        };
        if NOT_CONFIG_VARS.contains(&k.as_str()) || rest.is_empty() {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        // A variable naming no configuration section belongs to something else in the
        // environment (a test harness, another tool): warn, don't refuse. Within a known
        // section, an unknown key is a typo and is refused like one in the file.
        if !TOP_LEVEL_KEYS.contains(&path[0].as_str()) {
            ignored_vars.push(k);
            continue;
        }
        set_path(&mut table, &path, env_value(&v))?;
    }
    let flag_values = [
        ("listen", flags.listen),
        ("public_url", flags.public_url),
        ("data_dir", flags.data_dir.map(|p| p.display().to_string())),
        ("database_url", flags.database_url),
        ("admin_listen", flags.admin_listen),
        ("max_token_lifetime", flags.max_token_lifetime),
        ("jwks_max_age", flags.jwks_max_age),
    ];
    for (k, v) in flag_values {
        if let Some(v) = v {
            table.insert(k.into(), Value::String(v));
        }
    }
    let raw: RawConfig = Value::Table(table)
        .try_into()
        .context("invalid configuration (flags, WARRANT_* variables or the file)")?;
    let mut cfg = validate(raw)?;
    ignored_vars.sort();
    cfg.ignored_vars = ignored_vars;
    Ok(cfg)
}

/// The configuration's top-level keys (what `WARRANT_<KEY>` may name).
const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "public_url",
    "data_dir",
    "database_url",
    "admin_listen",
    "max_token_lifetime",
    "jwks_max_age",
    "trusted_proxies",
    "tls",
    "rate_limit",
    "outbound",
    "audit",
    "hsm",
    "dpop",
];

fn validate(raw: RawConfig) -> anyhow::Result<ServeConfig> {
    let listen: SocketAddr = raw
        .listen
        .as_deref()
        .unwrap_or("127.0.0.1:8080")
        .parse()
        .context("listen must be an address like 127.0.0.1:8080")?;
    let admin_listen = raw
        .admin_listen
        .as_deref()
        .map(|a| {
            a.parse::<SocketAddr>()
                .context("admin_listen must be an address like 127.0.0.1:8081")
        })
        .transpose()?;
    let tls_forwarded_client_cert = raw
        .tls
        .as_ref()
        .and_then(|t| t.forwarded_client_cert)
        .unwrap_or(false);
    let (tls, tls_client_ca) = validate_tls(raw.tls)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = match raw.public_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None if listen.ip().is_loopback() => format!("{scheme}://{listen}"),
        None if listen.ip().is_unspecified() => format!("{scheme}://127.0.0.1:{}", listen.port()),
        None => bail!("public_url is required when listening on a non-loopback address"),
    };
    check_public_url(&public_url)?;
    let max_token_lifetime = raw
        .max_token_lifetime
        .map(|d| d.secs("max_token_lifetime"))
        .transpose()?
        .unwrap_or(3600);
    if !(60..=86_400).contains(&max_token_lifetime) {
        bail!("max_token_lifetime must be between 1m and 24h");
    }
    let jwks_max_age = raw
        .jwks_max_age
        .map(|d| d.secs("jwks_max_age"))
        .transpose()?
        .unwrap_or(300);
    if jwks_max_age > 86_400 {
        bail!("jwks_max_age must be at most 24h");
    }
    let rl = raw.rate_limit.unwrap_or_default();
    let rate_limit = RateLimitConfig {
        per_address_per_second: rl.per_address_per_second.unwrap_or(200.0),
        per_address_burst: rl.per_address_burst.unwrap_or(400),
        failed_auth_per_client_per_minute: rl.failed_auth_per_client_per_minute.unwrap_or(30.0),
        failed_auth_burst: rl.failed_auth_burst.unwrap_or(10),
        feed_streams_per_account: rl.feed_streams_per_account.unwrap_or(4),
    };
    if rate_limit.feed_streams_per_account == 0 {
        bail!("rate_limit.feed_streams_per_account must be at least 1");
    }
    if rate_limit.per_address_per_second < 0.0 || rate_limit.failed_auth_per_client_per_minute < 0.0
    {
        bail!("rate limits must not be negative (0 disables one)");
    }
    let audit = {
        let a = raw.audit.unwrap_or_default();
        let d = warrant_core::audit::AuditSettings::default();
        let retention_secs = match &a.retention {
            None => d.retention_secs,
            Some(Dur::Text(t)) if t == "forever" => None,
            Some(r) => Some(r.secs("audit.retention")?),
        };
        if retention_secs.is_some_and(|r| r < 86_400) {
            bail!("audit.retention must be at least 1d (or \"forever\")");
        }
        let checkpoint_interval_secs = a
            .checkpoint_interval
            .map(|v| v.secs("audit.checkpoint_interval"))
            .transpose()?
            .unwrap_or(d.checkpoint_interval_secs);
        if !(1..=3600).contains(&checkpoint_interval_secs) {
            bail!("audit.checkpoint_interval must be between 1s and 1h");
        }
        let aggregate_window_secs = a
            .aggregate_window
            .map(|v| v.secs("audit.aggregate_window"))
            .transpose()?
            .unwrap_or(d.aggregate_window_secs);
        warrant_core::audit::AuditSettings {
            retention_secs,
            checkpoint_interval_secs,
            aggregate_window_secs,
            ..d
        }
    };
    let inert_keys = Vec::new();
    let outbound = validate_outbound(raw.outbound)?;
    let hsm = validate_hsm(raw.hsm)?;
    Ok(ServeConfig {
        listen,
        public_url,
        data_dir: raw
            .data_dir
            .unwrap_or_else(|| PathBuf::from("./warrant-data")),
        database_url: raw.database_url,
        admin_listen,
        max_token_lifetime,
        jwks_max_age,
        trusted_proxies: raw.trusted_proxies.unwrap_or_default(),
        rate_limit,
        tls,
        tls_client_ca,
        tls_forwarded_client_cert,
        audit,
        hsm,
        outbound,
        dpop_require_nonce: raw.dpop.and_then(|d| d.require_nonce).unwrap_or(false),
        inert_keys,
        ignored_vars: Vec::new(),
    })
}

/// `public_url` must be `https`, or `http` on a loopback host (DESIGN.md).
fn check_public_url(url: &str) -> anyhow::Result<()> {
    let (scheme, rest) = url
        .split_once("://")
        .context("public_url must be an absolute URL")?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || url.contains(['?', '#']) {
        bail!("public_url must be scheme://host[:port][/path] without query or fragment");
    }
    match scheme {
        "https" => Ok(()),
        "http" if is_loopback_authority(authority) => Ok(()),
        "http" => bail!("public_url must be https unless its host is a loopback address"),
        _ => bail!("public_url must be an http(s) URL"),
    }
}

pub fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    warrant_verify::is_loopback_host(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn precedence_flags_over_env_over_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:1000\"\nmax_token_lifetime = \"30m\"\njwks_max_age = 60\n[rate_limit]\nper_address_burst = 5\n").unwrap();
        let c = load(
            Some(&file),
            Flags {
                listen: Some("127.0.0.1:3000".into()),
                ..Default::default()
            },
            env(&[
                ("WARRANT_LISTEN", "127.0.0.1:2000"),
                ("WARRANT_MAX_TOKEN_LIFETIME", "20m"),
                ("WARRANT_RATE_LIMIT__PER_ADDRESS_PER_SECOND", "7"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 3000);
        assert_eq!(c.max_token_lifetime, 1200);
        assert_eq!(c.jwks_max_age, 60);
        assert_eq!(c.rate_limit.per_address_per_second, 7.0);
        assert_eq!(c.rate_limit.per_address_burst, 5);
        assert_eq!(c.public_url, "http://127.0.0.1:3000");
    }

    #[test]
    fn audit_settings_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.toml");
        std::fs::write(
            &file,
            "[audit]\nretention = \"30d\"\ncheckpoint_interval = \"5s\"\n",
        )
        .unwrap();
        let c = load(
            Some(&file),
            Flags::default(),
            env(&[("WARRANT_AUDIT__AGGREGATE_WINDOW", "2m")]),
        )
        .unwrap();
        assert_eq!(c.audit.retention_secs, Some(30 * 86_400));
        assert_eq!(c.audit.checkpoint_interval_secs, 5);
        assert_eq!(c.audit.aggregate_window_secs, 120);
        let c = load(
            None,
            Flags::default(),
            env(&[("WARRANT_AUDIT__RETENTION", "forever")]),
        )
        .unwrap();
        assert_eq!(c.audit.retention_secs, None);
        let d = load(None, Flags::default(), env(&[])).unwrap();
        assert_eq!(d.audit.retention_secs, Some(90 * 86_400));
        for bad in [
            ("WARRANT_AUDIT__RETENTION", "1h"),
            ("WARRANT_AUDIT__CHECKPOINT_INTERVAL", "0"),
            ("WARRANT_AUDIT__ENABLED", "false"),
        ] {
            assert!(
                load(None, Flags::default(), env(&[bad])).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn hsm_modules_are_typed_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let pin = dir.path().join("pin");
        std::fs::write(&pin, "1234\n").unwrap();
        let file = dir.path().join("w.toml");
        let write = |body: &str| std::fs::write(&file, body).unwrap();
        write(&format!(
            "[hsm.modules.main]\nlibrary = \"/usr/lib/softhsm/libsofthsm2.so\"\n\
             token_label = \"warrant\"\npin_file = {:?}\n",
            pin.display().to_string()
        ));
        let c = load(
            Some(&file),
            Flags::default(),
            env(&[("WARRANT_HSM__MODULES__MAIN__SESSIONS", "2")]),
        )
        .unwrap();
        assert_eq!(
            c.hsm,
            [HsmModuleConfig {
                name: "main".into(),
                library: "/usr/lib/softhsm/libsofthsm2.so".into(),
                token_label: "warrant".into(),
                pin_file: pin.clone(),
                sessions: 2,
            }]
        );
        assert!(c.inert_keys.is_empty());
        assert!(
            load(None, Flags::default(), env(&[]))
                .unwrap()
                .hsm
                .is_empty()
        );
        let pin = pin.display().to_string();
        for (bad, why) in [
            (
                format!("library = \"lib.so\"\ntoken_label = \"t\"\npin_file = {pin:?}"),
                "absolute",
            ),
            (
                "library = \"/l.so\"\ntoken_label = \"t\"\npin_file = \"/nonexistent/pin\"".into(),
                "pin_file",
            ),
            (
                format!(
                    "library = \"/l.so\"\ntoken_label = \"t\"\npin_file = {pin:?}\npin = \"1\""
                ),
                "unknown field",
            ),
            (
                format!(
                    "library = \"/l.so\"\ntoken_label = \"t\"\npin_file = {pin:?}\nsessions = 0"
                ),
                "sessions",
            ),
            (
                "library = \"/l.so\"\npin_file = \"/p\"".into(),
                "token_label",
            ),
        ] {
            write(&format!("[hsm.modules.m]\n{bad}\n"));
            let e = format!(
                "{:#}",
                load(Some(&file), Flags::default(), env(&[])).unwrap_err()
            );
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn tls_keys_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.toml");
        std::fs::write(&file, "[tls]\ncert = \"/etc/w/cert.pem\"\n").unwrap();
        let c = load(
            Some(&file),
            Flags::default(),
            env(&[
                ("WARRANT_TLS__KEY", "/etc/w/key.pem"),
                ("WARRANT_TLS__CLIENT_CA", "/etc/w/ca.pem"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.tls,
            Some(TlsConfig {
                cert: "/etc/w/cert.pem".into(),
                key: "/etc/w/key.pem".into(),
            })
        );
        assert_eq!(c.tls_client_ca, Some("/etc/w/ca.pem".into()));
        // With TLS, the default public URL is https.
        assert_eq!(c.public_url, "https://127.0.0.1:8080");
        let plain = load(None, Flags::default(), env(&[])).unwrap();
        assert_eq!((plain.tls, plain.tls_client_ca), (None, None));
        assert_eq!(plain.public_url, "http://127.0.0.1:8080");
        // Behind a TLS-terminating proxy: plain HTTP, and a client CA for forwarded certificates.
        let proxied = load(
            None,
            Flags::default(),
            env(&[("WARRANT_TLS__CLIENT_CA", "/etc/w/ca.pem")]),
        )
        .unwrap();
        assert_eq!(proxied.tls, None);
        assert_eq!(proxied.tls_client_ca, Some("/etc/w/ca.pem".into()));
        assert_eq!(proxied.public_url, "http://127.0.0.1:8080");
    }

    #[test]
    fn outbound_settings() {
        let c = load(None, Flags::default(), env(&[])).unwrap();
        assert_eq!(c.outbound, OutboundConfig::default());
        assert_eq!(c.outbound.timeout_secs, 5);
        assert!(c.outbound.allow_networks.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.toml");
        std::fs::write(
            &file,
            "[outbound]\nallow_networks = [\"127.0.0.0/8\", \"fd00::/8\"]\n\
             ca_file = \"/etc/w/ca.pem\"\ntimeout = \"2s\"\n",
        )
        .unwrap();
        let c = load(Some(&file), Flags::default(), env(&[])).unwrap();
        let nets: Vec<String> = c
            .outbound
            .allow_networks
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(nets, ["127.0.0.0/8", "fd00::/8"]);
        assert_eq!(c.outbound.ca_file, Some("/etc/w/ca.pem".into()));
        assert_eq!(c.outbound.timeout_secs, 2);
        assert!(c.inert_keys.is_empty());
        // from variables: a list, or comma-separated
        for v in ["[\"10.0.0.0/8\"]", "10.0.0.0/8, 192.168.0.0/16"] {
            let c = load(
                None,
                Flags::default(),
                env(&[
                    ("WARRANT_OUTBOUND__ALLOW_NETWORKS", v),
                    ("WARRANT_OUTBOUND__TIMEOUT", "3"),
                ]),
            )
            .unwrap();
            assert_eq!(c.outbound.allow_networks[0].to_string(), "10.0.0.0/8");
            assert_eq!(c.outbound.timeout_secs, 3);
        }
        // the policy reads ca_file
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "pem").unwrap();
        let cfg = OutboundConfig {
            ca_file: Some(ca),
            ..OutboundConfig::default()
        };
        assert_eq!(cfg.policy().unwrap().ca_pem.as_deref(), Some(&b"pem"[..]));
        assert!(
            OutboundConfig {
                ca_file: Some(dir.path().join("missing")),
                ..cfg
            }
            .policy()
            .is_err()
        );
        for bad in [
            ("WARRANT_OUTBOUND__ALLOW_NETWORKS", "10.0.0.0/33"),
            ("WARRANT_OUTBOUND__ALLOW_NETWORKS", "example.com"),
            ("WARRANT_OUTBOUND__TIMEOUT", "0"),
            ("WARRANT_OUTBOUND__TIMEOUT", "10m"),
            ("WARRANT_OUTBOUND__PROXY", "http://proxy"),
        ] {
            assert!(
                load(None, Flags::default(), env(&[bad])).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_typos_and_insecure_urls() {
        // a typo inside a known section is refused; an unknown variable is set aside
        assert!(
            load(
                None,
                Flags::default(),
                env(&[("WARRANT_RATE_LIMIT__PER_ADRESS_BURST", "1")])
            )
            .is_err()
        );
        let c = load(
            None,
            Flags::default(),
            env(&[("WARRANT_TEST_POSTGRES_URL", "postgres://x")]),
        )
        .unwrap();
        assert_eq!(c.ignored_vars, ["WARRANT_TEST_POSTGRES_URL"]);
        assert!(
            load(
                None,
                Flags {
                    public_url: Some("http://example.com".into()),
                    ..Default::default()
                },
                env(&[])
            )
            .is_err()
        );
        assert!(
            load(
                None,
                Flags {
                    public_url: Some("https://id.example.com/".into()),
                    ..Default::default()
                },
                env(&[])
            )
            .is_ok()
        );
        assert!(
            load(
                None,
                Flags::default(),
                env(&[("WARRANT_TLS__CERT", "/x.pem")])
            )
            .is_err()
        );
        assert!(
            load(
                None,
                Flags::default(),
                env(&[("WARRANT_TLS__KEY", "/key.pem")])
            )
            .is_err()
        );
        assert!(
            load(
                None,
                Flags::default(),
                env(&[("WARRANT_TLS__CIPHERS", "x")])
            )
            .is_err()
        );
        assert!(
            load(
                None,
                Flags::default(),
                env(&[("WARRANT_URL", "http://x"), ("WARRANT_MASTER_KEY", "k")])
            )
            .is_ok()
        );
    }
}
