//! `audit` tests: query, verify and export against a real `warrant serve`, then offline
//! verification of the export — intact, with one record body edited, and cut short.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use serde_json::Value;

use super::{Server, describe, mode, request_token, run, stderr, stdout, terminate, warrant};

/// Copies a stopped server's data dir (database, master key, credentials) to a new one.
fn copy_data(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
        }
    }
    to
}

fn create_account(server: &Server, name: &str) -> Value {
    super::create_sa(|args| server.admin_json(args), name)
}

/// `warrant audit verify --file` with no server and no credentials anywhere.
fn verify_offline(file: &Path, json: bool) -> std::process::Output {
    let mut cmd = warrant();
    cmd.args(["audit", "verify", "--file"])
        .arg(file)
        .args(["--credentials", "/nonexistent/admin-credentials.json"])
        .args(["--url", "http://127.0.0.1:1"]);
    if json {
        cmd.args(["--output", "json"]);
    }
    run(&mut cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_verify_export_and_verify_offline() {
    // A first server process writes records and signs them when it stops.
    let mut first = Server::start().await;
    let port: u16 = first.url.rsplit(':').next().unwrap().parse().unwrap();
    let created = create_account(&first, "auditee");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, body) = request_token(
        created["token_endpoint"].as_str().unwrap(),
        created["client_id"].as_str().unwrap(),
        created["secret"]["value"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(terminate(&mut first).success(), "{}", first.log());
    let data = copy_data(first.data.path());
    drop(first);
    // A second process: a new segment, whose records are not yet checkpointed.
    let server = Server::start_in(data, port).await;
    let later = create_account(&server, "later");
    let later_id = later["id"].as_str().unwrap().to_owned();

    // query: JSON, filters, text, paging
    let all = server.admin_json(&["audit", "query", "--tenant", "default", "--all"]);
    let all = all.as_array().unwrap();
    let created_records: Vec<&Value> = all
        .iter()
        .filter(|r| r["action"] == "account.create")
        .collect();
    assert_eq!(created_records.len(), 2, "{all:?}");
    assert_eq!(created_records[0]["subject"], id.as_str());
    assert_eq!(created_records[1]["subject"], later_id.as_str());
    assert_ne!(
        created_records[0]["segment"], created_records[1]["segment"],
        "each process writes its own segment"
    );
    let about = server.admin_json(&[
        "audit",
        "query",
        "--tenant",
        "default",
        "--subject",
        &later_id,
        "--action",
        "secret.",
    ]);
    assert_eq!(about.as_array().unwrap().len(), 1, "{about}");
    assert_eq!(about[0]["action"], "secret.create");
    let o = server.admin(&[
        "audit",
        "query",
        "--tenant",
        "default",
        "--action",
        "account.create",
    ]);
    let text = stdout(&o);
    assert!(text.starts_with("TIME"), "{text}");
    assert!(
        text.contains("account.create") && text.contains(&later_id),
        "{text}"
    );
    let o = server.admin(&["audit", "query", "--tenant", "default", "--limit", "1"]);
    assert_eq!(
        stdout(&o).lines().count(),
        2,
        "a header and one record: {}",
        describe(&o)
    );
    assert!(stderr(&o).contains("--all"), "{}", describe(&o));
    let paged = server.admin_json(&[
        "audit", "query", "--tenant", "default", "--limit", "1", "--all",
    ]);
    assert_eq!(paged.as_array().unwrap(), all);
    let o = server.admin_status(&[
        "audit",
        "query",
        "--tenant",
        "default",
        "--since",
        "yesterday",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let o = server.admin_status(&["audit", "query", "--tenant", "nope"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));

    // verify online
    let o = server.admin(&["audit", "verify", "--tenant", "default"]);
    let text = stdout(&o);
    assert!(
        text.contains("verifies") && text.contains("every MAC checked"),
        "{text}"
    );
    assert!(
        text.contains("unsigned tail: 2 records"),
        "later's two records: {text}"
    );
    let report = server.admin_json(&["audit", "verify", "--tenant", "default"]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["segments"], 2, "{report}");

    // export to a private file, and to stdout
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let o = server.admin(&[
        "audit",
        "export",
        "--tenant",
        "default",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(stdout(&o).contains("exported"), "{}", describe(&o));
    assert_eq!(mode(&file), 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "header");
    assert_eq!(lines[0]["tenant"], "default");
    assert_eq!(lines.last().unwrap()["type"], "end");
    let o = server.admin(&["audit", "export", "--tenant", "default"]);
    assert_eq!(stdout(&o), text, "stdout gets the same lines");

    // verify offline: no server, no credentials
    drop(server);
    let o = verify_offline(&file, false);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let out = stdout(&o);
    assert!(out.contains("verifies"), "{out}");
    assert!(out.contains("unsigned tail: 2 records"), "{out}");
    assert!(
        out.contains("/t/default/jwks"),
        "says which keys to compare: {out}"
    );

    // one character of a signed record's body edited: named by segment and seq
    let (at, edited) = lines
        .iter()
        .enumerate()
        .find(|(_, l)| {
            l["type"] == "record" && l["subject"] == id.as_str() && l["action"] == "account.create"
        })
        .map(|(i, l)| (i, l.clone()))
        .unwrap();
    let mut forged = edited.clone();
    forged["body"] = Value::from(
        edited["body"]
            .as_str()
            .unwrap()
            .replacen("auditee", "auditex", 1),
    );
    assert_ne!(forged, edited);
    let mut texts: Vec<String> = text.lines().map(str::to_owned).collect();
    texts[at] = forged.to_string();
    let bad = dir.path().join("edited.jsonl");
    std::fs::write(&bad, texts.join("\n") + "\n").unwrap();
    let o = verify_offline(&bad, false);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let want = format!(
        "segment {}, record {}",
        edited["segment"].as_str().unwrap(),
        edited["seq"]
    );
    assert!(
        stdout(&o).contains("does NOT verify") && stdout(&o).contains(&want),
        "{want}: {}",
        describe(&o)
    );
    let o = verify_offline(&bad, true);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_bad"]["seq"], edited["seq"]);
    assert_eq!(report["first_bad"]["id"], edited["id"]);
    assert_eq!(report["tenant"], "default");

    // an export cut short is refused, naming why
    let cut = dir.path().join("cut.jsonl");
    let keep = text.lines().count() - 1;
    let short: Vec<&str> = text.lines().take(keep).collect();
    std::fs::write(&cut, short.join("\n") + "\n").unwrap();
    let o = verify_offline(&cut, false);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(stderr(&o).contains("cut short"), "{}", describe(&o));
}
