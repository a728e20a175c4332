//! The audit writer: one task per process that owns this process's segments.
//!
//! Group commit: callers send events over a channel; the task takes whatever is waiting (up to
//! `max_batch`), chains and MACs the records, commits them with the new segment heads in one
//! transaction, and only then answers the callers that wait ([`AuditLog::append`]). While one
//! commit is in flight the next batch gathers, so the fsync cost is shared by every request that
//! arrived meanwhile.
//!
//! Refusals ([`AuditLog::note`]) do not wait. Repeated refusals with the same tenant, action,
//! actor, client address and reason within `aggregate_window` are counted, not written: the
//! first is written at once, the rest become one `token.refuse.aggregated` record with their
//! count when the window closes — an attacker cannot fill the disk, and nothing is lost.
//!
//! Every `checkpoint_interval` the task signs each segment's head with its tenant's key, and
//! now and then prunes records older than `retention` up to a checkpoint.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::chain;
use super::{
    AuditBatch, AuditCheckpoint, AuditError, AuditEvent, CheckpointClaims, GENESIS, Outcome,
    SegmentHead, action,
};
use crate::keyring::VersionedKeys;
use crate::signing::KeyRegistry;
use crate::{Clock, CoreError, Store, TenantName, Timestamp};

/// Audit settings (`audit.*` in the server configuration).
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// Records older than this are pruned at a checkpoint; `None` keeps everything. Default
    /// 90 days.
    pub retention_secs: Option<u64>,
    /// How often segment heads are signed. Default 10 s.
    pub checkpoint_interval_secs: u64,
    /// Window in which repeated refusals from one source are counted. Default 60 s.
    pub aggregate_window_secs: u64,
    /// Most records per commit. Default 512.
    pub max_batch: usize,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            retention_secs: Some(90 * 86_400),
            checkpoint_interval_secs: 10,
            aggregate_window_secs: 60,
            max_batch: 512,
        }
    }
}

/// Most distinct refusal sources tracked at once; beyond it, refusals of a tenant are
/// counted under one catch-all source.
const MAX_AGGREGATES: usize = 10_000;
/// Pruning runs every this many checkpoint ticks (and on [`AuditLog::checkpoint_now`]).
const PRUNE_EVERY_TICKS: u64 = 30;
/// Waiting events beyond this make `append` wait for room and `note` drop to a counter.
const QUEUE: usize = 16_384;

type Reply = oneshot::Sender<Result<(), AuditError>>;

enum Job {
    Append(Box<AuditEvent>, Reply),
    Note(Box<AuditEvent>),
    Checkpoint(Reply),
}

/// A handle to the audit writer. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tx: Option<mpsc::Sender<Job>>,
    segment: Arc<str>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl AuditLog {
    /// Starts the writer task on the current tokio runtime, with a new segment id.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        mac_keys: Arc<VersionedKeys>,
        keys: Arc<KeyRegistry>,
        settings: AuditSettings,
    ) -> Result<Self, CoreError> {
        let now = clock.now();
        let id = crate::AccountId::generate(now).map_err(CoreError::crypto)?;
        let segment: Arc<str> = format!("seg_{}", &id.as_str()[3..]).into();
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            store,
            clock,
            mac_keys,
            keys,
            settings,
            segment: segment.clone(),
            segs: HashMap::new(),
            aggregates: HashMap::new(),
            ticks: 0,
        };
        tokio::spawn(writer.run(rx));
        Ok(Self {
            tx: Some(tx),
            segment,
        })
    }

    /// A log that records nothing. It exists for the benchmark's no-audit comparison only and
    /// is not reachable from any configuration.
    #[doc(hidden)]
    pub fn discard_for_benchmark() -> Self {
        Self {
            tx: None,
            segment: "discard".into(),
        }
    }

    /// This process's segment id (the same for every tenant; segments are per tenant).
    pub fn segment(&self) -> &str {
        &self.segment
    }

    /// Records an event and waits until it is durably committed.
    pub async fn append(&self, event: AuditEvent) -> Result<(), AuditError> {
        let Some(tx) = &self.tx else { return Ok(()) };
        let (reply, done) = oneshot::channel();
        tx.send(Job::Append(Box::new(event), reply))
            .await
            .map_err(|_| AuditError::Unavailable("the audit writer has stopped".into()))?;
        done.await
            .map_err(|_| AuditError::Unavailable("the audit writer has stopped".into()))?
    }

    /// Records a refusal without waiting (repeats are aggregated).
    pub fn note(&self, event: AuditEvent) {
        let Some(tx) = &self.tx else { return };
        if tx.try_send(Job::Note(Box::new(event))).is_err() {
            tracing::warn!("audit queue full: a refusal was counted in the log only");
        }
    }

    /// Flushes aggregated refusals, signs every segment head and prunes by retention; returns
    /// when that is committed. The server calls it at shutdown; tests call it to make a
    /// checkpoint now.
    pub async fn checkpoint_now(&self) -> Result<(), AuditError> {
        let Some(tx) = &self.tx else { return Ok(()) };
        let (reply, done) = oneshot::channel();
        tx.send(Job::Checkpoint(reply))
            .await
            .map_err(|_| AuditError::Unavailable("the audit writer has stopped".into()))?;
        done.await
            .map_err(|_| AuditError::Unavailable("the audit writer has stopped".into()))?
    }
}

