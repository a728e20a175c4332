//! `GET /admin/v1/tenants/{t}/audit` (query), `…/audit/verify` (online verification) and
//! `…/audit/export` (JSON lines, streamed a page of records at a time). [`report`] is public:
//! `warrant audit verify --file` prints an offline report in the same shape.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use hyper::body::Frame;
use serde_json::{Map, Value};
use warrant_core::Timestamp;
use warrant_core::audit::verify::VerifyReport;
use warrant_core::audit::{AuditQuery, Outcome, StoredAuditRecord};
use warrant_proto::admin::{AuditBadRecord, AuditRecord, AuditVerifyReport, Page};

use super::extract::{Admin, PageQuery, decode_cursor, encode_cursor, tenant};
use crate::AppState;
use crate::error::ApiError;

/// Chunks of an export waiting to be sent; the reader stays at most this far ahead.
const EXPORT_BUFFER: usize = 4;

pub(crate) async fn query(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path(t): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (query, limit) = parse_query(tenant(&t)?, raw.as_deref().unwrap_or(""))?;
    let records = s.warrant.query_audit(&p, query).await?;
    let next_cursor = match records.last() {
        Some(last) if records.len() as u32 >= limit => Some(encode_cursor(&last.id.to_string())),
        _ => None,
    };
    Ok(Json(Page {
        items: records.iter().map(record_view).collect(),
        next_cursor,
    })
    .into_response())
}

pub(crate) async fn verify(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path(t): Path<String>,
) -> Result<Response, ApiError> {
    let verified = s.warrant.verify_audit(&p, &tenant(&t)?).await?;
    Ok(Json(report(&verified)).into_response())
}

pub(crate) async fn export(
    State(s): State<AppState>,
    Admin(p): Admin,
    Path(t): Path<String>,
) -> Result<Response, ApiError> {
    let t = tenant(&t)?;
    let mut export = s.warrant.export_audit(&p, &t).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(EXPORT_BUFFER);
    tokio::spawn(async move {
        loop {
            let chunk = match export.next_lines().await {
                Ok(Some(lines)) => {
                    let mut text = String::new();
                    for line in lines {
                        text.push_str(&line);
                        text.push('\n');
                    }
                    Ok(Bytes::from(text))
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(tenant = %t, error = %e, "audit export failed midway");
                    Err(ExportAborted)
                }
            };
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                return; // the client went away, or the export was aborted
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::new(ExportBody(rx)),
    )
        .into_response())
}

/// The export's body: chunks as the export task reads them. An error aborts the response (the
/// client sees a body cut short, never a complete-looking export).
struct ExportBody(tokio::sync::mpsc::Receiver<Result<Bytes, ExportAborted>>);

impl hyper::body::Body for ExportBody {
    type Data = Bytes;
    type Error = ExportAborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ExportAborted>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| c.map(Frame::data)))
    }
}

#[derive(Debug)]
struct ExportAborted;

impl std::fmt::Display for ExportAborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the audit export failed; see the server log")
    }
}

impl std::error::Error for ExportAborted {}

/// `subject`, `action`, `outcome`, `since`, `until`, `cursor`, `limit`; anything else, a repeated
/// parameter or a bad value is a 400.
fn parse_query(tenant: warrant_core::TenantName, raw: &str) -> Result<(AuditQuery, u32), ApiError> {
    let mut q = AuditQuery {
        tenant,
        subject: None,
        action: None,
        outcome: None,
        since: None,
        until: None,
        after: None,
        limit: 0,
    };
    let mut page = PageQuery::default();
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        if seen.iter().any(|s| *s == k) {
            return Err(ApiError::bad_request(format!("{k} is repeated")));
        }
        seen.push(k.to_string());
        let time = |v: &str| {
            Timestamp::parse_rfc3339(v)
                .ok_or_else(|| ApiError::bad_request(format!("{k} is not an RFC 3339 time")))
        };
        // Text filters are compared, never interpreted; a NUL or other control character
        // (which no record holds, and PostgreSQL cannot even compare) is bad input.
        let text = |v: std::borrow::Cow<'_, str>| {
            if v.len() > 1024 || v.chars().any(char::is_control) {
                Err(ApiError::bad_request(format!(
                    "{k} must be at most 1024 bytes without control characters"
                )))
            } else {
                Ok(Some(v.into_owned()))
            }
        };
        match &*k {
            "subject" => q.subject = text(v)?,
            "action" => q.action = text(v)?,
            "outcome" => {
                q.outcome =
                    Some(Outcome::parse(&v).ok_or_else(|| {
                        ApiError::bad_request("outcome must be success or failure")
                    })?)
            }
            "since" => q.since = Some(time(&v)?),
            "until" => q.until = Some(time(&v)?),
            "cursor" => page.cursor = Some(v.into_owned()),
            "limit" => {
                page.limit =
                    Some(v.parse().map_err(|_| {
                        ApiError::bad_request("limit must be a number from 1 to 1000")
                    })?)
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {:?} (subject, action, outcome, since, until, cursor, limit)",
                    other.chars().take(64).collect::<String>()
                )));
            }
        }
    }
    q.after = decode_cursor(&page.cursor)?
        .map(|c| c.parse::<i64>())
        .transpose()
        .map_err(|_| ApiError::bad_request("invalid cursor"))?;
    let limit = page.limit();
    q.limit = limit;
    Ok((q, limit))
}

/// The body's fields, with `id` and `hash`. A body that is not a JSON object (the log was
/// tampered with; verification says where) is shown as its text, under `body`.
fn record_view(r: &StoredAuditRecord) -> AuditRecord {
    let body = match serde_json::from_str::<Value>(&r.body) {
        Ok(Value::Object(map)) => map,
        _ => Map::from_iter([("body".to_owned(), Value::String(r.body.clone()))]),
    };
    AuditRecord {
        id: r.id,
        hash: r.hash.clone(),
        body,
    }
}

/// The wire form of a verification report.
pub fn report(r: &VerifyReport) -> AuditVerifyReport {
    AuditVerifyReport {
        ok: r.ok,
        segments: r.segments,
        records: r.records,
        checkpoints: r.checkpoints,
        first_bad: r.first_bad.as_ref().map(|b| AuditBadRecord {
            segment: b.segment.clone(),
            seq: b.seq,
            id: b.id,
            problem: b.problem.clone(),
        }),
        unsigned_tail: r.unsigned_tail,
        macs_checked: r.macs_checked,
    }
}
