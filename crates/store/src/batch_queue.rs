//! The bounded queue in front of a store's batch writer (deliveries, see
//! `group_commit.rs`; new sessions, see `session_accept.rs`): a caller
//! queues its job and waits for the answer its batch sends back.
//!
//! The writer is a task of its own, started on first use, so a caller that
//! goes away (its HTTP connection closed) never cancels a transaction
//! others are waiting for. A full queue is answered at once with
//! [`StoreError::Overloaded`] rather than queueing memory without bound.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::{Result, StoreError};

/// Why a batch failed, shared by every caller in it.
#[derive(Clone, Debug)]
pub(crate) struct Failure(pub(crate) Arc<String>);

impl Failure {
    pub(crate) fn new(why: impl Into<String>) -> Failure {
        Failure(Arc::new(why.into()))
    }
}

/// What a caller of a batch is told.
pub(crate) type Answer<T> = std::result::Result<T, Failure>;

/// The queue into one writing task; shared by the clones of one store.
pub(crate) struct BatchQueue<J> {
    queue: Mutex<Option<mpsc::Sender<J>>>,
    /// Jobs that may wait for the writer.
    capacity: usize,
    /// What the jobs are, for errors ("deliveries").
    what: &'static str,
}

impl<J> std::fmt::Debug for BatchQueue<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchQueue")
            .field("what", &self.what)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<J: Send + 'static> BatchQueue<J> {
    pub(crate) fn new(capacity: usize, what: &'static str) -> BatchQueue<J> {
        BatchQueue {
            queue: Mutex::new(None),
            capacity,
            what,
        }
    }

    /// Queues the job `make` builds around its answer's sender, starting
    /// the writer with `start` on first use (or again, if the runtime it
    /// ran on has gone, as between tests), and waits for that answer.
    pub(crate) async fn submit<T, Fut>(
        &self,
        make: impl FnOnce(oneshot::Sender<Answer<T>>) -> J,
        start: impl FnOnce(mpsc::Receiver<J>) -> Fut,
    ) -> Result<T>
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let queue = self.sender(start);
        match queue.try_send(make(answer)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err(StoreError::Overloaded(format!(
                    "{} {} are already waiting to be written",
                    self.capacity, self.what
                )));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(StoreError::BatchFailed(format!(
                    "the writer of {} has stopped",
                    self.what
                )));
            }
        }
        match answered.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Failure(why))) => Err(StoreError::BatchFailed(why.to_string())),
            Err(_) => Err(StoreError::BatchFailed(format!(
                "the writer of {} stopped before answering",
                self.what
            ))),
        }
    }

    fn sender<Fut>(&self, start: impl FnOnce(mpsc::Receiver<J>) -> Fut) -> mpsc::Sender<J>
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut slot = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = slot.as_ref().filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(self.capacity);
        tokio::spawn(start(rx));
        *slot = Some(tx.clone());
        tx
    }
}
