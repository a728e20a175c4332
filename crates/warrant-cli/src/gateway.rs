//! `warrant gateway --config gateway.toml`: the verifying reverse proxy (docs/gateway.md,
//! every key in docs/gateway.example.toml). Diagnostics go to stderr as JSON (`WARRANT_LOG`
//! filters them); the access log, one JSON line per request, goes to stdout.

use std::path::PathBuf;

/// Flags of `warrant gateway`.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// The gateway's TOML configuration file (re-read on SIGHUP).
    #[arg(long)]
    pub config: PathBuf,
}

pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    // JSON diagnostics on stderr, as `warrant serve` writes them (stdout is the access log).
    crate::serve::init_logging();
    warrant_gateway::run(args.config).await?;
    Ok(())
}
