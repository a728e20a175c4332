//! Revocations from the issuer's feed (docs/revocation-feed.md): a snapshot, then the
//! server-sent-event stream resumed with `Last-Event-ID`, a fresh snapshot on `410`, and the
//! time of last contact so that a verifier refuses to trust stale state.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use warrant_proto::oauth::{RevocationFeedEntry, RevocationFeedPage};

use crate::clock::Clock;
use crate::fetch::without_url;
use crate::token::VerifiedToken;

/// How often revocations that can no longer match a live token are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Entries per snapshot page.
const PAGE: usize = 1000;
/// No byte for this long (the server pings every 15 s): the stream is dead; reconnect.
const STREAM_IDLE: Duration = Duration::from_secs(45);
/// How long an open stream may be silent and still count as current: the server's 15 s ping
/// interval and some slack. Past it, the stale clock runs even before the stream is given up.
pub(crate) const PING_GRACE: Duration = Duration::from_secs(20);
/// The largest snapshot page read, bytes (a full page of 1000 entries is about 100 KiB).
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Retry delays after a failure: doubling from the first to the last.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// The leeway a `jti` entry is kept past the token's `exp`.
const JTI_GRACE_SECS: i64 = 300;

/// The credentials the feed is read with: any enabled account of the tenant (it needs no
/// grants). `Debug` never shows the secret.
#[derive(Clone)]
pub struct FeedCredentials {
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for FeedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

impl FeedCredentials {
    /// `client_secret_basic` (RFC 6749 §2.3.1): each part form-urlencoded, then base64.
    fn basic(&self) -> String {
        use base64::Engine;
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", enc(&self.client_id), enc(&self.client_secret));
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

#[derive(Default)]
struct Sets {
    jtis: HashMap<String, i64>,
    watermarks: HashMap<String, i64>,
    cursor: Option<String>,
    /// Until when the verifier knows itself current: the last snapshot, or what the last stream
    /// vouched for.
    last_contact: Option<Instant>,
    /// While a stream is open: when its last byte arrived. An open stream that has not been
    /// silent for longer than [`PING_GRACE`] keeps the verifier current, whatever the gap since
    /// an entry (silence means no revocation).
    streaming: Option<Instant>,
}

impl Sets {
    /// See [`Revocations::since_contact`].
    fn since_contact(&self) -> Option<Duration> {
        match self.streaming {
            Some(last_byte) => Some(last_byte.elapsed().saturating_sub(PING_GRACE)),
            None => self.last_contact.map(|t| t.elapsed()),
        }
    }
}

/// What an issuer's feed says of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// The feed has not been current for too long: nothing can be said.
    Stale,
    Revoked,
    /// Current, and the token is not revoked.
    Current,
}

/// One issuer's revocations as the verifier knows them.
#[derive(Default)]
pub(crate) struct Revocations {
    sets: RwLock<Sets>,
}

impl Revocations {
    fn read<T>(&self, f: impl FnOnce(&Sets) -> T) -> T {
        match self.sets.read() {
            Ok(s) => f(&s),
            Err(p) => f(&p.into_inner()),
        }
    }

