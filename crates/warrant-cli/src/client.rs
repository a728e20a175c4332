//! All HTTP the CLI speaks: the token endpoint (admin token and `token get`), the admin API with
//! its RFC 9457 problems turned into readable errors, and plain JSON fetches for `token inspect`.
//!
//! Every request has a 10 s timeout and follows no redirects: a redirect could carry a bearer
//! token or a secret somewhere the user did not name.

use std::fmt;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use warrant_proto::admin::{Page, Problem};
use warrant_proto::oauth::{ErrorResponse, TokenResponse};

use crate::globals::{self, GlobalArgs};

/// Time limit of every request.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read (JWKS, discovery, admin pages are far smaller).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The HTTP client the CLI uses for everything.
pub fn http() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("warrant-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 §2.3.1 asks for it on
/// both halves of the Basic credentials, which `reqwest`'s `basic_auth` does not do).
pub fn form_urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The `Authorization` value for `client_secret_basic`.
pub fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let pair = format!(
        "{}:{}",
        form_urlencode(client_id),
        form_urlencode(client_secret)
    );
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// A refusal from a token endpoint (RFC 6749 §5.2).
#[derive(Debug)]
pub struct TokenRefused {
    pub status: StatusCode,
    pub error: ErrorResponse,
}

impl TokenRefused {
    /// `error: description` (RFC 6749 §5.2), or only `error` when there is no description.
    pub fn oauth_error(&self) -> String {
        match self
            .error
            .error_description
            .as_deref()
            .filter(|d| !d.is_empty())
        {
            Some(d) => format!("{}: {d}", self.error.error),
            None => self.error.error.clone(),
        }
    }
}

impl fmt::Display for TokenRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {})", self.oauth_error(), self.status.as_u16())
    }
}

impl std::error::Error for TokenRefused {}

/// `POST token_url` with `client_secret_basic` and the given form. The secret goes only into the
/// `Authorization` header and appears in no error message.
pub async fn request_token(
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    form: &[(&str, &str)],
) -> Result<TokenResponse> {
    post_token(
        http,
        token_url,
        Some(basic_authorization(client_id, client_secret)),
        form,
    )
    .await
}

/// `POST token_url` with the client authentication inside `form` (private_key_jwt's
/// `client_assertion`, RFC 7523 §2.2); no `Authorization` header.
pub async fn request_token_form(
    http: &reqwest::Client,
    token_url: &str,
    form: &[(&str, &str)],
) -> Result<TokenResponse> {
    post_token(http, token_url, None, form).await
}

async fn post_token(
    http: &reqwest::Client,
    token_url: &str,
    authorization: Option<String>,
    form: &[(&str, &str)],
) -> Result<TokenResponse> {
    let url = parse_url(token_url)?;
    let mut request = http.post(url.clone());
    if let Some(value) = authorization {
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    let response = request
        .header(reqwest::header::ACCEPT, "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| transport_error(&url, &e))?;
    let status = response.status();
    let body = read_body(response, &url).await?;
    if !status.is_success() {
        return Err(match serde_json::from_slice::<ErrorResponse>(&body) {
            Ok(error) => anyhow!(TokenRefused { status, error })
                .context(format!("the token endpoint {url} refused")),
            Err(_) => anyhow!(
                "the token endpoint {url} answered HTTP {}: {}",
                status.as_u16(),
                snippet(&body)
            ),
        });
    }
    serde_json::from_slice(&body)
        .with_context(|| format!("the token endpoint {url} sent a response that is not a token"))
}

/// `GET url` and parse its JSON body; no credentials are sent.
pub async fn get_json<T: DeserializeOwned>(http: &reqwest::Client, url: &Url) -> Result<T> {
    fetch_json(http, url, None).await
}

/// `GET url` with an `Authorization` header (the GitHub Actions runner's OIDC token request)
/// and parse its JSON body. Errors name the URL without its query, never the header.
pub async fn get_json_authorized<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &Url,
    authorization: &str,
) -> Result<T> {
    fetch_json(http, url, Some(authorization)).await
}

async fn fetch_json<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &Url,
    authorization: Option<&str>,
) -> Result<T> {
    let mut request = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(value) = authorization {
        let mut value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| anyhow!("the Authorization value is not a valid header"))?;
        value.set_sensitive(true);
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    // Discovery and JWKS URLs are shown whole; a URL fetched with credentials only as its
    // origin and path (its query may identify a job), in every error.
    let mut shown = url.clone();
    if authorization.is_some() {
        shown.set_query(None);
    }
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(&shown, &e))?;
    let status = response.status();
    let body = read_body(response, &shown).await?;
    if !status.is_success() {
        bail!("{shown} answered HTTP {}", status.as_u16());
    }
    serde_json::from_slice(&body)
        .with_context(|| format!("{shown} did not return the expected JSON"))
}

