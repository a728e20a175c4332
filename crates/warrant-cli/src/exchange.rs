//! The client side of the grants that trade a token the workload already holds for a Warrant
//! access token: RFC 8693 token exchange and the RFC 7523 jwt-bearer grant (docs/federation.md).
//! `warrant token exchange` and the agent's `--subject-token-file` source share it.
//!
//! A subject token is a bearer credential like a secret: it is read from a file, an environment
//! variable, stdin or the GitHub Actions runner — never from the command line, where `ps` shows
//! it — held in memory that is zeroized, and named in no error message or log line.

use std::fmt;
use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use reqwest::Url;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::client;

pub use warrant_core::grants::{
    GRANT_JWT_BEARER as JWT_BEARER, GRANT_TOKEN_EXCHANGE as TOKEN_EXCHANGE,
    TOKEN_TYPE_ACCESS_TOKEN as ACCESS_TOKEN_TYPE,
};
use warrant_core::grants::{TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT};
/// The largest subject token read (GitHub, GitLab and Kubernetes tokens are 1–2 KiB).
const MAX_SUBJECT_TOKEN: u64 = 64 * 1024;
/// Where a GitHub Actions job finds its OIDC token endpoint and the bearer token for it
/// (set when the workflow has `permissions: id-token: write`).
const GITHUB_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
const GITHUB_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// The `subject_token_type` of a token exchange (RFC 8693 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SubjectTokenType {
    /// `urn:ietf:params:oauth:token-type:jwt` — GitHub, GitLab and Kubernetes tokens.
    #[default]
    Jwt,
    /// `urn:ietf:params:oauth:token-type:id_token`.
    IdToken,
    /// `urn:ietf:params:oauth:token-type:access_token`.
    AccessToken,
}

impl SubjectTokenType {
    pub fn urn(self) -> &'static str {
        match self {
            Self::Jwt => TOKEN_TYPE_JWT,
            Self::IdToken => TOKEN_TYPE_ID_TOKEN,
            Self::AccessToken => ACCESS_TOKEN_TYPE,
        }
    }
}

/// Which grant presents the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Grant {
    /// RFC 8693 token exchange: `subject_token` + `subject_token_type`.
    #[default]
    Exchange,
    /// RFC 7523 §2.1: the token is the `assertion` (a JWT).
    JwtBearer,
}

/// A token presented to the token endpoint. `Debug` does not show it; its memory is zeroized.
pub struct SubjectToken(Zeroizing<String>);

impl fmt::Debug for SubjectToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubjectToken(…)")
    }
}

impl SubjectToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reads the token from a file (re-read on every use by the agent: Kubernetes rotates
    /// projected tokens in place).
    pub fn from_file(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot read the subject token file {}", path.display()))?;
        Self::read(file, &format!("the subject token file {}", path.display()))
    }

    /// Reads the token from the environment variable `var`.
    pub fn from_env(var: &str) -> Result<Self> {
        match std::env::var(var) {
            Ok(value) => Self::clean(Zeroizing::new(value), &format!("${var}")),
            Err(std::env::VarError::NotPresent) => bail!("${var} is not set"),
            Err(std::env::VarError::NotUnicode(_)) => bail!("${var} is not valid UTF-8"),
        }
    }

    /// Reads the token from stdin.
    pub fn from_stdin() -> Result<Self> {
        Self::read(std::io::stdin().lock(), "stdin")
    }

    fn read(reader: impl std::io::Read, from: &str) -> Result<Self> {
        let mut text = Zeroizing::new(String::new());
        reader
            .take(MAX_SUBJECT_TOKEN + 1)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read {from}"))?;
        if text.len() as u64 > MAX_SUBJECT_TOKEN {
            bail!("{from} is larger than {MAX_SUBJECT_TOKEN} bytes: not a token");
        }
        Self::clean(text, from)
    }

    /// Drops surrounding whitespace (a final newline, as files and `echo` leave); refuses an
    /// empty value and one with whitespace or control characters inside. `from` names the
    /// source in errors — the value itself never appears in one.
    fn clean(text: Zeroizing<String>, from: &str) -> Result<Self> {
        let token = text.trim();
        if token.is_empty() {
            bail!("{from} is empty: no subject token");
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            bail!("{from} holds whitespace or control characters inside: not one token");
        }
        if token.len() == text.len() {
            return Ok(Self(text));
        }
        Ok(Self(Zeroizing::new(token.to_string())))
    }

    /// The GitHub Actions job's OIDC token (GitHub's documented protocol: `GET
    /// $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD` with `Authorization: bearer
    /// $ACTIONS_ID_TOKEN_REQUEST_TOKEN`, answered with `{"value": JWT}`). Without `audience`,
    /// GitHub's default `aud` (the owner's URL) is asked for.
    pub async fn from_github_actions(
        http: &reqwest::Client,
        audience: Option<&str>,
    ) -> Result<Self> {
        let missing = || {
            anyhow!(
                "${GITHUB_REQUEST_URL} and ${GITHUB_REQUEST_TOKEN} are not both set: run inside \
                 a GitHub Actions job whose workflow has `permissions: id-token: write`"
            )
        };
        let base = std::env::var(GITHUB_REQUEST_URL).map_err(|_| missing())?;
        let bearer = Zeroizing::new(std::env::var(GITHUB_REQUEST_TOKEN).map_err(|_| missing())?);
        if base.trim().is_empty() || bearer.trim().is_empty() {
            return Err(missing());
        }
        let url = github_request_url(&base, audience)?;
        #[derive(Deserialize)]
        struct IdToken {
            value: String,
        }
        let authorization = Zeroizing::new(format!("bearer {}", bearer.trim()));
        let answer: IdToken = client::get_json_authorized(http, &url, &authorization)
            .await
            .context("cannot get the GitHub Actions OIDC token")?;
        Self::clean(
            Zeroizing::new(answer.value),
            "the GitHub Actions OIDC token",
        )
    }
}

