//! `warrant agent`: keeps a fresh access token in a file for a workload (docs/agent.md).
//!
//! The agent gets a token with the client credentials grant, writes it atomically (a temp file
//! in the same directory, mode 0600, fsynced, renamed over the target: a reader sees the old
//! token or the new one, never an empty or partial file), and gets the next one at about two
//! thirds of the lifetime. While the issuer fails it retries with exponential backoff and full
//! jitter, leaving the last token in place. It speaks only the token endpoint, with the
//! workload's own credentials.
//!
//! Sources: a client secret, a private key (private_key_jwt, RFC 7523), or a subject token file
//! — such as a projected Kubernetes service account token — re-read at every refresh and
//! exchanged with RFC 8693 token exchange without client authentication (a federation trust
//! decides which account it acts as).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use clap::Args;
use serde_json::json;
use warrant_core::Clock as _;
use warrant_jose::{Algorithm, SigningKey, b64, crypto};
use warrant_proto::oauth::TokenResponse;
use zeroize::Zeroizing;

use crate::client::{self, TokenRefused};
use crate::exchange::{self, Grant, SubjectToken, SubjectTokenType};
use crate::grant::split_scopes;
use crate::serve;
use crate::token::{SecretCredentials, TokenEndpoint, client_credentials_form};

/// Lifetime of each private_key_jwt assertion; the server takes at most 5 minutes.
const ASSERTION_LIFETIME_SECS: i64 = 60;
/// The refresh comes at this fraction of the token's lifetime…
const REFRESH_AT: f64 = 2.0 / 3.0;
/// …give or take this fraction of it, so a fleet started together spreads its requests.
const REFRESH_JITTER: f64 = 0.05;
/// Never refresh sooner than this after a success, whatever the lifetime.
const MIN_REFRESH: Duration = Duration::from_secs(1);
/// Backoff after failures: full jitter over `BACKOFF_START · 2^(n-1)`, capped.
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// The shortest pause between attempts (full jitter may draw 0).
const MIN_RETRY: Duration = Duration::from_millis(100);

#[derive(Debug, Args)]
#[command(after_help = "\
The token file holds the access token followed by one newline; it is replaced atomically (never \
empty or partial) with mode 0600. Secret source: WARRANT_CLIENT_SECRET, else --credentials-file. \
Key source: --private-key (private_key_jwt). Federation source: --subject-token-file (re-read at \
every refresh and exchanged with RFC 8693, no client authentication). SIGTERM or SIGINT stops the agent with exit 0; the last \
token stays in the file. See docs/agent.md.")]
pub struct AgentArgs {
    /// The tenant's issuer URL (token endpoint: {issuer}/token) [default: the credentials
    /// file's].
    #[arg(long)]
    issuer: Option<String>,
    /// The account's client id [default: the credentials file's].
    #[arg(long)]
    client_id: Option<String>,
    /// The file to keep the access token in (the token and a newline, mode 0600).
    #[arg(long)]
    out: PathBuf,
    /// Also keep the whole token response (JSON: access_token, token_type, expires_in, scope)
    /// in this file, replaced the same way.
    #[arg(long)]
    out_json: Option<PathBuf>,
    /// Audience of the token (RFC 8707) [default: the account's default audience].
    #[arg(long)]
    resource: Option<String>,
    /// Scope to ask for (repeatable; space-separated lists also work).
    #[arg(long)]
    scope: Vec<String>,
    /// Authenticate with private_key_jwt (RFC 7523): a PKCS#8 PEM private key file ("BEGIN
    /// PRIVATE KEY") whose public key the account registered. Without it, a client secret.
    #[arg(long, conflicts_with = "credentials_file")]
    private_key: Option<PathBuf>,
    /// Federation: exchange the token in this file (RFC 8693), re-read at every refresh — e.g.
    /// a projected Kubernetes service account token. No client authentication is sent; a
    /// federation trust of the tenant maps the token to an account. Needs --issuer.
    #[arg(
        long,
        value_name = "PATH",
        requires = "issuer",
        conflicts_with_all = ["private_key", "credentials_file", "client_id"]
    )]
    subject_token_file: Option<PathBuf>,
    /// What the subject token is.
    #[arg(long, value_enum, requires = "subject_token_file")]
    subject_token_type: Option<SubjectTokenType>,
    /// The `kid` of the assertions [default: the key's RFC 7638 thumbprint].
    #[arg(long, requires = "private_key")]
    key_id: Option<String>,
    /// The private key's algorithm: ES256, EdDSA, RS256 or PS256 [default: from the key;
    /// RS256 for RSA].
    #[arg(long, requires = "private_key", value_parser = parse_alg)]
    alg: Option<Algorithm>,
    /// A `{"url","issuer","client_id","client_secret"}` file (the secret source when
    /// WARRANT_CLIENT_SECRET is not set).
    #[arg(long)]
    credentials_file: Option<PathBuf>,
    /// Get one token, write it and exit (non-zero on failure): for init containers and scripts.
    #[arg(long)]
    once: bool,
}

