//! `warrant token …`: workload verbs. They speak only the protocol endpoints (`{issuer}/token`,
//! discovery, JWKS) with the workload's own credentials, never the admin API.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Args, Subcommand};
use warrant_proto::oauth::TokenResponse;
use zeroize::Zeroizing;

use crate::client::{self, TokenRefused};
use crate::exchange::{self, Grant, SubjectToken, SubjectTokenType};
use crate::globals::{self, GlobalArgs, Output};
use crate::grant::split_scopes;
use crate::inspect;
use crate::output;

/// Where `token get` and `agent` read the client secret first.
const SECRET_ENV: &str = "WARRANT_CLIENT_SECRET";

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Get an access token with the client credentials grant. The secret comes from
    /// WARRANT_CLIENT_SECRET, else from --credentials-file.
    Get {
        /// The tenant's issuer URL (token endpoint: {issuer}/token) [default: the credentials
        /// file's].
        #[arg(long)]
        issuer: Option<String>,
        /// The account's client id [default: the credentials file's].
        #[arg(long)]
        client_id: Option<String>,
        /// Audience of the token (RFC 8707) [default: the account's default audience].
        #[arg(long)]
        resource: Option<String>,
        /// Scope to ask for (repeatable; space-separated lists also work).
        #[arg(long)]
        scope: Vec<String>,
        /// A `{"url","issuer","client_id","client_secret"}` file.
        #[arg(long)]
        credentials_file: Option<PathBuf>,
    },
    /// Trade a token you already hold (GitHub Actions, GitLab CI, Kubernetes, any issuer a
    /// federation trust names) for an access token: RFC 8693 token exchange, or the RFC 7523
    /// jwt-bearer grant.
    Exchange(Box<ExchangeArgs>),
    /// Decode a token, verify it against its issuer's published keys, and explain the verdict.
    /// Exits 0 when the token is valid, 1 when not.
    Inspect {
        /// The token, or `-` to read it from stdin.
        token: String,
    },
}

#[derive(Debug, Args)]
#[command(
    group(
        clap::ArgGroup::new("subject")
            .required(true)
            .args(["subject_token_file", "subject_token_env", "subject_token", "github_actions"])
    ),
    after_help = "\
The subject token is never taken on the command line (other users see it in `ps`). Without \
--client-id or --credentials-file no client authentication is sent: the federation trust alone \
decides. --output text prints the access token and a newline; json the whole response; env \
WARRANT_TOKEN=… and WARRANT_TOKEN_EXPIRES_IN=… lines for `eval` or $GITHUB_ENV. A refusal \
prints `error: <error>: <description>` and exits 1. See docs/federation.md."
)]
pub struct ExchangeArgs {
    /// The tenant's issuer URL (token endpoint: {issuer}/token); https, or http to a loopback
    /// host [default: the credentials file's].
    #[arg(long)]
    issuer: Option<String>,
    /// Read the subject token from this file (e.g. a projected Kubernetes service account
    /// token).
    #[arg(long, value_name = "PATH")]
    subject_token_file: Option<PathBuf>,
    /// Read the subject token from this environment variable (e.g. GitLab's `id_tokens:` one).
    #[arg(long, value_name = "VAR")]
    subject_token_env: Option<String>,
    /// `-`: read the subject token from stdin (the only value taken: a token on the command
    /// line shows in `ps`).
    #[arg(long, value_name = "-")]
    subject_token: Option<String>,
    /// Fetch the GitHub Actions job's OIDC token from the runner (needs `permissions:
    /// id-token: write`).
    #[arg(long)]
    github_actions: bool,
    /// The `aud` to ask GitHub for: the audience of the trust [default: GitHub's, the owner's
    /// URL].
    #[arg(long, value_name = "AUDIENCE", requires = "github_actions")]
    github_audience: Option<String>,
    /// What the subject token is.
    #[arg(long, value_enum, default_value_t)]
    subject_token_type: SubjectTokenType,
    /// exchange: RFC 8693 token exchange; jwt-bearer: RFC 7523 (the token is the assertion).
    #[arg(long, value_enum, default_value_t)]
    grant: Grant,
    /// Audience of the token (RFC 8693 `audience`; repeatable, but one distinct value)
    /// [default: the account's default audience].
    #[arg(long)]
    audience: Vec<String>,
    /// Audience of the token as an RFC 8707 `resource` (repeatable, one distinct value).
    #[arg(long)]
    resource: Vec<String>,
    /// Scope to ask for (repeatable; space-separated lists also work).
    #[arg(long)]
    scope: Vec<String>,
    /// Authenticate as this client (secret from WARRANT_CLIENT_SECRET or --credentials-file).
    /// Without it or --credentials-file, no client authentication is sent.
    #[arg(long)]
    client_id: Option<String>,
    /// A `{"url","issuer","client_id","client_secret"}` file: authenticate with its client.
    #[arg(long)]
    credentials_file: Option<PathBuf>,
}

