//! `warrant grant …`: which audiences an account may get tokens for, with which scopes.
//! `set` and `remove` read the list, change one entry and write it back (with `If-Match` when the
//! server sent an `ETag`, so a concurrent change is refused rather than lost).

use anyhow::{Result, bail};
use clap::Subcommand;
use warrant_proto::admin::Grant;

use crate::client::Admin;
use crate::globals::{GlobalArgs, Output};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum GrantCmd {
    /// List an account's grants.
    List {
        account: String,
        #[arg(long)]
        tenant: String,
    },
    /// Grant an audience with these scopes (replaces the scopes of an existing grant).
    Set {
        account: String,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        audience: String,
        /// Scope at the audience (repeatable; space-separated lists also work).
        #[arg(long)]
        scope: Vec<String>,
    },
    /// Remove the grant for an audience.
    Remove {
        account: String,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        audience: String,
    },
}

/// Flattens repeated `--scope` values, each possibly a space-separated list, dropping duplicates
/// and keeping the first-seen order.
pub fn split_scopes(raw: &[String]) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for s in raw.iter().flat_map(|r| r.split_whitespace()) {
        if !scopes.iter().any(|have| have == s) {
            scopes.push(s.to_string());
        }
    }
    scopes
}

/// Replaces the entry for `audience`, or appends one.
fn upsert(grants: &mut Vec<Grant>, audience: &str, scopes: Vec<String>) {
    match grants.iter_mut().find(|g| g.audience == audience) {
        Some(g) => g.scopes = scopes,
        None => grants.push(Grant {
            audience: audience.to_string(),
            scopes,
        }),
    }
}

pub async fn run(cmd: GrantCmd, global: &GlobalArgs) -> Result<()> {
    let out = global.plain_output()?;
    let admin = Admin::connect(global).await?;
    match cmd {
        GrantCmd::List { account, tenant } => {
            let grants: Vec<Grant> = admin
                .get(&["tenants", &tenant, "service-accounts", &account, "grants"])
                .await?;
            print_grants(&grants, &account, out)
        }
        GrantCmd::Set {
            account,
            tenant,
            audience,
            scope,
        } => {
            let path = ["tenants", &tenant, "service-accounts", &account, "grants"];
            let (mut grants, etag): (Vec<Grant>, _) = admin.get_with_etag(&path).await?;
            upsert(&mut grants, &audience, split_scopes(&scope));
            let grants: Vec<Grant> = admin.put(&path, &grants, etag.as_deref()).await?;
            print_grants(&grants, &account, out)
        }
        GrantCmd::Remove {
            account,
            tenant,
            audience,
        } => {
            let path = ["tenants", &tenant, "service-accounts", &account, "grants"];
            let (mut grants, etag): (Vec<Grant>, _) = admin.get_with_etag(&path).await?;
            let before = grants.len();
            grants.retain(|g| g.audience != audience);
            if grants.len() == before {
                bail!("{account} has no grant for audience {audience}");
            }
            let grants: Vec<Grant> = admin.put(&path, &grants, etag.as_deref()).await?;
            print_grants(&grants, &account, out)
        }
    }
}

fn print_grants(grants: &[Grant], account: &str, out: Output) -> Result<()> {
    if out == Output::Json {
        return output::json(grants);
    }
    let rows = grants
        .iter()
        .map(|g| {
            vec![
                g.audience.clone(),
                output::or_dash(Some(&g.scopes.join(" "))),
            ]
        })
        .collect::<Vec<_>>();
    output::table(
        &["AUDIENCE", "SCOPES"],
        &rows,
        &format!("{account} has no grants"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_split_on_spaces_and_deduplicate() {
        let raw = vec!["deploy:write".to_string(), "a b  deploy:write".to_string()];
        assert_eq!(split_scopes(&raw), ["deploy:write", "a", "b"]);
        assert!(split_scopes(&[]).is_empty());
    }

    #[test]
    fn upsert_replaces_or_appends() {
        let mut g = vec![Grant {
            audience: "a".into(),
            scopes: vec!["x".into()],
        }];
        upsert(&mut g, "a", vec!["y".into()]);
        upsert(&mut g, "b", vec![]);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].scopes, ["y"]);
        assert_eq!(g[1].audience, "b");
    }
}
