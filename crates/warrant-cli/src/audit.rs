//! `warrant audit …`: query a tenant's audit log, verify it (online through the admin API, or
//! offline from an export file, with no server and no credentials), and export it as JSON
//! lines.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use serde::Serialize;
use serde_json::Value;
use warrant_core::audit::export::{self, OfflineReport};
use warrant_proto::admin::{AuditRecord, AuditVerifyReport, Page};
use warrant_server::admin::audit::report as wire_report;

use crate::client::{Admin, TIMEOUT};
use crate::globals::{GlobalArgs, Output};
use crate::output;

/// How long the server may take to verify a whole log.
const VERIFY_LIMIT: Duration = Duration::from_secs(30 * 60);
/// How long an export may take as a whole (each chunk must come within the request timeout).
const EXPORT_LIMIT: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Query a tenant's audit records, oldest first.
    Query {
        #[arg(long)]
        tenant: String,
        /// Only records about this subject (an account id, a tenant name…).
        #[arg(long)]
        subject: Option<String>,
        /// Only this action (`account.create`), or a prefix ending in `.` (`token.`).
        #[arg(long)]
        action: Option<String>,
        /// Only successes or only failures.
        #[arg(long, value_parser = ["success", "failure"])]
        outcome: Option<String>,
        /// Only records at or after this RFC 3339 time.
        #[arg(long, value_parser = rfc3339)]
        since: Option<String>,
        /// Only records before this RFC 3339 time.
        #[arg(long, value_parser = rfc3339)]
        until: Option<String>,
        /// Records per page (1–1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Every matching record, not just the first page.
        #[arg(long)]
        all: bool,
    },
    /// Verify a tenant's audit log online, or an export file offline. Exits with status 1 when
    /// the log does not verify.
    Verify {
        /// Verify this tenant's log through the admin API (MACs included).
        #[arg(long, required_unless_present = "file", conflicts_with = "file")]
        tenant: Option<String>,
        /// Verify an export (`-` for stdin) offline: no server, no credentials.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Export a tenant's audit log as JSON lines (for `audit verify --file` and archives).
    Export {
        #[arg(long)]
        tenant: String,
        /// Write to this file (created with mode 0600) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn rfc3339(s: &str) -> Result<String, String> {
    warrant_core::Timestamp::parse_rfc3339(s)
        .map(|_| s.to_owned())
        .ok_or_else(|| format!("{s:?} is not an RFC 3339 time (e.g. 2026-01-31T12:00:00Z)"))
}

pub async fn run(cmd: AuditCmd, global: &GlobalArgs) -> Result<ExitCode> {
    let out = global.plain_output()?;
    match cmd {
        AuditCmd::Query {
            tenant,
            subject,
            action,
            outcome,
            since,
            until,
            limit,
            all,
        } => {
            let limit = limit.to_string();
            let mut query = vec![("limit", limit.as_str())];
            for (k, v) in [
                ("subject", &subject),
                ("action", &action),
                ("outcome", &outcome),
                ("since", &since),
                ("until", &until),
            ] {
                if let Some(v) = v {
                    query.push((k, v.as_str()));
                }
            }
            let admin = Admin::connect(global).await?;
            let path = ["tenants", tenant.as_str(), "audit"];
            let (records, more) = if all {
                (admin.list_with::<AuditRecord>(&path, &query).await?, false)
            } else {
                let page: Page<AuditRecord> = admin.page(&path, &query).await?;
                (page.items, page.next_cursor.is_some())
            };
            if more {
                eprintln!("(more records match: use --all, or a narrower filter)");
            }
            print_records(&tenant, &records, out)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Verify {
            file: Some(file), ..
        } => {
            let offline = verify_file(&file)?;
            print_report(
                &offline.tenant,
                &wire_report(&offline.report),
                Some(&offline),
                out,
            )
        }
        AuditCmd::Verify { tenant, .. } => {
            let Some(tenant) = tenant else {
                bail!("give --tenant (online) or --file (offline)");
            };
            let admin = Admin::connect(global).await?;
            let report: AuditVerifyReport = admin
                .get_slow(&["tenants", &tenant, "audit", "verify"], VERIFY_LIMIT)
                .await?;
            print_report(&tenant, &report, None, out)
        }
        AuditCmd::Export { tenant, out: file } => {
            let admin = Admin::connect(global).await?;
            let response = admin
                .stream(&["tenants", &tenant, "audit", "export"], EXPORT_LIMIT)
                .await?;
            let lines = match &file {
                Some(path) => export_to_file(response, path).await?,
                None => export_to(response, &mut std::io::stdout().lock()).await?,
            };
            if let Some(path) = &file {
                match out {
                    Output::Json => output::json(&serde_json::json!({
                        "tenant": tenant, "file": path, "lines": lines
                    }))?,
                    _ => output::line(&format!(
                        "exported the audit log of tenant {tenant} to {} ({lines} lines)",
                        path.display()
                    ))?,
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_records(tenant: &str, records: &[AuditRecord], out: Output) -> Result<()> {
    if out == Output::Json {
        return output::json(records);
    }
    let s = |r: &AuditRecord, k: &str| r.body.get(k).and_then(Value::as_str).map(str::to_owned);
    let rows = records
        .iter()
        .map(|r| {
            let note = s(r, "reason")
                .or_else(|| r.body.get("detail").map(Value::to_string))
                .or_else(|| s(r, "jti").map(|j| format!("jti {j}")));
            let count = r.body.get("count").and_then(Value::as_u64).unwrap_or(1);
            let action = s(r, "action").unwrap_or_default();
            vec![
                s(r, "time").unwrap_or_default(),
                if count > 1 {
                    format!("{action} ×{count}")
                } else {
                    action
                },
                s(r, "outcome").unwrap_or_default(),
                s(r, "actor").unwrap_or_default(),
                output::or_dash(s(r, "subject").as_deref()),
                output::or_dash(note.as_deref()),
            ]
        })
        .collect::<Vec<_>>();
    output::table(
        &["TIME", "ACTION", "OUTCOME", "ACTOR", "SUBJECT", "NOTE"],
        &rows,
        &format!("no audit records of tenant {tenant} match"),
    )
}

fn verify_file(file: &Path) -> Result<OfflineReport> {
    let verified = if file == Path::new("-") {
        export::verify_export(std::io::stdin().lock())
    } else {
        let f =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        export::verify_export(BufReader::new(f))
    };
    verified.with_context(|| format!("{} is not a complete audit export", file.display()))
}

/// What `--output json` prints for an offline verification: the report and what the export
/// says about itself.
#[derive(Serialize)]
struct OfflineJson<'a> {
    #[serde(flatten)]
    report: &'a AuditVerifyReport,
    tenant: &'a str,
    issuer: &'a str,
    exported_at: &'a str,
    kids: &'a [String],
}

fn print_report(
    tenant: &str,
    report: &AuditVerifyReport,
    offline: Option<&OfflineReport>,
    out: Output,
) -> Result<ExitCode> {
    let code = if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if out == Output::Json {
        match offline {
            Some(o) => output::json(&OfflineJson {
                report,
                tenant: &o.tenant,
                issuer: &o.issuer,
                exported_at: &o.exported_at,
                kids: &o.kids,
            })?,
            None => output::json(report)?,
        }
        return Ok(code);
    }
    let source = match offline {
        Some(o) => format!("the export of tenant {tenant} (made {})", o.exported_at),
        None => format!("the audit log of tenant {tenant}"),
    };
    match &report.first_bad {
        Some(bad) => {
            let id = bad.id.map(|i| format!(" (id {i})")).unwrap_or_default();
            output::line(&format!(
                "{source} does NOT verify: segment {}, record {}{id}: {}",
                bad.segment, bad.seq, bad.problem
            ))?;
            output::line(&format!(
                "({} before it verified)",
                plural(report.records, "record")
            ))?;
        }
        None => output::line(&format!(
            "{source} verifies: {} in {}, {}{}",
            plural(report.records, "record"),
            plural(report.segments, "segment"),
            plural(report.checkpoints, "checkpoint"),
            if report.macs_checked {
                ", every MAC checked"
            } else {
                ""
            }
        ))?,
    }
    let tail = match (report.unsigned_tail, report.macs_checked) {
        (0, _) => String::new(),
        (_, true) => " after their segment's last checkpoint (covered by their MACs)".into(),
        (_, false) => " after their segment's last checkpoint, only chain-checked: an export \
                       cannot vouch for them"
            .into(),
    };
    output::line(&format!(
        "unsigned tail: {}{tail}",
        plural(report.unsigned_tail, "record")
    ))?;
    if let Some(o) = offline {
        output::line(&format!(
            "checkpoints were checked with the export's own keys ({}): compare them with \
             {}/jwks",
            if o.kids.is_empty() {
                "none".to_owned()
            } else {
                o.kids.join(", ")
            },
            o.issuer
        ))?;
    }
    Ok(code)
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Streams the export into a new 0600 file; a failed export leaves no file behind.
async fn export_to_file(response: reqwest::Response, path: &Path) -> Result<u64> {
    let mut file = private_file(path)?;
    match export_to(response, &mut file).await {
        Ok(lines) => {
            file.sync_all()
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(lines)
        }
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(path);
            Err(e)
        }
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    // An existing file keeps its mode on open: narrow it too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    Ok(file)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> Result<std::fs::File> {
    std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))
}

/// Copies the export's body as it arrives; returns the number of lines. The export is complete
/// only if its last line is the `end` line (the server aborts the body on a failure).
async fn export_to(mut response: reqwest::Response, to: &mut impl std::io::Write) -> Result<u64> {
    let mut lines = 0u64;
    // The last complete line, and what came after it.
    let mut last = Vec::new();
    let mut pending = Vec::new();
    loop {
        let chunk = match tokio::time::timeout(TIMEOUT, response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => bail!("the export was cut short: {e}"),
            Err(_) => bail!(
                "the export was cut short: nothing arrived for {} s",
                TIMEOUT.as_secs()
            ),
        };
        match to.write_all(&chunk) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(lines),
            other => other.context("cannot write the export")?,
        }
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        match chunk.iter().rposition(|b| *b == b'\n') {
            Some(i) => {
                let before = &chunk[..i];
                match before.iter().rposition(|b| *b == b'\n') {
                    Some(j) => last = before[j + 1..].to_vec(),
                    None => {
                        pending.extend_from_slice(before);
                        last = std::mem::take(&mut pending);
                    }
                }
                pending = chunk[i + 1..].to_vec();
            }
            None => pending.extend_from_slice(&chunk),
        }
    }
    to.flush().context("cannot write the export")?;
    let end: Option<Value> = serde_json::from_slice(&last).ok();
    if !pending.is_empty() || end.as_ref().and_then(|v| v.get("type")) != Some(&Value::from("end"))
    {
        bail!("the export was cut short (it has no end line)");
    }
    Ok(lines)
}
