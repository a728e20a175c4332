//! The revocation feed for verifiers (DESIGN.md, "Revocation that reaches verifiers"; the
//! format for verifier authors is docs/revocation-feed.md):
//!
//! - `GET {issuer}/revocations?after=CURSOR&limit=N` — one page, JSON; no `after` is a full
//!   snapshot of what is kept;
//! - `GET {issuer}/revocations/stream` — server-sent events from `Last-Event-ID` (or `after`,
//!   or the current head), one `revocation` event per entry, a `: ping` comment every 15 s.
//!
//! Both are authenticated by any enabled account of the tenant, with HTTP Basic
//! (`client_secret_basic`) or with its client certificate (RFC 8705, `?client_id=` names the
//! account); each account may hold [`crate::Limits::feed_streams_per_account`]
//! streams (429 beyond). Errors are RFC 9457 problems: a cursor older than what was pruned, or
//! from another deployment, is 410 and the verifier takes a fresh snapshot.
//!
//! A stream is a task that reads the store's feed after its cursor whenever this replica
//! applies new revocations (`Warrant::revocation_updates`, which also fires for revocations
//! other replicas announce) and writes events into a bounded channel that the response body
//! drains. It ends when the client goes away (the body, and with it the channel, is dropped),
//! when the store cannot be read (the verifier reconnects, perhaps to another replica), or at
//! shutdown ([`crate::AppState::close_streams`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use hyper::body::Frame;
use tokio::sync::{mpsc, watch};
use warrant_core::revocation::{
    FeedError, FeedPage, MAX_FEED_PAGE, RevocationEntry, RevocationKind,
};
use warrant_core::{ClientEntry, TenantKeys, TenantName, Warrant};
use warrant_proto::oauth::{RevocationFeedEntry, RevocationFeedPage};

use warrant_core::client_auth::ClientAuth;
use warrant_core::grants::{SecretCredentials, TokenError};
use warrant_core::model::AuthMethod;

use super::client_auth::failed_authentication;
use super::form::parse_basic;
use crate::AppState;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::tls::presented_certificate;

/// Entries per page when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;
/// How often an idle stream sends a `: ping` comment.
pub const PING_INTERVAL: Duration = Duration::from_secs(15);
/// `Retry-After` when an account already holds its share of streams.
const STREAM_RETRY_AFTER: u64 = 5;
/// Events buffered for a slow reader before the stream waits for it.
const STREAM_BUFFER: usize = 64;
/// The challenge of a refused feed request.
const BASIC_CHALLENGE: &str = r#"Basic realm="warrant", charset="UTF-8""#;

/// A feed entry as it crosses the wire.
pub(crate) fn wire_entry(kind: &RevocationKind) -> RevocationFeedEntry {
    match kind {
        RevocationKind::Jti { jti, exp } => RevocationFeedEntry::Jti {
            jti: jti.clone(),
            exp: *exp,
        },
        RevocationKind::Subject { sub, not_before } => RevocationFeedEntry::Subject {
            sub: sub.clone(),
            not_before: *not_before,
        },
    }
}

/// A cursor as verifiers send it: decimal digits (empty means none). Anything else is `Err`.
pub(crate) fn parse_cursor(text: &str) -> Result<Option<i64>, ()> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    text.parse().map(Some).map_err(|_| ())
}

/// A refused feed request: an RFC 9457 problem, with `Retry-After` for 429.
struct Refusal {
    problem: ApiError,
    retry_after: Option<u64>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut resp = self.problem.into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

fn problem(status: StatusCode, detail: impl Into<String>) -> Refusal {
    Refusal {
        problem: ApiError::new(status, detail),
        retry_after: None,
    }
}

fn too_many(retry_after: u64, detail: &str) -> Refusal {
    Refusal {
        retry_after: Some(retry_after),
        ..problem(StatusCode::TOO_MANY_REQUESTS, detail)
    }
}

fn unauthorized() -> Refusal {
    let mut r = problem(
        StatusCode::UNAUTHORIZED,
        "the revocation feed needs HTTP Basic credentials (client_secret_basic) of an enabled account of this tenant, or its client certificate with ?client_id=",
    );
    r.problem.challenge = Some(BASIC_CHALLENGE);
    r
}

fn feed_error(tenant: &TenantName, e: FeedError) -> Refusal {
    match e {
        FeedError::Gone => problem(
            StatusCode::GONE,
            "the cursor is older than the oldest revocation kept (or comes from another deployment): take a fresh snapshot with GET {issuer}/revocations without `after`, then resume from its next_cursor",
        ),
        other => {
            tracing::error!(tenant = %tenant, error = %other, "the revocation feed could not be read");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the revocation feed cannot be read right now; retry",
            )
        }
    }
}