pub fn parse_url(text: &str) -> Result<Url> {
    Url::parse(text).with_context(|| format!("{text:?} is not a valid URL"))
}

/// An admin API error: the server's problem details when it sent some.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub problem: Option<Problem>,
    pub body: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            Some(p) => {
                write!(f, "{}", p.title)?;
                match p.detail.as_deref().filter(|d| !d.is_empty()) {
                    Some(d) => write!(f, ": {d}"),
                    None => Ok(()),
                }
            }
            None if self.body.is_empty() => write!(f, "HTTP {}", self.status),
            None => write!(f, "HTTP {}: {}", self.status, self.body),
        }
    }
}

impl std::error::Error for ApiError {}

/// A client of the admin API (`{url}/admin/v1`), holding an admin token of the system tenant.
pub struct Admin {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl Admin {
    /// Reads the credentials file and gets an admin token (`resource={public_url}/admin`,
    /// `scope=admin`) from the system tenant's token endpoint.
    pub async fn connect(global: &GlobalArgs) -> Result<Self> {
        let creds = globals::load_credentials(&global.credentials)?;
        let url = globals::resolve_url(global.url.as_deref(), Some(&creds));
        let public_url = globals::public_url_from_issuer(&creds.issuer);
        let resource = format!("{public_url}/admin");
        let http = http()?;
        let token = request_token(
            &http,
            &format!("{url}/t/system/token"),
            &creds.client_id,
            &creds.client_secret,
            &[
                ("grant_type", "client_credentials"),
                ("resource", &resource),
                ("scope", "admin"),
            ],
        )
        .await
        .with_context(|| {
            format!(
                "cannot get an admin token with {}",
                global.credentials.display()
            )
        })?;
        let base = parse_url(&format!("{url}/admin/v1/"))?;
        Ok(Self {
            http,
            base,
            token: token.access_token,
        })
    }