fn parse_alg(s: &str) -> Result<Algorithm, String> {
    Algorithm::parse(s).map_err(|_| "expected ES256, EdDSA, RS256 or PS256".to_string())
}

pub async fn run(args: AgentArgs) -> Result<()> {
    serve::init_logging();
    let once = args.once;
    let agent = Agent::new(args)?;
    if once {
        let lifetime = agent.refresh().await?;
        tracing::info!(
            expires_in = lifetime.as_secs(),
            "token written; --once, exiting"
        );
        return Ok(());
    }
    let stop = serve::wait_for_signal();
    tokio::pin!(stop);
    let mut failures: u32 = 0;
    loop {
        let wait = tokio::select! {
            () = &mut stop => break,
            result = agent.refresh() => match result {
                Ok(lifetime) => {
                    failures = 0;
                    refresh_delay(lifetime, unit_random())
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let wait = backoff(failures, unit_random());
                    agent.log_failure(&e, failures, wait);
                    wait
                }
            },
        };
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!("stopping on a signal; the last token stays in its file");
    Ok(())
}

/// How the agent authenticates at the token endpoint.
enum Source {
    /// client_secret_basic.
    Secret(SecretCredentials),
    /// private_key_jwt: a fresh assertion per request.
    PrivateKey {
        client_id: String,
        /// Boxed: one agent holds one source, and the enum stays small.
        key: Box<SigningKey>,
        kid: String,
    },
    /// RFC 8693 token exchange of the token in a file, read afresh for every request; no
    /// client authentication.
    SubjectTokenFile {
        path: PathBuf,
        token_type: SubjectTokenType,
    },
}

struct Agent {
    http: reqwest::Client,
    endpoint: TokenEndpoint,
    source: Source,
    resource: Option<String>,
    /// Space-separated.
    scopes: String,
    out: PathBuf,
    out_json: Option<PathBuf>,
}

impl Agent {
    fn new(args: AgentArgs) -> Result<Self> {
        let (source, issuer) = match (&args.subject_token_file, &args.private_key) {
            (Some(path), _) => {
                let issuer = args
                    .issuer
                    .ok_or_else(|| anyhow!("--subject-token-file needs --issuer"))?;
                let source = Source::SubjectTokenFile {
                    path: path.clone(),
                    token_type: args.subject_token_type.unwrap_or_default(),
                };
                (source, issuer)
            }
            (None, Some(path)) => {
                let issuer = args
                    .issuer
                    .ok_or_else(|| anyhow!("--private-key needs --issuer"))?;
                let client_id = args
                    .client_id
                    .ok_or_else(|| anyhow!("--private-key needs --client-id"))?;
                let key = Box::new(read_private_key(path, args.alg)?);
                let kid = args.key_id.unwrap_or_else(|| key.kid().to_string());
                let source = Source::PrivateKey {
                    client_id,
                    key,
                    kid,
                };
                (source, issuer)
            }
            (None, None) => {
                let creds = SecretCredentials::resolve(
                    args.issuer,
                    args.client_id,
                    args.credentials_file.as_deref(),
                )?;
                let issuer = creds.issuer.clone();
                (Source::Secret(creds), issuer)
            }
        };
        let endpoint = TokenEndpoint::of(&issuer)?;
        if endpoint.plain_http_off_loopback {
            tracing::warn!(
                host = %endpoint.host(),
                "the token endpoint is plain http off loopback: credentials and tokens cross \
                 the network in clear"
            );
        }
        Ok(Self {
            http: client::http()?,
            endpoint,
            source,
            resource: args.resource,
            scopes: split_scopes(&args.scope).join(" "),
            out: args.out,
            out_json: args.out_json,
        })
    }

    /// Gets a token and writes it; returns its lifetime.
    async fn refresh(&self) -> Result<Duration> {
        let token = self.request().await.context("cannot get a token")?;
        let mut line = Zeroizing::new(String::with_capacity(token.access_token.len() + 1));
        line.push_str(&token.access_token);
        line.push('\n');
        write_atomically(&self.out, line.as_bytes())?;
        if let Some(path) = &self.out_json {
            let body = Zeroizing::new(
                serde_json::to_vec(&token).context("cannot serialise the token response")?,
            );
            write_atomically(path, &body)?;
        }
        tracing::info!(
            out = %self.out.display(),
            jti = %jti_of(&token.access_token),
            expires_in = token.expires_in,
            "token refreshed"
        );
        Ok(Duration::from_secs(token.expires_in))
    }

    async fn request(&self) -> Result<TokenResponse> {
        let url = &self.endpoint.url;
        match &self.source {
            Source::Secret(creds) => {
                let form = client_credentials_form(self.resource.as_deref(), &self.scopes);
                client::request_token(&self.http, url, &creds.client_id, &creds.secret, &form).await
            }
            Source::PrivateKey {
                client_id,
                key,
                kid,
            } => {
                let assertion = assertion(key, kid, client_id, &self.endpoint.issuer)?;
                let mut form = client_credentials_form(self.resource.as_deref(), &self.scopes);
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ));
                form.push(("client_assertion", &assertion));
                client::request_token_form(&self.http, url, &form).await
            }
            Source::SubjectTokenFile { path, token_type } => {
                // Read afresh every time: the kubelet replaces a projected token well before
                // it expires, and the old one may already be refused.
                let subject = SubjectToken::from_file(path)?;
                let form = exchange::form(
                    Grant::Exchange,
                    &subject,
                    *token_type,
                    &[],
                    self.resource.as_slice(),
                    &self.scopes,
                );
                client::request_token_form(&self.http, url, &form).await
            }
        }
    }

    /// A refusal by the token endpoint (bad credentials, unknown audience…) is an error: it
    /// needs a person, though it is retried in case the credentials get fixed. A transport
    /// failure or a 5xx is a warning: the issuer is probably coming back.
    fn log_failure(&self, e: &anyhow::Error, failures: u32, wait: Duration) {
        let refused = e
            .chain()
            .find_map(|c| c.downcast_ref::<TokenRefused>())
            .filter(|r| r.status.is_client_error());
        let error = format!("{e:#}");
        let retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let out = self.out.display();
        match refused {
            Some(r) => tracing::error!(
                %out, %error, failures, retry_in_ms, oauth_error = %r.error.error,
                "the token endpoint refused the credentials; retrying"
            ),
            None => tracing::warn!(
                %out, %error, failures, retry_in_ms,
                "cannot refresh the token; retrying (the file keeps its previous token, if any)"
            ),
        }
    }
}

