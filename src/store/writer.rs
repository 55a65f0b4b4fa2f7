//! The one writer: every mutation of the store runs here, on one thread, in arrival order.
//!
//! A caller hands [`Writer::submit`] a command (a closure over the store). The writer thread takes
//! what is queued (up to [`MAX_BATCH`]) and runs each command against the current state; a
//! second thread, the flusher, then calls sled's `flush()` once for every batch applied so far
//! (plus `fdatasync` of the log when `store.fsync` is on) and only then answers each durable
//! command with its own result, while the writer already applies the next batch. So:
//! - an acknowledged write is on disk: no answer leaves before a flush that started after it was
//!   applied;
//! - commands never race each other, so uniqueness and invariant checks need no sled transaction,
//!   and in-memory indexes updated by a command are changed by this thread only;
//! - one flush serves every command applied while the previous flush ran, and applying never
//!   waits for the disk (measured with `cargo bench --bench flash_sale`: the flush was half of the
//!   writer's time when it ran on the writer thread).
//!
//! The queue is bounded (`store.writer_queue`): a full queue makes callers wait up to
//! [`FULL_WAIT`], then they get [`StoreError::Overloaded`] (503 `overloaded`). Reads never come
//! here: they run on the store's read [`pool`](super::pool).
//!
//! sled 0.34 deadlocks when `flush_async` is called concurrently; one thread calling the blocking
//! `flush()` avoids that and keeps fsync work off the async threads.

use std::fs::File;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::failpoints::Failpoint;
use super::{Health, Inner, Store, StoreError};

/// The flush result every command of a batch is answered with (the error text is shared).
pub(crate) type Flushed = Result<(), Arc<str>>;

/// Runs after the batch's flush and sends the command's result to its caller.
type Reply = Box<dyn FnOnce(Flushed) + Send>;

/// A command: applies itself to the store and returns how to answer once flushed.
struct Job {
    run: Box<dyn FnOnce(&Store) -> Reply + Send>,
    /// Whether the caller waits for the disk; a batch of only non-durable jobs skips the flush.
    durable: bool,
}

/// Most commands applied before one flush; bounds the latency of the first command of a batch.
pub const MAX_BATCH: usize = 4096;
/// How long a caller waits for room in a full queue before it is told the store is overloaded.
pub const FULL_WAIT: Duration = Duration::from_secs(2);

pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Job>>,
    thread: OnceLock<JoinHandle<()>>,
    health: Arc<Health>,
}

/// The writer's end of the queue, between [`Writer::new`] and [`Writer::start`].
pub(crate) struct Queue(mpsc::Receiver<Job>);

impl Writer {
    /// The queue, bounded at `queue` commands; nothing runs until [`Writer::start`].
    pub(crate) fn new(queue: usize, health: Arc<Health>) -> (Self, Queue) {
        let (tx, rx) = mpsc::channel::<Job>(queue.max(1));
        (
            Self {
                tx: Some(tx),
                thread: OnceLock::new(),
                health,
            },
            Queue(rx),
        )
    }

    /// Starts the writer thread. It reaches the store through `inner` (weak, so the store can
    /// close); `log_file` is sled's log, synced after each flush when given.
    pub(crate) fn start(
        &self,
        queue: Queue,
        inner: Weak<Inner>,
        db: sled::Db,
        log_file: Option<Arc<File>>,
    ) -> std::io::Result<()> {
        let mut rx = queue.0;
        // Batches applied and waiting for the disk; two in line at most, so a slow disk holds
        // the writer back instead of letting answers pile up.
        let (to_flusher, from_writer) = std::sync::mpsc::sync_channel::<Vec<Reply>>(2);
        let health = self.health.clone();
        let flusher = std::thread::Builder::new()
            .name("voucherd-flusher".into())
            .spawn(move || flush_loop(from_writer, db, log_file, &health))?;
        let thread = std::thread::Builder::new()
            .name("voucherd-writer".into())
            .spawn(move || {
                let mut batch: Vec<Job> = Vec::with_capacity(256);
                while let Some(first) = rx.blocking_recv() {
                    batch.push(first);
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let Some(inner) = inner.upgrade() else {
                        break;
                    };
                    let store = Store { inner };
                    let size = batch.len();
                    let mut durable = Vec::with_capacity(size);
                    for job in batch.drain(..) {
                        let wants_disk = job.durable;
                        let reply = apply(&store, job);
                        if wants_disk {
                            durable.push(reply);
                        } else {
                            reply(Ok(()));
                        }
                    }
                    metrics::histogram!("voucherd_store_writer_batch").record(size as f64);
                    // The flusher answers them once a flush that started after this point is
                    // done; meanwhile this thread applies the next batch.
                    if !durable.is_empty() && to_flusher.send(durable).is_err() {
                        tracing::error!("the store flusher stopped; writes are not acknowledged");
                    }
                    // The last handle on the store may be this one (every caller gone): dropping
                    // it here closes the store from this thread, which `Drop` allows for.
                    drop(store);
                }
                drop(to_flusher);
                let _ = flusher.join();
            })?;
        let _ = self.thread.set(thread);
        Ok(())
    }

