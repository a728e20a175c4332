//! `gateway.toml`: the raw file (every table `deny_unknown_fields`), and [`GatewayConfig`], the
//! validated form the gateway runs on. Every key, with its default, is documented in
//! docs/gateway.example.toml.
//!
//! Parse at the edge: a loaded configuration has parsed addresses and URLs, durations, header
//! names, claim values as JSON and the feed secrets read from their files or variables, so that
//! nothing is parsed per request and a reload either yields a whole new configuration or an
//! error that leaves the running one in place. Relative file paths are taken from the
//! configuration file's directory. Error messages name the file and the key, and never carry a
//! secret (or a line of the file, which could hold one by mistake).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::HeaderName;
use serde::Deserialize;
use serde_json::Value;
use warrant_verify::{ClaimCondition, FeedCredentials, IssuerConfig, Requirement, allowed_url};

mod duration;

pub use duration::parse_duration;

/// The identity headers set when the configuration has no `[identity_headers]` table.
pub const DEFAULT_IDENTITY_HEADERS: [(&str, &str); 6] = [
    ("x-warrant-sub", "sub"),
    ("x-warrant-client-id", "client_id"),
    ("x-warrant-scope", "scope"),
    ("x-warrant-jti", "jti"),
    ("x-warrant-issuer", "iss"),
    ("x-warrant-tenant", "tenant"),
];

/// Headers the proxy itself manages: an identity header may not be one of them.
const RESERVED_HEADERS: [&str; 16] = [
    "host",
    "authorization",
    "dpop",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "content-type",
    "cookie",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
];

/// A configuration file that cannot be used. The message names the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{}: {key}: {message}", file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    /// The key (`routes[2].upstream`), or `-` for the file as a whole.
    pub key: String,
    pub message: String,
}

/// A loaded, validated `gateway.toml`.
#[derive(Clone)]
pub struct GatewayConfig {
    /// The file it was read from.
    pub path: PathBuf,
    pub listen: SocketAddr,
    /// `scheme://host[:port]`, without a trailing slash.
    pub public_url: Option<String>,
    pub metrics_listen: Option<SocketAddr>,
    pub stale_feed_limit: Duration,
    pub leeway: Duration,
    pub connect_timeout: Duration,
    pub upstream_timeout: Duration,
    /// `ca_file`, and its contents as read at load.
    pub ca_file: Option<(PathBuf, Vec<u8>)>,
    pub tls: Option<TlsFiles>,
    pub identity_headers: Vec<IdentityHeader>,
    /// The issuers, with feed secrets read; their `Debug` redacts the secrets.
    pub issuers: Vec<IssuerConfig>,
    pub routes: Vec<RouteConfig>,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("path", &self.path)
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("metrics_listen", &self.metrics_listen)
            .field("issuers", &self.issuers)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

/// `[tls]`: files, resolved against the configuration's directory, read when the listener
/// starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// One `[identity_headers]` entry: the header set on forwarded requests from this claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeader {
    pub name: HeaderName,
    /// A claim name, or a dotted path into nested claims (`act.sub`).
    pub claim: String,
}

/// One `[[routes]]` entry, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    pub name: String,
    /// Lower case, without a port.
    pub host: Option<String>,
    /// Starts with `/`; no trailing `/` except for the root prefix itself.
    pub path_prefix: String,
    pub upstream: Upstream,
    pub strip_prefix: bool,
    pub forward_authorization: bool,
    pub verify: bool,
    /// What a token needs on this route (unused when `verify` is false).
    pub requirement: Requirement,
}

/// An `http://host:port[/base]` upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub authority: http::uri::Authority,
    /// The path forwarded requests are placed under, without a trailing `/` (often empty).
    pub base_path: String,
}

/// The part of the configuration a [`warrant_verify::Verifier`] is built from: when a reload
/// leaves it unchanged, the running verifier (its keys, feed state and token cache) is kept.
#[derive(Debug, PartialEq)]
pub(crate) struct VerifierSettings<'a> {
    issuers: Vec<IssuerSettings<'a>>,
    leeway: Duration,
    stale_feed_limit: Duration,
    ca_pem: Option<&'a [u8]>,
}