/// `?after=&limit=`: a malformed cursor or limit is 400; a repeated one too; anything else in
/// the query is ignored.
struct FeedQuery {
    after: Option<i64>,
    limit: u32,
}

fn feed_query(parts: &Parts) -> Result<FeedQuery, Refusal> {
    let mut after = None;
    let mut limit = None;
    let bad = |what: &str| problem(StatusCode::BAD_REQUEST, what.to_owned());
    for (k, v) in form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "after" => {
                if after.is_some() {
                    return Err(bad("after is repeated"));
                }
                after = Some(parse_cursor(&v).map_err(|()| {
                    bad("after must be a cursor (decimal digits) from a previous response")
                })?);
            }
            "limit" => {
                if limit.is_some() {
                    return Err(bad("limit is repeated"));
                }
                let n = v
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| bad("limit must be a whole number from 1 to 1000"))?;
                limit = Some(n.clamp(1, MAX_FEED_PAGE));
            }
            _ => {}
        }
    }
    Ok(FeedQuery {
        after: after.flatten(),
        limit: limit.unwrap_or(DEFAULT_LIMIT),
    })
}

/// What both feed endpoints check first: per-address rate limit, tenant, then an enabled
/// account of the tenant — by HTTP Basic credentials (`client_secret_basic`), or by the
/// connection's client certificate (RFC 8705 `tls_client_auth` /
/// `self_signed_tls_client_auth`) for the account named by the `client_id` query parameter.
async fn admit(
    s: &AppState,
    tenant: &str,
    parts: &Parts,
) -> Result<(Arc<TenantKeys>, Arc<ClientEntry>), Refusal> {
    let ip = crate::client_addr::client_ip(parts, &s.trusted_proxies);
    if let Err(retry) = s.limits.per_address.check(&ip, s.warrant.now()) {
        return Err(too_many(retry.0, "too many requests; retry later"));
    }
    let keys = super::tenant_keys(s, tenant)
        .map_err(|_| problem(StatusCode::NOT_FOUND, "no such tenant"))?;
    let now = s.warrant.now();
    let refused = |client_id: &str, why| match failed_authentication(
        s,
        keys.tenant.as_str(),
        client_id,
        why,
        now,
    ) {
        Err(retry) => too_many(retry, "too many failed authentications; retry later"),
        Ok(()) => unauthorized(),
    };
    let Some(header) = parts.headers.get(header::AUTHORIZATION) else {
        let client_id = query_client_id(parts)?;
        let certificate = presented_certificate(parts, s).ok_or_else(unauthorized)?;
        let auth = ClientAuth::Certificate {
            client_id: &client_id,
            certificate: &certificate,
        };
        let client = s
            .warrant
            .authenticate_client(&keys.tenant, &keys.issuer, &auth, now)
            .await
            .map_err(|e| match e {
                TokenError::InvalidClient(why) => refused(&client_id, why),
                _ => problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "client authentication is not available right now; retry later",
                ),
            })?
            .client;
        return Ok((keys, client));
    };
    let (client_id, secret) = parse_basic(header.as_bytes()).map_err(|()| unauthorized())?;
    let creds = SecretCredentials {
        method: AuthMethod::ClientSecretBasic,
        client_id: &client_id,
        secret: &secret,
    };
    let client = s
        .warrant
        .authenticate_secret(&keys.tenant, creds, now)
        .map_err(|why| refused(&client_id, why))?;
    Ok((keys, client))
}

/// The one `client_id` query parameter a certificate-authenticated reader names itself with.
fn query_client_id(parts: &Parts) -> Result<String, Refusal> {
    let mut ids = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "client_id")
        .map(|(_, v)| v.into_owned());
    match (ids.next(), ids.next()) {
        (Some(id), None) if !id.is_empty() => Ok(id),
        (None, _) => Err(unauthorized()),
        _ => Err(problem(
            StatusCode::BAD_REQUEST,
            "client_id must be given once",
        )),
    }
}

