//! Requests to an issuer: discovery, JWKS and the revocation feed. `https` only, except to a
//! loopback host; no redirects; bounded bodies; a timeout on every request.

use std::net::IpAddr;
use std::time::Duration;

/// The largest discovery document or JWKS read, bytes.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// How the verifier reaches its issuers.
#[derive(Clone, Default)]
pub struct HttpOptions {
    /// Extra trusted roots, PEM, beside the platform's (an issuer behind a private CA).
    pub ca_pem: Option<Vec<u8>>,
    /// The timeout of one discovery or JWKS request, and of connecting to the feed
    /// (default 5 s).
    pub timeout: Option<Duration>,
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("ca_pem", &self.ca_pem.as_ref().map(|p| p.len()))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpSetupError(String);

pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// One client for every issuer: connections are pooled per host.
pub(crate) fn client(options: &HttpOptions) -> Result<reqwest::Client, HttpSetupError> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(options.timeout.unwrap_or(DEFAULT_TIMEOUT))
        .user_agent(concat!("warrant-verify/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = &options.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| HttpSetupError(format!("CA file: {e}")))?;
        if certs.is_empty() {
            return Err(HttpSetupError("CA file: no certificate in the file".into()));
        }
        b = b.tls_certs_merge(certs);
    }
    b.build()
        .map_err(|e| HttpSetupError(format!("HTTP client: {e}")))
}

/// Whether `url` may be fetched: `https`, or `http` to a loopback address or `localhost`.
pub fn allowed_url(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    match u.scheme() {
        "https" => u.host_str().is_some(),
        "http" => u.host_str().is_some_and(is_loopback_host),
        _ => false,
    }
}

/// Whether a URL's host (as `Url::host_str` gives it, IPv6 in brackets) is 127.0.0.0/8, `::1`
/// or `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
    }
}

/// A JSON document, at most [`MAX_DOCUMENT_BYTES`], with the response's `Cache-Control` max age.
pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<(T, Option<Duration>), String> {
    if !allowed_url(url) {
        return Err("only https URLs (or http to loopback) are fetched".into());
    }
    let mut resp = client
        .get(url)
        .timeout(timeout)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("request failed: {}", without_url(e)))?;
    if !resp.status().is_success() {
        return Err(format!("status {}", resp.status().as_u16()));
    }
    let max_age = resp
        .headers()
        .get(http::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(cache_max_age);
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading the body: {}", without_url(e)))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err("the document is too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    let doc =
        serde_json::from_slice(&body).map_err(|_| "the document is not valid JSON".to_owned())?;
    Ok((doc, max_age))
}

/// The freshness a `Cache-Control` value grants: `max-age` (or `s-maxage`, the smaller), zero
/// for `no-store`/`no-cache`, `None` when it does not say.
pub(crate) fn cache_max_age(value: &str) -> Option<Duration> {
    let mut age = None;
    for directive in value.split(',') {
        let d = directive.trim();
        let (name, arg) = d.split_once('=').unwrap_or((d, ""));
        let name = name.trim().to_ascii_lowercase();
        match name.as_str() {
            "no-store" | "no-cache" => return Some(Duration::ZERO),
            "max-age" | "s-maxage" => {
                if let Ok(n) = arg.trim().trim_matches('"').parse::<u64>() {
                    age = Some(age.map_or(n, |a: u64| a.min(n)));
                }
            }
            _ => {}
        }
    }
    age.map(Duration::from_secs)
}

/// An error's text without the URL it carries (a URL may hold a query string).
pub(crate) fn without_url(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    e.without_url().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(cache_max_age("public, max-age=300"), secs(300));
        assert_eq!(cache_max_age("max-age=600, s-maxage=60"), secs(60));
        assert_eq!(cache_max_age("no-store"), secs(0));
        assert_eq!(cache_max_age("max-age=60, no-cache"), secs(0));
        assert_eq!(cache_max_age("private"), None);
        assert_eq!(cache_max_age("max-age=abc"), None);
    }

    #[test]
    fn only_https_or_loopback_http() {
        assert!(allowed_url("https://id.example.com/t/a"));
        assert!(allowed_url("http://127.0.0.1:8080/t/a"));
        assert!(allowed_url("http://[::1]:8080/t/a"));
        assert!(allowed_url("http://localhost:8080"));
        assert!(!allowed_url("http://id.example.com/t/a"));
        assert!(!allowed_url("http://10.0.0.1/"));
        assert!(!allowed_url("ftp://127.0.0.1/"));
        assert!(!allowed_url("not a url"));
    }
}
