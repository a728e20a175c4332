//! Printing: JSON for scripts, aligned lines and tables for people. Times from the server are
//! RFC 3339 strings and are printed as they come.

use std::io::Write as _;

use anyhow::{Context as _, Result};
use serde::Serialize;

/// Prints `value` as pretty JSON on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot serialise the output")?;
    line(&text)
}

/// Prints one line on stdout. A closed pipe (`warrant … | head`) is not an error worth a panic.
pub fn line(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// Prints `label: value` lines with the values aligned.
pub fn fields(rows: &[(&str, String)]) -> Result<()> {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    for (k, v) in rows {
        line(&format!("{:width$} {v}", format!("{k}:")))?;
    }
    Ok(())
}

/// Prints a table with a header row; columns are padded to their widest cell. An empty table
/// prints `empty_note` instead, so that "nothing" is visibly an answer.
pub fn table(headers: &[&str], rows: &[Vec<String>], empty_note: &str) -> Result<()> {
    if rows.is_empty() {
        return line(empty_note);
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let render = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    (*c).to_string()
                } else {
                    let w = widths.get(i).copied().unwrap_or(0);
                    format!("{c:w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    line(&render(headers.to_vec()))?;
    for row in rows {
        line(&render(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// `value` or `-` when absent, for table cells.
pub fn or_dash(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.is_empty() => v.to_string(),
        _ => "-".into(),
    }
}

/// Seconds since the Unix epoch as an RFC 3339 UTC time (`2025-01-31T12:00:00Z`).
pub fn unix_to_rfc3339(secs: i64) -> String {
    warrant_core::Timestamp::from_secs(secs).to_rfc3339()
}