/// `GET {issuer}/revocations?after=CURSOR&limit=N`.
pub async fn feed(State(s): State<AppState>, Path(tenant): Path<String>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    page(&s, &tenant, &parts)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn page(s: &AppState, tenant: &str, parts: &Parts) -> Result<Response, Refusal> {
    let (keys, _client) = admit(s, tenant, parts).await?;
    let q = feed_query(parts)?;
    let page = s
        .warrant
        .revocation_feed(&keys.tenant, q.after, q.limit)
        .await
        .map_err(|e| feed_error(&keys.tenant, e))?;
    let body = RevocationFeedPage {
        entries: page.entries.iter().map(|e| wire_entry(&e.kind)).collect(),
        next_cursor: page.next_cursor.to_string(),
    };
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `GET {issuer}/revocations/stream` (server-sent events).
pub async fn stream(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
    req: Request,
) -> Response {
    let (parts, _) = req.into_parts();
    open_stream(&s, &tenant, &parts)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn open_stream(s: &AppState, tenant: &str, parts: &Parts) -> Result<Response, Refusal> {
    let (keys, client) = admit(s, tenant, parts).await?;
    let q = feed_query(parts)?;
    // Last-Event-ID (what an EventSource sends when it reconnects) beats `after`.
    let start = match parts.headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| parse_cursor(v).ok())
            .ok_or_else(|| {
                problem(
                    StatusCode::BAD_REQUEST,
                    "Last-Event-ID must be the id of an event of this stream (decimal digits)",
                )
            })?
            .or(q.after),
        None => q.after,
    };
    let slot = s
        .feed_streams
        .acquire(
            client.account.id.as_str(),
            s.limits.feed_streams_per_account,
            &s.metrics,
        )
        .ok_or_else(|| {
            too_many(
                STREAM_RETRY_AFTER,
                "this account already holds as many revocation feed streams as it may; close one first",
            )
        })?;
    // Subscribe before the first read, so a revocation applied in between wakes the stream.
    let updates = s.warrant.revocation_updates();
    let local = *updates.borrow();
    let first = match start {
        Some(after) => s
            .warrant
            .revocation_feed(&keys.tenant, Some(after), MAX_FEED_PAGE)
            .await
            .map_err(|e| feed_error(&keys.tenant, e))?,
        None => current_head(&s.warrant, &keys.tenant, local)
            .await
            .map_err(|e| feed_error(&keys.tenant, e))?,
    };
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(run_stream(
        s.warrant.clone(),
        keys.tenant.clone(),
        first,
        tx,
        s.feed_streams.closed.subscribe(),
        updates,
    ));
    tracing::debug!(tenant = %keys.tenant, client_id = %client.account.id, after = ?start, "revocation feed stream opened");
    let body = Body::new(EventBody { rx, _slot: slot });
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Reverse proxies (nginx) must pass events on as they come.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

/// Where a stream without a start point begins: new events only. This replica's own cursor
/// (everything after it is newer than anything applied here) unless the store no longer
/// accepts it (everything of the tenant was pruned since), then the store's head, found by
/// reading the snapshot to its end.
async fn current_head(
    warrant: &Warrant,
    tenant: &TenantName,
    local: i64,
) -> Result<FeedPage, FeedError> {
    match warrant
        .revocation_feed(tenant, Some(local), MAX_FEED_PAGE)
        .await
    {
        Err(FeedError::Gone) => {}
        other => return other,
    }
    let mut after = None;
    loop {
        let p = warrant
            .revocation_feed(tenant, after, MAX_FEED_PAGE)
            .await?;
        if (p.entries.len() as u32) < MAX_FEED_PAGE {
            return Ok(FeedPage {
                entries: Vec::new(),
                next_cursor: p.next_cursor,
            });
        }
        after = Some(p.next_cursor);
    }
}

/// One SSE event per entry (its cursor as the id), per the HTML standard's event stream
/// format; the JSON has no line breaks.
fn event(e: &RevocationEntry) -> Bytes {
    let data = serde_json::to_string(&wire_entry(&e.kind)).unwrap_or_default();
    Bytes::from(format!(
        "id: {}\nevent: revocation\ndata: {data}\n\n",
        e.cursor
    ))
}

async fn run_stream(
    warrant: Arc<Warrant>,
    tenant: TenantName,
    first: FeedPage,
    tx: mpsc::Sender<Bytes>,
    mut closed: watch::Receiver<bool>,
    mut updates: watch::Receiver<i64>,
) {
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let mut page = first;
    loop {
        // Deliver this page, and the following ones while pages come back full.
        loop {
            for e in &page.entries {
                if !send(&tx, event(e), &mut closed).await {
                    return;
                }
            }
            if (page.entries.len() as u32) < MAX_FEED_PAGE {
                break;
            }
            page = match read(&warrant, &tenant, page.next_cursor).await {
                Some(p) => p,
                None => return,
            };
        }
        let cursor = page.next_cursor;
        // Wait for news, a ping, the client leaving, or shutdown.
        loop {
            let news = tokio::select! {
                () = tx.closed() => return,
                _ = closed.wait_for(|c| *c) => return,
                changed = updates.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    true
                }
                _ = ping.tick() => false,
            };
            if news {
                break;
            }
            if !send(&tx, Bytes::from_static(b": ping\n\n"), &mut closed).await {
                return;
            }
        }
        page = match read(&warrant, &tenant, cursor).await {
            Some(p) => p,
            None => return,
        };
    }
}

/// The page after `cursor`, or `None` to end the stream: the verifier reconnects with
/// `Last-Event-ID` and gets 410 (take a snapshot) or 503 (retry) as its own answer.
async fn read(warrant: &Warrant, tenant: &TenantName, cursor: i64) -> Option<FeedPage> {
    match warrant
        .revocation_feed(tenant, Some(cursor), MAX_FEED_PAGE)
        .await
    {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(tenant = %tenant, cursor, error = %e, "ending a revocation feed stream: the feed could not be read");
            None
        }
    }
}