    /// `{base}/seg1/seg2…`, each segment percent-encoded.
    fn endpoint(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("{} cannot carry a path", self.base))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response> {
        let request = self
            .http
            .request(method, url.clone())
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        let response = build(request)
            .send()
            .await
            .map_err(|e| transport_error(&url, &e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = read_body(response, &url).await.unwrap_or_default();
        let problem = serde_json::from_slice::<Problem>(&body).ok();
        Err(ApiError {
            status,
            problem,
            body: snippet(&body),
        }
        .into())
    }

    async fn parse<T: DeserializeOwned>(response: Response, url: &Url) -> Result<T> {
        let body = read_body(response, url).await?;
        serde_json::from_slice(&body)
            .with_context(|| format!("unexpected response from {url}: {}", snippet(&body)))
    }

    pub async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T> {
        Ok(self.get_with_etag(segments).await?.0)
    }

    /// `GET`, also returning the `ETag` for a later `If-Match`.
    pub async fn get_with_etag<T: DeserializeOwned>(
        &self,
        segments: &[&str],
    ) -> Result<(T, Option<String>)> {
        let url = self.endpoint(segments)?;
        let response = self.send(Method::GET, url.clone(), |r| r).await?;
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok((Self::parse(response, &url).await?, etag))
    }

    /// Every item of a cursor list, following `next_cursor` to the end.
    pub async fn list<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<Vec<T>> {
        self.list_with(segments, &[]).await
    }

    /// Every item of a cursor list with query parameters (filters, `limit`).
    pub async fn list_with<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Vec<T>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut pairs = query.to_vec();
            if let Some(c) = &cursor {
                pairs.push(("cursor", c));
            }
            let page: Page<T> = self.page(segments, &pairs).await?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) if !next.is_empty() => {
                    if cursor.as_deref() == Some(next.as_str()) {
                        bail!(
                            "the server returned the same cursor twice listing {}",
                            self.endpoint(segments)?
                        );
                    }
                    cursor = Some(next);
                }
                _ => return Ok(items),
            }
        }
    }

    /// One page of a cursor list, with query parameters (`cursor` to continue).
    pub async fn page<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Page<T>> {
        let mut url = self.endpoint(segments)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let response = self.send(Method::GET, url.clone(), |r| r).await?;
        Self::parse(response, &url).await
    }

    /// `GET` of something the server takes long to compute (`audit verify` reads a whole log),
    /// with a time limit of its own instead of [`TIMEOUT`].
    pub async fn get_slow<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        limit: Duration,
    ) -> Result<T> {
        let url = self.endpoint(segments)?;
        let response = self
            .send(Method::GET, url.clone(), |r| r.timeout(limit))
            .await?;
        Self::parse(response, &url).await
    }

    /// `GET` of a streamed body (`audit export`): the answer must start within [`TIMEOUT`];
    /// the whole body may take up to `limit`. The caller reads it with `chunk()`, each within
    /// [`TIMEOUT`].
    pub async fn stream(&self, segments: &[&str], limit: Duration) -> Result<Response> {
        let url = self.endpoint(segments)?;
        let started = self.send(Method::GET, url.clone(), |r| r.timeout(limit));
        match tokio::time::timeout(TIMEOUT, started).await {
            Ok(response) => response,
            Err(_) => bail!("{url} did not answer within {} s", TIMEOUT.as_secs()),
        }
    }

    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<T> {
        let url = self.endpoint(segments)?;
        let response = self
            .send(Method::POST, url.clone(), |r| r.json(body))
            .await?;
        Self::parse(response, &url).await
    }

    /// `PUT`, with `If-Match` when the caller read an `ETag` first.
    pub async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &B,
        if_match: Option<&str>,
    ) -> Result<T> {
        let url = self.endpoint(segments)?;
        let response = self
            .send(Method::PUT, url.clone(), |r| {
                let r = r.json(body);
                match if_match {
                    Some(tag) => r.header(reqwest::header::IF_MATCH, tag),
                    None => r,
                }
            })
            .await?;
        Self::parse(response, &url).await
    }

    /// JSON Merge Patch (RFC 7396).
    pub async fn merge_patch<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        patch: &serde_json::Value,
    ) -> Result<T> {
        let url = self.endpoint(segments)?;
        let body = serde_json::to_vec(patch).context("cannot serialise the patch")?;
        let response = self
            .send(Method::PATCH, url.clone(), |r| {
                r.header(
                    reqwest::header::CONTENT_TYPE,
                    "application/merge-patch+json",
                )
                .body(body)
            })
            .await?;
        Self::parse(response, &url).await
    }

    /// What a `warrant … update` verb sends: a JSON Merge Patch (RFC 7396) of the fields its
    /// flags set. No field set is an error naming `flags`, the flags that would set one.
    pub async fn update<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        patch: serde_json::Map<String, serde_json::Value>,
        flags: &[&str],
    ) -> Result<T> {
        if patch.is_empty() {
            bail!(
                "nothing to update: give at least one of {}",
                flags.join(", ")
            );
        }
        self.merge_patch(segments, &serde_json::Value::Object(patch))
            .await
    }

    pub async fn delete(&self, segments: &[&str]) -> Result<()> {
        let url = self.endpoint(segments)?;
        self.send(Method::DELETE, url, |r| r).await?;
        Ok(())
    }
}

async fn read_body(mut response: Response, url: &Url) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(url, &e))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            bail!("the response from {url} is larger than {MAX_BODY} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A network failure, named by the URL and the innermost cause ("Connection refused").
fn transport_error(url: &Url, error: &reqwest::Error) -> anyhow::Error {
    let mut origin = url.clone();
    origin.set_query(None);
    if error.is_timeout() {
        return anyhow!(
            "cannot reach {origin}: no answer within {} s",
            TIMEOUT.as_secs()
        );
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    anyhow!("cannot reach {origin}: {cause}")
}

/// The start of a body, for an error message.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        assert_eq!(form_urlencode("a b+c/%:é"), "a+b%2Bc%2F%25%3A%C3%A9");
        let v = basic_authorization("sa_01", "s:e cret");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(v.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"sa_01:s%3Ae+cret");
    }

    #[test]
    fn problems_print_title_and_detail() {
        let e = ApiError {
            status: StatusCode::NOT_FOUND,
            problem: Some(Problem {
                type_: "about:blank".into(),
                title: "Not Found".into(),
                status: 404,
                detail: Some("no tenant named x".into()),
            }),
            body: String::new(),
        };
        assert_eq!(e.to_string(), "Not Found: no tenant named x");
    }
}
