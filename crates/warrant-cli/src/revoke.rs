//! `warrant revoke`: revoke one token by its `jti`, or every token an account holds (a
//! `not_before` watermark on its id), through `POST /admin/v1/tenants/{t}/revocations`.
//! Verifiers following the revocation feed receive the entry within a second.

use anyhow::{Context as _, Result, bail};
use clap::{ArgGroup, Args};
use serde::Serialize;
use warrant_proto::admin::{CreateRevocation, Revocation, ServiceAccount};
use warrant_proto::oauth::RevocationFeedEntry;

use crate::client::Admin;
use crate::globals::{GlobalArgs, Output};
use crate::output;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["jti", "account"])))]
pub struct RevokeArgs {
    #[arg(long)]
    tenant: String,
    /// Revoke the one token with this `jti` (its `jti` claim; `warrant token inspect` shows it).
    #[arg(long)]
    jti: Option<String>,
    /// The token's `exp`, as RFC 3339 or Unix seconds, so the entry is kept no longer than
    /// needed [default: now + the server's max_token_lifetime].
    #[arg(long, conflicts_with = "account", value_parser = parse_exp)]
    exp: Option<i64>,
    /// Revoke every token the account (name or id) holds now, as `sub`, `client_id` or in a
    /// delegation chain; tokens it gets from the next second on are valid.
    #[arg(long)]
    account: Option<String>,
}

/// `2026-01-31T12:00:00Z` or `1795000600` (a JWT NumericDate).
fn parse_exp(text: &str) -> Result<i64, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| format!("{text:?} is too large for a time"));
    }
    warrant_core::Timestamp::parse_rfc3339(text)
        .map(|t| t.secs())
        .ok_or_else(|| {
            format!(
                "{text:?} is not a time (write RFC 3339, e.g. 2026-01-31T12:00:00Z, or Unix seconds)"
            )
        })
}

/// What `--output json` prints: the stored entry, where it is, and the account it was for.
#[derive(Serialize)]
struct Printed<'a> {
    tenant: &'a str,
    #[serde(flatten)]
    revocation: &'a Revocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
}

pub async fn run(args: RevokeArgs, global: &GlobalArgs) -> Result<()> {
    let out = global.plain_output()?;
    let admin = Admin::connect(global).await?;
    let tenant = args.tenant.as_str();
    let (body, account) = match (args.jti, args.account) {
        (Some(jti), None) => (CreateRevocation::Jti { jti, exp: args.exp }, None),
        (None, Some(account)) => {
            // Names resolve to ids here: the watermark is on the id, which is the tokens' `sub`.
            let sa: ServiceAccount = admin
                .get(&["tenants", tenant, "service-accounts", &account])
                .await
                .with_context(|| format!("cannot find account {account} in tenant {tenant}"))?;
            (
                CreateRevocation::Subject {
                    sub: sa.id.clone(),
                    not_before: None,
                },
                Some(sa),
            )
        }
        _ => bail!("give either --jti or --account"),
    };
    let revocation: Revocation = admin
        .post(&["tenants", tenant, "revocations"], &body)
        .await?;
    if out == Output::Json {
        return output::json(&Printed {
            tenant,
            revocation: &revocation,
            account: account.as_ref().map(|a| a.name.as_str()),
        });
    }
    match &revocation.entry {
        RevocationFeedEntry::Jti { jti, exp } => output::line(&format!(
            "revoked token {jti} in tenant {tenant} (kept in the revocation feed until it expires at {})",
            output::unix_to_rfc3339(*exp)
        )),
        RevocationFeedEntry::Subject { sub, not_before } => {
            let who = match &account {
                Some(a) => format!("{} ({sub})", a.name),
                None => sub.clone(),
            };
            output::line(&format!(
                "revoked every token of {who} in tenant {tenant} issued up to {}",
                output::unix_to_rfc3339(*not_before)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_rfc3339_or_unix_seconds() {
        assert_eq!(parse_exp("1795000600"), Ok(1_795_000_600));
        assert_eq!(parse_exp("1970-01-01T00:01:40Z"), Ok(100));
        for bad in ["", "soon", "-5", "1.5", "99999999999999999999"] {
            assert!(parse_exp(bad).is_err(), "{bad}");
        }
    }
}