#[derive(Debug, Clone)]
struct Seg {
    seq: i64,
    hash: String,
    checkpointed: i64,
    created_at: Timestamp,
}

impl Seg {
    /// A segment with no record yet: its first record's `prev` is [`GENESIS`].
    fn empty(created_at: Timestamp) -> Self {
        Seg {
            seq: 0,
            hash: GENESIS.to_owned(),
            checkpointed: 0,
            created_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AggKey {
    tenant: TenantName,
    action: &'static str,
    actor: String,
    client_addr: Option<String>,
    reason: Option<String>,
}

#[derive(Debug)]
struct Aggregate {
    window_start: Timestamp,
    pending: u64,
    last: AuditEvent,
}

struct Writer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mac_keys: Arc<VersionedKeys>,
    keys: Arc<KeyRegistry>,
    settings: AuditSettings,
    segment: Arc<str>,
    segs: HashMap<TenantName, Seg>,
    aggregates: HashMap<AggKey, Aggregate>,
    ticks: u64,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let period = std::time::Duration::from_secs(self.settings.checkpoint_interval_secs.max(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                job = rx.recv() => {
                    let Some(first) = job else { break };
                    let mut jobs = vec![first];
                    self.gather(&mut rx, &mut jobs);
                    if jobs.len() > 1 && jobs.len() < self.settings.max_batch {
                        // Requests are arriving together: let the ones already running reach
                        // the queue too, so that they share this commit rather than wait for
                        // the next one (one scheduler turn, no timer).
                        tokio::task::yield_now().await;
                        self.gather(&mut rx, &mut jobs);
                    }
                    self.handle(jobs).await;
                }
                _ = tick.tick() => {
                    self.ticks += 1;
                    let prune = self.ticks.is_multiple_of(PRUNE_EVERY_TICKS);
                    if let Err(e) = self.maintain(false, prune).await {
                        tracing::warn!(error = %e, "audit checkpoint failed; retrying at the next tick");
                    }
                }
            }
        }
        // Every handle is gone (shutdown): count what was aggregated and sign the heads.
        if let Err(e) = self.maintain(true, false).await {
            tracing::warn!(error = %e, "final audit checkpoint failed");
        }
    }

    /// Takes what is waiting, up to the batch limit.
    fn gather(&self, rx: &mut mpsc::Receiver<Job>, jobs: &mut Vec<Job>) {
        while jobs.len() < self.settings.max_batch {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
    }

    async fn handle(&mut self, jobs: Vec<Job>) {
        let mut events = Vec::with_capacity(jobs.len());
        let mut waiters = Vec::new();
        let mut checkpoints = Vec::new();
        for job in jobs {
            match job {
                Job::Append(e, reply) => {
                    events.push((*e, 1));
                    waiters.push(reply);
                }
                Job::Note(e) => events.extend(self.aggregate(*e)),
                Job::Checkpoint(reply) => checkpoints.push(reply),
            }
        }
        let result = self.commit(events).await;
        for w in waiters {
            let _ = w.send(result.as_ref().map(|_| ()).map_err(clone_err));
        }
        if !checkpoints.is_empty() {
            let r = self.maintain(true, true).await;
            for c in checkpoints {
                let _ = c.send(r.as_ref().map(|_| ()).map_err(clone_err));
            }
        }
    }

    /// Chains, MACs and commits events (each with its count) in one transaction.
    async fn commit(&mut self, events: Vec<(AuditEvent, u64)>) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let version = self.mac_keys.current();
        let key = self
            .mac_keys
            .get(version)
            .ok_or_else(|| AuditError::Unavailable("no audit key".into()))?;
        let mut staged: HashMap<TenantName, Seg> = HashMap::new();
        let mut batch = AuditBatch::default();
        for (event, count) in &events {
            let seg = match staged.get_mut(&event.tenant) {
                Some(s) => s,
                None => {
                    let s = self
                        .segs
                        .get(&event.tenant)
                        .cloned()
                        .unwrap_or_else(|| Seg::empty(now));
                    staged.entry(event.tenant.clone()).or_insert(s)
                }
            };
            let record = chain::seal(
                event,
                &self.segment,
                seg.seq + 1,
                &seg.hash,
                *count,
                key,
                version,
            )
            .map_err(|e| AuditError::Unavailable(format!("serialising a record: {e}")))?;
            seg.seq += 1;
            seg.hash = record.hash.clone();
            batch.records.push(record);
        }
        for (tenant, seg) in &staged {
            batch.heads.push(SegmentHead {
                tenant: tenant.clone(),
                segment: self.segment.to_string(),
                head_seq: seg.seq,
                head_mac: chain::head_mac(key, tenant.as_str(), &self.segment, seg.seq, &seg.hash),
                head_hash: seg.hash.clone(),
                key_version: version,
                anchor_seq: 0,
                anchor_hash: GENESIS.to_owned(),
                created_at: seg.created_at,
                updated_at: now,
            });
        }
        match self.store.append_audit(&batch).await {
            Ok(()) => {
                self.segs.extend(staged);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, records = batch.records.len(), "audit commit failed");
                // The commit may have happened after all: continue from what the store has.
                self.resync(staged.into_keys()).await;
                Err(AuditError::Unavailable(
                    "the audit record could not be committed".into(),
                ))
            }
        }
    }

