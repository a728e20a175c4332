//! Options every verb takes (`--url`, `--credentials`, `--output`) and how they combine with the
//! admin credentials file.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use warrant_proto::admin::CredentialsFile;

/// Where the server listens when neither `--url`, `WARRANT_URL` nor the credentials file says.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// Where `warrant serve` writes the bootstrap admin credentials with its default data dir.
pub const DEFAULT_CREDENTIALS: &str = "./warrant-data/admin-credentials.json";

/// How a verb prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    /// Readable lines and tables.
    #[default]
    Text,
    /// JSON on stdout, for scripts.
    Json,
    /// `NAME=value` lines for a shell (token verbs only).
    Env,
}

#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Base URL of the Warrant server [default: the credentials file's `url`, else
    /// http://127.0.0.1:8080].
    #[arg(long, env = "WARRANT_URL", global = true)]
    pub url: Option<String>,

    /// Admin credentials file written by `warrant serve` on first start.
    #[arg(
        long,
        env = "WARRANT_CREDENTIALS",
        global = true,
        default_value = DEFAULT_CREDENTIALS
    )]
    pub credentials: PathBuf,

    /// Output format (`env` only for token verbs).
    #[arg(long, value_enum, global = true, default_value_t = Output::Text)]
    pub output: Output,
}

impl GlobalArgs {
    /// The output format of a verb that has no `env` form.
    pub fn plain_output(&self) -> Result<Output> {
        if self.output == Output::Env {
            bail!("--output env is only for token verbs; use text or json");
        }
        Ok(self.output)
    }
}

/// The server URL: an explicit `--url` / `WARRANT_URL` beats the credentials file's `url`, which
/// beats the built-in default. A trailing `/` is dropped so paths can be appended.
pub fn resolve_url(explicit: Option<&str>, file: Option<&CredentialsFile>) -> String {
    let chosen = explicit
        .filter(|u| !u.trim().is_empty())
        .or_else(|| {
            file.map(|f| f.url.as_str())
                .filter(|u| !u.trim().is_empty())
        })
        .unwrap_or(DEFAULT_URL);
    chosen.trim().trim_end_matches('/').to_string()
}

/// Reads a `{"url","issuer","client_id","client_secret"}` file.
pub fn load_credentials(path: &Path) -> Result<CredentialsFile> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the credentials file {} (start `warrant serve` once to create it, or pass \
             --credentials / WARRANT_CREDENTIALS)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a credentials file (expected {{\"url\",\"issuer\",\"client_id\",\"client_secret\"}})",
            path.display()
        )
    })
}

/// The public URL of the server, from the system tenant's issuer (`{public_url}/t/system`).
pub fn public_url_from_issuer(issuer: &str) -> String {
    let issuer = issuer.trim_end_matches('/');
    issuer
        .strip_suffix("/t/system")
        .unwrap_or(issuer)
        .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file(url: &str) -> CredentialsFile {
        CredentialsFile {
            url: url.into(),
            issuer: "http://127.0.0.1:9/t/system".into(),
            client_id: "sa_x".into(),
            client_secret: "s".into(),
        }
    }

    #[test]
    fn explicit_url_beats_the_file_which_beats_the_default() {
        let f = file("http://from-file:1/");
        assert_eq!(
            resolve_url(Some("http://explicit:2"), Some(&f)),
            "http://explicit:2"
        );
        assert_eq!(resolve_url(None, Some(&f)), "http://from-file:1");
        assert_eq!(resolve_url(None, None), DEFAULT_URL);
        assert_eq!(resolve_url(Some(""), Some(&f)), "http://from-file:1");
        assert_eq!(resolve_url(None, Some(&file(""))), DEFAULT_URL);
    }

    #[test]
    fn public_url_drops_the_system_tenant_path() {
        assert_eq!(
            public_url_from_issuer("https://id.example.com/t/system"),
            "https://id.example.com"
        );
        assert_eq!(
            public_url_from_issuer("https://id.example.com/prefix/t/system/"),
            "https://id.example.com/prefix"
        );
    }

    #[test]
    fn credentials_file_parses_and_reports_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds.json");
        std::fs::write(
            &path,
            r#"{"url":"http://a","issuer":"http://a/t/system","client_id":"sa_1","client_secret":"x"}"#,
        )
        .unwrap();
        let c = load_credentials(&path).unwrap();
        assert_eq!(c.client_id, "sa_1");
        let err = load_credentials(&dir.path().join("missing.json")).unwrap_err();
        assert!(format!("{err:#}").contains("warrant serve"));
    }
}