/// A private_key_jwt client assertion (RFC 7523 §3): `iss` = `sub` = the client id, `aud` = the
/// issuer, a fresh `jti`, valid for [`ASSERTION_LIFETIME_SECS`]. Built here rather than with
/// `sign_compact` because `--key-id` may name the key differently from its thumbprint.
fn assertion(key: &SigningKey, kid: &str, client_id: &str, audience: &str) -> Result<String> {
    let now = warrant_core::SystemClock.now().secs();
    let jti = b64::encode(crypto::random_array::<16>().context("no randomness for a jti")?);
    let header = json!({"alg": key.alg().as_str(), "kid": kid, "typ": "JWT"});
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": jti,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECS,
    });
    let mut jws = String::new();
    b64::encode_into(header.to_string(), &mut jws);
    jws.push('.');
    b64::encode_into(claims.to_string(), &mut jws);
    let sig = key
        .sign(jws.as_bytes())
        .context("cannot sign the client assertion")?;
    jws.push('.');
    b64::encode_into(sig, &mut jws);
    Ok(jws)
}

/// Reads a PKCS#8 PEM private key; with no `alg`, the first of ES256, EdDSA, RS256 that fits.
fn read_private_key(path: &Path, alg: Option<Algorithm>) -> Result<SigningKey> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the private key {}", path.display()))?,
    );
    let der = pkcs8_der(&text).with_context(|| format!("{}", path.display()))?;
    match alg {
        Some(alg) => SigningKey::from_pkcs8(alg, &der)
            .map_err(|e| anyhow!("{}: {e} (--alg {alg})", path.display())),
        None => [Algorithm::Es256, Algorithm::EdDsa, Algorithm::Rs256]
            .into_iter()
            .find_map(|alg| SigningKey::from_pkcs8(alg, &der).ok())
            .ok_or_else(|| {
                anyhow!(
                    "{} is not a P-256, Ed25519 or RSA (2048 to 8192 bits) PKCS#8 key",
                    path.display()
                )
            }),
    }
}

/// The DER of the first `PRIVATE KEY` PEM block.
fn pkcs8_der(pem: &str) -> Result<Zeroizing<Vec<u8>>> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        bail!(
            "the key is encrypted; store it unencrypted (`openssl pkcs8 -in KEY -out KEY.p8`) and \
             protect the file instead"
        );
    }
    let Some(start) = pem.find(BEGIN).map(|i| i + BEGIN.len()) else {
        if pem.contains("-----BEGIN EC PRIVATE KEY-----")
            || pem.contains("-----BEGIN RSA PRIVATE KEY-----")
        {
            bail!(
                "the key is not PKCS#8; convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY \
                 -out KEY.p8`"
            );
        }
        bail!("no \"{BEGIN}\" block");
    };
    let end = pem[start..]
        .find(END)
        .map(|i| i + start)
        .ok_or_else(|| anyhow!("no \"{END}\" line"))?;
    let body: Zeroizing<String> = Zeroizing::new(
        pem[start..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect(),
    );
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| anyhow!("the PEM block is not valid base64"))
}