    /// Reloads this process's heads of these tenants' segments from the store.
    async fn resync(&mut self, tenants: impl Iterator<Item = TenantName>) {
        for t in tenants {
            if let Ok(heads) = self.store.audit_segments(&t).await
                && let Some(h) = heads.iter().find(|h| *h.segment == *self.segment)
            {
                let seg = self
                    .segs
                    .entry(t)
                    .or_insert_with(|| Seg::empty(h.created_at));
                seg.seq = h.head_seq;
                seg.hash = h.head_hash.clone();
            }
        }
    }

    /// Returns the events to write now: nothing if the refusal is counted in an open window.
    fn aggregate(&mut self, event: AuditEvent) -> Vec<(AuditEvent, u64)> {
        let window = (self.settings.aggregate_window_secs as i64).saturating_mul(1000);
        let mut key = AggKey {
            tenant: event.tenant.clone(),
            action: event.action,
            actor: event.actor.clone(),
            client_addr: event.client_addr.clone(),
            reason: event.reason.clone(),
        };
        if !self.aggregates.contains_key(&key) && self.aggregates.len() >= MAX_AGGREGATES {
            key.actor = "*".into();
            key.client_addr = None;
        }
        let mut out = Vec::new();
        match self.aggregates.get_mut(&key) {
            Some(a) if event.at.millis() < a.window_start.millis().saturating_add(window) => {
                a.pending += 1;
                a.last = event;
            }
            Some(a) => {
                if a.pending > 0 {
                    out.push((aggregated(&a.last, a.window_start), a.pending));
                }
                a.window_start = event.at;
                a.pending = 0;
                a.last = event.clone();
                out.push((event, 1));
            }
            None => {
                self.aggregates.insert(
                    key,
                    Aggregate {
                        window_start: event.at,
                        pending: 0,
                        last: event.clone(),
                    },
                );
                out.push((event, 1));
            }
        }
        out
    }

    /// Flushes closed aggregation windows (all of them if `all`), commits them, signs every
    /// segment head that moved, and prunes by retention if `prune`.
    async fn maintain(&mut self, all: bool, prune: bool) -> Result<(), AuditError> {
        let now = self.clock.now();
        let window = (self.settings.aggregate_window_secs as i64).saturating_mul(1000);
        let mut flushed = Vec::new();
        self.aggregates.retain(|_, a| {
            let closed = all || now.millis() >= a.window_start.millis().saturating_add(window);
            if closed && a.pending > 0 {
                flushed.push((aggregated(&a.last, a.window_start), a.pending));
            }
            !closed
        });
        self.commit(flushed).await?;
        self.checkpoint(now).await?;
        if prune {
            self.prune(now).await?;
        }
        Ok(())
    }