/// `$ACTIONS_ID_TOKEN_REQUEST_URL` with `audience` added to its query. Only `https` (or `http`
/// to a loopback host, for tests): the request carries a bearer token.
fn github_request_url(base: &str, audience: Option<&str>) -> Result<Url> {
    let mut url =
        Url::parse(base.trim()).map_err(|_| anyhow!("${GITHUB_REQUEST_URL} is not a valid URL"))?;
    if !warrant_verify::allowed_url(url.as_str()) {
        bail!(
            "${GITHUB_REQUEST_URL} must be https (http only to a loopback host): refusing to send \
             the runner's request token to {}://{}",
            url.scheme(),
            url.host_str().unwrap_or("?")
        );
    }
    if let Some(aud) = audience {
        url.query_pairs_mut().append_pair("audience", aud);
    }
    Ok(url)
}

/// The token request's form without client authentication: RFC 8693 §2.1 (`subject_token`,
/// `subject_token_type`, `requested_token_type` = an access token) or RFC 7523 §2.1
/// (`assertion`), then each `audience` and `resource` (RFC 8693 §2.1, RFC 8707; more than one
/// distinct audience is `invalid_target`), then `scope` when not empty.
pub fn form<'a>(
    grant: Grant,
    token: &'a SubjectToken,
    token_type: SubjectTokenType,
    audiences: &'a [String],
    resources: &'a [String],
    scopes: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut form: Vec<(&str, &str)> = match grant {
        Grant::Exchange => vec![
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", token.as_str()),
            ("subject_token_type", token_type.urn()),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
        ],
        Grant::JwtBearer => vec![("grant_type", JWT_BEARER), ("assertion", token.as_str())],
    };
    form.extend(audiences.iter().map(|a| ("audience", a.as_str())));
    form.extend(resources.iter().map(|r| ("resource", r.as_str())));
    if !scopes.is_empty() {
        form.push(("scope", scopes));
    }
    form
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn token(s: &str) -> SubjectToken {
        SubjectToken::clean(Zeroizing::new(s.into()), "test").unwrap()
    }

    #[test]
    fn subject_tokens_are_trimmed_and_never_shown() {
        assert_eq!(token("  a.b.c\n").as_str(), "a.b.c");
        assert_eq!(format!("{:?}", token("a.b.c")), "SubjectToken(…)");
        for bad in ["", " \n", "a.b c", "a\u{7}b"] {
            let e = SubjectToken::clean(Zeroizing::new(bad.into()), "$X").unwrap_err();
            assert!(e.to_string().starts_with("$X "), "{e}");
            assert!(bad.trim().is_empty() || !e.to_string().contains(bad.trim()));
        }
        let big = "a".repeat(MAX_SUBJECT_TOKEN as usize + 1);
        let e = SubjectToken::read(big.as_bytes(), "stdin").unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }

    #[test]
    fn forms_follow_rfc_8693_and_rfc_7523() {
        let t = token("h.p.s");
        let aud = vec!["https://deploy.internal".to_string()];
        let f = form(
            Grant::Exchange,
            &t,
            SubjectTokenType::IdToken,
            &aud,
            &[],
            "a b",
        );
        assert_eq!(
            f,
            vec![
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", "h.p.s"),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:id_token"
                ),
                ("requested_token_type", ACCESS_TOKEN_TYPE),
                ("audience", "https://deploy.internal"),
                ("scope", "a b"),
            ]
        );
        let f = form(Grant::JwtBearer, &t, SubjectTokenType::Jwt, &[], &aud, "");
        assert_eq!(
            f,
            vec![
                ("grant_type", JWT_BEARER),
                ("assertion", "h.p.s"),
                ("resource", "https://deploy.internal"),
            ]
        );
    }

    #[test]
    fn the_github_request_url_gets_the_audience_and_must_be_https() {
        let u = github_request_url(
            "https://pipelines.actions.example/idtoken?api-version=2.0",
            Some("https://warrant.example/t/default"),
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "https://pipelines.actions.example/idtoken?api-version=2.0&audience=https%3A%2F%2Fwarrant.example%2Ft%2Fdefault"
        );
        assert!(github_request_url("http://127.0.0.1:9/x", None).is_ok());
        let e = github_request_url("http://runner.example/x?y=1", None).unwrap_err();
        assert!(e.to_string().contains("must be https"), "{e}");
        assert!(github_request_url("file:///etc/passwd", None).is_err());
    }
}