    fn write<T>(&self, f: impl FnOnce(&mut Sets) -> T) -> T {
        match self.sets.write() {
            Ok(mut s) => f(&mut s),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Under one read of the state: [`Standing::Stale`] if the verifier has not known itself
    /// current for longer than `stale_limit` (see [`Revocations::since_contact`]), else whether
    /// the token is revoked by its `jti`, by a watermark on any of its subjects, or by an `act`
    /// chain too deep to check.
    pub(crate) fn standing(&self, t: &VerifiedToken, stale_limit: Duration) -> Standing {
        self.read(|s| {
            if s.since_contact().is_none_or(|d| d > stale_limit) {
                Standing::Stale
            } else if t.act_too_deep
                || s.jtis.contains_key(&t.jti)
                || (!s.watermarks.is_empty()
                    && t.subjects()
                        .iter()
                        .any(|sub| s.watermarks.get(*sub).is_some_and(|&nb| t.iat <= nb)))
            {
                Standing::Revoked
            } else {
                Standing::Current
            }
        })
    }

    /// How long the verifier has not known itself current: on an open stream, the silence
    /// beyond [`PING_GRACE`]; else the time since the last snapshot or since what the last
    /// stream vouched for; `None` before the first snapshot.
    pub(crate) fn since_contact(&self) -> Option<Duration> {
        self.read(Sets::since_contact)
    }

    pub(crate) fn len(&self) -> (usize, usize) {
        self.read(|s| (s.jtis.len(), s.watermarks.len()))
    }

    /// A byte arrived on the open stream.
    fn touch(&self) {
        self.write(|s| s.streaming = Some(Instant::now()));
    }

    /// The stream ended, however (closed, failed, silent): it vouched for everything up to
    /// now, but not for longer than [`PING_GRACE`] after its last byte — a connection that
    /// stalled and was reset later does not buy a fresh stale limit.
    fn stream_ended(&self) {
        self.write(|s| {
            if let Some(last_byte) = s.streaming.take() {
                let now = Instant::now();
                s.last_contact = Some((last_byte + PING_GRACE).min(now));
            }
        });
    }

    fn apply(s: &mut Sets, entry: RevocationFeedEntry) {
        match entry {
            RevocationFeedEntry::Jti { jti, exp } => {
                let e = s.jtis.entry(jti).or_insert(exp);
                *e = (*e).max(exp);
            }
            RevocationFeedEntry::Subject { sub, not_before } => {
                let e = s.watermarks.entry(sub).or_insert(not_before);
                *e = (*e).max(not_before);
            }
        }
    }

    fn prune(&self, now: i64, max_lifetime: i64) {
        self.write(|s| {
            s.jtis
                .retain(|_, exp| exp.saturating_add(JTI_GRACE_SECS) >= now);
            s.watermarks.retain(|_, nb| {
                nb.saturating_add(max_lifetime)
                    .saturating_add(JTI_GRACE_SECS)
                    >= now
            });
        });
    }
}

/// Follows one issuer's feed until the task is aborted.
pub(crate) struct Follower {
    pub(crate) issuer: String,
    pub(crate) credentials: FeedCredentials,
    pub(crate) client: reqwest::Client,
    pub(crate) timeout: Duration,
    pub(crate) state: Arc<Revocations>,
    pub(crate) clock: Arc<dyn Clock>,
    /// An upper bound on the lifetime of any token accepted: watermarks older than this are
    /// forgotten.
    pub(crate) max_token_lifetime: i64,
}

enum StreamEnd {
    /// The cursor cannot be resumed: take a snapshot.
    Gone,
    /// Closed or failed: reconnect (after `Retry-After` when given).
    Retry(Option<Duration>),
}

impl Follower {
    pub(crate) async fn run(self) {
        let mut backoff = BACKOFF_MIN;
        let mut need_snapshot = true;
        loop {
            self.prune();
            if need_snapshot {
                match self.snapshot().await {
                    Ok(()) => {
                        need_snapshot = false;
                        backoff = BACKOFF_MIN;
                    }
                    Err(e) => {
                        tracing::warn!(issuer = %self.issuer, error = %e, "revocation snapshot failed");
                        sleep_backoff(&mut backoff, None).await;
                        continue;
                    }
                }
            }
            match self.stream().await {
                StreamEnd::Gone => need_snapshot = true,
                StreamEnd::Retry(after) => {
                    sleep_backoff(&mut backoff, after).await;
                }
            }
        }
    }

    fn prune(&self) {
        self.state
            .prune(self.clock.now_secs(), self.max_token_lifetime);
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.issuer.trim_end_matches('/'))
    }

    /// A full snapshot, replacing what is known.
    async fn snapshot(&self) -> Result<(), String> {
        let mut fresh = Sets::default();
        let mut after: Option<String> = None;
        loop {
            let mut url = format!("{}?limit={PAGE}", self.url("revocations"));
            if let Some(a) = &after {
                url.push_str("&after=");
                url.extend(form_urlencoded::byte_serialize(a.as_bytes()));
            }
            let resp = self
                .client
                .get(url)
                .timeout(self.timeout)
                .header(http::header::AUTHORIZATION, self.credentials.basic())
                .send()
                .await
                .map_err(without_url)?;
            if !resp.status().is_success() {
                return Err(format!("status {}", resp.status().as_u16()));
            }
            let mut resp = resp;
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(without_url)? {
                if body.len() + chunk.len() > MAX_PAGE_BYTES {
                    return Err("the page is too large".into());
                }
                body.extend_from_slice(&chunk);
            }
            let page: RevocationFeedPage = serde_json::from_slice(&body)
                .map_err(|_| "the page is not a feed page".to_owned())?;
            let full = page.entries.len() >= PAGE;
            for e in page.entries {
                Revocations::apply(&mut fresh, e);
            }
            after = Some(page.next_cursor);
            if !full {
                break;
            }
        }
        fresh.cursor = after;
        fresh.last_contact = Some(Instant::now());
        let (jtis, marks) = (fresh.jtis.len(), fresh.watermarks.len());
        self.state.write(|s| *s = fresh);
        tracing::debug!(issuer = %self.issuer, jtis, watermarks = marks, "revocation snapshot");
        Ok(())
    }

    /// Follows the stream from the cursor until it ends.
    async fn stream(&self) -> StreamEnd {
        let Some(cursor) = self.state.read(|s| s.cursor.clone()) else {
            return StreamEnd::Gone;
        };
        let sent = self
            .client
            .get(self.url("revocations/stream"))
            .header(http::header::AUTHORIZATION, self.credentials.basic())
            .header(http::header::ACCEPT, "text/event-stream")
            .header("last-event-id", &cursor)
            .send();
        let mut resp = match tokio::time::timeout(self.timeout, sent).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::warn!(issuer = %self.issuer, error = %without_url(e), "revocation stream failed");
                return StreamEnd::Retry(None);
            }
            Err(_) => return StreamEnd::Retry(None),
        };
        match resp.status().as_u16() {
            200 => {}
            410 => return StreamEnd::Gone,
            status => {
                let retry_after = resp
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s.min(60)));
                tracing::warn!(issuer = %self.issuer, status, "revocation stream refused");
                return StreamEnd::Retry(retry_after);
            }
        }
        self.state.touch();
        let mut parser = SseParser::default();
        let mut last_prune = Instant::now();
        loop {
            let chunk = match tokio::time::timeout(STREAM_IDLE, resp.chunk()).await {
                Ok(Ok(Some(c))) => c,
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
                    self.state.stream_ended();
                    return StreamEnd::Retry(None);
                }
            };
            self.state.touch();
            for event in parser.push(&chunk) {
                if event.event.as_deref() != Some("revocation") {
                    continue;
                }
                match serde_json::from_str::<RevocationFeedEntry>(&event.data) {
                    Ok(entry) => self.state.write(|s| {
                        Revocations::apply(s, entry);
                        if let Some(id) = event.id {
                            s.cursor = Some(id);
                        }
                    }),
                    Err(_) => {
                        // An entry type we do not know: skip it, but move past it.
                        tracing::info!(issuer = %self.issuer, "unknown revocation entry skipped");
                        if let Some(id) = event.id {
                            self.state.write(|s| s.cursor = Some(id));
                        }
                    }
                }
            }
            if parser.overflowed() {
                self.state.stream_ended();
                return StreamEnd::Retry(None);
            }
            if last_prune.elapsed() > PRUNE_EVERY {
                self.prune();
                last_prune = Instant::now();
            }
        }
    }
}