    async fn checkpoint(&mut self, now: Timestamp) -> Result<(), AuditError> {
        for (tenant, seg) in self.segs.iter_mut() {
            if seg.seq <= seg.checkpointed {
                continue;
            }
            let Some(keys) = self.keys.get(tenant) else {
                continue; // the tenant was deleted: its segment ends unsigned
            };
            let Some(signer) = &keys.checkpoint_signer else {
                continue;
            };
            let claims = CheckpointClaims {
                iss: keys.issuer.clone(),
                tenant: tenant.as_str().to_owned(),
                segment: self.segment.to_string(),
                seq: seg.seq,
                hash: seg.hash.clone(),
                iat: now.secs(),
            };
            let payload = serde_json::to_vec(&claims)
                .map_err(|e| AuditError::Unavailable(format!("checkpoint: {e}")))?;
            let jws = if signer.is_blocking() {
                // An HSM key: a PKCS#11 round trip, off the async threads. If the HSM cannot
                // sign, this tenant's segment stays unsigned until a later checkpoint; other
                // tenants' checkpoints and the records themselves go on.
                let signer = signer.clone();
                match tokio::task::spawn_blocking(move || signer.sign(&payload)).await {
                    Ok(Ok(jws)) => jws,
                    Ok(Err(_)) | Err(_) => {
                        tracing::error!(tenant = %tenant, "audit checkpoint not signed: the HSM key could not sign");
                        continue;
                    }
                }
            } else {
                signer
                    .sign(&payload)
                    .map_err(|_| AuditError::Unavailable("checkpoint signing failed".into()))?
            };
            let cp = AuditCheckpoint {
                tenant: tenant.clone(),
                segment: self.segment.to_string(),
                seq: seg.seq,
                hash: seg.hash.clone(),
                at: now,
                jws,
            };
            match self.store.add_audit_checkpoint(&cp).await {
                Ok(()) | Err(crate::StoreError::Conflict) => seg.checkpointed = seg.seq,
                Err(e) => return Err(AuditError::Unavailable(format!("checkpoint: {e}"))),
            }
        }
        Ok(())
    }

    /// Deletes, per segment of every live tenant, the records up to the newest checkpoint made
    /// before the retention cutoff (so every pruned record is older than the cutoff), and
    /// makes that checkpoint the segment's anchor.
    async fn prune(&mut self, now: Timestamp) -> Result<(), AuditError> {
        let Some(retention) = self.settings.retention_secs else {
            return Ok(());
        };
        let cutoff = now.plus_secs(-(retention as i64));
        let err = |e: crate::StoreError| AuditError::Unavailable(format!("pruning: {e}"));
        for keys in self.keys.all() {
            let tenant = &keys.tenant;
            let segments = self.store.audit_segments(tenant).await.map_err(err)?;
            if segments.is_empty() {
                continue;
            }
            let checkpoints = self.store.audit_checkpoints(tenant).await.map_err(err)?;
            for s in &segments {
                let best = checkpoints
                    .iter()
                    .filter(|c| c.segment == s.segment && c.at < cutoff && c.seq > s.anchor_seq)
                    .max_by_key(|c| c.seq);
                if let Some(c) = best {
                    let n = self
                        .store
                        .prune_audit(tenant, &s.segment, c.seq, &c.hash)
                        .await
                        .map_err(err)?;
                    tracing::info!(tenant = %tenant, segment = %s.segment, through = c.seq, deleted = n, "audit records pruned by retention");
                }
            }
        }
        Ok(())
    }
}

/// The record standing for `count` refusals like `last` since `since`.
fn aggregated(last: &AuditEvent, since: Timestamp) -> AuditEvent {
    let mut e = last.clone();
    e.action = action::AGGREGATED;
    e.outcome = Outcome::Failure;
    e.jti = None;
    let mut detail = serde_json::json!({
        "of": last.action,
        "since": chain::time_text(since),
        "until": chain::time_text(last.at),
    });
    // A federation refusal's exact condition (the last one of the run) survives aggregation.
    if let Some(c) = last.detail.as_ref().and_then(|d| d.get("condition")) {
        detail["condition"] = c.clone();
    }
    e.detail = Some(detail);
    e
}

fn clone_err(e: &AuditError) -> AuditError {
    match e {
        AuditError::Unavailable(m) => AuditError::Unavailable(m.clone()),
    }
}
