//! The `warrant` binary: the server (`serve`), the admin verbs over the admin API (`tenant`, `sa`,
//! `secret`, `grant`, `api`, `trust`, `key`, `revoke`), the workload verbs over the protocol
//! endpoints (`token`, `agent`), and the operator verbs beside the server's data (`migrate`,
//! `backup`, `import`, `master-key`).
//!
//! The admin verbs are thin: parse flags, get an admin token with the credentials file, make one
//! or two admin API calls, print. All HTTP is in `client`; all printing helpers in `output`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod agent;
mod api;
mod audit;
mod client;
mod config;
mod duration;
mod exchange;
mod gateway;
mod globals;
mod grant;
mod hsm;
mod inspect;
mod key;
mod master_key;
mod ops;
mod output;
mod revoke;
mod sa;
mod secret;
mod serve;
mod tenant;
mod token;
mod trust;

#[derive(Debug, Parser)]
#[command(
    name = "warrant",
    version,
    about = "Warrant: an OpenID Connect / OAuth 2.0 identity provider for machines"
)]
struct Cli {
    #[command(flatten)]
    global: globals::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Run the verifying reverse proxy (see docs/gateway.md).
    Gateway(gateway::GatewayArgs),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(tenant::TenantCmd),
    /// Manage service accounts.
    #[command(subcommand, visible_alias = "service-account")]
    Sa(sa::SaCmd),
    /// Manage an account's client secrets.
    #[command(subcommand)]
    Secret(secret::SecretCmd),
    /// Manage an account's grants (audiences and scopes).
    #[command(subcommand)]
    Grant(grant::GrantCmd),
    /// Manage registered APIs (audiences, the scopes they define, their owners).
    #[command(subcommand)]
    Api(api::ApiCmd),
    /// Manage federation trusts (external issuers whose tokens may act as an account).
    #[command(subcommand)]
    Trust(trust::TrustCmd),
    /// Show a tenant's signing keys.
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// Query, verify and export a tenant's tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Revoke a token (by jti) or every token an account holds.
    Revoke(revoke::RevokeArgs),
    /// Get or inspect access tokens (workload side).
    #[command(subcommand)]
    Token(token::TokenCmd),
    /// Keep a fresh access token in a file for a workload.
    Agent(agent::AgentArgs),
    /// Show or apply the database schema migrations (operator, beside the server).
    #[command(subcommand)]
    Migrate(ops::MigrateCmd),
    /// Write an online, consistent copy of a SQLite deployment's database (operator).
    Backup(ops::BackupArgs),
    /// Copy a SQLite deployment into an empty PostgreSQL database (operator).
    Import(ops::ImportArgs),
    /// Rotate the master key, or generate one (operator, with the servers stopped).
    #[command(subcommand)]
    MasterKey(master_key::MasterKeyCmd),
}

/// mimalloc: the token path allocates many small, short-lived buffers (form, claims, token,
/// response); measured with warrant-bench, see docs/benchmark.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let global = cli.global;
    let done = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
    let result = match cli.command {
        Command::Serve(args) => done(serve::run(args).await),
        Command::Gateway(args) => done(gateway::run(args).await),
        Command::Tenant(cmd) => done(tenant::run(cmd, &global).await),
        Command::Sa(cmd) => done(sa::run(cmd, &global).await),
        Command::Secret(cmd) => done(secret::run(cmd, &global).await),
        Command::Grant(cmd) => done(grant::run(cmd, &global).await),
        Command::Api(cmd) => done(api::run(cmd, &global).await),
        Command::Trust(cmd) => trust::run(cmd, &global).await,
        Command::Key(cmd) => done(key::run(cmd, &global).await),
        Command::Audit(cmd) => audit::run(cmd, &global).await,
        Command::Revoke(args) => done(revoke::run(args, &global).await),
        Command::Token(cmd) => token::run(cmd, &global).await,
        Command::Agent(args) => done(agent::run(args).await),
        Command::Migrate(cmd) => done(ops::migrate(cmd).await),
        Command::Backup(args) => done(ops::backup(args).await),
        Command::Import(args) => done(ops::import(args).await),
        Command::MasterKey(cmd) => done(master_key::run(cmd).await),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