/// An issuer, its `jwks_uri`, and its feed's client id and secret.
type IssuerSettings<'a> = (&'a str, Option<&'a str>, Option<(&'a str, &'a str)>);

impl GatewayConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            key: "-".into(),
            message: format!("cannot read the file ({})", e.kind()),
        })?;
        Self::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Validates `text` as if read from `path`; `env` looks up `feed_client_secret_env`.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            file: path.to_owned(),
            key: "-".into(),
            message: toml_message(&e, text),
        })?;
        Loader {
            file: path,
            dir: path.parent().unwrap_or(Path::new(".")),
            env,
        }
        .validate(raw)
    }

    pub(crate) fn verifier_settings(&self) -> VerifierSettings<'_> {
        VerifierSettings {
            issuers: self
                .issuers
                .iter()
                .map(|i| {
                    (
                        i.issuer.as_str(),
                        i.jwks_uri.as_deref(),
                        i.feed
                            .as_ref()
                            .map(|f| (f.client_id.as_str(), f.client_secret.as_str())),
                    )
                })
                .collect(),
            leeway: self.leeway,
            stale_feed_limit: self.stale_feed_limit,
            ca_pem: self.ca_file.as_ref().map(|(_, pem)| pem.as_slice()),
        }
    }

    /// Whether any route verifies tokens.
    pub fn verifies(&self) -> bool {
        self.routes.iter().any(|r| r.verify)
    }
}

/// toml's message and the line, without the snippet of the file it would quote.
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim();
    match e.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(0, |before| before.matches('\n').count())
                + 1;
            format!("line {line}: {message}")
        }
        None => message.to_owned(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    public_url: Option<String>,
    metrics_listen: Option<String>,
    stale_feed_limit: Option<RawDuration>,
    leeway: Option<RawDuration>,
    connect_timeout: Option<RawDuration>,
    upstream_timeout: Option<RawDuration>,
    ca_file: Option<PathBuf>,
    tls: Option<RawTls>,
    identity_headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    issuers: Vec<RawIssuer>,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    issuer: String,
    jwks_uri: Option<String>,
    feed_client_id: Option<String>,
    feed_client_secret_file: Option<PathBuf>,
    feed_client_secret_env: Option<String>,
    revocation: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: String,
    host: Option<String>,
    path_prefix: String,
    upstream: String,
    #[serde(default)]
    strip_prefix: bool,
    audience: Option<OneOrMany<String>>,
    #[serde(default)]
    scopes_all: Vec<String>,
    #[serde(default)]
    scopes_any: Vec<String>,
    #[serde(default)]
    claims: BTreeMap<String, toml::Value>,
    #[serde(default)]
    forward_authorization: bool,
    verify: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            Self::One(t) => vec![t],
            Self::Many(v) => v,
        }
    }
}

/// `"90s"`, `"10m"`, `"1h"`, `"500ms"`, a bare number of seconds as a string, or an integer.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Secs(u64),
    Text(String),
}

