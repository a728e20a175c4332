//! `warrant token …`: workload verbs. They speak only the protocol endpoints (`{issuer}/token`,
//! discovery, JWKS) with the workload's own credentials, never the admin API.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Subcommand;
use zeroize::Zeroizing;

use crate::client;
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
    /// Decode a token, verify it against its issuer's published keys, and explain the verdict.
    /// Exits 0 when the token is valid, 1 when not.
    Inspect {
        /// The token, or `-` to read it from stdin.
        token: String,
    },
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
    match out {
        Output::Text => output::line(&token.access_token),
        Output::Json => output::json(&token),
        Output::Env => output::line(&format!("WARRANT_TOKEN={}", token.access_token)),
    }
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