    /// Queues `f` and returns its result once the batch holding it is flushed (when `durable`),
    /// or once it is applied (otherwise).
    pub(crate) async fn submit<F, R>(&self, durable: bool, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (done, answer) = oneshot::channel::<Result<R, StoreError>>();
        let job = Job {
            run: Box::new(move |store: &Store| {
                let out = f(store);
                Box::new(move |flushed: Flushed| {
                    let out = match flushed {
                        Ok(()) => out,
                        Err(e) => Err(StoreError::Flush(e)),
                    };
                    let _ = done.send(out);
                }) as Reply
            }),
            durable,
        };
        if self.health.failed() {
            return Err(StoreError::Failed);
        }
        let tx = self.tx.as_ref().ok_or(StoreError::Closed)?;
        match tx.try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(StoreError::Closed),
            Err(mpsc::error::TrySendError::Full(job)) => {
                metrics::counter!("voucherd_store_writer_full_total").increment(1);
                match tx.send_timeout(job, FULL_WAIT).await {
                    Ok(()) => {}
                    Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                        return Err(StoreError::Overloaded);
                    }
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => {
                        return Err(StoreError::Closed);
                    }
                }
            }
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// The flusher thread: takes every batch the writer has applied so far, flushes once (which
/// covers them all: each was applied before this flush started), then answers them. A failed
/// flush fails the store for good ([`Health`]): its commands, and every later one, are answered
/// with an error and nothing is flushed again.
fn flush_loop(
    from_writer: std::sync::mpsc::Receiver<Vec<Reply>>,
    db: sled::Db,
    log_file: Option<Arc<File>>,
    health: &Health,
) {
    while let Ok(first) = from_writer.recv() {
        let mut replies = first;
        while let Ok(more) = from_writer.try_recv() {
            replies.extend(more);
        }
        let started = Instant::now();
        if health.failpoints.hit(Failpoint::SlowFlush) {
            std::thread::sleep(Duration::from_millis(250));
        }
        let result: Flushed = if health.failed() {
            Err(Arc::from("the store failed earlier"))
        } else if health.failpoints.hit(Failpoint::Flush) {
            Err(Arc::from("injected flush failure"))
        } else {
            sync(&db, log_file.as_deref()).map_err(|e| Arc::from(e.to_string()))
        };
        if let Err(e) = &result {
            health.fail(e);
        }
        metrics::counter!("voucherd_store_flushes_total").increment(1);
        metrics::histogram!("voucherd_store_flush_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("voucherd_store_flush_commands").record(replies.len() as f64);
        for reply in replies {
            reply(result.clone());
        }
    }
}

/// Runs one command; a panicking command is answered with an error and the writer goes on.
fn apply(store: &Store, job: Job) -> Reply {
    let run = job.run;
    match std::panic::catch_unwind(AssertUnwindSafe(|| run(store))) {
        Ok(reply) => reply,
        Err(_) => {
            tracing::error!("a store command panicked; its write is not acknowledged");
            // The command's sender went with the unwound closure: its caller sees `Closed`.
            Box::new(|_| {})
        }
    }
}

/// The durable step itself: sled's `flush()` (write and `sync_file_range` of its log), then an
/// `fdatasync` of the log file when given, which also makes a grown file's length durable.
pub fn sync(db: &sled::Db, log_file: Option<&File>) -> std::io::Result<()> {
    db.flush().map_err(std::io::Error::other)?;
    if let Some(f) = log_file {
        f.sync_data()?;
    }
    Ok(())
}

impl Drop for Writer {
    /// Closing the queue ends the thread after its last batch; joining it means the sled handle
    /// it holds is gone when the store is dropped (so the directory lock is released). When the
    /// writer thread itself drops the last store handle, it is already on its way out: no join.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreSettings;

    #[actix_web::test]
    async fn a_full_queue_answers_overloaded_and_a_panicking_command_does_not_stop_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreSettings {
            path: dir.path().join("data"),
            cache_capacity_mb: 8,
            fsync: false,
            writer_queue: 1,
        })
        .unwrap();
        // The writer is busy for longer than a caller waits for room; one command fits the queue.
        let (started, running) = tokio::sync::oneshot::channel();
        let busy = store.write(move |_| {
            let _ = started.send(());
            std::thread::sleep(FULL_WAIT + Duration::from_secs(1));
            Ok(1)
        });
        let rest = async {
            running.await.unwrap();
            let queued = store.write(|_| Ok(2));
            let refused = async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                store.write(|_| Ok(3)).await
            };
            tokio::join!(queued, refused)
        };
        let (busy, (queued, refused)) = tokio::join!(busy, rest);
        assert_eq!(busy.unwrap(), 1);
        assert_eq!(queued.unwrap(), 2);
        assert!(
            matches!(refused, Err(StoreError::Overloaded)),
            "{refused:?}"
        );

        #[allow(clippy::panic)]
        let panicked = store
            .write(|_| -> Result<(), StoreError> { panic!("a bug") })
            .await;
        assert!(matches!(panicked, Err(StoreError::Closed)));
        assert_eq!(store.write(|_| Ok(4)).await.unwrap(), 4);
    }
}
