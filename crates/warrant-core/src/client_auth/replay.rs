//! Single-use identifiers (client assertion and DPoP proof `jti`s) with group commit.
//!
//! Every `private_key_jwt` or DPoP request records one identifier in the store before a token
//! is issued. One transaction per request would make SQLite's single writer (one fsync per
//! commit) the limit of those requests, so a task takes whatever requests are waiting and
//! records them in one transaction ([`crate::Store::use_once_batch`]), as the audit writer does
//! for its records. The store decides every identifier exactly as it would alone: a repeat
//! inside one batch is a replay too.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{StoreResult, UsedJti};
use crate::{Clock, Store, StoreError};

/// Requests waiting at most; beyond that a caller waits for room (back-pressure, never loss).
const QUEUE: usize = 4096;
/// Identifiers per transaction at most.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<StoreResult<bool>>;

/// The handle the engine holds; the task ends when it is dropped.
#[derive(Debug, Clone)]
pub(crate) struct ReplayCache {
    tx: mpsc::Sender<(UsedJti, Reply)>,
}

impl ReplayCache {
    /// Starts the batching task on the current tokio runtime.
    pub(crate) fn start(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, clock, rx));
        Self { tx }
    }

    /// `Ok(true)` the first time `jti` is used (on any replica sharing the store), `Ok(false)`
    /// for a replay.
    pub(crate) async fn use_once(&self, jti: UsedJti) -> StoreResult<bool> {
        let (reply, done) = oneshot::channel();
        let stopped = || StoreError::Backend("the replay cache has stopped".into());
        self.tx.send((jti, reply)).await.map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?
    }
}

async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut rx: mpsc::Receiver<(UsedJti, Reply)>,
) {
    let mut batch: Vec<(UsedJti, Reply)> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        // Let the requests that are being handled right now join this batch.
        tokio::task::yield_now().await;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let (jtis, replies): (Vec<UsedJti>, Vec<Reply>) = batch.drain(..).unzip();
        match store.use_once_batch(&jtis, clock.now()).await {
            Ok(firsts) if firsts.len() == replies.len() => {
                for (reply, first) in replies.into_iter().zip(firsts) {
                    let _ = reply.send(Ok(first));
                }
            }
            Ok(_) => {
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Corrupt(
                        "the store answered a different number of identifiers".into(),
                    )));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, n = jtis.len(), "could not record single-use ids");
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Backend(e.to_string())));
                }
            }
        }
    }
}