async fn sleep_backoff(backoff: &mut Duration, at_least: Option<Duration>) {
    let wait = at_least.map_or(*backoff, |a| a.max(*backoff));
    tokio::time::sleep(wait).await;
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
}

/// One server-sent event.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub(crate) id: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

/// The WHATWG event-stream format, incrementally: lines `field: value`, comments `:`, events
/// ended by a blank line. A line longer than 64 KiB ends the stream.
#[derive(Default)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    current: SseEvent,
    overflow: bool,
}

const MAX_LINE: usize = 64 * 1024;

impl SseParser {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        self.buf.extend_from_slice(bytes);
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line[..nl]);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                let ev = std::mem::take(&mut self.current);
                if !ev.data.is_empty() || ev.event.is_some() {
                    out.push(ev);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => self.current.id = Some(value.to_owned()),
                "event" => self.current.event = Some(value.to_owned()),
                "data" => {
                    if !self.current.data.is_empty() {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    if self.current.data.len() > MAX_LINE {
                        self.overflow = true;
                        self.current = SseEvent::default();
                    }
                }
                _ => {}
            }
        }
        if self.buf.len() > MAX_LINE {
            self.overflow = true;
            self.buf.clear();
        }
        out
    }

    pub(crate) fn overflowed(&self) -> bool {
        self.overflow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_parsed_across_chunk_boundaries() {
        let mut p = SseParser::default();
        let stream = b": ping\n\nid: 58\nevent: revocation\ndata: {\"type\":\"jti\",\"jti\":\"a\",\"exp\":5}\n\nid: 59\r\nevent: revocation\r\ndata: {\"type\":\"subject\",\"sub\":\"s\",\"not_before\":7}\r\n\r\n";
        let mut events = Vec::new();
        for chunk in stream.chunks(7) {
            events.extend(p.push(chunk));
        }
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].id.as_deref(), Some("58"));
        assert_eq!(events[0].event.as_deref(), Some("revocation"));
        assert_eq!(events[1].id.as_deref(), Some("59"));
        let e: RevocationFeedEntry = serde_json::from_str(&events[1].data).unwrap();
        assert_eq!(
            e,
            RevocationFeedEntry::Subject {
                sub: "s".into(),
                not_before: 7
            }
        );
        assert!(!p.overflowed());
    }

    #[test]
    fn an_endless_line_or_event_ends_the_stream() {
        let mut p = SseParser::default();
        p.push(&vec![b'a'; MAX_LINE + 1]);
        assert!(p.overflowed());
        // Many short data lines and never a blank line.
        let mut p = SseParser::default();
        let line = format!("data: {}\n", "x".repeat(1000));
        for _ in 0..100 {
            p.push(line.as_bytes());
        }
        assert!(p.overflowed());
    }

    fn ago(secs: u64) -> Instant {
        Instant::now()
            .checked_sub(Duration::from_secs(secs))
            .unwrap_or_else(Instant::now)
    }

    #[test]
    fn staleness_on_an_open_stream_starts_after_the_ping_grace() {
        let r = Revocations::default();
        assert_eq!(r.since_contact(), None, "nothing before the first snapshot");
        r.write(|s| s.streaming = Some(ago(5)));
        assert_eq!(
            r.since_contact(),
            Some(Duration::ZERO),
            "a live stream is current"
        );
        r.write(|s| s.streaming = Some(ago(30)));
        let lag = r.since_contact().unwrap();
        assert!(
            lag >= Duration::from_secs(9) && lag <= Duration::from_secs(11),
            "{lag:?}"
        );
    }

    #[test]
    fn a_stream_that_stalled_before_it_ended_vouches_only_for_the_grace() {
        let r = Revocations::default();
        // Ended soon after a ping: current until the end.
        r.write(|s| s.streaming = Some(ago(5)));
        r.stream_ended();
        assert!(r.since_contact().unwrap() < Duration::from_secs(1));
        // Silent for 44 s, then reset: current only until 20 s after the last byte.
        r.write(|s| s.streaming = Some(ago(44)));
        r.stream_ended();
        let lag = r.since_contact().unwrap();
        assert!(lag >= Duration::from_secs(23), "{lag:?}");
    }

    #[test]
    fn watermarks_take_the_highest_and_pruning_forgets_dead_entries() {
        let r = Revocations::default();
        r.write(|s| {
            Revocations::apply(
                s,
                RevocationFeedEntry::Subject {
                    sub: "a".into(),
                    not_before: 100,
                },
            );
            Revocations::apply(
                s,
                RevocationFeedEntry::Subject {
                    sub: "a".into(),
                    not_before: 50,
                },
            );
            Revocations::apply(
                s,
                RevocationFeedEntry::Jti {
                    jti: "j".into(),
                    exp: 1000,
                },
            );
        });
        assert_eq!(r.read(|s| s.watermarks["a"]), 100);
        r.prune(1000 + JTI_GRACE_SECS + 1, 3600);
        assert_eq!(r.len(), (0, 1), "the watermark outlives the jti");
        r.prune(100 + 3600 + JTI_GRACE_SECS + 1, 3600);
        assert_eq!(r.len(), (0, 0));
    }

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        let c = FeedCredentials {
            client_id: "sa 1".into(),
            client_secret: "p:w".into(),
        };
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(c.basic().strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(raw, b"sa+1:p%3Aw");
        assert!(!format!("{c:?}").contains("p:w"));
    }
}