struct Loader<'a> {
    file: &'a Path,
    dir: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Loader<'_> {
    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.dir.join(p)
        }
    }

    fn duration(
        &self,
        key: &str,
        value: Option<RawDuration>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match value {
            None => Ok(default),
            Some(RawDuration::Secs(s)) => Ok(Duration::from_secs(s)),
            Some(RawDuration::Text(t)) => parse_duration(&t).ok_or_else(|| {
                self.err(
                    key,
                    "not a duration (write a number and a unit: 500ms, 90s, 10m, 1h)",
                )
            }),
        }
    }

    fn addr(&self, key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
        value
            .parse()
            .map_err(|_| self.err(key, "not an IP address and port (\"127.0.0.1:8443\")"))
    }

    fn validate(&self, raw: RawConfig) -> Result<GatewayConfig, ConfigError> {
        let listen = self.addr("listen", &raw.listen)?;
        let metrics_listen = raw
            .metrics_listen
            .as_deref()
            .map(|m| self.addr("metrics_listen", m))
            .transpose()?;
        let public_url = raw
            .public_url
            .as_deref()
            .map(|u| self.public_url(u))
            .transpose()?;
        let stale_feed_limit = self.duration(
            "stale_feed_limit",
            raw.stale_feed_limit,
            Duration::from_secs(60),
        )?;
        let leeway = self.duration("leeway", raw.leeway, Duration::from_secs(30))?;
        if leeway > Duration::from_secs(warrant_verify::token::MAX_LEEWAY_SECS as u64) {
            return Err(self.err("leeway", "at most 5m (RFC 8725: keep clock skew small)"));
        }
        let connect_timeout = self.duration(
            "connect_timeout",
            raw.connect_timeout,
            Duration::from_secs(5),
        )?;
        let upstream_timeout = self.duration(
            "upstream_timeout",
            raw.upstream_timeout,
            Duration::from_secs(30),
        )?;
        for (key, d) in [
            ("stale_feed_limit", stale_feed_limit),
            ("connect_timeout", connect_timeout),
            ("upstream_timeout", upstream_timeout),
        ] {
            if d.is_zero() {
                return Err(self.err(key, "must be more than zero"));
            }
        }
        let ca_file = match raw.ca_file {
            None => None,
            Some(p) => {
                let p = self.path(&p);
                let pem = std::fs::read(&p).map_err(|e| {
                    self.err(
                        "ca_file",
                        format!("cannot read {} ({})", p.display(), e.kind()),
                    )
                })?;
                Some((p, pem))
            }
        };
        let tls = raw.tls.map(|t| TlsFiles {
            cert: self.path(&t.cert),
            key: self.path(&t.key),
            client_ca: t.client_ca.map(|c| self.path(&c)),
        });
        let identity_headers = self.identity_headers(raw.identity_headers)?;
        let issuers = raw
            .issuers
            .into_iter()
            .enumerate()
            .map(|(i, r)| self.issuer(i, r))
            .collect::<Result<Vec<_>, _>>()?;
        let mut seen = HashSet::new();
        for (i, issuer) in issuers.iter().enumerate() {
            if !seen.insert(issuer.issuer.as_str()) {
                return Err(self.err(format!("issuers[{i}].issuer"), "configured twice"));
            }
        }
        let routes = raw
            .routes
            .into_iter()
            .enumerate()
            .map(|(i, r)| self.route(i, r))
            .collect::<Result<Vec<_>, _>>()?;
        let mut names = HashSet::new();
        let mut places = HashSet::new();
        for (i, r) in routes.iter().enumerate() {
            if !names.insert(r.name.as_str()) {
                return Err(self.err(
                    format!("routes[{i}].name"),
                    format!("another route is named {:?}", r.name),
                ));
            }
            if !places.insert((r.host.as_deref(), r.path_prefix.as_str())) {
                return Err(self.err(
                    format!("routes[{i}].path_prefix"),
                    "another route has the same host and path_prefix",
                ));
            }
        }
        if issuers.is_empty() && routes.iter().any(|r| r.verify) {
            return Err(self.err(
                "issuers",
                "a route verifies tokens, so at least one [[issuers]] is needed",
            ));
        }
        Ok(GatewayConfig {
            path: self.file.to_owned(),
            listen,
            public_url,
            metrics_listen,
            stale_feed_limit,
            leeway,
            connect_timeout,
            upstream_timeout,
            ca_file,
            tls,
            identity_headers,
            issuers,
            routes,
        })
    }

    fn public_url(&self, value: &str) -> Result<String, ConfigError> {
        let bad = || {
            self.err(
                "public_url",
                "must be an origin: http(s)://host[:port], without a path or query",
            )
        };
        let uri: http::Uri = value.parse().map_err(|_| bad())?;
        let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
        let path_ok = uri
            .path_and_query()
            .is_none_or(|p| p.as_str() == "/" || p.as_str().is_empty());
        match uri.authority() {
            Some(a) if scheme_ok && path_ok && !a.as_str().contains('@') => Ok(format!(
                "{}://{}",
                uri.scheme_str().unwrap_or("https"),
                a.as_str().to_ascii_lowercase()
            )),
            _ => Err(bad()),
        }
    }

    fn identity_headers(
        &self,
        table: Option<BTreeMap<String, String>>,
    ) -> Result<Vec<IdentityHeader>, ConfigError> {
        let entries: Vec<(String, String)> = match table {
            None => DEFAULT_IDENTITY_HEADERS
                .iter()
                .map(|(h, c)| ((*h).to_owned(), (*c).to_owned()))
                .collect(),
            Some(t) => t.into_iter().collect(),
        };
        let mut out: Vec<IdentityHeader> = Vec::with_capacity(entries.len());
        for (header, claim) in entries {
            let key = format!("identity_headers.{header:?}");
            let name = HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| self.err(&key, "not a valid header name"))?;
            let lower = name.as_str();
            if RESERVED_HEADERS.contains(&lower) || lower.starts_with("proxy-") {
                return Err(self.err(&key, "the proxy manages this header itself"));
            }
            if out.iter().any(|h| h.name == name) {
                return Err(self.err(
                    &key,
                    "the header is named twice (names are case-insensitive)",
                ));
            }
            if claim.is_empty() || claim.split('.').any(str::is_empty) {
                return Err(self.err(&key, "the claim must be a name or a dotted path (act.sub)"));
            }
            out.push(IdentityHeader { name, claim });
        }
        Ok(out)
    }

    fn issuer(&self, i: usize, r: RawIssuer) -> Result<IssuerConfig, ConfigError> {
        let key = |k: &str| format!("issuers[{i}].{k}");
        if !allowed_url(&r.issuer) {
            return Err(self.err(key("issuer"), "must be an https URL (or http to loopback)"));
        }
        if let Some(j) = &r.jwks_uri
            && !allowed_url(j)
        {
            return Err(self.err(
                key("jwks_uri"),
                "must be an https URL (or http to loopback)",
            ));
        }
        let feed = if r.revocation == Some(false) {
            if r.feed_client_id.is_some()
                || r.feed_client_secret_file.is_some()
                || r.feed_client_secret_env.is_some()
            {
                return Err(self.err(
                    key("revocation"),
                    "revocation = false turns the feed off: remove the feed_* keys",
                ));
            }
            None
        } else {
            let missing = |k: &str| {
                self.err(
                    key(k),
                    "required: the revocation feed needs credentials (or set revocation = false)",
                )
            };
            let client_id = r
                .feed_client_id
                .filter(|c| !c.is_empty())
                .ok_or_else(|| missing("feed_client_id"))?;
            let secret = match (r.feed_client_secret_file, r.feed_client_secret_env) {
                (Some(_), Some(_)) => {
                    return Err(self.err(
                        key("feed_client_secret_file"),
                        "give feed_client_secret_file or feed_client_secret_env, not both",
                    ));
                }
                (None, None) => return Err(missing("feed_client_secret_file")),
                (Some(file), None) => {
                    let p = self.path(&file);
                    let text = std::fs::read_to_string(&p).map_err(|e| {
                        self.err(
                            key("feed_client_secret_file"),
                            format!("cannot read {} ({})", p.display(), e.kind()),
                        )
                    })?;
                    (text.trim().to_owned(), "feed_client_secret_file")
                }
                (None, Some(var)) => {
                    let value = (self.env)(&var).ok_or_else(|| {
                        self.err(
                            key("feed_client_secret_env"),
                            format!("the environment variable {var} is not set"),
                        )
                    })?;
                    (value.trim().to_owned(), "feed_client_secret_env")
                }
            };
            if secret.0.is_empty() {
                return Err(self.err(key(secret.1), "the secret is empty"));
            }
            Some(FeedCredentials {
                client_id,
                client_secret: secret.0,
            })
        };
        Ok(IssuerConfig {
            issuer: r.issuer,
            jwks_uri: r.jwks_uri,
            feed,
        })
    }

    fn route(&self, i: usize, r: RawRoute) -> Result<RouteConfig, ConfigError> {
        let key = |k: &str| format!("routes[{i}].{k}");
        if r.name.is_empty() || r.name.chars().any(|c| c.is_control() || c == '"') {
            return Err(self.err(key("name"), "must be a non-empty name without quotes"));
        }
        let host = match r.host {
            None => None,
            Some(h) => {
                let mut h = h.to_ascii_lowercase();
                // Requests are matched without one trailing dot (`api.example.com.`).
                if h.len() > 1 && h.ends_with('.') {
                    h.pop();
                }
                let valid = !h.is_empty()
                    && http::uri::Authority::try_from(h.as_str()).is_ok_and(|a| a.port().is_none())
                    && !h.contains('@');
                if !valid {
                    return Err(self.err(key("host"), "must be a host name without a port"));
                }
                Some(h)
            }
        };
        let path_prefix = normalise_prefix(&r.path_prefix)
            .ok_or_else(|| self.err(
                key("path_prefix"),
                "must be a canonical path starting with / (no . or .. segment, //, ;, \\, control character, or %-encoded unreserved character)",
            ))?;
        let upstream = upstream(&r.upstream).ok_or_else(|| {
            self.err(
                key("upstream"),
                "must be an http://host:port URL, without a query (https upstreams are not supported)",
            )
        })?;
        let verify = r.verify.unwrap_or(true);
        let audiences = r.audience.map(OneOrMany::into_vec).unwrap_or_default();
        for (k, scopes) in [("scopes_all", &r.scopes_all), ("scopes_any", &r.scopes_any)] {
            if scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
                return Err(self.err(key(k), "a scope is a non-empty word without spaces"));
            }
        }
        let mut flat = Vec::new();
        for (claim, value) in r.claims {
            flatten_claims(claim, value, &mut flat);
        }
        let claims = flat
            .into_iter()
            .map(|(claim, value)| {
                let values = match value {
                    toml::Value::Array(list) => list,
                    one => vec![one],
                };
                let one_of = values
                    .into_iter()
                    .map(json_scalar)
                    .collect::<Option<Vec<_>>>()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        self.err(
                            key(&format!("claims.{claim:?}")),
                            "a value, or a list of values: strings, numbers or booleans",
                        )
                    })?;
                if claim.is_empty() || claim.split('.').any(str::is_empty) {
                    return Err(self.err(key("claims"), "a claim is a name or a dotted path"));
                }
                Ok(ClaimCondition { claim, one_of })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if verify {
            if audiences.is_empty() || audiences.iter().any(String::is_empty) {
                return Err(self.err(
                    key("audience"),
                    "required on a route that verifies tokens (a string or a list)",
                ));
            }
        } else if !audiences.is_empty()
            || !r.scopes_all.is_empty()
            || !r.scopes_any.is_empty()
            || !claims.is_empty()
        {
            return Err(self.err(
                key("verify"),
                "verify = false: audience, scopes and claims would have no effect; remove them",
            ));
        }
        Ok(RouteConfig {
            name: r.name,
            host,
            path_prefix,
            upstream,
            strip_prefix: r.strip_prefix,
            forward_authorization: r.forward_authorization,
            verify,
            requirement: Requirement {
                audiences,
                scopes_all: r.scopes_all,
                scopes_any: r.scopes_any,
                claims,
            },
        })
    }
}