pub async fn run(cmd: TokenCmd, global: &GlobalArgs) -> Result<ExitCode> {
    match cmd {
        TokenCmd::Get {
            issuer,
            client_id,
            resource,
            scope,
            credentials_file,
        } => {
            get(
                global.output,
                issuer,
                client_id,
                resource,
                &scope,
                credentials_file,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        TokenCmd::Exchange(args) => {
            exchange(global.output, *args).await?;
            Ok(ExitCode::SUCCESS)
        }
        TokenCmd::Inspect { token } => {
            if global.output == Output::Env {
                bail!("token inspect prints text or json, not env");
            }
            let token = read_token(&token)?;
            let report = inspect::inspect(&token, &client::http()?).await;
            inspect::print(&report, global.output)?;
            Ok(if report.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

async fn get(
    out: Output,
    issuer: Option<String>,
    client_id: Option<String>,
    resource: Option<String>,
    scope: &[String],
    credentials_file: Option<PathBuf>,
) -> Result<()> {
    let creds = SecretCredentials::resolve(issuer, client_id, credentials_file.as_deref())?;
    let endpoint = TokenEndpoint::of(&creds.issuer)?;
    if endpoint.plain_http_off_loopback {
        eprintln!(
            "warning: sending the client secret over plain http to {}",
            endpoint.host()
        );
    }
    let scopes = split_scopes(scope).join(" ");
    let form = client_credentials_form(resource.as_deref(), &scopes);
    let token = client::request_token(
        &client::http()?,
        &endpoint.url,
        &creds.client_id,
        &creds.secret,
        &form,
    )
    .await
    .context("cannot get a token")?;
    print_token(out, &token)
}

async fn exchange(out: Output, a: ExchangeArgs) -> Result<()> {
    // Checked here, not by clap, whose error would repeat the value: the token.
    if a.subject_token.as_deref().is_some_and(|t| t != "-") {
        bail!(
            "--subject-token takes only `-` (stdin): a token on the command line shows in `ps` \
             and in shell history; use --subject-token-file, --subject-token-env or stdin"
        );
    }
    if a.grant == Grant::JwtBearer && a.subject_token_type != SubjectTokenType::Jwt {
        bail!("the jwt-bearer grant presents a JWT; --subject-token-type is for --grant exchange");
    }
    // Client authentication only when asked for: a federated workload usually has no secret.
    let creds = if a.client_id.is_some() || a.credentials_file.is_some() {
        Some(SecretCredentials::resolve(
            a.issuer.clone(),
            a.client_id,
            a.credentials_file.as_deref(),
        )?)
    } else {
        None
    };
    let issuer = creds
        .as_ref()
        .map(|c| c.issuer.clone())
        .or(a.issuer)
        .ok_or_else(|| anyhow!("no issuer: pass --issuer"))?;
    let endpoint = TokenEndpoint::of(&issuer)?;
    if endpoint.plain_http_off_loopback {
        bail!(
            "refusing to send a token over plain http to {}: the issuer must be https (http only \
             to a loopback host)",
            endpoint.host()
        );
    }
    let http = client::http()?;
    let subject = if let Some(path) = &a.subject_token_file {
        SubjectToken::from_file(path)?
    } else if let Some(var) = &a.subject_token_env {
        SubjectToken::from_env(var)?
    } else if a.subject_token.is_some() {
        SubjectToken::from_stdin()?
    } else {
        SubjectToken::from_github_actions(&http, a.github_audience.as_deref()).await?
    };
    let scopes = split_scopes(&a.scope).join(" ");
    let form = exchange::form(
        a.grant,
        &subject,
        a.subject_token_type,
        &a.audience,
        &a.resource,
        &scopes,
    );
    let answer = match &creds {
        Some(c) => {
            client::request_token(&http, &endpoint.url, &c.client_id, &c.secret, &form).await
        }
        None => client::request_token_form(&http, &endpoint.url, &form).await,
    };
    let token = answer.map_err(|e| {
        // A refusal is the server's RFC 6749 error as it is (`error: invalid_grant: …`); a
        // transport failure keeps its chain.
        match e.chain().find_map(|c| c.downcast_ref::<TokenRefused>()) {
            Some(refused) => anyhow!("{}", refused.oauth_error()),
            None => e.context("cannot exchange the token"),
        }
    })?;
    print_token(out, &token)
}

/// Prints a token response: the access token (text), the whole response (json), or shell
/// assignments (env).
fn print_token(out: Output, token: &TokenResponse) -> Result<()> {
    match out {
        Output::Text => output::line(&token.access_token),
        Output::Json => output::json(token),
        Output::Env => output::line(&env_lines(token)?),
    }
}

/// `WARRANT_TOKEN=…` and `WARRANT_TOKEN_EXPIRES_IN=…`, for `eval "$(…)"` and for appending to
/// `$GITHUB_ENV`. The two read values differently (a shell unquotes, GitHub does not), so the
/// value is printed bare and must need no quoting: a token with any other character than
/// `A-Za-z0-9._-+/=` (a JWT never has one) is refused rather than quoted.
fn env_lines(token: &TokenResponse) -> Result<Zeroizing<String>> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-+/=".contains(c);
    if token.access_token.is_empty() || !token.access_token.chars().all(plain) {
        bail!(
            "the access token holds characters a shell would interpret; use --output json or text"
        );
    }
    Ok(Zeroizing::new(format!(
        "WARRANT_TOKEN={}\nWARRANT_TOKEN_EXPIRES_IN={}",
        token.access_token, token.expires_in
    )))
}

/// A workload's client credentials with a secret, as `token get` and `agent` find them: the
/// issuer and client id from the flags, else the credentials file; the secret from
/// WARRANT_CLIENT_SECRET, else the credentials file. `Debug` does not show the secret.
pub struct SecretCredentials {
    pub issuer: String,
    pub client_id: String,
    pub secret: Zeroizing<String>,
}

impl fmt::Debug for SecretCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretCredentials")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl SecretCredentials {
    pub fn resolve(
        issuer: Option<String>,
        client_id: Option<String>,
        credentials_file: Option<&Path>,
    ) -> Result<Self> {
        let file = credentials_file
            .map(globals::load_credentials)
            .transpose()?;
        let secret = match std::env::var(SECRET_ENV) {
            Ok(s) if !s.is_empty() => s,
            _ => file
                .as_ref()
                .map(|f| f.client_secret.clone())
                .ok_or_else(|| {
                    anyhow!("no client secret: set {SECRET_ENV} or pass --credentials-file")
                })?,
        };
        let issuer = issuer
            .or_else(|| file.as_ref().map(|f| f.issuer.clone()))
            .ok_or_else(|| anyhow!("no issuer: pass --issuer or --credentials-file"))?;
        let client_id = client_id
            .or_else(|| file.as_ref().map(|f| f.client_id.clone()))
            .ok_or_else(|| anyhow!("no client id: pass --client-id or --credentials-file"))?;
        Ok(Self {
            issuer,
            client_id,
            secret: Zeroizing::new(secret),
        })
    }
}

/// A tenant's token endpoint, `{issuer}/token`.
#[derive(Debug, Clone)]
pub struct TokenEndpoint {
    pub url: String,
    /// The issuer with surrounding space and trailing slashes dropped (a private_key_jwt
    /// assertion's `aud`).
    pub issuer: String,
    /// Plain http to a host that is not loopback: credentials would cross the network in clear.
    pub plain_http_off_loopback: bool,
    /// The endpoint's host (`?` if it has none), for that warning.
    host: String,
}

impl TokenEndpoint {
    pub fn of(issuer: &str) -> Result<Self> {
        let issuer = issuer.trim().trim_end_matches('/').to_string();
        let url = format!("{issuer}/token");
        let parsed = client::parse_url(&url)?;
        Ok(Self {
            plain_http_off_loopback: parsed.scheme() != "https" && !inspect::is_loopback(&parsed),
            host: parsed.host_str().unwrap_or("?").to_string(),
            url,
            issuer,
        })
    }

    /// The endpoint's host, for a warning.
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// The client credentials grant's form (RFC 6749 §4.4.2) without client authentication;
/// `scopes` is the space-separated list, left out when empty.
pub fn client_credentials_form<'a>(
    resource: Option<&'a str>,
    scopes: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    if !scopes.is_empty() {
        form.push(("scope", scopes));
    }
    form
}

/// The token argument, or stdin for `-`; surrounding whitespace and a `Bearer ` prefix are
/// dropped so a pasted header value works too.
pub(crate) fn read_token(arg: &str) -> Result<String> {
    let raw = if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the token from stdin")?;
        s
    } else {
        arg.to_string()
    };
    let t = raw.trim();
    let t = t
        .strip_prefix("Bearer ")
        .or_else(|| t.strip_prefix("bearer "))
        .unwrap_or(t)
        .trim();
    if t.is_empty() {
        bail!("no token given");
    }
    Ok(t.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn response(access_token: &str) -> TokenResponse {
        TokenResponse {
            access_token: access_token.into(),
            token_type: "Bearer".into(),
            expires_in: 600,
            scope: None,
            issued_token_type: Some(exchange::ACCESS_TOKEN_TYPE.into()),
        }
    }

    #[test]
    fn env_output_is_two_plain_assignments() {
        let lines = env_lines(&response("eyJh.eyJz-_.c2ln+/=")).unwrap();
        assert_eq!(
            lines.as_str(),
            "WARRANT_TOKEN=eyJh.eyJz-_.c2ln+/=\nWARRANT_TOKEN_EXPIRES_IN=600"
        );
        for unsafe_token in [
            "", "a b", "a'b", "a$(id)", "a\nFOO=1", "~root", "a;b", "a`b`",
        ] {
            let e = env_lines(&response(unsafe_token)).unwrap_err();
            assert!(e.to_string().contains("--output json"), "{unsafe_token:?}");
        }
    }
}