/// Writes to the body unless the client is gone or the server is stopping.
async fn send(tx: &mpsc::Sender<Bytes>, bytes: Bytes, closed: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        sent = tx.send(bytes) => sent.is_ok(),
        _ = closed.wait_for(|c| *c) => false,
    }
}

/// The response body of a stream: what the task writes, until it stops. It holds the
/// account's stream slot, so the slot is released as soon as the response is dropped.
struct EventBody {
    rx: mpsc::Receiver<Bytes>,
    _slot: StreamSlot,
}

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .rx
            .poll_recv(cx)
            .map(|next| next.map(|b| Ok(Frame::data(b))))
    }
}

/// Open streams per account, and the shutdown signal every stream watches.
#[derive(Debug)]
pub(crate) struct FeedStreams {
    open: Mutex<HashMap<String, usize>>,
    closed: watch::Sender<bool>,
}

impl Default for FeedStreams {
    fn default() -> Self {
        Self {
            open: Mutex::new(HashMap::new()),
            closed: watch::Sender::new(false),
        }
    }
}

impl FeedStreams {
    /// Ends every stream, and every stream opened later, at its next step.
    pub(crate) fn close(&self) {
        self.closed.send_replace(true);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for one more stream of `account`, unless it holds `cap` already.
    fn acquire(
        self: &Arc<Self>,
        account: &str,
        cap: usize,
        metrics: &Arc<Metrics>,
    ) -> Option<StreamSlot> {
        if cap == 0 {
            // No entry for an account that may hold none: the map only counts open streams.
            return None;
        }
        let mut open = self.lock();
        let n = open.entry(account.to_owned()).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        metrics.feed_stream_opened();
        Some(StreamSlot {
            streams: self.clone(),
            account: account.to_owned(),
            metrics: metrics.clone(),
        })
    }
}

/// One open stream; dropping it gives the slot back.
struct StreamSlot {
    streams: Arc<FeedStreams>,
    account: String,
    metrics: Arc<Metrics>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.lock();
        if let Some(n) = open.get_mut(&self.account) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.account);
            }
        }
        self.metrics.feed_stream_closed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_decimal_digits() {
        assert_eq!(parse_cursor(""), Ok(None));
        assert_eq!(parse_cursor("0"), Ok(Some(0)));
        assert_eq!(parse_cursor(" 42 "), Ok(Some(42)));
        for bad in ["-1", "+1", "1.5", "abc", "0x10", "9999999999999999999"] {
            assert_eq!(parse_cursor(bad), Err(()), "{bad}");
        }
    }

    #[test]
    fn stream_slots_are_capped_and_released() {
        let streams = Arc::new(FeedStreams::default());
        let metrics = Arc::new(Metrics::default());
        let a = streams.acquire("sa_a", 2, &metrics);
        let b = streams.acquire("sa_a", 2, &metrics);
        assert!(a.is_some() && b.is_some());
        assert!(streams.acquire("sa_a", 2, &metrics).is_none());
        assert!(
            streams.acquire("sa_b", 2, &metrics).is_some(),
            "per account"
        );
        drop(a);
        let c = streams.acquire("sa_a", 2, &metrics);
        assert!(c.is_some());
        drop((b, c));
        assert!(streams.lock().is_empty());
        assert!(
            metrics
                .render()
                .contains("warrant_revocation_feed_streams 0")
        );
    }

    #[test]
    fn events_carry_the_cursor_and_one_json_line() {
        let e = RevocationEntry {
            cursor: 17,
            tenant: TenantName::parse("t").unwrap(),
            kind: RevocationKind::Jti {
                jti: "j1".into(),
                exp: 100,
            },
            created_at: warrant_core::Timestamp::from_secs(0),
            prune_after: warrant_core::Timestamp::from_secs(0),
        };
        assert_eq!(
            &event(&e)[..],
            b"id: 17\nevent: revocation\ndata: {\"type\":\"jti\",\"jti\":\"j1\",\"exp\":100}\n\n"
        );
    }
}