/// `/orders/` → `/orders`; `/` stays. `None` unless it is an origin-form path.
fn normalise_prefix(p: &str) -> Option<String> {
    if !p.starts_with('/') || p.contains(['?', '#']) || p.chars().any(|c| c.is_whitespace()) {
        return None;
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return Some("/".into());
    }
    // Requests are matched on their canonical path, so a prefix must be canonical itself
    // (`/%61pi` or `/api/../x` could never match).
    match crate::path::canonical_path(trimmed) {
        Ok(std::borrow::Cow::Borrowed(_)) => Some(trimmed.into()),
        _ => None,
    }
}

fn upstream(u: &str) -> Option<Upstream> {
    let uri: http::Uri = u.parse().ok()?;
    if uri.scheme_str() != Some("http") || uri.query().is_some() {
        return None;
    }
    let authority = uri.authority()?.clone();
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return None;
    }
    Some(Upstream {
        authority,
        base_path: uri.path().trim_end_matches('/').to_owned(),
    })
}

/// `act = { sub = "x" }` (what an unquoted dotted key `act.sub = "x"` also makes) as the
/// dotted path `act.sub`.
fn flatten_claims(path: String, value: toml::Value, out: &mut Vec<(String, toml::Value)>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten_claims(format!("{path}.{k}"), v, out);
            }
        }
        other => out.push((path, other)),
    }
}

/// A TOML scalar as the JSON value a claim is compared with.
fn json_scalar(v: toml::Value) -> Option<Value> {
    match v {
        toml::Value::String(s) => Some(Value::String(s)),
        toml::Value::Integer(i) => Some(Value::from(i)),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map(Value::Number),
        toml::Value::Boolean(b) => Some(Value::Bool(b)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