/// Replaces `path` with `contents`: a new temp file in the same directory (mode 0600), written
/// and fsynced, renamed over `path`, then the directory fsynced. rename(2) within a file system
/// is atomic, so a reader opens the old file or the new one, never an empty or partial one;
/// the target is never truncated in place. On failure the temp file is removed and the old file
/// stays.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{} names no file", path.display()))?;
    let suffix = b64::encode(crypto::random_array::<6>().context("no randomness")?);
    let tmp = dir.join(format!(".{}.{suffix}.tmp", name.to_string_lossy()));
    let written = serve::write_private(&tmp, contents, true).and_then(|()| {
        std::fs::rename(&tmp, path)
            .with_context(|| format!("moving {} over {}", tmp.display(), path.display()))
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("cannot write {}", path.display())));
    }
    if let Ok(d) = std::fs::File::open(dir) {
        // Makes the rename durable; a failure here leaves it merely not yet on disk.
        let _ = d.sync_all();
    }
    Ok(())
}

/// The token's `jti`, for the log (never the token itself). Decoded without verification: it
/// only names the token in a log line.
fn jti_of(token: &str) -> String {
    warrant_jose::dangerous::decode_unverified(token)
        .ok()
        .and_then(|(_, claims)| claims.get("jti")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// When to refresh a token that lives `lifetime`: at [`REFRESH_AT`] of it, ±[`REFRESH_JITTER`]
/// of it (`unit` in [0, 1) picks where), at least [`MIN_REFRESH`].
fn refresh_delay(lifetime: Duration, unit: f64) -> Duration {
    let fraction = REFRESH_AT + REFRESH_JITTER * (2.0 * unit - 1.0);
    lifetime.mul_f64(fraction).max(MIN_REFRESH)
}

/// The pause after the `failures`-th failure in a row: "full jitter" — uniform in
/// [0, min(cap, start · 2^(failures-1))] (`unit` in [0, 1) picks where) — at least
/// [`MIN_RETRY`].
fn backoff(failures: u32, unit: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let ceiling = BACKOFF_START.saturating_mul(1u32 << exp).min(BACKOFF_CAP);
    ceiling.mul_f64(unit).max(MIN_RETRY)
}

/// A uniform number in [0, 1); 0.5 (no jitter) if the system has no randomness to give.
fn unit_random() -> f64 {
    match crypto::random_array::<8>() {
        // 53 random bits: exactly representable in an f64.
        Ok(bytes) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn refresh_comes_at_about_two_thirds() {
        let hour = Duration::from_secs(3600);
        assert_eq!(refresh_delay(hour, 0.5), Duration::from_secs(2400));
        assert!(refresh_delay(hour, 0.0) >= Duration::from_secs(2220));
        assert!(refresh_delay(hour, 0.999_999) <= Duration::from_secs(2580));
        assert_eq!(refresh_delay(Duration::ZERO, 0.5), MIN_REFRESH);
    }

    #[test]
    fn backoff_grows_to_the_cap_with_full_jitter() {
        assert_eq!(backoff(1, 0.999_999).as_millis(), 999);
        assert_eq!(backoff(4, 0.5), Duration::from_secs(4));
        assert_eq!(backoff(30, 0.5), Duration::from_secs(30));
        assert_eq!(backoff(u32::MAX, 0.0), MIN_RETRY);
        for _ in 0..100 {
            assert!(backoff(10, unit_random()) <= BACKOFF_CAP);
        }
    }

    #[test]
    fn pkcs8_pem_is_decoded_and_other_forms_are_explained() {
        let (key, der) = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let body = base64::engine::general_purpose::STANDARD.encode(&*der);
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n");
        assert_eq!(*pkcs8_der(&pem).unwrap(), *der);
        let dir = std::env::temp_dir().join(format!("warrant-agent-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("key.pem");
        std::fs::write(&file, &pem).unwrap();
        assert_eq!(read_private_key(&file, None).unwrap().kid(), key.kid());
        assert!(read_private_key(&file, Some(Algorithm::Es256)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        let e = pkcs8_der("-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----")
            .unwrap_err();
        assert!(e.to_string().contains("openssl pkcs8 -topk8"), "{e}");
    }
}
